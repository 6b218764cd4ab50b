#include "actor/actor.hpp"

#include "wire/frames.hpp"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace peermq::detail {
namespace {

constexpr std::size_t kMaxTopicStats = 1024;
// close() waits this long for the handler calls already queued (local deliveries included).
constexpr auto kCloseDrain = std::chrono::seconds(2);

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
      liveness_(PeerLiveness::Timing{options_.heartbeat_interval, options_.peer_timeout}, core.log),
      peers_(liveness_.directory()),
      sender_(core.id, core.log, peers_, *this,
              Now{core.clock->steady_now(), core.clock->unix_ms()}),
      receiver_(core.id, options_, core.log, *this),
      drops_(core.log) {
    if (journal) {
        journal_ = std::make_unique<JournalPipeline>(
            std::move(journal),
            JournalPipeline::Settings{options_.max_uncommitted, options_.max_commit_lag}, log_,
            core.backlog, [&core](const Status& status) { core.set_storage_error(status); },
            [&core] { core.post(CommitDoneCmd{}); });
    }
    dead_letters_ = std::make_unique<DeadLetterStore>(journal_.get());
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
        for (const auto& peer : peers_.all()) {
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
                    drops_.internal_error(Drop::internal_command_error, e.what());
                } catch (...) {
                    drops_.internal_error(Drop::internal_command_error,
                                          "an exception of unknown type");
                }
            }
            commands_.clear();
            const Now now = fresh_now();
            if (journal_ && journal_->backlog_to_publish()) journal_->publish_backlog(now_);
            sender_.pump_all(now);
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
        if (writable) sender_.pump_all(fresh_now());

        sender_.expire(fresh_now());
        const Steady now = now_;
        if (now >= next_tick_) {
            liveness_.tick(now, peer_effects_);
            apply_peer_effects();
            if (trim_memory_) {
                // What forgotten peers held goes back to the system, not only to the allocator:
                // a flood of fake peers must not leave the node's footprint at its peak.
                trim_memory_ = false;
#ifdef __GLIBC__
                ::malloc_trim(0);
#endif
            }
            sender_.expire_waiting(turn_now());
            drops_.summarize(now);
            next_tick_ = liveness_.next_check(now);
        }
        if (hello_dirty_) broadcast_hello();
        // Batch acks only while the handlers are busy: once the dispatcher has nothing left,
        // no more outcomes are coming soon, and waiting out the interval would only add latency.
        flush_acks(now, core_.dispatcher->idle());
        if (journal_) {
            journal_->maybe_commit(now, journal_->has_waiters(), core_.storage_error());
            journal_->publish_backlog(now);
        }
        flush_jobs();
        // Room for blocked send()s: one wake-up per turn, however many messages left.
        sender_.release_all();
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
    if (journal_) journal_->abandon_waiters(failure);
}

std::chrono::milliseconds Actor::poll_timeout(Steady now) const {
    Steady due = next_tick_;
    if (auto next = sender_.next_due(); next && *next < due) due = *next;
    if (auto acks = receiver_.acks().next_due()) due = std::min(due, *acks);
    if (journal_) {
        if (auto commit = journal_->next_due()) due = std::min(due, *commit);
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
                drops_.internal_error(Drop::internal_command_error, e.what());
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
    receiver_.submitted();
    if (!receiver_.jobs().empty()) core_.dispatcher->submit(receiver_.jobs());
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
            else if constexpr (std::is_same_v<T, CommitDoneCmd>) {
                if (journal_) journal_->on_commit_done(now_);
            }
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
        sender_.for_each_unsettled([&](Outgoing& message) { failed(message.receipt); });
        for (const auto& peer : peers_.all()) peer->push.set(zmq::sockopt::linger, 0);
        peers_.clear();
        return;
    }
    // What the application did before close() is carried out: every command still in the
    // mailbox (sends are journaled, publishes go out and to local subscribers), and the handler
    // calls already queued run, within kCloseDrain. Nothing new is sent to peers from here on:
    // messages still waiting stay in the outbox for the next start.
    draining_ = true;
    sender_.stop_sending();
    drain_handlers(clock_.steady_now() + kCloseDrain);
    const Steady now = clock_.steady_now();
    flush_acks(now, true);
    // A peer known only by endpoint (its HELLO answer not in yet) may know us already: our
    // HELLO reached it if a frame left for it, so it gets a BYE too.
    for (const auto& peer : peers_.all()) {
        if (peer->state == PeerState::down) continue;
        if (!peer->id.is_nil() || peer->frames_sent > 0 || peer->frames_received > 0) {
            send_control(peer.get(), Kind::bye);
        }
    }
    commit_for_close();
    if (journal_) journal_->abandon_waiters(make_error(ErrorCode::closed, "node closed"));
    auto closed = [](const ReceiptPromise& receipt) {
        if (receipt) {
            receipt->set_value(
                make_error(ErrorCode::closed, "node closed before the message was acked"));
        }
    };
    sender_.for_each_unsettled([&](Outgoing& message) { closed(message.receipt); });
    // Give BYE frames a moment to leave; undelivered data is the senders' to retry.
    for (const auto& peer : peers_.all()) peer->push.set(zmq::sockopt::linger, 100);
    peers_.clear();
    inbox_.set(zmq::sockopt::linger, 0);
    pub_.set(zmq::sockopt::linger, 100);  // like BYE: what was published before close() leaves
    sub_.set(zmq::sockopt::linger, 0);
    inbox_.close();
    pub_.close();
    sub_.close();
}

