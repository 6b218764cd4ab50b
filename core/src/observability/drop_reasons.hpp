// Drop reasons: every reason a node counts something it threw away (NodeStats::dropped), in one
// list. The wire codec returns them, the actor and the control server count them by index, and
// the names are what NodeStats, the control endpoint, the metrics and the logs show. The specs
// (docs/spec/wire.md §9, reliability.md §14, control.md) list the same names; a test
// (tests/unit/drop_reasons_test.cpp) reads them and fails when the two lists differ.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace peermq::detail {

// clang-format off
#define PEERMQ_DROP_REASONS(X)                                                                    \
    /* A frame from the network that is malformed or does not fit the socket (wire.md §9). */    \
    X(frame_truncated,         "frame.truncated",          true)                                  \
    X(frame_oversized_header,  "frame.oversized_header",   true)                                  \
    X(frame_garbage,           "frame.garbage",            true)                                  \
    X(frame_missing_field,     "frame.missing_field",      true)                                  \
    X(frame_bad_version,       "frame.bad_version",        true)                                  \
    X(frame_bad_field,         "frame.bad_field",          true)                                  \
    X(frame_unknown_kind,      "frame.unknown_kind",       true)                                  \
    X(frame_bad_batch,         "frame.bad_batch",          true)                                  \
    X(frame_bad_batch_entry,   "frame.bad_batch_entry",    true)                                  \
    X(frame_topic_mismatch,    "frame.topic_mismatch",     true)                                  \
    X(frame_unknown_sender,    "frame.unknown_sender",     true)                                  \
    X(frame_oversized_payload, "frame.oversized_payload",  true)                                  \
    X(frame_bad_sync,          "frame.bad_sync",           true)                                  \
    X(frame_bad_report,        "frame.bad_report",         true)                                  \
    X(hello_bad,               "hello.bad",                true)                                  \
    X(hello_bad_host,          "hello.bad_host",           true)                                  \
    X(hello_oversized,         "hello.oversized",          true)                                  \
    X(hello_endpoint_conflict, "hello.endpoint_conflict",  true)                                  \
    X(hello_missing_field,     "hello.missing_field",      true)                                  \
    X(hello_wrong_cluster,     "hello.wrong_cluster",      true)                                  \
    X(hello_stale,             "hello.stale",              false)                                 \
    /* Peers and discovery (wire.md §7.1, §9). */                                               \
    X(peer_table_full,         "peer.table_full",          true)                                  \
    X(peer_evicted,            "peer.evicted",             false)                                 \
    X(peer_no_socket,          "peer.no_socket",           true)                                  \
    X(discovery_bad_address,   "discovery.bad_address",    false)                                 \
    X(discovery_other_cluster, "discovery.other_cluster",  false)                                 \
    X(discovery_no_key,        "discovery.no_key",         false)                                 \
    X(discovery_bad_key,       "discovery.bad_key",        true)                                  \
    X(discovery_unauthorized,  "discovery.unauthorized",   true)                                  \
    /* Trust: frames that speak for a key they were not sent with (wire.md §13). */              \
    X(auth_sender_mismatch,    "auth.sender_mismatch",     true)                                  \
    X(auth_handshake_failed,   "auth.handshake_failed",    true)                                  \
    X(link_handshake_cut,      "link.handshake_cut",       false)                                 \
    /* Inbound connections past the cap (wire.md §2): descriptors are not for anyone to hold. */ \
    X(link_idle_cut,           "link.idle_cut",            true)                                  \
    X(link_connection_limit,   "link.connection_limit",    true)                                  \
    X(link_quiet_cut,          "link.quiet_cut",           true)                                  \
    /* Trust modes authorized and tofu (wire.md §13). */                                         \
    X(auth_unauthorized,       "auth.unauthorized",        true)                                  \
    X(auth_revoked,            "auth.revoked",             true)                                  \
    X(auth_send_denied,        "auth.send_denied",         true)                                  \
    X(auth_consume_denied,     "auth.consume_denied",      true)                                  \
    X(auth_subscribe_denied,   "auth.subscribe_denied",    true)                                  \
    X(auth_publish_denied,     "auth.publish_denied",      true)                                  \
    X(auth_key_changed,        "auth.key_changed",         true)                                  \
    /* The reliability layer (reliability.md §14). */                                            \
    X(data_no_consumer,        "data.no_consumer",         false)                                 \
    X(inbox_full,              "inbox.full",               true)                                  \
    X(ttl_expired,             "ttl.expired",              false)                                 \
    X(dedupe_duplicate,        "dedupe.duplicate",         false)                                 \
    X(ack_unknown_id,          "ack.unknown_id",           false)                                 \
    X(ack_wrong_peer,          "ack.wrong_peer",           false)                                 \
    X(ack_stale,               "ack.stale",                false)                                 \
    X(ack_no_route,            "ack.no_route",             false)                                 \
    X(bye_no_route,            "bye.no_route",             false)                                 \
    X(credit_clipped,          "credit.clipped",           false)                                 \
    X(queue_dropped_oldest,    "queue.dropped_oldest",     false)                                 \
    X(queue_no_consumer,       "queue.no_consumer",        false)                                 \
    X(dlq_memory_full,         "dlq.memory_full",          true)                                  \
    /* Reliable topics (wire.md §14). */                                                         \
    X(topic_duplicate,         "topic.duplicate",          false)                                 \
    X(topic_stale_epoch,       "topic.stale_epoch",        false)                                 \
    X(topic_held_full,         "topic.held_full",          false)                                 \
    X(topic_lost,              "topic.lost",               true)                                  \
    /* Queue reports (wire.md §15). */                                                           \
    X(report_rate_limited,     "report.rate_limited",      false)                                 \
    X(report_unexpected,       "report.unexpected",        false)                                 \
    /* Defects of this node, caught where they happened (wire.md §9). */                          \
    X(internal_frame_error,    "internal.frame_error",     true)                                  \
    X(internal_command_error,  "internal.command_error",   true)                                  \
    /* Requests to the control endpoint (control.md). */                                         \
    X(control_garbage,         "control.garbage",          false)                                 \
    X(control_bad_version,     "control.bad_version",      false)                                 \
    X(control_unknown_verb,    "control.unknown_verb",     false)                                 \
    X(control_bad_request,     "control.bad_request",      false)                                 \
    X(control_bad_envelope,    "control.bad_envelope",     false)                                 \
    X(control_unauthorized,    "control.unauthorized",     false)
