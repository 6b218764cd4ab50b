// Unit tests for detail::TimerWheel (docs/spec/reliability.md, "Timers").
#include "reliability/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "peermq/uuid.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;
using Wheel = TimerWheel<int>;
using TimePoint = Wheel::TimePoint;

const TimePoint kStart = TimePoint(1000h);

std::vector<int> expire_all(Wheel& wheel, TimePoint now) {
    std::vector<int> fired;
    wheel.expire(now, [&](int key) { fired.push_back(key); });
    return fired;
}

TEST(TimerWheelTest, EmptyWheelHasNothingDue) {
    Wheel wheel(1ms, 4096, kStart);
    EXPECT_TRUE(wheel.empty());
    EXPECT_EQ(wheel.size(), 0u);
    EXPECT_EQ(wheel.next_due(), std::nullopt);
    EXPECT_TRUE(expire_all(wheel, kStart + 1h).empty());
    EXPECT_FALSE(wheel.cancel(7));
}

TEST(TimerWheelTest, FiresAtTheDeadlineAndNotBefore) {
    Wheel wheel(1ms, 4096, kStart);
    wheel.schedule(1, kStart + 10ms);
    EXPECT_EQ(wheel.size(), 1u);
    EXPECT_EQ(wheel.next_due(), kStart + 10ms);
    EXPECT_TRUE(expire_all(wheel, kStart + 10ms - 1ns).empty());
    EXPECT_EQ(expire_all(wheel, kStart + 10ms), std::vector<int>{1});
    EXPECT_TRUE(wheel.empty());
    EXPECT_TRUE(expire_all(wheel, kStart + 20ms).empty()) << "fires only once";
}

TEST(TimerWheelTest, DeadlinesInsideATickAreExact) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 5ms + 500us);
    wheel.schedule(2, kStart + 5ms + 100us);
    EXPECT_EQ(wheel.next_due(), kStart + 5ms + 100us);
    EXPECT_EQ(expire_all(wheel, kStart + 5ms + 200us), std::vector<int>{2});
    EXPECT_EQ(wheel.next_due(), kStart + 5ms + 500us);
    EXPECT_TRUE(expire_all(wheel, kStart + 5ms + 499us).empty());
    EXPECT_EQ(expire_all(wheel, kStart + 5ms + 500us), std::vector<int>{1});
}

