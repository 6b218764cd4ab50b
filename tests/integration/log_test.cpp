// Logging from real nodes over tcp loopback: peer lifecycle and node start/stop at info, dead
// letters with their reason and error, quiet by default, the environment and the options, and
// bad frames warned about once per reason rather than once per frame.
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/log_capture.hpp"
#include "support/raw_frames.hpp"
#include "support/scoped_env.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::ScopedEnv;
using peermq::testing::wait_until;
using Capture = peermq::testing::LogCapture;

namespace {

peermq::NodeOptions options(const std::string& name, Capture& capture,
                            peermq::LogLevel level = peermq::LogLevel::info,
                            std::vector<std::string> peers = {}) {
    return {.name = name,
            .interface = "lo",
            .peers = std::move(peers),
            .log_level = level,
            .log_sink = capture.sink()};
}

bool alive(const peermq::Node& node, const std::string& name, const std::string& queue = {}) {
    for (const auto& p : node.peers()) {
        if (p.name != name || p.state != peermq::PeerState::alive) continue;
        if (queue.empty()) return true;
        for (const auto& q : p.queues) {
            if (q == queue) return true;
        }
    }
    return false;
}

}  // namespace

TEST(Logging, PeerLifecycleAndNodeStartStopAreLoggedAtInfoWithThePeersName) {
    Capture log_a;
    Capture log_b;
    auto a = peermq::Node::create(options("log-a", log_a)).value();
    auto b = peermq::Node::create(options("log-b", log_b, peermq::LogLevel::info, {a.address()}))
                 .value();
    ASSERT_TRUE(b.consume("jobs", [](peermq::Delivery&) {}).ok());
    ASSERT_TRUE(wait_until([&] { return alive(a, "log-b", "jobs") && alive(b, "log-a"); }));

    const auto started = log_b.find("node started", {{"inbox", b.inbox_endpoint()}});
    ASSERT_TRUE(started) << "no 'node started' record";
    EXPECT_EQ(started->level, peermq::LogLevel::info);
    EXPECT_EQ(started->node, "log-b");
    EXPECT_EQ(started->component, "node");
    ASSERT_NE(started->find("id"), nullptr);
    EXPECT_EQ(started->find("id")->value, b.id().to_string());
    ASSERT_NE(started->find("discovery"), nullptr);
    EXPECT_EQ(started->find("discovery")->value, "static");

    ASSERT_TRUE(wait_until([&] {
        return log_a.find("peer alive", {{"peer", "log-b"}}).has_value();
    }));
    const auto seen = log_a.find("peer alive", {{"peer", "log-b"}});
    EXPECT_EQ(seen->level, peermq::LogLevel::info);
    EXPECT_EQ(seen->component, "peer");
    EXPECT_EQ(seen->node, "log-a");
    EXPECT_EQ(seen->find("id")->value, b.id().to_string());
    EXPECT_NE(seen->find("endpoint")->value.find("tcp://127.0.0.1:"), std::string::npos);
    ASSERT_TRUE(wait_until([&] {
        return log_b.find("peer alive", {{"peer", "log-a"}}).has_value();
    }));

    b.close();
    ASSERT_TRUE(wait_until([&] {
        return log_a.find("peer down", {{"peer", "log-b"}, {"reason", "bye"}}).has_value();
    }));
    EXPECT_EQ(log_a.find("peer down", {{"peer", "log-b"}})->level, peermq::LogLevel::info);
    EXPECT_TRUE(log_b.find("node stopped").has_value());
    // Nothing at info or above is logged per message, and nothing went wrong here.
    for (const auto& r : log_a.records()) {
        EXPECT_NE(r.level, peermq::LogLevel::warn) << peermq::format_logfmt(r);
        EXPECT_NE(r.level, peermq::LogLevel::error) << peermq::format_logfmt(r);
    }
}

