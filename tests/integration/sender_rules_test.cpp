// Sender rules that earlier versions broke: a late ack from an earlier consumer settles a
// message after a retry (docs/spec/reliability.md §6, §8); send_confirmed() is admitted exactly
// like send(), and so is a dead letter's replay; a dead letter replayed into a best_effort queue
// goes best effort; a new link's first HELLO is not lost to ZMQ_IMMEDIATE (docs/spec/wire.md §6).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::dropped;
using peermq::testing::wait_until;

namespace {

bool alive(const peermq::Node& node, const std::string& name, const std::string& queue = {}) {
    for (const auto& peer : node.peers()) {
        if (peer.name != name || peer.state != peermq::PeerState::alive) continue;
        if (queue.empty()) return true;
        for (const auto& q : peer.queues) {
            if (q == queue) return true;
        }
    }
    return false;
}

}  // namespace

// Consumer A takes longer than the ack timeout but succeeds; the retry goes to B, which fails.
// A's ack arrives while B holds the message: it is A's success that counts.
TEST(SenderRules, ALateAckFromAnEarlierConsumerSettlesTheMessageAfterARetry) {
    auto producer = peermq::Node::create({.name = "producer", .interface = "lo"}).value();
    auto a = peermq::Node::create({.name = "a", .interface = "lo", .peers = {producer.address()}})
                 .value();
    std::promise<void> a_got, b_got, release_b;
    std::shared_future<void> b_got_f = b_got.get_future().share();
    std::shared_future<void> release_b_f = release_b.get_future().share();
    std::atomic<int> a_calls{0}, b_calls{0};
    ASSERT_TRUE(a.consume("work", [&](peermq::Delivery&) {
                     if (a_calls++ == 0) a_got.set_value();
                     b_got_f.wait_for(30s);  // slow: outlives the ack timeout
                 }).ok());
    ASSERT_TRUE(wait_until([&] { return alive(producer, "a", "work"); }));
    auto work =
        producer
            .queue("work",
                   {.max_attempts = 2, .retry_initial = 10ms, .retry_max = 10ms, .ack_timeout = 2s})
            .value();
    auto receipt = work.send_confirmed(1);
    a_got.get_future().wait();
    // B appears only now: the retry after A's timeout can go nowhere else.
    auto b = peermq::Node::create({.name = "b", .interface = "lo", .peers = {producer.address()}})
                 .value();
    ASSERT_TRUE(b.consume("work", [&](peermq::Delivery&) {
                     if (b_calls++ == 0) b_got.set_value();
                     release_b_f.wait_for(30s);
                     throw std::runtime_error("b fails");
                 }).ok());
    ASSERT_TRUE(wait_until([&] { return alive(producer, "b", "work"); }));  // before A's timeout
    // A returns once B holds the retry; B fails only after A's ack reached the producer.
    const bool settled = receipt.wait_for(20s) == std::future_status::ready;
    release_b.set_value();
    if (!settled) {
        ASSERT_EQ(receipt.wait_for(20s), std::future_status::ready);
    }
    const auto result = receipt.get();
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    EXPECT_EQ(result.value().outcome, peermq::Receipt::Outcome::acked);
    const auto stats = producer.stats();
    EXPECT_EQ(stats.queues.at("work").dead_lettered, 0u);
    EXPECT_EQ(dropped(stats, "ack.wrong_peer"), 0u);
    EXPECT_EQ(b_calls.load(), 1);
}

TEST(SenderRules, SendConfirmedIsAdmittedLikeSend) {
    auto node = peermq::Node::create({.name = "lonely", .interface = "lo", .max_payload_bytes = 64})
                    .value();
    // No consumer anywhere: what is admitted stays.
    auto q = node.queue("q", {.max_length = 1,
                              .overflow = peermq::OverflowPolicy::block,
                              .block_timeout = 50ms})
                 .value();
    auto first = q.send_confirmed(1);
    auto second = q.send_confirmed(2);
    ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
    auto refused = second.get();
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), peermq::ErrorCode::timed_out);
    EXPECT_EQ(node.stats().queues["q"].depth, 1u);
    // The payload limit too.
    auto big = node.queue("big").value();
    auto oversized =
        big.send_payload_confirmed(peermq::Payload::copy_of(std::string(65, 'x').data(), 65));
    ASSERT_EQ(oversized.wait_for(5s), std::future_status::ready);
    auto too_big = oversized.get();
    ASSERT_FALSE(too_big.ok());
    EXPECT_EQ(too_big.status().code(), peermq::ErrorCode::invalid_argument);
    EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);  // still waiting: no consumer
}

