#include "roles.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "peer_process.hpp"
#include "peermq/keys.hpp"
#include "peermq/node.hpp"

namespace peermq::bench {
namespace {

using Clock = std::chrono::steady_clock;

// How long a receiver waits for the rest of a run before it reports a timeout; the parent
// gives up (and kills the child) earlier when a run is badly late.
constexpr auto kRunDeadline = std::chrono::seconds(120);
constexpr int kRecvTimeoutMs = 60'000;
constexpr int kSyncTimeoutMs = 10'000;
constexpr int kTopicHwm = 100'000;

void reply(const std::string& line) {
    const std::string text = line + "\n";
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, text.data() + written, text.size() - written);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            std::_Exit(3);  // the parent is gone
        }
        written += static_cast<std::size_t>(n);
    }
}

std::int64_t nanos(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

std::string flag(const std::vector<std::string>& args, const std::string& name,
                 const std::string& fallback) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == name) return args[i + 1];
    }
    return fallback;
}

// NodeOptions::trust from --trust (open unless given); throws on another word.
TrustMode trust_of(const std::vector<std::string>& args) {
    const std::string trust = flag(args, "--trust", "open");
    if (trust == "open") return TrustMode::open;
    if (trust == "plain") return TrustMode::plain;
    throw std::invalid_argument("bad --trust '" + trust + "': open or plain");
}

bool has_flag(const std::vector<std::string>& args, const std::string& name) {
    return std::find(args.begin(), args.end(), name) != args.end();
}

std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

std::uint64_t count_of(const std::map<std::string, std::uint64_t>& counts, const char* key) {
    const auto it = counts.find(key);
    return it == counts.end() ? 0 : it->second;
}

// The topic roles' extra commands: "run N all" and "stats" (roles.hpp); empty: not served.
struct TopicCommands {
    std::function<void(std::uint64_t)> run_all;
    std::function<std::string()> stats;
};

// Reads commands until "quit" or end of input; `run` serves one "run N", `sync` one "sync",
// `topic` the topic roles' own.
template <typename RunFn, typename SyncFn>
int serve(RunFn run, SyncFn sync, const TopicCommands& topic = {}) {
    std::string line;
    while (std::getline(std::cin, line)) {
        const auto words = split_words(line);
        if (words.empty()) continue;
        if (words[0] == "quit") return 0;
        if (words[0] == "run" && words.size() == 2) {
            run(std::stoull(words[1]));
            continue;
        }
        if (words[0] == "run" && words.size() == 3 && words[2] == "all" && topic.run_all) {
            topic.run_all(std::stoull(words[1]));
            continue;
        }
        if (words[0] == "sync" && words.size() == 1) {
            reply(sync() ? "synced" : "timeout 0 0");
            continue;
        }
        if (words[0] == "stats" && words.size() == 1 && topic.stats) {
            reply(topic.stats());
            continue;
        }
        std::fprintf(stderr, "bench role: unknown command '%s'\n", line.c_str());
        return 2;
    }
    return 0;
}

// The queue and request roles need no "sync": their senders see the connection otherwise.
template <typename RunFn>
int serve(RunFn run) {
    return serve(run, [] { return false; });
}

int zmq_pull(const std::vector<std::string>& args) {
    zmq::context_t context;
    zmq::socket_t pull(context, zmq::socket_type::pull);
    pull.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
    pull.set(zmq::sockopt::linger, 0);
    std::string key;  // with --curve, the public key the sender needs
    if (has_flag(args, "--curve")) {
        auto pair = generate_key_pair();
        if (!pair) {
            std::fprintf(stderr, "bench role: %s\n", pair.status().to_string().c_str());
            return 1;
        }
        // No ZAP handler: any client key may connect (as with peermq's open trust mode).
        pull.set(zmq::sockopt::curve_server, true);
        pull.set(zmq::sockopt::curve_secretkey, pair->secret_key);
        key = " " + pair->public_key;
    }
    pull.bind("tcp://127.0.0.1:*");
    reply("ready " + std::to_string(port_of(pull.get(zmq::sockopt::last_endpoint))) + key);
    zmq::message_t message;
    return serve([&](std::uint64_t n) {
        reply("armed");
        std::uint64_t got = 0;
        Clock::time_point first{};
        // Only the first and the last arrival are timed: a clock read per message would cost
        // the baseline ~10% at millions of messages a second.
        if (n > 0 && pull.recv(message)) {
            first = Clock::now();
            got = 1;
            while (got < n && pull.recv(message)) ++got;  // false on rcvtimeo
        }
        const Clock::time_point last = Clock::now();
        reply(std::string(got == n ? "done " : "timeout ") + std::to_string(got) + " " +
              std::to_string(got == n ? nanos(last - first) : 0));
    });
}

