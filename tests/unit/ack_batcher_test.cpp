// The receiver's ack batches (reliability/ack_batcher.hpp), with time given by the test: a batch
// leaves at its limit, after its interval, or when forced; no frame carries more than
// kMaxIdsPerAck ids; a sender without a route loses its batch, counted.
#include "reliability/ack_batcher.hpp"

#include <map>
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
                frames.emplace_back(to->id, std::vector<MessageId>(ids.begin(), ids.end()));
            });
    }
    NodeId known() {
        const NodeId id = NodeId::generate();
        routes[id] = Route{id};
        return id;
    }

    AckBatcher acks{5ms};
    std::map<NodeId, Route> routes;
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

}  // namespace
}  // namespace peermq::detail
