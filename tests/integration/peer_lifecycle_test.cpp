// Peer lifecycle seen from outside: the alive event of a peer found by discovery carries what
// its HELLO said, and a closing node says BYE even to a peer it knows only by endpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using peermq::testing::bind_loopback;
using peermq::testing::curve_server;
using peermq::testing::fake_identity;
using peermq::testing::FakeIdentity;
using peermq::testing::wait_until;
namespace detail = peermq::detail;

namespace {

// A discovery backend the test drives: it reports what the test tells it to.
class ManualDiscovery final : public peermq::Discovery {
public:
    struct State {
        std::mutex mutex;
        peermq::DiscoverySink sink;
        peermq::Discovery::HeardFrom heard_from;  // what the node gave
        void report(const peermq::ServiceRecord& record) {
            std::lock_guard lock(mutex);
            if (sink) sink({peermq::DiscoveryEvent::Kind::found, record});
        }
    };

    explicit ManualDiscovery(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::string_view backend() const override { return "manual"; }
    peermq::Status start(const peermq::ServiceRecord&, peermq::DiscoverySink sink) override {
        std::lock_guard lock(state_->mutex);
        state_->sink = std::move(sink);
        return {};
    }
    void stop() override {
        std::lock_guard lock(state_->mutex);
        state_->sink = nullptr;
    }
    void set_heard_from(HeardFrom heard_from) override {
        std::lock_guard lock(state_->mutex);
        state_->heard_from = std::move(heard_from);
    }

    static peermq::DiscoveryFactory factory(std::shared_ptr<State> state) {
        return [state]() -> peermq::Result<std::unique_ptr<peermq::Discovery>> {
            return std::unique_ptr<peermq::Discovery>(new ManualDiscovery(state));
        };
    }

private:
    std::shared_ptr<State> state_;
};

std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

// Reads one multipart message from `socket` within `timeout`; its frames, or nullopt.
std::optional<std::vector<zmq::message_t>> receive(zmq::socket_t& socket,
                                                   std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    std::vector<zmq::message_t> frames;
    do {
        frames.emplace_back();
        (void)socket.recv(frames.back());
    } while (frames.back().more());
    return frames;
}

// Waits for a frame of `kind` from `sender`; skips the others.
bool wait_for_frame(zmq::socket_t& socket, detail::Kind kind, const peermq::NodeId& sender,
                    std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        auto frames = receive(socket, std::max(left, 1ms));
        if (!frames) return false;
        detail::Header header;
        if (detail::decode_header((*frames)[0].data(), (*frames)[0].size(), header)) continue;
        if (header.kind == kind && header.sender == sender) return true;
    }
    return false;
}

}  // namespace

TEST(PeerLifecycle, AliveEventOfAPeerFoundByDiscoveryCarriesItsNameAndQueues) {
    auto worker = peermq::Node::create({.name = "worker-2", .interface = "lo"}).value();
    ASSERT_TRUE(worker.consume("jobs", [](peermq::Delivery&) {}).ok());
    ASSERT_TRUE(worker.consume("audit", [](peermq::Delivery&) {}).ok());

    auto state = std::make_shared<ManualDiscovery::State>();
    auto node =
        peermq::Node::create(
            {.name = "watcher", .interface = "lo", .discovery = ManualDiscovery::factory(state)})
            .value();
    std::mutex mutex;
    std::vector<peermq::PeerEvent> events;
    node.on_peer_event([&](const peermq::PeerEvent& e) {
        std::lock_guard lock(mutex);
        events.push_back(e);
    });
    // The handler is installed by the actor; a stats() call behind it in the mailbox means it is.
    (void)node.stats();

    // Found by discovery: the id is known before any HELLO. The record carries the worker's key
    // (the node's link asks for it) and the id that key gives.
    ASSERT_EQ(peermq::node_id_of(worker.public_key()).value(), worker.id());
    peermq::ServiceRecord record;
    record.id = worker.id();
    record.public_key = worker.public_key();
    record.name = "worker-2";
    record.cluster = "default";
    record.host = "127.0.0.1";
    record.inbox_port = port_of(worker.inbox_endpoint());
    state->report(record);

    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return std::any_of(events.begin(), events.end(), [](const peermq::PeerEvent& e) {
            return e.peer.state == peermq::PeerState::alive;
        });
    }));
    std::lock_guard lock(mutex);
    const auto& alive = *std::find_if(events.begin(), events.end(), [](const peermq::PeerEvent& e) {
        return e.peer.state == peermq::PeerState::alive;
    });
    EXPECT_EQ(alive.previous, peermq::PeerState::connecting);
    EXPECT_EQ(alive.peer.id, worker.id());
    EXPECT_EQ(alive.peer.name, "worker-2");
    EXPECT_EQ(alive.peer.queues, (std::vector<std::string>{"audit", "jobs"}));
    EXPECT_FALSE(alive.peer.pub_endpoint.empty());
}