int zmq_rep() {
    zmq::context_t context;
    zmq::socket_t rep(context, zmq::socket_type::rep);
    rep.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
    rep.set(zmq::sockopt::linger, 0);
    rep.bind("tcp://127.0.0.1:*");
    reply("ready " + std::to_string(port_of(rep.get(zmq::sockopt::last_endpoint))));
    zmq::message_t message;
    return serve([&](std::uint64_t n) {
        reply("armed");
        std::uint64_t got = 0;
        while (got < n) {
            if (!rep.recv(message)) break;
            rep.send(message, zmq::send_flags::none);
            ++got;
        }
        reply(std::string(got == n ? "done " : "timeout ") + std::to_string(got) + " 0");
    });
}

// A topic receiver's state, shared by its receive path and the serving thread.
struct TopicRun {
    std::uint64_t number = 0;  // of the current run, from 1
    std::uint64_t got = 0;
    Clock::time_point first{};
    Clock::time_point last{};

    // "done <got> <ns>", or "timeout" when neither all messages nor the end marker came.
    std::string answer(bool complete) const {
        return std::string(complete ? "done " : "timeout ") + std::to_string(got) + " " +
               std::to_string(complete && got > 1 ? nanos(last - first) : 0);
    }
};

int zmq_sub() {
    zmq::context_t context;
    zmq::socket_t sub(context, zmq::socket_type::sub);
    // As peermq's SUB socket (core/src/node/node.cpp), so that both drop at the same depth.
    sub.set(zmq::sockopt::rcvhwm, kTopicHwm);
    sub.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    sub.bind("tcp://127.0.0.1:*");
    reply("ready " + std::to_string(port_of(sub.get(zmq::sockopt::last_endpoint))));
    zmq::message_t message;
    const auto is_control = [&] {
        return message.size() > 0 && *message.data<char>() == kControlByte;
    };
    TopicRun run;
    const auto sync = [&] {
        sub.set(zmq::sockopt::rcvtimeo, kSyncTimeoutMs);
        const bool got = sub.recv(message).has_value();
        sub.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
        return got;
    };
    return serve(
        [&](std::uint64_t n) {
            run = TopicRun{run.number + 1};
            reply("armed");
            bool complete = false;
            while (!complete && sub.recv(message)) {  // false on rcvtimeo
                if (is_control()) {
                    const std::string_view body(message.data<char>() + 1, message.size() - 1);
                    complete = is_end_marker(body, run.number);
                    if (complete) run.last = Clock::now();
                    continue;
                }
                // Only the first and the last arrival are timed, as in zmq_pull().
                if (++run.got == 1) run.first = Clock::now();
                if (run.got == n) {
                    run.last = Clock::now();
                    complete = true;
                }
            }
            reply(run.answer(complete));
        },
        sync);
}

// What the subscriber's handler shares with the serving thread. The handler runs on the
// dispatcher pool, one call at a time; data messages only touch atomics, as in Progress below.
struct TopicProgress {
    std::atomic<std::uint64_t> received{0};  // data messages of every run
    std::atomic<std::uint64_t> end{UINT64_MAX};
    std::atomic<std::int64_t> first_ns{0};
    std::atomic<std::uint64_t> begin{0};
    std::mutex mutex;
    std::condition_variable changed;
    std::uint64_t messages = 0;  // data and control, guarded by mutex (updated on control only)
    std::uint64_t run = 0;       // guarded by mutex
    std::int64_t last_ns = 0;    // guarded by mutex; 0 until the run is complete
    bool all = false;            // guarded by mutex: the run ends at its N-th message only
};