// clang-format on

enum class Drop : std::uint8_t {
#define PEERMQ_DROP_ENUM(id, name, warn) id,
    PEERMQ_DROP_REASONS(PEERMQ_DROP_ENUM)
#undef PEERMQ_DROP_ENUM
};

struct DropReason {
    std::string_view name;
    // Says that a peer (or something posing as one) sent garbage, or that data was lost here:
    // logged at warn (the first at once, then a summary). The rest are routine: trace only.
    bool warn = false;
};

inline constexpr std::array kDropReasons = {
#define PEERMQ_DROP_ROW(id, name, warn) DropReason{name, warn},
    PEERMQ_DROP_REASONS(PEERMQ_DROP_ROW)
#undef PEERMQ_DROP_ROW
};

inline constexpr std::size_t kDropCount = kDropReasons.size();

constexpr std::size_t index(Drop reason) { return static_cast<std::size_t>(reason); }
constexpr std::string_view name(Drop reason) { return kDropReasons[index(reason)].name; }
constexpr bool warn_worthy(Drop reason) { return kDropReasons[index(reason)].warn; }
// Counted in NodeStats::bad_frames: what a peer sent that the protocol does not allow.
constexpr bool bad_frame(Drop reason) {
    return name(reason).starts_with("frame.") || name(reason).starts_with("hello.") ||
           name(reason).starts_with("auth.");
}

// The reason with this name, if there is one.
constexpr std::optional<Drop> drop_named(std::string_view text) {
    for (std::size_t i = 0; i < kDropCount; ++i) {
        if (kDropReasons[i].name == text) return static_cast<Drop>(i);
    }
    return std::nullopt;
}

}  // namespace peermq::detail
