// peermq_bench: peermq throughput and latency, each figure measured beside raw ZeroMQ in the
// same run, over tcp loopback, with the receiving peer in a separate process (peermq_driver bench).
// See README.md.
//
//   peermq_bench [--quick] [--scenario NAME[,NAME...]] [--runs N] [--seconds S] [--size B,...]
//                [--trust open|plain]
//   NAME: raw, best_effort, memory, group_commit, latency (these five by default), secure,
//         topic, repair, all
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "links.hpp"
#include "measure.hpp"
#include "peer_process.hpp"
#include "peermq/options.hpp"
#include "sample_stats.hpp"

#ifndef PEERMQ_DRIVER
#error "PEERMQ_DRIVER must be defined by the build"
#endif

namespace peermq::bench {
namespace {

const std::vector<std::size_t> kSizes = {64, 1024};
constexpr std::size_t kLatencySize = 64;
constexpr std::size_t kMinRun = 10'000;
constexpr std::size_t kMaxRun = 5'000'000;
constexpr std::size_t kLatencyWarmup = 200;

// Run when no --scenario is given.
const std::vector<std::string> kScenarios = {"raw", "best_effort", "memory", "group_commit",
                                             "latency"};
// Only when asked for (or "all"): the security comparison runs four links per figure; topics
// three (best effort, reliable, reliable beside a dead follower).
const std::vector<std::string> kExtraScenarios = {"secure", "topic", "repair"};

// Scenario repair: messages published while the subscriber process is stopped, past what its
// publisher's PUB (high-water mark 100 000) and the kernel's buffers hold.
constexpr std::size_t kRepairBurst = 300'000;
// Scenario topic, "nothing lost": the publisher's history holds a whole run (runs of ~0.6 s are
// about 150 000 messages here).
constexpr std::size_t kWholeRunHistory = 2'000'000;

struct Settings {
    int runs = 5;
    double seconds = 0.6;                 // target length of one throughput run
    std::size_t latency_messages = 2000;  // round trips per latency run
    std::set<std::string> scenarios;
    std::vector<std::size_t> sizes = kSizes;             // throughput payload sizes
    std::size_t max_length = QueueOptions{}.max_length;  // the library's default
    std::uint32_t prefetch = BenchContext{}.prefetch;
    TrustMode trust = NodeOptions{}.trust;  // of the peermq nodes outside scenario "secure"
    bool no_raw = false;                    // profiling: peermq runs only
    bool verbose = false;                   // every run's size and rate on stderr
};

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: peermq_bench [--quick] [--scenario NAME[,NAME...]] [--runs N] "
        "[--seconds S] [--size B[,B]] [--trust open|plain]\n"
        "  --quick        3 runs of ~0.3 s per figure, 1000 round trips per latency run\n"
        "  --scenario     raw, best_effort, memory, group_commit, latency (these five by\n"
        "                 default), secure, topic, repair, or all (repeatable). secure:\n"
        "                 best_effort and at_least_once with peermq in trust mode open and plain\n"
        "                 beside raw ZeroMQ with and without CURVE, their runs in turn;\n"
        "                 topic: best_effort and reliable subscriptions, reliable with a\n"
        "                 second follower SIGKILLed, and reliable with nothing lost (a\n"
        "                 history that holds the run), beside raw PUB->SUB; repair:\n"
        "                 a reliable subscriber stopped while a burst past the high-water\n"
        "                 mark is published, then continued: time until it has all of it\n"
        "  --runs N       runs per figure (median shown; default 5)\n"
        "  --seconds S    target length of one throughput run (default 0.6)\n"
        "  --size B[,B]   throughput payload sizes in bytes (default 64,1024)\n"
        "  --max-length N QueueOptions::max_length of the throughput queues (default: "
        "the library's, 100000;\n"
        "                 the producer outruns the pipeline, so send() blocks at it)\n"
        "  --prefetch N   ConsumeOptions::prefetch of the consumer (default 1024)\n"
        "  --trust MODE   NodeOptions::trust of the peermq nodes, open (CurveZMQ, the\n"
        "                 default) or plain; scenario secure always measures both\n"
        "  --no-raw       throughput: peermq runs only, no ratios (for profiling peermq)\n"
        "  --verbose      every run's message count and rate on stderr\n");
}