// ---------------------------------------------------------------------------------------------
// Commands

void Actor::on_declare(DeclareQueueCmd& cmd) { sender_.declare(cmd.queue, cmd.options); }

void Actor::on_send(SendCmd& cmd) {
    // From here the message is in the journal's buffer: publish_backlog() moves it from
    // `queued` to `records`.
    if (cmd.backlogged && journal_) journal_->taken_from_backlog();
    sender_.accept(cmd, turn_now());
    if (cmd.durable && journal_) journal_->wait_for_commit(std::move(cmd.durable));
}

bool Actor::journal_put(const OutQueue& q, const Outgoing& message) {
    if (!journal_ || options_.durability == Durability::memory) return false;
    journal_->outbox_put(OutboxRecord{message.id, q.name, message.headers, message.payload, 0,
                                      message.created_ms, message.deadline_ms,
                                      static_cast<std::uint8_t>(q.options.guarantee), message.seq},
                         now_);
    return true;
}

void Actor::deliver_local(const OutQueue& q, const Outgoing& message) {
    Message delivery;
    delivery.id = message.id;
    delivery.sender = core_.id;
    delivery.channel = q.name;
    delivery.attempt = message.attempts;
    delivery.created_ms = message.created_ms;
    delivery.deadline_ms = message.deadline_ms;
    delivery.headers = message.headers;
    delivery.payload = message.payload;
    receiver_.deliver_local(q.name, q.flags, std::move(delivery));
}

void Actor::on_consume(ConsumeCmd& cmd) {
    receiver_.consume(cmd.queue, cmd.slot, cmd.options, core_.dispatcher->load(cmd.slot));
    sender_.peers_changed();
    hello_dirty_ = true;
    sender_.pump_all(fresh_now());
}

void Actor::on_subscribe(SubscribeCmd& cmd) {
    sub_.set(zmq::sockopt::subscribe, cmd.prefix);
    receiver_.subscribe(cmd.prefix, cmd.slot, core_.dispatcher->load(cmd.slot));
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
    receiver_.deliver_topic(message, *stats);
}

void Actor::on_outcomes(OutcomesCmd& /*cmd*/) {
    core_.dispatcher->take_outcomes(outcomes_);
    if (outcomes_.empty()) return;  // taken with an earlier wake-up
    const Now now = fresh_now();
    for (auto& outcome : outcomes_) {
        LocalConsumer* consumer = receiver_.settle(outcome, now);
        if (consumer && outcome.sender == core_.id) sender_.on_local_outcome(outcome, now);
    }
    sender_.pump_all(fresh_now());
}

void Actor::on_flush(FlushCmd& cmd) {
    if (!journal_ || options_.durability == Durability::memory) {
        cmd.done->set_value(core_.storage_error());
        return;
    }
    journal_->when_committed(std::move(cmd.done), core_.storage_error());
}

// ---------------------------------------------------------------------------------------------
// Journal

void Actor::on_stop(const StopCmd& cmd) {
    stopping_ = true;
    close_flush_timeout_ = cmd.flush_timeout;
}

