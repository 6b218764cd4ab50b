// peermq consume and tap: messages out of the cluster, printed as they arrive.
#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>

#include "commands.hpp"
#include "common.hpp"
#include "peermq/metrics.hpp"
#include "util/mutex.hpp"

namespace peermq::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// consume and tap

enum class OnMessage { ack, nack, reject };

// A queue message has a queue and an attempt number; a topic message has a topic.
Json message_json(const Message& message, bool queue) {
    DecodedPayload payload = decode_payload(message.payload);
    Json out{
        {queue ? "queue" : "topic", message.channel},
        {"id", message.id.to_string()},
        {"sender", message.sender.to_string()},
        {"created", format_time(message.created_ms)},
        {"headers", to_json(message.headers)},
        {"payload", std::move(payload.value)},
        {"payload_encoding", std::string(to_string(payload.kind))},
    };
    if (queue) out["attempt"] = message.attempt;
    if (!queue && message.seq != 0) out["seq"] = message.seq;
    if (!queue && message.history) out["history"] = true;
    return out;
}

// Counts what the handlers printed and wakes the main thread at the wanted count.
struct Reception {
    std::uint64_t limit = 0;  // 0 = no limit
    std::atomic<std::uint64_t> handled{0};
    std::atomic<bool> done{false};
    detail::Mutex output;  // one handler at a time prints its line
    Wakeup wakeup;
};

// Waits for the count, Ctrl-C or the timeout; returns the exit code.
int wait_reception(Reception& reception, Interrupts& interrupts, std::chrono::milliseconds timeout,
                   Progress& progress) {
    const auto deadline = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
    for (;;) {
        if (reception.done) return 0;
        const auto now = Clock::now();
        // Without a count, the timeout is how long to run, not a failure.
        if (now >= deadline) return reception.limit == 0 ? 0 : 1;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        if (interrupts.wait(std::min<std::chrono::milliseconds>(left, 100ms),
                            reception.wakeup.fd())) {
            return reception.limit == 0 ? 0 : 130;
        }
        reception.wakeup.drain();
        progress.update(reception.handled);
    }
}

// PEERMQ_METRICS=[address:]port: the node's metrics, served while it consumes or taps
// (docs/metrics.md); nothing when unset.
std::optional<MetricsServer> serve_metrics(Node& node) {
    auto options = metrics_options_from_env();
    if (!options) throw CliError(options.status().message());
    if (!options.value()) return std::nullopt;
    auto server = MetricsServer::start(node, *options.value());
    if (!server) throw CliError("PEERMQ_METRICS: " + server.status().message());
    note("serving metrics at " + server.value().url());
    return std::move(server).value();
}

// Waits for the count, Ctrl-C or the timeout (`timeout_text` as given) with a progress bar,
// closes the node and prints "<summary>: N messages in ..."; returns the exit code, or throws
// when the timeout came before the count.
int finish_reception(Node& node, Reception& reception, Interrupts& interrupts,
                     std::chrono::milliseconds timeout, const std::string& timeout_text,
                     const std::string& progress_label, const std::string& summary) {
    std::optional<MetricsServer> metrics = serve_metrics(node);
    Progress progress(progress_label, reception.limit);
    notify_ready(progress_label + " as " + node.name());
    const auto start = Clock::now();
    const int code = wait_reception(reception, interrupts, timeout, progress);
    const auto elapsed = Clock::now() - start;
    reception.done = true;
    notify_stopping();
    if (metrics) metrics->stop();  // it reads the node: stopped first
    node.close();
    progress.finish();
    // Concurrent handlers may pass the count by a few: they are not counted.
    const std::uint64_t handled = std::min<std::uint64_t>(
        reception.handled, reception.limit > 0 ? reception.limit : reception.handled.load());
    note(summary + ": " + count_and_rate(handled, elapsed));
    if (code == 1) {
        throw CliError("only " + std::to_string(handled) + " of " +
                       std::to_string(reception.limit) + " messages within " + timeout_text);
    }
    return code;
}

struct ConsumeOptionsCli {
    ClusterOptions cluster;
    std::string queue;
    std::uint64_t count = 0;
    bool json = false;
    std::string on_message = "ack";
    std::string timeout = "0";
    std::uint32_t prefetch = 0;
};

int run_consume(const ConsumeOptionsCli& options) {
    const auto timeout = duration_or_throw(options.timeout);
    const OnMessage on_message = options.on_message == "nack"     ? OnMessage::nack
                                 : options.on_message == "reject" ? OnMessage::reject
                                                                  : OnMessage::ack;
    Interrupts interrupts;
    Reception reception;
    reception.limit = options.count;
    Node node = open_node(options.cluster);
    auto handler = [&](Delivery& delivery) {
        if (reception.done) {
            // Past the count: not ours to take; the nack sends it back to its sender at once.
            throw std::runtime_error("peermq consume reached its count");
        }
        const Message& message = delivery.message();
        {
            detail::MutexLock lock(reception.output);
            print_line(options.json ? dump(message_json(message, true))
                                    : payload_line(message.payload));
        }
        const std::uint64_t handled = ++reception.handled;
        if (reception.limit > 0 && handled >= reception.limit) reception.done = true;
        reception.wakeup.notify();
        if (on_message == OnMessage::nack) throw std::runtime_error("nacked by peermq consume");
        if (on_message == OnMessage::reject) delivery.reject("rejected by peermq consume");
    };
    // Credit no larger than the count: a consumer leaving after N holds few messages it must
    // hand back.
    ConsumeOptions consume_options;
    consume_options.prefetch = options.prefetch > 0 ? options.prefetch : 256;
    if (options.count > 0)
        consume_options.prefetch = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(consume_options.prefetch, options.count));
    if (Status status = node.consume(options.queue, handler, consume_options); !status.ok())
        throw CliError(status.to_string());
    note("consuming '" + options.queue + "' as " + node.name() + " on " + node.address() +
         (options.count > 0 ? " until " + std::to_string(options.count) + " messages" : "") +
         "; Ctrl-C to stop");
    return finish_reception(node, reception, interrupts, timeout, options.timeout, "consuming",
                            "consumed from '" + options.queue + "'");
}