int peermq_subscriber(const std::vector<std::string>& args) {
    NodeOptions options;
    options.name = "bench-subscriber";
    options.cluster = flag(args, "--cluster", "bench");
    set_trust(options, trust_of(args));
    options.interface = "lo";
    auto created = Node::create(options);
    if (!created) {
        std::fprintf(stderr, "bench role: %s\n", created.status().to_string().c_str());
        return 1;
    }
    Node node = std::move(created).value();
    TopicProgress progress;
    SubscribeOptions subscribe_options;
    if (std::find(args.begin(), args.end(), "--reliable") != args.end()) {
        subscribe_options.reliability = TopicReliability::reliable;
    }
    const Status subscribed = node.subscribe(
        kBenchTopic,
        [&progress](const Message& message) {
            const auto now = nanos(Clock::now().time_since_epoch());
            if (message.channel == kBenchTopic) {
                const std::uint64_t n =
                    progress.received.fetch_add(1, std::memory_order_relaxed) + 1;
                if (n == progress.begin.load(std::memory_order_relaxed) + 1) {
                    progress.first_ns.store(now, std::memory_order_relaxed);
                }
                if (n != progress.end.load(std::memory_order_relaxed)) return;
                std::lock_guard lock(progress.mutex);
                progress.last_ns = now;
                progress.changed.notify_all();
                return;
            }
            std::lock_guard lock(progress.mutex);
            ++progress.messages;
            if (is_end_marker(message.payload.view(), progress.run) && progress.last_ns == 0 &&
                !progress.all) {
                progress.last_ns = now;
            }
            progress.changed.notify_all();
        },
        std::move(subscribe_options));
    if (!subscribed.ok()) {
        std::fprintf(stderr, "bench role: %s\n", subscribed.to_string().c_str());
        return 1;
    }
    reply("ready " + std::to_string(port_of(node.inbox_endpoint())) + " " + node.public_key());
    const auto sync = [&] {
        std::unique_lock lock(progress.mutex);
        const std::uint64_t before = progress.messages + progress.received.load();
        return progress.changed.wait_for(lock, std::chrono::milliseconds(kSyncTimeoutMs), [&] {
            return progress.messages + progress.received.load() > before;
        });
    };
    const auto run = [&](std::uint64_t n, bool all) {
        const std::uint64_t begin = progress.received.load();
        {
            std::lock_guard lock(progress.mutex);
            ++progress.run;
            progress.last_ns = 0;
            progress.all = all;
        }
        progress.begin.store(begin);
        progress.end.store(begin + n);
        reply("armed");
        std::unique_lock lock(progress.mutex);
        const bool complete =
            progress.changed.wait_for(lock, kRunDeadline, [&] { return progress.last_ns != 0; });
        TopicRun run;
        run.got = std::min(progress.received.load() - begin, n);
        run.first = Clock::time_point(std::chrono::nanoseconds(progress.first_ns.load()));
        run.last = Clock::time_point(std::chrono::nanoseconds(progress.last_ns));
        reply(run.answer(complete));
    };
    const int status = serve(
        [&](std::uint64_t n) { run(n, false); }, sync,
        TopicCommands{[&](std::uint64_t n) { run(n, true); },
                      [&] {
                          // A reliable subscription's repairs of the data topic (the gaps the runs
                          // forced).
                          const auto stats = node.stats();
                          const auto it = stats.topics.find(kBenchTopic);
                          const ChannelStats bench =
                              it == stats.topics.end() ? ChannelStats{} : it->second;
                          return "stats " + std::to_string(bench.repair_time.count) + " " +
                                 std::to_string(bench.repair_time.quantile_us(0.5)) + " " +
                                 std::to_string(bench.repair_time.quantile_us(0.99)) + " " +
                                 std::to_string(bench.repaired) + " " + std::to_string(bench.lost) +
                                 " " + std::to_string(count_of(stats.dropped, "topic.duplicate")) +
                                 " " + std::to_string(count_of(stats.dropped, "topic.held_full"));
                      }});
    node.close();
    return status;
}

// What the consumer's handler shares with the serving thread. The handler runs on the
// dispatcher pool (concurrency 1: one call at a time); the times are atomics because successive
// calls may run on different pool threads.
struct Progress {
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> begin{0};  // `received` before this run
    std::atomic<std::uint64_t> end{UINT64_MAX};
    std::atomic<std::int64_t> first_ns{0};
    std::atomic<std::int64_t> last_ns{0};  // 0 until the run's last message arrived
    std::mutex mutex;
    std::condition_variable done;
};

