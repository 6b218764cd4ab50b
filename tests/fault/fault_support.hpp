// Helpers of the fault tests (the shared ones are in tests/support): consumers in
// `peermq_driver node` processes reporting what they handle to a log, in-process producers with
// the same liveness settings, and what /proc says about a frozen process.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "peermq/peermq.hpp"
#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace peermq::fault {

using namespace std::chrono_literals;
using namespace peermq::testing;
using peermq::testing::operator+;

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

// An in-process node on lo with the liveness of the test nodes (kHeartbeat, kPeerTimeout).
inline NodeOptions node_options(const std::string& name, std::vector<std::string> peers = {}) {
    NodeOptions options;
    options.name = name;
    options.interface = "lo";
    options.peers = std::move(peers);
    options.heartbeat_interval = kHeartbeat;
    options.peer_timeout = kPeerTimeout;
    return options;
}

// Arguments that make a `peermq_driver node` a consumer of `queue` reporting to `log`, with the
// test nodes' liveness, knowing `producer_endpoint` as a static peer (none if empty: then it
// learns its producers from their HELLOs).
inline std::vector<std::string> consumer_args(const std::string& name, const std::string& queue,
                                              const std::string& log,
                                              const std::string& producer_endpoint) {
    std::vector<std::string> args =
        std::vector<std::string>{"--name",    name,  "--interface", "lo",
                                 "--consume", queue, "--log",       log} +
        liveness_args();
    if (!producer_endpoint.empty()) {
        args.push_back("--peer");
        args.push_back(host_port(producer_endpoint));
    }
    return args;
}

// An in-process consumer of `queue` (named "consumer", with the test nodes' liveness) that counts
// how often it handled each payload. Not movable: its handler holds `this`.
class CountingConsumer {
public:
    explicit CountingConsumer(const std::string& queue)
        : node_(make_node(node_options("consumer"))) {
        const Status consumed = node_.consume(queue, [this](Delivery& d) {
            std::lock_guard lock(mutex_);
            ++received_[d.as<long long>()];
        });
        if (!consumed.ok()) throw std::runtime_error(consumed.to_string());
    }
    CountingConsumer(const CountingConsumer&) = delete;
    CountingConsumer& operator=(const CountingConsumer&) = delete;

    std::string endpoint() const { return node_.address(); }
    // Payload -> how many times the handler ran for it, so far.
    std::map<long long, int> received() const {
        std::lock_guard lock(mutex_);
        return received_;
    }

private:
    mutable std::mutex mutex_;
    std::map<long long, int> received_;
    Node node_;
};

inline std::optional<PeerState> peer_state(const Node& node, const std::string& name) {
    const auto peers = node.peers();
    const auto* p = find_peer(peers, name);
    if (!p) return std::nullopt;
    return p->state;
}

}  // namespace peermq::fault
