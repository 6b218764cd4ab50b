// The actor's side of the trust modes (security/trust_policy.hpp decides): who is still listed
// when authorized_keys changes, what a key may consume and subscribe to, and tofu's pins.
// Sending permissions are checked where DATA is read (actor_frames.cpp).
#include "actor/actor.hpp"

namespace peermq::detail {
bool Actor::connection_authorized() {
    if (trust_.mode() != TrustMode::authorized) return true;
    if (connection_generation_ != trust_.generation()) {
        connection_entry_ = trust_.entry(connection_key_);
        connection_generation_ = trust_.generation();
    }
    return connection_entry_ != nullptr;
}

void Actor::check_trust() {
    if (trust_.mode() != TrustMode::authorized) return;
    const TrustPolicy::Change change = trust_.reload_if_changed();
    if (!change.error.ok()) {
        PEERMQ_LOG(log_, LogLevel::error, "node",
                   "authorized_keys cannot be read: the keys read before stay in force",
                   {"file", trust_.settings().authorized_keys}, {"error", change.error.message()},
                   {"keys", change.keys});
        return;
    }
    if (change.reloaded) on_trust_change(change);
}

void Actor::on_trust_change(const TrustPolicy::Change& change) {
    PEERMQ_LOG(log_, LogLevel::info, "node", "authorized_keys read again",
               {"file", trust_.settings().authorized_keys}, {"keys", change.keys},
               {"revoked", change.revoked.size()}, {"changed", change.changed.size()});
    for (const auto& problem : change.problems) {
        PEERMQ_LOG(log_, LogLevel::warn, "node", "authorized_keys: a line is skipped",
                   {"file", trust_.settings().authorized_keys}, {"line", problem.line},
                   {"reason", problem.reason});
    }
    // A revoked key keeps nothing: its records go (with them our links to it, and its work is
    // redirected), and every connection made to us is cut, so that its own links to our inbox
    // and pub socket end now and the ZAP handler refuses them when they come back.
    for (const CurveKey& key : change.revoked) {
        Peer* peer = peers_.find(node_id_of(key));
        PEERMQ_LOG(log_, LogLevel::warn, "peer", "key revoked: the peer's links are cut",
                   {"key", encode_key(key)}, {"id", node_id_of(key)},
                   {"peer", peer ? peer->name : std::string()});
        if (!peer) continue;
        PeerEvent event{PeerLiveness::info(*peer), peer->state, "revoked"};
        event.peer.state = PeerState::down;
        post_peer_event(std::move(event));
        if (peer->state == PeerState::alive || peer->state == PeerState::suspect) {
            sender_.redirect_from(peer->id, fresh_now());
        }
        remove_peer(peer);
    }
    // Changed permissions: what each peer may consume is made again from what it asked; a
    // subscription it may no longer have goes with its connection, asked again and checked.
    for (const auto& peer : peers_.all()) {
        if (!peer->key) continue;
        set_queue_links(*peer);
        // Its topics move to a SUB of its own when its publishing becomes restricted, and back.
        if (const bool own = wants_own_sub(*peer); own != peer->own_sub) {
            peer->own_sub = own;
            links_.resubscribe(*peer);
        }
    }
    sender_.peers_changed();
    if (!change.revoked.empty()) {
        const std::size_t inbox = inbox_connections_.cut_all();
        const std::size_t pub = pub_connections_.cut_all();
        PEERMQ_LOG(log_, LogLevel::info, "node", "connections cut after a revocation",
                   {"inbox", inbox}, {"pub", pub});
    } else if (!change.changed.empty()) {
        (void)pub_connections_.cut_all();
    }
    sender_.pump_all(fresh_now());
}

std::string Actor::trust_state(const Peer& peer) const {
    if (!peer.key) return {};
    switch (trust_.mode()) {
        case TrustMode::plain: return {};
        case TrustMode::open: return "open";
        case TrustMode::authorized: return trust_.entry(*peer.key) ? "authorized" : "unlisted";
        case TrustMode::tofu: {
            const CurveKey* pinned = trust_.pinned_key(peer.name);
            return pinned && *pinned == *peer.key ? "pinned" : "unpinned";
        }
    }
    return {};
}

bool Actor::wants_own_sub(const Peer& peer) const {
    // Every keyed publisher: a message read from its own socket (connected with its key as the
    // server key) is known to be its, so the sender a message claims can be checked.
    return zap_ != nullptr && peer.key.has_value();
}

void Actor::set_queue_links(Peer& peer) {
    const Permissions* allowed = peer.key ? trust_.permissions(*peer.key) : nullptr;
    std::unordered_map<std::string, QueueLink> queues;
    for (const auto& [name, prefetch] : peer.advertised) {
        if (allowed && !allowed->may_consume(name)) {
            drop(Drop::auth_consume_denied);
            continue;
        }
        QueueLink link;
        link.prefetch = std::max<std::uint32_t>(prefetch, 1);
        if (auto old = peer.queues.find(name); old != peer.queues.end()) {
            link.unacked = old->second.unacked;
        }
        queues.emplace(name, link);
    }
    peer.queues = std::move(queues);
}

bool Actor::pin_holds(const std::string& name, const CurveKey& key, const std::string& endpoint) {
    switch (trust_.check_pin(name, key)) {
        case TrustPolicy::Pin::matches: return true;
        case TrustPolicy::Pin::pinned:
            PEERMQ_LOG(log_, LogLevel::info, "peer", "key pinned for a node name", {"peer", name},
                       {"key", encode_key(key)}, {"endpoint", endpoint});
            if (!trust_.pin_write_error().ok()) {
                PEERMQ_LOG(log_, LogLevel::warn, "peer",
                           "the pin holds for this run only: known_keys cannot be written",
                           {"peer", name}, {"error", trust_.pin_write_error().message()});
            }
            return true;
        case TrustPolicy::Pin::changed: break;
    }
    drop(Drop::auth_key_changed);
    const CurveKey* pinned = trust_.pinned_key(name);
    PEERMQ_LOG(log_, LogLevel::error, "peer",
               "REFUSED: a node presents another key than the one pinned for its name "
               "(an impostor, or the node got a new key: if so, remove its line from known_keys)",
               {"peer", name}, {"key", encode_key(key)},
               {"pinned", pinned ? encode_key(*pinned) : std::string()}, {"endpoint", endpoint},
               {"known_keys", trust_.settings().known_keys});
    PeerEvent event;
    event.peer.id = node_id_of(key);
    event.peer.name = name;
    event.peer.inbox_endpoint = endpoint;
    event.peer.state = PeerState::down;
    event.refused = "key_changed";
    post_peer_event(std::move(event));
    return false;
}

void Actor::read_subscriptions() {
    zmq::message_t request;
    for (int n = 0; n < 1024 && pub_.recv(request, zmq::recv_flags::dontwait); ++n) {
        if (request.more()) {  // a SUB sends one part: this is no subscription
            zmq::message_t rest;
            do (void)pub_.recv(rest);
            while (rest.more());
            continue;
        }
        if (request.size() == 0) continue;
        const auto* bytes = static_cast<const char*>(request.data());
        const bool subscribe = bytes[0] == 1;
        const std::string prefix(bytes + 1, request.size() - 1);
        if (!subscribe) {
            // Takes back from this connection only what it had; nothing to check.
            pub_.set(zmq::sockopt::unsubscribe, prefix);
            continue;
        }
        const char* user = zmq_msg_gets(request.handle(), "User-Id");
        const auto key = user ? decode_key(user) : std::nullopt;
        const AuthorizedKey* line = key ? trust_.entry(*key) : nullptr;
        if (!line) {
            drop(Drop::auth_revoked);
            continue;
        }
        if (!line->permissions.may_subscribe(prefix)) {
            drop(Drop::auth_subscribe_denied);
            PEERMQ_LOG(log_, LogLevel::debug, "peer", "subscription refused", {"peer", line->name},
                       {"prefix", prefix});
            continue;
        }
        pub_.set(zmq::sockopt::subscribe, prefix);  // for the connection this request came on
    }
}

}  // namespace peermq::detail
