// A consumer that stops handling while its node stays alive (reliability.md §4 credit, §6
// redirect): it is never sent more than its prefetch of unacked messages, the rest of the work
// goes elsewhere, and what it holds moves on once it is marked down.
#include "fault_support.hpp"

namespace peermq::fault {
namespace {

constexpr std::uint32_t kPrefetch = 8;
constexpr long long kMessages = 300;

TEST(StalledConsumerTest, StalledConsumersHoldNoMoreThanTheirCreditAndTheirWorkMovesOn) {
    TempDir dir;
    const std::string q = "stall";
    auto producer = make_node(node_options("producer"));
    // Long ack timeout: credit must come back through acks or a down peer only, not a timeout.
    auto queue = producer.queue(q, {.ack_timeout = 120s}).value();

    // Two consumers that handle 5 messages each and then hang in their handler.
    auto stalled = [&](const std::string& name) {
        return std::make_unique<TestNode>(
            consumer_args(name, q, dir.file(name + ".log"), producer.address()) +
            std::vector<std::string>{"--prefetch", std::to_string(kPrefetch), "--stall-after",
                                     "5"});
    };
    auto killed = stalled("killed");
    auto frozen = stalled("frozen");
    ASSERT_TRUE(killed->ready());
    ASSERT_TRUE(frozen->ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"killed", "frozen"}, q); }, 15s));

    for (long long i = 0; i < kMessages; ++i) ASSERT_TRUE(queue.send(i).ok());

    // Both stall with a full credit each: exactly 2 × prefetch unacked, the rest waits.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, q);
            return s.in_flight == 2 * kPrefetch &&
                   s.depth == static_cast<std::uint64_t>(kMessages) - s.acked - 2 * kPrefetch;
        },
        15s))
        << describe(queue_stats(producer, q));
    for (TestNode* node : {killed.get(), frozen.get()}) {
        // From the consumer's side: what it received minus what it answered is its credit, never
        // more (its node is alive and would accept more frames if they came).
        auto s = node->stats();
        ASSERT_TRUE(s.has_value());
        const auto received = (*s)[q + ".received"];
        const auto answered = (*s)[q + ".delivered"];
        EXPECT_LE(received - answered, kPrefetch) << "received " << received;
        EXPECT_LE(read_log(dir.file(node == killed.get() ? "killed.log" : "frozen.log")).size(),
                  5u);
    }
    const auto before = queue_stats(producer, q);
    EXPECT_LE(before.sent, before.acked + 2 * kPrefetch) << describe(before);

    // A healthy consumer joins: it takes everything that waits, the stalled ones get nothing more.
    TestNode healthy(consumer_args("healthy", q, dir.file("healthy.log"), producer.address()));
    ASSERT_TRUE(healthy.ready());
    ASSERT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, q);
            return s.depth == 0 && s.in_flight == 2 * kPrefetch &&
                   s.acked == static_cast<std::uint64_t>(kMessages) - 2 * kPrefetch;
        },
        30s))
        << describe(queue_stats(producer, q));
    for (TestNode* node : {killed.get(), frozen.get()}) {
        auto s = node->stats();
        ASSERT_TRUE(s.has_value());
        EXPECT_LE((*s)[q + ".received"] - (*s)[q + ".delivered"], kPrefetch);
    }

    // One stalled consumer dies, the other freezes (SIGSTOP) past peer_timeout: both are marked
    // down and what they held goes to the healthy consumer, without waiting for the ack timeout.
    killed->kill(SIGKILL);
    frozen->kill(SIGSTOP);
    ASSERT_TRUE(wait_until(
        [&] {
            return peer_state(producer, "killed") == PeerState::down &&
                   peer_state(producer, "frozen") == PeerState::down;
        },
        10s));
    ASSERT_TRUE(wait_until(
        [&] { return queue_stats(producer, q).acked == static_cast<std::uint64_t>(kMessages); },
        15s))
        << describe(queue_stats(producer, q));
    const auto after = queue_stats(producer, q);
    EXPECT_EQ(after.in_flight, 0u);
    EXPECT_EQ(after.redelivered, 2 * kPrefetch) << describe(after);
    EXPECT_EQ(after.dead_lettered, 0u);

    std::map<long long, int> all;
    for (const char* name : {"killed", "frozen", "healthy"}) {
        for (const auto& [v, n] : counts(read_log(dir.file(std::string(name) + ".log"))))
            all[v] += n;
    }
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kMessages));
    EXPECT_EQ(all.begin()->first, 0);
    EXPECT_EQ(all.rbegin()->first, kMessages - 1);
    frozen->kill(SIGKILL);
}

}  // namespace
}  // namespace peermq::fault
