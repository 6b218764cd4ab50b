// peermq send and publish: messages into the cluster from the shell (payloads from arguments,
// files, lines or a MessagePack stream).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "commands.hpp"
#include "common.hpp"

namespace peermq::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Input of send and publish

struct InputOptions {
    std::vector<std::string> data;
    std::string file;
    bool msgpack = false;
    bool json = false;
    std::uint64_t count = 0;
    std::vector<std::string> headers;
};

void add_input_options(CLI::App& command, InputOptions& input) {
    command.add_option("data", input.data,
                       "Messages, one per argument (text is sent as a MessagePack string); '-' "
                       "reads one message per line from stdin");
    command.add_option("--file", input.file, "Read one message per line from FILE ('-' = stdin)");
    command.add_flag("--msgpack", input.msgpack,
                     "--file/stdin is a raw MessagePack stream: each value is one message");
    command.add_flag("--json", input.json, "Each message is JSON, sent encoded as MessagePack");
    command
        .add_option("--count", input.count,
                    "Send N messages: the given ones repeated in turn, or, with none given, the "
                    "integers 0..N-1")
        ->check(count_validator());
    command.add_option("--header", input.headers, "Header KEY=VALUE; repeatable");
}

std::string read_all(std::istream& in) {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string read_source(const std::string& path) {
    if (path == "-") return read_all(std::cin);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CliError("cannot read " + path + ": " + std::strerror(errno));
    return read_all(in);
}

Payload encode_text(const std::string& text, bool json, const std::string& where) {
    if (!json) return Payload::encode(text);
    Json value = Json::parse(text, nullptr, false);
    if (value.is_discarded()) {
        throw CliError(where + " is not valid JSON: " + truncate(text, 60), 2);
    }
    const std::vector<std::uint8_t> bytes = Json::to_msgpack(value);
    return Payload::copy_of(bytes.data(), bytes.size());
}

void add_lines(const std::string& text, bool json, const std::string& source,
               std::vector<Payload>& out) {
    std::size_t line_number = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;  // a blank line is a separator, not a message
        out.push_back(encode_text(line, json, source + " line " + std::to_string(line_number)));
    }
}

void add_msgpack_stream(const std::string& bytes, const std::string& source,
                        std::vector<Payload>& out) {
    std::size_t offset = 0;
    while (offset < bytes.size()) {
        const std::size_t begin = offset;
        try {
            const std::size_t n = bytes.size();
            const msgpack::unpack_limit limit(n, n, n, n, n, 1024);
            (void)msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
        } catch (const std::exception& e) {
            throw CliError(source + " is not a MessagePack stream at byte " +
                               std::to_string(begin) + ": " + e.what(),
                           2);
        }
        out.push_back(Payload::copy_of(bytes.data() + begin, offset - begin));
    }
}

// The messages to send: explicit payloads (repeated in turn up to `total`), or, when none are
// given, the integers 0..total-1.
struct Messages {
    std::vector<Payload> payloads;
    std::uint64_t total = 0;

    Payload at(std::uint64_t i) const {
        if (payloads.empty()) return Payload::encode(static_cast<std::int64_t>(i));
        return payloads[i % payloads.size()];
    }
};

