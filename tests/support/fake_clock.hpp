// FakeClock: a peermq::Clock whose time moves only when a test calls advance().
//
// Steady and wall time start at fixed values and advance together; step_wall_clock() moves wall
// time alone, like an NTP step. Thread-safe: the node's threads may read it while the test
// advances it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "peermq/clock.hpp"

namespace peermq::testing {

class FakeClock final : public Clock {
public:
    // Far from zero on both clocks, so code that treats 0 as "unset" is not fooled.
    static constexpr std::int64_t kStartUnixMs = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
    static constexpr Steady kStartSteady = Steady(std::chrono::hours(24));

    explicit FakeClock(std::int64_t start_unix_ms = kStartUnixMs, Steady start = kStartSteady)
        : start_unix_ms_(start_unix_ms), start_steady_(start) {}

    Steady steady_now() const override {
        return start_steady_ + std::chrono::nanoseconds(elapsed_ns_.load());
    }

    std::int64_t unix_ms() const override {
        // Floor, so wall time never runs ahead of steady time within a millisecond.
        const std::int64_t ns = elapsed_ns_.load() + wall_offset_ns_.load();
        const std::int64_t ms = ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0);
        return start_unix_ms_ + ms;
    }

    // Moves both clocks forward; negative durations are ignored (steady time never goes back).
    void advance(std::chrono::nanoseconds by) {
        if (by > std::chrono::nanoseconds::zero()) elapsed_ns_.fetch_add(by.count());
    }

    // Moves wall time alone, either way (clock skew, NTP steps); steady time is untouched.
    void step_wall_clock(std::chrono::nanoseconds by) { wall_offset_ns_.fetch_add(by.count()); }

    std::chrono::nanoseconds elapsed() const {
        return std::chrono::nanoseconds(elapsed_ns_.load());
    }

private:
    const std::int64_t start_unix_ms_;
    const Steady start_steady_;
    std::atomic<std::int64_t> elapsed_ns_{0};
    std::atomic<std::int64_t> wall_offset_ns_{0};
};

}  // namespace peermq::testing
