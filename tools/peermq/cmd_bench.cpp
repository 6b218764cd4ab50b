// peermq bench: the throughput (and, for acked queues, the send->ack latency) of one pattern and
// guarantee, beside raw ZeroMQ measured in the same run, with the ratio peermq/raw. The links,
// receiving roles and interleaved runs are peermq_bench's (harness/bench, peermq_bench_harness);
// the receiving side runs as `peermq bench-peer --role ...`, a hidden subcommand of this same tool.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "links.hpp"
#include "measure.hpp"
#include "roles.hpp"
#include "sample_stats.hpp"

namespace peermq::cli {
namespace {

namespace pb = peermq::bench;

constexpr const char* kPeerCommand = "bench-peer";
constexpr std::size_t kMaxSize = 16u << 20;
constexpr std::size_t kMaxMessages = 50'000'000;
constexpr std::size_t kMaxLatencyRoundTrips = 2000;
constexpr std::size_t kMinLatencyRoundTrips = 100;
constexpr std::size_t kLatencyWarmup = 200;
// The queue holds at most about this many payload bytes, so that a large --size cannot take
// the machine's memory; past it send() waits for room (backpressure is part of the figure).
constexpr std::size_t kQueueBytes = 256u << 20;

struct BenchOptions {
    std::string pattern = "queue";
    std::string guarantee = "at_least_once";
    std::string durability = "memory";
    std::string trust = pb::trust_name(NodeOptions{}.trust);  // of both peermq nodes
    std::size_t size = 64;
    std::size_t messages = 500'000;
    int runs = 3;
    bool json = false;
    bool guarantee_given = false;
    bool durability_given = false;
};

// The peermq side of a queue figure.
pb::QueueFlow queue_flow(const BenchOptions& options) {
    pb::QueueFlow flow;
    flow.guarantee = options.guarantee == "best_effort"        ? Guarantee::best_effort
                     : options.guarantee == "effectively_once" ? Guarantee::effectively_once
                                                               : Guarantee::at_least_once;
    flow.durability =
        options.durability == "group_commit" ? Durability::group_commit : Durability::memory;
    return flow;
}

struct ThroughputResult {
    double peermq = 0;  // medians, msg/s
    double raw = 0;
    pb::ThroughputSamples samples;
};

struct LatencyResult {
    std::size_t round_trips = 0;
    double p50 = 0, p99 = 0, raw_p50 = 0, raw_p99 = 0;  // medians of the runs, µs
};

double ratio(double peermq, double raw) { return raw > 0 ? peermq / raw : 0; }

// Sizes: a warm-up run of a fifth of the messages (at least 1000) on each link, then the runs.
std::size_t warmup_size(std::size_t messages) {
    return std::min(messages, std::max<std::size_t>(1000, messages / 5));
}

ThroughputResult measure_throughput(const pb::BenchContext& context, const BenchOptions& options) {
    auto raw = options.pattern == "topic" ? pb::start_raw_pub(context, options.size)
                                          : pb::start_raw_push(context, options.size);
    if (!raw) throw CliError("raw ZeroMQ link: " + raw.status().message());
    auto peermq = options.pattern == "topic"
                      ? pb::start_peermq_topic(context, options.size)
                      : pb::start_peermq_queue(context, queue_flow(options), options.size);
    if (!peermq) throw CliError("peermq link: " + peermq.status().message());
    const std::size_t warmup = warmup_size(options.messages);
    if (auto warm = raw.value()->run(warmup); !warm) {
        throw CliError("raw ZeroMQ warm-up: " + warm.status().message());
    }
    if (auto warm = peermq.value()->run(warmup); !warm) {
        throw CliError("peermq warm-up: " + warm.status().message());
    }
    auto samples = pb::alternate_runs(raw.value().get(), peermq.value().get(), options.messages,
                                      options.messages, options.runs);
    if (!samples) throw CliError("throughput: " + samples.status().message());
    if (Status stopped = raw.value()->stop(); !stopped.ok()) {
        throw CliError("raw ZeroMQ receiver: " + stopped.message());
    }
    if (Status stopped = peermq.value()->stop(); !stopped.ok()) {
        throw CliError("peermq receiver: " + stopped.message());
    }
    ThroughputResult result;
    result.peermq = pb::median(samples->peermq);
    result.raw = pb::median(samples->raw);
    result.samples = std::move(samples).value();
    return result;
}

LatencyResult measure_latency(const pb::BenchContext& context, const BenchOptions& options) {
    LatencyResult result;
    result.round_trips =
        std::clamp(options.messages / 10, kMinLatencyRoundTrips, kMaxLatencyRoundTrips);
    auto raw = pb::start_raw_reqrep(context, options.size);
    if (!raw) throw CliError("raw ZeroMQ REQ/REP link: " + raw.status().message());
    // The consumer acks at the end of its actor's loop turn: a lone message does not wait out
    // the ack batching interval (see bench/README.md).
    auto peermq = pb::start_peermq_confirmed(context, queue_flow(options), options.size,
                                             std::chrono::microseconds(0));
    if (!peermq) throw CliError("peermq latency link: " + peermq.status().message());
    auto samples = pb::alternate_round_trips(*raw.value(), *peermq.value(),
                                             std::min(kLatencyWarmup, result.round_trips),
                                             result.round_trips, options.runs);
    if (!samples) throw CliError("latency: " + samples.status().message());
    if (Status stopped = raw.value()->stop(); !stopped.ok()) {
        throw CliError("raw ZeroMQ REP peer: " + stopped.message());
    }
    if (Status stopped = peermq.value()->stop(); !stopped.ok()) {
        throw CliError("peermq consumer: " + stopped.message());
    }
    result.p50 = pb::median(samples->p50);
    result.p99 = pb::median(samples->p99);
    result.raw_p50 = pb::median(samples->raw_p50);
    result.raw_p99 = pb::median(samples->raw_p99);
    return result;
}

const char* raw_socket(const BenchOptions& options) {
    return options.pattern == "topic" ? "PUB->SUB" : "PUSH->PULL";
}

// How the peermq rate is counted (links.hpp).
const char* peermq_measure(const BenchOptions& options) {
    if (options.pattern == "topic") return "received by the subscriber";
    return options.guarantee == "best_effort" ? "handled by the consumer" : "acked at the sender";
}

std::string describe(const BenchOptions& options) {
    std::string text = options.pattern;
    if (options.pattern == "queue") {
        text += ", " + options.guarantee;
        if (options.guarantee != "best_effort") text += ", " + options.durability + " durability";
    } else {
        text += ", best_effort";
    }
    return text;
}

std::string lost_text(std::uint64_t lost, std::size_t sent) {
    if (lost == 0) return "";
    char text[96];
    std::snprintf(text, sizeof text, "   lost %llu of %zu (%.2f%%)",
                  static_cast<unsigned long long>(lost), sent,
                  100.0 * static_cast<double>(lost) / static_cast<double>(sent));
    return text;
}

void print_report(const BenchOptions& options, const ThroughputResult& throughput,
                  const std::optional<LatencyResult>& latency, const std::string& load_start) {
    const double mb = static_cast<double>(options.size) / 1e6;
    const std::size_t sent = options.messages * static_cast<std::size_t>(options.runs);
    std::printf("peermq bench: %s, %s payloads, %s messages per run\n", describe(options).c_str(),
                pb::size_label(options.size).c_str(),
                pb::grouped(double(options.messages)).c_str());
    std::printf(
        "  beside raw ZeroMQ (%s) in the same run; tcp loopback, receiver in a separate process\n"
        "  peermq trust mode %s%s, raw ZeroMQ without CURVE\n"
        "  %d runs each, raw and peermq alternating, median shown; %u cores, load average %s\n\n",
        pb::zmq_version_string().c_str(), options.trust.c_str(),
        options.trust == "open" ? " (CurveZMQ)" : "", options.runs,
        std::thread::hardware_concurrency(), load_start.c_str());
    std::printf("%-36s %13s %9s\n", "throughput", "msg/s", "MB/s");
    std::printf("%-36s %13s %9.1f   %s%s\n", ("  peermq " + options.pattern).c_str(),
                pb::grouped(throughput.peermq).c_str(), throughput.peermq * mb,
                peermq_measure(options), lost_text(throughput.samples.peermq_lost, sent).c_str());
    std::printf("%-36s %13s %9.1f   received%s\n",
                (std::string("  raw ZeroMQ ") + raw_socket(options)).c_str(),
                pb::grouped(throughput.raw).c_str(), throughput.raw * mb,
                lost_text(throughput.samples.raw_lost, sent).c_str());
    std::printf("%-36s %13.2f\n", "  ratio peermq/raw", ratio(throughput.peermq, throughput.raw));
    if (latency) {
        std::printf(
            "\n%-36s %13s %9s\n",
            ("latency, " + pb::grouped(double(latency->round_trips)) + " round trips/run").c_str(),
            "p50 us", "p99 us");
        std::printf("%-36s %13.1f %9.1f\n", "  peermq send->ack", latency->p50, latency->p99);
        std::printf("%-36s %13.1f %9.1f\n", "  raw ZeroMQ REQ->REP round trip", latency->raw_p50,
                    latency->raw_p99);
        std::printf("%-36s %13.2f %9.2f\n", "  ratio peermq/raw",
                    ratio(latency->p50, latency->raw_p50), ratio(latency->p99, latency->raw_p99));
        std::printf("  (the consumer acks at once: ack_batch_interval = 0)\n");
    }
    std::fflush(stdout);
}

void print_json(const BenchOptions& options, const ThroughputResult& throughput,
                const std::optional<LatencyResult>& latency, const std::string& load_start) {
    const double mb = static_cast<double>(options.size) / 1e6;
    Json out;
    out["pattern"] = options.pattern;
    out["guarantee"] = options.pattern == "topic" ? "best_effort" : options.guarantee;
    out["durability"] = options.durability;
    out["trust"] = options.trust;
    out["size"] = options.size;
    out["messages"] = options.messages;
    out["runs"] = options.runs;
    out["zmq"] = pb::zmq_version_string();
    out["cores"] = std::thread::hardware_concurrency();
    out["load_average"] = {{"start", load_start}, {"end", pb::load_average()}};
    out["throughput"] = {{"peermq",
                          {{"msgs_per_sec", throughput.peermq},
                           {"mb_per_sec", throughput.peermq * mb},
                           {"counted", peermq_measure(options)},
                           {"lost", throughput.samples.peermq_lost},
                           {"spread", pb::spread(throughput.samples.peermq)},
                           {"runs", throughput.samples.peermq}}},
                         {"raw",
                          {{"socket", raw_socket(options)},
                           {"msgs_per_sec", throughput.raw},
                           {"mb_per_sec", throughput.raw * mb},
                           {"lost", throughput.samples.raw_lost},
                           {"spread", pb::spread(throughput.samples.raw)},
                           {"runs", throughput.samples.raw}}},
                         {"ratio", ratio(throughput.peermq, throughput.raw)}};
    if (latency) {
        out["latency"] = {
            {"round_trips", latency->round_trips},
            {"ack_batch_interval_us", 0},
            {"peermq", {{"p50_us", latency->p50}, {"p99_us", latency->p99}}},
            {"raw",
             {{"socket", "REQ->REP"}, {"p50_us", latency->raw_p50}, {"p99_us", latency->raw_p99}}},
            {"ratio_p50", ratio(latency->p50, latency->raw_p50)},
            {"ratio_p99", ratio(latency->p99, latency->raw_p99)}};
    } else {
        out["latency"] = nullptr;
    }
    print_line(dump(out));
}

void check_combination(const BenchOptions& options) {
    if (options.pattern == "topic") {
        if (options.guarantee_given && options.guarantee != "best_effort") {
            throw CliError("topics are best effort: --guarantee " + options.guarantee +
                               " applies to --pattern queue",
                           2);
        }
        if (options.durability_given && options.durability != "memory") {
            throw CliError("topics keep no journal: --durability applies to --pattern queue", 2);
        }
    } else if (options.guarantee == "best_effort" && options.durability != "memory") {
        throw CliError("best_effort messages are never journaled: --durability " +
                           options.durability +
                           " needs --guarantee at_least_once or "
                           "effectively_once",
                       2);
    }
}

int run(const BenchOptions& options) {
    check_combination(options);
    std::signal(SIGPIPE, SIG_IGN);
    // Static peers only: a PEERMQ_PEERS from the environment would add strangers.
    ::unsetenv("PEERMQ_PEERS");
    pb::BenchContext context;
    context.executable = pb::executable_path("peermq");
    context.role_prefix = {kPeerCommand};
    context.cluster = "bench-cli-" + std::to_string(::getpid());
    context.max_length = std::clamp<std::size_t>(kQueueBytes / options.size, 1000, 1'000'000);
    context.trust = options.trust == "plain" ? TrustMode::plain : TrustMode::open;

    const std::string load_start = pb::load_average();
    const ThroughputResult throughput = measure_throughput(context, options);
    std::optional<LatencyResult> latency;
    if (options.pattern == "queue" && options.guarantee != "best_effort") {
        latency = measure_latency(context, options);
    }
    if (options.json) {
        print_json(options, throughput, latency, load_start);
    } else {
        print_report(options, throughput, latency, load_start);
    }
    return 0;
}

// `peermq bench-peer --role ROLE [flags]`: the receiving process of a link (harness/bench/
// roles.hpp).
int run_peer(const std::vector<std::string>& args) {
    if (args.size() < 2 || args[0] != "--role") {
        throw CliError(std::string(kPeerCommand) + " is started by peermq bench itself", 2);
    }
    return pb::run_role(std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace

void add_bench_command(CLI::App& app, Runner& selected) {
    auto options = std::make_shared<BenchOptions>();
    CLI::App* command = app.add_subcommand(
        "bench", "Throughput and latency of peermq beside raw ZeroMQ, measured in the same run");
    command
        ->add_option("--pattern", options->pattern,
                     "queue (PUSH->PULL baseline) or topic (PUB->SUB baseline)")
        ->check(CLI::IsMember({"queue", "topic"}))
        ->capture_default_str();
    CLI::Option* guarantee =
        command
            ->add_option("--guarantee", options->guarantee,
                         "Queue guarantee: best_effort, at_least_once or effectively_once")
            ->check(CLI::IsMember({"best_effort", "at_least_once", "effectively_once"}))
            ->capture_default_str();
    CLI::Option* durability =
        command
            ->add_option("--durability", options->durability,
                         "Sender's outbox for acked guarantees: memory, or group_commit (a "
                         "journal in a temporary directory)")
            ->check(CLI::IsMember({"memory", "group_commit"}))
            ->capture_default_str();
    command
        ->add_option("--trust", options->trust,
                     "Trust mode of both peermq nodes: open (CurveZMQ on every link) or plain "
                     "(no encryption; the raw ZeroMQ baseline is plain either way)")
        ->check(CLI::IsMember({"open", "plain"}))
        ->capture_default_str();
    command->add_option("--size", options->size, "Payload bytes")
        ->check(CLI::Range(std::size_t{1}, kMaxSize))
        ->capture_default_str();
    command->add_option("--messages", options->messages, "Messages per measured run")
        ->check(CLI::Range(std::size_t{100}, kMaxMessages))
        ->capture_default_str();
    command->add_option("--runs", options->runs, "Measured runs of each side (median shown)")
        ->check(CLI::Range(1, 20))
        ->capture_default_str();
    command->add_flag("--json", options->json, "Print one JSON object");
    command->callback([options, guarantee, durability, &selected] {
        options->guarantee_given = guarantee->count() > 0;
        options->durability_given = durability->count() > 0;
        selected = [options] { return run(*options); };
    });

    // Hidden (no group): the receiving side of a link, started by `peermq bench` itself.
    CLI::App* peer = app.add_subcommand(kPeerCommand, "Receiving side of peermq bench");
    peer->group("");
    peer->prefix_command();
    peer->callback(
        [peer, &selected] { selected = [args = peer->remaining()] { return run_peer(args); }; });
}

}  // namespace peermq::cli
