// A tcp control endpoint speaks CurveZMQ and admits only the node's own key and the keys of its
// control_keys file (docs/spec/control.md §8): whoever else reaches the loopback port — another
// user of the host, a process in a container sharing its network — reads and purges nothing.
// Real nodes, real ZeroMQ clients on loopback, a real control_keys file edited while the node runs.
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "admin/control_codec.hpp"
#include "peermq/control.hpp"
#include "peermq/peermq.hpp"
#include "support/free_port.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace peermq::testing {
namespace {

using namespace std::chrono_literals;

std::uint64_t dropped(const Node& node, const std::string& reason) {
    const auto stats = node.stats();
    const auto it = stats.dropped.find(reason);
    return it == stats.dropped.end() ? 0 : it->second;
}

void write_private(const std::string& path, const std::string& text) {
    const std::string temporary = path + ".new";
    std::ofstream(temporary, std::ios::trunc) << text;
    ::chmod(temporary.c_str(), 0600);
    std::filesystem::rename(temporary, path);
}

class ControlAuth : public ::testing::Test {
protected:
    void SetUp() override {
        // No key from the environment: a client proves only what a test gives it.
        ::unsetenv("PEERMQ_SECRET_KEY");
        NodeOptions o;
        o.name = "guarded";
        o.interface = "lo";
        o.data_dir = dir_.file("node");
        o.control_endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
        o.secret_key = own_.secret_key;
        auto node = Node::create(o);
        ASSERT_TRUE(node.ok()) << node.status().to_string();
        node_.emplace(std::move(node).value());
    }

    Result<NodeStats> stats_as(const std::string& secret_key) {
        auto client = ControlClient::connect(node_->control_endpoint(), 5s, secret_key);
        if (!client) return client.status();
        return client->stats();
    }

    std::string control_keys() const { return dir_.file("node/control_keys"); }

    TempDir dir_;
    const KeyPair own_ = generate_key_pair().value();
    const KeyPair operator_ = generate_key_pair().value();
    const KeyPair stranger_ = generate_key_pair().value();
    std::optional<Node> node_;
};

TEST_F(ControlAuth, TheEndpointCarriesTheNodesKeyAndAdmitsTheNodesOwnKey) {
    const std::string endpoint = node_->control_endpoint();
    ASSERT_TRUE(endpoint.starts_with("tcp://127.0.0.1:")) << endpoint;
    EXPECT_TRUE(endpoint.ends_with("#" + node_->public_key())) << endpoint;
    auto stats = stats_as(own_.secret_key);
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->name, "guarded");
    EXPECT_EQ(dropped(*node_, "control.unauthorized"), 0u);
}

TEST_F(ControlAuth, AKeyNotListedIsRefusedAtOnceAndCounted) {
    const auto start = std::chrono::steady_clock::now();
    auto stats = stats_as(stranger_.secret_key);
    ASSERT_FALSE(stats.ok());
    EXPECT_EQ(stats.status().code(), ErrorCode::permission_denied) << stats.status().to_string();
    EXPECT_NE(stats.status().message().find(stranger_.public_key), std::string::npos)
        << stats.status().message();
    // Told by the handshake, not by the client's timeout (5 s).
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
    EXPECT_TRUE(wait_until([&] { return dropped(*node_, "control.unauthorized") >= 1; }));
    // Nothing it asked was done: its dead-letter purge is refused the same way.
    auto client = ControlClient::connect(node_->control_endpoint(), 5s, stranger_.secret_key);
    ASSERT_TRUE(client.ok());
    DeadLetterFilter all;
    all.queue = "orders";
    EXPECT_EQ(client->dead_letter_purge(all).status().code(), ErrorCode::permission_denied);
}

TEST_F(ControlAuth, KeysAddedToAndRemovedFromControlKeysCountFromTheNextConnection) {
    EXPECT_EQ(stats_as(operator_.secret_key).status().code(), ErrorCode::permission_denied);

    write_private(control_keys(), "# admins\n" + operator_.public_key + " ops-laptop\n");
    auto admitted = stats_as(operator_.secret_key);
    ASSERT_TRUE(admitted.ok()) << admitted.status().to_string();
    EXPECT_EQ(admitted->name, "guarded");
    EXPECT_EQ(stats_as(stranger_.secret_key).status().code(), ErrorCode::permission_denied);

    write_private(control_keys(), "# nobody\n");
    EXPECT_EQ(stats_as(operator_.secret_key).status().code(), ErrorCode::permission_denied);
    // The node's own key needs no line.
    EXPECT_TRUE(stats_as(own_.secret_key).ok());
}

TEST_F(ControlAuth, AControlKeysFileOthersMayWriteAdmitsNoOne) {
    write_private(control_keys(), operator_.public_key + " ops-laptop\n");
    ::chmod(control_keys().c_str(), 0666);  // anyone could have added their key to it
    EXPECT_EQ(stats_as(operator_.secret_key).status().code(), ErrorCode::permission_denied);
    EXPECT_TRUE(stats_as(own_.secret_key).ok());
}

TEST_F(ControlAuth, APlainZeroMqClientGetsNoAnswer) {
    // A well-formed stats request from a socket without CurveZMQ: the handshake fails, the
    // request is never read.
    zmq::context_t context;
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    const std::string endpoint = node_->control_endpoint();
    dealer.connect(endpoint.substr(0, endpoint.size() - kKeyTextSize - 1));
    msgpack::sbuffer request;
    detail::encode_request(detail::StatsRequest{}, request);
    ASSERT_TRUE(dealer.send(zmq::message_t(), zmq::send_flags::sndmore));
    ASSERT_TRUE(dealer.send(zmq::message_t(request.data(), request.size()), zmq::send_flags::none));
    zmq_pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, 1500ms), 0) << "a plain client was answered";
    // The node still answers its own key.
    EXPECT_TRUE(stats_as(own_.secret_key).ok());
}

TEST_F(ControlAuth, ATcpEndpointNeedsTheNodesKeyAndAKeyToProve) {
    const std::string endpoint = node_->control_endpoint();
    const std::string bare = endpoint.substr(0, endpoint.size() - kKeyTextSize - 1);
    auto no_server_key = ControlClient::connect(bare, 1s, own_.secret_key);
    ASSERT_FALSE(no_server_key.ok());
    EXPECT_EQ(no_server_key.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(no_server_key.status().message().find("#KEY"), std::string::npos)
        << no_server_key.status().message();

    auto no_secret = ControlClient::connect(endpoint, 1s);
    ASSERT_FALSE(no_secret.ok());
    EXPECT_EQ(no_secret.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(no_secret.status().message().find("PEERMQ_SECRET_KEY"), std::string::npos)
        << no_secret.status().message();

    EXPECT_EQ(ControlClient::connect(endpoint, 1s, "not a key").status().code(),
              ErrorCode::invalid_argument);

    // The right admin key against the wrong server key: no answer, never someone else's.
    auto impostor = ControlClient::connect(bare + "#" + stranger_.public_key, 1s, own_.secret_key);
    ASSERT_TRUE(impostor.ok());
    auto answer = impostor->stats();
    EXPECT_EQ(answer.status().code(), ErrorCode::unavailable) << answer.status().to_string();
}

}  // namespace
}  // namespace peermq::testing
