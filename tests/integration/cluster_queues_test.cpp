// Node::cluster_queues (docs/spec/wire.md §15): every node reports its own queues when asked over
// its link, and the asker puts the reports together — no central server. Real nodes over tcp
// loopback with known traffic (a stalled consumer, a dead letter); peers spoken by hand for what
// only a broken or hostile peer does (never answering, asking in a loop, answering garbage).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/wait.hpp"
#include "wire/envelope.hpp"

using namespace std::chrono_literals;
using peermq::testing::dropped;
using peermq::testing::wait_until;
namespace detail = peermq::detail;

namespace {

bool sees_alive(const peermq::Node& node, const std::string& name) {
    const auto peers = node.peers();
    return std::any_of(peers.begin(), peers.end(), [&](const peermq::PeerInfo& p) {
        return p.name == name && p.state == peermq::PeerState::alive;
    });
}

const peermq::NodeQueues* node_named(const std::vector<peermq::NodeQueues>& nodes,
                                     const std::string& name) {
    for (const auto& node : nodes) {
        if (node.name == name) return &node;
    }
    return nullptr;
}

const peermq::QueueReport* queue_named(const peermq::NodeQueues& node, const std::string& queue) {
    for (const auto& q : node.queues) {
        if (q.queue == queue) return &q;
    }
    return nullptr;
}

// A peer spoken by hand (raw frames): HELLO, questions and answers, and what reached its inbox.
class HandPeer {
public:
    HandPeer(const peermq::Node& node, std::string name, bool reports)
        : sockets_(node.inbox_endpoint(), node.public_key()),
          name_(std::move(name)),
          reports_(reports) {}

    void hello() {
        detail::Hello hello = sockets_.hello(name_);
        hello.queue_reports = reports_;
        peermq::testing::send_hello(sockets_.to_node, hello, sockets_.identity.id);
    }

    void send(detail::Kind kind, std::uint64_t seq, const std::string* body = nullptr) {
        detail::Header header;
        header.kind = kind;
        header.sender = sockets_.identity.id;
        header.seq = seq;
        std::vector<std::string> frames = {peermq::testing::header_frame(header)};
        if (body) frames.push_back(*body);
        peermq::testing::send_frames(sockets_.to_node, frames);
    }

    // The headers of the frames that reached its inbox since the last call.
    std::vector<detail::Header> read() {
        std::vector<detail::Header> out;
        zmq::message_t frame;
        while (sockets_.inbox.recv(frame, zmq::recv_flags::dontwait)) {
            detail::Header header;
            const bool ok = !detail::decode_header(frame.data(), frame.size(), header);
            while (frame.more() && sockets_.inbox.recv(frame, zmq::recv_flags::dontwait)) {
            }
            if (ok) out.push_back(header);
        }
        return out;
    }

private:
    peermq::testing::HandSockets sockets_;
    std::string name_;
    bool reports_;
};

std::size_t count_kind(const std::vector<detail::Header>& headers, detail::Kind kind) {
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(), [&](const detail::Header& h) { return h.kind == kind; }));
}

}  // namespace

