// The sending side of work queues (reliability/sender.hpp) alone: no sockets, no clock. A fake
// port records the frames the sender hands it (decoded back, as a peer would read them), local
// deliveries, journal calls, dead letters and drops; time is whatever the test says it is.
// Covers credit, retries with backoff, redirects off a down consumer, late acks, TTL expiry at
// both ends, rejects and what a suspect peer gets (docs/spec/reliability.md).
#include "reliability/sender.hpp"

#include <map>
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

// One DATA the sender put on a link, alone or in a BATCH.
struct Delivery {
    NodeId to;
    MessageId id;
    std::uint32_t attempt = 0;
};

class FakePort final : public SenderPort {
public:
    bool send_to(Peer& peer, zmq::message_t& header, zmq::message_t* payload) override {
        if (full.contains(peer.id)) {
            peer.blocked = true;  // as the node's link does when ZeroMQ refuses a frame
            return false;
        }
        ++frames;
        Header h;
        EXPECT_FALSE(decode_header(header.data(), header.size(), h).has_value());
        if (h.kind == Kind::batch) {
            std::vector<BatchEntry> entries;
            EXPECT_FALSE(split_batch(payload->data(), payload->size(), h.seq, entries));
            for (const auto& entry : entries) {
                Header e;
                EXPECT_FALSE(decode_header(entry.header.data(), entry.header.size(), e));
                sent.push_back({peer.id, e.id, e.attempt});
            }
        } else {
            EXPECT_EQ(h.kind, Kind::data);
            sent.push_back({peer.id, h.id, h.attempt});
        }
        return true;
    }
    bool has_local_consumer(const std::string&) override { return false; }
    bool local_room(const std::string&) override { return false; }
    void deliver_local(const OutQueue&, const Outgoing&) override { ADD_FAILURE(); }
    bool journal_put(const OutQueue&, const Outgoing& m) override {
        journaled.insert(m.id);
        return true;
    }
    void journal_remove(const MessageId& id) override { journaled.erase(id); }
    void store_dead_letter(DeadLetter letter) override { dead.push_back(std::move(letter)); }
    void count_drop(Drop reason) override { ++drops[reason]; }
    QueueShared* queue_shared(std::uint32_t index) override {
        while (shared.size() <= index) {
            shared.push_back(std::make_unique<QueueShared>());
            shared.back()->name = "jobs";
            shared.back()->max_length = 1'000'000;
        }
        return shared[index].get();
    }
    ChannelStats* queue_stats(const std::string& name) override { return &stats[name]; }

    std::vector<Delivery> sent;
    std::size_t frames = 0;  // DATA and BATCH frames
    std::set<NodeId> full;   // links that refuse frames
    std::set<MessageId> journaled;
    std::vector<DeadLetter> dead;
    std::map<Drop, int> drops;
    std::vector<std::unique_ptr<QueueShared>> shared;
    std::map<std::string, ChannelStats> stats;
};

class SenderTest : public ::testing::Test {
protected:
    SenderTest() : sender(self, log, peers, port, now) {}