TEST(TimerWheelTest, FiresInDeadlineOrderWithTiesInSchedulingOrder) {
    Wheel wheel(1ms, 16, kStart);
    std::mt19937 random(7);
    std::vector<std::pair<TimePoint, int>> expected;
    for (int key = 0; key < 500; ++key) {
        const auto due = kStart + std::chrono::microseconds(random() % 40'000);  // 2.5 turns
        wheel.schedule(key, due);
        expected.emplace_back(due, key);
    }
    wheel.schedule(1000, kStart + 3ms);
    wheel.schedule(1001, kStart + 3ms);
    wheel.schedule(1002, kStart + 3ms);
    expected.emplace_back(kStart + 3ms, 1000);
    expected.emplace_back(kStart + 3ms, 1001);
    expected.emplace_back(kStart + 3ms, 1002);
    std::stable_sort(expected.begin(), expected.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<int> order;
    for (const auto& [due, key] : expected) order.push_back(key);
    EXPECT_EQ(expire_all(wheel, kStart + 1s), order);
}

TEST(TimerWheelTest, DeadlinesSeveralRevolutionsAheadWaitForTheirTurn) {
    // 8 slots of 1 ms: one revolution is 8 ms. Keys share slot 3 across revolutions.
    Wheel wheel(1ms, 8, kStart);
    wheel.schedule(1, kStart + 3ms);
    wheel.schedule(2, kStart + 11ms);
    wheel.schedule(3, kStart + 83ms);
    wheel.schedule(4, kStart + 8003ms);
    std::map<int, TimePoint> fired_at;
    for (auto now = kStart; now <= kStart + 9s; now += 1ms) {
        wheel.expire(now, [&](int key) { fired_at.emplace(key, now); });
    }
    ASSERT_EQ(fired_at.size(), 4u);
    EXPECT_EQ(fired_at[1], kStart + 3ms);
    EXPECT_EQ(fired_at[2], kStart + 11ms);
    EXPECT_EQ(fired_at[3], kStart + 83ms);
    EXPECT_EQ(fired_at[4], kStart + 8003ms);
}

TEST(TimerWheelTest, NextDueLooksPastTheCurrentRevolution) {
    Wheel wheel(1ms, 8, kStart);
    wheel.schedule(1, kStart + 50ms + 300us);  // slot 2, six revolutions ahead
    wheel.schedule(2, kStart + 20ms);          // slot 4, two revolutions ahead
    EXPECT_EQ(wheel.next_due(), kStart + 20ms);
    EXPECT_TRUE(expire_all(wheel, kStart + 19ms).empty());
    EXPECT_EQ(wheel.next_due(), kStart + 20ms);
    EXPECT_EQ(expire_all(wheel, kStart + 20ms), std::vector<int>{2});
    EXPECT_EQ(wheel.next_due(), kStart + 50ms + 300us);
    wheel.schedule(3, kStart + 21ms);  // the slot right after the cursor
    EXPECT_EQ(wheel.next_due(), kStart + 21ms);
    EXPECT_TRUE(wheel.cancel(3));
    EXPECT_EQ(wheel.next_due(), kStart + 50ms + 300us);
}

TEST(TimerWheelTest, AJumpOverManyRevolutionsFiresEverythingDue) {
    Wheel wheel(1ms, 16, kStart);
    for (int key = 0; key < 100; ++key) wheel.schedule(key, kStart + std::chrono::milliseconds(key * 7));
    wheel.schedule(1000, kStart + 10s);
    const auto fired = expire_all(wheel, kStart + 693ms);  // 43 revolutions at once
    ASSERT_EQ(fired.size(), 100u);
    for (int key = 0; key < 100; ++key) EXPECT_EQ(fired[static_cast<std::size_t>(key)], key);
    EXPECT_EQ(wheel.size(), 1u);
    EXPECT_EQ(wheel.next_due(), kStart + 10s);
}

TEST(TimerWheelTest, PastDeadlinesFireAtTheNextExpire) {
    Wheel wheel(1ms, 32, kStart);
    EXPECT_TRUE(expire_all(wheel, kStart + 100ms).empty());  // the cursor moves to 100 ms
    wheel.schedule(1, kStart + 5ms);                         // behind the cursor
    wheel.schedule(2, kStart - 1h);                          // before the wheel's start
    wheel.schedule(3, TimePoint::min());
    EXPECT_EQ(wheel.next_due(), TimePoint::min());
    EXPECT_EQ(expire_all(wheel, kStart + 100ms), (std::vector<int>{3, 2, 1}));
    EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheelTest, FarFutureDeadlineIsHeldNotFired) {
    Wheel wheel(1ms, 4096, kStart);
    wheel.schedule(1, TimePoint::max());
    EXPECT_EQ(wheel.next_due(), TimePoint::max());
    EXPECT_TRUE(expire_all(wheel, kStart + 24h * 365).empty());
    EXPECT_EQ(wheel.size(), 1u);
}

TEST(TimerWheelTest, RescheduleReplacesTheDeadline) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 10ms);
    wheel.schedule(1, kStart + 30ms);  // later
    EXPECT_EQ(wheel.size(), 1u);
    EXPECT_EQ(wheel.due(1), kStart + 30ms);
    EXPECT_EQ(wheel.next_due(), kStart + 30ms);
    EXPECT_TRUE(expire_all(wheel, kStart + 29ms).empty());
    wheel.schedule(1, kStart + 29ms + 500us);  // earlier again, in the current tick
    EXPECT_EQ(wheel.next_due(), kStart + 29ms + 500us);
    EXPECT_EQ(expire_all(wheel, kStart + 30ms), std::vector<int>{1});
    EXPECT_TRUE(expire_all(wheel, kStart + 1s).empty());
}

