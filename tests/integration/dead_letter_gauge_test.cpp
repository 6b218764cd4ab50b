// NodeStats::dead_letters, the letters in a node's dead-letter store by queue and reason, on real
// nodes over tcp loopback with a real journal: a letter a consumer rejects, and one that used up
// its attempts, are counted on the producer until they are replayed or purged; a node restarted
// on its data directory counts the letters its journal kept, and the unsent messages found
// damaged on disk, which it moves to the dead letters as `corrupt`.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

#include "peermq/peermq.hpp"
#include "support/journal.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::wait_until;
using Counts = std::map<std::string, std::map<std::string, std::uint64_t>>;

namespace {

bool alive(const peermq::Node& node, const std::string& name, const std::string& queue) {
    for (const auto& peer : node.peers()) {
        if (peer.name != name || peer.state != peermq::PeerState::alive) continue;
        for (const auto& q : peer.queues) {
            if (q == queue) return true;
        }
    }
    return false;
}

Counts counts(const peermq::Node& node) { return node.stats().dead_letters; }

// A consumer of "q" that rejects while `reject` holds, and of "p" that always throws.
struct Consumer {
    explicit Consumer(const std::string& producer_address)
        : node(peermq::Node::create(
                   {.name = "consumer", .interface = "lo", .peers = {producer_address}})
                   .value()) {
        EXPECT_TRUE(node.consume("q",
                                 [this](peermq::Delivery& delivery) {
                                     if (reject.load()) {
                                         delivery.reject("not today");
                                     } else {
                                         ++handled;
                                     }
                                 })
                        .ok());
        EXPECT_TRUE(
            node.consume("p", [](peermq::Delivery&) { throw std::runtime_error("always fails"); })
                .ok());
    }

    std::atomic<bool> reject{true};
    std::atomic<int> handled{0};
    peermq::Node node;
};

peermq::MessageId dead_lettered(peermq::Queue& queue, int value) {
    auto receipt = queue.send_confirmed(value).get();
    EXPECT_TRUE(receipt.ok()) << receipt.status().to_string();
    if (!receipt.ok()) return {};
    EXPECT_EQ(receipt.value().outcome, peermq::Receipt::Outcome::dead_lettered);
    return receipt.value().id;
}

}  // namespace

TEST(DeadLetterGauge, ALetterIsCountedByQueueAndReasonUntilReplayedOrPurged) {
    peermq::testing::TempDir dir("dead-letter-gauge");
    auto producer = peermq::Node::create(
                        {.name = "producer", .interface = "lo", .data_dir = dir.file("producer")})
                        .value();
    Consumer consumer(producer.address());
    ASSERT_TRUE(wait_until(
        [&] { return alive(producer, "consumer", "q") && alive(producer, "consumer", "p"); }));
    EXPECT_TRUE(counts(producer).empty());
    auto q = producer.queue("q").value();
    auto p = producer.queue("p", {.max_attempts = 1}).value();

    const peermq::MessageId rejected = dead_lettered(q, 1);
    dead_lettered(p, 2);
    // The receipt says dead-lettered once the letter is in the store: counted by then.
    EXPECT_EQ(counts(producer), (Counts{{"p", {{"max_attempts", 1}}}, {"q", {{"rejected", 1}}}}));
    EXPECT_TRUE(counts(consumer.node).empty()) << "the producer keeps its dead letters";

    // A replay takes the letter out before it returns; delivered again, it is not a letter.
    consumer.reject = false;
    auto replayed = producer.dead_letters().replay(rejected);
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    EXPECT_EQ(counts(producer), (Counts{{"p", {{"max_attempts", 1}}}}));
    ASSERT_TRUE(wait_until([&] { return consumer.handled.load() == 1; }));
    ASSERT_TRUE(wait_until([&] { return producer.stats().queues["q"].acked == 1; }));
    EXPECT_EQ(counts(producer), (Counts{{"p", {{"max_attempts", 1}}}}));

    // Another rejected letter, then purged by its queue: the other queue's letter stays.
    consumer.reject = true;
    dead_lettered(q, 3);
    EXPECT_EQ(counts(producer), (Counts{{"p", {{"max_attempts", 1}}}, {"q", {{"rejected", 1}}}}));
    peermq::DeadLetterFilter of_q;
    of_q.queue = "q";
    auto purged = producer.dead_letters().purge(of_q);
    ASSERT_TRUE(purged.ok()) << purged.status().to_string();
    EXPECT_EQ(purged.value(), 1u);
    EXPECT_EQ(counts(producer), (Counts{{"p", {{"max_attempts", 1}}}}));
    ASSERT_EQ(producer.dead_letters().purge({}).value(), 1u);
    EXPECT_TRUE(counts(producer).empty());
}

TEST(DeadLetterGauge, ANodeRestartedOnItsDataDirectoryCountsWhatItsJournalKept) {
    peermq::testing::TempDir dir("dead-letter-gauge");
    const std::string data_dir = dir.file("producer");
    {
        auto producer =
            peermq::Node::create({.name = "producer", .interface = "lo", .data_dir = data_dir})
                .value();
        Consumer consumer(producer.address());
        ASSERT_TRUE(wait_until([&] { return alive(producer, "consumer", "q"); }));
        auto q = producer.queue("q").value();
        dead_lettered(q, 1);
        dead_lettered(q, 2);
        // No consumer of "waiting": its message stays in the journal's outbox.
        auto waiting = producer.queue("waiting").value();
        ASSERT_TRUE(waiting.send(3).ok());
        ASSERT_TRUE(waiting.flush(10s).ok());
        EXPECT_EQ(counts(producer), (Counts{{"q", {{"rejected", 2}}}}));
        producer.close();
    }
    {
        // The unsent message's bytes change on disk while the node is down.
        peermq::testing::RawDb raw(data_dir + "/peermq.db");
        ASSERT_EQ(raw.scalar("SELECT COUNT(*) FROM outbox"), 1);
        ASSERT_EQ(raw.exec("UPDATE outbox SET payload = X'00'"), SQLITE_OK);
    }
    auto restarted =
        peermq::Node::create({.name = "producer", .interface = "lo", .data_dir = data_dir}).value();
    EXPECT_EQ(counts(restarted), (Counts{{"q", {{"rejected", 2}}}, {"waiting", {{"corrupt", 1}}}}));
    EXPECT_EQ(restarted.dead_letters().list().value().size(), 3u);
}
