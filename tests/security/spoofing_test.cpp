// Spoofing: an attacker on the LAN claims another node's id to steal its work, its ACKs, or
// make its work move (a forged BYE). In the default trust mode every link is CurveZMQ and every
// frame's sender must be the id its connection's key gives, so each attempt is dropped as
// `auth.sender_mismatch` and changes nothing. The attacker here has everything a stranger on
// the LAN has: the nodes' ids and endpoints, a key pair of its own, raw ZeroMQ sockets.
//
// PEERMQ_TEST_TRUST=plain runs the same attacks against plain nodes, where they succeed (what
// every node was before keys); the assertions then fail, which is the point of running it.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"

namespace peermq::testing {
namespace {

using namespace std::chrono_literals;
using detail::Kind;

TrustMode trust_under_test() {
    const char* env = std::getenv("PEERMQ_TEST_TRUST");
    return env != nullptr && std::string(env) == "plain" ? TrustMode::plain : TrustMode::open;
}

NodeOptions options(const std::string& name, std::vector<std::string> peers = {}) {
    NodeOptions o;
    o.name = name;
    o.cluster = "spoof-" + unique_token();
    o.interface = "lo";
    o.trust = trust_under_test();
    o.peers = std::move(peers);
    o.heartbeat_interval = 200ms;
    o.peer_timeout = 1000ms;
    return o;
}

// A stranger: its own key pair, a connection to the target's inbox, and an inbox of its own
// where the target would send what it is tricked into sending.
class Attacker {
public:
    Attacker(const Node& target, std::string cluster) : cluster_(std::move(cluster)) {
        const bool secure = trust_under_test() != TrustMode::plain;
        curve_server(inbox_, identity_, secure);
        port_ = bind_loopback(inbox_);
        curve_client(out_, secure ? target.public_key() : std::string(), identity_);
        out_.set(zmq::sockopt::linger, 0);
        out_.connect(target.inbox_endpoint());
    }

    // A HELLO claiming `victim`, with the attacker's endpoint and `queue` at a large prefetch.
    void hello_as(const NodeId& victim, const std::string& queue = {}) {
        detail::Hello hello;
        hello.name = "attacker";
        hello.cluster = cluster_;
        hello.host = "127.0.0.1";
        hello.inbox_port = port_;
        hello.pub_port = port_;
        if (!queue.empty()) hello.queues.push_back({queue, 10'000});
        hello.batch = true;
        hello.batch_max = 256;
        send_frames(out_, {header_frame(victim, Kind::hello), hello_frame(hello)}, true);
    }
    void bye_as(const NodeId& victim) {
        send_frames(out_, {header_frame(victim, Kind::bye)}, true);
    }

    // Reads what reached the attacker's inbox: messages of work (DATA, or BATCH entries) and
    // ACK frames.
    void drain() {
        zmq::message_t frame;
        while (inbox_.recv(frame, zmq::recv_flags::dontwait)) {
            bool first = true;
            for (;;) {
                if (first) {
                    detail::Header header;
                    if (!detail::decode_header(frame.data(), frame.size(), header)) {
                        if (header.kind == Kind::data) ++work_;
                        if (header.kind == Kind::batch) work_ += header.seq;
                        if (header.kind == Kind::ack) ++acks_;
                    }
                    first = false;
                }
                if (!frame.more()) break;
                (void)inbox_.recv(frame);
            }
        }
    }
    std::uint64_t work() const { return work_; }
    std::uint64_t acks() const { return acks_; }

private:
    static void send_frames(zmq::socket_t& socket, const std::vector<std::string>& frames, bool) {
        for (std::size_t i = 0; i < frames.size(); ++i) {
            zmq::message_t frame(frames[i].data(), frames[i].size());
            (void)socket.send(
                frame, (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                           zmq::send_flags::dontwait);
        }
    }

    std::string cluster_;
    zmq::context_t context_;
    FakeIdentity identity_ = fake_identity();
    zmq::socket_t inbox_{context_, zmq::socket_type::pull};
    zmq::socket_t out_{context_, zmq::socket_type::push};
    std::uint16_t port_ = 0;
    std::uint64_t work_ = 0;
    std::uint64_t acks_ = 0;
};

std::uint64_t mismatches(const Node& node) {
    const auto stats = node.stats();
    const auto it = stats.dropped.find("auth.sender_mismatch");
    return it == stats.dropped.end() ? 0 : it->second;
}

// A consumer of "work" that counts what it handles, and a producer that has it as a static peer.
struct Cluster {
    std::string name = "spoof-" + unique_token();
    std::atomic<int> handled{0};
    Node consumer = make_consumer();
    Node producer = make_node(with_cluster(options("producer", {consumer.address()})));

    NodeOptions with_cluster(NodeOptions o) const {
        o.cluster = name;
        return o;
    }
    Node make_consumer() {
        Node node = make_node(with_cluster(options("consumer")));
        if (!node.consume("work", [this](Delivery&) { ++handled; }).ok())
            throw std::runtime_error("consume failed");
        return node;
    }
};

// A producer, an honest consumer, and the attacker playing the consumer to the producer: it
// says BYE as the consumer (so the producer lets go of it) and HELLO as the consumer from its
// own endpoint (so the record moves there), again and again while the work is sent.
TEST(Spoofing, AHelloClaimingAConsumersIdStealsNoneOfItsWork) {
    constexpr int kCount = 3000;
    Cluster cluster;
    Node& consumer = cluster.consumer;
    Node& producer = cluster.producer;
    std::atomic<int>& handled = cluster.handled;
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"consumer"}, "work"); }, 10s));

