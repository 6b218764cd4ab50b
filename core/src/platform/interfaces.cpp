#include "platform/interfaces.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>

namespace peermq::detail {

Result<std::string> interface_ipv4(const std::string& name) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return make_error(ErrorCode::io_error, "getifaddrs failed while looking up '" + name + "'");
    }
    std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> guard(list, &freeifaddrs);
    bool exists = false;
    for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
        if (it->ifa_name == nullptr || name != it->ifa_name) continue;
        exists = true;
        if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
        char text[INET_ADDRSTRLEN] = {};
        const auto* addr = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
        if (inet_ntop(AF_INET, &addr->sin_addr, text, sizeof text) != nullptr) return std::string(text);
    }
    return make_error(ErrorCode::unknown_interface,
                      exists ? "interface '" + name + "' has no IPv4 address"
                             : "no network interface named '" + name + "'");
}

Result<std::string> resolve_ipv4(const std::string& host) {
    in_addr literal{};
    if (inet_pton(AF_INET, host.c_str(), &literal) == 1) return host;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
    if (rc != 0 || result == nullptr) {
        return make_error(ErrorCode::invalid_argument,
                          "cannot resolve host '" + host + "': " + gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(result, &freeaddrinfo);
    char text[INET_ADDRSTRLEN] = {};
    const auto* addr = reinterpret_cast<const sockaddr_in*>(result->ai_addr);
    inet_ntop(AF_INET, &addr->sin_addr, text, sizeof text);
    return std::string(text);
}

}  // namespace peermq::detail
