// The host's network interfaces as getifaddrs() reports them, read in one place: binding and
// announcing (the node), the embedded Avahi stack's address records (discovery) and
// `peermq doctor`'s interface checks all go through network_interfaces(). Plain functions, no
// state: each call reads the kernel's list afresh.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "peermq/status.hpp"

namespace peermq::detail {

// One IPv4 or IPv6 address of an interface.
struct InterfaceAddress {
    int family = 0;                        // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};  // network byte order; IPv4 uses the first 4

    // "127.0.0.1", "fe80::1" (no "%interface" suffix).
    std::string text() const;
};

// One interface: every getifaddrs() entry with its name, merged.
struct NetworkInterface {
    std::string name;
    unsigned index = 0;  // if_nametoindex(); 0 when the interface vanished meanwhile
    unsigned flags = 0;  // IFF_UP, IFF_LOOPBACK, IFF_MULTICAST, ... (the kernel's link flags)
    std::vector<InterfaceAddress> addresses;  // IPv4 and IPv6, in the order reported

    bool up() const;
    bool loopback() const;
    bool multicast() const;
    // The first IPv4 address as text; empty when there is none.
    std::string ipv4() const;
};

// Every interface, in the order getifaddrs() first names them; io_error when it fails.
Result<std::vector<NetworkInterface>> network_interfaces();

// The IPv4 address of interface `name` ("lo" → "127.0.0.1"); unknown_interface if it does not
// exist or has no IPv4 address.
Result<std::string> interface_ipv4(const std::string& name);

// The devices on which the mDNS group 224.0.0.251 is joined in this network namespace
// (/proc/net/igmp): where an mDNS stack of this host (an avahi-daemon, the embedded stack)
// listens. Empty when none, or when the file cannot be read.
std::vector<std::string> mdns_joined_devices();

// Resolves a host name or literal to an IPv4 literal ("localhost" → "127.0.0.1").
Result<std::string> resolve_ipv4(const std::string& host);

}  // namespace peermq::detail
