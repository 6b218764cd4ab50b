// The per-queue FIFO of ack deadlines (reliability/in_flight.hpp): deadlines leave in the order
// they were armed, a cleared one never fires, and emptied slots do not pile up.
#include "reliability/in_flight.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

TEST(AckDeadlines, DueDeliveriesLeaveInOrderAndClearedOnesNever) {
    AckDeadlines fifo;
    const Clock::Steady t0 = Clock::Steady(std::chrono::hours(1));
    std::vector<Inflight> entries(3);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        fifo.arm(entries[i], t0 + std::chrono::milliseconds(10 * (i + 1)), entries.size());
    }
    EXPECT_EQ(fifo.next_due(), t0 + 10ms);
    fifo.clear(entries[0]);
    EXPECT_FALSE(entries[0].ack_armed);
    EXPECT_EQ(fifo.next_due(), t0 + 20ms) << "a cleared front does not wake anyone";

    EXPECT_EQ(fifo.pop_due(t0 + 19ms), nullptr);
    EXPECT_EQ(fifo.pop_due(t0 + 30ms), &entries[1]);
    EXPECT_FALSE(entries[1].ack_armed);
    EXPECT_EQ(fifo.pop_due(t0 + 30ms), &entries[2]);
    EXPECT_EQ(fifo.pop_due(t0 + 30ms), nullptr);
    EXPECT_FALSE(fifo.next_due().has_value());
}

TEST(AckDeadlines, EmptiedSlotsAreCompactedWhenTheyOutnumberTheLiveOnes) {
    AckDeadlines fifo;
    const Clock::Steady t0 = Clock::Steady(std::chrono::hours(1));
    Inflight oldest;  // stays in flight: the slots behind it cannot leave from the front
    fifo.arm(oldest, t0, 1);
    std::vector<Inflight> settled(5000);
    for (auto& entry : settled) {
        fifo.arm(entry, t0 + 1s, 2);
        fifo.clear(entry);
    }
    EXPECT_LT(fifo.slots(), 1100u) << "compacted: live ones plus at most the slack";
    EXPECT_EQ(fifo.pop_due(t0), &oldest);
    EXPECT_FALSE(fifo.next_due().has_value());
}

}  // namespace
}  // namespace peermq::detail
