// The sender's queues and the life of a message in them: accepted (or restored from the
// outbox), a consumer chosen by credit, pumped out, held in flight until its answer (acks, nacks,
// rejects, local outcomes, a redirect off a consumer gone down), then settled or dead-lettered;
// ack deadlines, retries and expiry. The DATA and BATCH frames are built in sender_frames.cpp.
#include "reliability/sender.hpp"

namespace peermq::detail {

Sender::Sender(const NodeId& self, Logger& log, PeerDirectory& peers, SenderPort& port, Now now)
    : self_(self),
      log_(log),
      peers_(peers),
      port_(port),
      retries_(std::chrono::milliseconds(1), 4096, now.steady) {}

// ---------------------------------------------------------------------------------------------
// Queues

OutQueue& Sender::queue(std::uint32_t index) {
    if (index >= queues_.size()) queues_.resize(index + 1);
    auto& slot = queues_[index];
    if (!slot) {
        slot = std::make_unique<OutQueue>();
        slot->index = index;
        slot->shared = port_.queue_shared(index);
        slot->name = slot->shared->name;
        slot->stats = port_.queue_stats(slot->name);
        slot->backoff =
            std::make_unique<Backoff>(slot->options.retry_initial, slot->options.retry_max);
    }
    return *slot;
}

void Sender::declare(std::uint32_t index, const QueueOptions& options) {
    OutQueue& q = queue(index);
    q.options = options;
    q.declared = true;
    q.flags = 0;
    if (q.options.guarantee != Guarantee::best_effort) q.flags |= kFlagAckRequested;
    if (q.options.guarantee == Guarantee::effectively_once) q.flags |= kFlagDedupe;
    q.backoff = std::make_unique<Backoff>(q.options.retry_initial, q.options.retry_max);
    q.targets_generation = 0;
}

void Sender::accept(SendCmd& cmd, Now now) {
    OutQueue& q = queue(cmd.queue);
    if (q.options.overflow == OverflowPolicy::drop_oldest) {
        while (!q.waiting.empty() && q.waiting.size() + q.inflight >= q.options.max_length) {
            Outgoing oldest = std::move(q.waiting.front());
            q.waiting.pop_front();
            if (q.reliable()) {
                dead_letter(q, oldest, "dropped_oldest", "queue over max_length", now);
            } else {
                port_.count_drop(Drop::queue_dropped_oldest);
                q.shared->release(1);
            }
        }
    }
    Outgoing& message = q.waiting.emplace_back();  // built in place: no copy of a message
    message.id = cmd.id;
    message.payload = std::move(cmd.payload);
    message.headers = std::move(cmd.headers);
    message.created_ms = cmd.created_ms;
    message.deadline_ms = q.options.ttl.count() > 0 ? cmd.created_ms + q.options.ttl.count() : 0;
    if (message.deadline_ms != 0) q.may_expire = true;
    message.seq = ++seq_;
    message.receipt = std::move(cmd.receipt);
    message.journaled = q.reliable() && port_.journal_put(q, message);
    q.stats->depth = q.waiting.size();
}

void Sender::restore(std::uint32_t index, Outgoing message) {
    OutQueue& q = queue(index);
    if (message.deadline_ms != 0) q.may_expire = true;
    seq_ = std::max(seq_, message.seq);
    q.waiting.push_back(std::move(message));
    q.shared->outstanding.fetch_add(1);
}

// ---------------------------------------------------------------------------------------------
// Choosing a consumer and sending

void Sender::refresh_targets(OutQueue& q) {
    if (q.targets_generation == generation_) return;
    q.targets.clear();
    if (port_.has_local_consumer(q.name)) q.targets.push_back(Target{});
    for (const auto& peer : peers_.all()) {
        auto it = peer->queues.find(q.name);
        if (it != peer->queues.end() && !peer->id.is_nil()) {
            QueueLink& link = it->second;
            // Clipped where it is used (credit()); counted once per claim (per HELLO).
            if (link.prefetch > q.options.max_credit && !link.clip_counted) {
                link.clip_counted = true;
                port_.count_drop(Drop::credit_clipped);
            }
            q.targets.push_back(Target{peer.get(), &link});
        }
    }
    q.targets_generation = generation_;
    if (q.next_target >= q.targets.size()) q.next_target = 0;
}

bool Sender::available(const OutQueue& q, const Target& target) {
    if (!target.peer) return port_.local_room(q.name);
    // A suspect peer has missed heartbeats: it may be cut off. New work waits for it to be heard
    // again (or goes elsewhere), so a partition costs at most what was already in flight.
    if (!target.peer->ready()) return false;
    return !q.reliable() || target.link->unacked < credit(q, *target.link);
}

Target* Sender::choose(OutQueue& q, const Outgoing& message) {
    refresh_targets(q);
    const std::size_t n = q.targets.size();
    if (!message.prefer().is_nil()) {
        // Credit is not asked: the consumer still holds this message (its credit was given back
        // at the timeout), so sending it again there adds nothing to its load.
        for (auto& target : q.targets) {
            if (!target.peer) {
                if (message.prefer() == self_) return &target;
                continue;
            }
            if (target.peer->id != message.prefer()) continue;
            if (target.peer->ready()) return &target;
            break;
        }
    }
    const NodeId& avoid = message.avoid();
    Target* fallback = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t index = (q.next_target + i) % n;
        Target& target = q.targets[index];
        if (!available(q, target)) continue;
        const NodeId& id = target.peer ? target.peer->id : self_;
        if (!avoid.is_nil() && id == avoid) {
            if (!fallback) fallback = &target;
            continue;
        }
        q.next_target = (index + 1) % n;
        return &target;
    }
    return fallback;
}

