// Hostile peers against a node in a process of its own: whatever a stranger sends to its inbox,
// the node stays up, answers `stats` on its control endpoint within 1 s, keeps its memory within
// a stated bound, and delivers a concurrent legitimate stream completely (docs/spec/wire.md §6,
// §9, §13). The attacker is this test process, speaking the wire protocol over a raw ZeroMQ PUSH.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peermq/control.hpp"
#include "peermq/peermq.hpp"
#include "support/driver.hpp"
#include "support/free_port.hpp"
#include "support/raw_frames.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

namespace peermq::testing {
namespace {

using namespace std::chrono_literals;
namespace detail = peermq::detail;

constexpr int kLegitMessages = 5000;
// The target's resident memory may not grow past this (it starts at ~10 MiB): 1 024 peers at
// the HELLO size limit, with their sockets, fit well inside it.
constexpr std::uint64_t kRssBoundBytes = 256ull << 20;
// Under AddressSanitizer (scripts/test.sh's second pass) the target runs instrumented: its memory
// holds shadow bytes and a quarantine of freed blocks that is never given back, and it answers
// several times slower. There these tests look for crashes and memory errors; the memory bounds
// and the 1 s answer are checked by the normal build.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
constexpr auto kAnswerWithin = kSanitized ? std::chrono::milliseconds(10'000) : 1000ms;

// A consumer node under attack, a legitimate producer feeding it, and the attacker's socket.
class HostileTest : public ::testing::Test {
protected:
    void SetUp() override {
        control_ = "tcp://127.0.0.1:" + std::to_string(free_port());
        std::vector<std::string> args = {"--name", "target",   "--consume", "work",
                                         "--log",  log_path(), "--control", control_};
        args.insert(args.end(), extra_target_args_.begin(), extra_target_args_.end());
        target_ = std::make_unique<TestNode>(args);
        ASSERT_TRUE(target_->ready());
        attacker_.set(zmq::sockopt::linger, 0);
        attacker_.set(zmq::sockopt::sndhwm, 0);
        attacker_.connect(target_->endpoint());
    }

    std::string log_path() const { return dir_.path() + "/handled.log"; }

    void start_producer() {
        producer_ = std::make_unique<TestNode>(std::vector<std::string>{
            "--name", "producer", "--peer", host_port(target_->endpoint()), "--produce", "work",
            "--count", std::to_string(kLegitMessages)});
        ASSERT_TRUE(producer_->ready());
    }

    // Every legitimate message handled (at least once) by the target.
    void expect_legit_stream_delivered() {
        std::set<std::string> handled;
        const bool all = wait_until(
            [&] {
                std::ifstream in(log_path());
                std::string line;
                while (std::getline(in, line)) handled.insert(line);
                return handled.size() >= kLegitMessages;
            },
            60s);
        EXPECT_TRUE(all) << "handled " << handled.size() << " of " << kLegitMessages;
    }

    bool target_alive() const {
        std::ifstream status("/proc/" + std::to_string(target_->pid()) + "/status");
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("State:", 0) == 0) return line.find('Z') == std::string::npos;
        }
        return false;
    }

    std::uint64_t target_rss() const {
        std::ifstream status("/proc/" + std::to_string(target_->pid()) + "/status");
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("VmRSS:", 0) == 0) {
                std::istringstream in(line.substr(6));
                std::uint64_t kib = 0;
                in >> kib;
                return kib * 1024;
            }
        }
        return 0;
    }

    // The target's stats through its control endpoint, as `peermq stats` reads them; nullopt
    // when no answer came within 1 s.
    std::optional<NodeStats> stats_within_1s() {
        auto client = ControlClient::connect(control_, kAnswerWithin);
        if (!client) return std::nullopt;
        const auto start = std::chrono::steady_clock::now();
        auto stats = client->stats();
        if (!stats || std::chrono::steady_clock::now() - start > kAnswerWithin) return std::nullopt;
        return std::move(stats).value();
    }

    // Alive, answering, within its memory bound: checked several times while the attack runs.
    void expect_healthy(const char* when) {
        ASSERT_TRUE(target_alive()) << when << ": the target process died";
        EXPECT_TRUE(stats_within_1s()) << when << ": stats did not answer within 1 s";
        const std::uint64_t rss = target_rss();
        if (!kSanitized) {
            EXPECT_LT(rss, kRssBoundBytes) << when;
        }
        max_rss_ = std::max(max_rss_, rss);
    }

    void TearDown() override {
        std::printf("hostile: %s: target rss at most %.1f MiB\n",
                    ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                    static_cast<double>(max_rss_) / (1 << 20));
    }

    void send(const std::string& header, const std::string& body) {
        send_frames(attacker_, {header, body});
    }

    static detail::Hello fake_hello(std::string host, std::uint16_t port) {
        detail::Hello hello;
        hello.name = "intruder";
        hello.cluster = "default";
        hello.host = std::move(host);
        hello.inbox_port = port;
        hello.pub_port = port;
        return hello;
    }

    std::uint64_t dropped(const NodeStats& stats, const std::string& reason) {
        auto it = stats.dropped.find(reason);
        return it == stats.dropped.end() ? 0 : it->second;
    }

    std::vector<std::string> extra_target_args_;
    std::uint64_t max_rss_ = 0;
    std::uint64_t baseline_rss_ = 0;
    TempDir dir_{"peermq-hostile"};
    std::string control_;
    std::unique_ptr<TestNode> target_;
    std::unique_ptr<TestNode> producer_;
    zmq::context_t context_;
    zmq::socket_t attacker_{context_, zmq::socket_type::push};
};

