// The actor's peers: the peer table's bound (who is refused, who makes room), what the node
// learns from HELLOs and discovery records, and the frames it sends them (HELLO, HEARTBEAT, BYE,
// acks). When a peer is alive, suspect or down is decided by PeerLiveness (peer_liveness.hpp);
// its links are PeerLinks' (peer_links.hpp); the actor carries out what they decide here.
#include "actor/actor.hpp"

namespace peermq::detail {
namespace {

std::string peer_address(zmq::message_t& frame) {
    try {
        const char* address = frame.gets("Peer-Address");
        return address ? address : "";
    } catch (const zmq::error_t&) {
        return {};
    }
}

}  // namespace

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

Peer* Actor::add_peer(const NodeId& id, const std::optional<CurveKey>& key, const std::string& host,
                      std::uint16_t inbox_port, Drop refused) {
    if (peers_.size() >= core_.peer_limit && !make_room()) {
        drop(refused);
        return nullptr;
    }
    auto peer = std::make_unique<Peer>();
    peer->id = id;
    peer->key = key;
    peer->host = host;
    peer->inbox_port = inbox_port;
    peer->inbox_endpoint = PeerLinks::endpoint_of(host, inbox_port);
    if (!links_.open(*peer)) {  // refused like a full table, never an exception out of the actor
        drop(Drop::peer_no_socket);
        return nullptr;
    }
    peer->last_heard = clock_.steady_now();
    Peer* raw = &peers_.add(std::move(peer));
    sender_.peers_changed();
    return raw;
}

void Actor::remove_peer(Peer* peer, bool replaced) {
    if (!replaced && !peer->id.is_nil()) streams_.publisher_gone(peer->id);
    links_.close(*peer);
    if (!peer->id.is_nil()) {
        receiver_.acks().forget(peer->id);
        core_.heard_peers.set(peer->id, false);
    }
    sender_.peers_changed();
    peers_.remove(peer);
    trim_memory_ = true;
}

void Actor::post_peer_event(PeerEvent event) {
    if (!peer_handler_) return;
    core_.dispatcher->post([handler = peer_handler_, event = std::move(event)] { handler(event); });
}

void Actor::apply_peer_effects() {
    PeerLiveness::Effects& fx = peer_effects_;
    if (fx.consumers_changed) {
        sender_.peers_changed();
        // A consumer back (suspect -> alive by a mere heartbeat) may be the only way on for a
        // queue that waits: nothing else would wake it (best effort has no acks), so the turn
        // ends with a pump.
        pump_owed_ = true;
    }
    for (Peer* peer : fx.hello) send_hello(peer);
    for (Peer* peer : fx.heartbeat) send_control(peer, Kind::heartbeat);
    for (Peer* peer : fx.down) sender_.redirect_from(peer->id, fresh_now());
    for (Peer* peer : fx.reset) links_.reset(*peer);
    for (const auto& [id, heard] : fx.hearing) core_.heard_peers.set(id, heard);
    for (auto& event : fx.events) {
        // A publisher this node follows is back from down: where its topics stand is asked
        // again (what it said meanwhile was lost with the link).
        if (event.previous == PeerState::down && event.peer.state == PeerState::alive &&
            !streams_.prefixes().empty() && streams_.numbered(event.peer.id)) {
            if (Peer* peer = peers_.find(event.peer.id)) send_start(*peer);
        }
        post_peer_event(std::move(event));
    }
    for (Peer* peer : fx.forget) {
        PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer forgotten", {"peer", peer->name},
                   {"id", peer->id});
        remove_peer(peer);
    }
    fx.clear();
}

bool Actor::send_control(Peer* peer, Kind kind, std::vector<MessageId> ids, std::string error) {
    Header h;
    h.kind = kind;
    h.sender = core_.id;
    h.ids = std::move(ids);
    h.error = std::move(error);
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    if (links_.send(*peer, header, nullptr, now_)) return true;
    if (kind != Kind::heartbeat && kind != Kind::ack) {
        // The sender retries what it hears nothing about; count what we could not say. (Acks
        // wait in their batch for the link: flush_acks.)
        drop(kind == Kind::bye ? Drop::bye_no_route : Drop::ack_no_route, 1);
    }
    return false;
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
        for (const auto& subscription : topics_.subscriptions()) {
            hello.topics.push_back(subscription.prefix);
        }
        hello.heartbeat_ms = static_cast<std::uint32_t>(options_.heartbeat_interval.count());
        hello.batch = true;
        hello.batch_max = static_cast<std::uint32_t>(kMaxBatchEntries);
        hello.incarnation = core_.identity.incarnation;
        hello.reliable_topics = true;
        hello.queue_reports = true;
        hello.repair_batch = true;
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
    peer->hello_owed = !links_.send(*peer, header, &body, now_);
}