void Sender::record_delivery(OutQueue& q, Outgoing& message, Target& target, Now now) {
    const NodeId& consumer_id = target.peer ? target.peer->id : self_;
    ++q.stats->sent;
    if (message.attempts > 1) ++q.stats->retried;
    PEERMQ_LOG(log_, LogLevel::trace, "queue", "sent", {"queue", q.name}, {"id", message.id},
               {"attempt", message.attempts}, {"consumer", consumer_id});
    if (!q.reliable()) {
        ++q.unreleased;  // released once per loop turn: one atomic instead of one a message
        return;
    }
    if (target.link) ++target.link->unacked;
    const MessageId id = message.id;
    auto [found, inserted] = inflight_.try_emplace(id);
    Inflight& entry = *found;
    if (!inserted) disarm(queue(entry.queue), entry);
    entry.queue = q.index;
    entry.message = std::move(message);
    entry.consumer = consumer_id;
    entry.retry_wait = false;
    entry.sent_at = now.steady;
    entry.add_tried(consumer_id);
    if (inserted) ++q.inflight;
    q.ack_deadlines.arm(entry, now.steady + q.options.ack_timeout, q.inflight);
}

void Sender::pump(OutQueue& q, Now now) {
    if (q.waiting.empty() || draining_) return;
    while (!q.waiting.empty()) {
        if (q.options.ordered && q.inflight > 0) break;
        Outgoing& message = q.waiting.front();
        if (message.deadline_ms != 0 && now.unix_ms >= message.deadline_ms) {
            Outgoing expired = std::move(message);
            q.waiting.pop_front();
            ++q.stats->expired;
            if (q.reliable()) {
                dead_letter(q, expired, "expired", "expired before delivery", now);
            } else {
                port_.count_drop(Drop::ttl_expired);
                q.shared->release(1);
            }
            continue;
        }
        std::size_t sent = 0;
        while (Target* target = choose(q, message)) {
            if (target->peer) {
                sent = deliver_batch(q, *target, now);
                if (sent > 0) break;
                if (target->peer->blocked) continue;
            }
            if (deliver(q, message, *target, now)) {
                sent = 1;
                break;
            }
            // The peer refused (high-water mark): it is now marked blocked; try another.
        }
        if (sent == 0) break;
        q.waiting.erase_front(sent);
    }
    q.stats->depth = q.waiting.size();
}

