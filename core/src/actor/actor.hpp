// Actor: the single thread that owns a node's sockets, peer table, queues, in-flight table,
// dedupe window and journal. Nothing else touches them; other threads reach it through the
// NodeCore mailbox (commands) and it answers through promises and the dispatcher.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "node/node_core.hpp"
#include "observability/drops.hpp"
#include "peermq/log.hpp"
#include "reliability/backoff.hpp"
#include "reliability/dedupe_window.hpp"
#include "reliability/timer_wheel.hpp"
#include "storage/dead_letter_store.hpp"
#include "storage/journal_pipeline.hpp"
#include "util/ring.hpp"
#include "util/uuid_table.hpp"
#include "wire/envelope.hpp"

namespace peermq::detail {

class Actor {
public:
    Actor(NodeCore& core, zmq::socket_t inbox, zmq::socket_t pub, zmq::socket_t sub,
          std::unique_ptr<Journal> journal);
    ~Actor();
    Actor(const Actor&) = delete;
    Actor& operator=(const Actor&) = delete;

    // Takes the journal's outbox (unacked messages of a previous run) into the queues. Called
    // once, before run(), on the creating thread.
    Status load_outbox();
    // The loop; returns after a StopCmd.
    void run();

    // Operations run on the actor through CallCmd.
    NodeStats stats();
    std::vector<PeerInfo> peers() const;
    void set_peer_handler(std::function<void(const PeerEvent&)> handler);
    bool consumes(const std::string& queue) const { return consumers_.contains(queue); }
    Result<std::vector<DeadLetter>> dead_letter_list(const DeadLetterFilter& filter);
    Result<DeadLetter> dead_letter_get(const MessageId& id);
    Result<std::size_t> dead_letter_purge(const DeadLetterFilter& filter);
    Result<MessageId> dead_letter_replay(const MessageId& id, const std::string& queue);

private:
    using Steady = Clock::Steady;

    // Credit of one consumer for one queue: what it advertised and what is unacked there.
    struct QueueLink {
        std::uint32_t prefetch = 0;
        std::uint32_t unacked = 0;
        bool clip_counted = false;  // its prefetch is over a queue's max_credit, and counted
    };

    struct Peer {
        NodeId id;  // nil until its HELLO (peers added by endpoint)
        std::string name;
        std::string cluster;
        std::string host;
        std::uint16_t inbox_port = 0;
        std::uint16_t pub_port = 0;
        std::string inbox_endpoint;
        std::string pub_endpoint;  // connected on the SUB socket when not empty
        zmq::socket_t push;
        PeerState state = PeerState::connecting;
        Steady last_heard{};
        Steady last_sent{};
        Steady last_hello_reply{};
        std::int64_t last_heard_unix = 0;
        bool blocked = false;     // the PUSH refused a frame; polled for POLLOUT
        bool hello_owed = false;  // our HELLO still has to reach it
        bool configured = false;  // added by endpoint (static): kept while down
        bool discovered = false;  // found by discovery (its record names it)
        // A frame reached its link: the address it gave is real. A peer learnt from a HELLO
        // alone that never gets this far is the first to go when the table is full, and is
        // forgotten as soon as it is down.
        bool confirmed = false;
        bool hello_seen = false;    // its name, queues and topics are known: it may become alive
        std::size_t batch_max = 0;  // entries per BATCH frame it reads (its HELLO); 0: none
        std::unordered_map<std::string, QueueLink> queues;
        std::vector<std::string> topics;
        std::uint64_t frames_sent = 0;
        std::uint64_t frames_received = 0;
    };

    // What failed deliveries left on a message; most messages never fail and carry none.
    struct Failures {
        std::string last_error;
        std::int64_t first_failure_ms = 0;
        // Consumers of earlier deliveries that were given up on (timeout, redirect): their late
        // acks still settle the message (reliability.md §6, §8).
        std::vector<NodeId> tried;
        NodeId avoid;  // the consumer that failed it last (nack, down): try another one first
        // The consumer whose ack timed out on an effectively_once queue: retried there first,
        // credit or not, since only that receiver's dedupe window knows the message.
        NodeId prefer;
    };

