#include "actor/actor.hpp"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace peermq::detail {
namespace {

constexpr std::size_t kReadBatch = 1024;  // frames read per socket per loop turn
constexpr std::size_t kCopyBelow = 1024;  // smaller payloads are copied into sent frames
constexpr int kPeerSendHwm = 20'000;
constexpr auto kReconnect = std::chrono::milliseconds(100);
constexpr auto kReconnectMax = std::chrono::milliseconds(250);
constexpr auto kConnectTimeout = std::chrono::milliseconds(250);
constexpr std::size_t kCommitRecords = 1000;  // group commit: at most this many records...
constexpr auto kCommitInterval = std::chrono::milliseconds(2);  // ...or this long
constexpr auto kCommitRetry = std::chrono::milliseconds(100);
constexpr auto kForgetDownPeer = std::chrono::seconds(60);
constexpr std::size_t kMemoryDeadLetters = 100'000;
constexpr std::size_t kMaxTopicStats = 1024;
constexpr std::int64_t kDedupeHorizonMs = 60LL * 60 * 1000;
constexpr auto kDropSummaryInterval = std::chrono::seconds(10);
// close() waits this long for the handler calls already queued (local deliveries included).
constexpr auto kCloseDrain = std::chrono::seconds(2);

// Drops that say a peer (or something posing as one) sent garbage, or that data was lost here:
// worth a warning. The rest (duplicates, late acks, acks to a peer that left) are routine.
bool warn_worthy(std::string_view reason) {
    return reason.starts_with("frame.") || reason.starts_with("hello.") ||
           reason.starts_with("internal.") || reason == "dlq.memory_full" ||
           reason == "peer.table_full" || reason == "peer.no_socket" || reason == "inbox.full";
}

// A BATCH body handed to ZeroMQ: msgpack::sbuffer::release() memory.
void free_batch_body(void* data, void* /*hint*/) { std::free(data); }

void free_lent_payload(void* /*data*/, void* hint) {
    delete static_cast<std::shared_ptr<const void>*>(hint);
}

// A ZeroMQ frame for a payload: small ones are copied; large ones are lent to ZeroMQ, which
// releases them from its I/O thread once sent.
zmq::message_t payload_frame(const Payload& payload) {
    if (payload.size() < kCopyBelow || !payload.owner()) {
        return zmq::message_t(payload.data(), payload.size());
    }
    auto* hold = new std::shared_ptr<const void>(payload.owner());
    return zmq::message_t(const_cast<std::byte*>(payload.data()), payload.size(),
                          &free_lent_payload, hold);
}

// A received frame's bytes as a payload: inline when small (no allocation), else the payload
// keeps the frame (one allocation, no copy). The same rule as for a batch's entries.
Payload payload_of(zmq::message_t& frame) {
    if (frame.size() <= Payload::kInlineCapacity) {
        return Payload::copy_of(frame.data(), frame.size());
    }
    auto holder = std::make_shared<zmq::message_t>(std::move(frame));
    return Payload::adopt(holder, static_cast<const std::byte*>(holder->data()), holder->size());
}

std::string endpoint_of(const std::string& host, std::uint16_t port) {
    if (host.find(':') != std::string::npos) return "tcp://[" + host + "]:" + std::to_string(port);
    return "tcp://" + host + ":" + std::to_string(port);
}

std::string peer_address(zmq::message_t& frame) {
    try {
        const char* address = frame.gets("Peer-Address");
        return address ? address : "";
    } catch (const zmq::error_t&) {
        return {};
    }
}

}  // namespace

Actor::Actor(NodeCore& core, zmq::socket_t inbox, zmq::socket_t pub, zmq::socket_t sub,
             std::unique_ptr<Journal> journal)
    : core_(core),
      options_(core.options),
      clock_(*core.clock),
      log_(core.log),
      inbox_(std::move(inbox)),
      pub_(std::move(pub)),
      sub_(std::move(sub)),
      journal_(std::move(journal)),
      timers_(std::chrono::milliseconds(1), 4096, core.clock->steady_now()),
      dedupe_(std::chrono::milliseconds(kDedupeHorizonMs), options_.dedupe_window) {
    if (journal_) {
        writer_ =
            std::make_unique<JournalWriter>(*journal_, [&core] { core.post(CommitDoneCmd{}); });
    }
    next_tick_ = clock_.steady_now();
    now_ = next_tick_;
    now_unix_ms_ = clock_.unix_ms();
    hello_dirty_ = true;
}

Actor::~Actor() = default;

// ---------------------------------------------------------------------------------------------
// The loop

void Actor::run() {
    try {
        while (!stopping_) turn();
    } catch (const std::exception& e) {
        fail(e.what());
    } catch (...) {
        fail("an exception of unknown type");
    }
    if (!stopping_) run_failed();
    try {
        shutdown();
    } catch (const std::exception& e) {
        PEERMQ_LOG(log_, LogLevel::error, "node", "shutdown failed", {"error", e.what()});
    } catch (...) {
        PEERMQ_LOG(log_, LogLevel::error, "node", "shutdown failed");
    }
}

