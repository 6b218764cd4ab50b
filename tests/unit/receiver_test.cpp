// The receiving side of work queues and topics (reliability/receiver.hpp) alone: admission (no
// consumer, payload limit, TTL, the handler queue's bound, effectively_once duplicates), and
// what handler outcomes send back. A fake port records answers and drops; time is the test's.
#include "reliability/receiver.hpp"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

struct Answer {
    NodeId to;
    Kind kind;
    MessageId id;
    std::string error;
};

class FakePort final : public ReceiverPort {
public:
    void answer(const NodeId& sender, Kind kind, const MessageId& id, std::string error) override {
        answers.push_back({sender, kind, id, std::move(error)});
    }
    void flush_acks_now() override { ++flushes; }
    void count_drop(Drop reason) override { ++drops[reason]; }
    ChannelStats* queue_stats(const std::string& name) override { return &stats[name]; }

    std::vector<Answer> answers;
    int flushes = 0;
    std::map<Drop, int> drops;
    std::map<std::string, ChannelStats> stats;
};

class ReceiverTest : public ::testing::Test {
protected:
    ReceiverTest() {
        options.max_handler_queue = 3;
        options.ack_batch_size = 64;
        receiver = std::make_unique<Receiver>(self, options, log, port);
        ConsumeOptions consume;
        consume.prefetch = 100;
        receiver->consume("jobs", 0, consume, load);
    }
    Header data(std::uint32_t flags, std::int64_t deadline_ms = 0) {
        Header h;
        h.kind = Kind::data;
        h.sender = sender;
        h.id = MessageId::generate();
        h.channel = "jobs";
        h.flags = flags;
        h.attempt = 1;
        h.deadline_ms = deadline_ms;
        return h;
    }
    HandlerOutcome outcome(const Header& h, HandlerOutcome::Result result) {
        HandlerOutcome out;
        out.slot = 0;
        out.result = result;
        out.flags = h.flags;
        out.sender = h.sender;
        out.id = h.id;
        out.error = result == HandlerOutcome::Result::ack ? "" : "boom";
        return out;
    }

    NodeId self = NodeId::generate();
    NodeId sender = NodeId::generate();
    NodeOptions options;
    Logger log{"receiver-test", LogLevel::off, LogFormat::logfmt, [](const LogRecord&) {}};
    FakePort port;
    SlotLoad load;
    std::unique_ptr<Receiver> receiver;
    Now now{Clock::Steady(std::chrono::hours(1)), 1'700'000'000'000};
    static constexpr std::uint32_t kAcked = kFlagAckRequested;
    static constexpr std::uint32_t kOnce = kFlagAckRequested | kFlagDedupe;
};

TEST_F(ReceiverTest, DataForAQueueWithNoConsumerHereIsNacked) {
    Header h = data(kAcked);
    h.channel = "elsewhere";
    EXPECT_EQ(receiver->admit(h, 3, now), nullptr);
    EXPECT_EQ(port.drops[Drop::data_no_consumer], 1);
    ASSERT_EQ(port.answers.size(), 1u);
    EXPECT_EQ(port.answers[0].kind, Kind::nack);
    EXPECT_EQ(port.answers[0].to, sender);

    Header best_effort = data(0);
    best_effort.channel = "elsewhere";
    receiver->admit(best_effort, 3, now);
    EXPECT_EQ(port.answers.size(), 1u) << "a best-effort sender asked for no answer";
}

TEST_F(ReceiverTest, ExpiredDataIsRefusedWithExpiredSoTheSenderDeadLettersIt) {
    Header late = data(kAcked, now.unix_ms);
    EXPECT_EQ(receiver->admit(late, 3, now), nullptr);
    EXPECT_EQ(port.drops[Drop::ttl_expired], 1);
    ASSERT_EQ(port.answers.size(), 1u);
    EXPECT_EQ(port.answers[0].error, "expired");
    EXPECT_EQ(port.stats["jobs"].expired, 1u);

    Header in_time = data(kAcked, now.unix_ms + 1);
    EXPECT_NE(receiver->admit(in_time, 3, now), nullptr);
}

TEST_F(ReceiverTest, AFullHandlerQueueRefusesMoreUntilItIsSubmittedAndDrains) {
    for (int i = 0; i < 3; ++i) {
        Header h = data(kAcked);
        ASSERT_NE(receiver->admit(h, 3, now), nullptr);
    }
    Header fourth = data(kAcked);
    EXPECT_EQ(receiver->admit(fourth, 3, now), nullptr);
    EXPECT_EQ(port.drops[Drop::inbox_full], 1);
    EXPECT_EQ(port.answers.back().kind, Kind::nack) << "a reliable message is NACKed";

    // Handed to the dispatcher, whose load says they are still queued: still full.
    load.jobs = 3;
    receiver->jobs().clear();
    receiver->submitted();
    Header fifth = data(kAcked);
    EXPECT_EQ(receiver->admit(fifth, 3, now), nullptr);
    load.jobs = 0;  // the handler caught up
    receiver->submitted();
    Header sixth = data(kAcked);
    EXPECT_NE(receiver->admit(sixth, 3, now), nullptr);
}

