// Reliable topics end to end (docs/spec/wire.md §14, docs/guarantees.md): real nodes over tcp
// loopback, CurveZMQ as by default. A late joiner gets the history in order and then the live
// stream with no gap and no duplicate; a subscriber too slow for the publisher gets every
// message or a report of it, in order, never a silent hole; a restarted publisher starts a new
// epoch without a false gap.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using peermq::testing::sees;
using peermq::testing::wait_until;

// What a reliable subscription saw, in order: each message's (seq, value, history) and each
// report of loss.
struct Seen {
    struct Got {
        std::uint64_t seq;
        int value;
        bool history;
    };
    std::mutex mutex;
    std::vector<Got> got;
    std::vector<peermq::SampleLost> lost;

    peermq::SubscribeHandler handler() {
        return [this](const peermq::Message& m) {
            std::lock_guard lock(mutex);
            got.push_back({m.seq, m.as<int>(), m.history});
        };
    }
    peermq::SampleLostHandler on_lost() {
        return [this](const peermq::SampleLost& l) {
            std::lock_guard lock(mutex);
            lost.push_back(l);
        };
    }
    std::size_t count() {
        std::lock_guard lock(mutex);
        return got.size();
    }
    std::vector<Got> copy() {
        std::lock_guard lock(mutex);
        return got;
    }
};

// A handler's gate, shut until opened. Declared before the nodes (it outlives their handler
// threads); an Opener declared after them opens it before they close, whatever path the test
// took, so that no handler waits on it forever.
class Gate {
public:
    void wait() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return open_; });
    }
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        changed_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = false;
};

struct Opener {
    Gate& gate;
    ~Opener() { gate.open(); }
};

peermq::Node make_node(const std::string& name, std::vector<std::string> peers = {},
                       peermq::NodeOptions options = {}) {
    options.name = name;
    options.interface = "lo";
    options.peers = std::move(peers);
    return peermq::testing::make_node(std::move(options));
}

std::string describe(const peermq::Node& node) {
    std::string out;
    for (const auto& [topic, t] : node.stats().topics) {
        out += " [" + topic + " received=" + std::to_string(t.received) +
               " delivered=" + std::to_string(t.delivered) + " lost=" + std::to_string(t.lost) +
               " repaired=" + std::to_string(t.repaired) + "]";
    }
    for (const auto& [reason, n] : node.stats().dropped) {
        out += " " + reason + "=" + std::to_string(n);
    }
    return out;
}

// A publisher, and a subscriber "slow" whose reliable handler of "load." waits at a gate, with
// a handler queue of 16: what it cannot take waits in its stream, up to the stream's bound. The
// gate opens before the nodes close, whatever path the test took.
struct GatedSubscriber {
    explicit GatedSubscriber(std::size_t topic_history)
        : publisher(make_node("publisher", {}, {.topic_history = topic_history})),
          slow(make_node("slow", {publisher.address()}, {.max_handler_queue = 16})) {}

    // Subscribes, and waits until the publisher follows the subscriber: the handler is shut,
    // so a probe topic's arrival is read from the subscriber's stats.
    ::testing::AssertionResult subscribe() {
        auto base = seen.handler();
        const auto status = slow.subscribe(
            "load.",
            [this, base](const peermq::Message& m) {
                gate.wait();
                base(m);
            },
            {.reliability = peermq::TopicReliability::reliable, .on_lost = seen.on_lost()});
        if (!status.ok()) return ::testing::AssertionFailure() << status.to_string();
        if (!wait_until([&] { return sees(publisher, {"slow"}) && sees(slow, {"publisher"}); })) {
            return ::testing::AssertionFailure() << "the nodes never saw each other";
        }
        if (!wait_until([&] {
                EXPECT_TRUE(publisher.publish("load.probe", -1).ok());
                return slow.stats().topics["load.probe"].received > 0;
            })) {
            return ::testing::AssertionFailure() << "no probe arrived" << describe(slow);
        }
        return ::testing::AssertionSuccess();
    }

    Gate gate;
    Seen seen;
    peermq::Node publisher;
    peermq::Node slow;
    const Opener opener{gate};
};

