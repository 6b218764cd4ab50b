// Peers that claim more than is theirs: a consumer advertising a huge prefetch, a publisher
// sending payloads past the subscriber's limit. A sender clips a claim to its queue's
// max_credit; a subscriber holds topics to max_payload_bytes like queues (docs/spec/wire.md §6,
// §8.1; docs/spec/reliability.md, credit).
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using peermq::testing::dropped;
using peermq::testing::wait_until;
namespace detail = peermq::detail;

namespace {

// A consumer spoken by hand: it binds a PULL for the producer's frames (and a PUB, which
// publishes nothing), claims a queue in its HELLO with whatever prefetch it likes, and never
// acks. A CURVE peer of its own key, as the producer's links to it ask: its PUSH a client of the
// producer's key, its PULL and PUB servers with its own.
class GreedyConsumer {
public:
    GreedyConsumer(const peermq::Node& producer, std::uint32_t prefetch)
        : sockets_(producer.inbox_endpoint(), producer.public_key()), prefetch_(prefetch) {}

    // Its HELLO, again and again (as an attacker would, every 0.3 s): it stays alive.
    void hello() {
        detail::Hello hello = sockets_.hello("greedy");
        hello.queues.push_back(detail::QueueAd{"work", prefetch_});
        hello.batch = true;
        hello.batch_max = detail::kMaxBatchEntries;
        peermq::testing::send_hello(sockets_.to_node, hello, sockets_.identity.id);
    }

    // Reads what arrived; returns the number of DATA messages taken so far.
    std::size_t drain() {
        zmq::message_t header;
        zmq::message_t body;
        while (sockets_.inbox.recv(header, zmq::recv_flags::dontwait)) {
            bool more = header.more();
            if (more) {
                (void)sockets_.inbox.recv(body);
                more = body.more();
            }
            detail::Header decoded;
            if (!detail::decode_header(header.data(), header.size(), decoded)) {
                if (decoded.kind == detail::Kind::data) taken_ += 1;
                if (decoded.kind == detail::Kind::batch) taken_ += decoded.seq;
            }
        }
        return taken_;
    }

private:
    peermq::testing::HandSockets sockets_;
    std::uint32_t prefetch_;
    std::size_t taken_ = 0;
};

}  // namespace

TEST(GreedyPeers, AConsumerClaimingAHugePrefetchGetsAtMostTheQueuesMaxCredit) {
    constexpr int kMessages = 20000;
    constexpr std::uint32_t kMaxCredit = 1000;
    auto producer = peermq::Node::create({.name = "producer", .interface = "lo"}).value();
    auto honest =
        peermq::Node::create({.name = "honest", .interface = "lo", .peers = {producer.address()}})
            .value();
    std::atomic<int> handled{0};
    ASSERT_TRUE(honest.consume("work", [&](peermq::Delivery&) { ++handled; }).ok());
    GreedyConsumer greedy(producer, 1'000'000);
    greedy.hello();
    ASSERT_TRUE(wait_until([&] {
        int consumers = 0;
        for (const auto& peer : producer.peers()) {
            if (peer.state == peermq::PeerState::alive && peer.queues.size() == 1) ++consumers;
        }
        return consumers == 2;
    }));
    // No retries while the test runs: what the greedy consumer holds, it keeps.
    auto work =
        producer
            .queue("work", {.ack_timeout = 60s, .max_length = kMessages, .max_credit = kMaxCredit})
            .value();
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(work.send(i).ok());
    auto last_hello = std::chrono::steady_clock::now();
    std::size_t taken = 0;
    ASSERT_TRUE(wait_until(
        [&] {
            if (std::chrono::steady_clock::now() - last_hello > 300ms) {
                greedy.hello();
                last_hello = std::chrono::steady_clock::now();
            }
            taken = greedy.drain();
            return taken + static_cast<std::size_t>(handled.load()) == kMessages;
        },
        30s))
        << "greedy took " << taken << ", honest handled " << handled;
    EXPECT_LE(taken, kMaxCredit);
    EXPECT_GE(handled.load(), kMessages - static_cast<int>(kMaxCredit));
    EXPECT_GT(dropped(producer.stats(), "credit.clipped"), 0u);
}

TEST(GreedyPeers, ATopicPayloadOverTheSubscribersLimitIsDroppedAndCounted) {
    auto subscriber =
        peermq::Node::create({.name = "subscriber", .interface = "lo", .max_payload_bytes = 1024})
            .value();
    auto publisher = peermq::Node::create(
                         {.name = "publisher", .interface = "lo", .peers = {subscriber.address()}})
                         .value();
    std::mutex mutex;
    std::vector<std::size_t> sizes;
    ASSERT_TRUE(subscriber
                    .subscribe("t.",
                               [&](const peermq::Message& m) {
                                   std::lock_guard lock(mutex);
                                   sizes.push_back(m.payload.size());
                               })
                    .ok());
    // The subscription reaches the publisher's PUB only once its SUB is connected: publish
    // small messages until one arrives.
    ASSERT_TRUE(wait_until([&] {
        (void)publisher.publish_payload("t.small", peermq::Payload::copy_of("x", 1));
        std::lock_guard lock(mutex);
        return !sizes.empty();
    }));
    const std::string big(1025, 'b');
    ASSERT_TRUE(
        publisher.publish_payload("t.big", peermq::Payload::copy_of(big.data(), big.size())).ok());
    ASSERT_TRUE(publisher.publish_payload("t.after", peermq::Payload::copy_of("end", 3)).ok());
    // One PUB/SUB connection delivers in order: once "end" is here, the big one was handled.
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return std::find(sizes.begin(), sizes.end(), 3u) != sizes.end();
    }));
    {
        std::lock_guard lock(mutex);
        EXPECT_EQ(std::count(sizes.begin(), sizes.end(), 1025u), 0);
    }
    EXPECT_EQ(dropped(subscriber.stats(), "frame.oversized_payload"), 1u);
}