    Peer& consumer(std::uint32_t prefetch, std::size_t batch_max = 0) {
        auto peer = std::make_unique<Peer>();
        peer->id = NodeId::generate();
        peer->state = PeerState::alive;
        peer->batch_max = batch_max;
        peer->queues["jobs"].prefetch = prefetch;
        Peer& added = peers.add(std::move(peer));
        sender.peers_changed();
        return added;
    }
    void declare(QueueOptions options) {
        sender.declare(0, options);
        port.queue_shared(0)->outstanding = 0;
    }
    std::vector<MessageId> send(std::size_t n, bool with_receipt = false) {
        std::vector<MessageId> ids;
        for (std::size_t i = 0; i < n; ++i) {
            SendCmd cmd;
            cmd.queue = 0;
            cmd.id = MessageId::generate();
            cmd.payload = Payload::copy_of("job", 3);
            cmd.created_ms = now.unix_ms;
            if (with_receipt) {
                cmd.receipt = std::make_shared<std::promise<Result<Receipt>>>();
                receipts[cmd.id] = cmd.receipt;
            }
            ids.push_back(cmd.id);
            port.queue_shared(0)->outstanding.fetch_add(1);
            sender.accept(cmd, now);
        }
        sender.pump_all(now);
        return ids;
    }
    void advance(std::chrono::milliseconds by) {
        now.steady += by;
        now.unix_ms += by.count();
    }
    // Moves time to the sender's next deadline and lets it act.
    void run_next_deadline() {
        auto due = sender.next_due();
        ASSERT_TRUE(due.has_value());
        advance(std::chrono::ceil<std::chrono::milliseconds>(*due - now.steady));
        sender.expire(now);
    }
    std::size_t sent_to(const Peer& peer) const {
        std::size_t n = 0;
        for (const auto& d : port.sent) n += d.to == peer.id ? 1 : 0;
        return n;
    }
    ChannelStats& stats() { return port.stats["jobs"]; }
    Receipt receipt(const MessageId& id) {
        auto future = receipts.at(id)->get_future();
        EXPECT_EQ(future.wait_for(0s), std::future_status::ready);
        return future.get().value();
    }

    NodeId self = NodeId::generate();
    Logger log{"sender-test", LogLevel::off, LogFormat::logfmt, [](const LogRecord&) {}};
    PeerDirectory peers;
    FakePort port;
    Now now{Clock::Steady(std::chrono::hours(24)), 1'700'000'000'000};
    Sender sender;
    std::map<MessageId, ReceiptPromise> receipts;
};

QueueOptions reliable(std::uint32_t max_attempts = 5) {
    QueueOptions options;
    options.guarantee = Guarantee::at_least_once;
    options.ack_timeout = 1000ms;
    options.retry_initial = 100ms;
    options.retry_max = 400ms;
    options.max_attempts = max_attempts;
    return options;
}

TEST_F(SenderTest, CreditBoundsWhatEachConsumerHasInFlight) {
    declare(reliable());
    Peer& a = consumer(2);
    Peer& b = consumer(3);
    const auto ids = send(10);
    EXPECT_EQ(sent_to(a), 2u);
    EXPECT_EQ(sent_to(b), 3u);
    EXPECT_EQ(a.queues["jobs"].unacked, 2u);

    // An ack gives one credit back, and the next message takes it.
    sender.on_ack(a.id, std::vector<MessageId>{port.sent[0].id}, now);
    EXPECT_EQ(sent_to(a), 3u);
    EXPECT_EQ(sent_to(b), 3u);
    EXPECT_EQ(stats().acked, 1u);
    EXPECT_TRUE(!port.journaled.contains(port.sent[0].id)) << "an acked message leaves the outbox";
}

TEST_F(SenderTest, CreditIsClippedToTheQueuesMaxCreditAndCountedOnce) {
    QueueOptions options = reliable();
    options.max_credit = 4;
    declare(options);
    Peer& greedy = consumer(1000);
    send(10);
    EXPECT_EQ(sent_to(greedy), 4u);
    EXPECT_EQ(port.drops[Drop::credit_clipped], 1);
    sender.peers_changed();
    sender.pump_all(now);
    EXPECT_EQ(port.drops[Drop::credit_clipped], 1) << "once per claim, not per look";
}