// A discovery backend may leave a record unresolved while the node hears from its node
// (docs/spec/discovery.md §6.1): the node tells it whom it hears from, by short id, as peers come
// alive and go down.
TEST(PeerLifecycle, TheDiscoveryBackendIsToldWhomTheNodeHearsFrom) {
    auto state = std::make_shared<ManualDiscovery::State>();
    auto node = peermq::Node::create({.name = "listener",
                                      .interface = "lo",
                                      .discovery = ManualDiscovery::factory(state),
                                      .heartbeat_interval = 100ms,
                                      .peer_timeout = 500ms})
                    .value();
    peermq::Discovery::HeardFrom heard_from;
    {
        std::lock_guard lock(state->mutex);
        heard_from = state->heard_from;
    }
    ASSERT_TRUE(heard_from);
    auto peer = peermq::Node::create({.name = "speaker",
                                      .interface = "lo",
                                      .peers = {node.address()},
                                      .heartbeat_interval = 100ms,
                                      .peer_timeout = 500ms})
                    .value();
    const std::string speaker = peer.id().short_string();
    EXPECT_FALSE(heard_from(node.id().short_string()));
    ASSERT_TRUE(wait_until([&] { return heard_from(speaker); }, 10s));
    // The speaker's HELLO made it alive: it greeted us, and no record of it was needed.
    const auto peers = node.peers();
    ASSERT_EQ(peers.size(), 1u);
    EXPECT_EQ(peers[0].id, peer.id());
    EXPECT_EQ(peers[0].state, peermq::PeerState::alive);

    peer.close();  // BYE: down at once
    EXPECT_TRUE(wait_until([&] { return !heard_from(speaker); }, 10s));
}

TEST(PeerLifecycle, ClosingNodeSaysByeToAPeerItKnowsOnlyByEndpoint) {
    // A raw socket stands in for a static peer that has our HELLO but has not answered yet: the
    // node knows no more of it than its address. In open mode that address carries its key, which
    // gives its id; in plain mode it is the bare endpoint, and the id stays unknown.
    for (const auto trust : {peermq::TrustMode::open, peermq::TrustMode::plain}) {
        const bool secure = trust == peermq::TrustMode::open;
        SCOPED_TRACE(secure ? "open" : "plain");
        const FakeIdentity identity = fake_identity();
        zmq::context_t context;
        zmq::socket_t inbox(context, zmq::socket_type::pull);
        curve_server(inbox, identity, secure);
        const std::string endpoint = "127.0.0.1:" + std::to_string(bind_loopback(inbox));

        auto node = peermq::Node::create(
                        {.name = "leaver",
                         .trust = trust,
                         .interface = "lo",
                         .peers = {secure ? peermq::peer_address(endpoint, identity.keys.public_key)
                                          : endpoint}})
                        .value();
        const peermq::NodeId id = node.id();
        ASSERT_TRUE(wait_for_frame(inbox, detail::Kind::hello, id, 10s));
        const auto peers = node.peers();
        ASSERT_EQ(peers.size(), 1u);
        EXPECT_EQ(peers[0].state, peermq::PeerState::connecting);  // it never answered
        EXPECT_TRUE(peers[0].name.empty());
        if (secure) {
            EXPECT_EQ(peers[0].id, identity.id);  // the id its key gives, and nothing else
        } else {
            EXPECT_TRUE(peers[0].id.is_nil());  // known by endpoint only
        }
        node.close();
        EXPECT_TRUE(wait_for_frame(inbox, detail::Kind::bye, id, 5s));
    }
}
