// In flight: what the sender keeps of a message on its way (Outgoing, with what failed
// deliveries left on it), of a delivery waiting for its ack (Inflight: every consumer it went
// to, whose late acks still count), and when each delivery stops waiting (AckDeadlines). Plain
// data and bookkeeping, owned by the sender (sender.hpp) on the actor's thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/node_core.hpp"
#include "peermq/clock.hpp"

namespace peermq::detail {

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

// One message on its way: waiting in a queue, or in flight to a consumer. Kept small: a backlog
// of them is walked on every send.
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

struct Inflight {
    std::uint32_t queue = 0;
    Outgoing message;
    NodeId consumer;          // the node itself for local deliveries
    bool retry_wait = false;  // its backoff timer is armed
    bool ack_armed = false;   // it has a live entry in its queue's AckDeadlines...
    bool has_tried = false;
    std::uint64_t ack_slot = 0;  // ...at this position
    Clock::Steady sent_at{};
    // Every consumer it went to: their late acks still count. The first is kept inline: most
    // messages go to one consumer only.
    NodeId first_tried;
    std::vector<NodeId> more_tried;

    bool tried(const NodeId& id) const;
    // Before the entry goes (requeue): its consumers move onto the message.
    void keep_tried();
    void add_tried(const NodeId& id);
};

// When each in-flight delivery of one queue stops waiting for its ack. ack_timeout is one value per
// queue, so deadlines arrive in send order and a FIFO replaces a timer per message (no hashing, no
// wheel): clearing a delivery's deadline empties its slot in place, and emptied slots leave from
// the front, or all at once when they outnumber the live ones. (A re-declare with another
// ack_timeout can only delay some deadlines by the old value.)
class AckDeadlines {
public:
    // Arms `entry`'s deadline at `due`; `live` is how many deliveries of the queue are in flight.
    void arm(Inflight& entry, Clock::Steady due, std::size_t live);
    void clear(Inflight& entry);
    // The next delivery whose deadline is due at `now`, its deadline cleared; null when none is.
    Inflight* pop_due(Clock::Steady now);
    std::optional<Clock::Steady> next_due() const {
        if (fifo_.empty()) return std::nullopt;
        return fifo_.front().due;
    }
    std::size_t slots() const { return fifo_.size(); }  // live and emptied

private:
    void drop_cleared_front();

    struct Slot {
        Clock::Steady due{};
        Inflight* entry = nullptr;  // null: acked, failed or redelivered since
    };
    std::deque<Slot> fifo_;
    std::uint64_t base_ = 0;  // position of fifo_.front() in Inflight::ack_slot terms
};

}  // namespace peermq::detail
