// A producer process SIGKILLed while it is still sending, with no consumer anywhere (guarantees.md,
// "sender crash"; reliability.md §11): after flush() returned for N messages, all N are in its
// journal; restarted on the same data directory, it delivers what its journal holds, once each.
#include "fault_support.hpp"
#include "storage/journal.hpp"
#include "support/journal.hpp"

namespace peermq::fault {
namespace {

const std::string kQueue = "jobs";

struct CrashCase {
    const char* name;
    Durability durability;
    const char* durability_flag;
    std::uint64_t flushed;  // sent and flushed before the kill
    // Then sent without flush: more than max_length allows with no consumer, so the producer is
    // still sending (or blocked in send()) when it is killed.
    std::uint64_t then;
    std::uint64_t progress;   // "SENT <i>" every this many of them
    bool every_send_durable;  // fsync_each: each send() that returned is on disk
};

void PrintTo(const CrashCase& c, std::ostream* out) { *out << c.name; }

class ProducerCrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(ProducerCrashTest, FlushedMessagesSurviveAKillAndAreDeliveredAfterRestart) {
    const CrashCase& c = GetParam();
    TempDir dir;
    const std::string data_dir = dir.file("producer-data");

    std::uint64_t sent_after_flush = 0;  // the producer said so before we killed it
    {
        TestNode producer({"--name", "producer", "--interface", "lo", "--data-dir", data_dir,
                           "--durability", c.durability_flag, "--produce", kQueue, "--count",
                           std::to_string(c.flushed), "--then-count", std::to_string(c.then),
                           "--progress-every", std::to_string(c.progress)});
        ASSERT_TRUE(producer.ready());
        ASSERT_TRUE(producer.process().read_line("FLUSHED " + std::to_string(c.flushed), 60s))
            << "flush() did not return";
        // Killed while it is sending more: it has just said how far it got.
        auto progress = producer.process().read_line("SENT ", 60s);
        ASSERT_TRUE(progress.has_value()) << "the producer stopped sending after flush()";
        sent_after_flush = std::stoull(*progress);
        producer.kill(SIGKILL);
        const auto status = producer.process().wait();
        ASSERT_EQ(status, 128 + SIGKILL) << "the producer ended before the kill";
    }

    // What survived: a prefix of the sequence (commits are in send order), at least everything
    // flushed, and with fsync_each everything whose send() had returned.
    const auto outbox = outbox_of(data_dir);
    ASSERT_GE(outbox.size(), c.flushed);
    std::set<long long> journaled;
    for (const auto& record : outbox) {
        EXPECT_EQ(record.queue, kQueue);
        journaled.insert(record.payload.as<long long>());
    }
    ASSERT_EQ(journaled.size(), outbox.size()) << "a payload is journaled twice";
    EXPECT_EQ(*journaled.begin(), 0);
    EXPECT_EQ(*journaled.rbegin(), static_cast<long long>(journaled.size()) - 1)
        << "the journal has a gap";
    if (c.every_send_durable) {
        EXPECT_GE(journaled.size(), c.flushed + sent_after_flush)
            << "a send() that returned under fsync_each is not on disk";
    }
    const std::uint64_t survived = journaled.size();
    RecordProperty("journaled", static_cast<int>(survived));
    RecordProperty("sent_after_flush_reported", static_cast<int>(sent_after_flush));

    // A consumer appears, and the producer restarts on the same data directory.
    CountingConsumer consumer(kQueue);
    TestNode restarted(Args{"--name", "producer-again", "--interface", "lo", "--data-dir", data_dir,
                            "--durability", c.durability_flag, "--peer",
                            host_port(consumer.endpoint())} +
                       liveness_args());
    ASSERT_TRUE(restarted.ready());

    // Everything journaled is delivered, and settled at the restarted producer.
    EXPECT_TRUE(restarted.wait_stat(kQueue + ".acked", survived, 60s))
        << "acked " << restarted.stat(kQueue + ".acked").value_or(0) << " of " << survived;
    {
        const auto received = consumer.received();
        ASSERT_EQ(received.size(), survived);
        EXPECT_EQ(received.begin()->first, 0);
        EXPECT_EQ(received.rbegin()->first, static_cast<long long>(survived) - 1);
        // Nothing had been handled before the crash, so nothing is handled twice.
        for (const auto& [v, n] : received) EXPECT_EQ(n, 1) << v;
    }
    auto s = restarted.stats();
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ((*s)[kQueue + ".in_flight"], 0u);
    EXPECT_EQ((*s)[kQueue + ".depth"], 0u);
    EXPECT_EQ((*s)[kQueue + ".dead_lettered"], 0u);

