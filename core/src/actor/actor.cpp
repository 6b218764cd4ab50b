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

constexpr std::size_t kReadBatch = 1024;  // frames read per socket per loop turn
constexpr int kPeerSendHwm = 20'000;
constexpr auto kReconnect = std::chrono::milliseconds(100);
constexpr auto kReconnectMax = std::chrono::milliseconds(250);
constexpr auto kConnectTimeout = std::chrono::milliseconds(250);
constexpr int kReceiveHwm = 100'000;
constexpr std::size_t kMaxTopicStats = 1024;
// close() waits this long for the handler calls already queued (local deliveries included).
constexpr auto kCloseDrain = std::chrono::seconds(2);

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
    receiver_.deliver_local(q.name, q.flags, delivery);
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

void Actor::on_discovery(DiscoveryCmd& cmd) {
    const ServiceRecord& record = cmd.event.record;
    if (!record.id.is_nil() && record.id == core_.id) return;
    if (!record.cluster.empty() && record.cluster != options_.cluster) {
        drop(Drop::discovery_other_cluster);
        return;
    }
    if (cmd.event.kind == DiscoveryEvent::Kind::lost) {
        // mDNS never decides liveness; a peer that is also down is forgotten.
        Peer* peer = peers_.find(record.id);
        if (peer && peer->state == PeerState::down && !peer->configured) remove_peer(peer);
        return;
    }
    // A record's address becomes an endpoint, like a HELLO's host: an address or nothing.
    if (!is_ip_literal(record.host) || record.inbox_port == 0) {
        drop(Drop::discovery_bad_address);
        return;
    }
    const std::string endpoint = endpoint_of(record.host, record.inbox_port);
    Peer* peer = record.id.is_nil() ? nullptr : peers_.find(record.id);
    if (!peer) {
        for (const auto& candidate : peers_.all()) {
            if (candidate->inbox_endpoint == endpoint) peer = candidate.get();
        }
    }
    const bool configured = record.id.is_nil();
    if (peer) {
        if (peer->inbox_endpoint != endpoint && !record.id.is_nil()) {
            // Same node, new address or port (a changed record): move the link.
            const bool was_configured = peer->configured;
            remove_peer(peer);
            peer = add_peer(record.id, record.host, record.inbox_port, Drop::peer_table_full);
            if (!peer) return;
            peer->configured = was_configured;
            send_hello(peer);
        }
        peer->configured = peer->configured || configured;
        peer->discovered = peer->discovered || !configured;
        return;
    }
    peer = add_peer(record.id, record.host, record.inbox_port, Drop::peer_table_full);
    if (!peer) return;
    peer->configured = configured;
    peer->discovered = !configured;
    send_hello(peer);
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
            drop(Drop::frame_truncated);
            continue;
        }
        try {
            on_frame(header, payload, frames == 2);
        } catch (const std::exception& e) {
            drops_.internal_error(Drop::internal_frame_error, e.what());
        } catch (...) {
            drops_.internal_error(Drop::internal_frame_error, "an exception of unknown type");
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
    Peer* peer = peers_.find(header_.sender);
    // A HELLO is counted and heard by on_hello, once it has filled in the peer's name, queues
    // and topics: the alive transition (and its PeerEvent) must carry them.
    if (peer && header_.kind != Kind::hello) {
        ++peer->frames_received;
        if (header_.kind != Kind::bye) heard(peer);
    }
    switch (header_.kind) {
        case Kind::data:
            if (!has_payload) {
                drop(Drop::frame_truncated);
                return;
            }
            on_data(peer, payload_frame.to_string_view(), &payload_frame);
            break;
        case Kind::batch:
            if (!has_payload) {
                drop(Drop::frame_truncated);
                return;
            }
            on_batch(peer, payload_frame);
            break;
        case Kind::hello:
            if (!has_payload) {
                drop(Drop::hello_missing_field);
                return;
            }
            on_hello(header_frame, payload_frame);
            break;
        case Kind::ack:
        case Kind::nack:
        case Kind::reject: on_ack_frame(peer); break;
        case Kind::heartbeat:
            if (!peer) drop(Drop::frame_unknown_sender);
            break;
        case Kind::bye:
            if (peer && peer->state != PeerState::down) {
                liveness_.said_bye(*peer, now_, peer_effects_);
                apply_peer_effects();
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
            drop(Drop::frame_bad_batch_entry);
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
    Job* job = receiver_.admit(header_, payload.size(), turn_now());
    if (!job) return;
    if (frame) {
        job->message.payload = payload_of(*frame);
    } else if (owner) {
        job->message.payload = Payload::adopt(
            *owner, reinterpret_cast<const std::byte*>(payload.data()), payload.size());
    } else {
        job->message.payload = Payload::copy_of(payload.data(), payload.size());
    }
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
            drop(Drop::frame_truncated);
            continue;
        }
        try {
            on_topic_frame(topic, header, payload);
        } catch (const std::exception& e) {
            drops_.internal_error(Drop::internal_frame_error, e.what());
        } catch (...) {
            drops_.internal_error(Drop::internal_frame_error, "an exception of unknown type");
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
        drop(Drop::frame_unknown_kind);
        return;
    }
    if (topic.to_string_view() != header_.channel) {
        drop(Drop::frame_topic_mismatch);
        return;
    }
    // The same limit as for queues (wire.md §8.1): the SUB socket's own limit leaves room for
    // the header, so a payload just past max_payload_bytes still arrives.
    if (payload.size() > options_.max_payload_bytes) {
        drop(Drop::frame_oversized_payload);
        return;
    }
    if (Peer* peer = peers_.find(header_.sender)) {
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
    receiver_.deliver_topic(message, *stats);
}

void Actor::on_hello(zmq::message_t& header_frame, zmq::message_t& payload_frame) {
    Hello hello;
    if (auto reason = decode_hello(payload_frame.data(), payload_frame.size(), hello)) {
        drop(*reason);
        return;
    }
    if (hello.cluster != options_.cluster) {
        drop(Drop::hello_wrong_cluster);
        return;
    }
    if (header_.sender == core_.id || header_.sender.is_nil()) return;
    std::string host = hello.host.empty() ? peer_address(header_frame) : hello.host;
    if (host.empty()) {
        drop(Drop::hello_bad);
        return;
    }
    if (!is_ip_literal(host)) {  // ZeroMQ's Peer-Address: checked like a HELLO's own host
        drop(Drop::hello_bad_host);
        return;
    }
    const std::string endpoint = endpoint_of(host, hello.inbox_port);
    // The same node at a new endpoint, or a new node in the place of an old one: the record
    // moves to a new link and keeps how the node was found.
    auto replace = [&](Peer* old) {
        const bool configured = old->configured;
        const bool discovered = old->discovered;
        remove_peer(old);
        Peer* fresh = add_peer(header_.sender, host, hello.inbox_port, Drop::peer_table_full);
        if (fresh) {
            fresh->configured = configured;
            fresh->discovered = discovered;
        }
        return fresh;
    };
    Peer* peer = peers_.find(header_.sender);
    if (!peer) {
        // A peer added by endpoint answers, or a node restarted (new id) on a known endpoint.
        bool restarted = false;
        for (std::size_t i = 0; i < peers_.size() && !peer && !restarted; ++i) {
            Peer* candidate = peers_.all()[i].get();
            if (candidate->inbox_endpoint != endpoint) continue;
            if (candidate->id.is_nil()) {
                peer = candidate;
                peers_.name(*peer, header_.sender);
            } else if (candidate->state != PeerState::alive) {
                PEERMQ_LOG(log_, LogLevel::info, "peer", "peer restarted", {"peer", hello.name},
                           {"id", header_.sender}, {"old_id", candidate->id},
                           {"endpoint", endpoint});
                if (candidate->state != PeerState::down)
                    sender_.redirect_from(candidate->id, fresh_now());
                peer = replace(candidate);
                restarted = true;
            }
        }
        if (!peer && !restarted) {
            peer = add_peer(header_.sender, host, hello.inbox_port, Drop::peer_table_full);
        }
    } else if (peer->inbox_endpoint != endpoint) {
        // A live peer whose link works does not move: a HELLO naming its id elsewhere is
        // someone else's (a node that really moved is down here first, then welcome).
        if (peer->confirmed &&
            (peer->state == PeerState::alive || peer->state == PeerState::suspect)) {
            drop(Drop::hello_endpoint_conflict);
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
    sender_.peers_changed();

    const bool was_alive = peer->state == PeerState::alive || peer->state == PeerState::suspect;
    heard(peer);
    const Steady now = clock_.steady_now();
    // Answer so that it learns us too; at most once a heartbeat, so two nodes never ping-pong.
    if (!was_alive || now - peer->last_hello_reply >= options_.heartbeat_interval) {
        peer->last_hello_reply = now;
        send_hello(peer);
    }
    sender_.pump_all(fresh_now());
}

void Actor::on_ack_frame(Peer* /*peer*/) {
    if (header_.kind == Kind::ack) {
        sender_.on_ack(header_.sender, header_.ids, turn_now());
    } else {
        sender_.on_nack(header_.sender, header_.kind, header_.ids, header_.error, turn_now());
    }
}

// ---------------------------------------------------------------------------------------------
// Peers

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
    for (const auto& candidate : peers_.all()) {
        Peer* peer = candidate.get();
        if (peer->configured || peer->discovered) continue;
        if (peer->confirmed && peer->state != PeerState::down) continue;
        if (!victim || peer->last_heard < victim->last_heard) victim = peer;
    }
    if (!victim) return false;
    PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer evicted: the peer table is full",
               {"peer", victim->name}, {"id", victim->id}, {"endpoint", victim->inbox_endpoint});
    if (victim->state == PeerState::alive || victim->state == PeerState::suspect) {
        sender_.redirect_from(victim->id, fresh_now());
    }
    remove_peer(victim);
    drop(Drop::peer_evicted);
    return true;
}

Peer* Actor::add_peer(const NodeId& id, const std::string& host, std::uint16_t inbox_port,
                      Drop refused) {
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
        drop(Drop::peer_no_socket);
        return nullptr;
    }
    peer->last_heard = clock_.steady_now();
    Peer* raw = &peers_.add(std::move(peer));
    sender_.peers_changed();
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
        receiver_.acks().forget(peer->id);
    }
    sender_.peers_changed();
    // The turn that removes it may still hold it among the peers it polled for POLLOUT.
    std::replace(polled_peers_.begin(), polled_peers_.end(), peer, static_cast<Peer*>(nullptr));
    peers_.remove(peer);
    trim_memory_ = true;
}

