// A node's links to its peers (actor/peer_links.hpp), with real ZeroMQ sockets over loopback and
// no node: a link that is not up refuses a frame and blocks its peer, the poll reports it
// writable once a peer listens, and then frames reach that peer's inbox and confirm it; a reset
// gives a fresh link that owes a HELLO; a peer's PUB is joined only once the node subscribes to
// a topic; endpoints are written for IPv4 and IPv6 literals.
#include "actor/peer_links.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/free_port.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;
using Steady = Clock::Steady;

class PeerLinksTest : public ::testing::Test {
protected:
    // A peer whose inbox is on `port` of 127.0.0.1, its link opened.
    Peer& add_peer(std::uint16_t port) {
        auto peer = std::make_unique<Peer>();
        peer->id = NodeId::generate();
        peer->host = "127.0.0.1";
        peer->inbox_port = port;
        peer->inbox_endpoint = PeerLinks::endpoint_of(peer->host, port);
        Peer& added = peers.add(std::move(peer));
        EXPECT_TRUE(links.open(added));
        return added;
    }

    // Polls as the actor's loop does, until `peer` is reported writable or 10 s pass.
    bool wait_writable(Peer& peer) {
        const auto deadline = Steady::clock::now() + 10s;
        while (Steady::clock::now() < deadline) {
            std::vector<zmq::pollitem_t> items;
            links.add_poll_items(peers, items);
            zmq::poll(items.data(), items.size(), 50ms);
            bool reported = false;
            links.writable(items, [&](Peer& writable) { reported |= &writable == &peer; });
            if (reported) return true;
        }
        return false;
    }

    static zmq::message_t frame(const std::string& text) { return {text.data(), text.size()}; }

    zmq::context_t context;
    zmq::socket_t sub{context, zmq::socket_type::sub};
    Logger log{"peer-links-test", LogLevel::off, LogFormat::logfmt, [](const LogRecord&) {}};
    PeerLinks links{context, sub, 2s, log};
    PeerDirectory peers;
};

TEST_F(PeerLinksTest, ALinkThatIsNotUpRefusesAndBlocksThenCarriesFramesOnceThePeerListens) {
    const std::uint16_t port = testing::free_port();
    Peer& peer = add_peer(port);
    zmq::message_t header = frame("header");
    zmq::message_t payload = frame("payload");
    // Nobody listens: ZMQ_IMMEDIATE queues nothing, the peer is blocked and polled for POLLOUT.
    EXPECT_FALSE(links.send(peer, header, &payload, Steady::clock::now()));
    EXPECT_TRUE(peer.blocked);
    EXPECT_FALSE(peer.confirmed);
    EXPECT_EQ(peer.frames_sent, 0u);
    std::vector<zmq::pollitem_t> items;
    links.add_poll_items(peers, items);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].events, ZMQ_POLLOUT);

    // The peer comes up: its link connects (reconnects a few times a second), is writable.
    zmq::socket_t inbox(context, zmq::socket_type::pull);
    inbox.bind("tcp://127.0.0.1:" + std::to_string(port));
    ASSERT_TRUE(wait_writable(peer));
    EXPECT_FALSE(peer.blocked);

    const Steady sent_at = Steady::clock::now();
    zmq::message_t header2 = frame("header");
    zmq::message_t payload2 = frame("payload");
    ASSERT_TRUE(links.send(peer, header2, &payload2, sent_at));
    EXPECT_TRUE(peer.confirmed);  // a frame reached its link: its address is real
    EXPECT_EQ(peer.frames_sent, 1u);
    EXPECT_EQ(peer.last_sent, sent_at);
    // Both frames, as one message.
    inbox.set(zmq::sockopt::rcvtimeo, 10'000);
    zmq::message_t got;
    ASSERT_TRUE(inbox.recv(got));
    EXPECT_EQ(got.to_string(), "header");
    ASSERT_TRUE(got.more());
    ASSERT_TRUE(inbox.recv(got));
    EXPECT_EQ(got.to_string(), "payload");
    EXPECT_FALSE(got.more());

    // No longer blocked: not polled.
    items.clear();
    links.add_poll_items(peers, items);
    EXPECT_TRUE(items.empty());
}

TEST_F(PeerLinksTest, APeerClosedDuringATurnIsNotReportedWritable) {
    const std::uint16_t port = testing::free_port();
    Peer& peer = add_peer(port);
    zmq::message_t header = frame("h");
    EXPECT_FALSE(links.send(peer, header, nullptr, Steady::clock::now()));
    zmq::socket_t inbox(context, zmq::socket_type::pull);
    inbox.bind("tcp://127.0.0.1:" + std::to_string(port));
    // Wait until the poll sees it writable, then close it within the same turn.
    for (int turn = 0; turn < 200; ++turn) {
        std::vector<zmq::pollitem_t> items;
        links.add_poll_items(peers, items);
        zmq::poll(items.data(), items.size(), 50ms);
        if (!(items[0].revents & ZMQ_POLLOUT)) continue;
        links.close(peer);
        int reported = 0;
        EXPECT_FALSE(links.writable(items, [&](Peer&) { ++reported; }));
        EXPECT_EQ(reported, 0);
        return;
    }
    FAIL() << "the link never became writable";
}

