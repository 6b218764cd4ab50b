// The receiver's ack batches (reliability/ack_batcher.hpp), with time given by the test: a batch
// leaves at its limit, after its interval, or when forced; no frame carries more than
// kMaxIdsPerAck ids; a sender without a route loses its batch, counted; a link that takes nothing
// has its acks held (bounded) until it takes frames again.
#include "reliability/ack_batcher.hpp"

#include <map>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

struct Route {
    NodeId id;
};

class AckBatcherTest : public ::testing::Test {
protected:
    // Flushes; records each frame as (sender, ids).
    std::size_t flush(Clock::Steady now, bool force) {
        return acks.flush(
            now, force,
            [this](const NodeId& sender) -> Route* {
                auto it = routes.find(sender);
                return it == routes.end() ? nullptr : &it->second;
            },
            [this](Route* to, std::span<const MessageId> ids) {
                if (refusing.contains(to->id)) return false;
                frames.emplace_back(to->id, std::vector<MessageId>(ids.begin(), ids.end()));
                return true;
            });
    }
    NodeId known() {
        const NodeId id = NodeId::generate();
        routes[id] = Route{id};
        return id;
    }

    AckBatcher acks{5ms};
    std::map<NodeId, Route> routes;
    std::set<NodeId> refusing;  // their links take no frame (not connected, or full)
    std::vector<std::pair<NodeId, std::vector<MessageId>>> frames;
    const Clock::Steady t0 = Clock::Steady(std::chrono::hours(1));
};

TEST_F(AckBatcherTest, TheLimitIsHalfTheCreditWithinTheBatchSize) {
    EXPECT_EQ(AckBatcher::limit_for(100, 64), 50u);
    EXPECT_EQ(AckBatcher::limit_for(1000, 64), 64u);
    EXPECT_EQ(AckBatcher::limit_for(1, 64), 1u) << "a prefetch of 1 acks every message";
}

TEST_F(AckBatcherTest, ABatchLeavesAtItsLimitOrAfterItsInterval) {
    const NodeId sender = known();
    EXPECT_FALSE(acks.add(sender, MessageId::generate(), 3, t0));
    EXPECT_FALSE(acks.add(sender, MessageId::generate(), 3, t0 + 1ms));
    EXPECT_EQ(acks.next_due(), t0 + 5ms) << "the first id's interval";
    flush(t0 + 4ms, false);
    EXPECT_TRUE(frames.empty());
    EXPECT_TRUE(acks.add(sender, MessageId::generate(), 3, t0 + 2ms)) << "full: flush now";
    flush(t0 + 2ms, false);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].second.size(), 3u);
    EXPECT_EQ(acks.pending(), 0u);
    EXPECT_FALSE(acks.next_due().has_value());

    acks.add(sender, MessageId::generate(), 3, t0 + 10ms);
    flush(t0 + 15ms, false);
    EXPECT_EQ(frames.size(), 2u) << "its interval is over";
}

TEST_F(AckBatcherTest, ForcingSendsEveryBatchAndTheSmallestLimitWins) {
    const NodeId a = known();
    const NodeId b = known();
    acks.add(a, MessageId::generate(), 10, t0);
    EXPECT_TRUE(acks.add(a, MessageId::generate(), 2, t0)) << "a consumer with less credit";
    acks.add(b, MessageId::generate(), 10, t0);
    flush(t0, true);
    EXPECT_EQ(frames.size(), 2u);
    EXPECT_EQ(acks.pending(), 0u);
}

TEST_F(AckBatcherTest, NoFrameCarriesMoreIdsThanAnAckMay) {
    const NodeId sender = known();
    const std::size_t n = kMaxIdsPerAck * 2 + 7;
    for (std::size_t i = 0; i < n; ++i) acks.add(sender, MessageId::generate(), n, t0);
    flush(t0, false);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].second.size(), kMaxIdsPerAck);
    EXPECT_EQ(frames[2].second.size(), 7u);
}

TEST_F(AckBatcherTest, ASenderWithoutARouteLosesItsBatchCounted) {
    const NodeId spoofed = NodeId::generate();
    acks.add(spoofed, MessageId::generate(), 10, t0);
    acks.add(spoofed, MessageId::generate(), 10, t0);
    EXPECT_EQ(flush(t0, true), 2u);
    EXPECT_TRUE(frames.empty());
    EXPECT_EQ(acks.pending(), 0u);

    const NodeId gone = known();
    acks.add(gone, MessageId::generate(), 10, t0);
    acks.forget(gone);
    EXPECT_EQ(acks.pending(), 0u);
    EXPECT_EQ(flush(t0, true), 0u);
    EXPECT_TRUE(frames.empty());
}

// A consumer handles messages while its link back to their sender is not connected yet (a healed
// partition: the sender's link to it came back first). Dropping those acks would cost the sender
// an ack timeout and a second copy of each message elsewhere; they wait for the link instead.
TEST_F(AckBatcherTest, AcksALinkRefusedWaitForItAndLeaveWhenItTakesFramesAgain) {
    const NodeId sender = known();
    std::vector<MessageId> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(MessageId::generate());
    refusing.insert(sender);
    for (const auto& id : ids) acks.add(sender, id, 2, t0);
    EXPECT_EQ(flush(t0, true), 0u) << "nothing dropped";
    EXPECT_TRUE(frames.empty());
    EXPECT_EQ(acks.pending(), 3u);
    EXPECT_FALSE(acks.next_due().has_value()) << "held for the link, not for a time: no busy loop";

    flush(t0 + 1s, false);
    EXPECT_TRUE(frames.empty()) << "still refused";
    refusing.clear();
    flush(t0 + 1s, false);
    ASSERT_EQ(frames.size(), 1u) << "the link takes frames: the held acks leave at once";
    EXPECT_EQ(frames[0].second, ids) << "all of them, in order";
    EXPECT_EQ(acks.pending(), 0u);
}

TEST_F(AckBatcherTest, ALinkThatNeverTakesFramesHoldsABoundedNumberOfAcksTheOldestDroppedCounted) {
    const NodeId sender = known();
    refusing.insert(sender);
    const std::size_t n = AckBatcher::kMaxHeld + 100;
    std::vector<MessageId> ids;
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < n; ++i) {
        ids.push_back(MessageId::generate());
        if (acks.add(sender, ids.back(), 64, t0)) dropped += flush(t0, false);
    }
    dropped += flush(t0, true);
    EXPECT_EQ(dropped, 100u);
    EXPECT_EQ(acks.pending(), AckBatcher::kMaxHeld);
    refusing.clear();
    flush(t0, false);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.front().second.front(), ids[100]) << "the newest kept";
    EXPECT_EQ(frames.back().second.back(), ids.back());
}

}  // namespace
}  // namespace peermq::detail
