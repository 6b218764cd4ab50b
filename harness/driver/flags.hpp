// What the roles of peermq_driver share: reading their flags, the node flags that `node` and
// `probe` both take, choosing a discovery backend, and printing whole lines on stdout.
//
// Everything here runs on the role's main thread, except say(), which any thread may call.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "peermq/discovery.hpp"
#include "peermq/discovery/avahi.hpp"
#include "peermq/options.hpp"

namespace peermq::driver {

// Prints `line` and a newline on stdout and flushes: tests read the driver line by line, and a
// SIGKILL must lose nothing printed. Whole lines only, whichever threads print.
void say(const std::string& line);

// CLOCK_MONOTONIC in nanoseconds: one clock for the driver and the test that reads its lines,
// in every network namespace of the host.
std::int64_t monotonic_ns();

// The flags of one role, read left to right. A missing or malformed value, or a flag no one
// takes, ends the process with status 2 and one line on stderr naming the role and the flag.
class Flags {
public:
    Flags(std::string role, std::vector<std::string> args);

    // Moves to the next flag; false after the last one.
    bool next();
    bool is(const char* flag) const { return flag_ == flag; }
    const std::string& flag() const { return flag_; }

    // The current flag's value: the argument after it.
    std::string value();
    std::uint64_t number();
    std::chrono::milliseconds millis() { return std::chrono::milliseconds(number()); }

    [[noreturn]] void unknown() const { fail("unknown argument " + flag_); }
    [[noreturn]] void fail(const std::string& problem) const;

private:
    std::string role_;
    std::vector<std::string> args_;
    std::size_t index_ = 0;
    std::string flag_;
};

// A discovery backend by the name the peermq tool uses for it (--discovery): avahi (the
// avahi-daemon), embedded (libavahi-core in process) or auto; `static` is no factory at all
// (static peers only). False for an unknown name.
bool discovery_by_name(const std::string& name, const discovery::AvahiOptions& avahi,
                       DiscoveryFactory& factory);

// The flags of a node, shared by the `node` and `probe` roles:
//   --name N  --cluster C  --interface IF (default lo)  --port P (inbox)  --pub-port P
//   --peer HOST:PORT#KEY...
//   --trust open|plain (NodeOptions::trust; the key: PEERMQ_SECRET_KEY or the data dir's)
//   --discovery static|avahi|embedded|auto (default static; Avahi only on --interface)
//   --data-dir DIR  --durability memory|group_commit|fsync_each
//   --heartbeat-ms N  --peer-timeout-ms N  --control ENDPOINT (NodeOptions::control_endpoint)
// what it consumes:
//   --consume QUEUE  --prefetch N  --concurrency N
// and how it sends (QueueOptions of every queue it sends to):
//   --guarantee best_effort|at_least_once|effectively_once  --ttl-ms N  --max-attempts N
//   --retry-initial-ms N  --retry-max-ms N  --ack-timeout-ms N  --max-length N  --ordered
struct NodeFlags {
    NodeFlags();

    // Takes the current flag when it is one of the above; false when it is not.
    bool take(Flags& flags);
    // The options with the discovery backend set.
    NodeOptions node_options(const Flags& flags) const;

    NodeOptions options;
    std::string discovery = "static";
    std::string consume;  // empty: consumes nothing
    ConsumeOptions consume_options;
    QueueOptions queue_options;
};

}  // namespace peermq::driver