TEST(ReliableTopics, ALateJoinerGetsTheLastNInOrderThenTheLiveStreamWithNoGapOrDuplicate) {
    Seen seen;  // outlives the nodes' handler threads
    auto publisher = make_node("publisher");
    for (int i = 1; i <= 50; ++i) ASSERT_TRUE(publisher.publish("sensors.t1", i).ok());

    auto dashboard = make_node("dashboard", {publisher.address()});
    ASSERT_TRUE(dashboard
                    .subscribe("sensors.", seen.handler(),
                               {.reliability = peermq::TopicReliability::reliable,
                                .history = 10,
                                .on_lost = seen.on_lost()})
                    .ok());
    // The last ten readings come first, marked as history.
    ASSERT_TRUE(wait_until([&] { return seen.count() >= 10; })) << describe(dashboard);
    // Live readings follow at once, while the SUB connection is still being made: what it
    // misses is repaired from the publisher's history.
    for (int i = 51; i <= 300; ++i) ASSERT_TRUE(publisher.publish("sensors.t1", i).ok());
    ASSERT_TRUE(wait_until([&] { return seen.count() >= 260; })) << describe(dashboard);

    const auto got = seen.copy();
    ASSERT_EQ(got.size(), 260u) << describe(dashboard);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].seq, 41 + i);
        EXPECT_EQ(got[i].value, static_cast<int>(41 + i));
        EXPECT_EQ(got[i].history, i < 10) << "at " << got[i].seq;
    }
    EXPECT_TRUE(seen.lost.empty());
    const auto stats = publisher.stats().topics["sensors.t1"];
    EXPECT_EQ(stats.history_served, 10u);
    EXPECT_EQ(dashboard.stats().topics["sensors.t1"].lost, 0u);
}

TEST(ReliableTopics, AHistoryOfSmallAndLargeMessagesComesInOrderInAFewBatches) {
    // REPAIRs of small payloads travel in BATCH frames (wire.md §14.4); a large one goes alone,
    // in its place.
    constexpr int kMessages = 1000;
    const auto payload_of = [](int i) {
        return i % 100 == 0 ? std::string(5000, static_cast<char>('a' + i / 100))
                            : "reading " + std::to_string(i);
    };
    std::mutex mutex;  // outlives the nodes' handler threads
    std::vector<std::pair<std::uint64_t, std::string>> got;
    auto publisher = make_node("publisher", {}, {.topic_history = kMessages});
    for (int i = 1; i <= kMessages; ++i) {
        ASSERT_TRUE(publisher.publish("sensors.t1", payload_of(i)).ok());
    }
    auto dashboard = make_node("dashboard", {publisher.address()});
    ASSERT_TRUE(
        dashboard
            .subscribe("sensors.",
                       [&](const peermq::Message& m) {
                           std::lock_guard lock(mutex);
                           got.emplace_back(m.seq, m.as<std::string>());
                       },
                       {.reliability = peermq::TopicReliability::reliable, .history = kMessages})
            .ok());
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return got.size() >= kMessages;
    })) << describe(dashboard);

    std::lock_guard lock(mutex);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages)) << describe(dashboard);
    for (int i = 1; i <= kMessages; ++i) {
        ASSERT_EQ(got[i - 1].first, static_cast<std::uint64_t>(i));
        ASSERT_EQ(got[i - 1].second, payload_of(i)) << "at " << i;
    }
    EXPECT_EQ(publisher.stats().topics["sensors.t1"].history_served,
              static_cast<std::uint64_t>(kMessages));
    // 1 000 REPAIRs, the 10 large ones alone: far fewer frames than messages.
    std::uint64_t frames = 0;
    for (const auto& peer : publisher.stats().peers) {
        if (peer.name == "dashboard") frames = peer.frames_sent;
    }
    EXPECT_GT(frames, 10u);
    EXPECT_LT(frames, 100u);
}

TEST(ReliableTopics, ABestEffortSubscriberOfTheSamePublisherGetsNoHistory) {
    auto publisher = make_node("publisher");
    for (int i = 1; i <= 20; ++i) ASSERT_TRUE(publisher.publish("sensors.t1", i).ok());
    auto plain = make_node("plain", {publisher.address()});
    std::atomic<int> heard{0};
    ASSERT_TRUE(plain.subscribe("sensors.", [&](const peermq::Message&) { ++heard; }).ok());
    ASSERT_TRUE(wait_until([&] { return sees(plain, {"publisher"}); }));
    ASSERT_TRUE(wait_until([&] {
        EXPECT_TRUE(publisher.publish("sensors.probe", 0).ok());
        return heard > 0;
    }));
    EXPECT_EQ(plain.stats().topics["sensors.t1"].received, 0u);
    EXPECT_EQ(publisher.stats().topics["sensors.t1"].history_served, 0u);
}