TEST_F(SenderTest, AnUnackedDeliveryIsRetriedAfterItsTimeoutWithBackoffThenDeadLettered) {
    declare(reliable(/*max_attempts=*/3));
    Peer& only = consumer(10);
    const auto ids = send(1, /*with_receipt=*/true);
    ASSERT_EQ(port.sent.size(), 1u);

    // The ack timeout: a retry is scheduled, not sent at once.
    advance(999ms);
    sender.expire(now);
    EXPECT_EQ(port.sent.size(), 1u);
    advance(1ms);
    sender.expire(now);
    EXPECT_EQ(port.sent.size(), 1u) << "waits for its backoff";
    EXPECT_EQ(only.queues["jobs"].unacked, 0u) << "the credit came back at the timeout";
    auto due = sender.next_due();
    ASSERT_TRUE(due);
    EXPECT_GE(*due - now.steady, 50ms) << "at least half the first backoff (100 ms)";
    EXPECT_LE(*due - now.steady, 100ms);
    run_next_deadline();
    ASSERT_EQ(port.sent.size(), 2u);
    EXPECT_EQ(port.sent[1].id, ids[0]);
    EXPECT_EQ(port.sent[1].attempt, 2u) << "the only consumer, avoided but the fallback";
    EXPECT_EQ(stats().retried, 1u);

    run_next_deadline();  // second timeout
    run_next_deadline();  // its backoff: the third and last attempt
    ASSERT_EQ(port.sent.size(), 3u);
    EXPECT_EQ(port.sent[2].attempt, 3u);
    run_next_deadline();
    ASSERT_EQ(port.dead.size(), 1u);
    EXPECT_EQ(port.dead[0].reason, "max_attempts");
    EXPECT_EQ(port.dead[0].attempts, 3u);
    EXPECT_EQ(port.dead[0].last_error, "no ack within 1000 ms");
    EXPECT_EQ(receipt(ids[0]).outcome, Receipt::Outcome::dead_lettered);
    EXPECT_FALSE(sender.next_due().has_value()) << "nothing left to wait for";
}

TEST_F(SenderTest, ANackedMessageIsRetriedOnAnotherConsumer) {
    declare(reliable());
    Peer& a = consumer(1);
    Peer& b = consumer(1);
    const auto ids = send(1);
    ASSERT_EQ(port.sent.size(), 1u);
    Peer& first = port.sent[0].to == a.id ? a : b;
    Peer& other = &first == &a ? b : a;
    sender.on_nack(first.id, Kind::nack, ids, "handler failed", now);
    EXPECT_EQ(stats().nacked, 1u);
    run_next_deadline();
    ASSERT_EQ(port.sent.size(), 2u);
    EXPECT_EQ(port.sent[1].to, other.id);
    EXPECT_EQ(port.sent[1].attempt, 2u);
}

TEST_F(SenderTest, WorkInFlightOnADownConsumerMovesToAnotherInOrderWithoutCostingAnAttempt) {
    declare(reliable());
    Peer& a = consumer(5);
    const auto ids = send(3);
    ASSERT_EQ(sent_to(a), 3u);
    Peer& b = consumer(5);
    a.state = PeerState::down;
    sender.peers_changed();
    sender.redirect_from(a.id, now);
    ASSERT_EQ(sent_to(b), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(port.sent[3 + i].id, ids[i]) << "oldest first";
        EXPECT_EQ(port.sent[3 + i].attempt, 1u) << "a redirect is not the message's fault";
    }
    EXPECT_EQ(stats().redelivered, 3u);
    EXPECT_EQ(a.queues["jobs"].unacked, 0u);
}

TEST_F(SenderTest, ALateAckFromAnEarlierConsumerStillSettlesTheMessage) {
    declare(reliable());
    Peer& a = consumer(1);
    const auto ids = send(1, /*with_receipt=*/true);
    Peer& b = consumer(1);
    run_next_deadline();  // a's ack times out
    run_next_deadline();  // the retry goes to b (a is avoided)
    ASSERT_EQ(port.sent.size(), 2u);
    ASSERT_EQ(port.sent[1].to, b.id);

    sender.on_ack(a.id, ids, now);  // a did it after all
    EXPECT_EQ(receipt(ids[0]).outcome, Receipt::Outcome::acked);
    EXPECT_EQ(stats().acked, 1u);
    EXPECT_EQ(b.queues["jobs"].unacked, 0u) << "b's credit is given back too";
    sender.on_ack(b.id, ids, now);
    EXPECT_EQ(port.drops[Drop::ack_unknown_id], 1) << "the second ack finds nothing in flight";

    // An ack from a node that was never sent the message does not settle it.
    const auto more = send(1);
    sender.on_ack(NodeId::generate(), more, now);
    EXPECT_EQ(port.drops[Drop::ack_wrong_peer], 1);
}

