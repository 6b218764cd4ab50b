// The classic pair, half one: consume "greetings" until interrupted.
// Run `peermq_hello_consumer` in one terminal and `peermq_hello_producer` in another; they find
// each other with mDNS on the loopback interface (an avahi-daemon, or Avahi's embedded stack).
#include <csignal>
#include <cstdio>
#include <thread>

#include <peermq/peermq.hpp>

namespace {
volatile std::sig_atomic_t g_stop = 0;
}

int main() {
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    auto node = peermq::Node::create({
        .name = "hello-consumer",
        .interface = "lo",
        .discovery = peermq::discovery::automatic({.interfaces = {"lo"}}),
    });
    if (!node) {
        std::fprintf(stderr, "hello-consumer: %s\n", node.status().to_string().c_str());
        return 1;
    }
    auto status = node->consume("greetings", [](peermq::Delivery& d) {
        std::printf("got: %s\n", d.as<std::string>().c_str());
        std::fflush(stdout);
    });
    if (!status) {
        std::fprintf(stderr, "hello-consumer: %s\n", status.to_string().c_str());
        return 1;
    }
    std::printf("consuming \"greetings\"; Ctrl-C to stop\n");
    std::fflush(stdout);
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // idle, not a sync
}
