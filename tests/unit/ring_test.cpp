// Ring: FIFO order through growth and wrap-around, push_front for requeued messages, ordered
// erase_if, element lifetimes, and memory given back after a burst (but not on every drain).
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <string>

#include "util/ring.hpp"

namespace peermq::detail {
namespace {

TEST(Ring, MatchesADequeUnderRandomPushesAndPops) {
    Ring<std::string> ring;
    std::deque<std::string> model;
    std::mt19937 random(7);
    for (int step = 0; step < 200'000; ++step) {
        const auto op = random() % 10;
        if (op < 5) {
            ring.push_back(std::to_string(step));
            model.push_back(std::to_string(step));
        } else if (op == 5) {
            ring.push_front("f" + std::to_string(step));
            model.push_front("f" + std::to_string(step));
        } else if (!model.empty()) {
            const std::size_t n = std::min<std::size_t>(model.size(), 1 + random() % 3);
            ring.erase_front(n);
            model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        }
        ASSERT_EQ(ring.size(), model.size());
        if (!model.empty()) {
            ASSERT_EQ(ring.front(), model.front());
            ASSERT_EQ(ring.back(), model.back());
        }
    }
    std::size_t i = 0;
    for (const std::string& s : ring) ASSERT_EQ(s, model[i++]);
}

TEST(Ring, EraseIfKeepsTheOrderOfTheRestAndMayMoveFromWhatItRemoves) {
    Ring<std::unique_ptr<int>> ring;
    for (int i = 0; i < 10; ++i) ring.push_front(std::make_unique<int>(9 - i));  // wraps around
    std::vector<int> removed;
    const std::size_t n = ring.erase_if([&](std::unique_ptr<int>& p) {
        if (*p % 3 != 0) return false;
        removed.push_back(*std::move(p));
        return true;
    });
    EXPECT_EQ(n, 4u);
    EXPECT_EQ(removed, (std::vector<int>{0, 3, 6, 9}));
    std::vector<int> kept;
    for (const auto& p : ring) kept.push_back(*p);
    EXPECT_EQ(kept, (std::vector<int>{1, 2, 4, 5, 7, 8}));
}

TEST(Ring, DestroysEveryElementOnce) {
    auto counter = std::make_shared<int>(0);
    {
        Ring<std::shared_ptr<int>> ring;
        for (int i = 0; i < 1000; ++i) ring.push_back(std::shared_ptr<int>(counter));
        EXPECT_EQ(counter.use_count(), 1001);
        ring.erase_front(400);
        EXPECT_EQ(counter.use_count(), 601);
        Ring<std::shared_ptr<int>> moved(std::move(ring));
        EXPECT_EQ(counter.use_count(), 601);
        EXPECT_TRUE(ring.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
    }
    EXPECT_EQ(counter.use_count(), 1);
}

TEST(Ring, GivesBackTheMemoryOfABurstButNotOfARegularDrain) {
    Ring<int> ring;
    // A queue that fills to 10 000 and drains to empty, again and again, keeps its buffer.
    for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < 10'000; ++i) ring.push_back(int{i});
        while (!ring.empty()) ring.erase_front(std::min<std::size_t>(ring.size(), 64));
    }
    const std::size_t steady = ring.capacity();
    EXPECT_GE(steady, 10'000u);
    for (int i = 0; i < 10'000; ++i) ring.push_back(int{i});
    ring.erase_front(10'000);
    EXPECT_EQ(ring.capacity(), steady);

    // After one burst of a million, traffic of a few at a time lets the buffer shrink.
    for (int i = 0; i < 1'000'000; ++i) ring.push_back(int{i});
    ring.erase_front(1'000'000);
    const std::size_t burst = ring.capacity();
    EXPECT_GE(burst, 1'000'000u);
    for (int i = 0; i < 8'000'000; ++i) {
        ring.push_back(int{i});
        ring.pop_front();
    }
    EXPECT_LT(ring.capacity(), burst / 8);
}

}  // namespace
}  // namespace peermq::detail