// A subscriber whose handler falls far behind: its handler queue is small, the stream holds what
// is ahead (bounded), and past that the publisher's history (bounded too) is asked again. Every
// number is delivered or reported lost, in order, none skipped silently.
TEST(ReliableTopics, ASubscriberTooSlowForThePublisherGetsEveryMessageOrItsReportInOrder) {
    GatedSubscriber nodes(2000);
    ASSERT_TRUE(nodes.subscribe());
    auto& [gate, seen, publisher, slow, opener] = nodes;
    constexpr int kCount = 40'000;
    for (int i = 1; i <= kCount; ++i) ASSERT_TRUE(publisher.publish("load.x", i).ok());
    gate.open();
    // Everything is accounted for: delivered or reported.
    const auto accounted = [&] {
        std::lock_guard lock(seen.mutex);
        std::uint64_t n = 0;
        for (const auto& g : seen.got) n += g.value > 0 ? 1 : 0;
        for (const auto& l : seen.lost) n += l.topic == "load.x" ? l.last - l.first + 1 : 0;
        return n;
    };
    ASSERT_TRUE(wait_until([&] { return accounted() >= kCount; }, 60s))
        << accounted() << " of " << kCount << describe(slow);
    std::lock_guard lock(seen.mutex);
    // In order: each message's number follows the last one delivered or reported.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;  // [first, last] in order seen
    for (const auto& g : seen.got) {
        if (g.value > 0) spans.emplace_back(g.seq, g.seq);
    }
    for (const auto& l : seen.lost) {
        if (l.topic == "load.x") spans.emplace_back(l.first, l.last);
    }
    std::sort(spans.begin(), spans.end());
    std::uint64_t next = 1;
    for (const auto& [first, last] : spans) {
        ASSERT_EQ(first, next) << "a hole or an overlap before " << first;
        next = last + 1;
    }
    EXPECT_EQ(next, static_cast<std::uint64_t>(kCount + 1));
    // Delivered values are the numbers they were published as, in increasing order.
    std::uint64_t previous = 0;
    for (const auto& g : seen.got) {
        if (g.value <= 0) continue;
        EXPECT_EQ(g.seq, static_cast<std::uint64_t>(g.value));
        EXPECT_GT(g.seq, previous);
        previous = g.seq;
    }
    const auto stats = slow.stats().topics["load.x"];
    std::uint64_t reported = 0;
    for (const auto& l : seen.lost) reported += l.topic == "load.x" ? l.last - l.first + 1 : 0;
    EXPECT_EQ(stats.lost, reported);
    EXPECT_EQ(stats.lost_ranges, seen.lost.size());
}

// The same subscriber with a publisher whose history holds everything: the messages the stream
// could not hold while its handler was shut (topic.held_full) come again as REPAIRs, none is
// lost, and the subscriber's stats say how long its gaps stayed open.
TEST(ReliableTopics, GapsOfASubscriberThatFellBehindAreRepairedAndTimed) {
    constexpr int kCount = 30'000;  // past the 16 384 a stream holds ahead of its handler
    GatedSubscriber nodes(2 * kCount);
    ASSERT_TRUE(nodes.subscribe());
    auto& [gate, seen, publisher, slow, opener] = nodes;
    for (int i = 1; i <= kCount; ++i) ASSERT_TRUE(publisher.publish("load.x", i).ok());
    ASSERT_TRUE(wait_until([&] { return slow.stats().dropped.contains("topic.held_full"); }))
        << "no gap: the stream held everything" << describe(slow);
    // While the handler takes nothing, what the stream cannot hold is not asked for: it would
    // come again and again, and be dropped again (a stalled subscriber once had its publisher
    // send 4.6 million REPAIRs in a minute, and starved its handler when it woke).
    const auto resent = [&] { return publisher.stats().topics["load.x"].resent; };
    EXPECT_FALSE(wait_until([&] { return resent() > kCount; }, 1s))
        << resent() << " sent again to a subscriber that had no room" << describe(slow);
    gate.open();
    const auto delivered = [&] {
        std::lock_guard lock(seen.mutex);
        return std::count_if(seen.got.begin(), seen.got.end(),
                             [](const auto& g) { return g.value > 0; });
    };
    ASSERT_TRUE(wait_until([&] { return delivered() >= kCount; }, 60s))
        << delivered() << " of " << kCount << describe(slow);
    {
        std::lock_guard lock(seen.mutex);
        EXPECT_TRUE(seen.lost.empty()) << seen.lost.size() << " ranges lost";
        std::uint64_t next = 1;
        for (const auto& g : seen.got) {
            if (g.value <= 0) continue;
            ASSERT_EQ(g.seq, next) << "out of order or a hole";
            ++next;
        }
    }
    const auto stats = slow.stats().topics["load.x"];
    EXPECT_EQ(stats.lost, 0u);
    EXPECT_GT(stats.repaired, 0u);
    EXPECT_GE(stats.repair_time.count, 1u) << describe(slow);
    EXPECT_GT(stats.repair_time.sum_us, 0u);
    EXPECT_GT(resent(), 0u);
    EXPECT_LE(resent(), static_cast<std::uint64_t>(kCount)) << "sent again more than once";
}