TEST(ClusterQueues, EachNodeReportsItsQueuesAStalledConsumerAndADeadLetterIncluded) {
    auto c1 = peermq::Node::create({.name = "c1", .interface = "lo"}).value();
    auto c2 = peermq::Node::create({.name = "c2", .interface = "lo"}).value();
    auto p = peermq::Node::create(
                 {.name = "p", .interface = "lo", .peers = {c1.address(), c2.address()}})
                 .value();
    ASSERT_TRUE(c1.consume("jobs", [](peermq::Delivery& delivery) {
                      if (delivery.as<std::string>() == "bad") delivery.reject("bad");
                  }).ok());
    // c2's handler stalls on the first message it gets until the test ends: a stuck consumer.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    ASSERT_TRUE(
        c2.consume("slow", [released](peermq::Delivery&) { released.wait(); }, {.prefetch = 2})
            .ok());
    struct Release {
        std::promise<void>& promise;
        ~Release() { promise.set_value(); }
    } release_at_end{release};
    ASSERT_TRUE(wait_until([&] { return sees_alive(p, "c1") && sees_alive(p, "c2"); }));
    ASSERT_TRUE(wait_until([&] {
        const auto peers = p.peers();
        return std::count_if(peers.begin(), peers.end(), [](const peermq::PeerInfo& peer) {
                   return !peer.queues.empty();
               }) == 2;
    }));

    auto jobs = p.queue("jobs", {.max_attempts = 1}).value();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(jobs.send(std::string("ok")).ok());
    ASSERT_TRUE(jobs.send(std::string("bad")).ok());
    auto slow = p.queue("slow").value();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(slow.send(i).ok());
    ASSERT_TRUE(wait_until([&] {
        auto stats = p.stats();
        return stats.queues["jobs"].acked == 5 && stats.queues["jobs"].dead_lettered == 1 &&
               stats.queues["slow"].in_flight == 2 && stats.queues["slow"].depth == 8;
    })) << "jobs acked "
        << p.stats().queues["jobs"].acked;

    auto nodes = p.cluster_queues(5s);
    ASSERT_TRUE(nodes.ok()) << nodes.status().to_string();
    ASSERT_EQ(nodes->size(), 3u);
    EXPECT_EQ((*nodes)[0].name, "p") << "the asking node's own report comes first";
    for (const auto& node : *nodes) {
        EXPECT_TRUE(node.answered) << node.name << ": " << node.error;
        EXPECT_GT(node.at_ms, 0) << node.name;
    }

    const auto* producer = node_named(*nodes, "p");
    ASSERT_NE(producer, nullptr);
    const auto* p_jobs = queue_named(*producer, "jobs");
    ASSERT_NE(p_jobs, nullptr);
    EXPECT_TRUE(p_jobs->producer);
    EXPECT_FALSE(p_jobs->consumer);
    EXPECT_EQ(p_jobs->waiting, 0u);
    EXPECT_EQ(p_jobs->in_flight, 0u);
    EXPECT_EQ(p_jobs->acked, 5u);
    EXPECT_EQ(p_jobs->dead_lettered, 1u);
    EXPECT_EQ(p_jobs->dead_letters, 1u) << "the letter is in its dead-letter store now";
    EXPECT_EQ(p_jobs->oldest_waiting_ms, 0) << "nothing waits";
    const auto* p_slow = queue_named(*producer, "slow");
    ASSERT_NE(p_slow, nullptr);
    EXPECT_TRUE(p_slow->producer);
    EXPECT_EQ(p_slow->waiting, 8u);
    EXPECT_EQ(p_slow->in_flight, 2u);
    EXPECT_EQ(p_slow->acked, 0u);
    EXPECT_GE(p_slow->oldest_waiting_ms, 0);

    const auto* consumer1 = node_named(*nodes, "c1");
    ASSERT_NE(consumer1, nullptr);
    const auto* c1_jobs = queue_named(*consumer1, "jobs");
    ASSERT_NE(c1_jobs, nullptr);
    EXPECT_TRUE(c1_jobs->consumer);
    EXPECT_FALSE(c1_jobs->producer);
    EXPECT_EQ(c1_jobs->prefetch, 256u);
    EXPECT_EQ(c1_jobs->delivered, 6u);
    EXPECT_EQ(queue_named(*consumer1, "slow"), nullptr) << "c1 has nothing to do with it";

    const auto* consumer2 = node_named(*nodes, "c2");
    ASSERT_NE(consumer2, nullptr);
    const auto* c2_slow = queue_named(*consumer2, "slow");
    ASSERT_NE(c2_slow, nullptr);
    EXPECT_TRUE(c2_slow->consumer);
    EXPECT_EQ(c2_slow->prefetch, 2u);
    EXPECT_EQ(c2_slow->delivered, 0u) << "its one handler call has not returned";

    // Waiting ages: asked again later, the head of "slow" is older.
    ASSERT_TRUE(wait_until(
        [&] {
            auto again = p.cluster_queues(5s);
            if (!again.ok()) return false;
            const auto* slow_now = queue_named((*again)[0], "slow");
            return slow_now && slow_now->oldest_waiting_ms >= p_slow->oldest_waiting_ms + 50;
        },
        5s, 100ms));
}

