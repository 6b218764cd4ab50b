// Shared helpers of the fault tests: temporary directories, peermq_test_node processes (started,
// stopped, frozen, asked for their stats), consumer logs, and an in-process producer node.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "peermq/peermq.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_node_process.hpp"
#include "wait.hpp"

namespace peermq::fault {

using namespace std::chrono_literals;
using peermq::testing::ChildProcess;
using peermq::testing::host_port;
using peermq::testing::TestNode;
using peermq::testing::operator+;
using peermq::testing::wait_until;

// Liveness settings shared by every node of a fault test: a killed consumer is noticed within
// about a second, while a live one (busy on two shared cores) is not mistaken for a dead one.
inline constexpr auto kHeartbeat = 250ms;
inline constexpr auto kPeerTimeout = 1500ms;

// A temporary directory peermq-fault-XXXXXX, removed with everything in it.
struct TempDir : peermq::testing::TempDir {
    TempDir() : peermq::testing::TempDir("peermq-fault") {}
};

// The payloads a peermq_test_node consumer logged, in the order it handled them. A line being
// written while we read (no newline yet) is left for the next read.
inline std::vector<long long> read_log(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    std::vector<long long> values;
    std::size_t begin = 0;
    for (std::size_t end = text.find('\n'); end != std::string::npos;
         end = text.find('\n', begin)) {
        values.push_back(std::stoll(text.substr(begin, end - begin)));
        begin = end + 1;
    }
    return values;
}

inline std::map<long long, int> counts(const std::vector<long long>& values) {
    std::map<long long, int> out;
    for (long long v : values) ++out[v];
    return out;
}

// Whether every thread of `pid` is stopped (SIGSTOP taken effect), from /proc.
inline bool all_threads_stopped(pid_t pid) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    std::error_code error;
    bool any = false;
    for (const auto& entry : std::filesystem::directory_iterator(tasks, error)) {
        std::ifstream stat(entry.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const auto close = text.rfind(')');
        if (close == std::string::npos || close + 2 >= text.size()) return false;
        const char state = text[close + 2];
        if (state != 'T' && state != 't') return false;
        any = true;
    }
    return any && !error;
}

inline NodeOptions node_options(const std::string& name, std::vector<std::string> peers = {}) {
    NodeOptions options;
    options.name = name;
    options.interface = "lo";
    options.peers = std::move(peers);
    options.heartbeat_interval = kHeartbeat;
    options.peer_timeout = kPeerTimeout;
    return options;
}

inline Node make_node(NodeOptions options) {
    auto node = Node::create(std::move(options));
    if (!node) throw std::runtime_error(node.status().to_string());
    return std::move(node).value();
}

// Arguments that make a peermq_test_node a consumer of `queue` reporting to `log`, with the
// fault tests' liveness settings, knowing `producer_endpoint` as a static peer (none if empty:
// then it learns its producers from their HELLOs).
inline std::vector<std::string> consumer_args(const std::string& name, const std::string& queue,
                                              const std::string& log,
                                              const std::string& producer_endpoint) {
    std::vector<std::string> args = {"--name",
                                     name,
                                     "--interface",
                                     "lo",
                                     "--consume",
                                     queue,
                                     "--log",
                                     log,
                                     "--heartbeat-ms",
                                     std::to_string(kHeartbeat.count()),
                                     "--peer-timeout-ms",
                                     std::to_string(kPeerTimeout.count())};
    if (!producer_endpoint.empty()) {
        args.push_back("--peer");
        args.push_back(host_port(producer_endpoint));
    }
    return args;
}

inline const PeerInfo* find_peer(const std::vector<PeerInfo>& peers, const std::string& name) {
    for (const auto& p : peers) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

inline std::optional<PeerState> peer_state(const Node& node, const std::string& name) {
    const auto peers = node.peers();
    const auto* p = find_peer(peers, name);
    if (!p) return std::nullopt;
    return p->state;
}

// True when `node` sees every one of `names` alive and consuming `queue`.
inline bool sees_consumers(const Node& node, const std::vector<std::string>& names,
                           const std::string& queue) {
    const auto peers = node.peers();
    for (const auto& name : names) {
        const auto* p = find_peer(peers, name);
        if (!p || p->state != PeerState::alive) return false;
        if (std::find(p->queues.begin(), p->queues.end(), queue) == p->queues.end()) return false;
    }
    return true;
}

inline ChannelStats queue_stats(const Node& node, const std::string& queue) {
    auto stats = node.stats();
    auto it = stats.queues.find(queue);
    return it == stats.queues.end() ? ChannelStats{} : it->second;
}

// Human-readable summary of a producer's queue counters, for failure messages.
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

}  // namespace peermq::fault
