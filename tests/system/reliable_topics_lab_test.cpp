// Reliable topics on the lab LAN (scripts/lab.sh: three hosts in network namespaces on one
// bridge), issue #16: a publisher on host 1 streams numbers on a topic; a reliable subscriber on
// host 2 must receive every one in order or be told it is lost, never miss one silently, while
// host 2 drops 5 % of the packets it receives (nftables, `lab.sh loss`), and across a cut of
// host 2's link long enough for both sides to mark each other down, healed while the stream goes
// on. The publisher keeps all it publishes (--topic-history), so everything is repairable: the
// tests also require that nothing is reported lost. Each run prints one "reliable-topics:" line.
//
// Suite `Lab`: CMake runs Lab.* under the label system-lab with the fixture `lab`.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "peermq/keys.hpp"
#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "system/support/lab_nodes.hpp"
#include "system/support/system_env.hpp"

namespace peermq::test {
namespace {

using namespace std::chrono_literals;
using namespace peermq::testing;

constexpr int kPublisherHost = 1;
constexpr int kSubscriberHost = 2;

// What the subscriber printed, in its order: each message (TOPIC) and each lost range (LOST).
struct Received {
    struct Span {
        long long first;
        long long last;
        bool lost;
    };
    std::vector<Span> spans;
    long long delivered = 0;
    long long lost = 0;
    std::string problem;  // the first disorder found, if any

    // The spans of `topic` must run 1, 2, ... with no hole and no overlap, each delivered message
    // carrying its own number as its value.
    static Received of(const ProbeNode& subscriber, const std::string& topic) {
        Received out;
        std::istringstream lines(subscriber.output());
        long long next = 1;
        for (std::string line; std::getline(lines, line);) {
            std::istringstream words(line);
            std::string kind, name;
            words >> kind >> name;
            if (name != topic || (kind != "TOPIC" && kind != "LOST")) continue;
            long long a = 0, b = 0;
            words >> a >> b;
            const Span span = kind == "TOPIC" ? Span{a, a, false} : Span{a, b, true};
            if (kind == "TOPIC" && b != a && out.problem.empty()) {
                out.problem = "message " + std::to_string(a) + " carries " + std::to_string(b);
            }
            if (span.first != next && out.problem.empty()) {
                out.problem = "expected " + std::to_string(next) + ", got: " + line;
            }
            next = span.last + 1;
            (span.lost ? out.lost : out.delivered) += span.last - span.first + 1;
            out.spans.push_back(span);
        }
        return out;
    }
    long long accounted() const { return delivered + lost; }
};

// A publisher and a reliable subscriber of "feed.", static peers at each other's lab address.
struct Pair {
    explicit Pair(const std::string& dir) {
        const std::string token = unique_token();
        const auto port = static_cast<std::uint16_t>(20000 + std::random_device{}() % 20000);
        const KeyPair pub_key = generate_key_pair().value();
        const KeyPair sub_key = generate_key_pair().value();
        auto args = [&](int other, const KeyPair& other_key) {
            return Args{
                "--cluster",
                "rt-" + token,
                "--interface",
                "lan0",
                "--discovery",
                "static",
                "--port",
                std::to_string(port),
                "--peer",
                peer_address("10.77.0." + std::to_string(other) + ":" + std::to_string(port),
                             other_key.public_key)};
        };
        Args pub_args = args(kSubscriberHost, sub_key);
        pub_args.insert(pub_args.end(), {"--topic-history", "100000"});
        Args sub_args = args(kPublisherHost, pub_key);
        // All the publisher holds, so that no start can fall after the first numbers.
        sub_args.insert(sub_args.end(), {"--reliable", "feed.", "--history", "100000"});
        publisher = lab_node(dir, kPublisherHost, "pub-" + token, pub_args, pub_key.secret_key);
        subscriber = lab_node(dir, kSubscriberHost, "sub-" + token, sub_args, sub_key.secret_key);
    }

    bool meshed() {
        EXPECT_TRUE(publisher->ready(15s)) << publisher->output();
        EXPECT_TRUE(subscriber->ready(15s)) << subscriber->output();
        if (::testing::Test::HasFailure()) return false;
        EXPECT_TRUE(publisher->peer_state(subscriber->name(), "alive", 0, 20s))
            << publisher->tail();
        EXPECT_TRUE(subscriber->peer_state(publisher->name(), "alive", 0, 20s))
            << subscriber->tail();
        return !::testing::Test::HasFailure();
    }

