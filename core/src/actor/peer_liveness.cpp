#include "actor/peer_liveness.hpp"

#include <algorithm>

namespace peermq::detail {

void PeerLiveness::revive(Peer& peer, Steady now, Effects& out) {
    if (!peer.hello_seen || peer.id.is_nil()) return;  // not known well enough to be alive
    const bool was_down = peer.state == PeerState::down;
    set_state(peer, PeerState::alive, {}, now, out);
    if (was_down) out.hello.push_back(&peer);
    out.consumers_changed = true;
}

void PeerLiveness::said_bye(Peer& peer, Steady now, Effects& out) {
    if (peer.state == PeerState::down) return;
    set_state(peer, PeerState::down, "bye", now, out);
    peer.relinked = now;
    out.down.push_back(&peer);
    out.consumers_changed = true;
}

void PeerLiveness::set_state(Peer& peer, PeerState state, std::string_view why, Steady now,
                             Effects& out) {
    if (peer.state == state) return;
    const PeerState previous = peer.state;
    peer.state = state;
    if (log_.enabled(LogLevel::info)) {
        const auto silent_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(now - peer.last_heard).count();
        if (state == PeerState::alive) {
            std::vector<std::string_view> names;
            for (const auto& [name, link] : peer.queues) names.push_back(name);
            std::sort(names.begin(), names.end());
            std::string queues;
            for (auto name : names) {
                if (!queues.empty()) queues += ',';
                queues += name;
            }
            log_.write(LogLevel::info, "peer",
                       previous == PeerState::down ? "peer back alive" : "peer alive",
                       {{"peer", peer.name},
                        {"id", peer.id},
                        {"endpoint", peer.inbox_endpoint},
                        {"was", to_string(previous)},
                        {"queues", queues}});
        } else if (state == PeerState::suspect) {
            log_.write(LogLevel::info, "peer", "peer suspect",
                       {{"peer", peer.name}, {"id", peer.id}, {"silent_ms", silent_ms}});
        } else if (state == PeerState::down) {
            log_.write(LogLevel::info, "peer", "peer down",
                       {{"peer", peer.name},
                        {"id", peer.id},
                        {"reason", why.empty() ? std::string_view("timeout") : why},
                        {"silent_ms", silent_ms}});
        }
    }
    if (state == PeerState::alive || state == PeerState::down) {
        out.hearing.emplace_back(peer.id, state == PeerState::alive);
    }
    if (report_events_) out.events.push_back(PeerEvent{info(peer), previous});
}

void PeerLiveness::tick(Steady now, Effects& out) {
    const auto hb = timing_.heartbeat_interval;
    for (const auto& owned : peers_.all()) {
        Peer& peer = *owned;
        if (peer.state == PeerState::connecting || peer.state == PeerState::down ||
            peer.hello_owed) {
            // Until it answers, keep saying HELLO: it may be starting, restarting or healing.
            if (now - peer.last_sent >= hb || peer.hello_owed) out.hello.push_back(&peer);
        } else if (now - peer.last_sent >= hb) {
            out.heartbeat.push_back(&peer);
        }
        if (peer.state == PeerState::connecting) continue;
        const auto silent = now - peer.last_heard;
        if (peer.state == PeerState::alive && silent > suspect_after()) {
            set_state(peer, PeerState::suspect, "silent", now, out);
        }
        if ((peer.state == PeerState::alive || peer.state == PeerState::suspect) &&
            silent >= timing_.peer_timeout) {
            set_state(peer, PeerState::down, "timeout", now, out);
            // Its work goes elsewhere, and its connection may be stuck in TCP retransmission
            // backoff: when the link heals, a fresh one is up within a reconnect interval.
            out.down.push_back(&peer);
            out.reset.push_back(&peer);
            peer.relinked = now;
            out.consumers_changed = true;
        }
        if (peer.state != PeerState::down) continue;
        // A peer whose link never came up was never more than a claim: forgotten at once.
        if (!peer.configured &&
            (silent >= kForgetDownPeer || (!peer.confirmed && !peer.discovered))) {
            out.forget.push_back(&peer);
        } else if (now - peer.relinked >= kRelinkDownPeer) {
            peer.relinked = now;
            out.reset.push_back(&peer);
        }
    }
}

PeerLiveness::Steady PeerLiveness::next_check(Steady now) const {
    Steady next = now + timing_.heartbeat_interval / 4;
    for (const auto& peer : peers_.all()) {
        if (peer->state == PeerState::alive) {
            next = std::min(next, peer->last_heard + suspect_after());
        }
        if (peer->state == PeerState::alive || peer->state == PeerState::suspect) {
            next = std::min(next, peer->last_heard + timing_.peer_timeout);
        }
    }
    return std::max(next, now + std::chrono::milliseconds(1));
}

PeerInfo PeerLiveness::info(const Peer& peer) {
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
    if (peer.key) out.public_key = encode_key(*peer.key);
    return out;
}

}  // namespace peermq::detail