Messages load_messages(const InputOptions& input) {
    Messages messages;
    if (input.msgpack && input.json) throw CliError("--msgpack and --json exclude each other", 2);
    bool stdin_used = false;
    auto read_stream = [&](const std::string& path) {
        if (path == "-") {
            if (stdin_used) throw CliError("stdin given twice", 2);
            stdin_used = true;
        }
        const std::string name = path == "-" ? "stdin" : path;
        const std::string bytes = read_source(path);
        if (input.msgpack)
            add_msgpack_stream(bytes, name, messages.payloads);
        else
            add_lines(bytes, input.json, name, messages.payloads);
    };
    std::size_t argument = 0;
    for (const auto& data : input.data) {
        ++argument;
        if (data == "-") {
            read_stream("-");
        } else if (input.msgpack) {
            throw CliError("--msgpack reads --file or stdin ('-'), not DATA arguments", 2);
        } else {
            messages.payloads.push_back(
                encode_text(data, input.json, "argument " + std::to_string(argument)));
        }
    }
    if (!input.file.empty()) read_stream(input.file);
    if (input.msgpack && input.data.empty() && input.file.empty()) read_stream("-");
    const bool given = !input.data.empty() || !input.file.empty() || input.msgpack;
    if (!given && input.count == 0) {
        throw CliError("nothing to send: give DATA arguments, '-' (stdin), --file or --count", 2);
    }
    if (given && messages.payloads.empty()) throw CliError("the input holds no message", 2);
    messages.total = input.count > 0 ? input.count : messages.payloads.size();
    return messages;
}

Headers parse_headers(const std::vector<std::string>& items) {
    Headers headers;
    for (const auto& item : items) {
        const auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0)
            throw CliError("--header takes KEY=VALUE, not '" + item + "'", 2);
        headers[item.substr(0, eq)] = item.substr(eq + 1);
    }
    return headers;
}

Guarantee parse_guarantee(const std::string& text) {
    if (text == "best_effort") return Guarantee::best_effort;
    if (text == "effectively_once") return Guarantee::effectively_once;
    return Guarantee::at_least_once;
}

// ---------------------------------------------------------------------------------------------
// Waiting for the other side

std::size_t alive_consumers(const Node& node, const std::string& queue) {
    std::size_t count = 0;
    for (const auto& peer : node.peers()) {
        if (peer.state != PeerState::alive) continue;
        count +=
            static_cast<std::size_t>(std::count(peer.queues.begin(), peer.queues.end(), queue));
    }
    return count;
}

std::size_t alive_subscribers(const Node& node, const std::string& topic) {
    std::size_t count = 0;
    for (const auto& peer : node.peers()) {
        if (peer.state != PeerState::alive) continue;
        const bool matches =
            std::any_of(peer.topics.begin(), peer.topics.end(),
                        [&](const std::string& p) { return topic.starts_with(p); });
        count += matches ? 1 : 0;
    }
    return count;
}

// Polls `condition` until it holds; false at the deadline; CliError(130) on Ctrl-C.
template <typename Condition>
bool wait_for(Condition condition, Clock::time_point deadline, Interrupts& interrupts) {
    while (!condition()) {
        if (Clock::now() >= deadline) return false;
        if (interrupts.wait(20ms)) throw CliError("interrupted", 130);
    }
    return true;
}

std::string messages_text(std::uint64_t n) {
    return std::to_string(n) + (n == 1 ? " message" : " messages");
}

// ---------------------------------------------------------------------------------------------
// send

struct SendOptions {
    ClusterOptions cluster;
    std::string queue;
    InputOptions input;
    std::string guarantee = "at_least_once";
    std::string ttl = "0";
    std::string timeout = "30s";
    std::uint32_t max_attempts = 0;
    bool confirm = false;
};

