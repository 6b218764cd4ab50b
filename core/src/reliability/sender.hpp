// Sender: the sending side of a node's work queues. It holds what waits in each queue, chooses a
// consumer for each message by credit (round-robin among those with room, avoiding the one that
// failed it last), sends single DATA frames or BATCHes, and keeps every reliable message in
// flight until it is acked: ack deadlines, retries with backoff, redirects off a consumer that
// went down, late acks after a retry, TTL and no-consumer expiry, dead-lettering
// (docs/spec/reliability.md). It sends nothing itself: frames, local deliveries, journal
// records and dead letters go through a SenderPort, which the actor implements and a unit test
// fakes. Every call takes the time from its caller. Owned by the actor's thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>

#include "actor/peer.hpp"
#include "node/node_core.hpp"
#include "observability/drop_reasons.hpp"
#include "peermq/log.hpp"
#include "reliability/backoff.hpp"
#include "reliability/in_flight.hpp"
#include "reliability/timer_wheel.hpp"
#include "util/now.hpp"
#include "util/ring.hpp"
#include "util/uuid_table.hpp"
#include "wire/envelope.hpp"

namespace peermq::detail {

// A consumer as the sender sees it: a peer's credit link, or this node's own consumer.
struct Target {
    Peer* peer = nullptr;  // null: the local consumer
    QueueLink* link = nullptr;
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
    AckDeadlines ack_deadlines;
    bool may_expire = false;     // a waiting message had a deadline: expire_waiting looks here
    std::size_t unreleased = 0;  // sent best-effort or acked, not yet given back to send()
    std::size_t inflight = 0;    // in flight or waiting for a retry
    std::vector<Target> targets;
    std::uint64_t targets_generation = 0;
    std::size_t next_target = 0;
    bool reliable() const { return options.guarantee != Guarantee::best_effort; }
};

// What the sender asks of the rest of the node.
class SenderPort {
public:
    // Queues the frames on the peer's link; false when the link refused them (it is full).
    virtual bool send_to(Peer& peer, zmq::message_t& header, zmq::message_t* payload) = 0;
    // This node consumes the queue itself, and has credit left for one more delivery.
    virtual bool has_local_consumer(const std::string& queue) = 0;
    virtual bool local_room(const std::string& queue) = 0;
    // Hands a delivery to this node's own consumer.
    virtual void deliver_local(const OutQueue& q, const Outgoing& message) = 0;
    // Buffers the message's outbox record; false when it is not journaled (no journal, memory).
    virtual bool journal_put(const OutQueue& q, const Outgoing& message) = 0;
    virtual void journal_remove(const MessageId& id) = 0;
    virtual void store_dead_letter(DeadLetter letter) = 0;
    virtual void count_drop(Drop reason) = 0;
    virtual QueueShared* queue_shared(std::uint32_t index) = 0;
    virtual ChannelStats* queue_stats(const std::string& name) = 0;

protected:
    ~SenderPort() = default;
};

class Sender {
public:
    Sender(const NodeId& self, Logger& log, PeerDirectory& peers, SenderPort& port, Now now);

    OutQueue& queue(std::uint32_t index);
    void declare(std::uint32_t index, const QueueOptions& options);
    // A message from send(), built into its queue (drop_oldest makes room first).
    void accept(SendCmd& cmd, Now now);
    // A message of a previous run (the journal's outbox).
    void restore(std::uint32_t index, Outgoing message);

    // Sends what the queues' consumers have credit for.
    void pump(OutQueue& q, Now now);
    void pump_all(Now now);
    // Gives every queue's `unreleased` messages back to send() (QueueShared::release).
    void release_all();
    // The set of consumers may have changed (peers, their queues or states, local consumers).
    void peers_changed() { ++generation_; }
    // Closing: nothing more is sent; what waits stays in the outbox.
    void stop_sending() { draining_ = true; }

    // Answers from consumers.
    void on_ack(const NodeId& from, std::span<const MessageId> ids, Now now);
    void on_nack(const NodeId& from, Kind kind, std::span<const MessageId> ids,
                 const std::string& error, Now now);
    // The outcome of a delivery to this node's own consumer.
    void on_local_outcome(const HandlerOutcome& outcome, Now now);
    // The consumer is down: what is in flight there goes back to the head of its queues.
    void redirect_from(const NodeId& consumer, Now now);

