// Backoff: exponential retry delays with "equal jitter".
//
// delay(n) for the n-th retry (n >= 1) is drawn uniformly from [base(n) / 2, base(n)] where
// base(n) = min(max, initial * 2^(n-1)). Half of the delay is fixed so retries never bunch up
// at zero; the other half is random so many senders retrying after the same failure spread out
// instead of hammering a recovering peer in lock-step.
//
// Not thread-safe: owned and used by the node's actor thread. Pure logic: it never reads a
// clock; the caller adds the delay to its own notion of "now".
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace peermq::detail {

class Backoff {
public:
    using Duration = std::chrono::microseconds;

    // A non-positive initial gives zero delays; max below initial caps every delay at max. The
    // seed makes the jitter reproducible in tests; production code uses random_seed().
    Backoff(Duration initial, Duration max, std::uint64_t seed = random_seed());

    // The jittered delay before retry number `attempt` (1 = the first retry). attempt 0 is
    // treated as 1. Never overflows, however large attempt is.
    Duration delay(std::uint32_t attempt);

    // The un-jittered upper bound of delay(attempt): min(max, initial * 2^(attempt-1)).
    Duration base(std::uint32_t attempt) const noexcept;

    // Upper bound of the sum of delay(1) .. delay(retries): how long backoff alone can stretch
    // a message's retries (a term of the effectively_once dedupe horizon). Saturates instead
    // of overflowing.
    Duration max_total(std::uint32_t retries) const noexcept;

    Duration initial() const noexcept { return initial_; }
    Duration max() const noexcept { return max_; }

    static std::uint64_t random_seed();

private:
    Duration initial_;
    Duration max_;
    std::mt19937_64 random_;
};

}  // namespace peermq::detail
