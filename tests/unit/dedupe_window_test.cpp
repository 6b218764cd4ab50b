// Unit tests for detail::DedupeWindow (docs/spec/reliability.md, "Effectively-once").
#include "reliability/dedupe_window.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "peermq/uuid.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

MessageId id_from(std::uint64_t n) {
    std::array<std::uint8_t, Uuid::kSize> bytes{};
    for (int i = 0; i < 8; ++i) bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
    bytes[6] = 0x70;  // looks like a v7 id; irrelevant to the window
    return MessageId(bytes);
}

TEST(DedupeWindowTest, FirstSightingIsNewAndRepeatsAreDuplicates) {
    DedupeWindow window(60s, 1000);
    const MessageId id = Uuid::generate();
    EXPECT_TRUE(window.check_and_insert(id, 1000));
    EXPECT_FALSE(window.check_and_insert(id, 1001));
    EXPECT_FALSE(window.check_and_insert(id, 2000));
    EXPECT_TRUE(window.contains(id));
    EXPECT_EQ(window.size(), 1u);
    EXPECT_EQ(window.evicted_early(), 0u);
}

TEST(DedupeWindowTest, DistinctIdsAreAllNew) {
    DedupeWindow window(60s, 100'000);
    std::vector<MessageId> ids;
    for (int i = 0; i < 10'000; ++i) ids.push_back(Uuid::generate());
    for (const auto& id : ids) ASSERT_TRUE(window.check_and_insert(id, 5));
    EXPECT_EQ(window.size(), ids.size());
    for (const auto& id : ids) ASSERT_FALSE(window.check_and_insert(id, 6));
    EXPECT_EQ(window.size(), ids.size());
}

TEST(DedupeWindowTest, IdsDifferingInOneByteAreDistinct) {
    DedupeWindow window(60s, 100);
    std::array<std::uint8_t, Uuid::kSize> bytes{};
    for (std::size_t i = 0; i < Uuid::kSize; ++i) {
        auto changed = bytes;
        changed[i] = 1;
        ASSERT_TRUE(window.check_and_insert(MessageId(changed), 0)) << "byte " << i;
    }
    EXPECT_TRUE(window.check_and_insert(MessageId(bytes), 0)) << "the nil id is an id too";
    EXPECT_EQ(window.size(), Uuid::kSize + 1);
}

TEST(DedupeWindowTest, RemembersForTheWholeHorizonInclusive) {
    DedupeWindow window(1000ms, 100);
    const MessageId id = id_from(1);
    ASSERT_TRUE(window.check_and_insert(id, 10'000));
    EXPECT_FALSE(window.check_and_insert(id, 10'999));
    EXPECT_FALSE(window.check_and_insert(id, 11'000)) << "exactly horizon later: still held";
    EXPECT_TRUE(window.check_and_insert(id, 11'001)) << "forgotten after the horizon";
    EXPECT_EQ(window.evicted_early(), 0u);
}

TEST(DedupeWindowTest, DuplicatesDoNotExtendAnIdsLife) {
    DedupeWindow window(1000ms, 100);
    const MessageId id = id_from(1);
    ASSERT_TRUE(window.check_and_insert(id, 0));
    ASSERT_FALSE(window.check_and_insert(id, 900));
    EXPECT_TRUE(window.check_and_insert(id, 1001));
}

TEST(DedupeWindowTest, HorizonEvictsOldestFirstAndIsNotEarly) {
    DedupeWindow window(100ms, 1000);
    for (std::uint64_t i = 0; i < 10; ++i) {
        ASSERT_TRUE(window.check_and_insert(id_from(i), static_cast<std::int64_t>(i * 10)));
    }
    EXPECT_EQ(window.size(), 10u);
    // At 150 ms, ids seen before 50 ms (at 0, 10, 20, 30, 40) are older than the horizon.
    EXPECT_EQ(window.evict_expired(150), 5u);
    EXPECT_EQ(window.size(), 5u);
    for (std::uint64_t i = 0; i < 5; ++i) EXPECT_FALSE(window.contains(id_from(i))) << i;
    for (std::uint64_t i = 5; i < 10; ++i) EXPECT_TRUE(window.contains(id_from(i))) << i;
    EXPECT_EQ(window.evict_expired(10'000), 5u);
    EXPECT_EQ(window.size(), 0u);
    EXPECT_EQ(window.evicted_early(), 0u);
}

TEST(DedupeWindowTest, CapacityEvictsOldestFirstAndCountsEarlyEvictions) {
    DedupeWindow window(60s, 3);
    for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(window.check_and_insert(id_from(i), 0));
    EXPECT_EQ(window.evicted_early(), 0u);
    ASSERT_TRUE(window.check_and_insert(id_from(4), 1));
    EXPECT_EQ(window.size(), 3u);
    EXPECT_EQ(window.evicted_early(), 1u);
    EXPECT_FALSE(window.contains(id_from(1)));
    ASSERT_TRUE(window.check_and_insert(id_from(5), 2));
    EXPECT_EQ(window.evicted_early(), 2u);
    EXPECT_FALSE(window.contains(id_from(2)));
    EXPECT_TRUE(window.contains(id_from(3)));
    // The cost of a window too small: a late duplicate of an evicted id gets through.
    EXPECT_TRUE(window.check_and_insert(id_from(1), 3));
    EXPECT_EQ(window.evicted_early(), 3u);
}

TEST(DedupeWindowTest, CapacityEvictionOfExpiredIdsIsNotEarly) {
    DedupeWindow window(100ms, 2);
    ASSERT_TRUE(window.check_and_insert(id_from(1), 0));
    ASSERT_TRUE(window.check_and_insert(id_from(2), 0));
    // At 500 ms both are past the horizon: they leave by age, not to make room.
    ASSERT_TRUE(window.check_and_insert(id_from(3), 500));
    EXPECT_EQ(window.size(), 1u);
    EXPECT_EQ(window.evicted_early(), 0u);
}

TEST(DedupeWindowTest, ManyMoreIdsThanCapacity) {
    DedupeWindow window(3600s, 50'000);
    for (std::uint64_t i = 0; i < 200'000; ++i) {
        ASSERT_TRUE(window.check_and_insert(id_from(i), static_cast<std::int64_t>(i / 100)));
    }
    EXPECT_EQ(window.size(), 50'000u);
    EXPECT_EQ(window.evicted_early(), 150'000u);
    EXPECT_FALSE(window.contains(id_from(149'999)));
    EXPECT_TRUE(window.contains(id_from(150'000)));
    EXPECT_FALSE(window.check_and_insert(id_from(199'999), 2000));
}

TEST(DedupeWindowTest, EraseLetsTheNextArrivalThrough) {
    DedupeWindow window(60s, 100);
    const MessageId id = id_from(7);
    ASSERT_TRUE(window.check_and_insert(id, 0));
    EXPECT_TRUE(window.erase(id));
    EXPECT_FALSE(window.erase(id));
    EXPECT_EQ(window.size(), 0u);
    EXPECT_TRUE(window.check_and_insert(id, 10)) << "the retry after a NACK is handled";
    EXPECT_FALSE(window.check_and_insert(id, 11));
}

TEST(DedupeWindowTest, ReinsertedIdAgesFromItsNewSighting) {
    DedupeWindow window(100ms, 100);
    const MessageId id = id_from(7);
    ASSERT_TRUE(window.check_and_insert(id, 0));
    ASSERT_TRUE(window.erase(id));
    ASSERT_TRUE(window.check_and_insert(id, 90));
    // The stale entry of the first sighting (at 0) must not evict the new one at 150.
    EXPECT_FALSE(window.check_and_insert(id, 150));
    EXPECT_TRUE(window.check_and_insert(id, 191));
}

TEST(DedupeWindowTest, ErasedIdsDoNotCountAsEarlyEvictions) {
    DedupeWindow window(60s, 2);
    ASSERT_TRUE(window.check_and_insert(id_from(1), 0));
    ASSERT_TRUE(window.check_and_insert(id_from(2), 0));
    ASSERT_TRUE(window.erase(id_from(1)));
    ASSERT_TRUE(window.check_and_insert(id_from(3), 0));
    EXPECT_EQ(window.evicted_early(), 0u);
    EXPECT_EQ(window.size(), 2u);
    ASSERT_TRUE(window.check_and_insert(id_from(4), 0));
    EXPECT_EQ(window.evicted_early(), 1u);
    EXPECT_FALSE(window.contains(id_from(2)));
    EXPECT_TRUE(window.contains(id_from(3)));
}

TEST(DedupeWindowTest, InsertEraseChurnStaysExact) {
    // Three in four ids are erased right after insertion (handler failures); the capacity
    // keeps the newest 1000 of the others. A model of the same rules checks every id.
    DedupeWindow window(3600s, 1000);
    std::deque<std::uint64_t> model;
    std::uint64_t early = 0;
    std::mt19937_64 random(5);
    constexpr std::uint64_t kIds = 500'000;
    for (std::uint64_t i = 0; i < kIds; ++i) {
        ASSERT_TRUE(window.check_and_insert(id_from(i), 0));
        model.push_back(i);
        if (model.size() > 1000) {
            model.pop_front();
            ++early;
        }
        if (random() % 4 != 0) {
            ASSERT_TRUE(window.erase(id_from(i)));
            model.pop_back();
        }
        ASSERT_EQ(window.size(), model.size());
    }
    EXPECT_EQ(window.evicted_early(), early);
    EXPECT_GT(early, 100'000u);
    std::size_t present = 0;
    for (std::uint64_t i = 0; i < kIds; ++i) present += window.contains(id_from(i)) ? 1 : 0;
    EXPECT_EQ(present, model.size());
    for (std::uint64_t i : model) EXPECT_TRUE(window.contains(id_from(i))) << i;
}

TEST(DedupeWindowTest, AClockSteppingBackEvictsNothingAndKeepsWorking) {
    DedupeWindow window(100ms, 100);
    ASSERT_TRUE(window.check_and_insert(id_from(1), 1000));
    ASSERT_TRUE(window.check_and_insert(id_from(2), 500));  // stepped back: recorded at 1000
    EXPECT_FALSE(window.check_and_insert(id_from(1), 0));
    EXPECT_EQ(window.evict_expired(1100), 0u);
    EXPECT_EQ(window.evict_expired(1101), 2u);
}

TEST(DedupeWindowTest, ZeroCapacityRemembersNothing) {
    DedupeWindow window(60s, 0);
    EXPECT_TRUE(window.check_and_insert(id_from(1), 0));
    EXPECT_TRUE(window.check_and_insert(id_from(1), 0));
    EXPECT_EQ(window.size(), 0u);
    EXPECT_EQ(window.evicted_early(), 2u);
}

TEST(DedupeWindowTest, ZeroHorizonRemembersOnlyWithinTheSameMillisecond) {
    DedupeWindow window(0ms, 100);
    EXPECT_TRUE(window.check_and_insert(id_from(1), 5));
    EXPECT_FALSE(window.check_and_insert(id_from(1), 5));
    EXPECT_TRUE(window.check_and_insert(id_from(1), 6));
}

}  // namespace
}  // namespace peermq::detail