std::optional<Settings> parse(int argc, char** argv) {
    Settings settings;
    bool quick = false;
    std::optional<int> runs;
    std::optional<double> seconds;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= argc) return std::nullopt;
            return std::string(argv[++i]);
        };
        if (arg == "--quick") {
            quick = true;
        } else if (arg == "--scenario") {
            auto names = value();
            if (!names) return std::nullopt;
            std::string list = *names;
            std::replace(list.begin(), list.end(), ',', ' ');
            for (const auto& name : split_words(list)) {
                if (name == "all") {
                    settings.scenarios.insert(kScenarios.begin(), kScenarios.end());
                    settings.scenarios.insert(kExtraScenarios.begin(), kExtraScenarios.end());
                } else if (std::find(kScenarios.begin(), kScenarios.end(), name) !=
                               kScenarios.end() ||
                           std::find(kExtraScenarios.begin(), kExtraScenarios.end(), name) !=
                               kExtraScenarios.end()) {
                    settings.scenarios.insert(name);
                } else {
                    std::fprintf(stderr, "peermq_bench: unknown scenario '%s'\n", name.c_str());
                    return std::nullopt;
                }
            }
        } else if (arg == "--runs") {
            auto text = value();
            if (!text) return std::nullopt;
            runs = std::atoi(text->c_str());
            if (*runs < 1) return std::nullopt;
        } else if (arg == "--seconds") {
            auto text = value();
            if (!text) return std::nullopt;
            seconds = std::atof(text->c_str());
            if (*seconds <= 0) return std::nullopt;
        } else if (arg == "--size") {
            auto text = value();
            if (!text) return std::nullopt;
            std::string list = *text;
            std::replace(list.begin(), list.end(), ',', ' ');
            settings.sizes.clear();
            for (const auto& word : split_words(list)) {
                const long long size = std::atoll(word.c_str());
                if (size < 1 || size > (16 << 20)) return std::nullopt;
                settings.sizes.push_back(static_cast<std::size_t>(size));
            }
            if (settings.sizes.empty()) return std::nullopt;
        } else if (arg == "--max-length") {
            auto text = value();
            if (!text) return std::nullopt;
            const long long n = std::atoll(text->c_str());
            if (n < 1) return std::nullopt;
            settings.max_length = static_cast<std::size_t>(n);
        } else if (arg == "--prefetch") {
            auto text = value();
            if (!text) return std::nullopt;
            const long long n = std::atoll(text->c_str());
            if (n < 1 || n > 1'000'000) return std::nullopt;
            settings.prefetch = static_cast<std::uint32_t>(n);
        } else if (arg == "--trust") {
            auto text = value();
            if (!text) return std::nullopt;
            if (*text == "open") {
                settings.trust = TrustMode::open;
            } else if (*text == "plain") {
                settings.trust = TrustMode::plain;
            } else {
                std::fprintf(stderr, "peermq_bench: --trust takes open or plain\n");
                return std::nullopt;
            }
        } else if (arg == "--no-raw") {
            settings.no_raw = true;
        } else if (arg == "--verbose") {
            settings.verbose = true;
        } else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "peermq_bench: unknown argument '%s'\n", arg.c_str());
            return std::nullopt;
        }
    }
    if (quick) {
        settings.runs = 3;
        settings.seconds = 0.3;
        settings.latency_messages = 1000;
    }
    if (runs) settings.runs = *runs;
    if (seconds) settings.seconds = *seconds;
    if (settings.scenarios.empty()) settings.scenarios.insert(kScenarios.begin(), kScenarios.end());
    return settings;
}

struct Goal {
    double ratio = 0;
    bool at_most = false;  // latency: peermq/raw must not exceed `ratio`
};

struct Tally {
    int met = 0;
    int missed = 0;
    int failed = 0;
};

std::string judge(const Goal& goal, double ratio, Tally& tally) {
    const bool met = goal.at_most ? ratio <= goal.ratio : ratio >= goal.ratio;
    ++(met ? tally.met : tally.missed);
    char text[48];
    std::snprintf(text, sizeof text, "%s%.2f %s", goal.at_most ? "<=" : ">=", goal.ratio,
                  met ? "met" : "MISSED");
    return text;
}

// Sizes the runs to last about `seconds`: a fixed warm-up run (connections, allocator, page
// cache), then a sizing run of about a third of the target, whose rate sets the run size. One
// run alone misjudges when the warm-up hits a slow moment (a connection still being set up).
Result<std::size_t> calibrate(ThroughputLink& link, std::size_t warmup, const Settings& settings,
                              const char* what) {
    auto first = link.run(warmup);
    if (!first) return first.status();
    const auto sizing_n = std::clamp(static_cast<std::size_t>(first.value() * settings.seconds / 3),
                                     kMinRun, kMaxRun);
    auto rate = link.run(sizing_n);
    if (!rate) return rate.status();
    const double wanted = rate.value() * settings.seconds;
    const std::size_t n = std::clamp(static_cast<std::size_t>(wanted), kMinRun, kMaxRun);
    if (settings.verbose) {
        std::fprintf(
            stderr, "  %s warm-up: %zu messages at %s msg/s, %zu at %s msg/s; runs of %zu\n", what,
            warmup, grouped(first.value()).c_str(), sizing_n, grouped(rate.value()).c_str(), n);
    }
    return n;
}

