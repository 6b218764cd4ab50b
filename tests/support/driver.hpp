// Test helpers: peermq_driver (harness/driver) processes. TestNode runs its `node` role (a node
// run by its flags: a consumer, a producer), ProbeNode its `probe` role (a node commanded line by
// line that reports peer events and the messages it handled); driver_argv() starts any role.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace peermq::testing {

using namespace std::chrono_literals;

// The liveness of test nodes: a killed or frozen one is noticed within about 1.5 s, while a live
// one (busy on two shared cores) is not taken for a dead one.
inline constexpr auto kHeartbeat = 250ms;
inline constexpr auto kPeerTimeout = 1500ms;

// Command-line arguments.
using Args = std::vector<std::string>;

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

// {peermq_driver, role}: the start of the command line of a driver process.
std::vector<std::string> driver_argv(const std::string& role);

// The node flags for kHeartbeat and kPeerTimeout.
std::vector<std::string> liveness_args();

// The payloads a `node` consumer logged to its --log file, in the order it handled them. A line
// being written while we read (no newline yet) is left for the next read.
std::vector<long long> read_log(const std::string& path);
// How many times each payload occurs.
std::map<long long, int> counts(const std::vector<long long>& values);

// One `peermq_driver node` process. Killed (SIGKILL) when destroyed, like ChildProcess. Not
// thread-safe.
class TestNode {
public:
    // Starts the node with `args` (its flags) and waits for its READY line; `prefix` runs it
    // elsewhere (nsenter ..., scripts/lab.sh exec HOST).
    explicit TestNode(Args args, Args extra_env = {}, Args prefix = {});

    bool ready() const { return !endpoint_.empty(); }
    const std::string& endpoint() const { return endpoint_; }
    pid_t pid() const { return process_->pid(); }
    ChildProcess& process() { return *process_; }
    std::string output() const { return process_->output(); }

    // The node's Node::stats() flattened ("jobs.acked" -> 12, "dropped.ttl.expired" -> 3), or
    // nullopt when it does not answer (stopped, dead). A reply that arrives late is read by the
    // next call: callers poll for a condition, so a stale snapshot only costs one more round.
    std::optional<std::map<std::string, std::uint64_t>> stats(
        std::chrono::milliseconds timeout = std::chrono::seconds(3));
    // One stat, 0 when absent (a counter never touched); nullopt when the node did not answer.
    std::optional<std::uint64_t> stat(const std::string& key);
    // Waits until stat(key) is `value`; false at the deadline.
    bool wait_stat(const std::string& key, std::uint64_t value, std::chrono::milliseconds timeout);

    void kill(int signal) { process_->signal(signal); }
    // Closes its stdin: it closes its node (BYE, final group commit) and exits; returns its exit
    // code (nullopt when it did not exit within 30 s).
    std::optional<int> stop();

private:
    std::unique_ptr<ChildProcess> process_;
    std::string endpoint_;
};

// One `peermq_driver probe` process, commanded through a FIFO (ChildProcess keeps the child's
// stdin only to close it). Killed (SIGKILL) when destroyed. Not thread-safe.
class ProbeNode {
public:
    // The probe named `name` with `args` (its flags), its FIFO in `dir`; `prefix` runs it
    // elsewhere (nsenter ..., scripts/lab.sh exec HOST).
    ProbeNode(const std::string& dir, std::string name, std::vector<std::string> args,
              std::vector<std::string> prefix = {}, std::vector<std::string> extra_env = {});
    ~ProbeNode();
    ProbeNode(const ProbeNode&) = delete;
    ProbeNode& operator=(const ProbeNode&) = delete;

    const std::string& name() const { return name_; }
    ChildProcess& process() { return *process_; }
    // Its whole output, and the same without the GOT lines (tens of thousands of them), for
    // failure messages.
    std::string output() const { return process_->output(); }
    std::string tail() const;

    // Waits for "READY id=... inbox=..."; remembers the node id.
    bool ready(std::chrono::milliseconds timeout);
    const std::string& id() const { return id_; }

    // Sends a command without waiting for an answer ("quit").
    bool tell(const std::string& command);
    // Sends a command and returns its answer (the first later line starting with the command in
    // capitals), or nullopt at the deadline.
    std::optional<std::string> ask(const std::string& command, std::chrono::milliseconds timeout);
    // ask(), and a test failure unless the answer says "ok".
    bool ask_ok(const std::string& command, std::chrono::milliseconds timeout);
    // The numbers of its answer to "stats QUEUE" (streamed, sent, acked, in_flight, ...); empty
    // when it did not answer.
    std::map<std::string, std::int64_t> stats(const std::string& queue);

    // The probe's clock stamp (CLOCK_MONOTONIC ns: one clock for every network namespace and the
    // test) of the first "PEER" line about `peer` in `state` stamped at or after `since_ns`.
    std::optional<std::int64_t> peer_state(const std::string& peer, const std::string& state,
                                           std::int64_t since_ns,
                                           std::chrono::milliseconds timeout);
    // Payloads its consumer handled ("GOT <n>"), and a wait for one >= `first`.
    std::vector<long long> got() const;
    bool got_from(long long first, std::chrono::milliseconds timeout);

    // "quit": it closes its node (BYE); its exit code.
    std::optional<int> quit();

private:
    std::string name_;
    int commands_ = -1;
    std::unique_ptr<ChildProcess> process_;
    std::string id_;
};

// CLOCK_MONOTONIC in ns, as the probe stamps its lines.
std::int64_t monotonic_ns();

}  // namespace peermq::testing