int run_send(const SendOptions& options) {
    const Messages messages = load_messages(options.input);
    const Headers headers = parse_headers(options.input.headers);
    const auto timeout = duration_or_throw(options.timeout);
    QueueOptions queue_options;
    queue_options.guarantee = parse_guarantee(options.guarantee);
    queue_options.ttl = duration_or_throw(options.ttl);
    if (options.max_attempts > 0) queue_options.max_attempts = options.max_attempts;
    const bool reliable = queue_options.guarantee != Guarantee::best_effort;
    if (options.confirm && !reliable)
        throw CliError("--confirm needs at_least_once or effectively_once", 2);

    Interrupts interrupts;
    Node node = open_node(options.cluster);
    auto queue = node.queue(options.queue, queue_options);
    if (!queue) throw CliError(queue.status().to_string());
    const auto deadline = Clock::now() + timeout;

    if (!reliable) {
        // Best effort has no retry: a message sent before any consumer is connected is lost.
        if (!wait_for([&] { return alive_consumers(node, options.queue) > 0; }, deadline,
                      interrupts)) {
            throw CliError("no consumer of '" + options.queue + "' within " + options.timeout +
                           " (best_effort messages would be lost)");
        }
        Progress progress("sending", messages.total);
        const auto start = Clock::now();
        std::uint64_t sent = 0;
        for (; sent < messages.total; ++sent) {
            if ((sent & 255) == 0 && interrupts.received()) break;
            auto id = queue->send_payload(messages.at(sent), headers);
            if (!id) throw CliError("send failed: " + id.status().to_string());
            progress.update(sent + 1);
        }
        const Status flushed = queue->flush(timeout);
        const auto elapsed = Clock::now() - start;
        progress.finish();
        node.close();
        note("sent to '" + options.queue + "': " + count_and_rate(sent, elapsed) +
             " (best effort: not confirmed)");
        if (!flushed.ok()) throw CliError("flush failed: " + flushed.to_string());
        return sent == messages.total ? 0 : 130;
    }

    Progress progress("sending", messages.total);
    const auto start = Clock::now();
    std::vector<std::future<Result<Receipt>>> receipts;
    // Enough for most runs; a larger --count grows it as the messages are sent.
    receipts.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(messages.total, 1u << 16)));
    bool interrupted = false;
    for (std::uint64_t i = 0; i < messages.total; ++i) {
        if ((i & 255) == 0 && interrupts.received()) {
            interrupted = true;
            break;
        }
        receipts.push_back(queue->send_payload_confirmed(messages.at(i), headers));
    }
    // Outcomes arrive in any order; collecting them in send order is enough to count them.
    std::uint64_t acked = 0, dead = 0, failed = 0, shown_dead = 0;
    std::string first_failure;
    std::size_t next = 0;
    while (next < receipts.size() && !interrupted) {
        const auto left = deadline - Clock::now();
        if (left <= Clock::duration::zero()) break;
        auto& receipt = receipts[next];
        if (receipt.wait_for(std::min<Clock::duration>(left, 100ms)) == std::future_status::ready) {
            Result<Receipt> outcome = receipt.get();
            ++next;
            if (!outcome) {
                ++failed;
                if (first_failure.empty()) first_failure = outcome.status().to_string();
            } else if (outcome->outcome == Receipt::Outcome::acked) {
                ++acked;
                if (options.confirm) print_line(outcome->id.to_string() + " acked");
            } else {
                ++dead;
                std::string line = outcome->id.to_string() + " dead_lettered " + outcome->reason;
                if (!outcome->last_error.empty()) line += ": " + outcome->last_error;
                if (options.confirm) {
                    print_line(line);
                } else if (++shown_dead <= 10) {
                    progress.finish();
                    note(line, true);
                }
            }
        }
        progress.update(next);
        if (interrupts.received()) interrupted = true;
    }
    const auto elapsed = Clock::now() - start;
    progress.finish();
    const std::uint64_t unconfirmed = receipts.size() - acked - dead - failed;
    const std::uint64_t not_sent = messages.total - receipts.size();
    // The node's journal keeps what is still unacked when it has a data directory.
    node.close();
    note("sent to '" + options.queue + "': " + count_and_rate(receipts.size(), elapsed) + "; " +
         std::to_string(acked) + " acked, " + std::to_string(dead) + " dead-lettered, " +
         std::to_string(unconfirmed) + " unconfirmed");
    if (failed > 0) throw CliError(messages_text(failed) + " failed: " + first_failure);
    if (not_sent > 0) throw CliError("interrupted: " + messages_text(not_sent) + " not sent", 130);
    if (unconfirmed > 0) {
        std::string why = interrupted ? "interrupted" : "not acked within " + options.timeout;
        std::string where =
            options.cluster.data_dir.empty()
                ? "; they were lost with this node (use --data-dir to keep them)"
                : "; they stay in " + options.cluster.data_dir + " and are sent on its next run";
        throw CliError(messages_text(unconfirmed) + " " + why + where, interrupted ? 130 : 1);
    }
    if (dead > 0) {
        throw CliError(messages_text(dead) + (dead == 1 ? " was" : " were") + " dead-lettered");
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// publish

struct PublishOptions {
    ClusterOptions cluster;
    std::string topic;
    InputOptions input;
    std::size_t subscribers = 1;
    std::string timeout = "5s";
    std::string settle = "300ms";
};

int run_publish(const PublishOptions& options) {
    const Messages messages = load_messages(options.input);
    const Headers headers = parse_headers(options.input.headers);
    const auto timeout = duration_or_throw(options.timeout);
    const auto settle = duration_or_throw(options.settle);
    Interrupts interrupts;
    Node node = open_node(options.cluster);
    if (options.subscribers > 0) {
        const bool found =
            wait_for([&] { return alive_subscribers(node, options.topic) >= options.subscribers; },
                     Clock::now() + timeout, interrupts);
        if (!found) {
            throw CliError(std::to_string(alive_subscribers(node, options.topic)) + " of " +
                           std::to_string(options.subscribers) + " subscribers of '" +
                           options.topic + "' within " + options.timeout +
                           " (topics are best effort: use --subscribers 0 to publish anyway)");
        }
        // A subscriber is listed once its HELLO arrives; its subscription reaches this node's
        // publisher socket a moment later, and nothing tells when.
        if (interrupts.wait(settle)) throw CliError("interrupted", 130);
    }
    Progress progress("publishing", messages.total);
    const auto start = Clock::now();
    std::uint64_t published = 0;
    for (; published < messages.total; ++published) {
        if ((published & 255) == 0 && interrupts.received()) break;
        Status status = node.publish_payload(options.topic, messages.at(published), headers);
        if (!status.ok()) throw CliError("publish failed: " + status.to_string());
        progress.update(published + 1);
    }
    const auto elapsed = Clock::now() - start;
    progress.finish();
    // Closing drops what the publisher socket still holds: give it time to leave.
    (void)interrupts.wait(settle);
    node.close();
    note("published on '" + options.topic + "': " + count_and_rate(published, elapsed));
    return published == messages.total ? 0 : 130;
}

}  // namespace