// wire.md §6: `host` must be an IP address; anything else is dropped as hello.bad_host, once, and
// nothing is connected to it.
TEST_F(HostileTest, OneHelloWithAHostThatIsNoAddressIsCountedAndTheNodeServesOn) {
    start_producer();
    const std::vector<std::string> bad_hosts = {
        "!bad", "a b", "host:1", "[::1]", "*", "", std::string(255, 'x'), "127.0.0.1;x"};
    std::uint64_t expected = 0;
    for (const auto& host : bad_hosts) {
        if (host.empty()) continue;  // empty means "the address it came from": valid
        send(header_frame(NodeId::generate(), detail::Kind::hello),
             hello_frame(fake_hello(host, 4242)));
        ++expected;
    }
    std::optional<NodeStats> stats;
    ASSERT_TRUE(wait_until([&] {
        if (!target_alive()) return false;
        stats = stats_within_1s();
        return stats && dropped(*stats, "hello.bad_host") == expected;
    })) << "alive "
        << target_alive() << " hello.bad_host " << (stats ? dropped(*stats, "hello.bad_host") : 0);
    for (const auto& peer : stats->peers) EXPECT_NE(peer.name, "intruder");
    expect_legit_stream_delivered();
    expect_healthy("after bad hosts");
}

// §6 and §13: thousands of ids claiming to be peers cost a bounded table, bounded sockets and
// bounded memory; those that never answer are forgotten, and a real producer is unaffected.
TEST_F(HostileTest, AFloodOfHellosFromThousandsOfIdsLeavesTheNodeServing) {
    constexpr int kIds = 6000;
    // Half point at closed ports (never reachable), half at this test's own listening socket
    // (reachable: the node can connect, and must still bound what it holds).
    zmq::socket_t sink(context_, zmq::socket_type::pull);
    const std::uint16_t sink_port = bind_loopback(sink);
    start_producer();
    for (int i = 0; i < kIds; ++i) {
        const std::uint16_t port =
            i % 2 == 0 ? sink_port : static_cast<std::uint16_t>(1 + (i % 1000));
        send(header_frame(NodeId::generate(), detail::Kind::hello),
             hello_frame(fake_hello("127.0.0.1", port)));
        if (i % 1000 == 999) expect_healthy("during the flood");
    }
    // One connection delivers in order: once this marker is counted, every HELLO was handled.
    {
        const std::string heartbeat = header_frame(NodeId::generate(), detail::Kind::heartbeat);
        zmq::message_t marker(heartbeat.data(), heartbeat.size());
        attacker_.send(marker, zmq::send_flags::none);
    }
    std::optional<NodeStats> stats;
    ASSERT_TRUE(wait_until([&] {
        stats = stats_within_1s();
        return stats && dropped(*stats, "frame.unknown_sender") == 1;
    })) << "the flood was not handled";
    EXPECT_GT(dropped(*stats, "peer.table_full") + dropped(*stats, "peer.evicted"), 0u);
    EXPECT_LE(stats->peers.size(), 1024u + 1);
    std::printf("hostile: flood of %d ids: %zu peers kept, %llu evicted, %llu refused\n", kIds,
                stats->peers.size(),
                static_cast<unsigned long long>(dropped(*stats, "peer.evicted")),
                static_cast<unsigned long long>(dropped(*stats, "peer.table_full")));
    expect_legit_stream_delivered();
    expect_healthy("after the flood");
    // sink receives the node's HELLOs; drain it so its memory is not the test's problem.
    zmq::message_t frame;
    while (sink.recv(frame, zmq::recv_flags::dontwait)) {
    }
}