    Attacker attacker(producer, cluster.name);
    auto queue = producer.queue("work").value();
    for (int i = 0; i < kCount; ++i) {
        if (i % 100 == 0) {
            attacker.bye_as(consumer.id());
            attacker.hello_as(consumer.id(), "work");
        }
        ASSERT_TRUE(queue.send(i).ok());
        if (i % 100 == 0) std::this_thread::sleep_for(5ms);  // pacing the attack, not a sync
    }
    EXPECT_TRUE(wait_until(
        [&] {
            attacker.drain();
            return queue_stats(producer, "work").acked == static_cast<std::uint64_t>(kCount);
        },
        30s))
        << describe(queue_stats(producer, "work"))
        << " drops: " << describe_drops(producer.stats());
    attacker.drain();
    EXPECT_EQ(attacker.work(), 0u) << "messages diverted to the attacker";
    EXPECT_EQ(handled.load(), kCount);
    EXPECT_EQ(queue_stats(producer, "work").redelivered, 0u) << "the forged BYE moved work";
    EXPECT_GE(mismatches(producer), 2u * kCount / 100) << describe_drops(producer.stats());
    RecordProperty("stolen", static_cast<int>(attacker.work()));
}

// The attacker plays the producer to the consumer: the consumer's ACKs would go to it, and the
// producer, hearing none, would send everything again.
TEST(Spoofing, AHelloClaimingAProducersIdGetsNoneOfItsAcks) {
    constexpr int kCount = 2000;
    Cluster cluster;
    Node& consumer = cluster.consumer;
    Node& producer = cluster.producer;
    std::atomic<int>& handled = cluster.handled;
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"consumer"}, "work"); }, 10s));
    ASSERT_TRUE(wait_until([&] { return sees(consumer, {"producer"}); }, 10s));

    Attacker attacker(consumer, cluster.name);
    auto queue = producer.queue("work").value();
    for (int i = 0; i < kCount; ++i) {
        if (i % 100 == 0) {
            attacker.bye_as(producer.id());
            attacker.hello_as(producer.id());
        }
        ASSERT_TRUE(queue.send(i).ok());
        if (i % 100 == 0) std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(wait_until(
        [&] {
            attacker.drain();
            return queue_stats(producer, "work").acked == static_cast<std::uint64_t>(kCount);
        },
        30s))
        << describe(queue_stats(producer, "work"));
    attacker.drain();
    EXPECT_EQ(attacker.acks(), 0u) << "ACK frames diverted to the attacker";
    EXPECT_EQ(queue_stats(producer, "work").retried, 0u) << "acks went missing";
    EXPECT_EQ(handled.load(), kCount) << "messages handled more than once";
    EXPECT_GE(mismatches(consumer), 2u * kCount / 100) << describe_drops(consumer.stats());
}