void Actor::commit_for_close() {
    if (!journal_) return;
    Status lost = journal_->commit_for_close(clock_, clock_.steady_now() + close_flush_timeout_,
                                             core_.storage_error());
    if (!lost.ok()) core_.set_close_status(std::move(lost));
}

Status Actor::load_outbox() {
    if (!journal_) return {};
    auto records = journal_->journal().outbox_load();
    if (!records) return records.status();
    for (auto& record : records.value()) {
        QueueOptions options;
        options.guarantee = static_cast<Guarantee>(std::min<std::uint8_t>(record.guarantee, 2));
        if (options.guarantee == Guarantee::best_effort) {
            options.guarantee = Guarantee::at_least_once;
        }
        auto index = core_.declare_queue(record.queue, options);
        if (!index) return index.status();
        if (!sender_.queue(index.value()).declared) sender_.declare(index.value(), options);
        Outgoing message;
        message.id = record.id;
        message.payload = std::move(record.payload);
        message.headers = std::move(record.headers);
        message.created_ms = record.created_ms;
        message.deadline_ms = record.deadline_ms;
        message.seq = record.seq;
        message.attempts = record.attempts;
        message.journaled = true;
        sender_.restore(index.value(), std::move(message));
    }
    // Records whose bytes changed on disk were not loaded: the journal moved them to the dead
    // letters (reason `corrupt`). They count as dead-lettered, and a person is told at once.
    const auto& damaged = journal_->journal().quarantined();
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
    sender_.update_stats();
    for (const auto& [name, stats] : queue_stats_) out.queues[name] = stats;
    for (const auto& [name, stats] : topic_stats_) out.topics[name] = stats;
    if (journal_) {
        if (const auto errors = journal_->writer_errors(); errors != 0) {
            out.thread_errors["journal_writer"] = errors;
        }
        out.uncommitted = journal_->uncommitted();
    }
    // Handler calls are counted by the dispatcher (best-effort ones report no outcome here).
    for (const auto& [name, consumer] : receiver_.consumers()) {
        ChannelStats& stats = out.queues[name];
        stats.delivered = core_.dispatcher->handled(consumer.slot);
        stats.handler_errors = core_.dispatcher->handler_errors(consumer.slot);
    }
    out.peers = peers();
    drops_.add_to(out.dropped, out.bad_frames);
    return out;
}

std::vector<PeerInfo> Actor::peers() const {
    std::vector<PeerInfo> out;
    out.reserve(peers_.size());
    for (const auto& peer : peers_.all()) out.push_back(PeerLiveness::info(*peer));
    return out;
}

void Actor::set_peer_handler(std::function<void(const PeerEvent&)> handler) {
    peer_handler_ = std::move(handler);
    liveness_.report_events(peer_handler_ != nullptr);
}

Result<std::vector<DeadLetter>> Actor::dead_letter_list(const DeadLetterFilter& filter) {
    return dead_letters_->list(filter, clock_.steady_now());
}

Result<DeadLetter> Actor::dead_letter_get(const MessageId& id) {
    return dead_letters_->get(id, clock_.steady_now());
}

Result<std::size_t> Actor::dead_letter_purge(const DeadLetterFilter& filter) {
    return dead_letters_->purge(filter, clock_.steady_now());
}

Result<MessageId> Actor::dead_letter_replay(const MessageId& id, const std::string& queue) {
    auto taken = dead_letters_->take(id, clock_.steady_now());
    if (!taken) return taken.status();
    DeadLetter letter = std::move(taken).value();
    const std::string& target = queue.empty() ? letter.queue : queue;
    auto index = core_.find_or_declare_queue(target, QueueOptions{});
    if (!index) return index.status();
    OutQueue& q = sender_.queue(index.value());
    // A best_effort queue's flags are 0 too: `declared` says whether it was declared.
    if (!q.declared) sender_.declare(index.value(), QueueOptions{});
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
    sender_.pump(q, fresh_now());
    return new_id;
}

// ---------------------------------------------------------------------------------------------
// Stats

ChannelStats* Actor::queue_stats(const std::string& name) { return &queue_stats_[name]; }

ChannelStats* Actor::topic_stats(const std::string& name) {
    auto it = topic_stats_.find(name);
    if (it != topic_stats_.end()) return &it->second;
    // Topics can be many: past a bound they share one entry.
    if (topic_stats_.size() >= kMaxTopicStats) return &topic_stats_["*"];
    return &topic_stats_[name];
}

}  // namespace peermq::detail
