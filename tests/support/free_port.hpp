// Test helper: a loopback tcp port that nothing listens on.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>

namespace peermq::testing {

// A port on 127.0.0.1 that nothing listens on (bound, then released: a test using it to listen
// binds at once). Throws when the system gives none.
//
// The port is drawn below the kernel's ephemeral range (ip_local_port_range): a port the kernel
// handed out with bind(0) goes back into the pool the moment it is released, and any outgoing
// connection of a test running in parallel may take it before the caller binds it (CI saw
// "Address already in use" that way). Below the range only another listener can take it.
inline std::uint16_t free_port() {
    int ephemeral_low = 32768;
    if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) {
        range >> ephemeral_low;
    }
    const int low = 10000;
    const int high = ephemeral_low > low + 1000 ? ephemeral_low - 1 : 30000;
    static thread_local std::mt19937 random{std::random_device{}()};
    std::uniform_int_distribution<int> pick(low, high);
    for (int attempt = 0; attempt < 200; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) break;
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(static_cast<std::uint16_t>(pick(random)));
        const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        ::close(fd);
        if (bound) return ntohs(address.sin_port);
    }
    throw std::runtime_error("cannot find a free port");
}

}  // namespace peermq::testing