void Sender::pump_all(Now now) {
    for (auto& q : queues_) {
        if (q && !q->waiting.empty()) pump(*q, now);
    }
}

void Sender::release_all() {
    for (auto& q : queues_) {
        if (q && q->unreleased > 0) {
            q->shared->release(q->unreleased);
            q->unreleased = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

void Sender::on_ack(const NodeId& from, std::span<const MessageId> ids, Now now) {
    LinkCache links;
    for (const auto& id : ids) {
        Inflight* entry = inflight_.find(id);
        if (!entry) {
            port_.count_drop(Drop::ack_unknown_id);
            continue;
        }
        if (!entry->tried(from)) {
            port_.count_drop(Drop::ack_wrong_peer);
            continue;
        }
        complete(*entry, queue(entry->queue), now, &links);
    }
    pump_all(now);  // credit came back
}

void Sender::on_nack(const NodeId& from, Kind kind, std::span<const MessageId> ids,
                     const std::string& error, Now now) {
    for (const auto& id : ids) {
        Inflight* found = inflight_.find(id);
        if (!found) {
            port_.count_drop(Drop::ack_unknown_id);
            continue;
        }
        Inflight& entry = *found;
        if (entry.consumer != from || entry.retry_wait) {
            // A late answer from a consumer it no longer waits on.
            port_.count_drop(!entry.tried(from) ? Drop::ack_wrong_peer : Drop::ack_stale);
            continue;
        }
        OutQueue& q = queue(entry.queue);
        if (kind == Kind::reject) {
            release_credit(entry, q);
            give_up(entry, q, "rejected", error, now);
        } else if (error == "expired" && entry.message.deadline_ms != 0 &&
                   now.unix_ms >= entry.message.deadline_ms) {
            release_credit(entry, q);
            ++q.stats->expired;
            give_up(entry, q, "expired", "expired before it could be handled", now);
        } else {
            ++q.stats->nacked;
            fail_attempt(entry, q, error, Failure::nack, now);
        }
    }
    pump_all(now);
}

void Sender::on_local_outcome(const HandlerOutcome& outcome, Now now) {
    Inflight* found = inflight_.find(outcome.id);
    if (!found) return;
    Inflight& entry = *found;
    if (outcome.result == HandlerOutcome::Result::ack && entry.tried(self_)) {
        // Like a remote consumer's late ack: it counts even after a timeout.
        complete(entry, queue(entry.queue), now);
        return;
    }
    if (entry.consumer != self_ || entry.retry_wait) return;
    OutQueue& q = queue(entry.queue);
    if (outcome.result == HandlerOutcome::Result::reject) {
        release_credit(entry, q);
        give_up(entry, q, "rejected", outcome.error, now);
    } else {
        fail_attempt(entry, q, outcome.error, Failure::nack, now);
    }
}

void Sender::redirect_from(const NodeId& consumer, Now now) {
    std::vector<MessageId> moved;
    inflight_.for_each([&](const MessageId& id, const Inflight& entry) {
        if (entry.consumer == consumer && !entry.retry_wait) moved.push_back(id);
    });
    // Oldest first back at the head of their queues, so they keep their order.
    std::sort(moved.begin(), moved.end(), [this](const MessageId& a, const MessageId& b) {
        return inflight_.at(a).message.seq > inflight_.at(b).message.seq;
    });
    for (const auto& id : moved) {
        Inflight& entry = inflight_.at(id);
        OutQueue& q = queue(entry.queue);
        release_credit(entry, q);
        Failures& failed = entry.message.failed();
        failed.avoid = consumer;
        failed.prefer = NodeId{};
        if (entry.message.attempts > 0) --entry.message.attempts;  // not the message's fault
        ++q.stats->redelivered;
        requeue(entry, q);
    }
    if (!moved.empty()) {
        PEERMQ_LOG(log_, LogLevel::debug, "queue", "redelivering", {"consumer", consumer},
                   {"messages", moved.size()});
        pump_all(now);
    }
}

// ---------------------------------------------------------------------------------------------
// Settling

void Sender::release_credit(const Inflight& entry, const OutQueue& q, LinkCache* links) {
    if (entry.retry_wait) return;
    if (entry.consumer == self_) return;  // local credit is released by the outcome
    QueueLink* link = nullptr;
    if (links && links->queue == q.index && links->consumer == entry.consumer) {
        link = links->link;
    } else {
        if (Peer* peer = peers_.find(entry.consumer)) {
            auto it = peer->queues.find(q.name);
            if (it != peer->queues.end()) link = &it->second;
        }
        if (links) *links = LinkCache{entry.consumer, q.index, link};
    }
    if (link && link->unacked > 0) --link->unacked;
}

void Sender::complete(Inflight& entry, OutQueue& q, Now now, LinkCache* links) {
    const MessageId id = entry.message.id;
    release_credit(entry, q, links);
    disarm(q, entry);
    ++q.stats->acked;
    PEERMQ_LOG(log_, LogLevel::trace, "queue", "acked", {"queue", q.name}, {"id", id});
    q.stats->ack_latency.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now.steady - entry.sent_at).count()));
    if (entry.message.journaled) port_.journal_remove(id);
    if (entry.message.receipt) {
        entry.message.receipt->set_value(
            Receipt{id, Receipt::Outcome::acked, {}, entry.message.last_error()});
    }
    inflight_.erase(id);  // `entry` is gone
    --q.inflight;
    ++q.unreleased;  // given back to send() once per loop turn (release_all)
}

