// Test helpers for nodes in the test's own process: creating one, finding its peers, reading its
// queue counters, describing them in failure messages, and names no other run shares.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include "peermq/keys.hpp"

#include "peermq/peermq.hpp"

namespace peermq::testing {

// Node::create() or an exception (the test fails with its status).
inline Node make_node(NodeOptions options) {
    auto node = Node::create(std::move(options));
    if (!node) throw std::runtime_error(node.status().to_string());
    return std::move(node).value();
}

inline const PeerInfo* find_peer(const std::vector<PeerInfo>& peers, const std::string& name) {
    for (const auto& p : peers) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

inline bool consumes(const PeerInfo& peer, const std::string& queue) {
    return std::find(peer.queues.begin(), peer.queues.end(), queue) != peer.queues.end();
}

// True when `node` sees every one of `names` alive and, unless `queue` is empty, consuming it
// and linked: `node` has sent it a frame. A peer that greeted `node` first is alive at once, its
// link from `node` up a few milliseconds later; work sent before goes to the others.
inline bool sees(const Node& node, const std::vector<std::string>& names,
                 const std::string& queue = {}) {
    const auto peers = node.peers();
    for (const auto& name : names) {
        const auto* p = find_peer(peers, name);
        if (!p || p->state != PeerState::alive) return false;
        if (!queue.empty() && (!consumes(*p, queue) || p->frames_sent == 0)) return false;
    }
    return true;
}

// The counters of one queue (all zero when the node has none of it).
inline ChannelStats queue_stats(const Node& node, const std::string& queue) {
    const auto stats = node.stats();
    const auto it = stats.queues.find(queue);
    return it == stats.queues.end() ? ChannelStats{} : it->second;
}

// How many times a node dropped something for `reason` (0 when never).
inline std::uint64_t dropped(const NodeStats& stats, const std::string& reason) {
    const auto it = stats.dropped.find(reason);
    return it == stats.dropped.end() ? 0 : it->second;
}

// "tcp://127.0.0.1:4000" (or an address, "tcp://127.0.0.1:4000#KEY") -> "tcp://127.0.0.1:4000".
inline std::string without_key(const std::string& endpoint) {
    const std::size_t n = endpoint.size();
    if (n > kKeyTextSize && endpoint[n - kKeyTextSize - 1] == '#') {
        return endpoint.substr(0, n - kKeyTextSize - 1);
    }
    return endpoint;
}

// "tcp://127.0.0.1:4000" (with or without "#KEY") -> 4000.
inline std::uint16_t port_of(const std::string& endpoint) {
    const std::string bare = without_key(endpoint);
    return static_cast<std::uint16_t>(std::stoi(bare.substr(bare.rfind(':') + 1)));
}

// For failure messages: one line per peer, a queue's counters, the drops by reason.
inline std::string describe(const std::vector<PeerInfo>& peers) {
    std::string out;
    for (const auto& peer : peers) {
        out += "  " + peer.name + " id=" + peer.id.to_string() +
               " state=" + std::string(to_string(peer.state)) + " inbox=" + peer.inbox_endpoint +
               " queues=" + std::to_string(peer.queues.size()) + "\n";
    }
    return out.empty() ? "  (no peers)\n" : out;
}

inline std::string describe(const ChannelStats& s) {
    std::ostringstream out;
    out << "sent=" << s.sent << " acked=" << s.acked << " nacked=" << s.nacked
        << " retried=" << s.retried << " redelivered=" << s.redelivered << " expired=" << s.expired
        << " dead_lettered=" << s.dead_lettered << " in_flight=" << s.in_flight
        << " depth=" << s.depth;
    return out.str();
}

inline std::string describe_drops(const NodeStats& stats) {
    std::ostringstream out;
    for (const auto& [reason, n] : stats.dropped) out << reason << "=" << n << " ";
    return out.str();
}

// A short random token ("k3f9q2") for test clusters and names, so that leftovers of other runs
// (mDNS records, processes) are never mistaken for this test's.
inline std::string unique_token() {
    static std::mt19937_64 random{std::random_device{}()};
    static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string token;
    for (int i = 0; i < 6; ++i) token.push_back(kChars[random() % (sizeof kChars - 1)]);
    return token;
}

}  // namespace peermq::testing
