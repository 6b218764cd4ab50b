// Messages that cannot be delivered end in the sender's dead-letter journal with a reason
// (reliability.md §5, §7, §11): a poison message after max_attempts with the handler's error,
// expired messages; and a dead letter replayed after the fix is delivered.
#include "fault_support.hpp"

namespace peermq::fault {
namespace {

// Fast retries so that a poison message is dead-lettered within a fraction of a second.
QueueOptions poison_queue_options() {
    return {.max_attempts = 3, .retry_initial = 10ms, .retry_max = 40ms};
}

TEST(DeadLetterTest, PoisonMessageIsDeadLetteredWithTheHandlersErrorAndReplayedAfterTheFix) {
    TempDir dir;
    const std::string q = "poison";
    auto options = node_options("producer");
    options.data_dir = dir.file("producer-data");
    auto producer = make_node(options);

    TestNode broken(consumer_args("broken", q, dir.file("broken.log"), producer.address()) +
                    std::vector<std::string>{"--fail-payload", "13"});
    ASSERT_TRUE(broken.ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"broken"}, q); }, 15s));

    auto queue = producer.queue(q, poison_queue_options()).value();
    std::optional<MessageId> poison_id;
    for (long long i = 0; i < 200; ++i) {
        auto id = queue.send(i);
        ASSERT_TRUE(id.ok());
        if (i == 13) poison_id = id.value();
    }
    // The other 199 flow past it; it is dead-lettered after its third failed attempt.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, q);
            return s.acked == 199 && s.dead_lettered == 1;
        },
        30s))
        << describe(queue_stats(producer, q));

    auto letters = producer.dead_letters().list();
    ASSERT_TRUE(letters.ok()) << letters.status().to_string();
    ASSERT_EQ(letters.value().size(), 1u);
    const DeadLetter& letter = letters.value()[0];
    EXPECT_EQ(letter.id, *poison_id);
    EXPECT_EQ(letter.queue, q);
    EXPECT_EQ(letter.reason, "max_attempts");
    EXPECT_EQ(letter.attempts, 3u);
    EXPECT_EQ(letter.last_error, "poison payload 13");
    EXPECT_EQ(letter.payload.as<long long>(), 13);
    EXPECT_LE(letter.created_ms, letter.first_failure_ms);
    EXPECT_LE(letter.first_failure_ms, letter.last_failure_ms);

    const auto s = queue_stats(producer, q);
    EXPECT_EQ(s.nacked, 3u) << describe(s);
    EXPECT_EQ(s.retried, 2u) << describe(s);
    EXPECT_EQ(s.in_flight, 0u);
    EXPECT_EQ(s.depth, 0u);
    EXPECT_EQ(broken.stat(q + ".handler_errors"), 3u);

    // The queue is not stuck behind its dead letter.
    for (long long i = 200; i < 300; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).acked == 299; }, 30s))
        << describe(queue_stats(producer, q));
    {
        const auto log = counts(read_log(dir.file("broken.log")));
        EXPECT_EQ(log.size(), 299u);
        EXPECT_FALSE(log.contains(13));
        for (const auto& [v, n] : log) EXPECT_EQ(n, 1) << v;
    }

    // The fix: the consumer restarts without the bug, then the dead letter is replayed.
    ASSERT_EQ(broken.stop(), 0);
    TestNode fixed(consumer_args("fixed", q, dir.file("fixed.log"), producer.address()));
    ASSERT_TRUE(fixed.ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"fixed"}, q); }, 15s));
    auto replayed = producer.dead_letters().replay(*poison_id);
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    EXPECT_NE(replayed.value(), *poison_id);
    EXPECT_TRUE(wait_until(
        [&] { return read_log(dir.file("fixed.log")) == std::vector<long long>{13}; }, 15s));
    EXPECT_TRUE(wait_until([&] { return queue_stats(producer, q).acked == 300; }, 15s))
        << describe(queue_stats(producer, q));
    auto after = producer.dead_letters().list();
    ASSERT_TRUE(after.ok());
    EXPECT_TRUE(after.value().empty());
}