TEST(TimerWheelTest, RescheduleToAFarRevolution) {
    Wheel wheel(1ms, 8, kStart);
    wheel.schedule(1, kStart + 2ms);
    wheel.schedule(1, kStart + 2ms + 8ms * 5);  // same slot, five revolutions later
    for (auto now = kStart; now < kStart + 42ms; now += 1ms) {
        ASSERT_TRUE(expire_all(wheel, now).empty());
    }
    EXPECT_EQ(expire_all(wheel, kStart + 42ms), std::vector<int>{1});
}

TEST(TimerWheelTest, CancelDisarms) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 5ms);
    wheel.schedule(2, kStart + 5ms);
    EXPECT_TRUE(wheel.contains(1));
    EXPECT_TRUE(wheel.cancel(1));
    EXPECT_FALSE(wheel.contains(1));
    EXPECT_FALSE(wheel.cancel(1));
    EXPECT_EQ(wheel.size(), 1u);
    EXPECT_EQ(expire_all(wheel, kStart + 1s), std::vector<int>{2});
    EXPECT_FALSE(wheel.cancel(2)) << "already fired";
    EXPECT_EQ(wheel.next_due(), std::nullopt);
}

TEST(TimerWheelTest, TheFiringKeyIsGoneDuringItsCallback) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 1ms);
    wheel.schedule(2, kStart + 50ms);
    wheel.expire(kStart + 1ms, [&](int key) {
        EXPECT_EQ(key, 1);
        EXPECT_FALSE(wheel.contains(1));
        EXPECT_EQ(wheel.size(), 1u);
        EXPECT_FALSE(wheel.cancel(1));
        EXPECT_EQ(wheel.next_due(), kStart + 50ms);
    });
}

TEST(TimerWheelTest, CancelInsideACallbackStopsAKeyDueInTheSameCall) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 1ms);
    wheel.schedule(2, kStart + 2ms);
    wheel.schedule(3, kStart + 3ms);
    wheel.schedule(4, kStart + 90ms);
    std::vector<int> fired;
    bool cancelled_2 = false;
    bool cancelled_4 = false;
    wheel.expire(kStart + 10ms, [&](int key) {
        fired.push_back(key);
        if (key == 1) {
            cancelled_2 = wheel.cancel(2);
            cancelled_4 = wheel.cancel(4);
            EXPECT_EQ(wheel.size(), 1u) << "3 is still pending";
            EXPECT_EQ(wheel.next_due(), kStart + 3ms);
        }
    });
    EXPECT_TRUE(cancelled_2);
    EXPECT_TRUE(cancelled_4);
    EXPECT_EQ(fired, (std::vector<int>{1, 3}));
    EXPECT_TRUE(wheel.empty());
    EXPECT_EQ(wheel.next_due(), std::nullopt);
    EXPECT_TRUE(expire_all(wheel, kStart + 1s).empty());
}

TEST(TimerWheelTest, RescheduleInsideACallbackMovesAKeyDueInTheSameCall) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 1ms);
    wheel.schedule(2, kStart + 2ms);
    std::vector<int> fired;
    wheel.expire(kStart + 10ms, [&](int key) {
        fired.push_back(key);
        if (key == 1) wheel.schedule(2, kStart + 20ms);
    });
    EXPECT_EQ(fired, std::vector<int>{1});
    EXPECT_EQ(wheel.size(), 1u);
    EXPECT_EQ(wheel.next_due(), kStart + 20ms);
    EXPECT_TRUE(expire_all(wheel, kStart + 19ms).empty());
    EXPECT_EQ(expire_all(wheel, kStart + 20ms), std::vector<int>{2});
}