    // One message on its way: waiting in a queue, or in flight to a consumer. Kept small: a
    // backlog of them is walked on every send.
    struct Outgoing {
        MessageId id;
        Payload payload;
        Headers headers;
        std::int64_t created_ms = 0;
        std::int64_t deadline_ms = 0;
        std::uint64_t seq = 0;
        std::uint32_t attempts = 0;  // deliveries made
        bool journaled = false;
        ReceiptPromise receipt;
        std::unique_ptr<Failures> failures;  // null until a delivery fails

        Failures& failed() {
            if (!failures) failures = std::make_unique<Failures>();
            return *failures;
        }
        const NodeId& avoid() const { return failures ? failures->avoid : kNoNode; }
        const NodeId& prefer() const { return failures ? failures->prefer : kNoNode; }
        const std::string& last_error() const { return failures ? failures->last_error : kNoError; }
        std::int64_t first_failure_ms() const { return failures ? failures->first_failure_ms : 0; }

        static inline const NodeId kNoNode{};
        static inline const std::string kNoError{};
    };

    // A consumer as the sender sees it: a peer's credit link, or this node's own consumer.
    struct Target {
        Peer* peer = nullptr;  // null: the local consumer
        QueueLink* link = nullptr;
    };

    struct LocalConsumer {
        std::string queue;
        std::uint32_t slot = 0;
        ConsumeOptions options;
        std::uint32_t local_unacked = 0;  // deliveries from this node to itself
        ChannelStats* stats = nullptr;
        const SlotLoad* load = nullptr;  // what its handler has queued (Dispatcher::load)
    };

    struct Inflight;

    // When an in-flight delivery stops waiting for its ack. ack_timeout is one value per queue,
    // so deadlines arrive in send order and a FIFO per queue replaces a timer per message (no
    // hashing, no wheel): settling a delivery clears its entry in place, and cleared entries
    // leave from the front, or all at once when they outnumber the live ones.
    struct AckDeadline {
        Steady due{};
        Inflight* entry = nullptr;  // null: acked, failed or redelivered since
    };

    struct OutQueue {
        std::uint32_t index = 0;
        std::string name;
        QueueOptions options;
        bool declared = false;  // options came from a declaration (else defaults)
        std::uint32_t flags = 0;
        QueueShared* shared = nullptr;
        ChannelStats* stats = nullptr;
        std::unique_ptr<Backoff> backoff;
        Ring<Outgoing> waiting;
        std::deque<AckDeadline> ack_deadlines;
        // Position of ack_deadlines.front() in Inflight::ack_slot terms.
        std::uint64_t ack_base = 0;
        bool may_expire = false;     // a waiting message had a deadline: expire_waiting looks here
        std::size_t unreleased = 0;  // sent best-effort or acked, not yet given back to send()
        std::size_t inflight = 0;    // in flight or waiting for a retry
        std::vector<Target> targets;
        std::uint64_t targets_generation = 0;
        std::size_t next_target = 0;
        bool reliable() const { return options.guarantee != Guarantee::best_effort; }
    };

    struct Inflight {
        std::uint32_t queue = 0;
        Outgoing message;
        NodeId consumer;          // the node itself for local deliveries
        bool retry_wait = false;  // its backoff timer is armed on timers_
        bool ack_armed = false;   // it has a live entry in its queue's ack_deadlines...
        bool has_tried = false;
        std::uint64_t ack_slot = 0;  // ...at this position
        Steady sent_at{};
        // Every consumer it went to: their late acks still count. The first is kept inline:
        // most messages go to one consumer only.
        NodeId first_tried;
        std::vector<NodeId> more_tried;