void Sender::fail_attempt(Inflight& entry, OutQueue& q, std::string error, Failure failure,
                          Now now) {
    release_credit(entry, q);
    q.ack_deadlines.clear(entry);
    Failures& failed = entry.message.failed();
    failed.last_error = std::move(error);
    if (failed.first_failure_ms == 0) failed.first_failure_ms = now.unix_ms;
    // A timed-out effectively_once delivery is most likely still running at its consumer, whose
    // dedupe absorbs a second copy; another consumer would run the handler again.
    const bool same = failure == Failure::timeout && (q.flags & kFlagDedupe);
    failed.prefer = same ? entry.consumer : NodeId{};
    failed.avoid = same ? NodeId{} : entry.consumer;
    if (entry.message.attempts >= q.options.max_attempts) {
        std::string last = entry.message.last_error();
        give_up(entry, q, "max_attempts", std::move(last), now);
        return;
    }
    entry.retry_wait = true;
    const auto delay = q.backoff->delay(entry.message.attempts);
    retries_.schedule(entry.message.id, now.steady + delay);
    PEERMQ_LOG(log_, LogLevel::debug, "queue", "retry scheduled", {"queue", q.name},
               {"id", entry.message.id}, {"attempts", entry.message.attempts},
               {"delay_ms", std::chrono::duration_cast<std::chrono::milliseconds>(delay)},
               {"consumer", entry.consumer}, {"next", same ? "same" : "other"},
               {"error", entry.message.last_error()});
}

void Sender::give_up(Inflight& entry, OutQueue& q, std::string reason, std::string error, Now now) {
    const MessageId id = entry.message.id;
    disarm(q, entry);
    Outgoing message = std::move(entry.message);
    inflight_.erase(id);
    --q.inflight;
    dead_letter(q, message, std::move(reason), std::move(error), now);
}

void Sender::requeue(Inflight& entry, OutQueue& q) {
    const MessageId id = entry.message.id;
    disarm(q, entry);
    entry.keep_tried();
    q.waiting.push_front(std::move(entry.message));
    inflight_.erase(id);
    --q.inflight;
}