TEST_F(SenderTest, ARejectDeadLettersAtOnce) {
    declare(reliable());
    Peer& a = consumer(1);
    const auto ids = send(1);
    sender.on_nack(a.id, Kind::reject, ids, "malformed order", now);
    ASSERT_EQ(port.dead.size(), 1u);
    EXPECT_EQ(port.dead[0].reason, "rejected");
    EXPECT_EQ(port.dead[0].last_error, "malformed order");
    EXPECT_EQ(a.queues["jobs"].unacked, 0u);
    EXPECT_FALSE(sender.next_due().has_value());
}

TEST_F(SenderTest, TtlExpiresWaitingMessagesAtTheSender) {
    QueueOptions options = reliable();
    options.ttl = 500ms;
    declare(options);
    send(2);  // no consumer: they wait
    advance(499ms);
    sender.expire_waiting(now);
    EXPECT_TRUE(port.dead.empty());
    advance(1ms);
    sender.expire_waiting(now);
    ASSERT_EQ(port.dead.size(), 2u);
    EXPECT_EQ(port.dead[0].reason, "expired");
    EXPECT_EQ(stats().expired, 2u);

    // Best effort: dropped and counted, not dead-lettered.
    QueueOptions fire_and_forget;
    fire_and_forget.guarantee = Guarantee::best_effort;
    fire_and_forget.ttl = 500ms;
    declare(fire_and_forget);
    send(1);
    advance(500ms);
    sender.expire_waiting(now);
    EXPECT_EQ(port.drops[Drop::ttl_expired], 1);
    EXPECT_EQ(port.dead.size(), 2u);
}

TEST_F(SenderTest, AMessageTheReceiverFoundExpiredIsDeadLetteredNotRetried) {
    QueueOptions options = reliable();
    options.ttl = 500ms;
    declare(options);
    Peer& a = consumer(1);
    const auto ids = send(1);
    advance(600ms);  // it reached the receiver after its deadline
    sender.on_nack(a.id, Kind::nack, ids, "expired", now);
    ASSERT_EQ(port.dead.size(), 1u);
    EXPECT_EQ(port.dead[0].reason, "expired");
    EXPECT_EQ(port.sent.size(), 1u);
}

TEST_F(SenderTest, ASuspectOrBlockedConsumerGetsNoNewWork) {
    declare(reliable());
    Peer& a = consumer(10);
    Peer& b = consumer(10);
    a.state = PeerState::suspect;
    send(3);
    EXPECT_EQ(sent_to(a), 0u);
    EXPECT_EQ(sent_to(b), 3u);

    port.full.insert(b.id);
    send(1);
    EXPECT_TRUE(b.blocked);
    EXPECT_EQ(sent_to(b), 3u) << "its link refused the frame: the message still waits";
    a.state = PeerState::alive;
    sender.pump_all(now);
    EXPECT_EQ(sent_to(a), 1u);
}

TEST_F(SenderTest, SmallMessagesLeaveInBatchesWithinTheConsumersCredit) {
    declare(reliable());
    Peer& a = consumer(/*prefetch=*/8, /*batch_max=*/64);
    send(20);
    EXPECT_EQ(sent_to(a), 8u);
    EXPECT_EQ(port.frames, 1u) << "one BATCH of 8";
    EXPECT_EQ(a.queues["jobs"].unacked, 8u);
}

}  // namespace
}  // namespace peermq::detail
