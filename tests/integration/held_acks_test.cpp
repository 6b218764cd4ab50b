// A consumer's acks when its link back to the sender is not there yet (docs/spec/wire.md §8):
// after a partition heals, the sender's link to the consumer may come back before the
// consumer's link to the sender, and the consumer handles messages it cannot ack yet. Those acks
// wait for the link and leave when it connects; dropped, each would cost the sender an ack
// timeout and a second copy of the message handled elsewhere (the lab's partition test saw 171
// such duplicates).
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/free_port.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using peermq::testing::dropped;
using peermq::testing::wait_until;
namespace detail = peermq::detail;

namespace {}  // namespace

TEST(HeldAcks, AcksForASenderWhoseInboxIsNotListeningYetArriveWhenItListens) {
    auto consumer = peermq::Node::create({.name = "consumer", .interface = "lo"}).value();
    std::atomic<int> handled{0};
    ASSERT_TRUE(consumer.consume("work", [&](peermq::Delivery&) { ++handled; }).ok());

    // The producer, by hand: its HELLO names an inbox port nothing listens on yet.
    const auto identity = peermq::testing::fake_identity();
    const std::uint16_t inbox_port = peermq::testing::free_port();
    zmq::context_t context;
    zmq::socket_t to_consumer(context, zmq::socket_type::push);
    to_consumer.set(zmq::sockopt::linger, 0);
    peermq::testing::curve_client(to_consumer, consumer.public_key(), identity);
    to_consumer.connect(consumer.inbox_endpoint());
    detail::Hello hello;
    hello.name = "producer";
    hello.cluster = "default";
    hello.host = "127.0.0.1";
    hello.inbox_port = inbox_port;
    hello.pub_port = peermq::testing::free_port();
    peermq::testing::send_hello(to_consumer, hello, identity.id);

    constexpr int kMessages = 20;
    std::vector<peermq::MessageId> ids;
    for (int i = 0; i < kMessages; ++i) {
        detail::Header data;
        data.kind = detail::Kind::data;
        data.sender = identity.id;
        data.id = peermq::MessageId::generate();
        data.channel = "work";
        data.flags = detail::kFlagAckRequested;
        ids.push_back(data.id);
        peermq::testing::send_frames(to_consumer, {peermq::testing::header_frame(data), "\xc0"});
    }
    ASSERT_TRUE(wait_until([&] { return handled.load() == kMessages; }, 10s))
        << handled.load() << " handled";
    EXPECT_EQ(dropped(consumer.stats(), "ack.no_route"), 0u)
        << "an ack the link could not take yet is held, not dropped";

    // The producer's inbox comes up: the consumer's link connects and the acks arrive.
    zmq::socket_t inbox(context, zmq::socket_type::pull);
    peermq::testing::curve_server(inbox, identity);
    inbox.set(zmq::sockopt::linger, 0);
    inbox.bind("tcp://127.0.0.1:" + std::to_string(inbox_port));
    std::set<peermq::MessageId> acked;
    ASSERT_TRUE(wait_until(
        [&] {
            zmq::message_t header;
            while (inbox.recv(header, zmq::recv_flags::dontwait)) {
                zmq::message_t rest;
                while (header.more() && inbox.recv(rest, zmq::recv_flags::dontwait) &&
                       rest.more()) {
                }
                detail::Header decoded;
                if (detail::decode_header(header.data(), header.size(), decoded)) continue;
                if (decoded.kind != detail::Kind::ack) continue;
                acked.insert(decoded.ids.begin(), decoded.ids.end());
            }
            return acked.size() == ids.size();
        },
        10s))
        << acked.size() << " of " << ids.size() << " acked";
    for (const auto& id : ids) EXPECT_TRUE(acked.contains(id));
    EXPECT_EQ(dropped(consumer.stats(), "ack.no_route"), 0u);
}
