// effectively_once with slow handlers: an ack timeout retries the same consumer, whose dedupe
// window absorbs the copy, so no handler runs twice even with two consumers (docs/guarantees.md).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "peermq/peermq.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::wait_until;

namespace {

bool consuming(const peermq::Node& node, std::initializer_list<std::string> names,
               const std::string& queue) {
    const auto peers = node.peers();
    for (const auto& name : names) {
        bool found = false;
        for (const auto& p : peers) {
            if (p.name == name && p.state == peermq::PeerState::alive &&
                std::find(p.queues.begin(), p.queues.end(), queue) != p.queues.end()) {
                found = true;
            }
        }
        if (!found) return false;
    }
    return true;
}

}  // namespace

TEST(EffectivelyOnce, AckTimeoutRetriesTheSameConsumerAndEachHandlerRunsOnce) {
    auto c1 = peermq::Node::create({.name = "slow-1", .interface = "lo"}).value();
    auto c2 = peermq::Node::create({.name = "slow-2", .interface = "lo"}).value();
    auto producer =
        peermq::Node::create(
            {.name = "producer", .interface = "lo", .peers = {c1.address(), c2.address()}})
            .value();

    // Handlers outlast the ack timeout: they hold until the producer has retried, by timeout,
    // well over once per message.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::mutex mutex;
    std::map<int, int> runs;  // payload -> handler runs, across both consumers
    auto handler = [&](peermq::Delivery& d) {
        released.wait();
        std::lock_guard lock(mutex);
        ++runs[d.as<int>()];
    };
    ASSERT_TRUE(c1.consume("slow", handler).ok());
    ASSERT_TRUE(c2.consume("slow", handler).ok());
    ASSERT_TRUE(wait_until([&] { return consuming(producer, {"slow-1", "slow-2"}, "slow"); }));

    auto slow = producer
                    .queue("slow", {.guarantee = peermq::Guarantee::effectively_once,
                                    .max_attempts = 10'000,
                                    .retry_initial = 5ms,
                                    .retry_max = 10ms,
                                    .ack_timeout = 30ms})
                    .value();
    constexpr int kMessages = 6;
    std::vector<std::future<peermq::Result<peermq::Receipt>>> receipts;
    for (int i = 0; i < kMessages; ++i) receipts.push_back(slow.send_confirmed(i));

    const bool retried =
        wait_until([&] { return producer.stats().queues["slow"].retried >= 3 * kMessages; }, 10s);
    release.set_value();
    ASSERT_TRUE(retried) << producer.stats().queues["slow"].retried;

    for (auto& receipt : receipts) {
        ASSERT_EQ(receipt.wait_for(10s), std::future_status::ready);
        auto result = receipt.get();
        ASSERT_TRUE(result.ok()) << result.status().to_string();
        EXPECT_EQ(result.value().outcome, peermq::Receipt::Outcome::acked);
    }
    {
        std::lock_guard lock(mutex);
        EXPECT_EQ(runs.size(), static_cast<std::size_t>(kMessages));
        for (const auto& [payload, count] : runs) {
            EXPECT_EQ(count, 1) << "message " << payload << " was handled " << count << " times";
        }
    }
    // Both consumers did real work, and the retried copies were absorbed where they landed.
    const auto s1 = c1.stats().queues["slow"];
    const auto s2 = c2.stats().queues["slow"];
    EXPECT_GT(s1.delivered, 0u);
    EXPECT_GT(s2.delivered, 0u);
    EXPECT_GT(s1.duplicates + s2.duplicates, 0u);
    EXPECT_EQ(producer.stats().queues["slow"].in_flight, 0u);
}

TEST(EffectivelyOnce, LocalConsumerRetriedAfterATimeoutRunsItsHandlerOnce) {
    auto node = peermq::Node::create({.name = "solo", .interface = "lo"}).value();
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<int> runs{0};
    ASSERT_TRUE(node.consume("self",
                             [&](peermq::Delivery&) {
                                 released.wait();
                                 ++runs;
                             })
                    .ok());
    auto q = node.queue("self", {.guarantee = peermq::Guarantee::effectively_once,
                                 .max_attempts = 10'000,
                                 .retry_initial = 5ms,
                                 .retry_max = 10ms,
                                 .ack_timeout = 30ms})
                 .value();
    auto receipt = q.send_confirmed(1);
    const bool retried = wait_until([&] { return node.stats().queues["self"].retried >= 3; }, 10s);
    release.set_value();
    ASSERT_TRUE(retried);
    ASSERT_EQ(receipt.wait_for(10s), std::future_status::ready);
    auto result = receipt.get();
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.value().outcome, peermq::Receipt::Outcome::acked);
    EXPECT_EQ(runs.load(), 1);
}
