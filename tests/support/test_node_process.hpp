// Test helper: a peermq_test_node process (tests/support/test_node.cpp), its arguments, and its
// counters read through SIGUSR1.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/process.hpp"

#ifndef PEERMQ_TEST_NODE
#error "PEERMQ_TEST_NODE must be defined by the build"
#endif

namespace peermq::testing {

// `a` followed by `b` (command-line arguments). Not found by ADL: `using` it.
inline std::vector<std::string> operator+(std::vector<std::string> a,
                                          const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// "tcp://127.0.0.1:4000" -> "127.0.0.1:4000", the form --peer takes.
inline std::string host_port(const std::string& endpoint) {
    const auto pos = endpoint.find("://");
    return pos == std::string::npos ? endpoint : endpoint.substr(pos + 3);
}

// One peermq_test_node process. Killed (SIGKILL) when destroyed, like ChildProcess. Not
// thread-safe.
class TestNode {
public:
    // Starts the node with `args` after the program path and waits for its READY line.
    explicit TestNode(std::vector<std::string> args) {
        using namespace std::chrono_literals;
        args.insert(args.begin(), PEERMQ_TEST_NODE);
        process_ = std::make_unique<ChildProcess>(std::move(args));
        if (auto ready = process_->read_line("READY ", 20s)) endpoint_ = *ready;
    }

    bool ready() const { return !endpoint_.empty(); }
    const std::string& endpoint() const { return endpoint_; }
    pid_t pid() const { return process_->pid(); }
    ChildProcess& process() { return *process_; }

    // The node's Node::stats() flattened ("jobs.acked" -> 12, "dropped.ttl.expired" -> 3), or
    // nullopt when it does not answer (stopped, dead). A reply that arrives late is read by the
    // next call: callers poll for a condition, so a stale snapshot only costs one more round.
    std::optional<std::map<std::string, std::uint64_t>> stats(
        std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
        process_->kill(SIGUSR1);
        auto line = process_->read_line("STATS", timeout);
        if (!line) return std::nullopt;
        std::map<std::string, std::uint64_t> out;
        std::istringstream in(*line);
        std::string item;
        while (in >> item) {
            const auto eq = item.rfind('=');
            if (eq == std::string::npos) continue;
            out[item.substr(0, eq)] = std::stoull(item.substr(eq + 1));
        }
        return out;
    }
    // One stat, 0 when absent (a counter never touched); nullopt when the node did not answer.
    std::optional<std::uint64_t> stat(const std::string& key) {
        auto all = stats();
        if (!all) return std::nullopt;
        auto it = all->find(key);
        return it == all->end() ? 0 : it->second;
    }

    void kill(int signal) { process_->kill(signal); }
    // Closes its stdin: it closes its node (BYE, final group commit) and exits; returns its
    // exit status.
    int stop() {
        process_->close_stdin();
        return process_->wait();
    }

private:
    std::unique_ptr<ChildProcess> process_;
    std::string endpoint_;
};

}  // namespace peermq::testing