struct TapOptions {
    ClusterOptions cluster;
    std::string prefix;
    std::uint64_t count = 0;
    std::string timeout = "0";
    bool payload_only = false;
    bool reliable = false;
    std::uint32_t history = 0;
    std::string history_age = "0";
};

int run_tap(const TapOptions& options) {
    const auto timeout = duration_or_throw(options.timeout);
    Interrupts interrupts;
    Reception reception;
    reception.limit = options.count;
    Node node = open_node(options.cluster);
    auto handler = [&](const Message& message) {
        if (reception.done) return;
        Json line = options.payload_only ? decode_payload(message.payload).value
                                         : message_json(message, false);
        {
            detail::MutexLock lock(reception.output);
            if (reception.done) return;
            print_line(dump(line));
            const std::uint64_t handled = ++reception.handled;
            if (reception.limit > 0 && handled >= reception.limit) reception.done = true;
        }
        reception.wakeup.notify();
    };
    SubscribeOptions subscribe_options;
    if (options.reliable) {
        subscribe_options.reliability = TopicReliability::reliable;
        subscribe_options.history = options.history;
        subscribe_options.history_age = duration_or_throw(options.history_age);
        // What will never come is said where a person reads it, not among the messages.
        subscribe_options.on_lost = [](const SampleLost& lost) {
            note("lost " + std::to_string(lost.last - lost.first + 1) + " message(s) of '" +
                 lost.topic + "' from " + lost.publisher_name + " (" + std::to_string(lost.first) +
                 ".." + std::to_string(lost.last) + "): " + lost.reason);
        };
    }
    if (Status status = node.subscribe(options.prefix, handler, std::move(subscribe_options));
        !status.ok())
        throw CliError(status.to_string());
    note("tapping '" + options.prefix + "' as " + node.name() + " on " + node.address() +
         (options.reliable ? " (reliable" + (options.history > 0
                                                 ? ", the last " + std::to_string(options.history) +
                                                       " of each topic first)"
                                                 : std::string(")"))
                           : std::string()) +
         "; Ctrl-C to stop");
    return finish_reception(node, reception, interrupts, timeout, options.timeout, "tapping",
                            "tapped '" + options.prefix + "'");
}

}  // namespace

void add_consume_commands(CLI::App& app, Runner& selected) {
    {
        auto [command, options] = add_command(app, selected, "consume",
                                              "Consume messages from a work queue", run_consume);
        command->add_option("queue", options->queue, "Queue name")->required();
        command->add_option("--count", options->count, "Exit after N messages (0 = until Ctrl-C)")
            ->check(count_validator());
        command->add_flag("--json", options->json, "Print each message as a JSON object");
        command
            ->add_option("--on-message", options->on_message,
                         "ack, nack (the sender retries it) or reject (to the sender's "
                         "dead-letter journal)")
            ->check(CLI::IsMember({"ack", "nack", "reject"}))
            ->capture_default_str();
        add_duration_option(*command, "--timeout", options->timeout,
                            "With --count: give up after DUR (exit 1); without: stop after DUR "
                            "(0 = never)");
        command
            ->add_option("--prefetch", options->prefetch,
                         "Most unacked messages a sender may have here (default 256, at most "
                         "--count)")
            ->check(count_validator());
        add_cluster_options(*command, options->cluster, false);
    }
    {
        auto [command, options] =
            add_command(app, selected, "tap",
                        "Print the messages of every topic starting with PREFIX", run_tap);
        command->add_option("prefix", options->prefix, "Topic prefix ('' = every topic)")
            ->required();
        command->add_option("--count", options->count, "Exit after N messages (0 = until Ctrl-C)")
            ->check(count_validator());
        add_duration_option(*command, "--timeout", options->timeout,
                            "With --count: give up after DUR (exit 1); without: stop after DUR "
                            "(0 = never)");
        command->add_flag("--payload-only", options->payload_only,
                          "Print only each payload's JSON, not the message around it");
        auto* reliable =
            command->add_flag("--reliable", options->reliable,
                              "Each publisher's messages in order, gaps repaired from its "
                              "history; what cannot be is reported on stderr");
        command
            ->add_option("--history", options->history,
                         "With --reliable: first the last N messages of each topic")
            ->check(count_validator())
            ->needs(reliable);
        add_duration_option(*command, "--history-age", options->history_age,
                            "With --reliable: history no older than DUR (0 = any the publisher "
                            "keeps)")
            ->needs(reliable);
        add_cluster_options(*command, options->cluster, false);
    }
}

}  // namespace peermq::cli
