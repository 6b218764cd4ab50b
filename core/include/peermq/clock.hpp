// Clock: the injectable source of time for retries, TTLs and liveness.
//
// Implementations must be thread-safe. system_clock() is the real one; tests of pure logic use a
// fake whose time only moves when the test says so.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

namespace peermq {

class Clock {
public:
    using Steady = std::chrono::steady_clock::time_point;

    virtual ~Clock() = default;
    // Monotonic time: timers, backoff, liveness.
    virtual Steady steady_now() const = 0;
    // Wall time in Unix milliseconds: message creation times and TTL deadlines, which cross
    // hosts (so hosts need roughly synchronised clocks, e.g. NTP). The real clock reads the
    // kernel's coarse clock: it may lag by one scheduler tick (1-4 ms), so a TTL may run that
    // much longer.
    virtual std::int64_t unix_ms() const = 0;
};

// The process-wide real clock.
std::shared_ptr<Clock> system_clock();

}  // namespace peermq