        bool tried(const NodeId& id) const {
            if (has_tried && (first_tried == id || std::find(more_tried.begin(), more_tried.end(),
                                                             id) != more_tried.end())) {
                return true;
            }
            if (!message.failures) return false;
            const auto& earlier = message.failures->tried;
            return std::find(earlier.begin(), earlier.end(), id) != earlier.end();
        }
        // Before the entry goes (requeue): its consumers move onto the message.
        void keep_tried() {
            if (!has_tried) return;
            auto& earlier = message.failed().tried;
            auto keep = [&](const NodeId& id) {
                if (std::find(earlier.begin(), earlier.end(), id) == earlier.end()) {
                    earlier.push_back(id);
                }
            };
            keep(first_tried);
            for (const auto& id : more_tried) keep(id);
        }
        void add_tried(const NodeId& id) {
            if (!has_tried) {
                first_tried = id;
                has_tried = true;
            } else if (!tried(id)) {
                more_tried.push_back(id);
            }
        }
    };

    struct Subscription {
        std::string prefix;
        std::uint32_t slot = 0;
        const SlotLoad* load = nullptr;
    };
    // What one slot holds as handler_room() counts it until the next flush_jobs(): the
    // dispatcher's load read once (it only falls meanwhile, so the count errs on the safe side,
    // and the line the dispatcher's threads write is not read per message), plus jobs_.
    struct Unsubmitted {
        bool read = false;
        std::uint64_t jobs = 0;
        std::uint64_t bytes = 0;
    };

    struct AckBatch {
        std::vector<MessageId> ids;
        Steady first{};
        std::size_t limit = 0;  // leaves at this many ids (see ack_limit)
    };

    // Commands.
    void handle(Command& command);
    void on_send(SendCmd& cmd);
    void on_declare(DeclareQueueCmd& cmd);
    void on_consume(ConsumeCmd& cmd);
    void on_subscribe(SubscribeCmd& cmd);
    void on_publish(PublishCmd& cmd);
    // A topic message to every local subscription whose prefix matches (as far as each one's
    // handler has room).
    void deliver_topic(const Message& message, ChannelStats& stats);
    void on_discovery(DiscoveryCmd& cmd);
    void on_outcomes(OutcomesCmd& cmd);
    void on_flush(FlushCmd& cmd);

    // One turn of the loop: wait, then frames, commands, timers, acks, commits.
    void turn();
    // An exception escaped a turn: the node fails cleanly (NodeCore::fail) and answers every
    // later command with the failure until it is stopped.
    void fail(std::string_view what);
    void run_failed();

    // Frames.
    void read_inbox();
    void read_sub();
    void on_topic_frame(zmq::message_t& topic, zmq::message_t& header, zmq::message_t& payload);
    void on_frame(zmq::message_t& header_frame, zmq::message_t& payload_frame, bool has_payload);
    // `frame`, when given, holds exactly `payload` and may be adopted instead of copied;
    // `owner`, when given, keeps `payload` alive (a BATCH frame's entry) and is shared.
    void on_data(Peer* peer, std::string_view payload, zmq::message_t* frame,
                 const std::shared_ptr<const void>* owner = nullptr);
    void on_batch(Peer* peer, zmq::message_t& body_frame);
    void on_hello(zmq::message_t& header_frame, zmq::message_t& payload_frame);
    void on_ack_frame(Peer* peer);

    // Peers.
    Peer* find_peer(const NodeId& id) const;
    // A new peer record and its link, within the peer table's bound: makes room by forgetting
    // an unconfirmed peer, else counts `refused` and returns null (also when no socket could
    // be made).
    Peer* add_peer(const NodeId& id, const std::string& host, std::uint16_t inbox_port,
                   Drop refused);
    bool make_room();
    void remove_peer(Peer* peer);
    // Opens the peer's links anew (a fresh PUSH, the SUB reconnected): frames queued on the old
    // connection are dropped, and a connection stuck in TCP retransmission is not waited out.
    void reset_links(Peer* peer);
    zmq::socket_t make_push(const std::string& endpoint);
    // How long a link may hold data its peer's kernel has not acknowledged: less than
    // peer_timeout, so that it is given up before its messages are redirected.
    std::chrono::milliseconds unacked_data_timeout() const {
        return std::max(options_.peer_timeout - options_.heartbeat_interval,
                        options_.peer_timeout / 2);
    }
    void heard(Peer* peer);
    // `why`: "bye", "timeout" or "silent" for the log.
    void set_state(Peer* peer, PeerState state, std::string_view why = {});
    void send_hello(Peer* peer);
    void send_control(Peer* peer, Kind kind, std::vector<MessageId> ids = {},
                      std::string error = {});
    bool send_frames(Peer* peer, zmq::message_t& header, zmq::message_t* payload);
    void broadcast_hello();
    void tick_peers(Steady now);
    Steady next_liveness_check(Steady now) const;
    PeerInfo info(const Peer& peer) const;

