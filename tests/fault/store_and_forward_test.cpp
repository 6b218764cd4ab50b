// Store-and-forward (reliability.md §10, §12): with no consumer the messages wait at the sender;
// a consumer process that appears later gets all of them, and on an ordered queue in send order.
#include "fault_support.hpp"

namespace peermq::fault {
namespace {

// Handlers running in parallel with a little work each: a queue that did not keep its order
// would show it in the log.
const std::vector<std::string> kParallelHandlers = {"--concurrency", "4", "--handle-delay-us",
                                                    "50"};

struct WaitCase {
    const char* name;
    bool ordered;
    long long messages;
};

void PrintTo(const WaitCase& c, std::ostream* out) { *out << c.name; }

class StoreAndForwardTest : public ::testing::TestWithParam<WaitCase> {};

TEST_P(StoreAndForwardTest, MessagesWaitForAConsumerThatAppearsLater) {
    const WaitCase& c = GetParam();
    TempDir dir;
    const std::string q = "later";
    auto producer = make_node(node_options("producer"));
    auto queue = producer.queue(q, {.ordered = c.ordered}).value();
    for (long long i = 0; i < c.messages; ++i) ASSERT_TRUE(queue.send(i).ok());

    // Nobody consumes: everything waits, nothing is sent, nothing is dropped.
    ASSERT_TRUE(wait_until(
        [&] { return queue_stats(producer, q).depth == static_cast<std::uint64_t>(c.messages); },
        10s))
        << describe(queue_stats(producer, q));
    EXPECT_EQ(queue_stats(producer, q).sent, 0u);
    EXPECT_EQ(queue_stats(producer, q).dead_lettered, 0u);

    // A consumer process appears; it knows the producer, the producer did not know it. It runs
    // handlers in parallel, so only the queue's own ordering can keep its log in order.
    TestNode consumer(consumer_args("late", q, dir.file("late.log"), producer.address()) +
                      kParallelHandlers);
    ASSERT_TRUE(consumer.ready());
    ASSERT_TRUE(wait_until(
        [&] { return queue_stats(producer, q).acked == static_cast<std::uint64_t>(c.messages); },
        60s))
        << describe(queue_stats(producer, q));
    const auto s = queue_stats(producer, q);
    EXPECT_EQ(s.depth, 0u);
    EXPECT_EQ(s.in_flight, 0u);
    EXPECT_EQ(s.retried, 0u) << describe(s);

    const auto log = read_log(dir.file("late.log"));
    ASSERT_EQ(log.size(), static_cast<std::size_t>(c.messages));
    if (c.ordered) {
        // One at a time in send order: the log is exactly 0, 1, 2, ...
        for (std::size_t i = 0; i < log.size(); ++i) {
            ASSERT_EQ(log[i], static_cast<long long>(i)) << "out of order at line " << i;
        }
    } else {
        const auto seen = counts(log);
        ASSERT_EQ(seen.size(), static_cast<std::size_t>(c.messages));
        EXPECT_EQ(seen.begin()->first, 0);
        EXPECT_EQ(seen.rbegin()->first, c.messages - 1);
    }
}

INSTANTIATE_TEST_SUITE_P(Queues, StoreAndForwardTest,
                         ::testing::Values(WaitCase{"unordered", false, 5000},
                                           WaitCase{"ordered", true, 500}),
                         [](const auto& info) { return std::string(info.param.name); });

// Ordered queue whose only consumer is killed mid-stream and replaced: the new consumer continues
// in send order; the one message that can repeat is the one in flight at the kill (§12).
TEST(StoreAndForwardTest, OrderedQueueKeepsItsOrderAcrossAConsumerCrash) {
    TempDir dir;
    const std::string q = "ordered";
    constexpr long long kMessages = 400;
    auto producer = make_node(node_options("producer"));
    auto queue = producer.queue(q, {.ordered = true}).value();

    auto first = std::make_unique<TestNode>(
        consumer_args("first", q, dir.file("first.log"), producer.address()) +
        std::vector<std::string>{"--concurrency", "4", "--handle-delay-us", "1000"});
    ASSERT_TRUE(first->ready());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"first"}, q); }, 15s));
    for (long long i = 0; i < kMessages; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return read_log(dir.file("first.log")).size() >= 100; }, 30s));
    first->kill(SIGKILL);
    first->process().wait();
    ASSERT_LT(queue_stats(producer, q).acked, static_cast<std::uint64_t>(kMessages));

    TestNode second(consumer_args("second", q, dir.file("second.log"), producer.address()) +
                    kParallelHandlers);
    ASSERT_TRUE(second.ready());
    ASSERT_TRUE(wait_until(
        [&] { return queue_stats(producer, q).acked == static_cast<std::uint64_t>(kMessages); },
        60s))
        << describe(queue_stats(producer, q));

    const auto a = read_log(dir.file("first.log"));
    const auto b = read_log(dir.file("second.log"));
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], static_cast<long long>(i));
    for (std::size_t i = 1; i < b.size(); ++i) ASSERT_EQ(b[i], b[i - 1] + 1) << "at line " << i;
    // The second consumer starts where the first stopped, or repeats the first's last message
    // (handled, its ACK lost with the process).
    EXPECT_TRUE(b.front() == a.back() + 1 || b.front() == a.back())
        << "first ended at " << a.back() << ", second began at " << b.front();
    EXPECT_EQ(b.back(), kMessages - 1);
}

}  // namespace
}  // namespace peermq::fault