// The same, with the producer in a process of its own: its dead letter is read from the journal
// on disk after it stopped (as `peermq dlq` does), replayed there, and delivered when it runs
// again.
TEST(DeadLetterTest, PoisonMessageInAStoppedProducersJournalIsReplayedOnItsNextRun) {
    TempDir dir;
    const std::string q = "poison";
    const std::string data_dir = dir.file("producer-data");
    auto producer_args = [&](const std::string& name, const std::string& consumer_endpoint) {
        return std::vector<std::string>{
                   "--name",     name,     "--interface", "lo",
                   "--data-dir", data_dir, "--peer",      host_port(consumer_endpoint)} +
               liveness_args();
    };
    // The consumers have no static peer: they learn the producer from its HELLO.
    auto consumer = [&](const std::string& name, std::vector<std::string> extra) {
        auto args = consumer_args(name, q, dir.file(name + ".log"), "") + extra;
        return std::make_unique<TestNode>(std::move(args));
    };

    MessageId poison_id;
    {
        auto broken = consumer("broken", {"--fail-payload", "7"});
        ASSERT_TRUE(broken->ready());
        TestNode producer(producer_args("producer", broken->endpoint()) +
                          std::vector<std::string>{"--produce", q, "--count", "50",
                                                   "--max-attempts", "3", "--retry-initial-ms",
                                                   "10", "--retry-max-ms", "40"});
        ASSERT_TRUE(producer.ready());
        ASSERT_TRUE(producer.process().read_line("FLUSHED 50", 30s));
        ASSERT_TRUE(wait_until(
            [&] {
                auto s = producer.stats();
                return s && (*s)[q + ".acked"] == 49 && (*s)[q + ".dead_lettered"] == 1;
            },
            30s));
        EXPECT_EQ(producer.stop(), 0);
        EXPECT_EQ(broken->stop(), 0);
        const auto log = counts(read_log(dir.file("broken.log")));
        EXPECT_EQ(log.size(), 49u);
        EXPECT_FALSE(log.contains(7));
    }

    {
        auto journal = DeadLetterJournal::open(data_dir);
        ASSERT_TRUE(journal.ok()) << journal.status().to_string();
        auto letters = journal.value().list({.reason = "max_attempts"});
        ASSERT_TRUE(letters.ok());
        ASSERT_EQ(letters.value().size(), 1u);
        const DeadLetter& letter = letters.value()[0];
        EXPECT_EQ(letter.queue, q);
        EXPECT_EQ(letter.attempts, 3u);
        EXPECT_EQ(letter.last_error, "poison payload 7");
        EXPECT_EQ(letter.payload.as<long long>(), 7);
        poison_id = letter.id;
        auto replayed = journal.value().replay(poison_id);
        ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
        EXPECT_NE(replayed.value(), poison_id);
        EXPECT_TRUE(journal.value().list().value().empty());
    }

    auto fixed = consumer("fixed", {});
    ASSERT_TRUE(fixed->ready());
    TestNode producer(producer_args("producer-again", fixed->endpoint()));
    ASSERT_TRUE(producer.ready());
    EXPECT_TRUE(wait_until(
        [&] { return read_log(dir.file("fixed.log")) == std::vector<long long>{7}; }, 20s));
    EXPECT_TRUE(wait_until([&] { return producer.stat(q + ".acked") == 1u; }, 10s));
    EXPECT_EQ(producer.stop(), 0);
    auto journal = DeadLetterJournal::open(data_dir);
    ASSERT_TRUE(journal.ok());
    EXPECT_TRUE(journal.value().list().value().empty());
}

