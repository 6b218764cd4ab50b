// The actor's frames: what it reads from its inbox (DATA, BATCH, acks, HELLO, HEARTBEAT, BYE)
// and its SUB socket (topic messages), checked and handed to the parts that own them.
#include "actor/actor.hpp"
#include "wire/frames.hpp"

namespace peermq::detail {
namespace {

constexpr std::size_t kReadBatch = 1024;  // frames read per socket per loop turn

}  // namespace

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
    // Whatever a frame says, it speaks only for the key its connection was made with: a HELLO,
    // an ACK or a BYE claiming another node's id changes nothing.
    if (zap_ && !sent_by_connection(header_frame, header_.sender)) {
        drop(Drop::auth_sender_mismatch);
        return;
    }
    // authorized: a connection made before its key left authorized_keys, until it is cut.
    if (!connection_authorized()) {
        drop(Drop::auth_revoked);
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
        case Kind::sync:
        case Kind::resend:
        case Kind::repair:
            if (!has_payload) {
                drop(Drop::frame_truncated);
                return;
            }
            if (header_.kind == Kind::sync) on_sync(peer, payload_frame);
            if (header_.kind == Kind::resend) on_resend(peer, payload_frame);
            if (header_.kind == Kind::repair) {
                on_repair(peer,
                          {static_cast<const char*>(payload_frame.data()), payload_frame.size()},
                          &payload_frame);
            }
            break;
        case Kind::queue_query: on_queue_query(peer); break;
        case Kind::queue_report:
            if (!has_payload) {
                drop(Drop::frame_truncated);
                return;
            }
            on_queue_report(peer, payload_frame);
            break;
    }
}

bool Actor::sent_by_connection(zmq::message_t& frame, const NodeId& sender) {
    const char* user = zmq_msg_gets(frame.handle(), "User-Id");
    if (user == nullptr) return false;  // not through the ZAP handler: nothing vouches for it
    if (connection_user_ != user) {
        const auto key = decode_key(user);
        if (!key) return false;
        connection_user_ = user;
        connection_key_ = *key;
        connection_id_ = node_id_of(*key);
        connection_generation_ = 0;  // its trust is looked up again
    }
    return connection_id_ == sender;
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
        // A REPAIR too (to nodes that say they read them), checked as one alone.
        const bool repair = header_.kind == Kind::repair;
        if ((header_.kind != Kind::data && !repair) || header_.sender != sender) {
            drop(Drop::frame_bad_batch_entry);
            continue;
        }
        if (entry.payload.size() <= Payload::kInlineCapacity) {
            repair ? on_repair(peer, entry.payload, nullptr)
                   : on_data(peer, entry.payload, nullptr);
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
        repair ? on_repair(peer, payload, nullptr, &owner)
               : on_data(peer, payload, nullptr, &owner);
    }
}

void Actor::on_data(Peer* /*peer*/, std::string_view payload, zmq::message_t* frame,
                    const std::shared_ptr<const void>* owner) {
    if (const Permissions* allowed = connection_permissions();
        allowed && !allowed->may_send(header_.channel)) {
        // Rejected, not NACKed: its sender dead-letters it instead of retrying it for ever.
        drop(Drop::auth_send_denied);
        if (header_.flags & kFlagAckRequested) {
            answer(header_.sender, Kind::reject, header_.id,
                   "not authorized to send to queue " + header_.channel);
        }
        return;
    }
    Job* job = receiver_.admit(header_, payload.size(), turn_now());
    if (!job) return;
    job->message.payload = payload_from(payload, frame, owner);
}

Payload Actor::payload_from(std::string_view payload, zmq::message_t* frame,
                            const std::shared_ptr<const void>* owner) {
    if (frame) return payload_of(*frame);
    if (owner) {
        return Payload::adopt(*owner, reinterpret_cast<const std::byte*>(payload.data()),
                              payload.size());
    }
    return Payload::copy_of(payload.data(), payload.size());
}

void Actor::read_sub(zmq::socket_t& socket, Peer* from) {
    zmq::message_t topic;
    zmq::message_t header;
    zmq::message_t payload;
    for (std::size_t n = 0; n < kReadBatch; ++n) {
        if (!socket.recv(topic, zmq::recv_flags::dontwait)) break;
        std::size_t frames = 1;
        bool more = topic.more();
        if (more) {
            (void)socket.recv(header);
            ++frames;
            more = header.more();
        }
        if (more) {
            (void)socket.recv(payload);
            ++frames;
            more = payload.more();
        }
        zmq::message_t extra;
        while (more) {
            (void)socket.recv(extra);
            more = extra.more();
            ++frames;
        }
        if (frames != 3) {
            drop(Drop::frame_truncated);
            continue;
        }
        try {
            on_topic_frame(topic, header, payload, from);
        } catch (const std::exception& e) {
            drops_.internal_error(Drop::internal_frame_error, e.what());
        } catch (...) {
            drops_.internal_error(Drop::internal_frame_error, "an exception of unknown type");
        }
        payload.rebuild();
    }
    flush_jobs();
}

void Actor::on_topic_frame(zmq::message_t& topic, zmq::message_t& header, zmq::message_t& payload,
                           Peer* from) {
    if (auto reason = topics_.check(topic.to_string_view(), header.to_string_view(), payload.size(),
                                    header_)) {
        drop(*reason);
        return;
    }
    if (from) {
        // Its own socket, connected with its key: the message is this peer's, and may say only
        // that, under a prefix its key may publish to.
        if (header_.sender != from->id) {
            drop(Drop::auth_sender_mismatch);
            return;
        }
        const Permissions* allowed = from->key ? trust_.permissions(*from->key) : nullptr;
        if (allowed && !allowed->may_publish(header_.channel)) {
            drop(Drop::auth_publish_denied);
            return;
        }
        ++from->frames_received;
        heard(from);
    } else if (Peer* peer = peers_.find(header_.sender)) {
        // The shared SUB, plain mode's (in the secure modes every keyed publisher is read on its
        // own, and nothing connects the shared one): it cannot tell which publisher's connection
        // a message came on, so nothing it reads is checked, nor keeps a peer alive in a secure
        // mode.
        ++peer->frames_received;
        if (!zap_) heard(peer);
    }
    const std::uint64_t epoch = header_.epoch;
    take_topic_message(topics_.received(header_, payload_of(payload)), epoch, false);
}

void Actor::on_ack_frame(Peer* /*peer*/) {
    if (header_.kind == Kind::ack) {
        sender_.on_ack(header_.sender, header_.ids, turn_now());
    } else {
        sender_.on_nack(header_.sender, header_.kind, header_.ids, header_.error, turn_now());
    }
}

}  // namespace peermq::detail
