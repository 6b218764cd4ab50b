#include "reliability/receiver.hpp"

namespace peermq::detail {
namespace {

constexpr auto kDedupeHorizon = std::chrono::hours(1);

}  // namespace

Receiver::Receiver(const NodeId& self, const NodeOptions& options, Logger& log, ReceiverPort& port)
    : self_(self),
      options_(options),
      log_(log),
      port_(port),
      dedupe_(kDedupeHorizon, options.dedupe_window),
      acks_(options.ack_batch_interval) {}

void Receiver::consume(const std::string& queue, std::uint32_t slot, const ConsumeOptions& options,
                       const SlotLoad& load) {
    LocalConsumer& consumer = consumers_[queue];
    consumer.queue = queue;
    consumer.slot = slot;
    consumer.options = options;
    consumer.stats = port_.queue_stats(queue);
    consumer.load = &load;
    consumer_by_slot_[slot] = &consumer;
}

bool Receiver::local_room(const std::string& queue) const {
    const LocalConsumer& consumer = consumers_.at(queue);
    return consumer.local_unacked < consumer.options.prefetch;
}

LocalConsumer* Receiver::find(const std::string& queue) {
    // The entries of a batch are for one queue: one hash lookup per batch, not per message.
    if (last_consumer_ && last_consumer_->queue == queue) return last_consumer_;
    auto it = consumers_.find(queue);
    if (it == consumers_.end()) return nullptr;
    last_consumer_ = &it->second;  // consumers are never removed: the pointer stays valid
    return last_consumer_;
}

void Receiver::refuse(const Header& header, Drop reason, const char* error) {
    port_.count_drop(reason);
    if (header.flags & kFlagAckRequested) port_.answer(header.sender, Kind::nack, header.id, error);
}

Job* Receiver::admit(Header& header, std::size_t payload_bytes, Now now) {
    LocalConsumer* found = find(header.channel);
    if (!found) {
        refuse(header, Drop::data_no_consumer, "no consumer for this queue here");
        return nullptr;
    }
    if (payload_bytes > options_.max_payload_bytes) {
        refuse(header, Drop::frame_oversized_payload, "payload over the receiver's limit");
        return nullptr;
    }
    LocalConsumer& consumer = *found;
    ++consumer.stats->received;
    PEERMQ_LOG(log_, LogLevel::trace, "queue", "received", {"queue", header.channel},
               {"id", header.id}, {"attempt", header.attempt}, {"sender", header.sender});
    if (header.deadline_ms != 0 && now.unix_ms >= header.deadline_ms) {
        ++consumer.stats->expired;
        refuse(header, Drop::ttl_expired, "expired");
        return nullptr;
    }
    // Past what its handler may have queued: a best-effort message is dropped, a reliable one
    // NACKed (its sender retries it later, or elsewhere). Credit keeps well-behaved senders under
    // this bound; it stops those that ignore it, and best-effort streams, which have none.
    if (!handler_room(consumer.slot, *consumer.load, payload_bytes)) {
        refuse(header, Drop::inbox_full, "the receiver's handler queue is full");
        return nullptr;
    }
    if (header.flags & kFlagDedupe) {
        if (in_progress_.contains(header.id)) {
            ++consumer.stats->duplicates;
            PEERMQ_LOG(log_, LogLevel::debug, "queue", "duplicate of a message being handled",
                       {"queue", header.channel}, {"id", header.id}, {"attempt", header.attempt});
            port_.count_drop(Drop::dedupe_duplicate);
            return nullptr;  // its first copy is being handled; that one will be acked
        }
        if (dedupe_.contains(header.id)) {
            ++consumer.stats->duplicates;
            port_.count_drop(Drop::dedupe_duplicate);
            // The earlier ack was lost.
            if (header.flags & kFlagAckRequested) {
                queue_ack(header.sender, header.id, consumer, now.steady);
            }
            return nullptr;
        }
        in_progress_.insert(header.id);
    }
    Job& job = jobs_.emplace_back(consumer.slot, Job{}).second;  // built in place
    job.flags = header.flags;
    job.report = (header.flags & (kFlagAckRequested | kFlagDedupe)) != 0;
    job.message.id = header.id;
    job.message.sender = header.sender;
    job.message.channel = header.channel;
    job.message.attempt = header.attempt;
    job.message.created_ms = header.created_ms;
    job.message.deadline_ms = header.deadline_ms;
    job.message.headers = std::move(header.headers);
    return &job;
}

void Receiver::deliver_local(const std::string& queue, std::uint32_t flags, Message message) {
    // effectively_once, retried to this node while its handler still runs: the outcome of that
    // first run settles the message, exactly as a remote receiver would drop this copy.
    if ((flags & kFlagDedupe) && in_progress_.contains(message.id)) return;
    LocalConsumer& consumer = consumers_.at(queue);
    ++consumer.local_unacked;
    ++consumer.stats->received;
    Job job;
    job.flags = flags;
    if (flags & kFlagDedupe) in_progress_.insert(message.id);
    job.message = std::move(message);
    jobs_.emplace_back(consumer.slot, std::move(job));
}

void Receiver::deliver_topic(const TopicMessage& topic,
                             const std::vector<Subscription>& subscriptions, Audience audience) {
    const Message& message = topic.message;
    for (const auto& subscription : subscriptions) {
        if (audience == Audience::best_effort && subscription.reliable) continue;
        if (audience == Audience::reliable && !subscription.reliable) continue;
        if (!message.channel.starts_with(subscription.prefix)) continue;
        if (!handler_room(subscription.slot, *subscription.load, message.payload.size())) {
            port_.count_drop(Drop::inbox_full);
            continue;
        }
        Job job;
        job.report = false;  // nothing to settle, nothing waits for it
        job.message = message;
        jobs_.emplace_back(subscription.slot, std::move(job));
        ++topic.stats->delivered;
    }
}

bool Receiver::deliver_reliable(const Message& message, ChannelStats& stats,
                                const std::vector<Subscription>& subscriptions) {
    const auto matches = [&](const Subscription& s) {
        return s.reliable && message.channel.starts_with(s.prefix);
    };
    for (const auto& subscription : subscriptions) {
        if (matches(subscription) &&
            !has_room(subscription.slot, *subscription.load, message.payload.size())) {
            return false;
        }
    }
    for (const auto& subscription : subscriptions) {
        if (!matches(subscription)) continue;
        (void)handler_room(subscription.slot, *subscription.load, message.payload.size());
        Job job;
        job.report = true;  // its end may let the stream go on (Dispatcher::execute)
        job.message = message;
        jobs_.emplace_back(subscription.slot, std::move(job));
        ++stats.delivered;
    }
    return true;
}

LocalConsumer* Receiver::settle(const HandlerOutcome& outcome, Now now) {
    auto it = consumer_by_slot_.find(outcome.slot);
    if (it == consumer_by_slot_.end()) return nullptr;
    LocalConsumer& consumer = *it->second;
    if (outcome.result == HandlerOutcome::Result::nack) {
        PEERMQ_LOG(log_, LogLevel::debug, "queue", "handler failed", {"queue", consumer.queue},
                   {"id", outcome.id}, {"error", outcome.error});
    }
    if (outcome.flags & kFlagDedupe) {
        in_progress_.erase(outcome.id);
        // A failed run must be run again when the sender retries: only success is remembered.
        if (outcome.result != HandlerOutcome::Result::nack) {
            dedupe_.check_and_insert(outcome.id, now.unix_ms);
        }
    }
    if (outcome.sender == self_) {
        // Delivered by this node to itself: its sender settles it, without frames.
        if (consumer.local_unacked > 0) --consumer.local_unacked;
        return &consumer;
    }
    if (!(outcome.flags & kFlagAckRequested)) return &consumer;
    if (outcome.result == HandlerOutcome::Result::ack) {
        queue_ack(outcome.sender, outcome.id, consumer, now.steady);
    } else {
        port_.answer(outcome.sender,
                     outcome.result == HandlerOutcome::Result::nack ? Kind::nack : Kind::reject,
                     outcome.id, outcome.error);
    }
    return &consumer;
}

void Receiver::queue_ack(const NodeId& sender, const MessageId& id, const LocalConsumer& consumer,
                         Clock::Steady now) {
    const std::size_t limit =
        AckBatcher::limit_for(consumer.options.prefetch, options_.ack_batch_size);
    if (acks_.add(sender, id, limit, now)) port_.flush_acks_now();
}

bool Receiver::has_room(std::uint32_t slot, const SlotLoad& load, std::size_t bytes) {
    if (slot >= unsubmitted_.size()) unsubmitted_.resize(slot + 1);
    Unsubmitted& held = unsubmitted_[slot];
    if (!held.read) {
        held.read = true;
        held.jobs = load.jobs.load(std::memory_order_relaxed);
        held.bytes = load.bytes.load(std::memory_order_relaxed);
    }
    // One message larger than the byte bound still goes to an idle handler.
    return held.jobs < options_.max_handler_queue &&
           (held.jobs == 0 || held.bytes + bytes <= options_.max_handler_queue_bytes);
}

bool Receiver::handler_room(std::uint32_t slot, const SlotLoad& load, std::size_t bytes) {
    if (!has_room(slot, load, bytes)) return false;
    Unsubmitted& held = unsubmitted_[slot];
    ++held.jobs;
    held.bytes += bytes;
    return true;
}

void Receiver::submitted() {
    for (auto& held : unsubmitted_) held.read = false;  // read again after this submit
}

}  // namespace peermq::detail
