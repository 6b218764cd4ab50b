// No exception ends a thread the library runs: the control endpoint's server, and the
// dispatcher that runs peer event handlers, catch what is thrown at them (here exceptions of a
// type not derived from std::exception, which a `catch (const std::exception&)` lets through),
// log it, count it in NodeStats::thread_errors and keep serving.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "peermq/control.hpp"
#include "peermq/peermq.hpp"
#include "support/free_port.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::free_port;
using peermq::testing::wait_until;

namespace {

// A discovery backend that finds nothing and whose ignored() throws `42` once armed.
class ThrowingDiscovery final : public peermq::Discovery {
public:
    explicit ThrowingDiscovery(std::shared_ptr<std::atomic<bool>> armed)
        : armed_(std::move(armed)) {}
    std::string_view backend() const override { return "throwing"; }
    peermq::Status start(const peermq::ServiceRecord&, peermq::DiscoverySink) override {
        return {};
    }
    void stop() override {}
    std::map<std::string, std::uint64_t> ignored() const override {
        if (armed_->exchange(false)) throw 42;
        return {};
    }

private:
    std::shared_ptr<std::atomic<bool>> armed_;
};

std::string tcp_endpoint() { return "tcp://127.0.0.1:" + std::to_string(free_port()); }

// The nodes' key, which their tcp control endpoints admit (the client proves it).
const peermq::KeyPair& own_key() {
    static const peermq::KeyPair pair = peermq::generate_key_pair().value();
    return pair;
}

}  // namespace

TEST(ThreadFailures, AControlRequestThatThrowsIsAnsweredWithAnErrorAndTheServerKeepsServing) {
    auto armed = std::make_shared<std::atomic<bool>>(false);
    peermq::NodeOptions options{.name = "node-a", .interface = "lo"};
    options.control_endpoint = tcp_endpoint();
    options.discovery = [armed]() -> peermq::Result<std::unique_ptr<peermq::Discovery>> {
        return std::unique_ptr<peermq::Discovery>(std::make_unique<ThrowingDiscovery>(armed));
    };
    options.secret_key = own_key().secret_key;
    auto node = peermq::Node::create(options).value();
    auto client =
        peermq::ControlClient::connect(node.control_endpoint(), 5s, own_key().secret_key).value();

    armed->store(true);
    auto failed = client.stats();
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), peermq::ErrorCode::internal);
    EXPECT_NE(failed.status().message().find("not derived from std::exception"), std::string::npos)
        << failed.status().to_string();

    auto peers = client.peers();
    EXPECT_TRUE(peers.ok()) << peers.status().to_string();
    auto stats = client.stats();
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->name, "node-a");
    EXPECT_EQ(stats->thread_errors["control"], 1u);
}

TEST(ThreadFailures, APeerEventHandlerThatThrowsIsCountedAndEventsKeepComing) {
    peermq::NodeOptions options{.name = "watcher", .interface = "lo"};
    options.heartbeat_interval = 100ms;
    options.peer_timeout = 500ms;
    options.control_endpoint = tcp_endpoint();
    options.secret_key = own_key().secret_key;
    auto watcher = peermq::Node::create(options).value();
    std::atomic<int> events{0};
    watcher.on_peer_event([&](const peermq::PeerEvent&) {
        ++events;
        throw 42;
    });
    {
        auto other = peermq::Node::create({.name = "other",
                                           .interface = "lo",
                                           .peers = {watcher.address()},
                                           .heartbeat_interval = 100ms,
                                           .peer_timeout = 500ms})
                         .value();
        ASSERT_TRUE(wait_until([&] { return events >= 1; }));
    }  // closed: a BYE, another event
    ASSERT_TRUE(wait_until([&] { return events >= 2; }));
    auto client =
        peermq::ControlClient::connect(watcher.control_endpoint(), 5s, own_key().secret_key)
            .value();
    std::uint64_t counted = 0;
    EXPECT_TRUE(wait_until([&] {
        auto stats = client.stats();
        counted = stats ? stats->thread_errors["peer_event_handler"] : 0;
        return counted == static_cast<std::uint64_t>(events.load());
    })) << counted
        << " counted of " << events << " events";
}