    // Ack deadlines and retry timers due at `now`.
    void expire(Now now);
    // TTLs and no_consumer_timeout of messages still waiting.
    void expire_waiting(Now now);
    // When expire() next has work to do.
    std::optional<Clock::Steady> next_due() const;

    // Fills depth and in_flight in each queue's stats.
    void update_stats();
    // Each queue this node sends to, with when the message at the head of its waiting line was
    // created (Unix ms; 0 when none waits): fn(name, head_created_ms).
    template <typename F>
    void for_each_queue(F&& fn) {
        for (auto& q : queues_) {
            if (q)
                fn(q->name, q->waiting.empty() ? std::int64_t{0} : q->waiting.front().created_ms);
        }
    }
    // Every message not settled yet, waiting or in flight (closing: their receipts).
    void for_each_unsettled(const std::function<void(Outgoing&)>& fn);
    std::uint64_t last_seq() const { return seq_; }

private:
    enum class Failure { nack, timeout };
    // A consumer's credit link for one queue, looked up once for a run of acks from it. Lives no
    // longer than the handling of one frame: peers and their links may go between frames.
    struct LinkCache {
        NodeId consumer;
        std::uint32_t queue = UINT32_MAX;
        QueueLink* link = nullptr;  // null: that consumer has no link for the queue (any more)
    };

    void refresh_targets(OutQueue& q);
    Target* choose(OutQueue& q, const Outgoing& message);
    bool available(const OutQueue& q, const Target& target);
    // A consumer's credit on q: what it claims, clipped to the queue's max_credit.
    static std::uint32_t credit(const OutQueue& q, const QueueLink& link) {
        return std::min(link.prefetch, q.options.max_credit);
    }
    bool deliver(OutQueue& q, Outgoing& message, Target& target, Now now);
    // Sends the front of q.waiting, and the small messages right behind it that fit, to a peer in
    // one BATCH frame. Returns how many went (they are still at the front of q.waiting); 0 when
    // fewer than two fit (send the front alone) or the peer refused (it is now blocked).
    std::size_t deliver_batch(OutQueue& q, Target& target, Now now);
    // The bookkeeping of a message just sent (its attempts already counted).
    void record_delivery(OutQueue& q, Outgoing& message, Target& target, Now now);
    // Acked: settles and erases the entry.
    void complete(Inflight& entry, OutQueue& q, Now now, LinkCache* links = nullptr);
    // After a nack the retry avoids the consumer; after an ack timeout it goes to another one,
    // except on effectively_once queues, where it prefers the same one (see Failures::prefer).
    void fail_attempt(Inflight& entry, OutQueue& q, std::string error, Failure failure, Now now);
    // Takes the entry out of flight, then dead-letters its message.
    void give_up(Inflight& entry, OutQueue& q, std::string reason, std::string error, Now now);
    void release_credit(const Inflight& entry, const OutQueue& q, LinkCache* links = nullptr);
    void requeue(Inflight& entry, OutQueue& q);
    void on_timer(const MessageId& id, Now now);
    void disarm(OutQueue& q, Inflight& entry);
    void dead_letter(OutQueue& q, Outgoing& message, std::string reason, std::string error,
                     Now now);
    static std::string no_ack_error(const OutQueue& q);

    const NodeId self_;
    Logger& log_;
    PeerDirectory& peers_;
    SenderPort& port_;
    bool draining_ = false;
    std::uint64_t generation_ = 1;  // bumped whenever the set of consumers may have changed
    std::vector<std::unique_ptr<OutQueue>> queues_;
    // Looked up by every ack: a flat id table over pooled entries (uuid_table.hpp).
    IdMap<Inflight> inflight_;
    TimerWheel<MessageId, UuidHash> retries_;  // backoff timers of messages waiting for a retry
    std::uint64_t seq_ = 0;
    msgpack::sbuffer encode_buffer_;
    msgpack::sbuffer batch_buffer_{kMaxBatchBytes};  // the body of the BATCH frame being built
};

}  // namespace peermq::detail
