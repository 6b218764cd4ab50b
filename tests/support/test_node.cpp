// peermq_test_node: one node in its own process, driven by the integration, fault and system
// tests (which SIGKILL it, SIGSTOP it, restart it on the same data directory, and read what it
// did).
//
//   peermq_test_node --name NAME [--interface lo] [--port P] [--peer HOST:PORT]...
//       [--cluster C] [--data-dir DIR] [--durability memory|group_commit|fsync_each]
//       [--discovery static|avahi|embedded|auto] [--heartbeat-ms N] [--peer-timeout-ms N]
//       [--control ENDPOINT]  (NodeOptions::control_endpoint: "off", "ipc://...", "tcp://...")
//     consumer:
//       [--consume QUEUE] [--prefetch N] [--concurrency N] [--fail-payload N] [--log FILE]
//       [--handle-delay-us N] [--stall-after K]
//     producer:
//       [--produce QUEUE --count N [--start K] [--then-count M] [--progress-every P]]
//       [--guarantee best_effort|at_least_once|effectively_once] [--ttl-ms N]
//       [--max-attempts N] [--retry-initial-ms N] [--retry-max-ms N] [--ack-timeout-ms N]
//       [--max-length N] [--ordered]
//
// It prints "READY <inbox endpoint>" once serving. A consumer appends one line per handled
// message to --log ("<payload>\n", flushed at once so a SIGKILL loses nothing written); its
// handler throws "poison payload <n>" for --fail-payload, sleeps --handle-delay-us per message
// (simulated work), and with --stall-after K handles K messages and then blocks in the handler
// until the process is told to stop (a consumer that hangs while its node stays alive).
// A producer sends --count messages whose payloads are the integers start..start+count-1, calls
// flush() and prints "FLUSHED <count>"; with --then-count M it goes on sending the next M
// integers without flushing, printing "SENT <i>" after every --progress-every of them (default
// 100), so a test can kill it while it is still sending.
// SIGUSR1 makes it print one line "STATS <key>=<value> ..." with, for every queue q in
// Node::stats(), q.sent q.received q.delivered q.handler_errors q.acked q.nacked q.retried
// q.redelivered q.expired q.dead_lettered q.duplicates q.in_flight q.depth, and dropped.<reason>.
// It runs until SIGTERM/SIGINT or stdin closes.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "peermq/peermq.hpp"

namespace {

// Set by SIGTERM/SIGINT and by stdin closing; read by every thread (lock-free, so signal-safe).
std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop = true; }

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

// stdout is shared by the producer (main thread) and the stats reporter: whole lines only.
std::mutex g_out_mutex;
void say(const std::string& line) {
    std::lock_guard lock(g_out_mutex);
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

std::string stats_line(const peermq::NodeStats& stats) {
    std::ostringstream out;
    out << "STATS";
    for (const auto& [name, q] : stats.queues) {
        const std::pair<const char*, std::uint64_t> fields[] = {
            {"sent", q.sent},
            {"received", q.received},
            {"delivered", q.delivered},
            {"handler_errors", q.handler_errors},
            {"acked", q.acked},
            {"nacked", q.nacked},
            {"retried", q.retried},
            {"redelivered", q.redelivered},
            {"expired", q.expired},
            {"dead_lettered", q.dead_lettered},
            {"duplicates", q.duplicates},
            {"in_flight", q.in_flight},
            {"depth", q.depth},
        };
        for (const auto& [field, value] : fields)
            out << ' ' << name << '.' << field << '=' << value;
    }
    for (const auto& [reason, count] : stats.dropped) out << " dropped." << reason << '=' << count;
    return out.str();
}

}  // namespace

