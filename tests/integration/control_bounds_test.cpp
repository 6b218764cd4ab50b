// A node that knows hundreds of peers, each announcing hundreds of long queue and topic names,
// still answers `stats` and `peers` on its control endpoint at once and with a bounded reply
// (docs/spec/control.md §5.4): the first peers and names, and counts of the rest.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "admin/control_codec.hpp"
#include "peermq/control.hpp"
#include "peermq/peermq.hpp"
#include "support/free_port.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using namespace peermq::testing;
namespace detail = peermq::detail;

namespace {

// One request on a raw DEALER socket: the reply frame, or an empty string after 10 s.
// A tcp control endpoint speaks CurveZMQ: `key` is the node's own pair, which it admits.
std::string raw_request(const std::string& endpoint, const peermq::KeyPair& key,
                        const detail::ControlRequest& request) {
    zmq::context_t context;
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::curve_serverkey, key.public_key);
    socket.set(zmq::sockopt::curve_publickey, key.public_key);
    socket.set(zmq::sockopt::curve_secretkey, key.secret_key);
    socket.connect(endpoint);
    msgpack::sbuffer body;
    detail::encode_request(request, body);
    socket.send(zmq::message_t(), zmq::send_flags::sndmore);
    socket.send(zmq::message_t(body.data(), body.size()), zmq::send_flags::none);
    zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 10'000) <= 0) return {};
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket, std::back_inserter(frames)) || frames.size() != 2) return {};
    return frames[1].to_string();
}

// A fake peer: a CURVE peer of its own key (one connection per key, since a frame may speak
// only for its connection's key), with an inbox and a pub bound as CURVE servers of that key, so
// the node's links to it come up. Its PUSH queues only on a connection whose handshake is done
// (ZMQ_IMMEDIATE): its HELLO waits for it, and the fakes connect one after another rather than in
// a burst past the node's listen backlog.
struct FakePeer {
    FakePeer(zmq::context_t& context, const peermq::Node& node)
        : push(context, zmq::socket_type::push),
          inbox(context, zmq::socket_type::pull),
          pub(context, zmq::socket_type::pub) {
        curve_server(inbox, identity);
        curve_server(pub, identity);
        inbox_port = bind_loopback(inbox);
        pub_port = bind_loopback(pub);
        push.set(zmq::sockopt::linger, 0);
        push.set(zmq::sockopt::immediate, 1);
        curve_client(push, node.public_key(), identity);
        push.connect(node.inbox_endpoint());
    }

    // `hello` as its own, once its link to the node is up (false: not within 10 s).
    bool say_hello(detail::Hello hello) {
        zmq::pollitem_t item{push.handle(), 0, ZMQ_POLLOUT, 0};
        zmq::poll(&item, 1, 10s);
        if (!(item.revents & ZMQ_POLLOUT)) return false;
        hello.inbox_port = inbox_port;
        hello.pub_port = pub_port;
        send_hello(push, hello, identity.id);
        return true;
    }

    FakeIdentity identity = fake_identity();
    zmq::socket_t push;
    zmq::socket_t inbox;
    zmq::socket_t pub;
    std::uint16_t inbox_port = 0;
    std::uint16_t pub_port = 0;
};

}  // namespace

TEST(ControlBounds, ManyPeersAnnouncingManyNamesGetABoundedStatsReplyInSeconds) {
    constexpr int kPeers = 600;
    constexpr int kNames = 200;  // queues, and topics, per peer: ~48 KiB of HELLO each
    const std::string control = "tcp://127.0.0.1:" + std::to_string(free_port());
    // The fake peers speak once: with the default peer_timeout (3 s) the first would be down, and
    // those whose links had not come up forgotten, before a slow build (ASan, a busy machine) has
    // read the last HELLO. The test is about the reply's bounds, not liveness.
    const peermq::KeyPair key = peermq::generate_key_pair().value();  // also the admin's
    auto node = peermq::Node::create({.name = "crowded",
                                      .secret_key = key.secret_key,
                                      .interface = "lo",
                                      .peer_timeout = 120s,
                                      .control_endpoint = control})
                    .value();

    zmq::context_t context;
    context.set(zmq::ctxopt::max_sockets, 3 * kPeers + 64);  // three sockets per fake peer
    std::vector<std::unique_ptr<FakePeer>> fakes;
    detail::Hello hello;
    hello.cluster = "default";
    hello.host = "127.0.0.1";
    for (int i = 0; i < kNames; ++i) {
        hello.queues.push_back(detail::QueueAd{std::string(110, 'q') + std::to_string(i), 1});
        hello.topics.push_back(std::string(110, 't') + std::to_string(i));
    }
    for (int i = 0; i < kPeers; ++i) {
        hello.name = "fat-" + std::to_string(i);
        fakes.push_back(std::make_unique<FakePeer>(context, node));
        ASSERT_TRUE(fakes.back()->say_hello(hello)) << "fake peer " << i << " never connected";
    }
    auto client =
        peermq::ControlClient::connect(node.control_endpoint(), 5s, key.secret_key).value();
    peermq::NodeStats stats;
    ASSERT_TRUE(wait_until(
        [&] {
            auto s = client.stats();
            if (!s) return false;
            stats = std::move(s).value();
            return stats.peers.size() + stats.peers_omitted >= kPeers;
        },
        // Each stats reply walks every peer's 400 names: not asked every millisecond.
        30s, 100ms))
        << stats.peers.size() << " peers listed, " << stats.peers_omitted << " omitted";

    for (int round = 0; round < 3; ++round) {
        const auto start = std::chrono::steady_clock::now();
        const std::string reply = raw_request(control, key, detail::StatsRequest{});
        const auto took = std::chrono::steady_clock::now() - start;
        ASSERT_FALSE(reply.empty());
        EXPECT_LE(reply.size(), detail::kMaxReplyBytes);
        // The defect took ~60 s; an ASan build with 600 CURVE links busy can take over 1 s.
        EXPECT_LT(took, 5s);
        auto decoded = detail::decode_stats_reply(reply.data(), reply.size());
        ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
        EXPECT_LE(decoded->peers.size(), detail::kMaxReplyPeers);
        EXPECT_GE(decoded->peers.size() + decoded->peers_omitted, std::size_t{kPeers});
        for (const auto& peer : decoded->peers) {
            if (peer.name.rfind("fat-", 0) != 0) continue;
            EXPECT_EQ(peer.queues.size(), detail::kMaxReplyNamesPerPeer);
            EXPECT_EQ(peer.queues.size() + peer.queues_omitted, std::size_t{kNames});
            EXPECT_EQ(peer.topics.size() + peer.topics_omitted, std::size_t{kNames});
        }
        const auto peers_start = std::chrono::steady_clock::now();
        const std::string peers_reply = raw_request(control, key, detail::PeersRequest{});
        EXPECT_LT(std::chrono::steady_clock::now() - peers_start, 5s);
        EXPECT_FALSE(peers_reply.empty());
        EXPECT_LE(peers_reply.size(), detail::kMaxReplyBytes);
    }
    // Every fake peer spoke as itself: none of its frames was taken for another's.
    EXPECT_EQ(node.stats().dropped["auth.sender_mismatch"], 0u);
}