TEST(TimerWheelTest, KeysScheduledInsideACallbackFireInALaterCall) {
    Wheel wheel(1ms, 64, kStart);
    wheel.schedule(1, kStart + 1ms);
    int calls = 0;
    // A key that keeps rescheduling itself for "now" must not livelock one expire() call.
    auto again = [&](int key) {
        ++calls;
        wheel.schedule(key, kStart + 1ms);
        wheel.schedule(key + 100, kStart);  // a new key, already due
    };
    EXPECT_EQ(wheel.expire(kStart + 5ms, again), 1u);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(wheel.size(), 2u);
    EXPECT_EQ(wheel.next_due(), kStart);
    std::vector<int> fired;
    wheel.expire(kStart + 5ms, [&](int key) { fired.push_back(key); });
    EXPECT_EQ(fired, (std::vector<int>{101, 1}));
    EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheelTest, ScheduleInsideACallbackForLaterFiresOnTime) {
    Wheel wheel(1ms, 8, kStart);
    wheel.schedule(0, kStart + 1ms);
    std::vector<std::pair<int, TimePoint>> fired;
    // Each firing arms the next one 5 ms later: a retry chain crossing revolutions.
    for (auto now = kStart; now <= kStart + 60ms; now += 1ms) {
        wheel.expire(now, [&](int key) {
            fired.emplace_back(key, now);
            if (key < 10) wheel.schedule(key + 1, now + 5ms);
        });
    }
    ASSERT_EQ(fired.size(), 11u);
    for (int i = 0; i <= 10; ++i) {
        EXPECT_EQ(fired[static_cast<std::size_t>(i)].second,
                  kStart + 1ms + std::chrono::milliseconds(5 * i));
    }
}

TEST(TimerWheelTest, AThrowingCallbackLeavesTheRestScheduled) {
    Wheel wheel(1ms, 64, kStart);
    for (int key = 1; key <= 5; ++key) wheel.schedule(key, kStart + std::chrono::milliseconds(key));
    std::vector<int> fired;
    EXPECT_THROW(wheel.expire(kStart + 10ms,
                              [&](int key) {
                                  fired.push_back(key);
                                  if (key == 2) throw std::runtime_error("handler bug");
                              }),
                 std::runtime_error);
    EXPECT_EQ(fired, (std::vector<int>{1, 2}));
    EXPECT_EQ(wheel.size(), 3u);
    EXPECT_EQ(wheel.next_due(), kStart + 3ms);
    EXPECT_EQ(expire_all(wheel, kStart + 10ms), (std::vector<int>{3, 4, 5}));
    EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheelTest, WorksWithMessageIdKeys) {
    TimerWheel<Uuid, UuidHash> wheel(1ms, 4096, kStart);
    const Uuid a = Uuid::generate();
    const Uuid b = Uuid::generate();
    wheel.schedule(a, kStart + 5s);
    wheel.schedule(b, kStart + 2s);
    std::vector<Uuid> fired;
    wheel.expire(kStart + 6s, [&](const Uuid& id) { fired.push_back(id); });
    EXPECT_EQ(fired, (std::vector<Uuid>{b, a}));
}

TEST(TimerWheelTest, ChurnOf100kTimersKeepsAnExactSize) {
    Wheel wheel(1ms, 4096, kStart);
    std::mt19937_64 random(99);
    std::map<int, TimePoint> model;
    constexpr int kKeys = 100'000;
    for (int key = 0; key < kKeys; ++key) {
        const auto due = kStart + std::chrono::microseconds(random() % 20'000'000);  // ~5 turns
        wheel.schedule(key, due);
        model[key] = due;
    }
    ASSERT_EQ(wheel.size(), static_cast<std::size_t>(kKeys));
    // A million random reschedules and cancels: the size follows exactly.
    for (int i = 0; i < 1'000'000; ++i) {
        const int key = static_cast<int>(random() % kKeys);
        if (random() % 3 == 0) {
            ASSERT_EQ(wheel.cancel(key), model.erase(key) == 1);
        } else {
            const auto due = kStart + std::chrono::microseconds(random() % 20'000'000);
            wheel.schedule(key, due);
            model[key] = due;
        }
        if (i % 100'000 == 0) {
            ASSERT_EQ(wheel.size(), model.size());
        }
    }
    ASSERT_EQ(wheel.size(), model.size());
    TimePoint earliest = TimePoint::max();
    for (const auto& [key, due] : model) earliest = std::min(earliest, due);
    EXPECT_EQ(wheel.next_due(), earliest);

    // Expire in 250 ms steps: every key fires exactly once, never before its deadline.
    std::set<int> fired;
    for (auto now = kStart; now <= kStart + 21s; now += 250ms) {
        wheel.expire(now, [&](int key) {
            ASSERT_TRUE(fired.insert(key).second) << "fired twice: " << key;
            ASSERT_LE(model.at(key), now);
            ASSERT_GT(model.at(key), now - 250ms);
        });
    }
    EXPECT_EQ(fired.size(), model.size());
    EXPECT_TRUE(wheel.empty());
    EXPECT_EQ(wheel.next_due(), std::nullopt);
}