TEST(ReliableTopics, ARestartedPublisherStartsANewEpochWithoutAFalseGap) {
    peermq::testing::TempDir dir;
    Seen seen;  // outlives the subscriber's handler threads
    auto subscriber = make_node("subscriber");
    ASSERT_TRUE(subscriber
                    .subscribe("orders.", seen.handler(),
                               {.reliability = peermq::TopicReliability::reliable,
                                .on_lost = seen.on_lost()})
                    .ok());
    std::uint64_t first_epoch_last = 0;
    {
        auto publisher = make_node("publisher", {subscriber.address()}, {.data_dir = dir.path()});
        ASSERT_TRUE(wait_until([&] {
            (void)publisher.publish("orders.probe", 0);
            return subscriber.stats().topics["orders.probe"].delivered > 0;
        }));
        for (int i = 1; i <= 20; ++i) ASSERT_TRUE(publisher.publish("orders.eu", i).ok());
        ASSERT_TRUE(wait_until([&] {
            return subscriber.stats().topics["orders.eu"].delivered == 20;
        })) << describe(subscriber);
        first_epoch_last = 20;
        publisher.close();
    }
    // The same key (its data directory), so the same id: a new incarnation, numbering anew.
    auto publisher = make_node("publisher", {subscriber.address()}, {.data_dir = dir.path()});
    ASSERT_TRUE(wait_until([&] { return sees(subscriber, {"publisher"}); }));
    ASSERT_TRUE(wait_until([&] {
        (void)publisher.publish("orders.probe", 0);
        return subscriber.stats().topics["orders.probe"].delivered > 1;
    }));
    for (int i = 21; i <= 30; ++i) ASSERT_TRUE(publisher.publish("orders.eu", i).ok());
    // What the handler recorded, not the stats' count of handler calls: a call is counted as it
    // is handed to the handler, before the handler has run (under ASan the test once read 20).
    const auto orders_seen = [&] {
        std::lock_guard lock(seen.mutex);
        return std::count_if(seen.got.begin(), seen.got.end(),
                             [](const Seen::Got& g) { return g.value > 0; });
    };
    ASSERT_TRUE(wait_until([&] { return orders_seen() == 30; }))
        << orders_seen() << " of 30 seen;" << describe(subscriber)
        << " publisher:" << describe(publisher);
    std::lock_guard lock(seen.mutex);
    EXPECT_TRUE(seen.lost.empty()) << seen.lost.front().reason;
    std::vector<int> values;
    for (const auto& g : seen.got) {
        if (g.value > 0) values.push_back(g.value);
    }
    ASSERT_EQ(values.size(), 30u);
    for (int i = 0; i < 30; ++i) EXPECT_EQ(values[static_cast<std::size_t>(i)], i + 1);
    EXPECT_EQ(first_epoch_last, 20u);
    EXPECT_EQ(subscriber.stats().topics["orders.eu"].lost, 0u);
}

TEST(ReliableTopics, HistoryWithoutReliabilityIsRefused) {
    auto node = make_node("node");
    const auto status = node.subscribe("x", [](const peermq::Message&) {}, {.history = 5});
    EXPECT_EQ(status.code(), peermq::ErrorCode::invalid_argument);
}

}  // namespace
