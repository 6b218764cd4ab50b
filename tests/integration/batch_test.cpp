// BATCH frames (docs/spec/wire.md §batch): small messages waiting for the same peer travel in one
// ZeroMQ message, arrive exactly as single DATA frames would, and a bad batch or a bad entry is
// counted by reason while real traffic keeps flowing.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using namespace peermq::testing;
namespace detail = peermq::detail;

namespace {

bool knows(peermq::Node& node, const std::string& name) {
    for (const auto& p : node.peers()) {
        if (p.name == name && p.state == peermq::PeerState::alive && !p.queues.empty()) return true;
    }
    return false;
}

std::string batch_header(const peermq::NodeId& sender, std::uint64_t count) {
    detail::Header h;
    h.kind = detail::Kind::batch;
    h.sender = sender;
    h.seq = count;
    return header_frame(h);
}

std::string entry(const std::string& header, const std::string& payload) {
    msgpack::sbuffer out;
    detail::append_batch_entry(header, payload, out);
    return {out.data(), out.size()};
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
    auto producer =
        peermq::Node::create(
            {.name = "producer", .interface = "lo", .peers = {a.address(), b.address()}})
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
        peermq::Node::create({.name = "producer", .interface = "lo", .peers = {consumer.address()}})
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

    // A CURVE peer speaking as itself (the id its key gives); a batch claiming another sender is
    // auth.sender_mismatch before anything in it is looked at.
    const FakeIdentity identity = fake_identity();
    zmq::context_t context;
    zmq::socket_t attacker(context, zmq::socket_type::push);
    attacker.set(zmq::sockopt::linger, 0);
    curve_client(attacker, consumer.public_key(), identity);
    attacker.connect(consumer.inbox_endpoint());

    const auto sender = identity.id;
    const auto spoofed = peermq::NodeId::generate();
    detail::Header data;
    data.kind = detail::Kind::data;
    data.sender = sender;
    data.channel = "work";
    auto good = [&] {
        data.id = peermq::MessageId::generate();
        return entry(header_frame(data), "injected");
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
        send_frames(attacker, {batch_header(sender, 2)});  // frame.truncated
        send_frames(attacker,
                    {batch_header(sender, 2), two.substr(0, two.size() - 1)});  // frame.bad_batch
        send_frames(attacker, {batch_header(sender, 3), two});                  // frame.bad_batch
        send_frames(attacker, {batch_header(sender, 1), two});                  // frame.bad_batch
        send_frames(attacker, {batch_header(sender, 0), ""});                   // frame.bad_batch
        constexpr std::size_t kOver = detail::kMaxBatchEntries + 1;
        send_frames(attacker,
                    {batch_header(sender, kOver), std::string(kOver * 8, '\0')});  // bad_batch
        send_frames(attacker, {batch_header(sender, 2), two + "x"});           // frame.bad_batch
        send_frames(attacker, {batch_header(sender, 1), "\xff\xff\xff\xff"});  // frame.bad_batch
        send_frames(attacker, {batch_header(spoofed, 2), two});  // auth.sender_mismatch
        // Bad entries among good ones: only the bad ones are dropped.
        send_frames(attacker, {batch_header(sender, 5),
                               good() + garbage_entry + entry(header_frame(ack), "") +
                                   entry(header_frame(stranger), "x") + good()});
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
    EXPECT_EQ(stats.dropped["auth.sender_mismatch"], 1u * kRounds);
    EXPECT_EQ(stats.bad_frames, 12u * kRounds);
}

TEST(Batch, BigPayloadsMixedWithSmallOnesArriveIntact) {
    std::mutex mutex;  // before the nodes: handlers may run until the nodes are destroyed
    std::vector<std::string> got;
    auto consumer = peermq::Node::create({.name = "target", .interface = "lo"}).value();
    auto producer =
        peermq::Node::create({.name = "producer", .interface = "lo", .peers = {consumer.address()}})
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

namespace {

// A peer spoken by hand over raw ZeroMQ, to see the frames a node sends: an inbox (PULL) and a
// pub socket (nothing is published) on loopback, and a PUSH to the node's inbox on which it says
// HELLO as a node would. A CURVE peer of its own key, like a node: its PUSH a client of the
// node's key, its inbox and pub servers with the key the node's links will ask for.
class HandPeer {
public:
    explicit HandPeer(const peermq::Node& node) {
        for (zmq::socket_t* socket : {&inbox_, &pub_, &out_}) socket->set(zmq::sockopt::linger, 0);
        curve_server(inbox_, identity_);
        curve_server(pub_, identity_);
        inbox_port_ = bind(inbox_);
        pub_port_ = bind(pub_);
        curve_client(out_, node.public_key(), identity_);
        out_.connect(node.inbox_endpoint());
    }

    const peermq::NodeId& id() const { return identity_.id; }

    // `batch_max` 0: the HELLO says `batch` without `batch_max`, as version 1 did.
    void hello(std::vector<detail::QueueAd> queues, std::uint32_t batch_max) {
        detail::Hello hello;
        hello.name = "by-hand";
        hello.cluster = "default";
        hello.host = "127.0.0.1";
        hello.inbox_port = inbox_port_;
        hello.pub_port = pub_port_;
        hello.queues = std::move(queues);
        hello.heartbeat_ms = 1000;
        hello.batch = true;
        hello.batch_max = batch_max;
        peermq::testing::send_hello(out_, hello, identity_.id);
    }

    void send_frames(const std::vector<std::string>& frames) {
        peermq::testing::send_frames(out_, frames);
    }

    // The next frame of `kind` that reaches the inbox (others are skipped), with its second
    // frame; nullopt when none came in time.
    std::optional<std::pair<detail::Header, std::string>> next(detail::Kind kind) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            zmq::pollitem_t item{inbox_.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, 100ms);
            if (!(item.revents & ZMQ_POLLIN)) continue;
            zmq::message_t header_frame;
            (void)inbox_.recv(header_frame);
            std::string second;
            while (header_frame.more()) {
                zmq::message_t part;
                (void)inbox_.recv(part);
                second = part.to_string();
                if (!part.more()) break;
            }
            detail::Header header;
            if (detail::decode_header(header_frame.data(), header_frame.size(), header)) continue;
            if (header.kind == kind) return std::make_pair(std::move(header), std::move(second));
        }
        return std::nullopt;
    }

private:
    static std::uint16_t bind(zmq::socket_t& socket) {
        socket.bind("tcp://127.0.0.1:*");
        const std::string endpoint = socket.get(zmq::sockopt::last_endpoint);
        return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
    }

    FakeIdentity identity_ = fake_identity();
    zmq::context_t context_;
    zmq::socket_t inbox_{context_, zmq::socket_type::pull};
    zmq::socket_t pub_{context_, zmq::socket_type::pub};
    zmq::socket_t out_{context_, zmq::socket_type::push};
    std::uint16_t inbox_port_ = 0;
    std::uint16_t pub_port_ = 0;
};

}  // namespace

TEST(Batch, APeerGetsAsManyEntriesInOneBatchAsItsHelloAllows) {
    struct Case {
        std::uint32_t batch_max;  // what the HELLO says; 0: nothing
        std::uint64_t entries;    // what the first BATCH then carries
    };
    // 1000 messages wait for the queue's first consumer, so its first BATCH is as full as allowed.
    for (const Case c : {Case{0, detail::kBatchEntriesDefault}, Case{100, 100},
                         Case{100'000, detail::kMaxBatchEntries}}) {
        auto producer = peermq::Node::create({.name = "producer", .interface = "lo"}).value();
        auto work = producer.queue("work", {.guarantee = peermq::Guarantee::best_effort}).value();
        for (int i = 0; i < 1000; ++i) ASSERT_TRUE(work.send(std::to_string(i)).ok());

        HandPeer consumer(producer);
        consumer.hello({{"work", 1000}}, c.batch_max);
        auto batch = consumer.next(detail::Kind::batch);
        ASSERT_TRUE(batch.has_value()) << "batch_max " << c.batch_max;
        EXPECT_EQ(batch->first.seq, c.entries) << "batch_max " << c.batch_max;
        std::vector<detail::BatchEntry> entries;
        ASSERT_FALSE(detail::split_batch(batch->second.data(), batch->second.size(),
                                         batch->first.seq, entries));
        detail::Header first;
        ASSERT_FALSE(
            detail::decode_header(entries[0].header.data(), entries[0].header.size(), first));
        auto text = [](std::string_view payload) {  // send() packed it as MessagePack
            return msgpack::unpack(payload.data(), payload.size())->as<std::string>();
        };
        EXPECT_EQ(text(entries[0].payload), "0");  // in the order sent
        EXPECT_EQ(text(entries.back().payload), std::to_string(c.entries - 1));
    }
}

TEST(Batch, AcksLeaveInBatchesOfAtMostHalfTheConsumersPrefetch) {
    // The default ack_batch_size (256) is far above this consumer's credit (8): a sender would
    // otherwise get its credit back only when the handlers run dry.
    auto node = peermq::Node::create({.name = "consumer", .interface = "lo"}).value();
    std::promise<void> open;
    std::shared_future<void> gate = open.get_future().share();
    std::atomic<int> handled{0};
    ASSERT_TRUE(node.consume("work",
                             [&](peermq::Delivery&) {
                                 if (handled.fetch_add(1) == 0) gate.wait();
                             },
                             {.prefetch = 8})
                    .ok());

    HandPeer sender(node);
    sender.hello({}, 0);
    ASSERT_TRUE(sender.next(detail::Kind::hello).has_value());  // it knows the sender now
    std::set<peermq::MessageId> unacked;
    for (int i = 0; i < 8; ++i) {
        detail::Header data;
        data.kind = detail::Kind::data;
        data.sender = sender.id();
        data.id = peermq::MessageId::generate();
        data.channel = "work";
        data.flags = detail::kFlagAckRequested;
        data.created_ms = peermq::system_clock()->unix_ms();
        unacked.insert(data.id);
        sender.send_frames({header_frame(data), "payload"});
    }
    // All eight wait behind the first handler call, then run in one go.
    ASSERT_TRUE(wait_until([&] { return node.stats().queues["work"].received == 8; }));
    open.set_value();
    while (!unacked.empty()) {
        auto ack = sender.next(detail::Kind::ack);
        ASSERT_TRUE(ack.has_value()) << unacked.size() << " never acked";
        EXPECT_LE(ack->first.ids.size(), 4u);
        for (const auto& id : ack->first.ids) EXPECT_EQ(unacked.erase(id), 1u);
    }
    EXPECT_EQ(handled.load(), 8);
}
