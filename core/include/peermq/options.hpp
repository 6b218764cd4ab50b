// Options for nodes, queues and consumers. Plain structs with defaults: set what you need with
// designated initialisers. Validated by Node::create / Node::queue / Node::consume, which return
// a clear invalid_argument error for bad values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peermq/clock.hpp"
#include "peermq/discovery.hpp"
#include "peermq/log.hpp"
#include "peermq/message.hpp"

namespace peermq {

using namespace std::chrono_literals;

enum class Guarantee {
    best_effort,       // one send, no ack, no journal
    at_least_once,     // acks, retries, redirect, TTL, DLQ, journaled outbox
    effectively_once,  // at_least_once + receiver-side dedupe over the retry horizon
};

enum class Durability {
    memory,        // outbox in memory only: lost if the sender process dies
    group_commit,  // SQLite WAL, synchronous=FULL, one transaction every <= 2 ms or 1000 records
    fsync_each,    // one synced transaction per message before send() returns
};

enum class OverflowPolicy {
    block,        // send() waits up to block_timeout for room, then fails with timed_out
    reject,       // send() fails at once with queue_full
    drop_oldest,  // the oldest waiting message goes to the dead-letter journal ("dropped_oldest")
};

// Who may connect to a node, and how its links are protected (docs/security.md).
enum class TrustMode {
    // CurveZMQ on every link (encrypted, each end authenticated by its key) and every frame's
    // sender checked against the key of its connection: no node can speak as another. Any key
    // may connect.
    open,
    // As open, and only the keys listed in the authorized_keys file may connect, each with what
    // it may do (queues it may send to and consume, topic prefixes it may publish and subscribe
    // to). The file is read again when it changes: a removed key's links are cut at once.
    authorized,
    // As open, and the first key seen under a node name is pinned (the data directory's
    // known_keys): another key under that name is refused, loudly. Node names must be unique.
    tofu,
    // No encryption, no authentication: anyone who reaches a port can speak as any node. Only
    // for comparison and for peers that cannot do CURVE; the node warns at start.
    plain,
};

struct QueueOptions {
    Guarantee guarantee = Guarantee::at_least_once;
    std::chrono::milliseconds ttl = 0ms;  // 0 = never expires
    std::uint32_t max_attempts = 5;       // deliveries before dead-lettering ("max_attempts")
    std::chrono::milliseconds retry_initial = 200ms;
    std::chrono::milliseconds retry_max = 10s;
    // An unacked delivery is retried after ack_timeout (and redirected at once if its consumer
    // is marked down).
    std::chrono::milliseconds ack_timeout = 5s;
    std::size_t max_length = 100'000;  // waiting + in flight
    OverflowPolicy overflow = OverflowPolicy::block;
    std::chrono::milliseconds block_timeout = 10s;
    // Deliver to one consumer at a time, in send order (one in flight per queue).
    bool ordered = false;
    // 0 = wait for a consumer for as long as the TTL allows; otherwise dead-letter with reason
    // "no_consumer" after waiting this long.
    std::chrono::milliseconds no_consumer_timeout = 0ms;
    // The most unacked messages this sender gives any one consumer, whatever prefetch the
    // consumer claims: a claim above it is clipped (and counted, "credit.clipped"), so that one
    // greedy consumer cannot take a queue's whole backlog.
    std::uint32_t max_credit = 4096;
};

struct ConsumeOptions {
    // Credit: the most unacked messages a sender may have outstanding at this consumer.
    std::uint32_t prefetch = 256;
    // Handlers of this queue running at once on the dispatcher pool.
    std::uint32_t concurrency = 1;
};

// Topics: what a subscription is promised (docs/guarantees.md).
enum class TopicReliability {
    // Today's topics: what arrives is delivered; what the network or a full buffer lost is
    // gone, silently. Costs nothing.
    best_effort,
    // Each publisher's messages of a topic are delivered in order, once: a gap is asked again
    // from the publisher's history and repaired, or reported (SampleLost) when it cannot be.
    reliable,
};

struct SubscribeOptions {
    TopicReliability reliability = TopicReliability::best_effort;
    // reliable: on joining a publisher, first the last `history` messages of each matching
    // topic it still holds (no older than history_age; 0 = any age), in order, then the live
    // stream, with no gap and no duplicate between the two.
    std::uint32_t history = 0;
    std::chrono::milliseconds history_age = 0ms;
    // reliable: called on a dispatcher thread for every range of messages that could not be
    // repaired (each is counted too: the topic's `lost`, drop reason `topic.lost`).
    SampleLostHandler on_lost{};
};

struct NodeOptions {
    std::string name{};               // required; [A-Za-z0-9._-], at most 48 characters
    std::string cluster = "default";  // nodes only talk to nodes of the same cluster
    TrustMode trust = TrustMode::open;
    // The node's CURVE secret key (Z85, 40 characters; peermq/keys.hpp). Empty: the
    // PEERMQ_SECRET_KEY environment variable, else the data directory's node.key (made at the
    // first start, mode 0600), else a key for this run only. The node id derives from the key:
    // a node that keeps its key keeps its id.
    std::string secret_key{};
    // TrustMode::authorized: the authorized_keys file (`peermq trust add` writes it). Empty: the
    // data directory's authorized_keys.
    std::string authorized_keys{};
    // Where the node listens and announces itself: an interface's name ("lo", "eth0": its IPv4
    // address); "" (default) = the interfaces its discovery runs on (the embedded stack's or an
    // avahi-daemon's allow-list, else the interfaces where this host's avahi-daemon has joined
    // the mDNS group), or every interface when that cannot be told (static peers only); "*" =
    // every interface (0.0.0.0). The `node started` log line says where (`listens`).
    std::string interface;
    std::uint16_t inbox_port = 0;  // 0 = ephemeral
    std::uint16_t pub_port = 0;    // 0 = ephemeral
    // Static peers: their inbox and public key, "host:port#KEY" (Node::address() gives it;
    // "host:port" alone is enough only in plain mode). PEERMQ_PEERS=a,b,... adds to these.
    std::vector<std::string> peers{};
    // Peer discovery; empty = static peers only. See peermq::discovery::automatic().
    DiscoveryFactory discovery{};

