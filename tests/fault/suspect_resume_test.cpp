// A consumer that goes quiet for a moment is *suspect* (wire.md §7): it is sent no new work, so
// a best-effort producer's queue fills and its send() blocks. When the consumer is heard again,
// the queue must move on at once: no ack will come to wake it (best effort has none), so the
// node itself must send what waits as soon as the consumer is alive again.
#include <thread>

#include "fault_support.hpp"

namespace peermq::fault {
namespace {

constexpr long long kMessages = 300;

TEST(SuspectResumeTest, ABlockedBestEffortQueueMovesOnWhenItsSuspectConsumerIsHeardAgain) {
    TempDir dir;
    const std::string q = "quiet";
    auto producer = make_node(node_options("producer"));
    auto queue = producer.queue(q, {.guarantee = Guarantee::best_effort, .max_length = 50}).value();
    TestNode worker(consumer_args("worker", q, dir.file("worker.log"), producer.address()));
    ASSERT_TRUE(worker.ready()) << worker.output();
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"worker"}, q); }, 15s));

    worker.kill(SIGSTOP);
    ASSERT_TRUE(wait_until([&] { return all_threads_stopped(worker.pid()); }, 5s));
    ASSERT_TRUE(
        wait_until([&] { return peer_state(producer, "worker") == PeerState::suspect; }, 5s))
        << describe(producer.peers());
    // Sent while it is suspect: the queue fills to max_length and send() blocks.
    std::atomic<long long> sent{0};
    std::thread sender([&] {
        for (long long i = 0; i < kMessages; ++i) {
            if (!queue.send(i).ok()) return;
            ++sent;
        }
    });
    const bool filled = wait_until([&] { return queue_stats(producer, q).depth >= 50; }, 5s);
    worker.kill(SIGCONT);
    EXPECT_TRUE(filled) << describe(queue_stats(producer, q));
    // Heard again within a heartbeat, before peer_timeout: alive, never down. Watched from
    // outside the producer (its sender thread and the worker's log): asking the producer for
    // its stats would be a command, and a command wakes its queues by itself.
    const auto handled = [&] { return read_log(dir.file("worker.log")).size(); };
    const bool drained = wait_until(
        [&] {
            return sent.load() == kMessages && handled() == static_cast<std::size_t>(kMessages);
        },
        10s);
    if (!drained) producer.close();  // unblocks the sender thread
    sender.join();
    ASSERT_TRUE(drained) << "sent " << sent.load() << " of " << kMessages << ", handled "
                         << handled();
}

// The benchmark's case: a flood fills the link to the consumer (its PUSH at the high-water
// mark: blocked), the consumer turns suspect, its link becomes writable again while it is still
// suspect (so nothing is sent then), and then a mere heartbeat makes it alive. Nothing then woke
// the queue: the benchmark's best-effort flood at 64 B stayed full for 10 s in 8 of 17 runs
// before the node pumped its queues after every change of its consumers, 0 of 8 after. This test
// drives the same sequence three times; it passed before the fix as well (the race is narrow),
// but a flood that stalls here fails it.
TEST(SuspectResumeTest, AFloodResumesAfterItsConsumerWasSuspectWhileItsLinkWasFull) {
    TempDir dir;
    const std::string q = "flood";
    constexpr long long kFlood = 200'000;
    auto producer = make_node(node_options("producer"));
    auto queue =
        producer.queue(q, {.guarantee = Guarantee::best_effort, .max_length = 1000}).value();
    TestNode worker(consumer_args("worker", q, dir.file("worker.log"), producer.address()));
    ASSERT_TRUE(worker.ready()) << worker.output();
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"worker"}, q); }, 15s));

    std::atomic<long long> sent{0};
    std::atomic<bool> failed{false};
    std::thread sender([&] {
        for (long long i = 0; i < kFlood; ++i) {
            if (!queue.send(i).ok()) {
                failed = true;
                return;
            }
            ++sent;
        }
    });
    for (int round = 0; round < 3 && !failed; ++round) {
        const long long before = sent.load();
        ASSERT_TRUE(wait_until([&] { return sent.load() > before + 5000 || sent == kFlood; }, 20s))
            << "round " << round << ": the flood stalled at " << sent.load();
        worker.kill(SIGSTOP);
        ASSERT_TRUE(wait_until([&] { return all_threads_stopped(worker.pid()); }, 5s));
        ASSERT_TRUE(
            wait_until([&] { return peer_state(producer, "worker") == PeerState::suspect; }, 5s));
        worker.kill(SIGCONT);
    }
    // No stats asked from here on (a command would wake the queue by itself).
    const bool done = wait_until([&] { return sent.load() == kFlood; }, 30s);
    if (!done) producer.close();
    sender.join();
    ASSERT_TRUE(done) << "the flood stalled at " << sent.load() << " of " << kFlood;
}

}  // namespace
}  // namespace peermq::fault
