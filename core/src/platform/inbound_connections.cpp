#include "platform/inbound_connections.hpp"

// <linux/tcp.h>, not <netinet/tcp.h>: glibc's tcp_info lacks tcpi_bytes_received.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <optional>
#include <vector>

namespace peermq::detail {
namespace {

bool is_connection_to(int fd, std::uint16_t port) {
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) != 0) return false;
    if (local.ss_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port) == port;
    if (local.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port) == port;
    return false;
}

// The bytes the peer has sent so far; nullopt when the kernel cannot say.
std::optional<std::uint64_t> bytes_received(int fd) {
    tcp_info info{};
    socklen_t size = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) return std::nullopt;
    if (size < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
        return std::nullopt;
    return info.tcpi_bytes_received;
}

// Whether the peer has sent nothing at all (false when the kernel cannot say).
bool silent(int fd) { return bytes_received(fd) == std::uint64_t{0}; }

bool cut(int fd, std::uint16_t port) {
    return is_connection_to(fd, port) && ::shutdown(fd, SHUT_RDWR) == 0;
}

}  // namespace

InboundConnections::Admitted InboundConnections::accepted(int fd, Time now) {
    Admitted admitted;
    accepted_[fd] = Connection{now, now, 0};
    if (accepted_.size() <= limit_) return admitted;
    std::vector<int> idle;
    for (const auto& [other, connection] : accepted_) {
        if (other != fd && now - connection.accepted >= kIdleAfter && silent(other)) {
            idle.push_back(other);
        }
    }
    for (const int other : idle) {
        if (cut(other, port_)) ++admitted.idle_cut;
        accepted_.erase(other);  // cut, or no longer ours: its CLOSED event finds nothing
    }
    if (accepted_.size() > limit_ && quiet_after_.count() > 0) {
        std::vector<int> quiet;
        for (const auto& [other, connection] : accepted_) {
            if (other != fd && now - connection.heard >= quiet_after_) quiet.push_back(other);
        }
        for (const int other : quiet) {
            if (cut(other, port_)) ++admitted.quiet_cut;
            accepted_.erase(other);
        }
    }
    if (accepted_.size() > limit_) {
        admitted.refused = true;
        (void)cut(fd, port_);
        accepted_.erase(fd);
    }
    return admitted;
}

void InboundConnections::sample(Time now) {
    if (quiet_after_.count() <= 0) return;
    for (auto& [fd, connection] : accepted_) {
        const auto received = bytes_received(fd);
        if (received && *received != connection.received) {
            connection.received = *received;
            connection.heard = now;
        }
    }
}

std::size_t InboundConnections::cut_all() {
    std::size_t count = 0;
    for (const auto& [fd, connection] : accepted_) {
        if (cut(fd, port_)) ++count;
    }
    accepted_.clear();  // libzmq reports each one closed; their numbers may be reused
    return count;
}

}  // namespace peermq::detail
