// W3C trace context end to end (issue #17 item 6): `traceparent` and `tracestate` set by the
// application travel as message headers, unchanged, through every retry of a failing handler,
// into the dead-letter journal, and out again with the replay (which adds only
// `peermq-replayed-from`), so that a handler can continue the trace of any delivery. Real nodes
// over tcp loopback, the producer's journal on disk.
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using peermq::testing::sees;
using peermq::testing::wait_until;

const peermq::Headers kTrace = {
    {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    {"tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
};

TEST(TraceContext, TravelsThroughRetriesTheDeadLetterJournalAndTheReplayUnchanged) {
    peermq::testing::TempDir dir;
    auto producer = peermq::testing::make_node(
        {.name = "producer", .interface = "lo", .data_dir = dir.path() + "/producer"});
    auto consumer = peermq::testing::make_node(
        {.name = "consumer", .interface = "lo", .peers = {producer.address()}});
    std::mutex mutex;
    std::vector<peermq::Message> deliveries;
    std::atomic<bool> failing{true};
    ASSERT_TRUE(consumer
                    .consume("traced",
                             [&](peermq::Delivery& delivery) {
                                 {
                                     std::lock_guard lock(mutex);
                                     deliveries.push_back(delivery.message());
                                 }
                                 if (failing) throw std::runtime_error("not yet");
                             })
                    .ok());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"consumer"}, "traced"); }));
    auto queue =
        producer.queue("traced", {.max_attempts = 3, .retry_initial = 10ms, .retry_max = 20ms})
            .value();
    const auto id = queue.send(42, kTrace);
    ASSERT_TRUE(id.ok()) << id.status().to_string();

    // Three attempts, each with the trace as it was sent; then the dead letter keeps it.
    ASSERT_TRUE(wait_until([&] {
        auto letters = producer.dead_letters().list();
        return letters.ok() && letters.value().size() == 1;
    }));
    auto letters = producer.dead_letters().list();
    ASSERT_TRUE(letters.ok());
    EXPECT_EQ(letters.value()[0].headers, kTrace);
    {
        std::lock_guard lock(mutex);
        ASSERT_EQ(deliveries.size(), 3u);
        for (std::size_t i = 0; i < deliveries.size(); ++i) {
            EXPECT_EQ(deliveries[i].attempt, i + 1);
            EXPECT_EQ(deliveries[i].headers, kTrace) << "attempt " << i + 1;
        }
    }

    // Replayed after the fix: the same trace, and where it came from.
    failing = false;
    const auto replayed = producer.dead_letters().replay(id.value());
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return deliveries.size() == 4;
    }));
    std::lock_guard lock(mutex);
    const peermq::Message& last = deliveries.back();
    EXPECT_EQ(last.id, replayed.value());
    EXPECT_EQ(last.headers.at("traceparent"), kTrace.at("traceparent"));
    EXPECT_EQ(last.headers.at("tracestate"), kTrace.at("tracestate"));
    EXPECT_EQ(last.headers.at("peermq-replayed-from"), id.value().to_string());
    EXPECT_EQ(last.headers.size(), kTrace.size() + 1);
}

}  // namespace
