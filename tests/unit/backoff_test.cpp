// Unit tests for detail::Backoff (docs/spec/reliability.md, "Retry schedule").
#include "reliability/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

namespace peermq::detail {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kSeed = 42;

TEST(BackoffTest, BaseDoublesFromInitialUntilCapped) {
    Backoff backoff(milliseconds(200), seconds(10), kSeed);
    EXPECT_EQ(backoff.base(1), milliseconds(200));
    EXPECT_EQ(backoff.base(2), milliseconds(400));
    EXPECT_EQ(backoff.base(3), milliseconds(800));
    EXPECT_EQ(backoff.base(4), milliseconds(1600));
    EXPECT_EQ(backoff.base(5), milliseconds(3200));
    EXPECT_EQ(backoff.base(6), milliseconds(6400));
    EXPECT_EQ(backoff.base(7), seconds(10));  // 12.8 s capped
    EXPECT_EQ(backoff.base(8), seconds(10));
    EXPECT_EQ(backoff.base(100), seconds(10));
}

TEST(BackoffTest, AttemptZeroIsTreatedAsOne) {
    Backoff backoff(milliseconds(200), seconds(10), kSeed);
    EXPECT_EQ(backoff.base(0), backoff.base(1));
    const auto d = backoff.delay(0);
    EXPECT_GE(d, milliseconds(100));
    EXPECT_LE(d, milliseconds(200));
}

TEST(BackoffTest, EveryDelayLiesInTheEqualJitterRange) {
    Backoff backoff(milliseconds(200), seconds(10), kSeed);
    for (std::uint32_t attempt = 1; attempt <= 40; ++attempt) {
        const auto base = backoff.base(attempt);
        for (int i = 0; i < 2000; ++i) {
            const auto d = backoff.delay(attempt);
            ASSERT_GE(d, base / 2) << "attempt " << attempt;
            ASSERT_LE(d, base) << "attempt " << attempt;
        }
    }
}

TEST(BackoffTest, JitterCoversTheWholeUpperHalf) {
    // base 1000 µs: delays are 500..1000 µs inclusive, uniform. 100k draws hit both ends and
    // average near 750.
    Backoff backoff(microseconds(1000), seconds(1), kSeed);
    std::int64_t low = std::numeric_limits<std::int64_t>::max();
    std::int64_t high = 0;
    double sum = 0;
    std::set<std::int64_t> distinct;
    constexpr int kDraws = 100'000;
    for (int i = 0; i < kDraws; ++i) {
        const std::int64_t d = backoff.delay(1).count();
        low = std::min(low, d);
        high = std::max(high, d);
        sum += static_cast<double>(d);
        distinct.insert(d);
    }
    EXPECT_EQ(low, 500);
    EXPECT_EQ(high, 1000);
    EXPECT_EQ(distinct.size(), 501u);
    EXPECT_NEAR(sum / kDraws, 750.0, 5.0);
}

TEST(BackoffTest, MeanDelayGrowsWithAttemptsThenFlattensAtTheCap) {
    Backoff backoff(milliseconds(10), milliseconds(1000), kSeed);
    auto mean = [&](std::uint32_t attempt) {
        double sum = 0;
        for (int i = 0; i < 5000; ++i) sum += static_cast<double>(backoff.delay(attempt).count());
        return sum / 5000;
    };
    double previous = 0;
    for (std::uint32_t attempt = 1; attempt <= 7; ++attempt) {  // 10 ms .. 640 ms
        const double m = mean(attempt);
        EXPECT_GT(m, previous * 1.8) << "attempt " << attempt;
        previous = m;
    }
    // Capped from attempt 8 on: 1000 ms, mean 750 ms.
    EXPECT_NEAR(mean(8), 750'000.0, 10'000.0);
    EXPECT_NEAR(mean(30), 750'000.0, 10'000.0);
}

TEST(BackoffTest, SameSeedGivesTheSameSequence) {
    Backoff a(milliseconds(200), seconds(10), 1234);
    Backoff b(milliseconds(200), seconds(10), 1234);
    for (std::uint32_t i = 0; i < 1000; ++i) {
        const std::uint32_t attempt = 1 + i % 12;
        ASSERT_EQ(a.delay(attempt), b.delay(attempt)) << "draw " << i;
    }
}

TEST(BackoffTest, DifferentSeedsGiveDifferentSequences) {
    Backoff a(milliseconds(200), seconds(10), 1);
    Backoff b(milliseconds(200), seconds(10), 2);
    int differences = 0;
    for (int i = 0; i < 100; ++i) {
        if (a.delay(3) != b.delay(3)) ++differences;
    }
    EXPECT_GT(differences, 90);
}

TEST(BackoffTest, RandomSeedsDiffer) {
    EXPECT_NE(Backoff::random_seed(), Backoff::random_seed());
}

TEST(BackoffTest, HugeAttemptsDoNotOverflow) {
    Backoff backoff(milliseconds(200), seconds(10), kSeed);
    for (std::uint32_t attempt : {31u, 32u, 62u, 63u, 64u, 65u, 1000u,
                                  std::numeric_limits<std::uint32_t>::max()}) {
        EXPECT_EQ(backoff.base(attempt), seconds(10)) << attempt;
        const auto d = backoff.delay(attempt);
        EXPECT_GE(d, seconds(5)) << attempt;
        EXPECT_LE(d, seconds(10)) << attempt;
    }
}

TEST(BackoffTest, HugeCapDoesNotOverflow) {
    // With max at the limit of the representation, doubling must saturate at max, never wrap.
    const auto max = microseconds::max();
    Backoff backoff(microseconds(1), max, kSeed);
    EXPECT_EQ(backoff.base(1), microseconds(1));
    EXPECT_EQ(backoff.base(63), microseconds(std::int64_t{1} << 62));
    EXPECT_EQ(backoff.base(64), max);
    EXPECT_EQ(backoff.base(std::numeric_limits<std::uint32_t>::max()), max);
    for (int i = 0; i < 100; ++i) {
        const auto d = backoff.delay(200);
        ASSERT_GE(d, max / 2);
        ASSERT_LE(d, max);
    }
    Backoff large_initial(microseconds::max() / 3, max, kSeed);
    EXPECT_EQ(large_initial.base(2), microseconds::max() / 3 * 2);
    EXPECT_EQ(large_initial.base(3), max);
}

TEST(BackoffTest, MaxBelowInitialCapsEveryDelay) {
    Backoff backoff(seconds(5), seconds(1), kSeed);
    EXPECT_EQ(backoff.base(1), seconds(1));
    EXPECT_EQ(backoff.base(9), seconds(1));
    EXPECT_LE(backoff.delay(1), seconds(1));
}

TEST(BackoffTest, ZeroOrNegativeDurationsGiveZeroDelays) {
    Backoff zero(microseconds(0), seconds(1), kSeed);
    EXPECT_EQ(zero.delay(1), microseconds(0));
    EXPECT_EQ(zero.delay(50), microseconds(0));
    EXPECT_EQ(zero.max_total(1'000'000'000), microseconds(0));
    Backoff negative(milliseconds(-5), milliseconds(-1), kSeed);
    EXPECT_EQ(negative.initial(), microseconds(0));
    EXPECT_EQ(negative.max(), microseconds(0));
    EXPECT_EQ(negative.delay(3), microseconds(0));
    Backoff zero_cap(milliseconds(100), microseconds(0), kSeed);
    EXPECT_EQ(zero_cap.delay(1), microseconds(0));
}

TEST(BackoffTest, OneMicrosecondBaseJittersBetweenZeroAndOne) {
    Backoff backoff(microseconds(1), microseconds(1), kSeed);
    std::set<std::int64_t> seen;
    for (int i = 0; i < 200; ++i) seen.insert(backoff.delay(1).count());
    EXPECT_EQ(seen, (std::set<std::int64_t>{0, 1}));
}

TEST(BackoffTest, MaxTotalSumsTheBases) {
    Backoff backoff(milliseconds(200), seconds(10), kSeed);
    EXPECT_EQ(backoff.max_total(0), microseconds(0));
    EXPECT_EQ(backoff.max_total(1), milliseconds(200));
    EXPECT_EQ(backoff.max_total(4), milliseconds(200 + 400 + 800 + 1600));
    // 200+400+800+1600+3200+6400 = 12.6 s, then 10 s each.
    EXPECT_EQ(backoff.max_total(6), milliseconds(12'600));
    EXPECT_EQ(backoff.max_total(9), milliseconds(12'600 + 30'000));
    EXPECT_EQ(backoff.max_total(1'000'000), milliseconds(12'600) + seconds(10) * 999'994);
}

TEST(BackoffTest, MaxTotalSaturates) {
    Backoff backoff(microseconds(1), microseconds::max() / 2, kSeed);
    EXPECT_EQ(backoff.max_total(std::numeric_limits<std::uint32_t>::max()), microseconds::max());
    Backoff at_limit(microseconds(1), microseconds::max(), kSeed);
    EXPECT_EQ(at_limit.max_total(70), microseconds::max());
}

TEST(BackoffTest, SumOfDelaysNeverExceedsMaxTotal) {
    Backoff backoff(milliseconds(7), milliseconds(300), kSeed);
    for (int run = 0; run < 200; ++run) {
        microseconds sum(0);
        for (std::uint32_t attempt = 1; attempt <= 12; ++attempt) sum += backoff.delay(attempt);
        ASSERT_LE(sum, backoff.max_total(12));
        ASSERT_GE(sum, backoff.max_total(12) / 2);
    }
}

}  // namespace
}  // namespace peermq::detail
