// peermq_test_node: one node in its own process, driven by the integration, fault and system
// tests (which SIGKILL it, restart it on the same data directory, and read what it did).
//
//   peermq_test_node --name NAME [--interface lo] [--port P] [--peer HOST:PORT]...
//       [--cluster C] [--data-dir DIR] [--durability memory|group_commit|fsync_each]
//       [--discovery static|avahi|embedded|auto]
//       [--consume QUEUE] [--prefetch N] [--fail-payload N] [--log FILE]
//       [--produce QUEUE --count N [--start K]] [--guarantee best_effort|at_least_once|effectively_once]

//
// It prints "READY <inbox endpoint>" once serving. A consumer appends one line per handled
// message to --log ("<payload>\n", flushed at once so a SIGKILL loses nothing written). A
// producer sends --count messages whose payloads are the integers start..start+count-1, calls
// flush() and prints "FLUSHED <count>". It runs until SIGTERM/SIGINT or stdin closes.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

#include "peermq/peermq.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(stderr, "peermq_test_node: %s\n", problem.c_str());
    std::exit(2);
}

peermq::Guarantee parse_guarantee(const std::string& text) {
    if (text == "best_effort") return peermq::Guarantee::best_effort;
    if (text == "at_least_once") return peermq::Guarantee::at_least_once;
    if (text == "effectively_once") return peermq::Guarantee::effectively_once;
    usage("unknown guarantee " + text);
}

peermq::Durability parse_durability(const std::string& text) {
    if (text == "memory") return peermq::Durability::memory;
    if (text == "group_commit") return peermq::Durability::group_commit;
    if (text == "fsync_each") return peermq::Durability::fsync_each;
    usage("unknown durability " + text);
}

}  // namespace

int main(int argc, char** argv) {
    peermq::NodeOptions options;
    options.interface = "lo";
    std::string consume, produce, log_path, discovery = "static";
    std::uint32_t prefetch = 256;
    long long fail_payload = -1;
    std::uint64_t count = 0, start = 0;
    peermq::QueueOptions queue_options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--name") options.name = next();
        else if (arg == "--interface") options.interface = next();
        else if (arg == "--cluster") options.cluster = next();
        else if (arg == "--port") options.inbox_port = static_cast<std::uint16_t>(std::stoi(next()));
        else if (arg == "--peer") options.peers.push_back(next());
        else if (arg == "--data-dir") options.data_dir = next();
        else if (arg == "--durability") options.durability = parse_durability(next());
        else if (arg == "--discovery") discovery = next();
        else if (arg == "--consume") consume = next();
        else if (arg == "--prefetch") prefetch = static_cast<std::uint32_t>(std::stoul(next()));
        else if (arg == "--fail-payload") fail_payload = std::stoll(next());
        else if (arg == "--log") log_path = next();
        else if (arg == "--produce") produce = next();
        else if (arg == "--count") count = std::stoull(next());
        else if (arg == "--start") start = std::stoull(next());
        else if (arg == "--guarantee") queue_options.guarantee = parse_guarantee(next());
        else usage("unknown argument " + arg);
    }
    // Discovery is pinned to the node's interface: never more than the tests allow.
    const peermq::discovery::AvahiOptions avahi{.interfaces = {options.interface}};
    if (discovery == "avahi") options.discovery = peermq::discovery::avahi_daemon(avahi);
    else if (discovery == "embedded") options.discovery = peermq::discovery::embedded(avahi);
    else if (discovery == "auto") options.discovery = peermq::discovery::automatic(avahi);
    else if (discovery != "static") usage("unknown discovery backend " + discovery);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    auto node = peermq::Node::create(options);
    if (!node) {
        std::fprintf(stderr, "peermq_test_node: %s\n", node.status().to_string().c_str());
        return 1;
    }
    std::FILE* log = nullptr;
    std::mutex log_mutex;
    if (!log_path.empty()) {
        log = std::fopen(log_path.c_str(), "a");
        if (!log) usage("cannot open " + log_path);
    }
    if (!consume.empty()) {
        auto status = node->consume(
            consume,
            [&](peermq::Delivery& d) {
                const auto value = d.as<long long>();
                if (value == fail_payload) throw std::runtime_error("poison payload " + std::to_string(value));
                if (log) {
                    std::lock_guard lock(log_mutex);
                    std::fprintf(log, "%lld\n", value);
                    std::fflush(log);
                }
            },
            {.prefetch = prefetch});
        if (!status.ok()) usage(status.to_string());
    }
    std::cout << "READY " << node->inbox_endpoint() << std::endl;

    if (!produce.empty()) {
        auto queue = node->queue(produce, queue_options);
        if (!queue) usage(queue.status().to_string());
        for (std::uint64_t i = 0; i < count; ++i) {
            auto sent = queue->send(static_cast<long long>(start + i));
            if (!sent) {
                std::fprintf(stderr, "send failed: %s\n", sent.status().to_string().c_str());
                return 1;
            }
        }
        auto flushed = queue->flush();
        if (!flushed.ok()) {
            std::fprintf(stderr, "flush failed: %s\n", flushed.to_string().c_str());
            return 1;
        }
        std::cout << "FLUSHED " << count << std::endl;
    }
    // Serve until told to stop: a signal, or the parent closing our stdin.
    std::thread stdin_watch([] {
        char c;
        while (::read(STDIN_FILENO, &c, 1) > 0) {
        }
        g_stop = 1;
    });
    stdin_watch.detach();
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // idle loop, not a sync
    node->close();
    if (log) std::fclose(log);
    return 0;
}