    std::chrono::milliseconds heartbeat_interval = 1000ms;
    std::chrono::milliseconds peer_timeout = 3000ms;  // silent this long = down
    // The most peers this node keeps (and so the most links it opens). A HELLO from a new node
    // past it is refused ("peer.table_full") unless an unconfirmed peer (one whose link
    // never came up) can make room. The open-file limit may lower it: the node says so at start.
    std::size_t max_peers = 1024;

    std::size_t dispatcher_threads = 2;
    std::size_t max_payload_bytes = 16u << 20;

    // Where the journal (outbox + dead letters) lives; empty = in memory only.
    std::string data_dir{};
    Durability durability = Durability::group_commit;
    // How far the journal may fall behind send() (group_commit): at most this many records
    // accepted but not yet committed, and none older than max_commit_lag. Past either bound
    // send() waits for the disk like a full queue, by the queue's overflow policy (block and
    // drop_oldest wait up to block_timeout, reject fails at once with queue_full). So a crash
    // loses at most this much, and a full disk holds at most this much in memory.
    std::size_t max_uncommitted = 20'000;
    std::chrono::milliseconds max_commit_lag = 200ms;
    // What the node queues for each handler (each consume() and each subscribe()): messages
    // received and not yet handled, in number and in payload bytes. Past either, a best_effort
    // or topic message is dropped (counted `inbox.full`) and a reliable one is NACKed, so its
    // sender retries it later or elsewhere. Credit keeps well-behaved senders of reliable
    // queues under it (prefetch per sender); keep it above prefetch × the senders you expect.
    std::size_t max_handler_queue = 100'000;
    std::size_t max_handler_queue_bytes = 64u << 20;
    // The history each publisher keeps of its topics, from which it repairs reliable
    // subscribers' gaps and serves late joiners: per topic at most topic_history messages, in
    // all at most topic_history_bytes of payload, none older than topic_history_age. 0 keeps
    // none (reliable subscribers then learn of every gap as lost).
    std::size_t topic_history = 1024;
    std::size_t topic_history_bytes = 16u << 20;
    std::chrono::milliseconds topic_history_age = 10min;
    // Local administration endpoint (peermq/control.hpp): "" = ipc://<data_dir>/control.sock
    // when data_dir is set, else none; "off" = none; or "ipc://PATH" / "tcp://127.0.0.1:PORT"
    // (loopback only).
    std::string control_endpoint{};
    // Who may use a tcp control endpoint, which always speaks CurveZMQ with the node's key:
    // the node's own key, and the public keys this file lists (authorized_keys' format, one
    // "<key> <name>" a line; `peermq trust add --file` edits it). Read at every connection, so
    // a key added or removed counts from the next one. Empty: the data directory's
    // control_keys. An ipc endpoint is guarded by its file's permissions instead.
    std::string control_keys{};

    // Receivers ack after this many messages (but at most half a consumer's prefetch) or this
    // long, whichever comes first; at once when their handlers have nothing left to do.
    std::size_t ack_batch_size = 256;
    std::chrono::microseconds ack_batch_interval = 500us;
    // Message ids remembered for effectively_once dedupe (also bounded by the retry horizon).
    std::size_t dedupe_window = 1'000'000;

    // Logging (peermq/log.hpp): unset = PEERMQ_LOG / PEERMQ_LOG_FORMAT, else warn / logfmt; an
    // explicit value here wins over the environment. Empty log_sink = one line per record on
    // stderr.
    LogLevel log_level = LogLevel::unset;
    LogFormat log_format = LogFormat::unset;
    LogSink log_sink{};

    std::shared_ptr<Clock> clock{};  // null = system clock
};

}  // namespace peermq
