// Peer: what a node knows of one other node (its address, state, queues with their credit,
// topics, counters), and PeerDirectory, the node's peers by record and by id. The actor's
// thread alone reads and writes them; the sender (reliability/sender.hpp) reads the peers'
// states and credit and counts what it sends on them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "peermq/clock.hpp"
#include "peermq/node.hpp"
#include "peermq/uuid.hpp"
#include "security/node_key.hpp"
#include "wire/topic_sync.hpp"

namespace peermq::detail {

// Credit of one consumer for one queue: what it advertised and what is unacked there.
struct QueueLink {
    std::uint32_t prefetch = 0;
    std::uint32_t unacked = 0;
    bool clip_counted = false;  // its prefetch is over a queue's max_credit, and counted
};

struct Peer {
    using Steady = Clock::Steady;

    NodeId id;  // nil until its HELLO (peers added by endpoint, TrustMode::plain only)
    // Its CURVE public key (the id derives from it): its links' server key. None in plain mode.
    std::optional<CurveKey> key;
    std::uint64_t incarnation = 0;  // from its HELLO: grows when the node restarts
    std::string name;
    std::string cluster;
    std::string host;
    std::uint16_t inbox_port = 0;
    std::uint16_t pub_port = 0;
    std::string inbox_endpoint;
    std::string pub_endpoint;  // its PUB, as its HELLO gives it (empty before)
    // Connected to pub_endpoint (on the shared SUB socket, or `sub`): only while this node
    // subscribes to some topic, so that a node that wants none makes no SUB connection at all.
    bool pub_linked = false;
    // In the secure modes: a SUB socket of its own, connected with the peer's key as the server
    // key, so that every topic message read from it is known to be this peer's (the shared SUB
    // cannot tell its publishers apart). Null in plain mode.
    zmq::socket_t sub;
    bool own_sub = false;  // `sub` is wanted: set before subscribe_to
    zmq::socket_t push;
    PeerState state = PeerState::connecting;
    Steady last_heard{};
    Steady last_sent{};
    Steady last_hello_reply{};
    Steady relinked{};  // when its links were last opened anew (reset) while it was down
    std::int64_t last_heard_unix = 0;
    bool blocked = false;     // the PUSH refused a frame; polled for POLLOUT
    bool hello_owed = false;  // our HELLO still has to reach it
    bool configured = false;  // added by endpoint (static): kept while down
    bool discovered = false;  // found by discovery (its record names it)
    // A frame reached its link: the address it gave is real. A peer learnt from a HELLO alone
    // that never gets this far is the first to go when the table is full, and is forgotten as
    // soon as it is down.
    bool confirmed = false;
    bool hello_seen = false;        // its name, queues and topics are known: it may become alive
    std::size_t batch_max = 0;      // entries per BATCH frame it reads (its HELLO); 0: none
    bool queue_reports = false;     // it answers QUEUE_QUERY (its HELLO, wire.md §15)
    bool repair_batch = false;      // it reads REPAIRs in a BATCH (its HELLO, wire.md §4.3)
    Steady last_report{};           // its last QUEUE_QUERY, and the answers it may still get:
    double report_tokens = 0;       // a token bucket (actor_queues.cpp)
    std::uint64_t query_owed = 0;   // a QUEUE_QUERY that waits for its link, as hello_owed
    std::uint64_t report_owed = 0;  // the QUEUE_REPORT it asked for, waiting the same way
    std::unordered_map<std::string, QueueLink> queues;  // what it may consume of what it asked
    // Its HELLO's queues and prefetch as announced: `queues` is made from them again when the
    // trust policy changes what its key may consume.
    std::vector<std::pair<std::string, std::uint32_t>> advertised;
    std::vector<std::string> topics;
    // Reliable topics (wire.md §14): the prefixes it follows reliably here, with the history each
    // wants (its starting RESEND). Whether it numbers its own topics is TopicStreams::numbered.
    bool start_owed = false;  // our starting RESEND waits for its link, as hello_owed
    std::vector<ReliablePrefix> follows;
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_received = 0;

    // It takes new work: heard recently and its link not full.
    bool ready() const { return state == PeerState::alive && !blocked; }
};

// The peers, in the order they were added, and by id once known.
class PeerDirectory {
public:
    Peer* find(const NodeId& id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : it->second;
    }
    std::size_t size() const { return peers_.size(); }
    const std::vector<std::unique_ptr<Peer>>& all() const { return peers_; }

    Peer& add(std::unique_ptr<Peer> peer) {
        Peer& added = *peer;
        peers_.push_back(std::move(peer));
        if (!added.id.is_nil()) by_id_[added.id] = &added;
        return added;
    }
    // A peer added by endpoint learns its id (its HELLO).
    void name(Peer& peer, const NodeId& id) {
        peer.id = id;
        by_id_[id] = &peer;
    }
    void remove(Peer* peer) {
        if (!peer->id.is_nil()) by_id_.erase(peer->id);
        std::erase_if(peers_, [peer](const auto& p) { return p.get() == peer; });
    }
    void clear() {
        by_id_.clear();
        peers_.clear();
    }

private:
    std::vector<std::unique_ptr<Peer>> peers_;
    std::unordered_map<NodeId, Peer*, UuidHash> by_id_;
};

}  // namespace peermq::detail