TEST(ClusterQueues, APeerThatDoesNotAnswerIsListedSoWithinTheTimeout) {
    auto node = peermq::Node::create({.name = "asker", .interface = "lo"}).value();
    HandPeer silent(node, "silent", true);
    HandPeer old(node, "old", false);
    silent.hello();
    old.hello();
    ASSERT_TRUE(wait_until([&] { return sees_alive(node, "silent") && sees_alive(node, "old"); }));

    const auto started = std::chrono::steady_clock::now();
    auto nodes = node.cluster_queues(300ms);
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(nodes.ok()) << nodes.status().to_string();
    EXPECT_LT(took, 3s);
    ASSERT_EQ(nodes->size(), 3u);
    EXPECT_TRUE((*nodes)[0].answered);
    const auto* silent_report = node_named(*nodes, "silent");
    ASSERT_NE(silent_report, nullptr);
    EXPECT_FALSE(silent_report->answered);
    EXPECT_EQ(silent_report->error, "no answer in time");
    const auto* old_report = node_named(*nodes, "old");
    ASSERT_NE(old_report, nullptr);
    EXPECT_FALSE(old_report->answered);
    EXPECT_EQ(old_report->error, "its version does not report queues");

    // The question did reach the peer that says it answers (its link was up), not the other.
    std::vector<detail::Header> silent_got;
    ASSERT_TRUE(wait_until([&] {
        auto more = silent.read();
        silent_got.insert(silent_got.end(), more.begin(), more.end());
        return count_kind(silent_got, detail::Kind::queue_query) == 1;
    }));
    EXPECT_EQ(count_kind(old.read(), detail::Kind::queue_query), 0u);

    EXPECT_FALSE(node.cluster_queues(-1ms).ok()) << "a negative timeout is refused";
}

TEST(ClusterQueues, AskingInALoopIsRateLimitedAndGarbageAnswersAreCounted) {
    auto node = peermq::Node::create({.name = "asked", .interface = "lo"}).value();
    ASSERT_TRUE(node.consume("work", [](peermq::Delivery&) {}).ok());
    HandPeer asker(node, "asker", true);
    asker.hello();
    ASSERT_TRUE(wait_until([&] { return sees_alive(node, "asker"); }));
    // The node's link to it is up (its HELLO came): every answer can leave at once. (An answer
    // owed to a link not up yet is sent when it connects, one per peer: the last asked.)
    ASSERT_TRUE(wait_until([&] { return count_kind(asker.read(), detail::Kind::hello) > 0; }));

    // Twenty questions back to back: a burst of five answers, the rest counted (four a second
    // come back: one more may be answered if the questions take a quarter second).
    for (std::uint64_t seq = 1; seq <= 20; ++seq) asker.send(detail::Kind::queue_query, seq);
    std::vector<detail::Header> got;
    ASSERT_TRUE(wait_until([&] {
        auto more = asker.read();
        got.insert(got.end(), more.begin(), more.end());
        return dropped(node.stats(), "report.rate_limited") +
                   count_kind(got, detail::Kind::queue_report) ==
               20;
    })) << dropped(node.stats(), "report.rate_limited")
        << " limited, " << count_kind(got, detail::Kind::queue_report) << " answered";
    EXPECT_GE(count_kind(got, detail::Kind::queue_report), 5u);
    EXPECT_LE(count_kind(got, detail::Kind::queue_report), 6u);

    // An answer nobody asked for, and a garbage answer to a real question.
    const std::string body("\x93\x01\x00\x90", 4);  // [1, 0, []]: a report with no queues
    asker.send(detail::Kind::queue_report, 987654, &body);
    ASSERT_TRUE(wait_until([&] { return dropped(node.stats(), "report.unexpected") == 1; }));

    std::future<peermq::Result<std::vector<peermq::NodeQueues>>> asking =
        std::async(std::launch::async, [&] { return node.cluster_queues(10s); });
    std::uint64_t seq = 0;
    ASSERT_TRUE(wait_until([&] {
        for (const auto& header : asker.read()) {
            if (header.kind == detail::Kind::queue_query) seq = header.seq;
        }
        return seq != 0;
    }));
    const std::string garbage = "\xc1\xc1\xc1";
    asker.send(detail::Kind::queue_report, seq, &garbage);
    ASSERT_TRUE(wait_until([&] { return dropped(node.stats(), "frame.bad_report") == 1; }));
    // A good answer after the garbage still counts.
    asker.send(detail::Kind::queue_report, seq, &body);
    auto nodes = asking.get();
    ASSERT_TRUE(nodes.ok()) << nodes.status().to_string();
    const auto* answer = node_named(*nodes, "asker");
    ASSERT_NE(answer, nullptr);
    EXPECT_TRUE(answer->answered) << answer->error;
    EXPECT_EQ(answer->at_ms, 1);
    EXPECT_TRUE(answer->queues.empty());
    EXPECT_EQ(node.stats().bad_frames, 1u);
}
