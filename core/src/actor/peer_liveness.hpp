// PeerLiveness: the liveness rules of a node's peers (docs/spec/wire.md §7). A peer is `connecting`
// until its HELLO is known, `alive` while it is heard, `suspect` after 1.5 heartbeat intervals of
// silence (it gets no new work), `down` after peer_timeout (its work in flight goes elsewhere
// and its link is made anew) or a BYE, and alive again when heard after that. Until a peer
// answers, it is sent our HELLO every heartbeat interval; an alive one a HEARTBEAT when nothing
// else went to it. A down peer that is not configured is forgotten after a minute, at once if its
// link never came up.
//
// It owns the peer records (PeerDirectory) and decides; the actor carries out what it decides
// (PeerLiveness::Effects: frames to send, redirects, links to reopen, peers to forget, events for
// the application's handler). Every call takes the time from its caller. Owned by the actor's
// thread.
#pragma once

#include <chrono>
#include <string_view>
#include <utility>
#include <vector>

#include "actor/peer.hpp"
#include "peermq/log.hpp"

namespace peermq::detail {

class PeerLiveness {
public:
    using Steady = Clock::Steady;
    static constexpr auto kForgetDownPeer = std::chrono::seconds(60);
    // A down peer that is kept has its links opened anew this often: libzmq gives up a link
    // whose handshake the other end refused (a key not, or no longer, admitted there) and
    // never retries it, so without this the peer would stay unreachable once it admits us.
    static constexpr auto kRelinkDownPeer = std::chrono::seconds(2);

    struct Timing {
        std::chrono::milliseconds heartbeat_interval{};
        std::chrono::milliseconds peer_timeout{};
    };
    // What the actor is to do, in this order.
    struct Effects {
        std::vector<Peer*> hello;       // send our HELLO
        std::vector<Peer*> heartbeat;   // send a HEARTBEAT
        std::vector<Peer*> down;        // went down: its work in flight goes elsewhere
        std::vector<Peer*> reset;       // its link is made anew
        std::vector<Peer*> forget;      // remove the record
        std::vector<PeerEvent> events;  // state changes, for the peer handler
        // Peers this node began (alive: true) or stopped (down: false) hearing from.
        std::vector<std::pair<NodeId, bool>> hearing;
        bool consumers_changed = false;  // a peer's state changed: the senders' targets too

        bool empty() const {
            return hello.empty() && heartbeat.empty() && down.empty() && reset.empty() &&
                   forget.empty() && events.empty() && hearing.empty() && !consumers_changed;
        }
        void clear() {
            hello.clear();
            heartbeat.clear();
            down.clear();
            reset.clear();
            forget.clear();
            events.clear();
            hearing.clear();
            consumers_changed = false;
        }
    };

    PeerLiveness(Timing timing, Logger& log) : timing_(timing), log_(log) {}

    PeerDirectory& directory() { return peers_; }
    const PeerDirectory& directory() const { return peers_; }
    // Events are made only while someone listens.
    void report_events(bool on) { report_events_ = on; }

    // A frame from the peer arrived at `now` (wall clock `unix_ms`). Cheap for a live peer; one
    // that was not alive (and whose HELLO is known) becomes alive, and is greeted if it was down.
    void heard(Peer& peer, Steady now, std::int64_t unix_ms, Effects& out) {
        peer.last_heard = now;
        peer.last_heard_unix = unix_ms;
        if (peer.state != PeerState::alive) revive(peer, now, out);
    }
    // `why`: "bye", "timeout" or "silent", for the log.
    void set_state(Peer& peer, PeerState state, std::string_view why, Steady now, Effects& out);
    // The peer said BYE: down at once.
    void said_bye(Peer& peer, Steady now, Effects& out);
    // Heartbeats, HELLOs, suspect and down transitions, forgetting: what is due at `now`.
    void tick(Steady now, Effects& out);
    // When tick() next has something to do: exactly when a silence crosses a threshold, so that
    // "down after 3 s" means 3 s.
    Steady next_check(Steady now) const;

    static PeerInfo info(const Peer& peer);

private:
    void revive(Peer& peer, Steady now, Effects& out);
    auto suspect_after() const { return timing_.heartbeat_interval * 3 / 2; }

    Timing timing_;
    Logger& log_;
    PeerDirectory peers_;
    bool report_events_ = false;
};

}  // namespace peermq::detail