int main(int argc, char** argv) {
    peermq::NodeOptions options;
    options.interface = "lo";
    std::string consume, produce, log_path, discovery = "static";
    peermq::ConsumeOptions consume_options;
    std::optional<long long> fail_payload;
    long long stall_after = -1;
    long long handle_delay_us = 0;
    std::uint64_t count = 0, start = 0, then_count = 0, progress_every = 100;
    peermq::QueueOptions queue_options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        auto next_ms = [&] { return std::chrono::milliseconds(std::stoll(next())); };
        auto next_u32 = [&] { return static_cast<std::uint32_t>(std::stoul(next())); };
        auto next_u64 = [&] { return static_cast<std::uint64_t>(std::stoull(next())); };
        // clang-format off
        if (arg == "--name") options.name = next();
        else if (arg == "--interface") options.interface = next();
        else if (arg == "--cluster") options.cluster = next();
        else if (arg == "--port") options.inbox_port = static_cast<std::uint16_t>(next_u32());
        else if (arg == "--peer") options.peers.push_back(next());
        else if (arg == "--data-dir") options.data_dir = next();
        else if (arg == "--durability") options.durability = parse_durability(next());
        else if (arg == "--control") options.control_endpoint = next();
        else if (arg == "--discovery") discovery = next();
        else if (arg == "--heartbeat-ms") options.heartbeat_interval = next_ms();
        else if (arg == "--peer-timeout-ms") options.peer_timeout = next_ms();
        else if (arg == "--consume") consume = next();
        else if (arg == "--prefetch") consume_options.prefetch = next_u32();
        else if (arg == "--concurrency") consume_options.concurrency = next_u32();
        else if (arg == "--fail-payload") fail_payload = std::stoll(next());
        else if (arg == "--stall-after") stall_after = std::stoll(next());
        else if (arg == "--handle-delay-us") handle_delay_us = std::stoll(next());
        else if (arg == "--log") log_path = next();
        else if (arg == "--produce") produce = next();
        else if (arg == "--count") count = next_u64();
        else if (arg == "--start") start = next_u64();
        else if (arg == "--then-count") then_count = next_u64();
        else if (arg == "--progress-every") progress_every = std::max<std::uint64_t>(1, next_u64());
        else if (arg == "--guarantee") queue_options.guarantee = parse_guarantee(next());
        else if (arg == "--ttl-ms") queue_options.ttl = next_ms();
        else if (arg == "--max-attempts") queue_options.max_attempts = next_u32();
        else if (arg == "--retry-initial-ms") queue_options.retry_initial = next_ms();
        else if (arg == "--retry-max-ms") queue_options.retry_max = next_ms();
        else if (arg == "--ack-timeout-ms") queue_options.ack_timeout = next_ms();
        else if (arg == "--max-length") queue_options.max_length = next_u64();
        else if (arg == "--ordered") queue_options.ordered = true;
        else usage("unknown argument " + arg);
        // clang-format on
    }
    // Discovery is pinned to the node's interface: never more than the tests allow.
    const peermq::discovery::AvahiOptions avahi{.interfaces = {options.interface}};
    if (discovery == "avahi")
        options.discovery = peermq::discovery::avahi_daemon(avahi);
    else if (discovery == "embedded")
        options.discovery = peermq::discovery::embedded(avahi);
    else if (discovery == "auto")
        options.discovery = peermq::discovery::automatic(avahi);
    else if (discovery != "static")
        usage("unknown discovery backend " + discovery);
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    // SIGUSR1 is blocked in every thread (the node's threads inherit the mask) and taken by the
    // reporter with sigtimedwait, so it never interrupts a system call of the node.
    sigset_t stats_signal;
    sigemptyset(&stats_signal);
    sigaddset(&stats_signal, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stats_signal, nullptr);

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
    std::atomic<long long> handled{0};
    if (!consume.empty()) {
        auto status = node->consume(
            consume,
            [&](peermq::Delivery& d) {
                if (stall_after >= 0 && handled.load() >= stall_after) {
                    // A hung handler: holds its dispatcher thread until the process stops.
                    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    throw std::runtime_error("stalled handler interrupted by shutdown");
                }
                const auto value = d.as<long long>();
                if (fail_payload && value == *fail_payload)
                    throw std::runtime_error("poison payload " + std::to_string(value));
                if (handle_delay_us > 0) {
                    std::this_thread::sleep_for(
                        std::chrono::microseconds(handle_delay_us));  // work
                }
                if (log) {
                    std::lock_guard lock(log_mutex);
                    std::fprintf(log, "%lld\n", value);
                    std::fflush(log);
                }
                ++handled;
            },
            consume_options);
        if (!status.ok()) usage(status.to_string());
    }
    say("READY " + node->inbox_endpoint());

    // Answers SIGUSR1 while the main thread may be busy sending.
    std::thread reporter([&] {
        const timespec poll_interval{0, 20'000'000};  // to notice g_stop
        while (!g_stop) {
            if (sigtimedwait(&stats_signal, nullptr, &poll_interval) == SIGUSR1) {
                say(stats_line(node->stats()));
            }
        }
    });

    // Stop when told to: a signal, or the parent closing our stdin (also while sending).
    std::thread stdin_watch([] {
        char c;
        while (::read(STDIN_FILENO, &c, 1) > 0) {
        }
        g_stop = true;
    });
    stdin_watch.detach();

    int exit_code = 0;
    if (!produce.empty()) {
        auto queue = node->queue(produce, queue_options);
        if (!queue) usage(queue.status().to_string());
        // False when a send failed (exit code 1) or the process was told to stop meanwhile.
        auto send_range = [&](std::uint64_t first, std::uint64_t n, bool progress) {
            for (std::uint64_t i = 0; i < n; ++i) {
                if (g_stop) return false;
                auto sent = queue->send(static_cast<long long>(first + i));
                if (!sent) {
                    std::fprintf(stderr, "send failed: %s\n", sent.status().to_string().c_str());
                    exit_code = 1;
                    return false;
                }
                if (progress && (i + 1) % progress_every == 0) say("SENT " + std::to_string(i + 1));
            }
            return true;
        };
        if (!send_range(start, count, false)) {
            // Stopped or failed: no FLUSHED line, the messages were not all sent.
        } else if (auto flushed = queue->flush(); !flushed.ok()) {
            std::fprintf(stderr, "flush failed: %s\n", flushed.to_string().c_str());
            exit_code = 1;
        } else {
            say("FLUSHED " + std::to_string(count));
            if (then_count > 0) (void)send_range(start + count, then_count, true);
        }
    }
    while (!g_stop && exit_code == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // idle loop, not a sync
    }
    g_stop = true;
    reporter.join();
    node->close();
    if (log) std::fclose(log);
    return exit_code;
}