TEST_F(ReceiverTest, PayloadsOverTheLimitAreRefused) {
    options.max_payload_bytes = 10;
    Header h = data(kAcked);
    EXPECT_EQ(receiver->admit(h, 11, now), nullptr);
    EXPECT_EQ(port.drops[Drop::frame_oversized_payload], 1);
}

TEST_F(ReceiverTest, EffectivelyOnceDuplicatesAreDroppedAndReackedOnceHandled) {
    Header first = data(kOnce);
    const Header copy = first;
    ASSERT_NE(receiver->admit(first, 3, now), nullptr);
    Header while_running = copy;
    EXPECT_EQ(receiver->admit(while_running, 3, now), nullptr) << "its first copy is running";
    EXPECT_EQ(port.drops[Drop::dedupe_duplicate], 1);
    EXPECT_EQ(receiver->acks().pending(), 0u) << "the running copy will be acked";

    receiver->settle(outcome(copy, HandlerOutcome::Result::ack), now);
    EXPECT_EQ(receiver->acks().pending(), 1u);
    Header after = copy;
    EXPECT_EQ(receiver->admit(after, 3, now), nullptr) << "handled: not run again";
    EXPECT_EQ(port.drops[Drop::dedupe_duplicate], 2);
    EXPECT_EQ(receiver->acks().pending(), 2u) << "acked again: the first ack may be lost";
    EXPECT_EQ(port.stats["jobs"].duplicates, 2u);
}

TEST_F(ReceiverTest, AFailedEffectivelyOnceRunIsRunAgainOnRetry) {
    Header first = data(kOnce);
    const Header copy = first;
    ASSERT_NE(receiver->admit(first, 3, now), nullptr);
    receiver->settle(outcome(copy, HandlerOutcome::Result::nack), now);
    ASSERT_EQ(port.answers.size(), 1u);
    EXPECT_EQ(port.answers[0].kind, Kind::nack);
    Header retry = copy;
    EXPECT_NE(receiver->admit(retry, 3, now), nullptr) << "only success is remembered";
}

TEST_F(ReceiverTest, OutcomesBecomeBatchedAcksAndImmediateRejects) {
    Header a = data(kAcked);
    const Header a_copy = a;
    receiver->admit(a, 3, now);
    receiver->settle(outcome(a_copy, HandlerOutcome::Result::ack), now);
    EXPECT_EQ(receiver->acks().pending(), 1u);
    EXPECT_TRUE(port.answers.empty()) << "acks wait for their batch";

    Header b = data(kAcked);
    const Header b_copy = b;
    receiver->admit(b, 3, now);
    receiver->settle(outcome(b_copy, HandlerOutcome::Result::reject), now);
    ASSERT_EQ(port.answers.size(), 1u);
    EXPECT_EQ(port.answers[0].kind, Kind::reject);
    EXPECT_EQ(port.answers[0].error, "boom");

    Header best_effort = data(0);
    const Header be_copy = best_effort;
    receiver->admit(best_effort, 3, now);
    receiver->settle(outcome(be_copy, HandlerOutcome::Result::nack), now);
    EXPECT_EQ(port.answers.size(), 1u) << "best effort: nothing to answer";
}

TEST_F(ReceiverTest, AFullAckBatchAsksToBeFlushedAtOnce) {
    ConsumeOptions small;
    small.prefetch = 4;  // batches of 2
    receiver->consume("jobs", 0, small, load);
    for (int i = 0; i < 2; ++i) {
        Header h = data(kAcked);
        const Header copy = h;
        receiver->admit(h, 3, now);
        receiver->settle(outcome(copy, HandlerOutcome::Result::ack), now);
    }
    EXPECT_EQ(port.flushes, 1);
}

TEST_F(ReceiverTest, TopicMessagesGoToEveryMatchingSubscriptionWithRoom) {
    SlotLoad prices_load;
    SlotLoad all_load;
    Topics topics(self, options.max_payload_bytes, 1, TopicHistory::Limits{});
    topics.subscribe({"prices.", 1, &prices_load});
    topics.subscribe({"", 2, &all_load});
    topics.subscribe({"news.", 3, &all_load});
    ChannelStats stats;
    TopicMessage m{Message{}, &stats};
    m.message.channel = "prices.eurusd";
    receiver->deliver_topic(m, topics.subscriptions());
    EXPECT_EQ(stats.delivered, 2u);
    ASSERT_EQ(receiver->jobs().size(), 2u);
    EXPECT_EQ(receiver->jobs()[0].first, 1u);
    EXPECT_EQ(receiver->jobs()[1].first, 2u);

    prices_load.jobs = 3;  // that handler is full
    receiver->jobs().clear();
    receiver->submitted();
    receiver->deliver_topic(m, topics.subscriptions());
    EXPECT_EQ(port.drops[Drop::inbox_full], 1);
    EXPECT_EQ(receiver->jobs().size(), 1u);
}

}  // namespace
}  // namespace peermq::detail