    // A clean stop commits the acks: the outbox is empty.
    EXPECT_EQ(restarted.stop(), 0);
    EXPECT_EQ(outbox_of(data_dir).size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Durability, ProducerCrashTest,
                         ::testing::Values(CrashCase{"group_commit", Durability::group_commit,
                                                     "group_commit", 5000, 1'000'000, 1000, false},
                                           CrashCase{"fsync_each", Durability::fsync_each,
                                                     "fsync_each", 200, 1'000'000, 50, true}),
                         [](const auto& info) { return std::string(info.param.name); });

struct ResendCase {
    const char* name;
    Guarantee guarantee;
    const char* guarantee_flag;
};
void PrintTo(const ResendCase& c, std::ostream* out) { *out << c.name; }

class ProducerResendTest : public ::testing::TestWithParam<ResendCase> {};

// The producer dies while its consumer is handling its stream. What the consumer handled but the
// producer never heard acked is still in the journal and is sent again after the restart, with
// the same ids (guarantees.md, "sender crash", duplicates column): at_least_once handles it a
// second time, effectively_once drops it in the consumer's dedupe window.
TEST_P(ProducerResendTest, HandledButUnackedMessagesAreResentAfterRestart) {
    const ResendCase& c = GetParam();
    constexpr long long kMessages = 20'000;
    TempDir dir;
    const std::string data_dir = dir.file("producer-data");

    std::mutex mutex;
    std::map<long long, int> handled;
    std::vector<long long> order;
    auto consumer = make_node(node_options("consumer"));
    ASSERT_TRUE(consumer
                    .consume(kQueue,
                             [&](Delivery& d) {
                                 // Work, slower than the producer sends even on a loaded
                                 // machine: the consumer must still hold messages when the
                                 // producer freezes (at 100 us, a CI run under load drained
                                 // all it held first).
                                 std::this_thread::sleep_for(400us);
                                 std::lock_guard lock(mutex);
                                 ++handled[d.as<long long>()];
                                 order.push_back(d.as<long long>());
                             })
                    .ok());
    auto handled_count = [&] {
        std::lock_guard lock(mutex);
        return order.size();
    };
    const std::vector<std::string> liveness = liveness_args();

    std::set<long long> handled_unacked;  // handled after the producer froze: never acked to it
    {
        TestNode producer(std::vector<std::string>{"--name", "producer", "--interface", "lo",
                                                   "--data-dir", data_dir, "--peer",
                                                   host_port(consumer.address()), "--guarantee",
                                                   c.guarantee_flag, "--produce", kQueue, "--count",
                                                   std::to_string(kMessages)} +
                          liveness);
        ASSERT_TRUE(producer.ready());
        ASSERT_TRUE(producer.process().read_line("FLUSHED", 60s));
        ASSERT_TRUE(wait_until([&] { return handled_count() >= 3000; }, 60s));
        // Frozen, it hears no more acks; the consumer goes on with what it already holds.
        producer.kill(SIGSTOP);
        ASSERT_TRUE(wait_until([&] { return all_threads_stopped(producer.pid()); }, 5s));
        const std::size_t at_stop = handled_count();
        ASSERT_LT(at_stop, static_cast<std::size_t>(kMessages)) << "the stream was already over";
        ASSERT_TRUE(wait_until(
            [&] {
                const auto s = queue_stats(consumer, kQueue);
                return handled_count() > at_stop && s.received == s.delivered + s.duplicates;
            },
            30s))
            << "the consumer held nothing when the producer froze";
        {
            std::lock_guard lock(mutex);
            handled_unacked.insert(order.begin() + static_cast<std::ptrdiff_t>(at_stop),
                                   order.end());
        }
        producer.kill(SIGKILL);
        producer.process().wait();
    }
    // Its journal still holds them (and whatever had not been handled yet).
    const auto outbox = outbox_of(data_dir);
    std::set<long long> journaled;
    for (const auto& record : outbox) journaled.insert(record.payload.as<long long>());
    for (long long v : handled_unacked) ASSERT_TRUE(journaled.contains(v)) << v;

    TestNode restarted(std::vector<std::string>{"--name", "producer-again", "--interface", "lo",
                                                "--data-dir", data_dir, "--peer",
                                                host_port(consumer.address())} +
                       liveness);
    ASSERT_TRUE(restarted.ready());
    EXPECT_TRUE(restarted.wait_stat(kQueue + ".acked", journaled.size(), 60s))
        << "acked " << restarted.stat(kQueue + ".acked").value_or(0) << " of " << journaled.size();
    EXPECT_EQ(restarted.stop(), 0);
    EXPECT_EQ(outbox_of(data_dir).size(), 0u);

    std::lock_guard lock(mutex);
    ASSERT_EQ(handled.size(), static_cast<std::size_t>(kMessages));  // nothing lost
    EXPECT_EQ(handled.begin()->first, 0);
    EXPECT_EQ(handled.rbegin()->first, kMessages - 1);
    const auto duplicates = queue_stats(consumer, kQueue).duplicates;
    if (c.guarantee == Guarantee::effectively_once) {
        for (const auto& [v, n] : handled) EXPECT_EQ(n, 1) << v << " handled " << n << " times";
        EXPECT_GE(duplicates, handled_unacked.size()) << "the re-sent copies were not seen";
    } else {
        for (const auto& [v, n] : handled) EXPECT_LE(n, 2) << v;
        for (long long v : handled_unacked) EXPECT_EQ(handled[v], 2) << v << " was not re-sent";
        EXPECT_EQ(duplicates, 0u);
    }
    RecordProperty("handled_unacked", static_cast<int>(handled_unacked.size()));
    RecordProperty("resent", static_cast<int>(journaled.size()));
}

INSTANTIATE_TEST_SUITE_P(
    Guarantees, ProducerResendTest,
    ::testing::Values(ResendCase{"at_least_once", Guarantee::at_least_once, "at_least_once"},
                      ResendCase{"effectively_once", Guarantee::effectively_once,
                                 "effectively_once"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace peermq::fault
