// Test helper: wait for a condition with a deadline instead of sleeping and hoping.
#pragma once

#include <chrono>
#include <thread>

namespace peermq::testing {

// Polls `condition` every `poll` (1 ms unless the condition is costly: one that runs a program)
// until it holds or `timeout` passes; returns whether it held. Polling a condition under a
// deadline is how the tests synchronize with other threads and processes; no test sleeps for a
// fixed time and assumes something happened.
template <typename Condition>
bool wait_until(Condition&& condition, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(poll);
    }
    return true;
}

}  // namespace peermq::testing
