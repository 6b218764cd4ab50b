// Uses an installed peermq::metrics: a node with some acked work, a MetricsServer on an ephemeral
// loopback port, and one scrape of it over a plain socket. Prints the scrape with --print.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <peermq/metrics.hpp>
#include <peermq/peermq.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "metrics_install_check: FAIL: %s\n", what.c_str());
    return 1;
}

// GET `path` from 127.0.0.1:port with HTTP/1.0; the whole response, or "" on error.
std::string http_get(std::uint16_t port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string response;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
            char buffer[65536];
            for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
                response.append(buffer, static_cast<std::size_t>(n));
            }
        }
    }
    ::close(fd);
    return response;
}

}  // namespace

int main(int argc, char** argv) {
    const bool print = argc > 1 && std::string(argv[1]) == "--print";
    auto node = peermq::Node::create({.name = "shop-1", .interface = "lo"});
    if (!node) return fail("Node::create: " + node.status().to_string());
    std::atomic<int> handled{0};
    if (auto s = node->consume("orders", [&](peermq::Delivery&) { ++handled; }); !s.ok()) {
        return fail("consume: " + s.to_string());
    }
    auto orders = node->queue("orders");
    if (!orders) return fail("queue: " + orders.status().to_string());
    for (int i = 0; i < 3; ++i) {
        if (!orders->send(i).ok()) return fail("send");
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (node->stats().queues["orders"].acked < 3) {
        if (std::chrono::steady_clock::now() > deadline)
            return fail("the 3 messages were not acked");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a condition
    }

    auto server = peermq::MetricsServer::start(*node);
    if (!server) return fail("MetricsServer::start: " + server.status().to_string());
    const std::string response = http_get(server->port(), "/metrics");
    const auto body_at = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") == std::string::npos ||
        body_at == std::string::npos) {
        return fail("bad response from " + server->url() + ": " + response.substr(0, 200));
    }
    const std::string body = response.substr(body_at + 4);
    if (body.find("peermq_queue_acked_total{node=\"shop-1\",queue=\"orders\"} 3\n") ==
        std::string::npos) {
        return fail("the scrape lacks the acked counter:\n" + body);
    }
    if (print) std::fputs(body.c_str(), stdout);
    std::printf("metrics_install_check: ok (%s)\n", server->url().c_str());
    server->stop();
    node->close();
    return 0;
}