void Actor::turn() {
    {
        poll_items_.clear();
        polled_peers_.clear();
        poll_items_.push_back({nullptr, core_.mailbox_.fd(), ZMQ_POLLIN, 0});
        poll_items_.push_back({inbox_.handle(), 0, ZMQ_POLLIN, 0});
        poll_items_.push_back({sub_.handle(), 0, ZMQ_POLLIN, 0});
        for (auto& peer : peers_) {
            if (peer->blocked) {
                poll_items_.push_back({peer->push.handle(), 0, ZMQ_POLLOUT, 0});
                polled_peers_.push_back(peer.get());
            }
        }
        try {
            zmq::poll(poll_items_.data(), poll_items_.size(), poll_timeout(clock_.steady_now()));
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
        read_clock();

        // Topic messages before anything that may disconnect the SUB socket: polling it fetches
        // the first part of a message ahead (libzmq's xsub), and a disconnect before that message
        // is read whole trips libzmq's atomicity assertion (fq.cpp) and aborts the process.
        if (poll_items_[2].revents & ZMQ_POLLIN) read_sub();
        // Frames next: acks give credit back, so the next batches leave before this turn
        // takes on the sends (and handler outcomes) queued since the last one.
        if (poll_items_[1].revents & ZMQ_POLLIN) read_inbox();
        if (poll_items_[0].revents & ZMQ_POLLIN) {
            core_.mailbox_.drain(commands_);
            for (auto& command : commands_) {
                try {
                    handle(command);
                } catch (const std::exception& e) {
                    internal_error("internal.command_error", e.what());
                } catch (...) {
                    internal_error("internal.command_error", "an exception of unknown type");
                }
            }
            commands_.clear();
            now_ = clock_.steady_now();
            if (backlog_taken_ > 0) publish_backlog(now_);
            for (auto& q : out_queues_) {
                if (q && !q->waiting.empty()) pump(*q);
            }
        }
        bool writable = false;
        for (std::size_t i = 0; i < polled_peers_.size(); ++i) {
            Peer* peer = polled_peers_[i];  // null once removed during this turn
            if (peer && (poll_items_[3 + i].revents & ZMQ_POLLOUT)) {
                peer->blocked = false;
                if (peer->hello_owed) send_hello(peer);
                writable = true;
            }
        }
        if (writable) pump_all();

        now_ = clock_.steady_now();
        const Steady now = now_;
        timers_.expire(now, [this](const MessageId& id) { on_timer(id); });
        expire_acks(now);
        if (now >= next_tick_) {
            tick_peers(now);
            if (trim_memory_) {
                // What forgotten peers held goes back to the system, not only to the allocator:
                // a flood of fake peers must not leave the node's footprint at its peak.
                trim_memory_ = false;
#ifdef __GLIBC__
                ::malloc_trim(0);
#endif
            }
            expire_waiting(now);
            summarize_drops(now);
            next_tick_ = next_liveness_check(now);
        }
        if (hello_dirty_) broadcast_hello();
        // Batch acks only while the handlers are busy: once the dispatcher has nothing left,
        // no more outcomes are coming soon, and waiting out the interval would only add latency.
        flush_acks(now, core_.dispatcher->idle());
        maybe_commit(now, !commit_waiters_.empty());
        publish_backlog(now);
        flush_jobs();
        // Room for blocked send()s: one wake-up per turn, however many messages left.
        release_all();
    }
}

void Actor::internal_error(std::string_view reason, std::string_view what) {
    // Counted like a drop; the first one of each kind also logged at error with its text: it is
    // a defect of this node, not of a peer. The log itself failing (a user's sink or clock)
    // ends here too.
    std::uint64_t& count = dropped_[std::string(reason)];
    if (count++ > 0) return;
    try {
        PEERMQ_LOG(log_, LogLevel::error, "node", "internal error; the node carries on",
                   {"reason", reason}, {"error", what});
    } catch (...) {
    }
}

void Actor::fail(std::string_view what) {
    core_.fail(make_error(ErrorCode::internal, "the node failed: " + std::string(what)));
    try {
        PEERMQ_LOG(log_, LogLevel::error, "node", "the node failed and stops serving",
                   {"error", what});
    } catch (...) {
    }
}

void Actor::run_failed() {
    // Nothing of the node's state is trusted any more: no frame is read, nothing is sent.
    // Every command is answered with the failure, so no caller waits for an answer that
    // cannot come, until close() stops the actor.
    const Status failure = core_.failure();
    while (!stopping_) {
        wait_for_mailbox(std::chrono::milliseconds(-1));
        core_.mailbox_.drain(commands_);
        for (auto& command : commands_) {
            if (std::holds_alternative<StopCmd>(command)) stopping_ = true;
            if (auto* send = std::get_if<SendCmd>(&command)) {
                if (send->receipt) send->receipt->set_value(failure);
                if (send->durable) send->durable->set_value(failure);
            }
            if (auto* flush = std::get_if<FlushCmd>(&command)) flush->done->set_value(failure);
        }
        commands_.clear();  // a CallCmd's promise breaks: NodeCore::call reports the failure
    }
    for (auto& waiter : commit_waiters_) waiter->set_value(failure);
    commit_waiters_.clear();
}

std::chrono::milliseconds Actor::poll_timeout(Steady now) const {
    Steady due = next_tick_;
    if (auto next = timers_.next_due(); next && *next < due) due = *next;
    for (const auto& q : out_queues_) {
        if (q && !q->ack_deadlines.empty()) due = std::min(due, q->ack_deadlines.front().due);
    }
    if (acks_pending_ > 0) {
        for (const auto& [id, batch] : acks_) {
            if (!batch.ids.empty()) {
                due =
                    std::min(due, batch.first + std::chrono::duration_cast<Clock::Steady::duration>(
                                                    options_.ack_batch_interval));
            }
        }
    }
    if (journal_ && !commit_in_flight_ && journal_->pending() > 0) {
        due = std::min(due, std::max(first_uncommitted_ + kCommitInterval, commit_retry_at_));
    }
    if (due <= now) return std::chrono::milliseconds(0);
    // Round up: waking a little late is fine, spinning on a sub-millisecond wait is not.
    return std::chrono::ceil<std::chrono::milliseconds>(due - now);
}

void Actor::drain_handlers(Steady deadline) {
    for (;;) {
        core_.mailbox_.drain(commands_);
        const bool had_commands = !commands_.empty();
        for (auto& command : commands_) {
            if (std::holds_alternative<StopCmd>(command)) continue;
            try {
                handle(command);
            } catch (const std::exception& e) {
                internal_error("internal.command_error", e.what());
            }
        }
        commands_.clear();
        flush_jobs();
        if (core_.dispatcher->drained()) {
            // Every outcome is ready to take; their wake-up may not be in the mailbox yet.
            OutcomesCmd take;
            on_outcomes(take);
            flush_jobs();
            if (!had_commands && core_.dispatcher->drained()) return;
            continue;
        }
        const Steady now = clock_.steady_now();
        if (now >= deadline) {
            PEERMQ_LOG(
                log_, LogLevel::warn, "node",
                "closing: handler calls still queued or running are not waited for",
                {"waited_ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(kCloseDrain).count()});
            return;
        }
        wait_for_mailbox(std::min(std::chrono::ceil<std::chrono::milliseconds>(deadline - now),
                                  std::chrono::milliseconds(10)));
    }
}

void Actor::wait_for_mailbox(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{nullptr, core_.mailbox_.fd(), ZMQ_POLLIN, 0};
    try {
        zmq::poll(&item, 1, timeout);
    } catch (const zmq::error_t&) {
        // EINTR, or a context being shut down: the caller looks at the mailbox either way.
    }
}

void Actor::flush_jobs() {
    for (auto& held : unsubmitted_) held.read = false;  // read again after this submit
    if (!jobs_.empty()) core_.dispatcher->submit(jobs_);
}

bool Actor::handler_room(std::uint32_t slot, const SlotLoad& load, std::size_t bytes) {
    if (slot >= unsubmitted_.size()) unsubmitted_.resize(slot + 1);
    Unsubmitted& held = unsubmitted_[slot];
    if (!held.read) {
        held.read = true;
        held.jobs = load.jobs.load(std::memory_order_relaxed);
        held.bytes = load.bytes.load(std::memory_order_relaxed);
    }
    // One message larger than the byte bound still goes to an idle handler.
    if (held.jobs >= options_.max_handler_queue ||
        (held.jobs > 0 && held.bytes + bytes > options_.max_handler_queue_bytes)) {
        return false;
    }
    ++held.jobs;
    held.bytes += bytes;
    return true;
}

void Actor::handle(Command& command) {
    // clang-format off
    std::visit(
        [this](auto& cmd) {
            using T = std::decay_t<decltype(cmd)>;
            if constexpr (std::is_same_v<T, SendCmd>) on_send(cmd);
            else if constexpr (std::is_same_v<T, DeclareQueueCmd>) on_declare(cmd);
            else if constexpr (std::is_same_v<T, ConsumeCmd>) on_consume(cmd);
            else if constexpr (std::is_same_v<T, SubscribeCmd>) on_subscribe(cmd);
            else if constexpr (std::is_same_v<T, PublishCmd>) on_publish(cmd);
            else if constexpr (std::is_same_v<T, DiscoveryCmd>) on_discovery(cmd);
            else if constexpr (std::is_same_v<T, OutcomesCmd>) on_outcomes(cmd);
            else if constexpr (std::is_same_v<T, FlushCmd>) on_flush(cmd);
            else if constexpr (std::is_same_v<T, CallCmd>) cmd.fn(*this);
            else if constexpr (std::is_same_v<T, StopCmd>) on_stop(cmd);
            else if constexpr (std::is_same_v<T, CommitDoneCmd>) on_commit_done();
        },
        command);
    // clang-format on
}

void Actor::shutdown() {
    if (core_.failed()) {
        // What was accepted is still kept if the journal can take it; the rest is the failure.
        // Sockets close without a word: peers find this node down by its silence.
        commit_for_close();
        const Status failure = core_.failure();
        auto failed = [&](ReceiptPromise& receipt) {
            if (receipt) receipt->set_value(failure);
        };
        inflight_.for_each(
            [&](const MessageId&, Inflight& entry) { failed(entry.message.receipt); });
        for (auto& q : out_queues_) {
            if (!q) continue;
            for (auto& message : q->waiting) failed(message.receipt);
        }
        for (auto& peer : peers_) peer->push.set(zmq::sockopt::linger, 0);
        peers_.clear();
        by_id_.clear();
        return;
    }
    // What the application did before close() is carried out: every command still in the
    // mailbox (sends are journaled, publishes go out and to local subscribers), and the handler
    // calls already queued run, within kCloseDrain. Nothing new is sent to peers from here on:
    // messages still waiting stay in the outbox for the next start.
    draining_ = true;
    drain_handlers(clock_.steady_now() + kCloseDrain);
    const Steady now = clock_.steady_now();
    flush_acks(now, true);
    // A peer known only by endpoint (its HELLO answer not in yet) may know us already: our
    // HELLO reached it if a frame left for it, so it gets a BYE too.
    for (auto& peer : peers_) {
        if (peer->state == PeerState::down) continue;
        if (!peer->id.is_nil() || peer->frames_sent > 0 || peer->frames_received > 0) {
            send_control(peer.get(), Kind::bye);
        }
    }
    commit_for_close();
    for (auto& waiter : commit_waiters_) {
        waiter->set_value(make_error(ErrorCode::closed, "node closed"));
    }
    commit_waiters_.clear();
    auto closed = [](const ReceiptPromise& receipt) {
        if (receipt) {
            receipt->set_value(
                make_error(ErrorCode::closed, "node closed before the message was acked"));
        }
    };
    inflight_.for_each([&](const MessageId&, Inflight& entry) { closed(entry.message.receipt); });
    for (auto& q : out_queues_) {
        for (auto& message : q->waiting) closed(message.receipt);
    }
    // Give BYE frames a moment to leave; undelivered data is the senders' to retry.
    for (auto& peer : peers_) peer->push.set(zmq::sockopt::linger, 100);
    peers_.clear();
    by_id_.clear();
    inbox_.set(zmq::sockopt::linger, 0);
    pub_.set(zmq::sockopt::linger, 100);  // like BYE: what was published before close() leaves
    sub_.set(zmq::sockopt::linger, 0);
    inbox_.close();
    pub_.close();
    sub_.close();
}

// ---------------------------------------------------------------------------------------------
// Commands

Actor::OutQueue& Actor::out_queue(std::uint32_t index) {
    if (index >= out_queues_.size()) out_queues_.resize(index + 1);
    auto& slot = out_queues_[index];
    if (!slot) {
        slot = std::make_unique<OutQueue>();
        slot->index = index;
        slot->shared = core_.queue_shared(index);
        slot->name = slot->shared->name;
        slot->stats = queue_stats(slot->name);
        slot->backoff =
            std::make_unique<Backoff>(slot->options.retry_initial, slot->options.retry_max);
    }
    return *slot;
}

void Actor::on_declare(DeclareQueueCmd& cmd) {
    OutQueue& q = out_queue(cmd.queue);
    q.options = cmd.options;
    q.declared = true;
    q.flags = 0;
    if (q.options.guarantee != Guarantee::best_effort) q.flags |= kFlagAckRequested;
    if (q.options.guarantee == Guarantee::effectively_once) q.flags |= kFlagDedupe;
    q.backoff = std::make_unique<Backoff>(q.options.retry_initial, q.options.retry_max);
    q.targets_generation = 0;
}

void Actor::on_send(SendCmd& cmd) {
    // From here the message is in the journal's buffer: publish_backlog() moves it from
    // `queued` to `records`.
    if (cmd.backlogged) ++backlog_taken_;
    OutQueue& q = out_queue(cmd.queue);
    if (q.options.overflow == OverflowPolicy::drop_oldest) {
        while (!q.waiting.empty() && q.waiting.size() + q.inflight >= q.options.max_length) {
            Outgoing oldest = std::move(q.waiting.front());
            q.waiting.pop_front();
            if (q.reliable()) {
                dead_letter(q, oldest, "dropped_oldest", "queue over max_length");
            } else {
                drop("queue.dropped_oldest");
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
    if (q.reliable() && journal_ && options_.durability != Durability::memory) {
        if (journal_->pending() == 0) first_uncommitted_ = clock_.steady_now();
        journal_->outbox_put(OutboxRecord{
            message.id, q.name, message.headers, message.payload, 0, message.created_ms,
            message.deadline_ms, static_cast<std::uint8_t>(q.options.guarantee), message.seq});
        message.journaled = true;
    }
    if (cmd.durable) commit_waiters_.push_back(std::move(cmd.durable));
    q.stats->depth = q.waiting.size();
}

void Actor::on_consume(ConsumeCmd& cmd) {
    LocalConsumer& consumer = consumers_[cmd.queue];
    consumer.queue = cmd.queue;
    consumer.slot = cmd.slot;
    consumer.options = cmd.options;
    consumer.stats = queue_stats(cmd.queue);
    consumer.load = &core_.dispatcher->load(cmd.slot);
    consumer_by_slot_[cmd.slot] = &consumer;
    ++generation_;
    hello_dirty_ = true;
    pump_all();
}

void Actor::on_subscribe(SubscribeCmd& cmd) {
    sub_.set(zmq::sockopt::subscribe, cmd.prefix);
    subscriptions_.push_back(Subscription{cmd.prefix, cmd.slot, &core_.dispatcher->load(cmd.slot)});
    hello_dirty_ = true;
}

void Actor::on_publish(PublishCmd& cmd) {
    static const Headers kNoHeaders;
    encode_buffer_.clear();
    encode_data_header(DataHeaderRef{core_.id, cmd.id, cmd.topic, 0, 1, cmd.created_ms, 0, 0,
                                     cmd.headers.empty() ? kNoHeaders : cmd.headers},
                       encode_buffer_);
    ChannelStats* stats = topic_stats(cmd.topic);
    zmq::message_t topic(cmd.topic.data(), cmd.topic.size());
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    zmq::message_t payload = payload_frame(cmd.payload);
    // PUB never blocks: past its high-water mark ZeroMQ drops for slow subscribers.
    pub_.send(topic, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    pub_.send(header, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    pub_.send(payload, zmq::send_flags::dontwait);
    ++stats->sent;
    Message message;
    message.id = cmd.id;
    message.sender = core_.id;
    message.channel = cmd.topic;
    message.created_ms = cmd.created_ms;
    message.headers = std::move(cmd.headers);
    message.payload = std::move(cmd.payload);  // its frame is built: the copy here is not needed
    deliver_topic(message, *stats);
}

void Actor::deliver_topic(const Message& message, ChannelStats& stats) {
    for (const auto& subscription : subscriptions_) {
        if (!message.channel.starts_with(subscription.prefix)) continue;
        if (!handler_room(subscription.slot, *subscription.load, message.payload.size())) {
            drop("inbox.full");
            continue;
        }
        Job job;
        job.message = message;
        jobs_.emplace_back(subscription.slot, std::move(job));
        ++stats.delivered;
    }
}

void Actor::on_discovery(DiscoveryCmd& cmd) {
    const ServiceRecord& record = cmd.event.record;
    if (!record.id.is_nil() && record.id == core_.id) return;
    if (!record.cluster.empty() && record.cluster != options_.cluster) {
        drop("discovery.other_cluster");
        return;
    }
    if (cmd.event.kind == DiscoveryEvent::Kind::lost) {
        // mDNS never decides liveness; a peer that is also down is forgotten.
        Peer* peer = find_peer(record.id);
        if (peer && peer->state == PeerState::down && !peer->configured) remove_peer(peer);
        return;
    }
    // A record's address becomes an endpoint, like a HELLO's host: an address or nothing.
    if (!is_ip_literal(record.host) || record.inbox_port == 0) {
        drop("discovery.bad_address");
        return;
    }
    const std::string endpoint = endpoint_of(record.host, record.inbox_port);
    Peer* peer = record.id.is_nil() ? nullptr : find_peer(record.id);
    if (!peer) {
        for (auto& candidate : peers_) {
            if (candidate->inbox_endpoint == endpoint) peer = candidate.get();
        }
    }
    const bool configured = record.id.is_nil();
    if (peer) {
        if (peer->inbox_endpoint != endpoint && !record.id.is_nil()) {
            // Same node, new address or port (a changed record): move the link.
            const bool was_configured = peer->configured;
            remove_peer(peer);
            peer = add_peer(record.id, record.host, record.inbox_port, "peer.table_full");
            if (!peer) return;
            peer->configured = was_configured;
            send_hello(peer);
        }
        peer->configured = peer->configured || configured;
        peer->discovered = peer->discovered || !configured;
        return;
    }
    peer = add_peer(record.id, record.host, record.inbox_port, "peer.table_full");
    if (!peer) return;
    peer->configured = configured;
    peer->discovered = !configured;
    send_hello(peer);
}

void Actor::on_outcomes(OutcomesCmd& /*cmd*/) {
    core_.dispatcher->take_outcomes(outcomes_);
    if (outcomes_.empty()) return;  // taken with an earlier wake-up
    for (auto& outcome : outcomes_) {
        auto it = consumer_by_slot_.find(outcome.slot);
        if (it == consumer_by_slot_.end()) continue;
        LocalConsumer& consumer = *it->second;
        if (outcome.result == HandlerOutcome::Result::nack) {
            PEERMQ_LOG(log_, LogLevel::debug, "queue", "handler failed", {"queue", consumer.queue},
                       {"id", outcome.id}, {"error", outcome.error});
        }
        const bool dedupe = (outcome.flags & kFlagDedupe) != 0;
        if (dedupe) {
            in_progress_.erase(outcome.id);
            if (outcome.result != HandlerOutcome::Result::nack) {
                dedupe_.check_and_insert(outcome.id, clock_.unix_ms());
            }
        }
        if (outcome.sender == core_.id) {
            // Delivered by this node to itself: settle the in-flight entry directly.
            if (consumer.local_unacked > 0) --consumer.local_unacked;
            Inflight* found = inflight_.find(outcome.id);
            if (!found) continue;
            Inflight& entry = *found;
            if (outcome.result == HandlerOutcome::Result::ack && entry.tried(core_.id)) {
                // Like a remote consumer's late ack: it counts even after a timeout.
                complete(entry, out_queue(entry.queue));
                continue;
            }
            if (entry.consumer == core_.id && !entry.retry_wait) {
                OutQueue& q = out_queue(entry.queue);
                if (outcome.result == HandlerOutcome::Result::reject) {
                    release_credit(entry, q);
                    disarm(q, entry);
                    Outgoing message = std::move(entry.message);
                    inflight_.erase(outcome.id);
                    --q.inflight;
                    dead_letter(q, message, "rejected", outcome.error);
                } else {
                    fail_attempt(entry, q, outcome.error, Failure::nack);
                }
            }
            continue;
        }
        if (!(outcome.flags & kFlagAckRequested)) continue;
        if (outcome.result == HandlerOutcome::Result::ack) {
            queue_ack(outcome.sender, outcome.id, ack_limit(consumer));
        } else if (Peer* peer = find_peer(outcome.sender)) {
            send_control(peer,
                         outcome.result == HandlerOutcome::Result::nack ? Kind::nack : Kind::reject,
                         {outcome.id}, outcome.error);
        }
    }
    pump_all();
}

void Actor::on_flush(FlushCmd& cmd) {
    if (!journal_ || options_.durability == Durability::memory || journal_idle()) {
        cmd.done->set_value(core_.storage_error());
        return;
    }
    commit_waiters_.push_back(std::move(cmd.done));
}

// ---------------------------------------------------------------------------------------------
// Frames

void Actor::read_inbox() {
    zmq::message_t header;
    zmq::message_t payload;
    for (std::size_t n = 0; n < kReadBatch; ++n) {
        if (!inbox_.recv(header, zmq::recv_flags::dontwait)) break;
        std::size_t frames = 1;
        if (header.more()) {
            (void)inbox_.recv(payload);
            frames = 2;
            zmq::message_t extra;
            bool more = payload.more();
            while (more) {
                (void)inbox_.recv(extra);
                more = extra.more();
                ++frames;
            }
        }
        if (frames > 2) {
            drop("frame.truncated");
            continue;
        }
        try {
            on_frame(header, payload, frames == 2);
        } catch (const std::exception& e) {
            internal_error("internal.frame_error", e.what());
        } catch (...) {
            internal_error("internal.frame_error", "an exception of unknown type");
        }
        payload.rebuild();
    }
    flush_jobs();
}

void Actor::on_frame(zmq::message_t& header_frame, zmq::message_t& payload_frame,
                     bool has_payload) {
    if (auto reason = decode_header(header_frame.data(), header_frame.size(), header_)) {
        drop(*reason);
        return;
    }
    Peer* peer = find_peer(header_.sender);
    // A HELLO is counted and heard by on_hello, once it has filled in the peer's name, queues
    // and topics: the alive transition (and its PeerEvent) must carry them.
    if (peer && header_.kind != Kind::hello) {
        ++peer->frames_received;
        if (header_.kind != Kind::bye) heard(peer);
    }
    switch (header_.kind) {
        case Kind::data:
            if (!has_payload) {
                drop("frame.truncated");
                return;
            }
            on_data(peer, payload_frame.to_string_view(), &payload_frame);
            break;
        case Kind::batch:
            if (!has_payload) {
                drop("frame.truncated");
                return;
            }
            on_batch(peer, payload_frame);
            break;
        case Kind::hello:
            if (!has_payload) {
                drop("hello.missing_field");
                return;
            }
            on_hello(header_frame, payload_frame);
            break;
        case Kind::ack:
        case Kind::nack:
        case Kind::reject: on_ack_frame(peer); break;
        case Kind::heartbeat:
            if (!peer) drop("frame.unknown_sender");
            break;
        case Kind::bye:
            if (peer && peer->state != PeerState::down) {
                set_state(peer, PeerState::down, "bye");
                redirect_from(peer->id);
                ++generation_;
            }
            break;
    }
}

void Actor::on_batch(Peer* peer, zmq::message_t& body_frame) {
    if (auto reason =
            split_batch(body_frame.data(), body_frame.size(), header_.seq, batch_entries_)) {
        drop(*reason);
        return;
    }
    const NodeId sender = header_.sender;
    // Small payloads are copied into their Payload; larger ones share the batch frame, made
    // shareable by the first of them: one allocation per batch that needs it, none otherwise.
    // (ZeroMQ shares a large frame's bytes between copies; a small frame's copy has its own, so
    // the entries are found in it by offset.)
    const auto* base = static_cast<const char*>(body_frame.data());
    std::shared_ptr<const void> owner;
    const char* shared_bytes = nullptr;
    BatchHeaderDecoder decoder;
    for (const BatchEntry& entry : batch_entries_) {
        if (auto reason = decoder.decode(entry.header, header_)) {
            drop(*reason);
            continue;
        }
        // An entry is a DATA frame of the batch's sender; anything else would let one frame
        // speak for another node, or smuggle control frames past their checks.
        if (header_.kind != Kind::data || header_.sender != sender) {
            drop("frame.bad_batch_entry");
            continue;
        }
        if (entry.payload.size() <= Payload::kInlineCapacity) {
            on_data(peer, entry.payload, nullptr);
            continue;
        }
        if (!owner) {
            auto holder = std::make_shared<zmq::message_t>();
            holder->copy(body_frame);
            shared_bytes = static_cast<const char*>(holder->data());
            owner = std::shared_ptr<const void>(std::move(holder), shared_bytes);
        }
        const std::string_view payload(shared_bytes + (entry.payload.data() - base),
                                       entry.payload.size());
        on_data(peer, payload, nullptr, &owner);
    }
}

void Actor::on_data(Peer* /*peer*/, std::string_view payload, zmq::message_t* frame,
                    const std::shared_ptr<const void>* owner) {
    LocalConsumer* found = find_consumer(header_.channel);
    const bool ack_requested = (header_.flags & kFlagAckRequested) != 0;
    auto refuse = [&](std::string_view reason, const char* error) {
        drop(reason);
        if (!ack_requested) return;
        if (Peer* sender = find_peer(header_.sender)) {
            send_control(sender, Kind::nack, {header_.id}, error);
        }
    };
    if (!found) {
        refuse("data.no_consumer", "no consumer for this queue here");
        return;
    }
    if (payload.size() > options_.max_payload_bytes) {
        refuse("frame.oversized_payload", "payload over the receiver's limit");
        return;
    }
    LocalConsumer& consumer = *found;
    ++consumer.stats->received;
    PEERMQ_LOG(log_, LogLevel::trace, "queue", "received", {"queue", header_.channel},
               {"id", header_.id}, {"attempt", header_.attempt}, {"sender", header_.sender});
    if (header_.deadline_ms != 0 && clock_.unix_ms() >= header_.deadline_ms) {
        ++consumer.stats->expired;
        refuse("ttl.expired", "expired");
        return;
    }
    // Past what its handler may have queued: a best-effort message is dropped, a reliable one
    // NACKed (its sender retries it later, or elsewhere). Credit keeps well-behaved senders
    // under this bound; it stops those that ignore it, and best-effort streams, which have none.
    if (!handler_room(consumer.slot, *consumer.load, payload.size())) {
        refuse("inbox.full", "the receiver's handler queue is full");
        return;
    }
    if (header_.flags & kFlagDedupe) {
        if (in_progress_.contains(header_.id)) {
            ++consumer.stats->duplicates;
            PEERMQ_LOG(log_, LogLevel::debug, "queue", "duplicate of a message being handled",
                       {"queue", header_.channel}, {"id", header_.id},
                       {"attempt", header_.attempt});
            drop("dedupe.duplicate");
            return;  // its first copy is being handled; that one will be acked
        }
        if (dedupe_.contains(header_.id)) {
            ++consumer.stats->duplicates;
            drop("dedupe.duplicate");
            // The earlier ack was lost.
            if (ack_requested) queue_ack(header_.sender, header_.id, ack_limit(consumer));
            return;
        }
        in_progress_.insert(header_.id);
    }
    Job& job = jobs_.emplace_back(consumer.slot, Job{}).second;  // built in place
    job.flags = header_.flags;
    job.report = (header_.flags & (kFlagAckRequested | kFlagDedupe)) != 0;
    job.message.id = header_.id;
    job.message.sender = header_.sender;
    job.message.channel = header_.channel;
    job.message.attempt = header_.attempt;
    job.message.created_ms = header_.created_ms;
    job.message.deadline_ms = header_.deadline_ms;
    job.message.headers = std::move(header_.headers);
    if (frame) {
        job.message.payload = payload_of(*frame);
    } else if (owner) {
        job.message.payload = Payload::adopt(
            *owner, reinterpret_cast<const std::byte*>(payload.data()), payload.size());
    } else {
        job.message.payload = Payload::copy_of(payload.data(), payload.size());
    }
}

Actor::LocalConsumer* Actor::find_consumer(const std::string& queue) {
    // The entries of a batch are for one queue: one hash lookup per batch, not per message.
    if (last_consumer_ && last_consumer_->queue == queue) return last_consumer_;
    auto it = consumers_.find(queue);
    if (it == consumers_.end()) return nullptr;
    last_consumer_ = &it->second;  // consumers are never removed: the pointer stays valid
    return last_consumer_;
}

void Actor::read_sub() {
    zmq::message_t topic;
    zmq::message_t header;
    zmq::message_t payload;
    for (std::size_t n = 0; n < kReadBatch; ++n) {
        if (!sub_.recv(topic, zmq::recv_flags::dontwait)) break;
        std::size_t frames = 1;
        bool more = topic.more();
        if (more) {
            (void)sub_.recv(header);
            ++frames;
            more = header.more();
        }
        if (more) {
            (void)sub_.recv(payload);
            ++frames;
            more = payload.more();
        }
        zmq::message_t extra;
        while (more) {
            (void)sub_.recv(extra);
            more = extra.more();
            ++frames;
        }
        if (frames != 3) {
            drop("frame.truncated");
            continue;
        }
        try {
            on_topic_frame(topic, header, payload);
        } catch (const std::exception& e) {
            internal_error("internal.frame_error", e.what());
        } catch (...) {
            internal_error("internal.frame_error", "an exception of unknown type");
        }
        payload.rebuild();
    }
    flush_jobs();
}

void Actor::on_topic_frame(zmq::message_t& topic, zmq::message_t& header, zmq::message_t& payload) {
    if (auto reason = decode_header(header.data(), header.size(), header_)) {
        drop(*reason);
        return;
    }
    if (header_.kind != Kind::data) {
        drop("frame.unknown_kind");
        return;
    }
    if (topic.to_string_view() != header_.channel) {
        drop("frame.topic_mismatch");
        return;
    }
    // The same limit as for queues (wire.md §8.1): the SUB socket's own limit leaves room for
    // the header, so a payload just past max_payload_bytes still arrives.
    if (payload.size() > options_.max_payload_bytes) {
        drop("frame.oversized_payload");
        return;
    }
    if (Peer* peer = find_peer(header_.sender)) {
        ++peer->frames_received;
        heard(peer);
    }
    ChannelStats* stats = topic_stats(header_.channel);
    ++stats->received;
    Message message;
    message.id = header_.id;
    message.sender = header_.sender;
    message.channel = header_.channel;
    message.created_ms = header_.created_ms;
    message.headers = std::move(header_.headers);
    message.payload = payload_of(payload);
    deliver_topic(message, *stats);
}

void Actor::on_hello(zmq::message_t& header_frame, zmq::message_t& payload_frame) {
    Hello hello;
    if (auto reason = decode_hello(payload_frame.data(), payload_frame.size(), hello)) {
        drop(*reason);
        return;
    }
    if (hello.cluster != options_.cluster) {
        drop("hello.wrong_cluster");
        return;
    }
    if (header_.sender == core_.id || header_.sender.is_nil()) return;
    std::string host = hello.host.empty() ? peer_address(header_frame) : hello.host;
    if (host.empty()) {
        drop("hello.bad");
        return;
    }
    if (!is_ip_literal(host)) {  // ZeroMQ's Peer-Address: checked like a HELLO's own host
        drop("hello.bad_host");
        return;
    }
    const std::string endpoint = endpoint_of(host, hello.inbox_port);
    // The same node at a new endpoint, or a new node in the place of an old one: the record
    // moves to a new link and keeps how the node was found.
    auto replace = [&](Peer* old) {
        const bool configured = old->configured;
        const bool discovered = old->discovered;
        remove_peer(old);
        Peer* fresh = add_peer(header_.sender, host, hello.inbox_port, "peer.table_full");
        if (fresh) {
            fresh->configured = configured;
            fresh->discovered = discovered;
        }
        return fresh;
    };
    Peer* peer = find_peer(header_.sender);
    if (!peer) {
        // A peer added by endpoint answers, or a node restarted (new id) on a known endpoint.
        bool restarted = false;
        for (std::size_t i = 0; i < peers_.size() && !peer && !restarted; ++i) {
            Peer* candidate = peers_[i].get();
            if (candidate->inbox_endpoint != endpoint) continue;
            if (candidate->id.is_nil()) {
                peer = candidate;
                peer->id = header_.sender;
                by_id_[peer->id] = peer;
            } else if (candidate->state != PeerState::alive) {
                PEERMQ_LOG(log_, LogLevel::info, "peer", "peer restarted", {"peer", hello.name},
                           {"id", header_.sender}, {"old_id", candidate->id},
                           {"endpoint", endpoint});
                if (candidate->state != PeerState::down) redirect_from(candidate->id);
                peer = replace(candidate);
                restarted = true;
            }
        }
        if (!peer && !restarted) {
            peer = add_peer(header_.sender, host, hello.inbox_port, "peer.table_full");
        }
    } else if (peer->inbox_endpoint != endpoint) {
        // A live peer whose link works does not move: a HELLO naming its id elsewhere is
        // someone else's (a node that really moved is down here first, then welcome).
        if (peer->confirmed &&
            (peer->state == PeerState::alive || peer->state == PeerState::suspect)) {
            drop("hello.endpoint_conflict");
            return;
        }
        peer = replace(peer);
    }
    if (!peer) return;  // refused and counted by add_peer
    ++peer->frames_received;
    peer->name = hello.name;
    peer->cluster = hello.cluster;
    peer->pub_port = hello.pub_port;
    if (!hello.batch) {
        peer->batch_max = 0;
    } else if (hello.batch_max == 0) {
        peer->batch_max = kBatchEntriesDefault;  // a HELLO of the first BATCH revision
    } else {
        peer->batch_max = std::min<std::size_t>(hello.batch_max, kMaxBatchEntries);
    }
    const std::string pub_endpoint = endpoint_of(host, hello.pub_port);
    if (peer->pub_endpoint != pub_endpoint) {
        if (!peer->pub_endpoint.empty()) {
            try {
                sub_.disconnect(peer->pub_endpoint);
            } catch (const zmq::error_t&) {
            }
        }
        peer->pub_endpoint = pub_endpoint;
        try {
            sub_.connect(pub_endpoint);
        } catch (const zmq::error_t& e) {
            // Out of descriptors: its topics stay unheard until the next HELLO; its queues work.
            PEERMQ_LOG(log_, LogLevel::warn, "peer", "cannot subscribe to a peer",
                       {"endpoint", pub_endpoint}, {"error", e.what()});
            peer->pub_endpoint.clear();
        }
    }
    std::unordered_map<std::string, QueueLink> queues;
    for (const auto& ad : hello.queues) {
        QueueLink link;
        link.prefetch = std::max<std::uint32_t>(ad.prefetch, 1);
        if (auto old = peer->queues.find(ad.name); old != peer->queues.end()) {
            link.unacked = old->second.unacked;
        }
        queues.emplace(ad.name, link);
    }
    peer->queues = std::move(queues);
    peer->topics = std::move(hello.topics);
    peer->hello_seen = true;
    ++generation_;

    const bool was_alive = peer->state == PeerState::alive || peer->state == PeerState::suspect;
    heard(peer);
    const Steady now = clock_.steady_now();
    // Answer so that it learns us too; at most once a heartbeat, so two nodes never ping-pong.
    if (!was_alive || now - peer->last_hello_reply >= options_.heartbeat_interval) {
        peer->last_hello_reply = now;
        send_hello(peer);
    }
    pump_all();
}

void Actor::on_ack_frame(Peer* peer) {
    if (header_.kind == Kind::ack) {
        LinkCache links;
        for (const auto& id : header_.ids) {
            Inflight* entry = inflight_.find(id);
            if (!entry) {
                drop("ack.unknown_id");
                continue;
            }
            if (!entry->tried(header_.sender)) {
                drop("ack.wrong_peer");
                continue;
            }
            complete(*entry, out_queue(entry->queue), &links);
        }
        pump_all();  // credit came back
        return;
    }
    (void)peer;
    for (const auto& id : header_.ids) {
        Inflight* found = inflight_.find(id);
        if (!found) {
            drop("ack.unknown_id");
            continue;
        }
        Inflight& entry = *found;
        if (entry.consumer != header_.sender || entry.retry_wait) {
            // A late answer from a consumer it no longer waits on.
            drop(!entry.tried(header_.sender) ? "ack.wrong_peer" : "ack.stale");
            continue;
        }
        OutQueue& q = out_queue(entry.queue);
        if (header_.kind == Kind::reject) {
            release_credit(entry, q);
            disarm(q, entry);
            Outgoing message = std::move(entry.message);
            inflight_.erase(id);
            --q.inflight;
            dead_letter(q, message, "rejected", header_.error);
        } else if (header_.error == "expired" && entry.message.deadline_ms != 0 &&
                   clock_.unix_ms() >= entry.message.deadline_ms) {
            release_credit(entry, q);
            disarm(q, entry);
            Outgoing message = std::move(entry.message);
            inflight_.erase(id);
            --q.inflight;
            ++q.stats->expired;
            dead_letter(q, message, "expired", "expired before it could be handled");
        } else {
            ++q.stats->nacked;
            fail_attempt(entry, q, header_.error, Failure::nack);
        }
    }
    pump_all();
}

// ---------------------------------------------------------------------------------------------
// Peers

Actor::Peer* Actor::find_peer(const NodeId& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
}

zmq::socket_t Actor::make_push(const std::string& endpoint) {
    zmq::socket_t push(core_.context, zmq::socket_type::push);
    // The node picks the destination of each message itself: queue only to live connections,
    // keep the per-peer buffer bounded, and never block the actor.
    push.set(zmq::sockopt::immediate, 1);
    push.set(zmq::sockopt::sndhwm, kPeerSendHwm);
    push.set(zmq::sockopt::linger, 0);
    // A peer that is not there is tried a few times a second, and a connection attempt that
    // gets no answer (a cut link drops SYNs) is given up and made anew: when the link heals,
    // the next attempt is at most kReconnectMax + kConnectTimeout away, not a SYN backoff.
    push.set(zmq::sockopt::reconnect_ivl, static_cast<int>(kReconnect.count()));
    push.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(kReconnectMax.count()));
    push.set(zmq::sockopt::connect_timeout, static_cast<int>(kConnectTimeout.count()));
    // Data the peer's kernel has not acknowledged for this long ends the connection and goes
    // with it (TCP_USER_TIMEOUT): before the peer is down and its messages are redirected, so a
    // cut link cannot deliver them late, after the heal, as second copies. Closing the socket
    // would not do it: the kernel keeps retransmitting what a closed socket left behind.
    push.set(zmq::sockopt::tcp_maxrt, static_cast<int>(unacked_data_timeout().count()));
    push.connect(endpoint);
    return push;
}

bool Actor::make_room() {
    // An unconfirmed peer (its link never came up) or a forgettable down one: the one silent
    // longest goes.
    Peer* victim = nullptr;
    for (auto& candidate : peers_) {
        Peer* peer = candidate.get();
        if (peer->configured || peer->discovered) continue;
        if (peer->confirmed && peer->state != PeerState::down) continue;
        if (!victim || peer->last_heard < victim->last_heard) victim = peer;
    }
    if (!victim) return false;
    PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer evicted: the peer table is full",
               {"peer", victim->name}, {"id", victim->id}, {"endpoint", victim->inbox_endpoint});
    if (victim->state == PeerState::alive || victim->state == PeerState::suspect) {
        redirect_from(victim->id);
    }
    remove_peer(victim);
    drop("peer.evicted");
    return true;
}

Actor::Peer* Actor::add_peer(const NodeId& id, const std::string& host, std::uint16_t inbox_port,
                             std::string_view refused) {
    if (peers_.size() >= core_.peer_limit && !make_room()) {
        drop(refused);
        return nullptr;
    }
    auto peer = std::make_unique<Peer>();
    peer->id = id;
    peer->host = host;
    peer->inbox_port = inbox_port;
    peer->inbox_endpoint = endpoint_of(host, inbox_port);
    try {
        peer->push = make_push(peer->inbox_endpoint);
    } catch (const zmq::error_t& e) {
        // Out of sockets or descriptors despite the bound (another part of the process holds
        // them): refused like a full table, never an exception out of the actor.
        PEERMQ_LOG(log_, LogLevel::warn, "peer", "cannot open a link to a peer",
                   {"endpoint", peer->inbox_endpoint}, {"error", e.what()});
        drop("peer.no_socket");
        return nullptr;
    }
    peer->last_heard = clock_.steady_now();
    Peer* raw = peer.get();
    peers_.push_back(std::move(peer));
    if (!id.is_nil()) by_id_[id] = raw;
    ++generation_;
    return raw;
}

void Actor::reset_links(Peer* peer) {
    try {
        zmq::socket_t fresh = make_push(peer->inbox_endpoint);
        peer->push = std::move(fresh);  // the old socket closes with linger 0
    } catch (const zmq::error_t& e) {
        PEERMQ_LOG(log_, LogLevel::warn, "peer", "cannot reopen the link to a peer",
                   {"peer", peer->name}, {"endpoint", peer->inbox_endpoint}, {"error", e.what()});
    }
    peer->blocked = false;
    peer->hello_owed = true;
    if (!peer->pub_endpoint.empty()) {
        try {
            sub_.disconnect(peer->pub_endpoint);
            sub_.connect(peer->pub_endpoint);
        } catch (const zmq::error_t&) {
        }
    }
}

void Actor::remove_peer(Peer* peer) {
    if (!peer->pub_endpoint.empty()) {
        try {
            sub_.disconnect(peer->pub_endpoint);
        } catch (const zmq::error_t&) {
        }
    }
    if (!peer->id.is_nil()) {
        by_id_.erase(peer->id);
        acks_.erase(peer->id);
        last_acks_ = nullptr;
    }
    ++generation_;
    // The turn that removes it may still hold it among the peers it polled for POLLOUT.
    std::replace(polled_peers_.begin(), polled_peers_.end(), peer, static_cast<Peer*>(nullptr));
    std::erase_if(peers_, [peer](const auto& p) { return p.get() == peer; });
    trim_memory_ = true;
}

void Actor::heard(Peer* peer) {
    peer->last_heard = now_;
    peer->last_heard_unix = now_unix_ms_;
    if (peer->state != PeerState::alive && peer->hello_seen && !peer->id.is_nil()) {
        const bool was_down = peer->state == PeerState::down;
        set_state(peer, PeerState::alive);
        if (was_down) send_hello(peer);
        ++generation_;
    }
}

void Actor::set_state(Peer* peer, PeerState state, std::string_view why) {
    if (peer->state == state) return;
    const PeerState previous = peer->state;
    peer->state = state;
    if (log_.enabled(LogLevel::info)) {
        const auto silent_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(now_ - peer->last_heard).count();
        if (state == PeerState::alive) {
            std::vector<std::string_view> names;
            for (const auto& [name, link] : peer->queues) names.push_back(name);
            std::sort(names.begin(), names.end());
            std::string queues;
            for (auto name : names) {
                if (!queues.empty()) queues += ',';
                queues += name;
            }
            log_.write(LogLevel::info, "peer",
                       previous == PeerState::down ? "peer back alive" : "peer alive",
                       {{"peer", peer->name},
                        {"id", peer->id},
                        {"endpoint", peer->inbox_endpoint},
                        {"was", to_string(previous)},
                        {"queues", queues}});
        } else if (state == PeerState::suspect) {
            log_.write(LogLevel::info, "peer", "peer suspect",
                       {{"peer", peer->name}, {"id", peer->id}, {"silent_ms", silent_ms}});
        } else if (state == PeerState::down) {
            log_.write(LogLevel::info, "peer", "peer down",
                       {{"peer", peer->name},
                        {"id", peer->id},
                        {"reason", why.empty() ? std::string_view("timeout") : why},
                        {"silent_ms", silent_ms}});
        }
    }
    if (peer_handler_) {
        PeerEvent event{info(*peer), previous};
        core_.dispatcher->post(
            [handler = peer_handler_, event = std::move(event)] { handler(event); });
    }
}

bool Actor::send_frames(Peer* peer, zmq::message_t& header, zmq::message_t* payload) {
    try {
        auto sent =
            peer->push.send(header, payload ? zmq::send_flags::dontwait | zmq::send_flags::sndmore
                                            : zmq::send_flags::dontwait);
        if (!sent) {
            peer->blocked = true;
            return false;
        }
        if (payload) (void)peer->push.send(*payload, zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
        peer->blocked = true;
        return false;
    }
    ++peer->frames_sent;
    peer->last_sent = now_;
    peer->confirmed = true;  // immediate=1: a frame is queued only on a completed connection
    return true;
}

void Actor::send_control(Peer* peer, Kind kind, std::vector<MessageId> ids, std::string error) {
    Header h;
    h.kind = kind;
    h.sender = core_.id;
    h.ids = std::move(ids);
    h.error = std::move(error);
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    if (!send_frames(peer, header, nullptr) && kind != Kind::heartbeat) {
        // The sender retries what it hears nothing about; count what we could not say.
        drop(kind == Kind::bye ? "bye.no_route" : "ack.no_route",
             kind == Kind::ack ? h.ids.size() : 1);
    }
}

void Actor::send_hello(Peer* peer) {
    if (hello_body_.size() == 0 || hello_dirty_) {
        Hello hello;
        hello.name = options_.name;
        hello.cluster = options_.cluster;
        hello.host = core_.advertised_host;
        hello.inbox_port = static_cast<std::uint16_t>(
            std::stoi(core_.inbox_endpoint.substr(core_.inbox_endpoint.rfind(':') + 1)));
        hello.pub_port = static_cast<std::uint16_t>(
            std::stoi(core_.pub_endpoint.substr(core_.pub_endpoint.rfind(':') + 1)));
        for (const auto& [name, consumer] : consumers_) {
            hello.queues.push_back(QueueAd{name, consumer.options.prefetch});
        }
        for (const auto& subscription : subscriptions_) hello.topics.push_back(subscription.prefix);
        hello.heartbeat_ms = static_cast<std::uint32_t>(options_.heartbeat_interval.count());
        hello.batch = true;
        hello.batch_max = static_cast<std::uint32_t>(kMaxBatchEntries);
        hello_body_.clear();
        encode_hello(hello, hello_body_);
    }
    Header h;
    h.kind = Kind::hello;
    h.sender = core_.id;
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    zmq::message_t body(hello_body_.data(), hello_body_.size());
    peer->hello_owed = !send_frames(peer, header, &body);
}

void Actor::broadcast_hello() {
    hello_body_.clear();  // rebuilt by the first send_hello
    for (auto& peer : peers_) {
        send_hello(peer.get());
        hello_dirty_ = false;
    }
    hello_dirty_ = false;
}

void Actor::tick_peers(Steady now) {
    const auto hb = options_.heartbeat_interval;
    const auto suspect_after = hb + hb / 2;
    std::vector<Peer*> forget;
    for (auto& owned : peers_) {
        Peer* peer = owned.get();
        if (peer->state == PeerState::connecting || peer->state == PeerState::down ||
            peer->hello_owed) {
            // Until it answers, keep saying HELLO: it may be starting, restarting or healing.
            if (now - peer->last_sent >= hb || peer->hello_owed) send_hello(peer);
        } else if (now - peer->last_sent >= hb) {
            send_control(peer, Kind::heartbeat);
        }
        if (peer->state == PeerState::connecting) continue;
        const auto silent = now - peer->last_heard;
        if (peer->state == PeerState::alive && silent > suspect_after) {
            set_state(peer, PeerState::suspect, "silent");
        }
        if ((peer->state == PeerState::alive || peer->state == PeerState::suspect) &&
            silent >= options_.peer_timeout) {
            set_state(peer, PeerState::down, "timeout");
            redirect_from(peer->id);
            // Its connection may be stuck in TCP retransmission backoff: when the link heals,
            // a fresh one is up within a reconnect interval, the old one could take seconds.
            reset_links(peer);
            ++generation_;
        }
        // A peer whose link never came up was never more than a claim: forgotten at once.
        if (peer->state == PeerState::down && !peer->configured &&
            (silent >= kForgetDownPeer || (!peer->confirmed && !peer->discovered))) {
            forget.push_back(peer);
        }
    }
    for (Peer* peer : forget) {
        PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer forgotten", {"peer", peer->name},
                   {"id", peer->id});
        remove_peer(peer);
    }
}

Actor::Steady Actor::next_liveness_check(Steady now) const {
    // Wake exactly when a peer's silence crosses a threshold, so "down after 3 s" means 3 s.
    Steady next = now + options_.heartbeat_interval / 4;
    const auto suspect_after = options_.heartbeat_interval + options_.heartbeat_interval / 2;
    for (const auto& peer : peers_) {
        if (peer->state == PeerState::alive)
            next = std::min(next, peer->last_heard + suspect_after);
        if (peer->state == PeerState::alive || peer->state == PeerState::suspect) {
            next = std::min(next, peer->last_heard + options_.peer_timeout);
        }
    }
    return std::max(next, now + std::chrono::milliseconds(1));
}

PeerInfo Actor::info(const Peer& peer) const {
    PeerInfo out;
    out.id = peer.id;
    out.name = peer.name;
    out.cluster = peer.cluster;
    out.state = peer.state;
    out.inbox_endpoint = peer.inbox_endpoint;
    out.pub_endpoint = peer.pub_endpoint;
    for (const auto& [name, link] : peer.queues) out.queues.push_back(name);
    std::sort(out.queues.begin(), out.queues.end());
    out.topics = peer.topics;
    out.last_heard_ms = peer.last_heard_unix;
    out.frames_sent = peer.frames_sent;
    out.frames_received = peer.frames_received;
    return out;
}

// ---------------------------------------------------------------------------------------------
// Work queues: sender side

void Actor::refresh_targets(OutQueue& q) {
    if (q.targets_generation == generation_) return;
    q.targets.clear();
    if (consumers_.contains(q.name)) q.targets.push_back(Target{});
    for (auto& peer : peers_) {
        auto it = peer->queues.find(q.name);
        if (it != peer->queues.end() && !peer->id.is_nil()) {
            QueueLink& link = it->second;
            // Clipped where it is used (credit()); counted once per claim (per HELLO).
            if (link.prefetch > q.options.max_credit && !link.clip_counted) {
                link.clip_counted = true;
                drop("credit.clipped");
            }
            q.targets.push_back(Target{peer.get(), &link});
        }
    }
    q.targets_generation = generation_;
    if (q.next_target >= q.targets.size()) q.next_target = 0;
}

bool Actor::available(const OutQueue& q, const Target& target) const {
    if (!target.peer) {
        const auto& consumer = consumers_.at(q.name);
        return consumer.local_unacked < consumer.options.prefetch;
    }
    const Peer& peer = *target.peer;
    if (peer.blocked) return false;
    // A suspect peer has missed heartbeats: it may be cut off. New work waits for it to be
    // heard again (or goes elsewhere), so a partition costs at most what was already in flight.
    if (peer.state != PeerState::alive) return false;
    return !q.reliable() || target.link->unacked < credit(q, *target.link);
}

Actor::Target* Actor::choose(OutQueue& q, const Outgoing& message) {
    refresh_targets(q);
    const std::size_t n = q.targets.size();
    if (!message.prefer().is_nil()) {
        // Credit is not asked: the consumer still holds this message (its credit was given
        // back at the timeout), so sending it again there adds nothing to its load.
        for (auto& target : q.targets) {
            if (!target.peer) {
                if (message.prefer() == core_.id) return &target;
                continue;
            }
            if (target.peer->id != message.prefer()) continue;
            if (!target.peer->blocked && target.peer->state == PeerState::alive) return &target;
            break;
        }
    }
    const NodeId& avoid = message.avoid();
    Target* fallback = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t index = (q.next_target + i) % n;
        Target& target = q.targets[index];
        if (!available(q, target)) continue;
        const NodeId& id = target.peer ? target.peer->id : core_.id;
        if (!avoid.is_nil() && id == avoid) {
            if (!fallback) fallback = &target;
            continue;
        }
        q.next_target = (index + 1) % n;
        return &target;
    }
    return fallback;
}

bool Actor::deliver(OutQueue& q, Outgoing& message, Target& target) {
    ++message.attempts;
    if (target.peer) {
        encode_buffer_.clear();
        encode_data_header(
            DataHeaderRef{core_.id, message.id, q.name, q.flags, message.attempts,
                          message.created_ms, message.deadline_ms, message.seq, message.headers},
            encode_buffer_);
        zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
        zmq::message_t payload = payload_frame(message.payload);
        if (!send_frames(target.peer, header, &payload)) {
            --message.attempts;
            return false;
        }
    } else if ((q.flags & kFlagDedupe) && in_progress_.contains(message.id)) {
        // effectively_once, retried to this node while its handler still runs: the outcome of
        // that first run settles the message, exactly as a remote receiver would drop this copy.
    } else {
        LocalConsumer& consumer = consumers_.at(q.name);
        ++consumer.local_unacked;
        ++consumer.stats->received;
        Job job;
        job.flags = q.flags;
        job.message.id = message.id;
        job.message.sender = core_.id;
        job.message.channel = q.name;
        job.message.attempt = message.attempts;
        job.message.created_ms = message.created_ms;
        job.message.deadline_ms = message.deadline_ms;
        job.message.headers = message.headers;
        job.message.payload = message.payload;
        if (q.flags & kFlagDedupe) in_progress_.insert(message.id);
        jobs_.emplace_back(consumer.slot, std::move(job));
    }
    record_delivery(q, message, target);
    return true;
}

std::size_t Actor::deliver_batch(OutQueue& q, Target& target, std::int64_t now_ms) {
    if (target.peer->batch_max < 2 || q.waiting.size() < 2 || (q.options.ordered && q.reliable())) {
        return 0;
    }
    // A batch takes at most its consumer's share of what is waiting, so that a burst is spread
    // over the consumers as evenly as single frames would be.
    std::size_t ready = 0;
    for (const Target& t : q.targets) ready += available(q, t) ? 1 : 0;
    ready = std::max<std::size_t>(ready, 1);
    std::size_t limit = std::min(target.peer->batch_max, (q.waiting.size() + ready - 1) / ready);
    if (q.reliable()) {
        const QueueLink& link = *target.link;
        const std::uint32_t window = credit(q, link);
        limit = std::min<std::size_t>(limit, window > link.unacked ? window - link.unacked : 0);
    }
    // Cheap checks first: a lone message, or one big one behind it, goes out alone unencoded.
    auto fits = [&](const Outgoing& m, std::size_t position) {
        if (m.payload.size() > kBatchPayloadMax) return false;
        if (position == 0) return true;  // pump() checked its deadline; choose() its target
        return (!m.failures || (m.prefer().is_nil() && m.avoid().is_nil())) &&
               (m.deadline_ms == 0 || now_ms < m.deadline_ms);
    };
    if (limit < 2 || !fits(q.waiting[0], 0) || !fits(q.waiting[1], 1)) return 0;
    batch_buffer_.clear();
    // Payloads above the inline size live wherever send() allocated them, long out of this
    // core's cache when a backlog has built up: ask for them a few entries ahead so the misses
    // overlap. (An inline payload is in the ring entry, which is read in order anyway.)
    constexpr std::size_t kPrefetchAhead = 4;
    for (std::size_t i = 0; i < std::min(limit, kPrefetchAhead); ++i) {
        __builtin_prefetch(q.waiting[i].payload.data());
    }
    std::size_t n = 0;
    for (; n < limit; ++n) {
        if (n + kPrefetchAhead < limit) {
            __builtin_prefetch(q.waiting[n + kPrefetchAhead].payload.data());
        }
        const Outgoing& m = q.waiting[n];
        if (!fits(m, n)) break;
        encode_buffer_.clear();
        encode_data_header(DataHeaderRef{core_.id, m.id, q.name, q.flags, m.attempts + 1,
                                         m.created_ms, m.deadline_ms, m.seq, m.headers},
                           encode_buffer_);
        const std::size_t entry = kBatchEntryOverhead + encode_buffer_.size() + m.payload.size();
        if (batch_buffer_.size() + entry > kMaxBatchBytes) break;
        append_batch_entry({encode_buffer_.data(), encode_buffer_.size()}, m.payload.view(),
                           batch_buffer_);
    }
    if (n < 2) return 0;
    Header h;
    h.kind = Kind::batch;
    h.sender = core_.id;
    h.seq = n;
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    // The body goes to ZeroMQ as it is (freed by its I/O thread once written), not copied. It
    // was built in a buffer of the largest body, so it never grew (each growth is a copy); it
    // leaves at its own size (shrinking in place: the rest goes back to the heap at once).
    const std::size_t body_size = batch_buffer_.size();
    void* body_bytes = batch_buffer_.release();
    if (void* fitted = std::realloc(body_bytes, body_size)) body_bytes = fitted;
    zmq::message_t body(body_bytes, body_size, &free_batch_body, nullptr);
    batch_buffer_ = msgpack::sbuffer(kMaxBatchBytes);
    if (!send_frames(target.peer, header, &body)) return 0;
    for (std::size_t i = 0; i < n; ++i) {
        ++q.waiting[i].attempts;
        record_delivery(q, q.waiting[i], target);
    }
    return n;
}

void Actor::record_delivery(OutQueue& q, Outgoing& message, Target& target) {
    const NodeId& consumer_id = target.peer ? target.peer->id : core_.id;
    ++q.stats->sent;
    if (message.attempts > 1) ++q.stats->retried;
    PEERMQ_LOG(log_, LogLevel::trace, "queue", "sent", {"queue", q.name}, {"id", message.id},
               {"attempt", message.attempts}, {"consumer", consumer_id});
    if (!q.reliable()) {
        ++q.unreleased;  // released once per loop turn: one atomic instead of one a message
        return;
    }
    if (target.link) ++target.link->unacked;
    const Steady now = now_;
    const MessageId id = message.id;
    auto [found, inserted] = inflight_.try_emplace(id);
    Inflight& entry = *found;
    if (!inserted) disarm(out_queue(entry.queue), entry);
    entry.queue = q.index;
    entry.message = std::move(message);
    entry.consumer = consumer_id;
    entry.retry_wait = false;
    entry.sent_at = now;
    entry.add_tried(consumer_id);
    if (inserted) ++q.inflight;
    arm_ack(q, entry);
}

void Actor::pump(OutQueue& q) {
    if (q.waiting.empty() || draining_) return;
    const std::int64_t now_ms = clock_.unix_ms();
    while (!q.waiting.empty()) {
        if (q.options.ordered && q.inflight > 0) break;
        Outgoing& message = q.waiting.front();
        if (message.deadline_ms != 0 && now_ms >= message.deadline_ms) {
            Outgoing expired = std::move(message);
            q.waiting.pop_front();
            ++q.stats->expired;
            if (q.reliable()) {
                dead_letter(q, expired, "expired", "expired before delivery");
            } else {
                drop("ttl.expired");
                q.shared->release(1);
            }
            continue;
        }
        std::size_t sent = 0;
        while (Target* target = choose(q, message)) {
            if (target->peer) {
                sent = deliver_batch(q, *target, now_ms);
                if (sent > 0) break;
                if (target->peer->blocked) continue;
            }
            if (deliver(q, message, *target)) {
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

void Actor::release_all() {
    for (auto& q : out_queues_) {
        if (q && q->unreleased > 0) {
            q->shared->release(q->unreleased);
            q->unreleased = 0;
        }
    }
}

void Actor::pump_all() {
    for (auto& q : out_queues_) {
        if (q && !q->waiting.empty()) pump(*q);
    }
}

void Actor::release_credit(const Inflight& entry, const OutQueue& q, LinkCache* links) {
    if (entry.retry_wait) return;
    if (entry.consumer == core_.id) return;  // local credit is released by the outcome
    QueueLink* link = nullptr;
    if (links && links->queue == q.index && links->consumer == entry.consumer) {
        link = links->link;
    } else {
        if (Peer* peer = find_peer(entry.consumer)) {
            auto it = peer->queues.find(q.name);
            if (it != peer->queues.end()) link = &it->second;
        }
        if (links) *links = LinkCache{entry.consumer, q.index, link};
    }
    if (link && link->unacked > 0) --link->unacked;
}

void Actor::complete(Inflight& entry, OutQueue& q, LinkCache* links) {
    const MessageId id = entry.message.id;
    release_credit(entry, q, links);
    disarm(q, entry);
    ++q.stats->acked;
    PEERMQ_LOG(log_, LogLevel::trace, "queue", "acked", {"queue", q.name}, {"id", id});
    q.stats->ack_latency.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now_ - entry.sent_at).count()));
    if (entry.message.journaled && journal_) {
        if (journal_->pending() == 0) first_uncommitted_ = now_;
        journal_->outbox_remove(id);
    }
    if (entry.message.receipt) {
        entry.message.receipt->set_value(
            Receipt{id, Receipt::Outcome::acked, {}, entry.message.last_error()});
    }
    inflight_.erase(id);  // `entry` is gone
    --q.inflight;
    ++q.unreleased;  // given back to send() once per loop turn (release_all)
}

void Actor::fail_attempt(Inflight& entry, OutQueue& q, std::string error, Failure failure) {
    release_credit(entry, q);
    unarm_ack(q, entry);
    const std::int64_t now_ms = clock_.unix_ms();
    Failures& failed = entry.message.failed();
    failed.last_error = std::move(error);
    if (failed.first_failure_ms == 0) failed.first_failure_ms = now_ms;
    // A timed-out effectively_once delivery is most likely still running at its consumer, whose
    // dedupe absorbs a second copy; another consumer would run the handler again.
    if (failure == Failure::timeout && (q.flags & kFlagDedupe)) {
        failed.prefer = entry.consumer;
        failed.avoid = NodeId{};
    } else {
        failed.avoid = entry.consumer;
        failed.prefer = NodeId{};
    }
    if (entry.message.attempts >= q.options.max_attempts) {
        const MessageId id = entry.message.id;
        disarm(q, entry);
        Outgoing message = std::move(entry.message);
        inflight_.erase(id);
        --q.inflight;
        dead_letter(q, message, "max_attempts", message.last_error());
        return;
    }
    entry.retry_wait = true;
    const auto delay = q.backoff->delay(entry.message.attempts);
    timers_.schedule(entry.message.id, clock_.steady_now() + delay);
    PEERMQ_LOG(log_, LogLevel::debug, "queue", "retry scheduled", {"queue", q.name},
               {"id", entry.message.id}, {"attempts", entry.message.attempts},
               {"delay_ms", std::chrono::duration_cast<std::chrono::milliseconds>(delay)},
               {"consumer", entry.consumer},
               {"next", failure == Failure::timeout && (q.flags & kFlagDedupe) ? "same" : "other"},
               {"error", entry.message.last_error()});
}

void Actor::requeue(Inflight& entry, OutQueue& q) {
    const MessageId id = entry.message.id;
    disarm(q, entry);
    entry.keep_tried();
    q.waiting.push_front(std::move(entry.message));
    inflight_.erase(id);
    --q.inflight;
}

void Actor::on_timer(const MessageId& id) {
    Inflight* found = inflight_.find(id);
    if (!found) return;
    Inflight& entry = *found;
    OutQueue& q = out_queue(entry.queue);
    if (entry.retry_wait) {
        requeue(entry, q);  // backoff over: first in line again
        pump(q);
        return;
    }
    fail_attempt(entry, q, "no ack within " + std::to_string(q.options.ack_timeout.count()) + " ms",
                 Failure::timeout);
}

void Actor::arm_ack(OutQueue& q, Inflight& entry) {
    // Cleared entries behind a live one at the front wait at most ack_timeout; compacting when
    // they outnumber the live ones keeps the FIFO proportional to what is in flight.
    if (q.ack_deadlines.size() > 2 * q.inflight + 1024) {
        std::deque<AckDeadline> live;
        for (const AckDeadline& d : q.ack_deadlines) {
            if (!d.entry) continue;
            d.entry->ack_slot = live.size();
            live.push_back(d);
        }
        q.ack_deadlines.swap(live);
        q.ack_base = 0;
    }
    entry.ack_slot = q.ack_base + q.ack_deadlines.size();
    entry.ack_armed = true;
    q.ack_deadlines.push_back(AckDeadline{now_ + q.options.ack_timeout, &entry});
}

void Actor::unarm_ack(OutQueue& q, Inflight& entry) {
    if (!entry.ack_armed) return;
    entry.ack_armed = false;
    q.ack_deadlines[entry.ack_slot - q.ack_base].entry = nullptr;
    while (!q.ack_deadlines.empty() && !q.ack_deadlines.front().entry) {
        q.ack_deadlines.pop_front();
        ++q.ack_base;
    }
}

void Actor::disarm(OutQueue& q, Inflight& entry) {
    unarm_ack(q, entry);
    if (entry.retry_wait) timers_.cancel(entry.message.id);  // its backoff
}

void Actor::expire_acks(Steady now) {
    for (auto& owned : out_queues_) {
        if (!owned) continue;
        OutQueue& q = *owned;
        // ack_timeout is the same for every delivery of a queue, so the FIFO is in deadline
        // order (a re-declare with another ack_timeout can only delay some by the old value).
        while (!q.ack_deadlines.empty() && q.ack_deadlines.front().due <= now) {
            Inflight* entry = q.ack_deadlines.front().entry;
            q.ack_deadlines.pop_front();
            ++q.ack_base;
            if (!entry) continue;
            entry->ack_armed = false;
            fail_attempt(*entry, q,
                         "no ack within " + std::to_string(q.options.ack_timeout.count()) + " ms",
                         Failure::timeout);
        }
        // A cleared entry left at the front would only wake poll() early.
        while (!q.ack_deadlines.empty() && !q.ack_deadlines.front().entry) {
            q.ack_deadlines.pop_front();
            ++q.ack_base;
        }
    }
}

void Actor::redirect_from(const NodeId& consumer) {
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
        OutQueue& q = out_queue(entry.queue);
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
        pump_all();
    }
}

void Actor::dead_letter(OutQueue& q, Outgoing& message, std::string reason, std::string error) {
    const std::int64_t now_ms = clock_.unix_ms();
    DeadLetter letter;
    letter.id = message.id;
    letter.queue = q.name;
    letter.headers = message.headers;
    letter.payload = message.payload;
    letter.reason = reason;
    letter.attempts = message.attempts;
    letter.last_error = error;
    letter.created_ms = message.created_ms;
    letter.first_failure_ms = message.first_failure_ms() ? message.first_failure_ms() : now_ms;
    letter.last_failure_ms = now_ms;
    if (journal_) {
        if (journal_->pending() == 0) first_uncommitted_ = clock_.steady_now();
        journal_->dead_letter_put(std::move(letter));
    } else {
        if (memory_dead_letters_.size() >= kMemoryDeadLetters) {
            memory_dead_letters_.pop_front();
            drop("dlq.memory_full");
        }
        memory_dead_letters_.push_back(std::move(letter));
    }
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

void Actor::expire_waiting(Steady /*now*/) {
    const std::int64_t now_ms = clock_.unix_ms();
    for (auto& owned : out_queues_) {
        if (!owned || owned->waiting.empty()) continue;
        OutQueue& q = *owned;
        if (!q.may_expire && q.options.no_consumer_timeout.count() == 0) continue;
        // Messages that cannot leave (no consumer, no credit) still expire on time.
        q.waiting.erase_if([&](Outgoing& message) {
            const bool expired = message.deadline_ms != 0 && now_ms >= message.deadline_ms;
            const bool orphaned =
                q.options.no_consumer_timeout.count() > 0 && q.targets.empty() &&
                now_ms - message.created_ms >= q.options.no_consumer_timeout.count();
            if (!expired && !orphaned) return false;
            Outgoing gone = std::move(message);
            if (expired) ++q.stats->expired;
            if (q.reliable()) {
                dead_letter(q, gone, expired ? "expired" : "no_consumer",
                            expired ? "expired before delivery" : "no consumer appeared in time");
            } else {
                drop(expired ? "ttl.expired" : "queue.no_consumer");
                q.shared->release(1);
            }
            return true;
        });
        q.stats->depth = q.waiting.size();
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver side acks

std::size_t Actor::ack_limit(const LocalConsumer& consumer) const {
    return std::clamp<std::size_t>(consumer.options.prefetch / 2, 1, options_.ack_batch_size);
}

void Actor::queue_ack(const NodeId& sender, const MessageId& id, std::size_t limit) {
    // Outcomes come in runs from one sender: one hash lookup per run.
    if (!last_acks_ || last_acks_sender_ != sender) {
        last_acks_ = &acks_[sender];
        last_acks_sender_ = sender;
    }
    AckBatch& batch = *last_acks_;
    if (batch.ids.empty()) {
        batch.first = now_;
        batch.limit = limit;
    } else {
        batch.limit = std::min(batch.limit, limit);
    }
    batch.ids.push_back(id);
    ++acks_pending_;
    if (batch.ids.size() >= batch.limit) flush_acks(now_, false);
}

void Actor::flush_acks(Steady now, bool force) {
    if (acks_pending_ == 0) return;
    for (auto it = acks_.begin(); it != acks_.end();) {
        AckBatch& batch = it->second;
        if (batch.ids.empty() || (!force && batch.ids.size() < batch.limit &&
                                  now - batch.first < options_.ack_batch_interval)) {
            ++it;
            continue;
        }
        Peer* peer = find_peer(it->first);
        if (!peer) {
            // A sender with no peer record (spoofed, or forgotten): its batch goes with it, or
            // every id that ever claimed to come from somewhere would keep an entry.
            drop("ack.no_route", batch.ids.size());
            acks_pending_ -= batch.ids.size();
            if (last_acks_ == &batch) last_acks_ = nullptr;
            it = acks_.erase(it);
            continue;
        }
        const std::size_t n = batch.ids.size();
        for (std::size_t start = 0; start < n; start += kMaxIdsPerAck) {
            const std::size_t end = std::min(n, start + kMaxIdsPerAck);
            send_control(
                peer, Kind::ack,
                std::vector<MessageId>(batch.ids.begin() + static_cast<std::ptrdiff_t>(start),
                                       batch.ids.begin() + static_cast<std::ptrdiff_t>(end)));
        }
        // An ack that could not be sent is not kept: the sender retries, the receiver re-acks.
        acks_pending_ -= n;
        batch.ids.clear();
        ++it;
    }
}

// ---------------------------------------------------------------------------------------------
// Journal

void Actor::maybe_commit(Steady now, bool force) {
    if (!journal_ || commit_in_flight_) return;  // the next one starts when it is done
    const std::size_t pending = journal_->pending();
    if (pending == 0) {
        for (auto& waiter : commit_waiters_) waiter->set_value(core_.storage_error());
        commit_waiters_.clear();
        return;
    }
    if (now < commit_retry_at_) return;
    if (!force && pending < kCommitRecords && now - first_uncommitted_ < kCommitInterval) return;
    commit_records_ = pending;
    commit_oldest_ = first_uncommitted_;
    // Waiters registered so far are covered by this batch; later ones wait for the next.
    batch_waiters_.swap(commit_waiters_);
    commit_waiters_.clear();
    writer_->submit(journal_->take_batch());
    commit_in_flight_ = true;
}

void Actor::publish_backlog(Steady now) {
    if (!journal_) return;
    JournalBacklog& backlog = core_.backlog;
    const std::size_t records = uncommitted_records();
    const Steady oldest = commit_in_flight_ ? commit_oldest_ : first_uncommitted_;
    // Records first, then what left `queued`: the sum send() reads never dips below the truth.
    backlog.records.store(records);
    backlog.too_old.store(records > 0 && now - oldest >= options_.max_commit_lag);
    if (backlog_taken_ > 0) {
        backlog.queued.fetch_sub(backlog_taken_);
        backlog_taken_ = 0;
    }
    if (backlog.waiting.load() > 0 && !backlog.full(options_.max_uncommitted)) {
        std::lock_guard lock(backlog.mutex);
        backlog.room.notify_all();
    }
}

void Actor::on_commit_done() {
    if (!commit_in_flight_) return;  // already settled by settle_journal()
    auto done = writer_->finished(false);
    if (done) end_commit(std::move(done->first), done->second);
}

void Actor::settle_journal() {
    if (!commit_in_flight_) return;
    auto done = writer_->finished(true);
    end_commit(std::move(done->first), done->second);
}

void Actor::end_commit(std::unique_ptr<Journal::Batch> batch, const Status& status) {
    commit_in_flight_ = false;
    commit_records_ = 0;
    journal_->finish_batch(std::move(batch), status);
    // A failed batch is back in front of what was buffered since: its records are the oldest.
    if (!status.ok()) first_uncommitted_ = commit_oldest_;
    if (status.ok()) {
        if (commit_failures_ > 0) {
            PEERMQ_LOG(log_, LogLevel::info, "journal", "journal writes again",
                       {"failed_commits", commit_failures_});
            commit_failures_ = 0;
        }
        core_.set_storage_error({});
        for (auto& waiter : batch_waiters_) waiter->set_value(Status{});
    } else {
        // Back in the journal's buffer; retried shortly. send() reports it meanwhile. One line
        // when it starts failing (or fails differently), not one per retry.
        if (commit_failures_ == 0 || status.message() != core_.storage_error().message()) {
            PEERMQ_LOG(log_, LogLevel::warn, "journal", "journal commit failed; retrying",
                       {"error", status.to_string()}, {"retry_ms", kCommitRetry});
        }
        ++commit_failures_;
        core_.set_storage_error(status);
        commit_retry_at_ = clock_.steady_now() + kCommitRetry;
        for (auto& waiter : batch_waiters_) waiter->set_value(status);
    }
    batch_waiters_.clear();
}

void Actor::on_stop(const StopCmd& cmd) {
    stopping_ = true;
    close_flush_timeout_ = cmd.flush_timeout;
}

void Actor::commit_for_close() {
    if (!journal_) return;
    const Steady deadline = clock_.steady_now() + close_flush_timeout_;
    commit_now();
    while (journal_->pending() > 0 && clock_.steady_now() < deadline) {
        // The journal refused (a full disk, an I/O error): try again until the deadline.
        std::this_thread::sleep_for(
            std::min(kCommitRetry,
                     std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_.steady_now())));
        commit_now();
    }
    const std::size_t lost = journal_->pending_messages();
    if (lost == 0) return;
    Status error = core_.storage_error();
    if (error.ok()) error = make_error(ErrorCode::io_error, "the journal's last commit failed");
    const std::string what = std::to_string(lost) +
                             " messages handed to send() were not written to the journal and are "
                             "lost: " +
                             error.message();
    PEERMQ_LOG(log_, LogLevel::error, "journal", "closing with messages not on disk",
               {"lost", static_cast<std::uint64_t>(lost)}, {"error", error.to_string()});
    core_.set_close_status(make_error(error.code(), what));
}

void Actor::commit_now() {
    if (!journal_) return;
    settle_journal();
    if (journal_->pending() == 0) {
        for (auto& waiter : commit_waiters_) waiter->set_value(core_.storage_error());
        commit_waiters_.clear();
        return;
    }
    Status status = journal_->commit();
    if (!status.ok()) {
        PEERMQ_LOG(log_, LogLevel::warn, "journal", "journal commit failed",
                   {"error", status.to_string()});
    }
    core_.set_storage_error(status.ok() ? Status{} : status);
    for (auto& waiter : commit_waiters_) waiter->set_value(status);
    commit_waiters_.clear();
}

Actor::JournalWriter::JournalWriter(Journal& journal, std::function<void()> on_done)
    : journal_(journal), on_done_(std::move(on_done)), thread_([this] { run(); }) {}

Actor::JournalWriter::~JournalWriter() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void Actor::JournalWriter::submit(std::unique_ptr<Journal::Batch> batch) {
    {
        std::lock_guard lock(mutex_);
        todo_ = std::move(batch);
        finished_ = false;
    }
    wake_.notify_all();
}

std::optional<std::pair<std::unique_ptr<Journal::Batch>, Status>> Actor::JournalWriter::finished(
    bool block) {
    std::unique_lock lock(mutex_);
    if (block) wake_.wait(lock, [this] { return finished_; });
    if (!finished_) return std::nullopt;
    finished_ = false;
    return std::make_pair(std::move(done_), std::move(status_));
}

void Actor::JournalWriter::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stop_ || todo_ != nullptr; });
        if (!todo_) return;  // stopping, nothing left to write
        auto batch = std::move(todo_);
        lock.unlock();
        Status status;
        try {
            status = journal_.write_batch(*batch);
        } catch (const std::exception& e) {
            // The batch is not known to be on disk: like a failed commit, it is retried.
            errors_.fetch_add(1, std::memory_order_relaxed);
            status = make_error(ErrorCode::internal, std::string("journal write: ") + e.what());
        } catch (...) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            status = make_error(ErrorCode::internal, "journal write: an unknown exception");
        }
        lock.lock();
        done_ = std::move(batch);
        status_ = std::move(status);
        finished_ = true;
        wake_.notify_all();
        lock.unlock();
        try {
            on_done_();  // wakes the actor
        } catch (...) {
            // Out of memory posting the notice: the actor still settles it before any read.
        }
        lock.lock();
    }
}

Status Actor::load_outbox() {
    if (!journal_) return {};
    auto records = journal_->outbox_load();
    if (!records) return records.status();
    for (auto& record : records.value()) {
        QueueOptions options;
        options.guarantee = static_cast<Guarantee>(std::min<std::uint8_t>(record.guarantee, 2));
        if (options.guarantee == Guarantee::best_effort) {
            options.guarantee = Guarantee::at_least_once;
        }
        auto index = core_.declare_queue(record.queue, options);
        if (!index) return index.status();
        OutQueue& q = out_queue(index.value());
        if (!q.declared) {
            DeclareQueueCmd declare{index.value(), options};
            on_declare(declare);
        }
        Outgoing message;
        message.id = record.id;
        message.payload = std::move(record.payload);
        message.headers = std::move(record.headers);
        message.created_ms = record.created_ms;
        message.deadline_ms = record.deadline_ms;
        message.seq = record.seq;
        message.attempts = record.attempts;
        message.journaled = true;
        if (message.deadline_ms != 0) q.may_expire = true;
        seq_ = std::max(seq_, record.seq);
        q.waiting.push_back(std::move(message));
        q.shared->outstanding.fetch_add(1);
    }
    // Records whose bytes changed on disk were not loaded: the journal moved them to the dead
    // letters (reason `corrupt`). They count as dead-lettered, and a person is told at once.
    const auto& damaged = journal_->quarantined();
    for (const auto& record : damaged) ++queue_stats(record.queue)->dead_lettered;
    if (!damaged.empty()) {
        PEERMQ_LOG(log_, LogLevel::error, "journal",
                   "unsent messages damaged on disk were moved to the dead letters, not sent",
                   {"count", static_cast<std::uint64_t>(damaged.size())},
                   {"first_id", damaged.front().id}, {"queue", damaged.front().queue},
                   {"why", damaged.front().why});
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// Calls

NodeStats Actor::stats() {
    NodeStats out;
    out.id = core_.id;
    out.name = options_.name;
    for (auto& q : out_queues_) {
        if (!q) continue;
        q->stats->depth = q->waiting.size();
        q->stats->in_flight = q->inflight;
    }
    for (const auto& [name, stats] : queue_stats_) out.queues[name] = stats;
    for (const auto& [name, stats] : topic_stats_) out.topics[name] = stats;
    if (writer_ && writer_->errors() != 0) out.thread_errors["journal_writer"] = writer_->errors();
    if (journal_) out.uncommitted = uncommitted_records();
    // Handler calls are counted by the dispatcher (best-effort ones report no outcome here).
    for (const auto& [name, consumer] : consumers_) {
        ChannelStats& stats = out.queues[name];
        stats.delivered = core_.dispatcher->handled(consumer.slot);
        stats.handler_errors = core_.dispatcher->handler_errors(consumer.slot);
    }
    out.peers = peers();
    for (const auto& [reason, count] : dropped_) {
        out.dropped[reason] = count;
        if (reason.starts_with("frame.") || reason.starts_with("hello.")) out.bad_frames += count;
    }
    return out;
}

std::vector<PeerInfo> Actor::peers() const {
    std::vector<PeerInfo> out;
    out.reserve(peers_.size());
    for (const auto& peer : peers_) out.push_back(info(*peer));
    return out;
}

void Actor::set_peer_handler(std::function<void(const PeerEvent&)> handler) {
    peer_handler_ = std::move(handler);
}

namespace {

bool matches(const DeadLetter& letter, const DeadLetterFilter& filter) {
    if (filter.id && letter.id != *filter.id) return false;
    if (filter.queue && letter.queue != *filter.queue) return false;
    if (filter.reason && letter.reason != *filter.reason) return false;
    if (filter.since_ms && letter.last_failure_ms < *filter.since_ms) return false;
    if (filter.until_ms && letter.last_failure_ms >= *filter.until_ms) return false;
    return true;
}

}  // namespace

Result<std::vector<DeadLetter>> Actor::dead_letter_list(const DeadLetterFilter& filter) {
    if (journal_) {
        settle_journal();
        return journal_->dead_letter_list(filter);
    }
    std::vector<DeadLetter> out;
    for (const auto& letter : memory_dead_letters_) {
        if (!matches(letter, filter)) continue;
        out.push_back(letter);
        if (filter.limit != 0 && out.size() >= filter.limit) break;
    }
    return out;
}

Result<DeadLetter> Actor::dead_letter_get(const MessageId& id) {
    if (journal_) {
        settle_journal();
        return journal_->dead_letter_get(id);
    }
    for (const auto& letter : memory_dead_letters_) {
        if (letter.id == id) return letter;
    }
    return make_error(ErrorCode::not_found, "no dead letter " + id.to_string());
}

Result<std::size_t> Actor::dead_letter_purge(const DeadLetterFilter& filter) {
    if (journal_) {
        settle_journal();
        return journal_->dead_letter_purge(filter);
    }
    const std::size_t before = memory_dead_letters_.size();
    std::erase_if(memory_dead_letters_, [&](const DeadLetter& d) { return matches(d, filter); });
    return before - memory_dead_letters_.size();
}

Result<MessageId> Actor::dead_letter_replay(const MessageId& id, const std::string& queue) {
    DeadLetter letter;
    if (journal_) {
        settle_journal();
        auto taken = journal_->dead_letter_take(id);
        if (!taken) return taken.status();
        letter = std::move(taken).value();
    } else {
        auto it = std::find_if(memory_dead_letters_.begin(), memory_dead_letters_.end(),
                               [&](const DeadLetter& d) { return d.id == id; });
        if (it == memory_dead_letters_.end()) {
            return make_error(ErrorCode::not_found, "no dead letter " + id.to_string());
        }
        letter = std::move(*it);
        memory_dead_letters_.erase(it);
    }
    const std::string& target = queue.empty() ? letter.queue : queue;
    auto index = core_.find_or_declare_queue(target, QueueOptions{});
    if (!index) return index.status();
    OutQueue& q = out_queue(index.value());
    if (!q.declared) {  // a best_effort queue's flags are 0 too: that is a declaration
        DeclareQueueCmd declare{index.value(), QueueOptions{}};
        on_declare(declare);
    }
    SendCmd cmd;
    cmd.queue = index.value();
    cmd.id = MessageId::generate();
    cmd.payload = std::move(letter.payload);
    cmd.headers = std::move(letter.headers);
    cmd.headers.insert_or_assign("peermq-replayed-from", letter.id.to_string());
    cmd.created_ms = clock_.unix_ms();
    q.shared->outstanding.fetch_add(1);
    const MessageId new_id = cmd.id;
    on_send(cmd);
    pump(q);
    return new_id;
}

// ---------------------------------------------------------------------------------------------
// Stats

void Actor::drop(std::string_view reason, std::uint64_t n) {
    auto it = dropped_.find(reason);
    if (it == dropped_.end()) it = dropped_.emplace(std::string(reason), 0).first;
    it->second += n;
    if (!log_.enabled(LogLevel::trace) && !(log_.enabled(LogLevel::warn) && warn_worthy(reason))) {
        return;
    }
    if (!warn_worthy(reason)) {
        log_.write(LogLevel::trace, "frame", "dropped", {{"reason", reason}, {"count", n}});
        return;
    }
    if (drops_logged_.find(reason) != drops_logged_.end()) return;  // the summary says the rest
    drops_logged_.emplace(std::string(reason), it->second);
    const bool frame = !reason.starts_with("dlq.");
    log_.write(
        LogLevel::warn, frame ? "frame" : "dlq",
        frame ? "dropped a bad frame" : "in-memory dead letters full: dropped the oldest",
        {{"reason", reason}, {"count", n}, {"summary_every_s", kDropSummaryInterval.count()}});
    if (next_drop_summary_ <= now_) next_drop_summary_ = now_ + kDropSummaryInterval;
}

void Actor::summarize_drops(Steady now) {
    if (drops_logged_.empty() || now < next_drop_summary_) return;
    next_drop_summary_ = now + kDropSummaryInterval;
    for (auto& [reason, logged] : drops_logged_) {
        const std::uint64_t total = dropped_.find(reason)->second;
        if (total == logged) continue;
        const bool frame = !reason.starts_with("dlq.");
        PEERMQ_LOG(log_, LogLevel::warn, frame ? "frame" : "dlq",
                   frame ? "dropped bad frames" : "in-memory dead letters full: dropped the oldest",
                   {"reason", reason}, {"count", total - logged}, {"total", total},
                   {"interval_s", kDropSummaryInterval.count()});
        logged = total;
    }
}

ChannelStats* Actor::queue_stats(const std::string& name) { return &queue_stats_[name]; }

ChannelStats* Actor::topic_stats(const std::string& name) {
    auto it = topic_stats_.find(name);
    if (it != topic_stats_.end()) return &it->second;
    // Topics can be many: past a bound they share one entry.
    if (topic_stats_.size() >= kMaxTopicStats) return &topic_stats_["*"];
    return &topic_stats_[name];
}

}  // namespace peermq::detail