void Actor::broadcast_hello() {
    hello_body_.clear();  // rebuilt by the first send_hello
    for (const auto& peer : peers_.all()) {
        send_hello(peer.get());
        hello_dirty_ = false;
    }
    hello_dirty_ = false;
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
    const std::string endpoint = PeerLinks::endpoint_of(host, hello.inbox_port);
    // Its key is its connection's (checked in on_frame): our links to it will ask for it.
    std::optional<CurveKey> key;
    if (zap_) key = connection_key_;
    if (key && !pin_holds(hello.name, *key, endpoint)) return;
    // Only a HELLO that comes over its key's connection can speak for the node's lives: a plain
    // node's incarnations would be anyone's to forge (a huge one would silence the real node).
    const std::uint64_t incarnation = zap_ ? hello.incarnation : 0;
    // The same node at a new endpoint, or a new node in the place of an old one: the record
    // moves to a new link and keeps how the node was found.
    auto replace = [&](Peer* old) {
        const bool configured = old->configured;
        const bool discovered = old->discovered;
        remove_peer(old, old->id == header_.sender);
        Peer* fresh = add_peer(header_.sender, key, host, hello.inbox_port, Drop::peer_table_full);
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
            // Learnt from its HELLO before any record of it: discovery's phases, per peer, are
            // told by this line, "peer record found" and "peer alive" (docs/spec/discovery.md §8).
            PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer greeted first", {"peer", hello.name},
                       {"id", header_.sender}, {"endpoint", endpoint});
            peer = add_peer(header_.sender, key, host, hello.inbox_port, Drop::peer_table_full);
        }
    } else if (incarnation != 0 && incarnation < peer->incarnation) {
        drop(Drop::hello_stale);  // an earlier life of this node, delayed: nothing to learn
        return;
    } else if (incarnation > peer->incarnation && peer->incarnation != 0) {
        // The same key, started again (its id survives restarts): what was in flight there died
        // with the old process, and its links are the old process's connections.
        PEERMQ_LOG(log_, LogLevel::info, "peer", "peer restarted", {"peer", hello.name},
                   {"id", header_.sender}, {"incarnation", incarnation}, {"endpoint", endpoint});
        if (peer->state != PeerState::down) sender_.redirect_from(peer->id, fresh_now());
        peer = replace(peer);
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
    if (incarnation > peer->incarnation) peer->incarnation = incarnation;
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
    peer->queue_reports = hello.queue_reports;
    peer->repair_batch = hello.repair_batch && peer->batch_max >= 2;
    peer->own_sub = wants_own_sub(*peer);
    links_.subscribe_to(*peer, PeerLinks::endpoint_of(host, hello.pub_port));
    peer->advertised.clear();
    for (const auto& ad : hello.queues) peer->advertised.emplace_back(ad.name, ad.prefetch);
    set_queue_links(*peer);  // what its key may consume of it
    peer->topics = std::move(hello.topics);
    if (hello.reliable_topics) {
        streams_.publisher_seen(peer->id, peer->name, peer->incarnation, now_, stream_fx_);
        apply_stream_effects();
    }
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

void Actor::on_discovery(DiscoveryCmd& cmd) {
    ServiceRecord& record = cmd.event.record;
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
    // A link needs the peer's key, and the record's id must be the one that key gives: a record
    // naming one node's id with another key is a forgery (or garbage), never a link.
    std::optional<CurveKey> key;
    if (zap_) {
        if (record.public_key.empty()) {
            drop(Drop::discovery_no_key);
            return;
        }
        key = decode_key(record.public_key);
        if (!key || (!record.id.is_nil() && record.id != node_id_of(*key))) {
            drop(Drop::discovery_bad_key);
            return;
        }
        // A record is anyone's to publish: its key must be one this node would let in.
        if (!trust_.admits(*key)) {
            drop(Drop::discovery_unauthorized);
            PEERMQ_LOG(log_, LogLevel::debug, "peer", "a record's key is not authorized",
                       {"peer", record.name}, {"key", record.public_key},
                       {"endpoint", PeerLinks::endpoint_of(record.host, record.inbox_port)});
            return;
        }
        if (!record.name.empty() &&
            !pin_holds(record.name, *key, PeerLinks::endpoint_of(record.host, record.inbox_port))) {
            return;
        }
    }
    const std::string endpoint = PeerLinks::endpoint_of(record.host, record.inbox_port);
    if (key && record.id.is_nil()) record.id = node_id_of(*key);  // the key names the node
    Peer* peer = record.id.is_nil() ? nullptr : peers_.find(record.id);
    if (!peer) {
        for (const auto& candidate : peers_.all()) {
            if (candidate->inbox_endpoint == endpoint) peer = candidate.get();
        }
    }
    PEERMQ_LOG(log_, LogLevel::debug, "peer", "peer record found", {"peer", record.name},
               {"id", record.id}, {"endpoint", endpoint},
               {"known", peer == nullptr ? "no" : to_string(peer->state)});
    const bool configured = cmd.configured;
    if (peer && key && peer->key && *peer->key != *key) {
        // Another key at this endpoint: a different node now (restarted with a new key), whose
        // record will come by its own id. The old record stays until it is down.
        peer = nullptr;
    }
    if (peer) {
        if (peer->inbox_endpoint != endpoint && !record.id.is_nil()) {
            // Same node, new address or port (a changed record): move the link.
            const bool was_configured = peer->configured;
            remove_peer(peer);
            peer = add_peer(record.id, key, record.host, record.inbox_port, Drop::peer_table_full);
            if (!peer) return;
            peer->configured = was_configured;
            send_hello(peer);
        }
        peer->configured = peer->configured || configured;
        peer->discovered = peer->discovered || !configured;
        return;
    }
    peer = add_peer(record.id, key, record.host, record.inbox_port, Drop::peer_table_full);
    if (!peer) return;
    peer->configured = configured;
    peer->discovered = !configured;
    send_hello(peer);
}

void Actor::flush_acks(Steady now, bool force) {
    const std::size_t dropped = receiver_.acks().flush(
        now, force, [this](const NodeId& sender) { return peers_.find(sender); },
        [this](Peer* peer, std::span<const MessageId> ids) {
            // A blocked link is polled for POLLOUT: the turn it takes frames again ends here.
            return !peer->blocked &&
                   send_control(peer, Kind::ack, std::vector<MessageId>(ids.begin(), ids.end()));
        });
    if (dropped > 0) drop(Drop::ack_no_route, dropped);
}

}  // namespace peermq::detail