struct ThroughputFigure {
    std::vector<double> peermq;
    std::vector<double> raw;
    std::optional<RepairFigures> repairs;  // a reliable topic subscriber's, after the runs
};

// Topics: raw PUB -> SUB interleaved with a peermq topic link of `context` (best effort,
// reliable, or reliable with a dead follower).
Result<ThroughputFigure> measure_topic(const BenchContext& context, const Settings& settings,
                                       std::size_t size) {
    std::unique_ptr<ThroughputLink> raw;
    if (!settings.no_raw) {
        auto started = start_raw_pub(context, size);
        if (!started) return started.status();
        raw = std::move(started).value();
    }
    auto started = start_peermq_topic(context, size);
    if (!started) return started.status();
    std::unique_ptr<ThroughputLink> peermq = std::move(started).value();
    std::size_t raw_n = 0;
    if (raw) {
        auto n = calibrate(*raw, 50'000, settings, "raw");
        if (!n) return n.status();
        raw_n = n.value();
    }
    auto peermq_n = calibrate(*peermq, 20'000, settings, "peermq");
    if (!peermq_n) return peermq_n.status();
    auto samples = alternate_runs(raw.get(), peermq.get(), raw_n, peermq_n.value(), settings.runs);
    if (!samples) return samples.status();
    if (settings.verbose) {
        std::fprintf(stderr, "  topic: peermq lost %llu, raw lost %llu\n",
                     static_cast<unsigned long long>(peermq->lost()),
                     static_cast<unsigned long long>(raw ? raw->lost() : 0));
    }
    ThroughputFigure figure{std::move(samples->peermq), std::move(samples->raw)};
    if (context.reliable_topic) {
        // The gaps the runs forced (the publisher goes flat out, past its PUB's high-water
        // mark) and how long the subscriber waited for their repair.
        auto repairs = peermq->repairs();
        if (!repairs) return repairs.status();
        figure.repairs = repairs.value();
    }
    if (raw) {
        if (Status stopped = raw->stop(); !stopped.ok()) return stopped;
    }
    if (Status stopped = peermq->stop(); !stopped.ok()) return stopped;
    return figure;
}

// A figure's peermq median against its own raw runs' (the machine's load moves between links).
double vs_raw(const ThroughputFigure& figure) {
    return median(figure.peermq) / std::max(1.0, median(figure.raw));
}

struct RepairFigure {
    std::vector<double> peermq_s;  // recovery of each round: SIGCONT to the whole burst
    std::vector<double> raw_s;     // raw PUB->SUB: SIGCONT to the end marker
    std::size_t peermq_got = 0;    // over every round
    std::size_t raw_got = 0;
    std::size_t sent = 0;  // per link, over every round
    RepairFigures repairs;
};

// A forced gap: the subscriber process is stopped (SIGSTOP) while a burst is published, and
// continued; a reliable subscription gets the whole burst (what the PUB dropped is repaired from
// the publisher's history, sized for it), raw PUB->SUB drains what was buffered and loses the
// rest. Their rounds in turn.
Result<RepairFigure> measure_repair(const BenchContext& context, const Settings& settings,
                                    std::size_t size) {
    RepairFigure figure;
    BenchContext reliable = context;
    reliable.reliable_topic = true;
    reliable.topic_history = kRepairBurst;
    auto peermq = start_peermq_topic(reliable, size);
    if (!peermq) return peermq.status();
    std::unique_ptr<ThroughputLink> raw;
    if (!settings.no_raw) {
        auto started = start_raw_pub(context, size);
        if (!started) return started.status();
        raw = std::move(started).value();
    }
    for (int round = 0; round < settings.runs; ++round) {
        if (raw) {
            auto run = raw->run_paused(kRepairBurst, false);
            if (!run) return run.status();
            figure.raw_s.push_back(run->recovery_s);
            figure.raw_got += run->got;
        }
        auto run = peermq.value()->run_paused(kRepairBurst, true);
        if (!run) return run.status();
        figure.peermq_s.push_back(run->recovery_s);
        figure.peermq_got += run->got;
        figure.sent += kRepairBurst;
        if (settings.verbose) {
            std::fprintf(stderr, "  repair round %d: %zu of %zu in %.3f s\n", round + 1, run->got,
                         kRepairBurst, run->recovery_s);
        }
    }
    auto repairs = peermq.value()->repairs();
    if (!repairs) return repairs.status();
    if (repairs.value()) figure.repairs = *repairs.value();
    if (raw) {
        if (Status stopped = raw->stop(); !stopped.ok()) return stopped;
    }
    if (Status stopped = peermq.value()->stop(); !stopped.ok()) return stopped;
    return figure;
}

// The subscriber's gaps and what closing them cost (`stats` of its role, roles.hpp).
void print_gaps(const RepairFigures& r) {
    const auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
    const auto count = [](std::uint64_t n) { return grouped(static_cast<double>(n)); };
    std::printf(
        "   its gaps: %s closed by repair, open p50 <=%.1f ms, p99 <=%.1f ms (repair_time "
        "buckets); %s messages repaired, %s lost; dropped %s as duplicates, %s past its held "
        "bound\n",
        count(r.gaps).c_str(), ms(r.p50_us), ms(r.p99_us), count(r.repaired).c_str(),
        count(r.lost).c_str(), count(r.duplicates).c_str(), count(r.held_full).c_str());
}

void print_repair(std::size_t size, const Result<RepairFigure>& figure) {
    if (!figure) {
        std::printf("7. topic reliable, a forced gap        %zu B  FAILED: %s\n", size,
                    figure.status().to_string().c_str());
        return;
    }
    const RepairFigure& f = figure.value();
    const auto ms = [](double s) { return s * 1000.0; };
    const auto percent = [](std::size_t got, std::size_t sent) {
        return sent == 0 ? 0.0 : 100.0 * static_cast<double>(got) / static_cast<double>(sent);
    };
    const double peermq_p50 = median(f.peermq_s);
    const double raw_p50 = f.raw_s.empty() ? 0 : median(f.raw_s);
    std::printf(
        "7. topic reliable, a forced gap  %5zu B  recovery p50 %8.1f ms  max %8.1f ms  "
        "got %5.1f %%   raw: %8.1f ms, got %5.1f %%   ratio %.1f\n",
        size, ms(peermq_p50), ms(*std::max_element(f.peermq_s.begin(), f.peermq_s.end())),
        percent(f.peermq_got, f.sent), ms(raw_p50), percent(f.raw_got, f.sent),
        raw_p50 > 0 ? peermq_p50 / raw_p50 : 0.0);
    print_gaps(f.repairs);
}

// "   its gaps: 4 closed by repair, open p50 <=2097.2 ms, ...": a reliable subscriber's repairs.
void print_repairs(const Result<ThroughputFigure>& figure) {
    if (figure && figure->repairs) print_gaps(*figure->repairs);
}

// Raw ZeroMQ runs interleaved with peermq runs (when `mode` is set), so that both see the same
// machine load.
Result<ThroughputFigure> measure_throughput(const BenchContext& context, const Settings& settings,
                                            std::optional<PeermqMode> mode, std::size_t size) {
    std::unique_ptr<ThroughputLink> raw;
    std::unique_ptr<ThroughputLink> peermq;
    if (!mode || !settings.no_raw) {
        auto started = start_raw_push(context, size);
        if (!started) return started.status();
        raw = std::move(started).value();
    }
    if (mode) {
        auto started = start_peermq_queue(context, flow_of(*mode), size);
        if (!started) return started.status();
        peermq = std::move(started).value();
    }
    std::size_t raw_n = 0;
    std::size_t peermq_n = 0;
    if (raw) {
        auto n = calibrate(*raw, 50'000, settings, "raw");
        if (!n) return n.status();
        raw_n = n.value();
    }
    if (peermq) {
        auto n = calibrate(*peermq, 20'000, settings, "peermq");
        if (!n) return n.status();
        peermq_n = n.value();
    }
    auto samples = alternate_runs(raw.get(), peermq.get(), raw_n, peermq_n, settings.runs,
                                  [&](const char* side, int run, std::size_t, double rate) {
                                      if (settings.verbose) {
                                          std::fprintf(stderr, "  %s run %d: %s msg/s\n", side, run,
                                                       grouped(rate).c_str());
                                      }
                                  });
    if (!samples) return samples.status();
    ThroughputFigure figure{std::move(samples->peermq), std::move(samples->raw)};
    if (raw) {
        if (Status stopped = raw->stop(); !stopped.ok()) return stopped;
    }
    if (peermq) {
        if (Status stopped = peermq->stop(); !stopped.ok()) return stopped;
    }
    return figure;
}

// Scenario "secure": what CurveZMQ costs. Four links of one flow and size, their runs in turn
// so that all four see the same load: raw ZeroMQ without and with CURVE, peermq with both nodes
// in trust mode plain and in trust mode open.
struct SecurityFigure {
    std::vector<double> raw, raw_curve, plain, secure;  // msg/s of each run
};

Result<SecurityFigure> measure_security(const BenchContext& context, const Settings& settings,
                                        PeermqMode mode, std::size_t size) {
    BenchContext plain = context;
    plain.trust = TrustMode::plain;
    BenchContext secure = context;
    secure.trust = TrustMode::open;
    struct Side {
        const char* name;
        bool raw;  // left out with --no-raw
        std::size_t warmup;
        std::function<Result<std::unique_ptr<ThroughputLink>>()> start;
        std::unique_ptr<ThroughputLink> link;
        std::size_t n = 0;
    };
    Side sides[] = {
        {"raw", true, 50'000, [&] { return start_raw_push(context, size, RawSecurity::plain); }},
        {"raw CURVE", true, 50'000,
         [&] { return start_raw_push(context, size, RawSecurity::curve); }},
        {"peermq plain", false, 20'000,
         [&] { return start_peermq_queue(plain, flow_of(mode), size); }},
        {"peermq secure", false, 20'000,
         [&] { return start_peermq_queue(secure, flow_of(mode), size); }},
    };
    for (auto& side : sides) {
        if (settings.no_raw && side.raw) continue;
        auto started = side.start();
        if (!started) return started.status();
        side.link = std::move(started).value();
    }
    std::vector<ThroughputLink*> links;
    std::vector<std::size_t> counts;
    for (auto& side : sides) {
        if (side.link) {
            auto n = calibrate(*side.link, side.warmup, settings, side.name);
            if (!n) return n.status();
            side.n = n.value();
        }
        links.push_back(side.link.get());
        counts.push_back(side.n);
    }
    auto rates = round_robin_runs(
        links, counts, settings.runs, [&](std::size_t link, int run, std::size_t, double rate) {
            if (settings.verbose) {
                std::fprintf(stderr, "  %s run %d: %s msg/s\n", sides[link].name, run,
                             grouped(rate).c_str());
            }
        });
    if (!rates) return rates.status();
    for (auto& side : sides) {
        if (!side.link) continue;
        if (Status stopped = side.link->stop(); !stopped.ok()) return stopped;
    }
    auto& r = rates.value();
    return SecurityFigure{std::move(r[0]), std::move(r[1]), std::move(r[2]), std::move(r[3])};
}

struct LatencyFigure {
    std::vector<double> p50, p99, raw_p50, raw_p99;
};

Result<LatencyFigure> measure_latency(const BenchContext& context, std::size_t messages, int runs,
                                      std::chrono::microseconds ack_interval) {
    auto raw = start_raw_reqrep(context, kLatencySize);
    if (!raw) return raw.status();
    auto peermq =
        start_peermq_confirmed(context, flow_of(PeermqMode::memory), kLatencySize, ack_interval);
    if (!peermq) return peermq.status();
    auto samples =
        alternate_round_trips(*raw.value(), *peermq.value(), kLatencyWarmup, messages, runs);
    if (!samples) return samples.status();
    LatencyFigure figure{std::move(samples->p50), std::move(samples->p99),
                         std::move(samples->raw_p50), std::move(samples->raw_p99)};
    if (Status stopped = raw.value()->stop(); !stopped.ok()) return stopped;
    if (Status stopped = peermq.value()->stop(); !stopped.ok()) return stopped;
    return figure;
}

void print_throughput_header() {
    std::printf("\n%-36s %7s %13s %8s %13s %8s %6s %7s  %s\n", "Throughput", "size", "peermq msg/s",
                "MB/s", "raw msg/s", "MB/s", "ratio", "spread", "goal");
}

void print_throughput_row(const std::string& label, std::size_t size,
                          const Result<ThroughputFigure>& figure, std::optional<Goal> goal,
                          Tally& tally) {
    if (!figure) {
        ++tally.failed;
        std::printf("%-36s %7s  FAILED: %s\n", label.c_str(), size_label(size).c_str(),
                    figure.status().to_string().c_str());
        std::fflush(stdout);
        return;
    }
    const double raw = median(figure->raw);
    const double mb = static_cast<double>(size) / 1e6;
    if (figure->raw.empty()) {  // --no-raw
        const double rate = median(figure->peermq);
        std::printf("%-36s %7s %13s %8.1f %13s %8s %6s %6.0f%%\n", label.c_str(),
                    size_label(size).c_str(), grouped(rate).c_str(), rate * mb, "-", "-", "-",
                    spread(figure->peermq) * 100);
    } else if (figure->peermq.empty()) {
        std::printf("%-36s %7s %13s %8s %13s %8.1f %6s %6.0f%%\n", label.c_str(),
                    size_label(size).c_str(), "-", "-", grouped(raw).c_str(), raw * mb, "1.00",
                    spread(figure->raw) * 100);
    } else {
        const double rate = median(figure->peermq);
        const double ratio = raw > 0 ? rate / raw : 0;
        std::printf("%-36s %7s %13s %8.1f %13s %8.1f %6.2f %6.0f%%  %s\n", label.c_str(),
                    size_label(size).c_str(), grouped(rate).c_str(), rate * mb,
                    grouped(raw).c_str(), raw * mb, ratio, spread(figure->peermq) * 100,
                    goal ? judge(*goal, ratio, tally).c_str() : "");
    }
    std::fflush(stdout);
}

void print_security_header() {
    std::printf(
        "\nSecurity, msg/s: secure = peermq in trust mode open (CurveZMQ), plain = trust mode "
        "plain,\n  raw = ZeroMQ PUSH->PULL, raw CURVE = the same with CURVE (no ZAP); "
        "s/X = secure / X\n");
    std::printf("%-32s %7s %12s %12s %12s %12s %7s %6s %7s %7s  %s\n", "", "size", "secure",
                "plain", "raw", "raw CURVE", "s/plain", "s/raw", "s/CURVE", "spread", "goals");
}

// A goal of a security row at 64 B: secure / plain peermq or secure / raw CURVE.
struct SecurityGoal {
    bool to_plain;  // else to raw CURVE
    double goal;
};

void print_security_row(const std::string& label, std::size_t size,
                        const Result<SecurityFigure>& figure,
                        const std::vector<SecurityGoal>& goals, Tally& tally) {
    if (!figure) {
        ++tally.failed;
        std::printf("%-32s %7s  FAILED: %s\n", label.c_str(), size_label(size).c_str(),
                    figure.status().to_string().c_str());
        std::fflush(stdout);
        return;
    }
    const auto rate = [](const std::vector<double>& runs) {
        return runs.empty() ? std::string("-") : grouped(median(runs));
    };
    const double secure = median(figure->secure);
    // secure / the median of `runs`, or nothing when that side did not run (--no-raw).
    const auto ratio_to = [&](const std::vector<double>& runs) -> std::optional<double> {
        const double other = median(runs);
        if (runs.empty() || other <= 0) return std::nullopt;
        return secure / other;
    };
    const auto ratio_text = [](std::optional<double> ratio) {
        char text[16];
        if (!ratio) return std::string("-");
        std::snprintf(text, sizeof text, "%.2f", *ratio);
        return std::string(text);
    };
    const auto to_plain = ratio_to(figure->plain);
    const auto to_raw = ratio_to(figure->raw);
    const auto to_curve = ratio_to(figure->raw_curve);
    std::string judged;
    for (const auto& goal : goals) {
        const auto ratio = goal.to_plain ? to_plain : to_curve;
        if (!ratio) continue;
        if (!judged.empty()) judged += ", ";
        judged += std::string(goal.to_plain ? "s/plain " : "s/CURVE ") +
                  judge(Goal{goal.goal}, *ratio, tally);
    }
    std::printf("%-32s %7s %12s %12s %12s %12s %7s %6s %7s %6.0f%%  %s\n", label.c_str(),
                size_label(size).c_str(), rate(figure->secure).c_str(), rate(figure->plain).c_str(),
                rate(figure->raw).c_str(), rate(figure->raw_curve).c_str(),
                ratio_text(to_plain).c_str(), ratio_text(to_raw).c_str(),
                ratio_text(to_curve).c_str(), spread(figure->secure) * 100, judged.c_str());
    std::fflush(stdout);
}

void print_latency_header(std::size_t messages, int runs) {
    std::printf("\nLatency, %zu B, one message at a time, %zu round trips per run, %d runs\n",
                kLatencySize, messages, runs);
    std::printf("%-52s %9s %9s %9s %9s %6s  %s\n", "", "p50 us", "p99 us", "raw p50", "raw p99",
                "p50 x", "goal");
}

void print_latency_row(const std::string& label, const Result<LatencyFigure>& figure,
                       std::optional<Goal> goal, Tally& tally) {
    if (!figure) {
        ++tally.failed;
        std::printf("%-52s FAILED: %s\n", label.c_str(), figure.status().to_string().c_str());
        std::fflush(stdout);
        return;
    }
    const double p50 = median(figure->p50);
    const double raw_p50 = median(figure->raw_p50);
    const double ratio = raw_p50 > 0 ? p50 / raw_p50 : 0;
    std::printf("%-52s %9.1f %9.1f %9.1f %9.1f %6.2f  %s\n", label.c_str(), p50,
                median(figure->p99), raw_p50, median(figure->raw_p99), ratio,
                goal ? judge(*goal, ratio, tally).c_str() : "");
    std::fflush(stdout);
}

int bench_main(int argc, char** argv) {
    auto parsed = parse(argc, argv);
    if (!parsed) {
        usage(stderr);
        return 2;
    }
    const Settings& settings = *parsed;
    std::signal(SIGPIPE, SIG_IGN);
    // Static peers only: a PEERMQ_PEERS from the environment would add strangers.
    ::unsetenv("PEERMQ_PEERS");
    const BenchContext context{.executable = PEERMQ_DRIVER,
                               .role_prefix = {"bench"},
                               .cluster = "bench" + std::to_string(::getpid()),
                               .max_length = settings.max_length,
                               .prefetch = settings.prefetch,
                               .trust = settings.trust};

    std::printf(
        "peermq_bench: peermq beside raw ZeroMQ (%s) measured in the same "
        "run;\n  tcp loopback 127.0.0.1, the receiving peer is a separate process\n",
        zmq_version_string().c_str());
    std::printf("cores: %u   load average at start: %s\n", std::thread::hardware_concurrency(),
                load_average().c_str());
    std::printf(
        "peermq trust mode: %s%s; raw ZeroMQ without CURVE (scenario secure: both, with and "
        "without)\n",
        trust_name(settings.trust),
        settings.trust == TrustMode::open ? " (CurveZMQ on every link)" : "");
    std::printf(
        "runs per figure: %d (median shown), throughput runs of ~%.1f s, raw and peermq "
        "runs interleaved\n",
        settings.runs, settings.seconds);
    std::printf(
        "NOTE: this machine is noisy (shared, others compiling): absolute rates move "
        "from run to run;\n      the ratios peermq/raw are what matter. spread = "
        "(max-min)/median of the peermq runs.\n");
    std::fflush(stdout);

    const auto selected = [&](const char* name) { return settings.scenarios.contains(name); };
    Tally tally;
    const bool any_throughput = selected("raw") || selected("best_effort") || selected("memory") ||
                                selected("group_commit");
    if (any_throughput) print_throughput_header();
    struct ThroughputScenario {
        const char* name;
        const char* label;
        std::optional<PeermqMode> mode;
        std::optional<Goal> goal_64;
    };
    const ThroughputScenario scenarios[] = {
        {"raw", "1. raw ZeroMQ PUSH->PULL (baseline)", std::nullopt, std::nullopt},
        {"best_effort", "2. peermq best_effort", PeermqMode::best_effort, Goal{0.6}},
        {"memory", "3. at_least_once memory, acked", PeermqMode::memory, Goal{0.4}},
        {"group_commit", "3. at_least_once group_commit, acked", PeermqMode::group_commit,
         Goal{0.1}},
    };
    for (const auto& scenario : scenarios) {
        if (!selected(scenario.name)) continue;
        for (std::size_t size : settings.sizes) {
            auto figure = guarded<ThroughputFigure>(
                [&] { return measure_throughput(context, settings, scenario.mode, size); });
            print_throughput_row(scenario.label, size, figure,
                                 size == 64 ? scenario.goal_64 : std::nullopt, tally);
        }
    }

    if (selected("secure")) {
        print_security_header();
        struct SecurityScenario {
            const char* label;
            PeermqMode mode;
            std::vector<SecurityGoal> goals_64;
        };
        const SecurityScenario security[] = {
            {"5. best_effort", PeermqMode::best_effort, {{false, 2.0}}},
            {"5. at_least_once memory, acked", PeermqMode::memory, {{true, 0.8}, {false, 2.0}}},
        };
        for (const auto& scenario : security) {
            for (std::size_t size : settings.sizes) {
                auto figure = guarded<SecurityFigure>(
                    [&] { return measure_security(context, settings, scenario.mode, size); });
                print_security_row(scenario.label, size, figure,
                                   size == 64 ? scenario.goals_64 : std::vector<SecurityGoal>{},
                                   tally);
            }
        }
    }

    if (selected("topic")) {
        std::printf(
            "\nTopics, msg/s received by the subscriber; raw = ZeroMQ PUB->SUB of the same size "
            "in the same run\n");
        print_throughput_header();
        for (std::size_t size : settings.sizes) {
            BenchContext plain = context;
            BenchContext reliable = context;
            reliable.reliable_topic = true;
            BenchContext dead = reliable;
            dead.dead_follower = true;
            auto best =
                guarded<ThroughputFigure>([&] { return measure_topic(plain, settings, size); });
            print_throughput_row("6. topic best_effort", size, best, std::nullopt, tally);
            auto sure =
                guarded<ThroughputFigure>([&] { return measure_topic(reliable, settings, size); });
            print_throughput_row("6. topic reliable", size, sure, std::nullopt, tally);
            print_repairs(sure);
            auto with_dead =
                guarded<ThroughputFigure>([&] { return measure_topic(dead, settings, size); });
            print_throughput_row("6. topic reliable, a dead follower", size, with_dead,
                                 std::nullopt, tally);
            // Reliable with nothing lost: every run ends at its last message, what the PUB
            // dropped repaired from a history that holds the run; against best effort (which
            // loses what it drops), each against its own raw runs.
            BenchContext whole = reliable;
            whole.topic_history = kWholeRunHistory;
            whole.whole_runs = true;
            auto complete =
                guarded<ThroughputFigure>([&] { return measure_topic(whole, settings, size); });
            print_throughput_row("6. topic reliable, nothing lost", size, complete, std::nullopt,
                                 tally);
            print_repairs(complete);
            if (best && complete && !best->peermq.empty() && !complete->peermq.empty()) {
                const double lossy = vs_raw(*best);
                const double ratio = lossy > 0 ? vs_raw(*complete) / lossy : 0;
                std::printf(
                    "   reliable, nothing lost / best effort (each vs its raw): %.2f  %s"
                    "  (peermq medians alone: %.2f)\n",
                    ratio, judge(Goal{0.9}, ratio, tally).c_str(),
                    median(complete->peermq) / std::max(1.0, median(best->peermq)));
            }
            if (sure && with_dead && !sure->peermq.empty() && !with_dead->peermq.empty()) {
                // Each against its own raw runs: the machine's load moves between the two links.
                const double alone = vs_raw(*sure);
                const double beside = vs_raw(*with_dead);
                const double ratio = alone > 0 ? beside / alone : 0;
                std::printf("   a dead follower / none (each vs its raw): %.2f  %s\n", ratio,
                            judge(Goal{0.9}, ratio, tally).c_str());
            }
        }
    }

    if (selected("repair")) {
        std::printf(
            "\nReliable topic repair: %s messages published while the subscriber process is "
            "stopped (SIGSTOP), then continued;\n  recovery = from SIGCONT until it has all "
            "of them; raw = ZeroMQ PUB->SUB after the same burst, until its end marker\n",
            grouped(static_cast<double>(kRepairBurst)).c_str());
        for (std::size_t size : settings.sizes) {
            print_repair(size, guarded<RepairFigure>(
                                   [&] { return measure_repair(context, settings, size); }));
        }
    }

    if (selected("latency")) {
        print_latency_header(settings.latency_messages, settings.runs);
        auto zero = guarded<LatencyFigure>([&] {
            return measure_latency(context, settings.latency_messages, settings.runs,
                                   std::chrono::microseconds(0));
        });
        print_latency_row("4. send_confirmed->ack, consumer ack_batch_interval=0", zero,
                          Goal{2.0, true}, tally);
        // With the default batching a lone message waits out the interval: the price of
        // fewer ack frames under load. Fewer round trips, since each takes about a millisecond.
        const auto batched_interval = NodeOptions{}.ack_batch_interval;
        auto batched = guarded<LatencyFigure>([&] {
            return measure_latency(context,
                                   std::max<std::size_t>(settings.latency_messages / 4, 100),
                                   settings.runs, batched_interval);
        });
        print_latency_row("   same, default acks (" + std::to_string(NodeOptions{}.ack_batch_size) +
                              " or " + std::to_string(batched_interval.count()) + " us)",
                          batched, std::nullopt, tally);
        std::printf("   raw = ZeroMQ REQ->REP echo round trip of the same size\n");
    }

    std::printf("\nload average at end: %s   goals: %d met, %d missed, %d figures failed\n",
                load_average().c_str(), tally.met, tally.missed, tally.failed);
    return tally.failed > 0 ? 1 : 0;
}

}  // namespace
}  // namespace peermq::bench

int main(int argc, char** argv) { return peermq::bench::bench_main(argc, argv); }
