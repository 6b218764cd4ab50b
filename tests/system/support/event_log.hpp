// EventLog: a DiscoverySink that records every event with its arrival time, and lets a test wait
// (condition variable, deadline) for the peer set to reach a state. Thread-safe; sink() may be
// handed to any number of backends and outlives this object safely.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "peermq/discovery.hpp"

namespace peermq::testing {

using SteadyClock = std::chrono::steady_clock;

struct TimedEvent {
    DiscoveryEvent event;
    SteadyClock::time_point at;
};

std::string describe(const DiscoveryEvent& event);

class EventLog {
public:
    EventLog();

    DiscoverySink sink();

    std::vector<TimedEvent> events() const;
    // The peers currently known (found or updated, and not lost since).
    std::map<NodeId, ServiceRecord> peers() const;

    // Waits until `done(events)` holds; false at the deadline.
    bool wait(const std::function<bool(const std::vector<TimedEvent>&)>& done,
              std::chrono::milliseconds timeout) const;
    // Waits until `id` is known; its record and the time it was first found.
    std::optional<TimedEvent> wait_found(const NodeId& id, std::chrono::milliseconds timeout) const;
    // Waits until `id` was lost (after having been found); the time of the loss.
    std::optional<TimedEvent> wait_lost(const NodeId& id, std::chrono::milliseconds timeout) const;
    // Waits for the first event about `id` after `since` of kind `kind`.
    std::optional<TimedEvent> wait_event(const NodeId& id, DiscoveryEvent::Kind kind,
                                         SteadyClock::time_point since,
                                         std::chrono::milliseconds timeout) const;
    std::string dump() const;

private:
    struct State {
        mutable std::mutex mutex;
        std::condition_variable changed;
        std::vector<TimedEvent> events;
    };
    std::shared_ptr<State> state_;
};

double ms_between(SteadyClock::time_point from, SteadyClock::time_point to);

}  // namespace peermq::testing
