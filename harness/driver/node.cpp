// `peermq_driver node`: one node run by its flags, that the integration, fault, hostile, CLI and
// system tests SIGKILL, SIGSTOP, restart on the same data directory, and read what it did.
//
//   peermq_driver node [node flags (flags.hpp)]
//     consumer (--consume QUEUE): [--log FILE] [--fail-payload N] [--handle-delay-us N]
//       [--stall-after K]
//     producer: [--produce QUEUE --count N [--start K] [--then-count M] [--progress-every P]]
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
// It runs until SIGTERM/SIGINT or stdin closes, then closes its node (BYE to its peers, the last
// group commit). Exit status: 0; 1 when the node or the queue cannot be made, or a send or the
// flush failed (the reason on stderr); 2 for bad arguments.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "driver.hpp"
#include "flags.hpp"
#include "peermq/peermq.hpp"

namespace peermq::driver {
namespace {

// Set by SIGTERM/SIGINT and by stdin closing; read by every thread (lock-free, so signal-safe).
std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop = true; }

std::string stats_line(const NodeStats& stats) {
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

// What the flags ask of the consumer and the producer.
struct Work {
    std::string log_path;
    std::optional<long long> fail_payload;
    long long stall_after = -1;
    long long handle_delay_us = 0;
    std::string produce;
    std::uint64_t count = 0, start = 0, then_count = 0, progress_every = 100;

    bool take(Flags& flags) {
        // clang-format off
        if (flags.is("--log")) log_path = flags.value();
        else if (flags.is("--fail-payload")) fail_payload = static_cast<long long>(flags.number());
        else if (flags.is("--stall-after")) stall_after = static_cast<long long>(flags.number());
        else if (flags.is("--handle-delay-us")) handle_delay_us = static_cast<long long>(flags.number());
        else if (flags.is("--produce")) produce = flags.value();
        else if (flags.is("--count")) count = flags.number();
        else if (flags.is("--start")) start = flags.number();
        else if (flags.is("--then-count")) then_count = flags.number();
        else if (flags.is("--progress-every")) progress_every = std::max<std::uint64_t>(1, flags.number());
        else return false;
        // clang-format on
        return true;
    }
};

// Sends what the producer flags ask for; the exit status (1 when a send or flush failed).
int produce(Node& node, const QueueOptions& queue_options, const Work& work) {
    auto queue = node.queue(work.produce, queue_options);
    if (!queue) {
        std::fprintf(stderr, "queue failed: %s\n", queue.status().to_string().c_str());
        return 1;
    }
    int exit_code = 0;
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
            if (progress && (i + 1) % work.progress_every == 0)
                say("SENT " + std::to_string(i + 1));
        }
        return true;
    };
    if (!send_range(work.start, work.count, false)) {
        // Stopped or failed: no FLUSHED line, the messages were not all sent.
    } else if (auto flushed = queue->flush(); !flushed.ok()) {
        std::fprintf(stderr, "flush failed: %s\n", flushed.to_string().c_str());
        exit_code = 1;
    } else {
        say("FLUSHED " + std::to_string(work.count));
        if (work.then_count > 0) (void)send_range(work.start + work.count, work.then_count, true);
    }
    return exit_code;
}

}  // namespace

int run_node(const std::vector<std::string>& args) {
    Flags flags("node", args);
    NodeFlags node_flags;
    Work work;
    while (flags.next()) {
        if (!node_flags.take(flags) && !work.take(flags)) flags.unknown();
    }
    const NodeOptions options = node_flags.node_options(flags);
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    // SIGUSR1 is blocked in every thread (the node's threads inherit the mask) and taken by the
    // reporter with sigtimedwait, so it never interrupts a system call of the node.
    sigset_t stats_signal;
    sigemptyset(&stats_signal);
    sigaddset(&stats_signal, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stats_signal, nullptr);

    auto node = Node::create(options);
    if (!node) {
        std::fprintf(stderr, "peermq_driver node: %s\n", node.status().to_string().c_str());
        return 1;
    }
    std::FILE* log = nullptr;
    std::mutex log_mutex;
    if (!work.log_path.empty()) {
        log = std::fopen(work.log_path.c_str(), "a");
        if (!log) flags.fail("cannot open " + work.log_path);
    }
    std::atomic<long long> handled{0};
    if (!node_flags.consume.empty()) {
        auto status = node->consume(
            node_flags.consume,
            [&](Delivery& d) {
                if (work.stall_after >= 0 && handled.load() >= work.stall_after) {
                    // A hung handler: holds its dispatcher thread until the process stops.
                    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    throw std::runtime_error("stalled handler interrupted by shutdown");
                }
                const auto value = d.as<long long>();
                if (work.fail_payload && value == *work.fail_payload)
                    throw std::runtime_error("poison payload " + std::to_string(value));
                if (work.handle_delay_us > 0) {
                    std::this_thread::sleep_for(
                        std::chrono::microseconds(work.handle_delay_us));  // work
                }
                if (log) {
                    std::lock_guard lock(log_mutex);
                    std::fprintf(log, "%lld\n", value);
                    std::fflush(log);
                }
                ++handled;
            },
            node_flags.consume_options);
        if (!status.ok()) flags.fail(status.to_string());
    }
    say("READY " + node->address());

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

    const int exit_code = work.produce.empty() ? 0 : produce(*node, node_flags.queue_options, work);
    while (!g_stop && exit_code == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // idle loop, not a sync
    }
    g_stop = true;
    reporter.join();
    node->close();
    if (log) std::fclose(log);
    return exit_code;
}

}  // namespace peermq::driver
