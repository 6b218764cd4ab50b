// The actor's loop (poll, frames, commands, timers, shutdown), its commands, and the calls other
// threads run on it (stats, peers, dead letters). Frames are read in actor_frames.cpp, peers
// handled in actor_peers.cpp, the journal's side in actor_journal.cpp; what is decided is decided
// by the parts (actor.hpp).
#include "actor/actor.hpp"

#include "wire/frames.hpp"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace peermq::detail {
namespace {

// close() waits this long for the handler calls already queued (local deliveries included).
constexpr auto kCloseDrain = std::chrono::seconds(2);

}  // namespace

Actor::Actor(NodeCore& core, zmq::socket_t inbox, zmq::socket_t pub, zmq::socket_t sub,
             std::unique_ptr<ZapHandler> zap, std::unique_ptr<Journal> journal)
    : core_(core),
      options_(core.options),
      clock_(*core.clock),
      log_(core.log),
      inbox_(std::move(inbox)),
      pub_(std::move(pub)),
      sub_(std::move(sub)),
      zap_(std::move(zap)),
      // Every live peer heartbeats on its inbox connection: one silent past the peer timeout
      // is from a peer that is down by now, or that never said anything after its handshake.
      inbox_connections_(core.inbox_port, core.connection_limit, core.options.peer_timeout),
      pub_connections_(core.pub_port, core.connection_limit),
      trust_(*core.trust),
      // A link may hold data its peer's kernel has not acknowledged for less than peer_timeout:
      // it is given up before its messages are redirected.
      links_(
          core.context, sub_,
          std::max(options_.peer_timeout - options_.heartbeat_interval, options_.peer_timeout / 2),
          core.log, core.secure() ? &core.identity : nullptr),
      liveness_(PeerLiveness::Timing{options_.heartbeat_interval, options_.peer_timeout}, core.log),
      peers_(liveness_.directory()),
      sender_(core.id, core.log, peers_, *this,
              Now{core.clock->steady_now(), core.clock->unix_ms()}),
      receiver_(core.id, options_, core.log, *this),
      topics_(core.id, options_.max_payload_bytes,
              std::max<std::uint64_t>(1, core.identity.incarnation),
              TopicHistory::Limits{options_.topic_history, options_.topic_history_bytes,
                                   options_.topic_history_age}),
      streams_(TopicStreams::Config{}),
      drops_(core.log) {
    if (journal) {
        journal_ = std::make_unique<JournalPipeline>(
            std::move(journal),
            JournalPipeline::Settings{options_.max_uncommitted, options_.max_commit_lag}, log_,
            core.backlog, [&core](const Status& status) { core.set_storage_error(status); },
            [&core] { core.post(CommitDoneCmd{}); });
    }
    dead_letters_ = std::make_unique<DeadLetterStore>(journal_.get());
    watch_connections(inbox_, inbox_monitor_, "inbox");
    watch_connections(pub_, pub_monitor_, "pub");
    if (zap_) {
        zap_->set_policy([this](const CurveKey& key) {
            if (trust_.admits(key)) return true;
            drop(Drop::auth_unauthorized);
            return false;
        });
    }
    next_tick_ = clock_.steady_now();
    now_ = next_tick_;
    now_unix_ms_ = clock_.unix_ms();
    hello_dirty_ = true;
}

Actor::~Actor() = default;

void Actor::watch_connections(zmq::socket_t& socket, zmq::socket_t& monitor, const char* name) {
    const std::string endpoint = "inproc://peermq.monitor." + std::string(name);
    // Handshakes fail for want of CurveZMQ only in the secure modes: a plain node counts
    // malformed greetings as nothing more than the connections they end.
    const int handshakes = zap_ ? ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                      ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                      ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                : 0;
    const int events = handshakes | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED;
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0) {
        PEERMQ_LOG(log_, LogLevel::warn, "node",
                   "inbound connections will not be capped, nor failed handshakes counted",
                   {"socket", name}, {"error", zmq_strerror(zmq_errno())});
        return;
    }
    monitor = zmq::socket_t(core_.context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(endpoint);
}

