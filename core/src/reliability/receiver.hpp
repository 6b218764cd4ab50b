// Receiver: the receiving side of work queues and topics. It admits each DATA for a local
// consumer (a consumer for the queue, the payload limit, the TTL, room in the handler's queue
// — NodeOptions::max_handler_queue and max_handler_queue_bytes —, effectively_once duplicates)
// and builds the handler's job; hands topic messages to the subscriptions (Topics) that match
// them; and turns handler outcomes into answers: acks in batches (AckBatcher), NACKs and
// REJECTs at once, the dedupe window kept (docs/spec/reliability.md §7-§9). Answers and drops go
// through a ReceiverPort, which the actor implements and a unit test fakes; time comes from the
// caller. Owned by the actor's thread.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dispatch/dispatcher.hpp"
#include "observability/drop_reasons.hpp"
#include "peermq/log.hpp"
#include "peermq/options.hpp"
#include "peermq/stats.hpp"
#include "reliability/ack_batcher.hpp"
#include "reliability/dedupe_window.hpp"
#include "reliability/topics.hpp"
#include "util/now.hpp"
#include "wire/envelope.hpp"

namespace peermq::detail {

struct LocalConsumer {
    std::string queue;
    std::uint32_t slot = 0;
    ConsumeOptions options;
    std::uint32_t local_unacked = 0;  // deliveries from this node to itself
    ChannelStats* stats = nullptr;
    const SlotLoad* load = nullptr;  // what its handler has queued (Dispatcher::load)
};

class ReceiverPort {
public:
    // A NACK or REJECT of one message to its sender (nothing when there is no route).
    virtual void answer(const NodeId& sender, Kind kind, const MessageId& id,
                        std::string error) = 0;
    // The acks batched so far are to leave now (a batch is full).
    virtual void flush_acks_now() = 0;
    virtual void count_drop(Drop reason) = 0;
    virtual ChannelStats* queue_stats(const std::string& name) = 0;

protected:
    ~ReceiverPort() = default;
};

class Receiver {
public:
    using Jobs = std::vector<std::pair<std::uint32_t, Job>>;  // by handler slot

    Receiver(const NodeId& self, const NodeOptions& options, Logger& log, ReceiverPort& port);

    void consume(const std::string& queue, std::uint32_t slot, const ConsumeOptions& options,
                 const SlotLoad& load);
    const std::unordered_map<std::string, LocalConsumer>& consumers() const { return consumers_; }
    bool consumes(const std::string& queue) const { return consumers_.contains(queue); }
    // This node's consumer of `queue` has credit for one more delivery from this node.
    bool local_room(const std::string& queue) const;

    // A DATA frame's message for a local consumer: its job (the payload still to be set by the
    // caller), or null when it was refused (counted, and NACKed if its sender asked for acks)
    // or is a duplicate. Moves the header's headers into the job.
    Job* admit(Header& header, std::size_t payload_bytes, Now now);
    // A delivery from this node's own sender (its credit counted in local_unacked).
    void deliver_local(const std::string& queue, std::uint32_t flags, Message message);
    // A topic message to every subscription (Topics) whose prefix matches, as far as each
    // handler has room; counts the deliveries in its topic's statistics.
    // `audience`: all of them, or only the best-effort ones (a reliable subscription takes
    // a numbered publisher's messages in order, from TopicStreams).
    enum class Audience { all, best_effort, reliable };
    void deliver_topic(const TopicMessage& topic, const std::vector<Subscription>& subscriptions,
                       Audience audience = Audience::all);
    // A message of a reliable stream to every reliable subscription that matches, or to none
    // (false) when one of them has no room now: the stream then waits, in order.
    bool deliver_reliable(const Message& message, ChannelStats& stats,
                          const std::vector<Subscription>& subscriptions);

    // A handler's outcome: the dedupe window, then the answer to a remote sender. Returns the
    // consumer it came from (null: unknown slot).
    LocalConsumer* settle(const HandlerOutcome& outcome, Now now);

    AckBatcher& acks() { return acks_; }
    const AckBatcher& acks() const { return acks_; }
    // The jobs built since the last call, for the dispatcher; then the handlers' loads are read
    // afresh.
    Jobs& jobs() { return jobs_; }
    void submitted();

private:
    LocalConsumer* find(const std::string& queue);
    // Room for one more job of `bytes` for a handler, counting what the dispatcher holds and the
    // jobs not yet submitted; if so, counts it.
    bool handler_room(std::uint32_t slot, const SlotLoad& load, std::size_t bytes);
    // The same question, without counting the job.
    bool has_room(std::uint32_t slot, const SlotLoad& load, std::size_t bytes);
    void queue_ack(const NodeId& sender, const MessageId& id, const LocalConsumer& consumer,
                   Clock::Steady now);
    void refuse(const Header& header, Drop reason, const char* error);

    // What one slot holds as handler_room() counts it until the next submitted(): the
    // dispatcher's load read once (it only falls meanwhile, so the count errs on the safe side,
    // and the line the dispatcher's threads write is not read per message), plus jobs_.
    struct Unsubmitted {
        bool read = false;
        std::uint64_t jobs = 0;
        std::uint64_t bytes = 0;
    };

    const NodeId self_;
    const NodeOptions& options_;
    Logger& log_;
    ReceiverPort& port_;
    std::unordered_map<std::string, LocalConsumer> consumers_;
    std::unordered_map<std::uint32_t, LocalConsumer*> consumer_by_slot_;
    LocalConsumer* last_consumer_ = nullptr;  // find()'s last answer
    DedupeWindow dedupe_;
    std::unordered_set<MessageId, UuidHash> in_progress_;  // effectively_once, being handled
    AckBatcher acks_;
    Jobs jobs_;
    std::vector<Unsubmitted> unsubmitted_;  // by slot
};

}  // namespace peermq::detail
