// PeerLinks: the sockets a node keeps for its peers, and what goes out on them. Each peer has a
// PUSH to its inbox (ZMQ_IMMEDIATE: a frame is queued only on a connection that is up) and, once
// this node subscribes to any topic, a connection of the node's one SUB socket (or, in the secure
// modes, of a SUB of the peer's own) to its PUB. A link that refuses a frame (not up yet,
// or its buffer full) marks its peer `blocked`: the sender passes it over, and the actor's poll
// watches its PUSH for POLLOUT until it takes frames again. A frame that reaches a link also
// confirms the peer (its address is real). Which peers exist, and when a link is opened, reset
// or closed, is the peer table's to decide (PeerLiveness, the actor's HELLO handling); this part
// carries it out. Owned by the actor's thread; a unit test drives it with real sockets over
// loopback (tests/unit/peer_links_test.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "actor/peer.hpp"
#include "peermq/log.hpp"

namespace peermq::detail {

class PeerLinks {
public:
    using Steady = Clock::Steady;

    // `unacked_data_timeout`: how long a link may hold data its peer's kernel has not
    // acknowledged before the connection is given up (TCP_USER_TIMEOUT).
    // `identity`: the node's keys; every link is then a CurveZMQ client that authenticates the
    // peer by its key (Peer::key). Null: plain links (TrustMode::plain).
    PeerLinks(zmq::context_t& context, zmq::socket_t& sub,
              std::chrono::milliseconds unacked_data_timeout, Logger& log,
              const NodeIdentity* identity = nullptr);

    // The endpoint of a host (an IP literal) and a port: tcp://host:port, tcp://[v6]:port.
    static std::string endpoint_of(const std::string& host, std::uint16_t port);

    // Opens the peer's PUSH to its inbox_endpoint. False, logged, when no socket can be made
    // (out of sockets or descriptors): the caller refuses the peer.
    bool open(Peer& peer);
    // Opens the peer's links anew: a fresh PUSH (what the old one queued is dropped, and a
    // connection stuck in TCP retransmission is not waited out) and the SUB reconnected. The
    // peer is owed our HELLO on the new link.
    void reset(Peer& peer);
    // The peer's PUB is at `endpoint` (its HELLO says): the SUB socket leaves the one it had and,
    // if this node subscribes to anything, connects there; out of descriptors, the peer's topics
    // stay unheard until its next HELLO (logged). A peer with `own_sub` gets a SUB socket of its
    // own instead, subscribed to every prefix.
    void subscribe_to(Peer& peer, const std::string& endpoint);
    // Leaves the peer's PUB and connects again, on its own SUB or the shared one as `own_sub`
    // now says (nothing when not connected).
    void resubscribe(Peer& peer);
    // A prefix this node subscribes to: on the shared SUB and every peer's own. The first one
    // connects this node to every known peer's PUB.
    void subscribe(const std::string& prefix, const PeerDirectory& peers);
    // Before the peer's record goes: its SUB connection closes (its PUSH goes with the record).
    void close(Peer& peer);
    // At shutdown: how long each PUSH may still spend sending what it holds.
    void set_linger(PeerDirectory& peers, std::chrono::milliseconds linger);

    // A message of one or two frames to the peer; false when its link refused it (the peer is
    // then blocked).
    bool send(Peer& peer, zmq::message_t& header, zmq::message_t* payload, Steady now);

    // Poll: appends a POLLOUT item for each blocked peer's PUSH; after the poll, writable()
    // unblocks those that may send again and calls `on_writable` for each. A peer closed in
    // between is skipped.
    void add_poll_items(const PeerDirectory& peers, std::vector<zmq::pollitem_t>& items);
    template <typename F>
    bool writable(const std::vector<zmq::pollitem_t>& items, F&& on_writable) {
        bool any = false;
        for (std::size_t i = 0; i < polled_.size(); ++i) {
            Peer* peer = polled_[i];
            if (peer && (items[first_item_ + i].revents & ZMQ_POLLOUT)) {
                peer->blocked = false;
                on_writable(*peer);
                any = true;
            }
        }
        return any;
    }

    // Poll: appends a POLLIN item for each peer's own SUB; after the poll, readable_subs() lists
    // the ids of those with messages (ids: reading may change the peer table).
    void add_sub_items(const PeerDirectory& peers, std::vector<zmq::pollitem_t>& items);
    void readable_subs(const std::vector<zmq::pollitem_t>& items, std::vector<NodeId>& out) const;

private:
    zmq::socket_t make_push(const Peer& peer);
    void leave_pub(Peer& peer);
    // Connects to the peer's pub_endpoint when this node wants a topic and is not connected.
    void link_pub(Peer& peer);
    // The SUB connects to `peer`'s PUB with its key as the CurveZMQ server key.
    void connect_sub(Peer& peer, const std::string& endpoint);

    zmq::context_t& context_;
    zmq::socket_t& sub_;
    const std::chrono::milliseconds unacked_data_timeout_;
    Logger& log_;
    const NodeIdentity* identity_;
    std::vector<Peer*> polled_;  // this turn's blocked peers, by poll item from first_item_
    std::size_t first_item_ = 0;
    std::vector<NodeId> sub_polled_;  // this turn's own SUBs, by poll item from first_sub_item_
    std::size_t first_sub_item_ = 0;
    std::vector<std::string> prefixes_;  // what every SUB subscribes to
};

}  // namespace peermq::detail
