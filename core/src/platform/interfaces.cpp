#include "platform/interfaces.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace peermq::detail {

std::string InterfaceAddress::text() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(family, bytes.data(), text, sizeof text) == nullptr) return {};
    return text;
}

bool NetworkInterface::up() const { return (flags & IFF_UP) != 0; }
bool NetworkInterface::loopback() const { return (flags & IFF_LOOPBACK) != 0; }
bool NetworkInterface::multicast() const { return (flags & IFF_MULTICAST) != 0; }

std::string NetworkInterface::ipv4() const {
    for (const auto& address : addresses) {
        if (address.family == AF_INET) return address.text();
    }
    return {};
}

Result<std::vector<NetworkInterface>> network_interfaces() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return make_error(ErrorCode::io_error, std::string("getifaddrs: ") + std::strerror(errno));
    }
    std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> guard(list, &freeifaddrs);
    std::vector<NetworkInterface> interfaces;
    for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
        if (entry->ifa_name == nullptr) continue;
        auto it =
            std::find_if(interfaces.begin(), interfaces.end(),
                         [&](const NetworkInterface& i) { return i.name == entry->ifa_name; });
        if (it == interfaces.end()) {
            NetworkInterface added;
            added.name = entry->ifa_name;
            added.index = if_nametoindex(entry->ifa_name);
            it = interfaces.insert(interfaces.end(), std::move(added));
        }
        it->flags |= entry->ifa_flags;
        if (entry->ifa_addr == nullptr) continue;
        InterfaceAddress address;
        address.family = entry->ifa_addr->sa_family;
        if (address.family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
            std::memcpy(address.bytes.data(), &in->sin_addr, sizeof in->sin_addr);
        } else if (address.family == AF_INET6) {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
            std::memcpy(address.bytes.data(), &in6->sin6_addr, sizeof in6->sin6_addr);
        } else {
            continue;  // AF_PACKET: the link itself, no address
        }
        it->addresses.push_back(address);
    }
    return interfaces;
}

Result<std::string> interface_ipv4(const std::string& name) {
    auto interfaces = network_interfaces();
    if (!interfaces) {
        return make_error(ErrorCode::io_error, "getifaddrs failed while looking up '" + name + "'");
    }
    const auto& all = interfaces.value();
    const auto it = std::find_if(all.begin(), all.end(),
                                 [&](const NetworkInterface& i) { return i.name == name; });
    if (it == all.end()) {
        return make_error(ErrorCode::unknown_interface,
                          "no network interface named '" + name + "'");
    }
    std::string address = it->ipv4();
    if (address.empty()) {
        return make_error(ErrorCode::unknown_interface,
                          "interface '" + name + "' has no IPv4 address");
    }
    return address;
}

std::vector<std::string> mdns_joined_devices() {
    // The group shows as FB0000E0 (224.0.0.251, little-endian hex) under its device's line.
    std::vector<std::string> devices;
    std::ifstream in("/proc/net/igmp");
    std::string device;
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string first;
        if (!(words >> first)) continue;
        if (std::isdigit(static_cast<unsigned char>(line[0]))) {
            words >> device;
        } else if (first == "FB0000E0" && !device.empty() &&
                   std::find(devices.begin(), devices.end(), device) == devices.end()) {
            devices.push_back(device);
        }
    }
    return devices;
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