// TTL with no consumer: every message expires while waiting and is dead-lettered "expired", on
// time and not before; a consumer that appears later never sees them.
TEST(DeadLetterTest, ExpiredMessagesWithNoConsumerAreDeadLettered) {
    TempDir dir;
    const std::string q = "short-lived";
    constexpr auto kTtl = 300ms;
    auto producer = make_node(node_options("producer"));  // no data_dir: dead letters in memory
    auto queue = producer.queue(q, {.ttl = kTtl}).value();
    std::set<MessageId> sent;
    for (int i = 0; i < 20; ++i) sent.insert(queue.send(i).value());

    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).dead_lettered == 20; }, 10s))
        << describe(queue_stats(producer, q));
    auto letters = producer.dead_letters().list({.reason = "expired"});
    ASSERT_TRUE(letters.ok());
    ASSERT_EQ(letters.value().size(), 20u);
    std::set<MessageId> expired;
    for (const auto& letter : letters.value()) {
        expired.insert(letter.id);
        EXPECT_EQ(letter.queue, q);
        EXPECT_EQ(letter.reason, "expired");
        EXPECT_EQ(letter.attempts, 0u);  // never sent: no consumer
        EXPECT_GE(letter.last_failure_ms, letter.created_ms + kTtl.count()) << "expired early";
    }
    EXPECT_EQ(expired, sent);
    const auto s = queue_stats(producer, q);
    EXPECT_EQ(s.expired, 20u);
    EXPECT_EQ(s.sent, 0u);
    EXPECT_EQ(s.depth, 0u);
    EXPECT_EQ(s.in_flight, 0u);

    // A consumer now: only a fresh message reaches it (a stale one would be ahead in the FIFO).
    TestNode consumer(consumer_args("late", q, dir.file("late.log"), producer.address()));
    ASSERT_TRUE(consumer.ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"late"}, q); }, 15s));
    ASSERT_TRUE(queue.send(1000).ok());
    ASSERT_TRUE(wait_until([&] { return !read_log(dir.file("late.log")).empty(); }, 10s));
    EXPECT_TRUE(wait_until([&] { return queue_stats(producer, q).acked == 1; }, 10s));
    EXPECT_EQ(read_log(dir.file("late.log")), std::vector<long long>{1000});
}

// TTL while in flight: the consumer is frozen with the messages in its socket buffer; when it
// resumes after their deadline it refuses them unhandled (NACK "expired"), and the sender
// dead-letters them "expired" rather than retrying.
TEST(DeadLetterTest, MessagesExpiredOnArrivalAreRefusedAndDeadLettered) {
    TempDir dir;
    const std::string q = "short-lived";
    constexpr auto kTtl = 1000ms;
    // Default liveness (3 s): the freeze below must not get the consumer marked down.
    auto producer = make_node({.name = "producer", .interface = "lo"});
    TestNode consumer({"--name", "frozen", "--interface", "lo", "--consume", q, "--log",
                       dir.file("frozen.log"), "--peer", host_port(producer.address())});
    ASSERT_TRUE(consumer.ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"frozen"}, q); }, 15s));

    // Seeing the consumer alive (its frames reach us) does not mean our connection to it is up:
    // one message through it proves that, before it is frozen.
    auto queue = producer.queue(q, {.ttl = kTtl, .ack_timeout = 60s}).value();
    ASSERT_TRUE(queue.send(1000).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).acked == 1; }, 10s))
        << describe(queue_stats(producer, q));
    ASSERT_EQ(read_log(dir.file("frozen.log")), std::vector<long long>{1000});

    consumer.kill(SIGSTOP);
    ASSERT_TRUE(wait_until([&] { return all_threads_stopped(consumer.pid()); }, 5s));
    std::int64_t last_created = 0;
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(queue.send(i).ok());
        last_created = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    }
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).sent == 11; }, 5s))
        << describe(queue_stats(producer, q));
    EXPECT_EQ(queue_stats(producer, q).in_flight, 10u);
    // The condition itself is time: every deadline has passed on the wall clock.
    ASSERT_TRUE(wait_until(
        [&] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count() > last_created + kTtl.count() + 20;
        },
        5s));
    consumer.kill(SIGCONT);

    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).dead_lettered == 10; }, 10s))
        << describe(queue_stats(producer, q));
    auto letters = producer.dead_letters().list();
    ASSERT_TRUE(letters.ok());
    ASSERT_EQ(letters.value().size(), 10u);
    for (const auto& letter : letters.value()) EXPECT_EQ(letter.reason, "expired");
    const auto s = queue_stats(producer, q);
    EXPECT_EQ(s.acked, 1u);
    EXPECT_EQ(s.retried, 0u) << "an expired message was sent again";
    EXPECT_EQ(s.in_flight, 0u);
    auto consumer_stats = consumer.stats();
    ASSERT_TRUE(consumer_stats.has_value());
    EXPECT_EQ((*consumer_stats)[q + ".expired"], 10u);
    EXPECT_EQ((*consumer_stats)["dropped.ttl.expired"], 10u);
    EXPECT_EQ((*consumer_stats)[q + ".delivered"], 1u) << "a handler ran for an expired message";
    EXPECT_EQ(read_log(dir.file("frozen.log")), std::vector<long long>{1000});
}

