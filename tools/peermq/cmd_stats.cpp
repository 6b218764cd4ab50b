// peermq stats: the counters of a running node, through its control endpoint.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "commands.hpp"
#include "common.hpp"

namespace peermq::cli {
namespace {

struct StatsOptions {
    NodeTarget target;
    bool json = false;
};

std::string latency(const LatencyHistogram& h, double q) {
    if (h.count == 0) return "-";
    const std::uint64_t us = h.quantile_us(q);
    return us >= 10'000 ? std::to_string(us / 1000) + "ms" : std::to_string(us) + "us";
}

std::string queue_table(const std::map<std::string, ChannelStats>& channels) {
    Table table({"QUEUE", "SENT", "RECEIVED", "DELIVERED", "ACKED", "NACKED", "ERRORS", "RETRIED",
                 "REDELIVERED", "EXPIRED", "DEAD", "DUPS", "IN FLIGHT", "DEPTH", "ACK P50",
                 "ACK P99"});
    for (const auto& [name, s] : channels) {
        table.add({name, std::to_string(s.sent), std::to_string(s.received),
                   std::to_string(s.delivered), std::to_string(s.acked), std::to_string(s.nacked),
                   std::to_string(s.handler_errors), std::to_string(s.retried),
                   std::to_string(s.redelivered), std::to_string(s.expired),
                   std::to_string(s.dead_lettered), std::to_string(s.duplicates),
                   std::to_string(s.in_flight), std::to_string(s.depth),
                   latency(s.ack_latency, 0.5), latency(s.ack_latency, 0.99)});
    }
    return table.render();
}

// Topics are never acked: their table has the counters of reliable topics instead (a
// subscriber's repairs and losses, a publisher's resends and history).
std::string topic_table(const std::map<std::string, ChannelStats>& channels) {
    Table table({"TOPIC", "SENT", "RECEIVED", "DELIVERED", "DUPS", "REPAIRED", "LOST", "RESENT",
                 "HISTORY", "REPAIR P50", "REPAIR P99"});
    for (const auto& [name, s] : channels) {
        table.add({name, std::to_string(s.sent), std::to_string(s.received),
                   std::to_string(s.delivered), std::to_string(s.duplicates),
                   std::to_string(s.repaired), std::to_string(s.lost), std::to_string(s.resent),
                   std::to_string(s.history_served), latency(s.repair_time, 0.5),
                   latency(s.repair_time, 0.99)});
    }
    return table.render();
}

// "and 12 more queues" under a list the control reply cut short; nothing when it is complete.
std::string more(std::uint64_t omitted, const char* what) {
    if (omitted == 0) return {};
    return "and " + std::to_string(omitted) + " more " + what +
           " (a control reply lists at most the first ones)\n";
}

// The letters in the node's dead-letter store now, a row per queue and reason; nothing when
// there are none.
std::string dead_letter_table(
    const std::map<std::string, std::map<std::string, std::uint64_t>>& dead_letters) {
    if (dead_letters.empty()) return {};
    Table table({"DEAD LETTERS", "REASON", "COUNT"});
    for (const auto& [queue, by_reason] : dead_letters) {
        for (const auto& [reason, count] : by_reason) {
            table.add({queue, reason, std::to_string(count)});
        }
    }
    return "\n" + table.render();
}

std::string render(const NodeStats& stats) {
    std::string out = "node " + stats.name + " (" + stats.id.to_string() + ")\n\n";
    out += stats.queues.empty() && stats.queues_omitted == 0
               ? "no queues\n"
               : queue_table(stats.queues) + more(stats.queues_omitted, "queues");
    out += dead_letter_table(stats.dead_letters);
    out += "\n";
    out += stats.topics.empty() && stats.topics_omitted == 0
               ? "no topics\n"
               : topic_table(stats.topics) + more(stats.topics_omitted, "topics");
    out += "\n";
    if (stats.peers.empty() && stats.peers_omitted == 0) {
        out += "no peers\n";
    } else {
        Table peers({"PEER", "ID", "STATE", "ADDRESS", "QUEUES", "TOPICS", "LAST HEARD",
                     "FRAMES OUT", "FRAMES IN"});
        const std::int64_t now = now_ms();
        for (const auto& p : stats.peers) {
            peers.add({p.name.empty() ? "?" : p.name, p.id.is_nil() ? "-" : p.id.short_string(),
                       std::string(to_string(p.state)), p.inbox_endpoint,
                       join_names(p.queues, p.queues_omitted),
                       join_names(p.topics, p.topics_omitted), format_age(p.last_heard_ms, now),
                       std::to_string(p.frames_sent), std::to_string(p.frames_received)});
        }
        out += peers.render() + more(stats.peers_omitted, "peers");
    }
    out += "\n";
    if (stats.dropped.empty()) {
        out += "nothing dropped\n";
    } else {
        Table dropped({"DROPPED", "COUNT"});
        for (const auto& [reason, count] : stats.dropped)
            dropped.add({reason, std::to_string(count)});
        out += dropped.render();
    }
    if (!stats.discovery_ignored.empty()) {
        out += "\n";
        Table ignored({"DISCOVERY IGNORED", "COUNT"});
        for (const auto& [reason, count] : stats.discovery_ignored)
            ignored.add({reason, std::to_string(count)});
        out += ignored.render();
    }
    if (!stats.thread_errors.empty()) {
        out += "\n";
        Table errors({"THREAD ERRORS", "COUNT"});
        for (const auto& [where, count] : stats.thread_errors)
            errors.add({where, std::to_string(count)});
        out += errors.render();
    }
    return out;
}

int run(const StatsOptions& options) {
    ControlClient client = connect_control(options.target);
    auto stats = client.stats();
    if (!stats) {
        const bool silent = stats.status().code() == ErrorCode::unavailable;
        throw CliError(stats.status().message() + (silent ? control_hint(options.target) : ""));
    }
    std::string text;
    if (options.json) {
        // Every field of the stats table, and the dead-letter counts, which it has no kind for.
        Json json = to_json(*stats);
        json["dead_letters"] = stats->dead_letters;
        text = dump(json) + "\n";
    } else {
        text = render(*stats);
    }
    print_text(text);
    return 0;
}

}  // namespace

void add_stats_command(CLI::App& app, Runner& selected) {
    auto [command, options] =
        add_command(app, selected, "stats", "Counters of a running node", run);
    add_target_options(*command, options->target);
    command->add_flag("--json", options->json, "Print one JSON object");
}

}  // namespace peermq::cli
