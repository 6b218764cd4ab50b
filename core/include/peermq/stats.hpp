// Observability values returned by Node::stats() and Node::peers(): plain snapshots, safe to
// keep and copy.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "peermq/uuid.hpp"

namespace peermq {

enum class PeerState {
    connecting,  // known by endpoint or record; no HELLO yet
    alive,       // heard from within one heartbeat interval and a half
    suspect,     // silent for longer than that
    down,        // silent for peer_timeout
};

std::string_view to_string(PeerState state) noexcept;

struct PeerInfo {
    NodeId id;  // nil while connecting by endpoint
    std::string name;
    std::string cluster;
    PeerState state = PeerState::connecting;
    std::string inbox_endpoint;
    std::string pub_endpoint;
    std::vector<std::string> queues;  // queues it consumes
    std::vector<std::string> topics;  // topic prefixes it subscribes to
    std::int64_t last_heard_ms = 0;   // Unix ms; 0 = never
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_received = 0;
    // Names this snapshot leaves out of `queues` and `topics`: 0 when the lists are complete (a
    // control reply lists at most 64 of each, docs/spec/control.md §5.5).
    std::uint64_t queues_omitted = 0;
    std::uint64_t topics_omitted = 0;
    // Its CURVE public key in Z85 (docs/security.md); empty in trust mode plain, or while only
    // its address is known.
    std::string public_key;
    // What this node's trust mode makes of that key: "open" (any key may connect), "authorized"
    // (listed in authorized_keys), "pinned" (tofu: the key pinned for its name); empty in trust
    // mode plain or without a key.
    std::string trust;
};

struct PeerEvent {
    PeerInfo peer;
    PeerState previous = PeerState::connecting;
    // Not empty: the node refuses this peer's key, and says why (docs/security.md):
    // "revoked" (authorized: its key left authorized_keys; its links are cut) or "key_changed"
    // (tofu: another key than the one pinned for its name). The peer's state is then down.
    std::string refused{};
};

// Latency histogram with power-of-two microsecond buckets: bucket i counts values in
// [2^i, 2^(i+1)) µs; the last bucket is open-ended.
struct LatencyHistogram {
    std::array<std::uint64_t, 32> buckets{};
    std::uint64_t count = 0;
    std::uint64_t sum_us = 0;

    void record(std::uint64_t micros) noexcept;
    // Upper bound of the bucket holding quantile q (0..1), in µs; 0 when empty.
    std::uint64_t quantile_us(double q) const noexcept;
};

struct ChannelStats {
    std::uint64_t sent = 0;            // handed to the transport (each attempt counted once)
    std::uint64_t received = 0;        // frames accepted from the transport
    std::uint64_t delivered = 0;       // handler calls
    std::uint64_t handler_errors = 0;  // handlers that threw
    std::uint64_t acked = 0;
    std::uint64_t nacked = 0;
    std::uint64_t retried = 0;
    std::uint64_t redelivered = 0;  // moved off a consumer that went down
    std::uint64_t expired = 0;
    std::uint64_t dead_lettered = 0;
    std::uint64_t duplicates = 0;  // dropped by the dedupe window
    // Reliable topics (docs/spec/wire.md §14). A subscriber's: messages that came again to
    // close a gap, messages it will never get and the reports (SampleLost) that said so. A
    // publisher's: messages sent again to close a subscriber's gap, and sent as history.
    std::uint64_t repaired = 0;
    std::uint64_t lost = 0;
    std::uint64_t lost_ranges = 0;
    std::uint64_t resent = 0;
    std::uint64_t history_served = 0;
    std::uint64_t in_flight = 0;   // gauge
    std::uint64_t depth = 0;       // gauge: waiting for a consumer or credit
    LatencyHistogram ack_latency;  // queues: from a message's last send to its ack
    // Reliable topics, a subscriber's: how long each gap stayed open, from the first RESEND for
    // it to the message that closed it. A gap that ended in a loss report is not counted.
    LatencyHistogram repair_time;
};

struct NodeStats {
    NodeId id;
    std::string name;
    std::map<std::string, ChannelStats> queues;
    std::map<std::string, ChannelStats> topics;
    std::vector<PeerInfo> peers;
    // Everything not delivered, by reason: "frame.garbage", "frame.truncated",
    // "frame.bad_version", "frame.oversized_header", "frame.missing_field", "frame.unknown_kind",
    // "hello.bad", "ack.unknown_id", "dedupe.duplicate", "ttl.expired", ... (docs/spec/wire.md).
    std::map<std::string, std::uint64_t> dropped;
    std::uint64_t bad_frames = 0;  // sum of the "frame.*", "hello.*" and "auth.*" reasons
    std::map<std::string, std::uint64_t> discovery_ignored;
    // Exceptions caught where they would have ended a thread the library runs, by where:
    // "dispatcher" (a pool thread, outside any handler), "peer_event_handler" (the
    // on_peer_event handler threw), "control" (the control endpoint's server), "journal_writer"
    // (writing a commit threw: the commit failed and is retried). Each is also logged at error
    // with its cause; the thread carried on. "actor" (1) means the node's own loop threw: the
    // node failed, and every call since returns the error that names the cause.
    std::map<std::string, std::uint64_t> thread_errors;
    // Peers, queues and topics this snapshot leaves out of `peers`, `queues` and `topics`: 0
    // when they are complete (a control reply lists a bounded number, docs/spec/control.md §5.5).
    std::uint64_t peers_omitted = 0;
    std::uint64_t queues_omitted = 0;
    std::uint64_t topics_omitted = 0;
    // Gauge: journal records (messages, acks, dead letters) accepted but not yet committed; at
    // most about NodeOptions::max_uncommitted. A crash now would lose the messages among them.
    std::uint64_t uncommitted = 0;
    // Gauge: the letters in this node's dead-letter store now, by queue, then by reason
    // ("max_attempts", "expired", "rejected", "corrupt", ...). Replay and purge take them out.
    std::map<std::string, std::map<std::string, std::uint64_t>> dead_letters;
};

// One node's numbers for one queue, as that node counts them (Node::cluster_queues,
// docs/spec/wire.md §15). A node is the queue's producer when it has sent to it, its consumer
// when it consumes it; it may be both.
struct QueueReport {
    std::string queue;
    bool producer = false;
    bool consumer = false;
    // As its producer: messages waiting for a consumer or credit, and sent but not settled
    // (gauges); the age of the oldest waiting message (0: none waits); the letters of this
    // queue in its dead-letter store now (gauge); and its counters since the node started.
    std::uint64_t waiting = 0;
    std::uint64_t in_flight = 0;
    std::int64_t oldest_waiting_ms = 0;
    std::uint64_t dead_letters = 0;
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    std::uint64_t nacked = 0;
    std::uint64_t retried = 0;
    std::uint64_t redelivered = 0;
    std::uint64_t expired = 0;
    std::uint64_t dead_lettered = 0;
    // As its consumer: the credit it gives each producer, handler calls and handlers that threw.
    std::uint32_t prefetch = 0;
    std::uint64_t delivered = 0;
    std::uint64_t handler_errors = 0;
};

// What one node of the cluster said about its queues (Node::cluster_queues).
struct NodeQueues {
    NodeId id;
    std::string name;
    // False: no report came (`error` says why: it did not answer in time, or its version does
    // not report queues); its queues are then unknown, not empty.
    bool answered = false;
    std::string error;
    std::int64_t at_ms = 0;  // when the node counted them (Unix ms, its clock)
    std::vector<QueueReport> queues;
    std::uint64_t queues_omitted = 0;  // left out of a report past its bound (256 queues)
};

}  // namespace peermq