TEST(Logging, APoisonMessageIsDeadLetteredAtInfoWithReasonAndError) {
    Capture log_consumer;
    Capture log_producer;
    auto consumer = peermq::Node::create(options("poison-c", log_consumer)).value();
    auto producer = peermq::Node::create(options("poison-p", log_producer, peermq::LogLevel::debug,
                                                 {consumer.address()}))
                        .value();
    ASSERT_TRUE(
        consumer
            .consume("orders", [](peermq::Delivery&) { throw std::runtime_error("bad order 42"); })
            .ok());
    ASSERT_TRUE(wait_until([&] { return alive(producer, "poison-c", "orders"); }));
    auto orders =
        producer.queue("orders", {.max_attempts = 2, .retry_initial = 10ms, .retry_max = 20ms})
            .value();
    auto receipt = orders.send_confirmed(42);
    ASSERT_EQ(receipt.wait_for(10s), std::future_status::ready);
    const auto result = receipt.get();
    ASSERT_TRUE(result.ok());
    const std::string id = result.value().id.to_string();
    ASSERT_EQ(result.value().outcome, peermq::Receipt::Outcome::dead_lettered);

    const auto letter = log_producer.find("dead-lettered", {{"id", id}});
    ASSERT_TRUE(letter) << "no dead-letter record";
    EXPECT_EQ(letter->level, peermq::LogLevel::info);
    EXPECT_EQ(letter->component, "dlq");
    EXPECT_EQ(letter->find("queue")->value, "orders");
    EXPECT_EQ(letter->find("reason")->value, "max_attempts");
    EXPECT_EQ(letter->find("attempts")->value, "2");
    EXPECT_EQ(letter->find("error")->value, "bad order 42");
    // At debug the producer also said it retried, and why.
    const auto retry = log_producer.find("retry scheduled", {{"id", id}});
    ASSERT_TRUE(retry) << "no retry record at debug";
    EXPECT_EQ(retry->level, peermq::LogLevel::debug);
    EXPECT_EQ(retry->find("error")->value, "bad order 42");
    // The consumer's log at info says nothing per message.
    EXPECT_FALSE(log_consumer.find("handler failed").has_value());
}

TEST(Logging, DefaultLevelLogsNothingAtInfo) {
    ScopedEnv env("PEERMQ_LOG", nullptr);
    Capture log_a;
    Capture log_b;
    {
        auto a = peermq::Node::create(options("quiet-a", log_a, peermq::LogLevel::unset)).value();
        auto b =
            peermq::Node::create(options("quiet-b", log_b, peermq::LogLevel::unset, {a.address()}))
                .value();
        ASSERT_TRUE(wait_until([&] { return alive(a, "quiet-b") && alive(b, "quiet-a"); }));
        b.close();
        ASSERT_TRUE(wait_until([&] {
            for (const auto& p : a.peers()) {
                if (p.name == "quiet-b" && p.state == peermq::PeerState::down) return true;
            }
            return false;
        }));
    }
    for (const auto* capture : {&log_a, &log_b}) {
        for (const auto& r : capture->records()) {
            ADD_FAILURE() << "logged at the default level: " << peermq::format_logfmt(r);
        }
    }
}

TEST(Logging, EnvironmentSetsTheLevelAndAnExplicitOptionWins) {
    Capture from_env;
    Capture explicit_level;
    {
        ScopedEnv env("PEERMQ_LOG", "info");
        auto a = peermq::Node::create(options("env-a", from_env, peermq::LogLevel::unset)).value();
        auto b =
            peermq::Node::create(options("env-b", explicit_level, peermq::LogLevel::error)).value();
    }
    EXPECT_TRUE(from_env.find("node started").has_value());
    EXPECT_TRUE(from_env.find("node stopped").has_value());
    EXPECT_TRUE(explicit_level.records().empty());
}

TEST(Logging, BadFramesAreWarnedAboutOncePerReasonNotOncePerFrame) {
    Capture capture;
    auto node = peermq::Node::create(options("target", capture, peermq::LogLevel::warn)).value();
    zmq::context_t context;
    zmq::socket_t attacker(context, zmq::socket_type::push);
    // A CURVE peer (a plain socket never gets past the handshake): its garbage reaches the node.
    peermq::testing::curve_client(attacker, node.public_key(), peermq::testing::fake_identity());
    attacker.connect(node.inbox_endpoint());
    constexpr int kFrames = 200;
    for (int i = 0; i < kFrames; ++i) {
        const std::string garbage = "not msgpack " + std::to_string(i);
        attacker.send(zmq::buffer(garbage), zmq::send_flags::none);
    }
    ASSERT_TRUE(wait_until([&] { return node.stats().bad_frames >= kFrames; }));
    std::size_t reasons = 0;
    for (const auto& [reason, count] : node.stats().dropped) {
        if (reason.starts_with("frame.")) ++reasons;
    }
    ASSERT_EQ(reasons, 1u);  // every frame above fails the same way
    const auto records = capture.records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].level, peermq::LogLevel::warn);
    EXPECT_EQ(records[0].component, "frame");
    EXPECT_EQ(records[0].message, "dropped a bad frame");
    ASSERT_NE(records[0].find("reason"), nullptr);
    EXPECT_TRUE(records[0].find("reason")->value.starts_with("frame."))
        << records[0].find("reason")->value;
    attacker.set(zmq::sockopt::linger, 0);
}