TEST(TimerWheelTest, ScheduleCancelChurnOnOneKeyLeavesNothingBehind) {
    Wheel wheel(1ms, 16, kStart);
    for (int i = 0; i < 1'000'000; ++i) {
        wheel.schedule(i, kStart + std::chrono::milliseconds(i % 1000));
        ASSERT_TRUE(wheel.cancel(i));
    }
    EXPECT_TRUE(wheel.empty());
    EXPECT_EQ(wheel.next_due(), std::nullopt);
    EXPECT_TRUE(expire_all(wheel, kStart + 1h).empty());
}

// Random operations against a brute-force model, on a small wheel so that deadlines wrap
// around many times; checks firing, order, size and next_due after every step.
TEST(TimerWheelTest, MatchesABruteForceModel) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        Wheel wheel(1ms, 1 + seed % 13, kStart);
        std::mt19937_64 random(seed);
        std::map<int, std::pair<TimePoint, std::uint64_t>> model;  // key -> (due, order)
        std::uint64_t order = 0;
        TimePoint now = kStart;
        for (int step = 0; step < 5000; ++step) {
            const int key = static_cast<int>(random() % 64);
            switch (random() % 6) {
                case 0:
                case 1:
                case 2: {
                    // Deadlines from a little in the past to 40 revolutions ahead.
                    const auto offset = std::chrono::microseconds(
                        static_cast<std::int64_t>(random() % 600'000) - 20'000);
                    wheel.schedule(key, now + offset);
                    model[key] = {now + offset, ++order};
                    break;
                }
                case 3:
                    ASSERT_EQ(wheel.cancel(key), model.erase(key) == 1);
                    break;
                default: {
                    now += std::chrono::microseconds(random() % 30'000);
                    std::vector<std::pair<std::pair<TimePoint, std::uint64_t>, int>> due;
                    for (const auto& [k, v] : model) {
                        if (v.first <= now) due.push_back({v, k});
                    }
                    std::sort(due.begin(), due.end());
                    std::vector<int> expected;
                    for (const auto& [v, k] : due) {
                        expected.push_back(k);
                        model.erase(k);
                    }
                    ASSERT_EQ(expire_all(wheel, now), expected) << "seed " << seed;
                    break;
                }
            }
            ASSERT_EQ(wheel.size(), model.size());
            std::optional<TimePoint> earliest;
            for (const auto& [k, v] : model) {
                if (!earliest || v.first < *earliest) earliest = v.first;
            }
            ASSERT_EQ(wheel.next_due(), earliest) << "seed " << seed << " step " << step;
        }
    }
}

TEST(TimerWheelTest, ClearEmptiesTheWheel) {
    Wheel wheel(1ms, 64, kStart);
    for (int key = 0; key < 100; ++key) wheel.schedule(key, kStart + std::chrono::milliseconds(key));
    wheel.clear();
    EXPECT_TRUE(wheel.empty());
    EXPECT_EQ(wheel.next_due(), std::nullopt);
    EXPECT_TRUE(expire_all(wheel, kStart + 1s).empty());
    wheel.schedule(5, kStart + 2s);
    EXPECT_EQ(wheel.next_due(), kStart + 2s);
}

TEST(TimerWheelTest, BadConstructionArgumentsAreClamped) {
    Wheel wheel(0ms, 0, kStart);
    EXPECT_EQ(wheel.tick(), Wheel::Duration(1ms));
    EXPECT_EQ(wheel.slot_count(), 1u);
    wheel.schedule(1, kStart + 3ms);
    wheel.schedule(2, kStart + 1ms);
    EXPECT_EQ(expire_all(wheel, kStart + 5ms), (std::vector<int>{2, 1}));
}

}  // namespace
}  // namespace peermq::detail