    // Work queues, sender side.
    OutQueue& out_queue(std::uint32_t index);
    void refresh_targets(OutQueue& q);
    Target* choose(OutQueue& q, const Outgoing& message);
    bool available(const OutQueue& q, const Target& target) const;
    // A consumer's credit on q: what it claims, clipped to the queue's max_credit.
    static std::uint32_t credit(const OutQueue& q, const QueueLink& link) {
        return std::min(link.prefetch, q.options.max_credit);
    }
    bool deliver(OutQueue& q, Outgoing& message, Target& target);
    // Sends the front of q.waiting, and the small messages right behind it that fit, to a peer
    // in one BATCH frame. Returns how many went (they are still at the front of q.waiting);
    // 0 when fewer than two fit (send the front alone) or the peer refused (it is now blocked).
    std::size_t deliver_batch(OutQueue& q, Target& target, std::int64_t now_ms);
    // The bookkeeping of a message just sent (its attempts already counted).
    void record_delivery(OutQueue& q, Outgoing& message, Target& target);
    void pump(OutQueue& q);
    void pump_all();
    // Gives every queue's `unreleased` messages back to send() (QueueShared::release).
    void release_all();
    void on_timer(const MessageId& id);
    void expire_acks(Steady now);
    void arm_ack(OutQueue& q, Inflight& entry);
    void unarm_ack(OutQueue& q, Inflight& entry);
    void disarm(OutQueue& q, Inflight& entry);
    // A consumer's credit link for one queue, looked up once for a run of acks from it. Lives
    // no longer than the handling of one frame: peers and their links may go between frames.
    struct LinkCache {
        NodeId consumer;
        std::uint32_t queue = UINT32_MAX;
        QueueLink* link = nullptr;  // null: that consumer has no link for the queue (any more)
    };
    // Acked: settles and erases the entry.
    void complete(Inflight& entry, OutQueue& q, LinkCache* links = nullptr);
    // After a nack the retry avoids the consumer; after an ack timeout it goes to another one,
    // except on effectively_once queues, where it prefers the same one (see Outgoing::prefer).
    enum class Failure { nack, timeout };
    void fail_attempt(Inflight& entry, OutQueue& q, std::string error, Failure failure);
    void release_credit(const Inflight& entry, const OutQueue& q, LinkCache* links = nullptr);
    void requeue(Inflight& entry, OutQueue& q);
    void redirect_from(const NodeId& consumer);
    void dead_letter(OutQueue& q, Outgoing& message, std::string reason, std::string error);
    void expire_waiting(Steady now);

    // Work queues, receiver side.
    LocalConsumer* find_consumer(const std::string& queue);
    // Acks leave in batches of ack_limit(consumer): NodeOptions::ack_batch_size, but at most
    // half of the consumer's credit, so that the sender gets credit back while it still has
    // some to send with.
    std::size_t ack_limit(const LocalConsumer& consumer) const;
    void queue_ack(const NodeId& sender, const MessageId& id, std::size_t limit);
    void flush_acks(Steady now, bool force);