// On an ordered queue a poison message holds the queue only until it is dead-lettered; then the
// next one follows, leaving a gap (reliability.md §12).
TEST(DeadLetterTest, PoisonMessageOnAnOrderedQueueLeavesAGapAndTheRestFollowsInOrder) {
    TempDir dir;
    const std::string q = "ordered-poison";
    auto producer = make_node(node_options("producer"));
    TestNode consumer(consumer_args("broken", q, dir.file("broken.log"), producer.address()) +
                      std::vector<std::string>{"--fail-payload", "5", "--concurrency", "4"});
    ASSERT_TRUE(consumer.ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"broken"}, q); }, 15s));
    auto options = poison_queue_options();
    options.ordered = true;
    auto queue = producer.queue(q, options).value();
    for (long long i = 0; i < 50; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, q);
            return s.acked == 49 && s.dead_lettered == 1;
        },
        30s))
        << describe(queue_stats(producer, q));
    std::vector<long long> expected;
    for (long long i = 0; i < 50; ++i) {
        if (i != 5) expected.push_back(i);
    }
    EXPECT_EQ(read_log(dir.file("broken.log")), expected);
    auto letters = producer.dead_letters().list();
    ASSERT_TRUE(letters.ok());
    ASSERT_EQ(letters.value().size(), 1u);
    EXPECT_EQ(letters.value()[0].payload.as<long long>(), 5);
    EXPECT_EQ(letters.value()[0].reason, "max_attempts");
    EXPECT_EQ(letters.value()[0].last_error, "poison payload 5");
}

// no_consumer_timeout: a queue that never gets a consumer dead-letters its messages with reason
// "no_consumer" (reliability.md §10), in the journal when the node has a data directory.
TEST(DeadLetterTest, MessagesWithNoConsumerForTooLongAreDeadLettered) {
    TempDir dir;
    const std::string q = "orphan";
    auto options = node_options("producer");
    options.data_dir = dir.file("producer-data");
    auto producer = make_node(options);
    auto queue = producer.queue(q, {.no_consumer_timeout = 300ms}).value();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).dead_lettered == 10; }, 10s))
        << describe(queue_stats(producer, q));
    auto letters = producer.dead_letters().list({.reason = "no_consumer"});
    ASSERT_TRUE(letters.ok());
    ASSERT_EQ(letters.value().size(), 10u);
    std::set<long long> payloads;
    for (const auto& letter : letters.value()) {
        payloads.insert(letter.payload.as<long long>());
        EXPECT_GE(letter.last_failure_ms, letter.created_ms + 300) << "dead-lettered early";
    }
    EXPECT_EQ(payloads.size(), 10u);
    producer.close();
    // On disk: a tool sees them after the node stopped.
    auto journal = DeadLetterJournal::open(options.data_dir);
    ASSERT_TRUE(journal.ok()) << journal.status().to_string();
    auto on_disk = journal.value().list({.queue = q});
    ASSERT_TRUE(on_disk.ok());
    EXPECT_EQ(on_disk.value().size(), 10u);
}

}  // namespace
}  // namespace peermq::fault