void add_send_commands(CLI::App& app, Runner& selected) {
    {
        auto [command, options] =
            add_command(app, selected, "send", "Send messages to a work queue", run_send);
        command->add_option("queue", options->queue, "Queue name")->required();
        add_input_options(*command, options->input);
        command->add_option("--guarantee", options->guarantee, "Delivery guarantee")
            ->check(CLI::IsMember({"best_effort", "at_least_once", "effectively_once"}))
            ->capture_default_str();
        add_duration_option(*command, "--ttl", options->ttl,
                            "Time to live of each message (0 = none)");
        command
            ->add_option("--max-attempts", options->max_attempts,
                         "Deliveries before a message is dead-lettered (default 5)")
            ->check(count_validator());
        command->add_flag("--confirm", options->confirm,
                          "Print one line per message on stdout: its id and outcome");
        add_duration_option(*command, "--timeout", options->timeout,
                            "How long to wait for the acks (best_effort: for a consumer)");
        add_cluster_options(*command, options->cluster, true);
    }
    {
        auto [command, options] =
            add_command(app, selected, "publish", "Publish messages on a topic", run_publish);
        command->add_option("topic", options->topic, "Topic")->required();
        add_input_options(*command, options->input);
        command
            ->add_option("--subscribers", options->subscribers,
                         "Wait for N alive subscribers of the topic first (0 = publish at once)")
            ->check(count_validator())
            ->capture_default_str();
        add_duration_option(*command, "--timeout", options->timeout,
                            "How long to wait for subscribers");
        add_duration_option(*command, "--settle", options->settle,
                            "Time for subscriptions to arrive before, and messages to leave after");
        add_cluster_options(*command, options->cluster, false);
    }
}

}  // namespace peermq::cli