    void drop(Drop reason, std::uint64_t n = 1) { drops_.count(reason, n, now_); }
    ChannelStats* queue_stats(const std::string& name);
    ChannelStats* topic_stats(const std::string& name);
    std::chrono::milliseconds poll_timeout(Steady now) const;
    void flush_jobs();
    // Room for one more job of `bytes` for a handler (NodeOptions::max_handler_queue and
    // max_handler_queue_bytes, counting the dispatcher's queue and jobs_); if so, counts it.
    bool handler_room(std::uint32_t slot, const SlotLoad& load, std::size_t bytes);
    void on_stop(const StopCmd& cmd);
    // close(): commits what is buffered, retrying for up to the StopCmd's flush_timeout; what is
    // still not on disk then is logged at error and becomes close()'s error.
    void commit_for_close();
    // close(): carries out every command left in the mailbox and waits, until `deadline`, for
    // the handler calls queued so far, taking their outcomes. Sends nothing new to peers.
    void drain_handlers(Steady deadline);
    // Sleeps until a command is in the mailbox, or `timeout` (-1: none) has passed.
    void wait_for_mailbox(std::chrono::milliseconds timeout);
    void shutdown();

    NodeCore& core_;
    const NodeOptions& options_;
    Clock& clock_;
    Logger& log_;
    zmq::socket_t inbox_;
    zmq::socket_t pub_;
    zmq::socket_t sub_;
    std::unique_ptr<JournalPipeline> journal_;  // null: no journal
    std::unique_ptr<DeadLetterStore> dead_letters_;
    bool stopping_ = false;
    bool draining_ = false;  // closing: pump() sends nothing more
    std::chrono::milliseconds close_flush_timeout_{0};

    std::vector<std::unique_ptr<Peer>> peers_;
    std::unordered_map<NodeId, Peer*, UuidHash> by_id_;
    std::uint64_t generation_ = 1;  // bumped whenever the set of consumers may have changed
    std::function<void(const PeerEvent&)> peer_handler_;
    bool hello_dirty_ = false;
    bool trim_memory_ = false;  // peers were forgotten: give their memory back at the next tick
    msgpack::sbuffer hello_body_;

    std::vector<std::unique_ptr<OutQueue>> out_queues_;
    // Looked up by every ack: a flat id table over pooled entries (uuid_table.hpp).
    IdMap<Inflight> inflight_;
    TimerWheel<MessageId, UuidHash> timers_;
    std::uint64_t seq_ = 0;

    std::unordered_map<std::string, LocalConsumer> consumers_;
    std::unordered_map<std::uint32_t, LocalConsumer*> consumer_by_slot_;
    LocalConsumer* last_consumer_ = nullptr;  // find_consumer's last answer
    std::vector<Subscription> subscriptions_;
    DedupeWindow dedupe_;
    std::unordered_set<MessageId, UuidHash> in_progress_;  // effectively_once, being handled
    std::unordered_map<NodeId, AckBatch, UuidHash> acks_;
    AckBatch* last_acks_ = nullptr;  // queue_ack's last batch (acks_ is node-based: it stays)
    NodeId last_acks_sender_;
    std::size_t acks_pending_ = 0;

    std::unordered_map<std::string, ChannelStats> queue_stats_;
    std::unordered_map<std::string, ChannelStats> topic_stats_;
    Drops drops_;

    Steady next_tick_{};
    // The steady time of this loop turn (read after each wait and each batch): per-frame and
    // per-message bookkeeping uses it instead of reading the clock again.
    Steady now_{};
    std::int64_t now_unix_ms_ = 0;
    void read_clock() {
        now_ = clock_.steady_now();
        now_unix_ms_ = clock_.unix_ms();
    }
    Header header_;  // decode scratch
    msgpack::sbuffer encode_buffer_;
    msgpack::sbuffer batch_buffer_{kMaxBatchBytes};  // the body of the BATCH frame being built
    std::vector<BatchEntry> batch_entries_;          // decode scratch
    std::vector<std::pair<std::uint32_t, Job>> jobs_;
    std::vector<Unsubmitted> unsubmitted_;  // by slot
    std::vector<HandlerOutcome> outcomes_;  // scratch for on_outcomes
    std::vector<Command> commands_;
    std::vector<zmq::pollitem_t> poll_items_;
    std::vector<Peer*> polled_peers_;
};

}  // namespace peermq::detail
