// BATCH frames (docs/spec/wire.md §batch): small messages waiting for the same peer travel in one
// ZeroMQ message, arrive exactly as single DATA frames would, and a bad batch or a bad entry is
// counted by reason while real traffic keeps flowing.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "envelope.hpp"
#include "peermq/peermq.hpp"
#include "wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::wait_until;
namespace detail = peermq::detail;

namespace {

bool knows(peermq::Node& node, const std::string& name) {
    for (const auto& p : node.peers()) {
        if (p.name == name && p.state == peermq::PeerState::alive && !p.queues.empty()) return true;
    }
    return false;
}

std::string encode(const detail::Header& header) {
    msgpack::sbuffer buffer;
    detail::encode_header(header, buffer);
    return {buffer.data(), buffer.size()};
}

std::string batch_header(const peermq::NodeId& sender, std::uint64_t count) {
    detail::Header h;
    h.kind = detail::Kind::batch;
    h.sender = sender;
    h.seq = count;
    return encode(h);
}

std::string entry(const std::string& header, const std::string& payload) {
    msgpack::sbuffer out;
    detail::append_batch_entry(header, payload, out);
    return {out.data(), out.size()};
}

void send(zmq::socket_t& socket, const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
        zmq::message_t frame(frames[i].data(), frames[i].size());
        socket.send(frame,
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

std::uint64_t frames(const std::vector<peermq::PeerInfo>& peers, bool sent) {
    std::uint64_t n = 0;
    for (const auto& p : peers) n += sent ? p.frames_sent : p.frames_received;
    return n;
}

class BatchBurst : public ::testing::TestWithParam<peermq::Guarantee> {};

}  // namespace

TEST_P(BatchBurst, ArrivesCompleteOverTwoConsumersInFewerFramesThanMessages) {
    // Declared before the nodes: handlers may still run until the nodes are destroyed.
    std::mutex mutex;
    std::multiset<int> got;
    auto a = peermq::Node::create({.name = "a", .interface = "lo"}).value();
    auto b = peermq::Node::create({.name = "b", .interface = "lo"}).value();
    auto producer = peermq::Node::create({.name = "producer",
                                          .interface = "lo",
                                          .peers = {a.inbox_endpoint(), b.inbox_endpoint()}})
                        .value();
    auto handler = [&](peermq::Delivery& d) {
        std::lock_guard lock(mutex);
        got.insert(d.as<int>());
    };
    ASSERT_TRUE(a.consume("burst", handler).ok());
    ASSERT_TRUE(b.consume("burst", handler).ok());
    ASSERT_TRUE(wait_until([&] { return knows(producer, "a") && knows(producer, "b"); }));
    auto queue = producer.queue("burst", {.guarantee = GetParam()}).value();

    constexpr int kMessages = 10'000;
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until(
        [&] {
            std::lock_guard lock(mutex);
            return got.size() >= kMessages;
        },
        30s));
    {
        std::lock_guard lock(mutex);
        // No duplicates, but those of at_least_once retries (none unless the machine is so slow
        // that an ack misses its timeout).
        const auto stats = producer.stats().queues["burst"];
        EXPECT_LE(got.size() - kMessages, stats.retried + stats.redelivered);
        for (int i = 0; i < kMessages; ++i) ASSERT_GE(got.count(i), 1u) << i;
    }
    const std::uint64_t sent = frames(producer.peers(), true);
    const std::uint64_t received = frames(a.peers(), false) + frames(b.peers(), false);
    EXPECT_LT(sent, static_cast<std::uint64_t>(kMessages));
    EXPECT_LT(received, static_cast<std::uint64_t>(kMessages));
    EXPECT_EQ(a.stats().bad_frames + b.stats().bad_frames, 0u);
    if (GetParam() != peermq::Guarantee::best_effort) {
        EXPECT_TRUE(queue.flush(10s).ok());
    }
}

INSTANTIATE_TEST_SUITE_P(Guarantees, BatchBurst,
                         ::testing::Values(peermq::Guarantee::best_effort,
                                           peermq::Guarantee::at_least_once),
                         [](const auto& info) {
                             return info.param == peermq::Guarantee::best_effort
                                        ? std::string("best_effort")
                                        : std::string("at_least_once");
                         });

TEST(Batch, BadBatchesAndBadEntriesAreCountedByReasonWhileRealTrafficFlows) {
    auto consumer = peermq::Node::create({.name = "target", .interface = "lo"}).value();
    auto producer =
        peermq::Node::create(
            {.name = "producer", .interface = "lo", .peers = {consumer.inbox_endpoint()}})
            .value();
    std::atomic<int> real{0};
    std::atomic<int> injected{0};
    ASSERT_TRUE(consumer
                    .consume("work",
                             [&](peermq::Delivery& d) {
                                 if (d.message().payload.view() == "injected") {
                                     ++injected;
                                 } else {
                                     ++real;
                                 }
                             })
                    .ok());
    ASSERT_TRUE(wait_until([&] { return knows(producer, "target"); }));
    auto work = producer.queue("work", {.guarantee = peermq::Guarantee::best_effort}).value();

    zmq::context_t context;
    zmq::socket_t attacker(context, zmq::socket_type::push);
    attacker.set(zmq::sockopt::linger, 0);
    attacker.connect(consumer.inbox_endpoint());

    const auto sender = peermq::NodeId::generate();
    detail::Header data;
    data.kind = detail::Kind::data;
    data.sender = sender;
    data.channel = "work";
    auto good = [&] {
        data.id = peermq::MessageId::generate();
        return entry(encode(data), "injected");
    };
    detail::Header ack = data;
    ack.kind = detail::Kind::ack;
    detail::Header stranger = data;
    stranger.sender = peermq::NodeId::generate();
    const std::string garbage_entry = entry("\xc1 not msgpack", "x");

    constexpr int kRounds = 20;
    constexpr int kMessages = 2000;
    int sent = 0;
    for (int round = 0; round < kRounds; ++round) {
        const std::string two = good() + good();
        send(attacker, {batch_header(sender, 2)});  // frame.truncated
        send(attacker,
             {batch_header(sender, 2), two.substr(0, two.size() - 1)});         // frame.bad_batch
        send(attacker, {batch_header(sender, 3), two});                         // frame.bad_batch
        send(attacker, {batch_header(sender, 1), two});                         // frame.bad_batch
        send(attacker, {batch_header(sender, 0), ""});                          // frame.bad_batch
        send(attacker, {batch_header(sender, 65), std::string(65 * 8, '\0')});  // frame.bad_batch
        send(attacker, {batch_header(sender, 2), two + "x"});                   // frame.bad_batch
        send(attacker, {batch_header(sender, 1), "\xff\xff\xff\xff"});          // frame.bad_batch
        // Bad entries among good ones: only the bad ones are dropped.
        send(attacker, {batch_header(sender, 5), good() + garbage_entry + entry(encode(ack), "") +
                                                     entry(encode(stranger), "x") + good()});
        for (int i = 0; i < kMessages / kRounds; ++i, ++sent) ASSERT_TRUE(work.send(sent).ok());
    }
    ASSERT_TRUE(wait_until([&] { return real == kMessages && injected == 2 * kRounds; }, 30s))
        << real << " real, " << injected << " injected";

    peermq::NodeStats stats;
    ASSERT_TRUE(wait_until([&] {
        stats = consumer.stats();
        return stats.dropped["frame.bad_batch_entry"] == 2u * kRounds;
    })) << stats.dropped["frame.bad_batch_entry"];
    EXPECT_EQ(stats.dropped["frame.truncated"], 1u * kRounds);
    EXPECT_EQ(stats.dropped["frame.bad_batch"], 7u * kRounds);
    EXPECT_EQ(stats.dropped["frame.garbage"], 1u * kRounds);
    EXPECT_EQ(stats.bad_frames, 11u * kRounds);
}

TEST(Batch, BigPayloadsMixedWithSmallOnesArriveIntact) {
    std::mutex mutex;  // before the nodes: handlers may run until the nodes are destroyed
    std::vector<std::string> got;
    auto consumer = peermq::Node::create({.name = "target", .interface = "lo"}).value();
    auto producer =
        peermq::Node::create(
            {.name = "producer", .interface = "lo", .peers = {consumer.inbox_endpoint()}})
            .value();
    ASSERT_TRUE(consumer
                    .consume("mixed",
                             [&](peermq::Delivery& d) {
                                 std::lock_guard lock(mutex);
                                 got.emplace_back(d.message().payload.view());
                             })
                    .ok());
    ASSERT_TRUE(wait_until([&] { return knows(producer, "target"); }));
    auto queue = producer.queue("mixed").value();

    const std::size_t sizes[] = {0, 10, 64, 2047, 2048, 2049, 3000, 65536, 200'000, 1, 1024};
    std::multiset<std::string> expected;
    constexpr int kMessages = 1100;
    for (int i = 0; i < kMessages; ++i) {
        const std::size_t size = sizes[i % std::size(sizes)];
        std::string payload(size, '\0');
        for (std::size_t j = 0; j < size; ++j) payload[j] = static_cast<char>('a' + (i + j) % 26);
        if (size >= 8) payload.replace(0, 8, std::to_string(10'000'000 + i).substr(0, 8));
        expected.insert(payload);
        ASSERT_TRUE(queue.send_payload(peermq::Payload::from_string(payload)).ok());
    }
    ASSERT_TRUE(wait_until(
        [&] {
            std::lock_guard lock(mutex);
            return got.size() >= kMessages;
        },
        30s));
    ASSERT_TRUE(queue.flush(10s).ok());
    const auto stats = producer.stats().queues["mixed"];
    std::lock_guard lock(mutex);
    // Duplicates only from retries (an ack that missed its timeout on a very slow machine).
    EXPECT_LE(got.size() - kMessages, stats.retried + stats.redelivered);
    // Every payload arrived intact (sizes 0 and 1 repeat, so compare the distinct ones).
    const std::set<std::string> distinct(got.begin(), got.end());
    const std::set<std::string> wanted(expected.begin(), expected.end());
    EXPECT_TRUE(distinct == wanted)
        << distinct.size() << " distinct payloads arrived of " << wanted.size();
    EXPECT_GE(got.size(), expected.size());
    EXPECT_EQ(consumer.stats().bad_frames, 0u);
}