TEST_F(PeerLinksTest, AResetGivesAFreshLinkThatOwesAHello) {
    zmq::socket_t inbox(context, zmq::socket_type::pull);
    inbox.bind("tcp://127.0.0.1:*");
    const std::string endpoint = inbox.get(zmq::sockopt::last_endpoint);
    const auto port =
        static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
    Peer& peer = add_peer(port);
    peer.blocked = true;
    const void* before = peer.push.handle();
    links.reset(peer);
    EXPECT_NE(peer.push.handle(), before);
    EXPECT_FALSE(peer.blocked);
    EXPECT_TRUE(peer.hello_owed);
    // The fresh link works: once it is connected, a frame reaches the inbox.
    zmq::message_t header = frame("after reset");
    bool sent = links.send(peer, header, nullptr, Steady::clock::now());
    if (!sent) {
        ASSERT_TRUE(wait_writable(peer));
        zmq::message_t again = frame("after reset");
        ASSERT_TRUE(links.send(peer, again, nullptr, Steady::clock::now()));
    }
    inbox.set(zmq::sockopt::rcvtimeo, 10'000);
    zmq::message_t got;
    ASSERT_TRUE(inbox.recv(got));
    EXPECT_EQ(got.to_string(), "after reset");
}

TEST_F(PeerLinksTest, APeersPubIsJoinedOnTheSubSocketAndLeftWhenItMovesOrCloses) {
    zmq::socket_t pub(context, zmq::socket_type::pub);
    pub.bind("tcp://127.0.0.1:*");
    const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);
    links.subscribe("", peers);
    Peer& peer = add_peer(testing::free_port());
    links.subscribe_to(peer, endpoint);
    EXPECT_EQ(peer.pub_endpoint, endpoint);
    EXPECT_TRUE(peer.pub_linked);
    // Subscriptions travel once the connection is up: publish until one arrives.
    sub.set(zmq::sockopt::rcvtimeo, 20);
    zmq::message_t got;
    bool heard = false;
    for (int i = 0; i < 500 && !heard; ++i) {
        pub.send(frame("t"), zmq::send_flags::dontwait);
        heard = sub.recv(got).has_value();
    }
    EXPECT_TRUE(heard);
    links.close(peer);
    EXPECT_FALSE(peer.pub_linked);
    // A second close, or a record that never had a PUB, is harmless.
    links.close(peer);
}

TEST_F(PeerLinksTest, NoSubConnectionUntilTheFirstSubscriptionWhichJoinsEveryKnownPub) {
    // An XPUB hears each subscription a connection brings: the proof that the SUB connected.
    zmq::socket_t pub(context, zmq::socket_type::xpub);
    pub.bind("tcp://127.0.0.1:*");
    const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);
    Peer& peer = add_peer(testing::free_port());
    links.subscribe_to(peer, endpoint);
    // Its PUB is known, but a node that wants no topic keeps no connection to it.
    EXPECT_EQ(peer.pub_endpoint, endpoint);
    EXPECT_FALSE(peer.pub_linked);
    links.resubscribe(peer);
    links.reset(peer);
    EXPECT_FALSE(peer.pub_linked);

    links.subscribe("alerts", peers);
    EXPECT_TRUE(peer.pub_linked);
    pub.set(zmq::sockopt::rcvtimeo, 10'000);
    zmq::message_t got;
    ASSERT_TRUE(pub.recv(got));
    EXPECT_EQ(got.to_string(), std::string("\x01") + "alerts");
    // A later prefix travels on the same connection.
    links.subscribe("metrics", peers);
    ASSERT_TRUE(pub.recv(got));
    EXPECT_EQ(got.to_string(), std::string("\x01") + "metrics");
}

TEST(PeerLinksEndpoint, IPv6LiteralsAreBracketed) {
    EXPECT_EQ(PeerLinks::endpoint_of("127.0.0.1", 5555), "tcp://127.0.0.1:5555");
    EXPECT_EQ(PeerLinks::endpoint_of("::1", 5555), "tcp://[::1]:5555");
    EXPECT_EQ(PeerLinks::endpoint_of("fe80::1", 80), "tcp://[fe80::1]:80");
}

}  // namespace
}  // namespace peermq::detail