// §6: a HELLO body is at most 65 536 bytes and announces a bounded number of queues and topics;
// a larger one is dropped before anything is kept.
TEST_F(HostileTest, HellosAtTheSizeLimitsCostBoundedMemory) {
    start_producer();
    baseline_rss_ = target_rss();
    constexpr int kFatPeers = 60;
    detail::Hello fat = fake_hello("127.0.0.1", 1);
    for (int i = 0; i < 4000; ++i) {
        fat.queues.push_back(detail::QueueAd{std::string(250, 'q') + std::to_string(i), 1});
    }
    for (int i = 0; i < 4000; ++i) fat.topics.push_back(std::string(250, 't') + std::to_string(i));
    const std::string fat_body = hello_frame(fat);
    ASSERT_GT(fat_body.size(), 2'000'000u);
    for (int i = 0; i < kFatPeers; ++i) {
        send(header_frame(NodeId::generate(), detail::Kind::hello), fat_body);
    }
    std::optional<NodeStats> stats;
    ASSERT_TRUE(wait_until([&] {
        stats = stats_within_1s();
        return stats && dropped(*stats, "hello.oversized") == kFatPeers;
    })) << "hello.oversized "
        << (stats ? dropped(*stats, "hello.oversized") : 0);
    expect_healthy("after fat hellos");
    // Just under the limits: accepted, and still cheap.
    detail::Hello wide = fake_hello("127.0.0.1", 1);
    for (int i = 0; wide.queues.size() < detail::kMaxHelloQueues; ++i) {
        wide.queues.push_back(detail::QueueAd{"q" + std::to_string(i), 1});
    }
    for (int i = 0; wide.topics.size() < detail::kMaxHelloTopics; ++i) {
        wide.topics.push_back("t" + std::to_string(i));
    }
    const std::string wide_body = hello_frame(wide);
    ASSERT_LE(wide_body.size(), detail::kMaxHelloBytes);
    for (int i = 0; i < kFatPeers; ++i) {
        send(header_frame(NodeId::generate(), detail::Kind::hello), wide_body);
    }
    for (int i = 0; i < 20; ++i) expect_healthy("after wide hellos");
    expect_legit_stream_delivered();
    // Their addresses never answer: once down they are forgotten, and what they held is given
    // back to the system, not kept by the allocator.
    const std::uint64_t held = target_rss();
    ASSERT_TRUE(wait_until(
        [&] {
            auto stats = stats_within_1s();
            if (!stats) return false;
            for (const auto& peer : stats->peers) {
                if (peer.name == "intruder") return false;
            }
            return true;
        },
        20s));
    const std::uint64_t after = target_rss();
    std::printf("hostile: rss with 60 wide peers %.1f MiB, after they were forgotten %.1f MiB\n",
                static_cast<double>(held) / (1 << 20), static_cast<double>(after) / (1 << 20));
    if (!kSanitized) {
        EXPECT_LT(after, held - (held - baseline_rss_) / 2) << "memory not returned";
    }
}

// wire.md §8.2 step 4: what a node queues for one handler is bounded (max_handler_queue,
// max_handler_queue_bytes). Its handler hangs on the first message while a legitimate
// best-effort producer sends it 1 GB (100 000 × 10 KiB): past the bound each message is dropped
// and counted `inbox.full`, and the node's memory stays within the bound, not the flood's size.
class HangingHandlerTest : public HostileTest {
protected:
    HangingHandlerTest() { extra_target_args_ = {"--stall-after", "0"}; }
};

TEST_F(HangingHandlerTest, ABestEffortFloodAtAHungHandlerIsDroppedPastTheBound) {
    constexpr std::uint64_t kMessages = 100'000;
    constexpr std::size_t kPayloadBytes = 10 * 1024;
    NodeOptions options;
    options.name = "flooder";
    options.interface = "lo";
    options.peers = {host_port(target_->endpoint())};
    auto flooder = Node::create(options);
    ASSERT_TRUE(flooder.ok()) << flooder.status().to_string();
    ASSERT_TRUE(wait_until([&] {
        for (const auto& peer : flooder.value().peers()) {
            if (peer.name == "target" && peer.state == PeerState::alive &&
                std::find(peer.queues.begin(), peer.queues.end(), "work") != peer.queues.end()) {
                return true;
            }
        }
        return false;
    }));
    auto work = flooder.value().queue("work", {.guarantee = Guarantee::best_effort});
    ASSERT_TRUE(work.ok()) << work.status().to_string();
    const std::string payload(kPayloadBytes, 'f');
    for (std::uint64_t i = 0; i < kMessages; ++i) {
        ASSERT_TRUE(work.value().send(payload).ok()) << i;
        if (i % 10'000 == 0) max_rss_ = std::max(max_rss_, target_rss());
    }
    // Until the target has read every message: each one was queued for the handler or dropped.
    std::optional<NodeStats> stats;
    const bool all_read = wait_until(
        [&] {
            max_rss_ = std::max(max_rss_, target_rss());
            stats = stats_within_1s();
            return stats && stats->queues["work"].received == kMessages;
        },
        120s);
    ASSERT_TRUE(all_read) << "received " << (stats ? stats->queues["work"].received : 0);
    expect_healthy("after the flood");
    const std::uint64_t full = dropped(*stats, "inbox.full");
    const std::uint64_t kept = kMessages - full;
    std::printf(
        "hostile: 1 GB best-effort flood at a hung handler: %llu kept for it, %llu "
        "dropped as inbox.full, target rss at most %.1f MiB\n",
        static_cast<unsigned long long>(kept), static_cast<unsigned long long>(full),
        static_cast<double>(max_rss_) / (1 << 20));
    const NodeOptions defaults;
    EXPECT_LE(kept, defaults.max_handler_queue);
    EXPECT_LE((kept - 1) * kPayloadBytes, defaults.max_handler_queue_bytes);
    EXPECT_GT(full, 0u);
    // The bound is 64 MiB of payloads; 1 GB went past.
    if (!kSanitized) {
        EXPECT_LT(max_rss_, 160ull << 20);
    }
}

}  // namespace
}  // namespace peermq::testing