// A connection that offers no CURVE handshake at all gets nothing through.
TEST(Spoofing, APlainConnectionToASecureNodeIsNeverHeard) {
    if (trust_under_test() == TrustMode::plain) GTEST_SKIP() << "plain nodes take plain links";
    Node node = make_node(options("target"));
    zmq::context_t context;
    zmq::socket_t plain(context, zmq::socket_type::push);
    plain.set(zmq::sockopt::linger, 0);
    // Its own handshake events tell when the node has turned it away.
    ASSERT_EQ(zmq_socket_monitor(plain.handle(), "inproc://plain-monitor",
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_DISCONNECTED |
                                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
              0);
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::rcvtimeo, 5000);
    monitor.connect("inproc://plain-monitor");
    plain.connect(node.inbox_endpoint());
    detail::Hello hello;
    hello.name = "plain";
    hello.cluster = "whatever";
    hello.inbox_port = 1;
    hello.pub_port = 1;
    for (int i = 0; i < 20; ++i) {
        zmq::message_t header(header_frame(NodeId::generate(), Kind::hello));
        zmq::message_t body(hello_frame(hello));
        (void)plain.send(header, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        (void)plain.send(body, zmq::send_flags::dontwait);
    }
    zmq::message_t event;
    ASSERT_TRUE(monitor.recv(event)) << "no handshake event within 5 s";
    std::uint16_t kind = 0;
    std::memcpy(&kind, event.data(), sizeof kind);
    EXPECT_NE(kind, ZMQ_EVENT_HANDSHAKE_SUCCEEDED) << "a plain handshake was accepted";
    zmq::message_t address;
    (void)monitor.recv(address);
    (void)zmq_socket_monitor(plain.handle(), nullptr, 0);
    // The node counts the refusal (a mechanism mismatch: as a protocol failure, and libzmq may
    // add one without detail), and that is all it saw of it: no frame of it was read.
    EXPECT_TRUE(wait_until(
        [&] {
            auto dropped = node.stats().dropped;
            return dropped["auth.handshake_failed"] + dropped["link.handshake_cut"] >= 1;
        },
        5s))
        << describe_drops(node.stats());
    auto stats = node.stats();
    EXPECT_EQ(stats.bad_frames, stats.dropped["auth.handshake_failed"]) << describe_drops(stats);
    EXPECT_TRUE(node.peers().empty());
}

// A publisher the subscriber follows puts another node's id on its topic messages: each message
// is read from a SUB socket connected to that publisher alone, with its key as the server key,
// so a message claiming another sender is dropped (`auth.sender_mismatch`) and never delivered
// as the other node's. The publisher's own messages still arrive.
TEST(Spoofing, ATopicMessageClaimingAnotherNodesIdIsNeverDeliveredAsItsOwn) {
    const bool secure = trust_under_test() != TrustMode::plain;
    const std::string cluster = "spoof-" + unique_token();
    auto with_cluster = [&](NodeOptions o) {
        o.cluster = cluster;
        return o;
    };
    Node victim = make_node(with_cluster(options("victim")));
    Node subscriber = make_node(with_cluster(options("subscriber")));
    std::mutex mutex;
    std::vector<std::pair<NodeId, std::string>> received;  // sender, payload
    ASSERT_TRUE(subscriber
                    .subscribe("alerts",
                               [&](const Message& message) {
                                   std::lock_guard lock(mutex);
                                   received.emplace_back(message.sender,
                                                         message.payload.as<std::string>());
                               })
                    .ok());

    // The publisher: a key of its own, a PUB (an XPUB, to see the subscription arrive) and an
    // inbox, and a HELLO to the subscriber that names them.
    zmq::context_t context;
    const FakeIdentity publisher = fake_identity();
    zmq::socket_t pub(context, zmq::socket_type::xpub);
    curve_server(pub, publisher, secure);
    const std::uint16_t pub_port = bind_loopback(pub);
    zmq::socket_t inbox(context, zmq::socket_type::pull);
    curve_server(inbox, publisher, secure);
    const std::uint16_t inbox_port = bind_loopback(inbox);
    zmq::socket_t out(context, zmq::socket_type::push);
    out.set(zmq::sockopt::linger, 0);
    curve_client(out, secure ? subscriber.public_key() : std::string(), publisher);
    out.connect(subscriber.inbox_endpoint());
    detail::Hello hello;
    hello.name = "publisher";
    hello.cluster = cluster;
    hello.host = "127.0.0.1";
    hello.inbox_port = inbox_port;
    hello.pub_port = pub_port;
    // Said until the subscription comes: the first HELLO may wait for the handshake.
    zmq::message_t subscription;
    ASSERT_TRUE(wait_until([&] {
        send_hello(out, hello, publisher.id);
        zmq_pollitem_t item{pub.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, 100ms) <= 0) return false;
        return pub.recv(subscription, zmq::recv_flags::dontwait).has_value() &&
               subscription.to_string_view() == std::string_view(
                                                    "\x01"
                                                    "alerts",
                                                    7);
    })) << "the subscriber never subscribed to the publisher: "
        << describe(subscriber.peers()) << describe_drops(subscriber.stats());

    auto publish = [&](const NodeId& sender, const std::string& text) {
        detail::Header header;
        header.kind = Kind::data;
        header.sender = sender;
        header.id = MessageId::generate();
        header.channel = "alerts";
        const Payload payload = Payload::encode(text);
        send_frames(pub,
                    {"alerts", header_frame(header),
                     std::string(reinterpret_cast<const char*>(payload.data()), payload.size())});
    };
    publish(victim.id(), "forged: the victim says the building is on fire");
    publish(publisher.id, "honest");
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return std::any_of(received.begin(), received.end(),
                           [](const auto& r) { return r.second == "honest"; });
    })) << "the publisher's own message never arrived";
    std::lock_guard lock(mutex);
    for (const auto& [sender, text] : received) {
        EXPECT_NE(sender, victim.id()) << "delivered as the victim's: " << text;
        EXPECT_EQ(sender, publisher.id) << text;
    }
    EXPECT_GE(mismatches(subscriber), 1u);
}

}  // namespace
}  // namespace peermq::testing
