// Drops: the actor's counts of what it threw away, by reason (drop_reasons.hpp), and how they are
// logged: routine reasons at trace; reasons worth a warning once at warn as they first happen,
// then as one summary line per reason at most every summary interval, so that a flood of bad
// frames costs a few log lines, not one a frame. Owned by one thread (the actor); takes `now`.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "observability/drop_reasons.hpp"
#include "peermq/clock.hpp"
#include "peermq/log.hpp"

namespace peermq::detail {

class Drops {
public:
    using Steady = Clock::Steady;
    static constexpr auto kSummaryInterval = std::chrono::seconds(10);

    explicit Drops(Logger& log) : log_(log) {}

    void count(Drop reason, std::uint64_t n, Steady now) {
        counts_[index(reason)] += n;
        if (log_.enabled(LogLevel::trace) ||
            (warn_worthy(reason) && log_.enabled(LogLevel::warn))) {
            log(reason, n, now);
        }
    }
    // An exception from one frame or one command (internal.*): counted like a drop; the first
    // of each reason is also logged at error with its text, as a defect of this node. Never
    // throws, even when the log does.
    void internal_error(Drop reason, std::string_view what) noexcept;
    // The summary lines due at `now`.
    void summarize(Steady now);

    std::uint64_t operator[](Drop reason) const { return counts_[index(reason)]; }
    // Adds the non-zero counts by name, and their bad frames (frame.*, hello.*).
    void add_to(std::map<std::string, std::uint64_t>& dropped, std::uint64_t& bad_frames) const;

private:
    void log(Drop reason, std::uint64_t n, Steady now);

    Logger& log_;
    std::array<std::uint64_t, kDropCount> counts_{};
    std::array<std::uint64_t, kDropCount> logged_{};  // the count the last warn line gave
    std::array<bool, kDropCount> warned_{};
    bool any_warned_ = false;
    Steady next_summary_{};
};

}  // namespace peermq::detail