void Actor::apply_peer_effects() {
    PeerLiveness::Effects& fx = peer_effects_;
    if (fx.consumers_changed) sender_.peers_changed();
    for (Peer* peer : fx.hello) send_hello(peer);
    for (Peer* peer : fx.heartbeat) send_control(peer, Kind::heartbeat);
    for (Peer* peer : fx.down) sender_.redirect_from(peer->id, fresh_now());
    for (Peer* peer : fx.reset) reset_links(peer);
    if (peer_handler_) {
        for (auto& event : fx.events) {
            core_.dispatcher->post(
                [handler = peer_handler_, event = std::move(event)] { handler(event); });
        }
    }
    for (Peer* peer : fx.forget) {
        PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer forgotten", {"peer", peer->name},
                   {"id", peer->id});
        remove_peer(peer);
    }
    fx.clear();
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
        drop(kind == Kind::bye ? Drop::bye_no_route : Drop::ack_no_route,
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
        for (const auto& [name, consumer] : receiver_.consumers()) {
            hello.queues.push_back(QueueAd{name, consumer.options.prefetch});
        }
        for (const auto& subscription : receiver_.subscriptions()) {
            hello.topics.push_back(subscription.prefix);
        }
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
    for (const auto& peer : peers_.all()) {
        send_hello(peer.get());
        hello_dirty_ = false;
    }
    hello_dirty_ = false;
}

// ---------------------------------------------------------------------------------------------
// Receiver side acks

void Actor::flush_acks(Steady now, bool force) {
    const std::size_t unrouted = receiver_.acks().flush(
        now, force, [this](const NodeId& sender) { return peers_.find(sender); },
        [this](Peer* peer, std::span<const MessageId> ids) {
            send_control(peer, Kind::ack, std::vector<MessageId>(ids.begin(), ids.end()));
        });
    if (unrouted > 0) drop(Drop::ack_no_route, unrouted);
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