TEST(SenderRules, ADeadLetterReplayedIntoABestEffortQueueIsSentBestEffort) {
    auto producer = peermq::Node::create({.name = "producer", .interface = "lo"}).value();
    auto consumer =
        peermq::Node::create({.name = "consumer", .interface = "lo", .peers = {producer.address()}})
            .value();
    std::atomic<int> rejected_calls{0}, fast_calls{0};
    ASSERT_TRUE(consumer
                    .consume("strict",
                             [&](peermq::Delivery& d) {
                                 ++rejected_calls;
                                 d.reject("not today");
                             })
                    .ok());
    ASSERT_TRUE(consumer.consume("fast", [&](peermq::Delivery&) { ++fast_calls; }).ok());
    ASSERT_TRUE(wait_until([&] { return alive(producer, "consumer", "fast"); }));
    auto strict = producer.queue("strict").value();
    auto fast = producer.queue("fast", {.guarantee = peermq::Guarantee::best_effort}).value();
    auto receipt = strict.send_confirmed(7).get();
    ASSERT_TRUE(receipt.ok());
    ASSERT_EQ(receipt.value().outcome, peermq::Receipt::Outcome::dead_lettered);
    auto replayed = producer.dead_letters().replay(receipt.value().id, "fast");
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    ASSERT_TRUE(wait_until([&] { return fast_calls.load() == 1; }));
    // Best effort: nothing waits for an ack, nothing was acked.
    const auto stats = producer.stats().queues.at("fast");
    EXPECT_EQ(stats.sent, 1u);
    EXPECT_EQ(stats.acked, 0u);
    EXPECT_EQ(stats.in_flight, 0u);
}

// A replay is a send like any other (one admission path): into a full queue whose overflow
// policy is reject it fails with queue_full, and the letter stays among the dead letters.
TEST(SenderRules, AReplayIsAdmittedLikeASendAndOneRefusedKeepsItsLetter) {
    auto node = peermq::Node::create({.name = "producer", .interface = "lo"}).value();
    auto expiring = node.queue("expiring", {.ttl = 20ms}).value();
    auto sent = expiring.send_confirmed(7);  // no consumer anywhere: it expires
    ASSERT_EQ(sent.wait_for(10s), std::future_status::ready);
    const auto receipt = sent.get();
    ASSERT_TRUE(receipt.ok()) << receipt.status().to_string();
    ASSERT_EQ(receipt.value().outcome, peermq::Receipt::Outcome::dead_lettered);
    const peermq::MessageId letter = receipt.value().id;

    auto full =
        node.queue("full", {.max_length = 1, .overflow = peermq::OverflowPolicy::reject}).value();
    ASSERT_TRUE(full.send(1).ok());  // it stays: nobody consumes "full"
    auto refused = node.dead_letters().replay(letter, "full");
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), peermq::ErrorCode::queue_full)
        << refused.status().to_string();
    EXPECT_EQ(node.stats().queues["full"].depth, 1u);
    auto letters = node.dead_letters().list({});
    ASSERT_TRUE(letters.ok());
    ASSERT_EQ(letters.value().size(), 1u);
    EXPECT_EQ(letters.value()[0].id, letter);

    // Where there is room it is sent, and the letter is gone; a second replay finds nothing.
    auto replayed = node.dead_letters().replay(letter, "roomy");
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    EXPECT_NE(replayed.value(), letter);
    EXPECT_EQ(node.stats().queues["roomy"].depth, 1u);
    EXPECT_TRUE(node.dead_letters().list({}).value().empty());
    auto again = node.dead_letters().replay(letter, "roomy");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), peermq::ErrorCode::not_found);
    EXPECT_EQ(node.stats().queues["roomy"].depth, 1u);
}

// A peer learns of a new node from its first HELLO at once, not a heartbeat interval later.
TEST(SenderRules, TwoNodesSeeEachOtherAliveWellWithinAHeartbeat) {
    auto a = peermq::Node::create(
                 {.name = "a", .interface = "lo", .heartbeat_interval = 5s, .peer_timeout = 15s})
                 .value();
    const auto start = std::chrono::steady_clock::now();
    auto b = peermq::Node::create({.name = "b",
                                   .interface = "lo",
                                   .peers = {a.address()},
                                   .heartbeat_interval = 5s,
                                   .peer_timeout = 15s})
                 .value();
    ASSERT_TRUE(wait_until([&] { return alive(a, "b") && alive(b, "a"); }, 10s));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms";
}

// An exception out of the actor's loop (here a user's clock that throws) never reaches
// std::terminate: the node fails cleanly, every later call says why, and close() still works.
TEST(SenderRules, AnActorThatFailsReportsItsFailureOnEveryLaterCall) {
    class BreakingClock : public peermq::Clock {
    public:
        Steady steady_now() const override {
            if (broken.load()) throw std::runtime_error("the clock broke");
            return std::chrono::steady_clock::now();
        }
        std::int64_t unix_ms() const override { return peermq::system_clock()->unix_ms(); }
        mutable std::atomic<bool> broken{false};
    };
    auto clock = std::make_shared<BreakingClock>();
    auto node =
        peermq::Node::create({.name = "fragile", .interface = "lo", .clock = clock}).value();
    auto q = node.queue("q").value();
    ASSERT_TRUE(q.send(1).ok());
    auto pending = q.send_confirmed(2);  // no consumer: still waiting when the node fails
    clock->broken = true;
    ASSERT_TRUE(wait_until([&] { return !q.send(3).ok(); }));
    const auto refused = q.send(4);
    EXPECT_EQ(refused.status().code(), peermq::ErrorCode::internal);
    EXPECT_NE(refused.status().message().find("the clock broke"), std::string::npos)
        << refused.status().to_string();
    EXPECT_TRUE(node.peers().empty());
    auto list = node.dead_letters().list();
    ASSERT_FALSE(list.ok());
    EXPECT_NE(list.status().message().find("the clock broke"), std::string::npos);
    EXPECT_EQ(q.flush(1s).code(), peermq::ErrorCode::internal);
    clock->broken = false;  // close() runs on: the node stays failed
    node.close();
    ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
    EXPECT_FALSE(pending.get().ok());
}
