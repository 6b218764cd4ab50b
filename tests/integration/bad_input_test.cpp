// Garbage from a raw ZeroMQ socket never hurts a node: each bad frame is counted by reason and
// dropped while real traffic keeps flowing (docs/spec/wire.md, "Limits" and "Errors").
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using namespace peermq::testing;
namespace detail = peermq::detail;

namespace {

template <typename... Fields>
std::string pack_array(const Fields&... fields) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> pk(buffer);
    pk.pack_array(sizeof...(fields));
    (pk.pack(fields), ...);
    return {buffer.data(), buffer.size()};
}

}  // namespace

TEST(BadInput, EveryMalformedFrameIsCountedAndDroppedWhileRealTrafficFlows) {
    auto consumer = peermq::Node::create({.name = "target", .interface = "lo"}).value();
    auto producer =
        make_node({.name = "producer", .interface = "lo", .peers = {consumer.address()}});
    std::atomic<int> got{0};
    ASSERT_TRUE(consumer.consume("work", [&](peermq::Delivery&) { ++got; }).ok());
    ASSERT_TRUE(wait_until([&] {
        for (const auto& p : producer.peers()) {
            if (p.name == "target" && p.state == peermq::PeerState::alive && !p.queues.empty())
                return true;
        }
        return false;
    }));
    auto work = producer.queue("work").value();

    // A CURVE peer of its own key: frames that decode get as far as the checks after the
    // sender's (its id, the one its key gives); one that claims another id is auth.sender_mismatch.
    const FakeIdentity identity = fake_identity();
    zmq::context_t context;
    zmq::socket_t attacker(context, zmq::socket_type::push);
    attacker.set(zmq::sockopt::linger, 0);
    curve_client(attacker, consumer.public_key(), identity);
    attacker.connect(consumer.inbox_endpoint());

    detail::Header good;
    good.kind = detail::Kind::data;
    good.sender = identity.id;
    good.id = peermq::MessageId::generate();
    good.channel = "work";
    detail::Header wrong_version = good;
    wrong_version.version = 2;
    detail::Header hello = good;
    hello.kind = detail::Kind::hello;
    detail::Header spoofed = good;  // a well-formed DATA frame speaking for another node
    spoofed.sender = peermq::NodeId::generate();
    const std::string raw_id(16, '\x01');

    constexpr int kRounds = 20;
    constexpr int kMessages = 1000;
    int sent = 0;
    for (int round = 0; round < kRounds; ++round) {
        send_frames(attacker, {"\xc1\xff garbage that is not msgpack"});  // frame.garbage
        send_frames(attacker, {header_frame(good)});  // frame.truncated (DATA without payload)
        send_frames(attacker,
                    {header_frame(good), "payload", "one frame too many"});  // frame.truncated
        send_frames(attacker, {header_frame(wrong_version), "x"});           // frame.bad_version
        send_frames(attacker, {std::string(70'000, '\x90'), "x"});  // frame.oversized_header
        send_frames(attacker, {pack_array(1u, 1u), "x"});           // frame.missing_field
        send_frames(attacker, {pack_array(1u, 99u, raw_id, raw_id, std::string("work")),
                               "x"});  // frame.unknown_kind
        send_frames(attacker,
                    {pack_array(1u, 1u, 42, raw_id, std::string("work")), "x"});  // frame.bad_field
        send_frames(attacker, {pack_array(std::string("v1"), 1u, raw_id, raw_id, std::string("w")),
                               "x"});                                       // frame.bad_field
        send_frames(attacker, {header_frame(hello), pack_array(1, 2, 3)});  // hello.bad
        {
            msgpack::sbuffer body;
            msgpack::packer<msgpack::sbuffer> pk(body);
            pk.pack_map(1);
            pk.pack(std::string("name"));
            pk.pack(std::string("intruder"));
            send_frames(attacker, {header_frame(hello),
                                   std::string(body.data(), body.size())});  // hello.missing_field
        }
        send_frames(attacker, {header_frame(spoofed), "x"});  // auth.sender_mismatch
        send_frames(attacker, {std::string()});               // frame.garbage (empty)
        for (int i = 0; i < kMessages / kRounds; ++i, ++sent) ASSERT_TRUE(work.send(sent).ok());
    }
    ASSERT_TRUE(wait_until([&] { return got == kMessages; }, 30s)) << got;

    // Every reason is counted exactly.
    peermq::NodeStats stats;
    ASSERT_TRUE(wait_until([&] {
        stats = consumer.stats();
        return stats.dropped["hello.missing_field"] == kRounds &&
               stats.dropped["auth.sender_mismatch"] == kRounds &&
               stats.dropped["frame.garbage"] == 2 * kRounds;
    })) << describe_drops(stats);
    EXPECT_EQ(stats.dropped["frame.truncated"], 2u * kRounds);
    EXPECT_EQ(stats.dropped["frame.bad_version"], 1u * kRounds);
    EXPECT_EQ(stats.dropped["frame.oversized_header"], 1u * kRounds);
    EXPECT_EQ(stats.dropped["frame.missing_field"], 1u * kRounds);
    EXPECT_EQ(stats.dropped["frame.unknown_kind"], 1u * kRounds);
    EXPECT_EQ(stats.dropped["frame.bad_field"], 2u * kRounds);
    EXPECT_EQ(stats.dropped["hello.bad"], 1u * kRounds);
    EXPECT_EQ(stats.dropped["auth.sender_mismatch"], 1u * kRounds);
    EXPECT_EQ(stats.bad_frames, 13u * kRounds);
    // Only the producer's DATA was delivered: not the spoofed frames (nor anything else above).
    EXPECT_EQ(stats.queues["work"].delivered, static_cast<std::uint64_t>(kMessages));
    // The intruder never became a peer.
    for (const auto& p : consumer.peers()) {
        EXPECT_NE(p.name, "intruder");
        EXPECT_NE(p.id, identity.id);
    }
}

TEST(BadInput, OversizedPayloadIsRefusedByTheTransportAndTheNodeKeepsServing) {
    auto consumer =
        peermq::Node::create({.name = "small", .interface = "lo", .max_payload_bytes = 1024})
            .value();
    // A CURVE peer (a plain socket would never get past the handshake to send anything).
    const FakeIdentity identity = fake_identity();
    zmq::context_t context;
    zmq::socket_t attacker(context, zmq::socket_type::push);
    attacker.set(zmq::sockopt::linger, 0);
    curve_client(attacker, consumer.public_key(), identity);
    attacker.connect(consumer.inbox_endpoint());
    detail::Header good;
    good.sender = identity.id;
    good.id = peermq::MessageId::generate();
    good.channel = "work";
    send_frames(attacker,
                {header_frame(good), std::string(1 << 20, 'x')});  // ZMQ_MAXMSGSIZE drops the link

    auto producer =
        make_node({.name = "producer", .interface = "lo", .peers = {consumer.address()}});
    std::atomic<int> got{0};
    ASSERT_TRUE(consumer.consume("work", [&](peermq::Delivery&) { ++got; }).ok());
    auto work = producer.queue("work").value();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(work.send(i).ok());
    EXPECT_TRUE(wait_until([&] { return got == 10; }));
    EXPECT_EQ(producer.queue("work")
                  ->send_payload(peermq::Payload::from_string(std::string(2000, 'y')))
                  .status()
                  .code(),
              peermq::ErrorCode::ok);  // the producer's own limit is its own (16 MiB default)
}