void Sender::dead_letter(OutQueue& q, Outgoing& message, std::string reason, std::string error,
                         Now now) {
    DeadLetter letter;
    letter.id = message.id;
    letter.queue = q.name;
    letter.headers = message.headers;
    letter.payload = message.payload;
    letter.reason = reason;
    letter.attempts = message.attempts;
    letter.last_error = error;
    letter.created_ms = message.created_ms;
    letter.first_failure_ms = message.first_failure_ms() ? message.first_failure_ms() : now.unix_ms;
    letter.last_failure_ms = now.unix_ms;
    port_.store_dead_letter(std::move(letter));
    ++q.stats->dead_lettered;
    PEERMQ_LOG(log_, LogLevel::info, "dlq", "dead-lettered", {"queue", q.name}, {"id", message.id},
               {"reason", reason}, {"attempts", message.attempts}, {"error", error});
    if (message.receipt) {
        message.receipt->set_value(
            Receipt{message.id, Receipt::Outcome::dead_lettered, reason, std::move(error)});
        message.receipt.reset();
    }
    q.shared->release(1);
}

// ---------------------------------------------------------------------------------------------
// Time

std::string Sender::no_ack_error(const OutQueue& q) {
    return "no ack within " + std::to_string(q.options.ack_timeout.count()) + " ms";
}

void Sender::on_timer(const MessageId& id, Now now) {
    Inflight* found = inflight_.find(id);
    if (!found) return;
    Inflight& entry = *found;
    OutQueue& q = queue(entry.queue);
    if (entry.retry_wait) {
        requeue(entry, q);  // backoff over: first in line again
        pump(q, now);
        return;
    }
    fail_attempt(entry, q, no_ack_error(q), Failure::timeout, now);
}

void Sender::disarm(OutQueue& q, Inflight& entry) {
    q.ack_deadlines.clear(entry);
    if (entry.retry_wait) retries_.cancel(entry.message.id);  // its backoff
}

void Sender::expire(Now now) {
    retries_.expire(now.steady, [&](const MessageId& id) { on_timer(id, now); });
    for (auto& owned : queues_) {
        if (!owned) continue;
        OutQueue& q = *owned;
        while (Inflight* entry = q.ack_deadlines.pop_due(now.steady)) {
            fail_attempt(*entry, q, no_ack_error(q), Failure::timeout, now);
        }
    }
}

void Sender::expire_waiting(Now now) {
    for (auto& owned : queues_) {
        if (!owned || owned->waiting.empty()) continue;
        OutQueue& q = *owned;
        if (!q.may_expire && q.options.no_consumer_timeout.count() == 0) continue;
        // Messages that cannot leave (no consumer, no credit) still expire on time.
        q.waiting.erase_if([&](Outgoing& message) {
            const bool expired = message.deadline_ms != 0 && now.unix_ms >= message.deadline_ms;
            const bool orphaned =
                q.options.no_consumer_timeout.count() > 0 && q.targets.empty() &&
                now.unix_ms - message.created_ms >= q.options.no_consumer_timeout.count();
            if (!expired && !orphaned) return false;
            Outgoing gone = std::move(message);
            if (expired) ++q.stats->expired;
            if (q.reliable()) {
                dead_letter(q, gone, expired ? "expired" : "no_consumer",
                            expired ? "expired before delivery" : "no consumer appeared in time",
                            now);
            } else {
                port_.count_drop(expired ? Drop::ttl_expired : Drop::queue_no_consumer);
                q.shared->release(1);
            }
            return true;
        });
        q.stats->depth = q.waiting.size();
    }
}

std::optional<Clock::Steady> Sender::next_due() const {
    std::optional<Clock::Steady> due = retries_.next_due();
    for (const auto& q : queues_) {
        if (!q) continue;
        if (auto front = q->ack_deadlines.next_due(); front && (!due || *front < *due)) {
            due = front;
        }
    }
    return due;
}

// ---------------------------------------------------------------------------------------------
// Reading

void Sender::update_stats() {
    for (auto& q : queues_) {
        if (!q) continue;
        q->stats->depth = q->waiting.size();
        q->stats->in_flight = q->inflight;
    }
}

void Sender::for_each_unsettled(const std::function<void(Outgoing&)>& fn) {
    inflight_.for_each([&](const MessageId&, Inflight& entry) { fn(entry.message); });
    for (auto& q : queues_) {
        if (!q) continue;
        for (auto& message : q->waiting) fn(message);
    }
}

}  // namespace peermq::detail
