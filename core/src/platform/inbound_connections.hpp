// The TCP connections a node's bound sockets (inbox, pub) have accepted, by descriptor. libzmq
// owns them and offers no call to close one inbound connection of a bound socket, nor a bound on
// how many it accepts; its socket monitor tells each one accepted and closed, with its
// descriptor. This table keeps them, so that the node can
//   * cap them: past the cap, the connections that never sent a byte (no ZMTP greeting: idle or
//     half-open, a descriptor held for nothing) are cut first, and then the newest one;
//   * cut them all (a key revoked: every connection passes the ZAP handler again).
// Cutting is shutdown(2): libzmq sees the connection end and closes it itself. A descriptor is
// touched only while it still is a TCP socket on the bound port: libzmq may have closed it and
// the number been reused before its CLOSED event is read.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace peermq::detail {

class InboundConnections {
public:
    using Time = std::chrono::steady_clock::time_point;
    // A connection accepted this long ago that has not sent a byte is idle: a ZeroMQ peer sends
    // its greeting as soon as it is connected.
    static constexpr std::chrono::milliseconds kIdleAfter{500};

    struct Admitted {
        std::size_t idle_cut = 0;  // idle connections cut to make room
        bool refused = false;      // the new one cut: every other one is in use
    };

    // The connections of the socket bound on `port`, at most `limit` at once.
    InboundConnections(std::uint16_t port, std::size_t limit) : port_(port), limit_(limit) {}

    std::size_t size() const { return accepted_.size(); }

    // A connection accepted at `now`. Over the limit, cuts idle ones, or this one.
    Admitted accepted(int fd, Time now);
    void closed(int fd) { accepted_.erase(fd); }
    // Cuts every connection; how many were cut.
    std::size_t cut_all();

private:
    const std::uint16_t port_;
    const std::size_t limit_;
    std::unordered_map<int, Time> accepted_;  // descriptor -> when accepted
};

}  // namespace peermq::detail