    // Waits until the subscriber accounted for `count` numbers of `topic` (or the deadline).
    Received wait_accounted(const std::string& topic, long long count,
                            std::chrono::milliseconds timeout) {
        Received received;
        (void)wait_until(
            [&] {
                received = Received::of(*subscriber, topic);
                return received.accounted() >= count || !received.problem.empty();
            },
            timeout, 50ms);
        return received;
    }

    std::unique_ptr<ProbeNode> publisher;
    std::unique_ptr<ProbeNode> subscriber;
};

// Removes host 2's packet loss however the test ends.
struct LossOnSubscriberHost {
    explicit LossOnSubscriberHost(int percent) {
        ok = lab({"loss", std::to_string(kSubscriberHost), std::to_string(percent)});
    }
    ~LossOnSubscriberHost() { (void)lab({"loss", std::to_string(kSubscriberHost), "0"}); }
    bool ok = false;
};

TEST(Lab, AReliableSubscriberLosingFivePercentOfItsPacketsGetsEveryNumberInOrder) {
    ASSERT_TRUE(lab_is_up()) << "the lab is not up (scripts/lab.sh up 3)";
    TempDir dir("peermq-rt-loss");
    Pair pair(dir.path());
    ASSERT_TRUE(pair.meshed());
    LossOnSubscriberHost loss(5);
    ASSERT_TRUE(loss.ok);
    constexpr long long kCount = 6000;
    ASSERT_TRUE(
        pair.publisher->ask_ok("publish feed.loss " + std::to_string(kCount) + " 1000", 5s));
    const Received received = pair.wait_accounted("feed.loss", kCount, 60s);
    std::printf(
        "reliable-topics: 5%% loss on the subscriber's host: %lld of %lld delivered in "
        "order, %lld reported lost\n",
        received.delivered, kCount, received.lost);
    EXPECT_TRUE(received.problem.empty()) << received.problem;
    EXPECT_EQ(received.accounted(), kCount) << pair.subscriber->tail();
    EXPECT_EQ(received.lost, 0) << "the publisher held every number";
    EXPECT_EQ(pair.publisher->quit(), 0);
    EXPECT_EQ(pair.subscriber->quit(), 0);
}

TEST(Lab, AReliableSubscriberCutOffAndHealedGetsWhatItMissedRepaired) {
    ASSERT_TRUE(lab_is_up()) << "the lab is not up (scripts/lab.sh up 3)";
    TempDir dir("peermq-rt-cut");
    Pair pair(dir.path());
    ASSERT_TRUE(pair.meshed());
    constexpr long long kCount = 9000;
    ASSERT_TRUE(pair.publisher->ask_ok("publish feed.cut " + std::to_string(kCount) + " 1000", 5s));
    ASSERT_GE(pair.wait_accounted("feed.cut", 1000, 20s).delivered, 1000);
    ASSERT_TRUE(lab("cut", kSubscriberHost));
    const std::int64_t cut_ns = monotonic_ns();
    // Long enough for the publisher to mark the subscriber down (its links are made anew).
    const bool down =
        pair.publisher->peer_state(pair.subscriber->name(), "down", cut_ns, 20s).has_value();
    ASSERT_TRUE(lab("heal", kSubscriberHost));
    ASSERT_TRUE(down) << pair.publisher->tail();
    const Received received = pair.wait_accounted("feed.cut", kCount, 60s);
    std::printf(
        "reliable-topics: a cut of %.1f s: %lld of %lld delivered in order, %lld "
        "reported lost\n",
        static_cast<double>(monotonic_ns() - cut_ns) / 1e9, received.delivered, kCount,
        received.lost);
    EXPECT_TRUE(received.problem.empty()) << received.problem;
    EXPECT_EQ(received.accounted(), kCount) << pair.subscriber->tail();
    EXPECT_EQ(received.lost, 0) << "the publisher held every number";
    // The cut lost messages on the way (the subscriber's SUB connection was made anew): they
    // came again as REPAIRs.
    const auto stats = pair.subscriber->ask("topic-stats feed.cut", 5s);
    ASSERT_TRUE(stats);
    std::printf("reliable-topics: subscriber %s\n", stats->c_str());
    EXPECT_EQ(stats->find(" repaired=0 "), std::string::npos) << *stats;
    EXPECT_EQ(pair.publisher->quit(), 0);
    EXPECT_EQ(pair.subscriber->quit(), 0);
}

}  // namespace
}  // namespace peermq::test