void Actor::release_ended_subscribers() {
    // libzmq frees an ended connection's pipes once the socket holding them processes its
    // commands, which it does when used: sending, receiving, polled. Unpolled (in every trust
    // mode but `authorized`), a PUB that publishes nothing would keep every subscriber
    // connection it ever accepted (docs/design/bounds.md); asking for its events processes
    // them. Interrupted by a signal, the next tick does.
    int events = 0;
    std::size_t size = sizeof events;
    (void)zmq_getsockopt(pub_.handle(), ZMQ_EVENTS, &events, &size);
}

void Actor::read_monitor(zmq::socket_t& monitor, InboundConnections& connections) {
    zmq::message_t event;
    for (int n = 0; n < 256 && monitor.recv(event, zmq::recv_flags::dontwait); ++n) {
        zmq::message_t address;
        if (event.more()) (void)monitor.recv(address);
        std::uint16_t kind = 0;
        std::uint32_t value = 0;
        if (event.size() >= sizeof kind + sizeof value) {
            std::memcpy(&kind, event.data(), sizeof kind);
            std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof kind, sizeof value);
        }
        switch (kind) {
            case ZMQ_EVENT_ACCEPTED: {
                const auto admitted = connections.accepted(static_cast<int>(value), now_);
                for (std::size_t i = 0; i < admitted.idle_cut; ++i) drop(Drop::link_idle_cut);
                for (std::size_t i = 0; i < admitted.quiet_cut; ++i) drop(Drop::link_quiet_cut);
                if (admitted.refused) drop(Drop::link_connection_limit);
                break;
            }
            case ZMQ_EVENT_DISCONNECTED:
            case ZMQ_EVENT_CLOSED: connections.closed(static_cast<int>(value)); break;
            // Without detail, libzmq reports both a connection closed mid-handshake (a peer
            // stopping: routine) and a client without CURVE: counted apart from a protocol
            // failure (a wrong server key) or a refusal by the ZAP handler, which say someone
            // tried a link it cannot have.
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: drop(Drop::link_handshake_cut); break;
            default: drop(Drop::auth_handshake_failed); break;
        }
    }
}

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
        poll_items_.push_back({nullptr, core_.mailbox_.fd(), ZMQ_POLLIN, 0});
        poll_items_.push_back({inbox_.handle(), 0, ZMQ_POLLIN, 0});
        poll_items_.push_back({sub_.handle(), 0, ZMQ_POLLIN, 0});
        poll_items_.push_back({zap_ ? zap_->socket().handle() : nullptr, -1,
                               static_cast<short>(zap_ ? ZMQ_POLLIN : 0), 0});
        for (zmq::socket_t* monitor : {&inbox_monitor_, &pub_monitor_}) {
            poll_items_.push_back(
                {monitor->handle(), -1, static_cast<short>(monitor->handle() ? ZMQ_POLLIN : 0), 0});
        }
        const bool manual_pub = trust_.mode() == TrustMode::authorized;
        poll_items_.push_back({manual_pub ? pub_.handle() : nullptr, -1,
                               static_cast<short>(manual_pub ? ZMQ_POLLIN : 0), 0});
        links_.add_poll_items(peers_, poll_items_);
        links_.add_sub_items(peers_, poll_items_);
        try {
            zmq::poll(poll_items_.data(), poll_items_.size(), poll_timeout(clock_.steady_now()));
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
        read_clock();

        // Handshakes first: a connection waits for its answer before any frame can come.
        if (poll_items_[3].revents & ZMQ_POLLIN) zap_->serve();
        if (poll_items_[4].revents & ZMQ_POLLIN) read_monitor(inbox_monitor_, inbox_connections_);
        if (poll_items_[5].revents & ZMQ_POLLIN) read_monitor(pub_monitor_, pub_connections_);
        if (poll_items_[6].revents & ZMQ_POLLIN) read_subscriptions();
        // Topic messages before anything that may disconnect the SUB socket: polling it fetches
        // the first part of a message ahead (libzmq's xsub), and a disconnect before that message
        // is read whole trips libzmq's atomicity assertion (fq.cpp) and aborts the process.
        if (poll_items_[2].revents & ZMQ_POLLIN) read_sub(sub_, nullptr);
        links_.readable_subs(poll_items_, readable_subs_);
        for (const NodeId& id : readable_subs_) {
            if (Peer* peer = peers_.find(id); peer && peer->sub.handle() != nullptr) {
                read_sub(peer->sub, peer);
            }
        }
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
        const bool writable = links_.writable(poll_items_, [this](Peer& peer) {
            if (peer.hello_owed) send_hello(&peer);
            if (peer.start_owed) send_start(peer);
            if (peer.query_owed != 0) send_queue_query(peer);
            if (peer.report_owed != 0) send_queue_report(peer);
        });
        if (writable) sender_.pump_all(fresh_now());

        sender_.expire(fresh_now());
        const Steady now = now_;
        if (now >= next_tick_) {
            check_trust();
            inbox_connections_.sample(now);
            release_ended_subscribers();
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
        if (now >= next_topic_tick_) {
            topic_tick(now);
        } else if (auto paused = streams_.next_due(); paused && now >= *paused) {
            streams_.check_pauses(now, stream_fx_);
            apply_stream_effects();
        }
        if (hello_dirty_) broadcast_hello();
        // Batch acks only while the handlers are busy: once the dispatcher has nothing left,
        // no more outcomes are coming soon, and waiting out the interval would only add latency.
        flush_acks(now, core_.dispatcher->idle());
        if (journal_) {
            journal_->maybe_commit(now, journal_->has_waiters(), core_.storage_error());
            journal_->publish_backlog(now);
        }
        if (streams_.has_ready()) deliver_streams();
        flush_jobs();
        if (std::exchange(pump_owed_, false)) sender_.pump_all(fresh_now());
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
    // Reliable topics' timers run only while there is something to ask or to tell.
    if (streams_.waiting() || topics_.history().has_changed())
        due = std::min(due, next_topic_tick_);
    if (auto paused = streams_.next_due()) due = std::min(due, *paused);
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
        links_.set_linger(peers_, std::chrono::milliseconds(0));
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
    links_.set_linger(peers_, std::chrono::milliseconds(100));
    peers_.clear();
    inbox_.set(zmq::sockopt::linger, 0);
    pub_.set(zmq::sockopt::linger, 100);  // like BYE: what was published before close() leaves
    sub_.set(zmq::sockopt::linger, 0);
    inbox_.close();
    pub_.close();
    sub_.close();
    inbox_monitor_.close();  // their monitored sockets are closed: nothing more comes
    pub_monitor_.close();
    if (zap_) zap_->socket().close();  // last: the context cannot end while it is open
}

// ---------------------------------------------------------------------------------------------
// Commands

void Actor::on_declare(DeclareQueueCmd& cmd) { sender_.declare(cmd.queue, cmd.options); }

void Actor::on_send(SendCmd& cmd) {
    // From here the message is in the journal's buffer: publish_backlog() moves it from
    // `queued` to `records`.
    if (cmd.backlogged && journal_) journal_->taken_from_backlog();
    if (cmd.replay_of && !take_replayed(cmd)) return;
    sender_.accept(cmd, turn_now());
    if (cmd.durable && journal_) journal_->wait_for_commit(std::move(cmd.durable));
}

bool Actor::take_replayed(SendCmd& cmd) {
    auto taken = dead_letters_->take(*cmd.replay_of, now_);
    if (!taken) core_.queue_shared(cmd.queue)->release(1);
    cmd.replayed->set_value(taken.status());
    return taken.ok();
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

void Actor::on_stop(const StopCmd& cmd) {
    stopping_ = true;
    close_flush_timeout_ = cmd.flush_timeout;
}

// ---------------------------------------------------------------------------------------------
// Calls

NodeStats Actor::stats() {
    NodeStats out;
    out.id = core_.id;
    out.name = options_.name;
    sender_.update_stats();
    for (const auto& [name, stats] : queue_stats_) out.queues[name] = stats;
    for (const auto& [name, stats] : topics_.stats()) out.topics[name] = stats;
    if (journal_) {
        if (const auto errors = journal_->writer_errors(); errors != 0) {
            out.thread_errors["journal_writer"] = errors;
        }
        out.uncommitted = journal_->uncommitted();
    }
    out.dead_letters = dead_letters_->counts();
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
    for (const auto& peer : peers_.all()) {
        out.push_back(PeerLiveness::info(*peer));
        out.back().trust = trust_state(*peer);
    }
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

ChannelStats* Actor::queue_stats(const std::string& name) { return &queue_stats_[name]; }

}  // namespace peermq::detail
