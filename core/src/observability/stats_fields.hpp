// The fields of NodeStats and ChannelStats (peermq/stats.hpp), described once: the name each
// goes by (the control protocol's key, docs/spec/control.md §5.1, and the key of `peermq stats
// --json`), what kind of value it is, its metric family and help text (docs/metrics.md), and the
// member it is read from. The control codec, the metrics renderer and the CLI's JSON all walk
// these tables; a field added here shows up in all three. Constant data; safe from any thread.
//
// The order is the control protocol's: a stats reply writes its keys in this order (the small
// fields first, then the lists, which stop at the reply's budget, then what they left out).
#pragma once

#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "peermq/stats.hpp"

namespace peermq::detail {

enum class StatsKind {
    identity,   // names the node: not a metric of its own (the labels of peermq_node_info)
    counter,    // only grows
    gauge,      // a level
    by_reason,  // a counter per reason (a map name -> count; the metric's label is `label`)
    histogram,  // a duration, power-of-two microsecond buckets (LatencyHistogram)
    channels,   // ChannelStats per queue or topic (the metric's label is `label`)
    peers,      // PeerInfo per peer
    omitted,    // how many entries of a bounded list a control reply left out: not a metric
};

template <typename Owner>
struct StatsFieldInfo {
    std::string_view name;
    StatsKind kind;
    // The metric family ("" = none). A channel field's is the suffix after peermq_queue_ or
    // peermq_topic_; a counter's is written without _total (the renderer adds it).
    std::string_view metric = {};
    std::string_view help = {};
    // by_reason: the label naming the key; channels: the label naming the queue or topic.
    std::string_view label = {};
    // A bounded list (channels, peers): where a control reply counts the entries it left out.
    std::uint64_t Owner::*omitted_in = nullptr;
    // A channel histogram: the channels it is exported for, by their label ("queue": the ack
    // latency, as only queues are acked; "topic": the repair time of reliable topics).
    std::string_view only_for = {};
};

template <typename Owner, typename Value>
struct StatsField : StatsFieldInfo<Owner> {
    using owner_type = Owner;
    using value_type = Value;
    Value Owner::*member = nullptr;
};

template <typename Owner, typename Value>
constexpr StatsField<Owner, Value> stats_field(Value Owner::*member,
                                               std::type_identity_t<StatsFieldInfo<Owner>> info) {
    return {info, member};
}

inline constexpr auto kChannelStatsFields = std::tuple{
    stats_field(&ChannelStats::sent,
                {.name = "sent",
                 .kind = StatsKind::counter,
                 .metric = "sent",
                 .help = "Messages handed to the transport, each attempt counted once."}),
    stats_field(&ChannelStats::received, {.name = "received",
                                          .kind = StatsKind::counter,
                                          .metric = "received",
                                          .help = "Messages accepted from the transport."}),
    stats_field(&ChannelStats::delivered, {.name = "delivered",
                                           .kind = StatsKind::counter,
                                           .metric = "delivered",
                                           .help = "Handler calls."}),
    stats_field(&ChannelStats::handler_errors,
                {.name = "handler_errors",
                 .kind = StatsKind::counter,
                 .metric = "handler_errors",
                 .help = "Handler calls that threw (a nack with the error text)."}),
    stats_field(&ChannelStats::acked, {.name = "acked",
                                       .kind = StatsKind::counter,
                                       .metric = "acked",
                                       .help = "Messages acknowledged by a consumer."}),
    stats_field(&ChannelStats::nacked, {.name = "nacked",
                                        .kind = StatsKind::counter,
                                        .metric = "nacked",
                                        .help = "Negative acknowledgements received."}),
    stats_field(&ChannelStats::retried, {.name = "retried",
                                         .kind = StatsKind::counter,
                                         .metric = "retried",
                                         .help = "Sends after the first attempt."}),
    stats_field(&ChannelStats::redelivered,
                {.name = "redelivered",
                 .kind = StatsKind::counter,
                 .metric = "redelivered",
                 .help = "Messages moved off a consumer that went down."}),
    stats_field(&ChannelStats::expired, {.name = "expired",
                                         .kind = StatsKind::counter,
                                         .metric = "expired",
                                         .help = "Messages whose time to live ran out."}),
    stats_field(&ChannelStats::dead_lettered,
                {.name = "dead_lettered",
                 .kind = StatsKind::counter,
                 .metric = "dead_lettered",
                 .help = "Messages moved to the dead-letter journal."}),
    stats_field(&ChannelStats::duplicates, {.name = "duplicates",
                                            .kind = StatsKind::counter,
                                            .metric = "duplicates",
                                            .help = "Messages dropped by the dedupe window."}),
    stats_field(&ChannelStats::in_flight, {.name = "in_flight",
                                           .kind = StatsKind::gauge,
                                           .metric = "in_flight",
                                           .help = "Messages sent and not yet acked."}),
    stats_field(&ChannelStats::depth, {.name = "depth",
                                       .kind = StatsKind::gauge,
                                       .metric = "depth",
                                       .help = "Messages waiting for a consumer or for credit."}),
    stats_field(&ChannelStats::ack_latency, {.name = "ack_latency",
                                             .kind = StatsKind::histogram,
                                             .metric = "ack_latency_seconds",
                                             .help = "Time from a message's last send to its ack.",
                                             .only_for = "queue"}),
    // Reliable topics: appended, so that the keys before them keep their order on the control
    // protocol's wire.
    stats_field(
        &ChannelStats::repaired,
        {.name = "repaired",
         .kind = StatsKind::counter,
         .metric = "repaired",
         .help = "Reliable topic messages received as REPAIR: to close a gap, or as history."}),
    stats_field(&ChannelStats::lost,
                {.name = "lost",
                 .kind = StatsKind::counter,
                 .metric = "lost",
                 .help = "Reliable topic messages reported lost (never to be delivered)."}),
    stats_field(&ChannelStats::lost_ranges,
                {.name = "lost_ranges",
                 .kind = StatsKind::counter,
                 .metric = "lost_ranges",
                 .help = "Reports of lost reliable topic messages (SampleLost), one per range."}),
    stats_field(&ChannelStats::resent,
                {.name = "resent",
                 .kind = StatsKind::counter,
                 .metric = "resent",
                 .help = "Topic messages this publisher sent again to close a gap."}),
    stats_field(&ChannelStats::history_served,
                {.name = "history_served",
                 .kind = StatsKind::counter,
                 .metric = "history_served",
                 .help = "Topic messages this publisher sent as history to a joining subscriber."}),
    stats_field(&ChannelStats::repair_time,
                {.name = "repair_time",
                 .kind = StatsKind::histogram,
                 .metric = "repair_time_seconds",
                 .help = "Time a reliable topic's gap stayed open, from the first RESEND for it "
                         "to the message that closed it.",
                 .only_for = "topic"}),
};

inline constexpr auto kNodeStatsFields = std::tuple{
    stats_field(&NodeStats::id, {.name = "id", .kind = StatsKind::identity}),
    stats_field(&NodeStats::name, {.name = "name", .kind = StatsKind::identity}),
    stats_field(&NodeStats::dropped, {.name = "dropped",
                                      .kind = StatsKind::by_reason,
                                      .metric = "peermq_dropped",
                                      .help = "Frames and messages not delivered, by reason.",
                                      .label = "reason"}),
    stats_field(&NodeStats::bad_frames,
                {.name = "bad_frames",
                 .kind = StatsKind::counter,
                 .metric = "peermq_bad_frames",
                 .help = "Frames dropped as malformed or forged (frame.*, hello.* and auth.*)."}),
    stats_field(&NodeStats::uncommitted,
                {.name = "uncommitted",
                 .kind = StatsKind::gauge,
                 .metric = "peermq_journal_uncommitted",
                 .help = "Journal records accepted but not yet committed (lost in a crash now)."}),
    stats_field(&NodeStats::discovery_ignored, {.name = "discovery_ignored",
                                                .kind = StatsKind::by_reason,
                                                .metric = "peermq_discovery_ignored",
                                                .help = "Discovery records ignored, by reason.",
                                                .label = "reason"}),
    stats_field(&NodeStats::thread_errors,
                {.name = "thread_errors",
                 .kind = StatsKind::by_reason,
                 .metric = "peermq_thread_errors",
                 .help = "Exceptions caught at the top of a thread of the node, by where.",
                 .label = "where"}),
    stats_field(&NodeStats::queues, {.name = "queues",
                                     .kind = StatsKind::channels,
                                     .metric = "peermq_queue",
                                     .label = "queue",
                                     .omitted_in = &NodeStats::queues_omitted}),
    stats_field(&NodeStats::topics, {.name = "topics",
                                     .kind = StatsKind::channels,
                                     .metric = "peermq_topic",
                                     .label = "topic",
                                     .omitted_in = &NodeStats::topics_omitted}),
    stats_field(&NodeStats::peers, {.name = "peers",
                                    .kind = StatsKind::peers,
                                    .metric = "peermq_peers",
                                    .help = "Known peers by state.",
                                    .omitted_in = &NodeStats::peers_omitted}),
    stats_field(&NodeStats::queues_omitted, {.name = "queues_omitted", .kind = StatsKind::omitted}),
    stats_field(&NodeStats::topics_omitted, {.name = "topics_omitted", .kind = StatsKind::omitted}),
    stats_field(&NodeStats::peers_omitted, {.name = "peers_omitted", .kind = StatsKind::omitted}),
};

// Calls visit(field) for each field of Owner (NodeStats or ChannelStats), in table order;
// `stats.*field.member` is the value.
template <typename Owner, typename Visit>
constexpr void for_each_stats_field(Visit&& visit) {
    const auto each = [&](const auto&... field) { (visit(field), ...); };
    if constexpr (std::is_same_v<Owner, NodeStats>) {
        std::apply(each, kNodeStatsFields);
    } else {
        static_assert(std::is_same_v<Owner, ChannelStats>);
        std::apply(each, kChannelStatsFields);
    }
}

}  // namespace peermq::detail