int peermq_consumer(const std::vector<std::string>& args) {
    NodeOptions options;
    options.name = "bench-consumer";
    options.cluster = flag(args, "--cluster", "bench");
    set_trust(options, trust_of(args));
    options.interface = "lo";
    options.ack_batch_interval =
        std::chrono::microseconds(std::stoll(flag(args, "--ack-interval-us", "500")));
    // A best-effort producer sending flat out has no credit to slow it: past the default bound
    // of what the handler may have queued (100 000) the node drops (inbox.full), and a run could
    // not count its messages. The figure is the pipeline's rate, so the bound is lifted here.
    options.max_handler_queue = std::numeric_limits<std::size_t>::max();
    options.max_handler_queue_bytes = std::numeric_limits<std::size_t>::max();
    const auto prefetch = static_cast<std::uint32_t>(std::stoul(flag(args, "--prefetch", "1024")));
    auto created = Node::create(options);
    if (!created) {
        std::fprintf(stderr, "bench role: %s\n", created.status().to_string().c_str());
        return 1;
    }
    Node node = std::move(created).value();
    Progress progress;
    const Status consumed = node.consume(
        "bench",
        [&progress](Delivery&) {
            const std::uint64_t n = progress.received.fetch_add(1, std::memory_order_relaxed) + 1;
            if (n == progress.begin.load(std::memory_order_relaxed) + 1) {
                progress.first_ns.store(nanos(Clock::now().time_since_epoch()),
                                        std::memory_order_relaxed);
            }
            if (n == progress.end.load(std::memory_order_relaxed)) {
                progress.last_ns.store(nanos(Clock::now().time_since_epoch()),
                                       std::memory_order_relaxed);
                std::lock_guard lock(progress.mutex);
                progress.done.notify_all();
            }
        },
        ConsumeOptions{.prefetch = prefetch, .concurrency = 1});
    if (!consumed.ok()) {
        std::fprintf(stderr, "bench role: %s\n", consumed.to_string().c_str());
        return 1;
    }
    reply("ready " + std::to_string(port_of(node.inbox_endpoint())) + " " + node.public_key());
    const int status = serve([&](std::uint64_t n) {
        const std::uint64_t begin = progress.received.load();
        progress.last_ns.store(0);
        progress.begin.store(begin);
        progress.end.store(begin + n);
        reply("armed");
        std::unique_lock lock(progress.mutex);
        const bool complete = progress.done.wait_for(lock, kRunDeadline,
                                                     [&] { return progress.last_ns.load() != 0; });
        const std::uint64_t got = progress.received.load() - begin;
        const std::int64_t elapsed = progress.last_ns.load() - progress.first_ns.load();
        reply(std::string(complete ? "done " : "timeout ") + std::to_string(got) + " " +
              std::to_string(complete ? elapsed : 0));
    });
    node.close();
    return status;
}

}  // namespace

void set_trust(NodeOptions& options, TrustMode trust) {
    options.trust = trust;
    if (trust != TrustMode::plain || options.log_sink) return;
    const char* env = std::getenv("PEERMQ_LOG_FORMAT");
    const LogFormat format =
        parse_log_format(env != nullptr ? env : "").value_or(LogFormat::logfmt);
    options.log_sink = [format](const LogRecord& record) {
        if (record.component == "node" && record.message.starts_with("trust mode plain")) return;
        const std::string line = format_log_record(record, format) + "\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
    };
}

std::string end_marker(std::uint64_t run) { return "e" + std::to_string(run); }

bool is_end_marker(std::string_view body, std::uint64_t run) { return body == end_marker(run); }

int run_role(const std::vector<std::string>& args) {
    // Dies with the parent, so an interrupted benchmark leaves nothing behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) return 1;
    std::signal(SIGPIPE, SIG_IGN);
    try {
        if (args.empty()) return 2;
        if (args[0] == kRoleZmqPull) return zmq_pull(args);
        if (args[0] == kRoleZmqRep) return zmq_rep();
        if (args[0] == kRoleZmqSub) return zmq_sub();
        if (args[0] == kRolePeermqConsumer) return peermq_consumer(args);
        if (args[0] == kRolePeermqSubscriber) return peermq_subscriber(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench role %s: %s\n", args[0].c_str(), e.what());
        return 1;
    }
    std::fprintf(stderr, "bench: unknown role '%s'\n", args[0].c_str());
    return 2;
}

}  // namespace peermq::bench
