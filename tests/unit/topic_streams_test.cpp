// Reliable topics' parts alone (docs/spec/wire.md §14): a publisher's history (TopicHistory),
// a subscriber's streams (TopicStreams) driven by hand with a fake time, and the SYNC/RESEND
// bodies. No socket: what a part decides is read from its Effects and what it delivers.
#include "reliability/topic_streams.hpp"
#include "reliability/topic_history.hpp"
#include "wire/topic_sync.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;
using Steady = TopicStreams::Steady;

Message message_of(const NodeId& sender, const std::string& topic, std::uint64_t seq) {
    Message m;
    m.id = MessageId::generate();
    m.sender = sender;
    m.channel = topic;
    m.seq = seq;
    m.payload = Payload::copy_of(&seq, sizeof seq);
    return m;
}

TEST(TopicHistoryTest, NumbersEachTopicFromOneAndKeepsTheLatestPerTopic) {
    TopicHistory history({.per_topic = 3, .bytes = 1 << 20, .age = 60s});
    const Steady t0{};
    for (int i = 0; i < 5; ++i) {
        Message a = message_of(NodeId{}, "a", 0);
        EXPECT_EQ(history.record(a, t0), static_cast<std::uint64_t>(i + 1));
        EXPECT_EQ(a.seq, static_cast<std::uint64_t>(i + 1));
    }
    Message b = message_of(NodeId{}, "b", 0);
    EXPECT_EQ(history.record(b, t0), 1u);  // its own numbers
    EXPECT_EQ(history.range_of("a", t0), (TopicRange{"a", 3, 5}));
    EXPECT_EQ(history.range_of("b", t0), (TopicRange{"b", 1, 1}));
    EXPECT_EQ(history.range_of("never", t0), (TopicRange{"never", 1, 0}));
    const auto kept = history.messages("a", 1, 4);  // 1 and 2 are gone
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0]->seq, 3u);
    EXPECT_EQ(kept[1]->seq, 4u);
    EXPECT_EQ(history.kept(), 4u);
    // A range past what the history holds, cut at a limit: what one answer may send.
    const auto limited = history.messages("a", 1, UINT64_MAX, 2);
    ASSERT_EQ(limited.size(), 2u);
    EXPECT_EQ(limited[0]->seq, 3u);
    EXPECT_EQ(limited[1]->seq, 4u);
}

TEST(TopicHistoryTest, BytesAndAgeBoundWhatIsKeptButNeverTheNumbering) {
    TopicHistory history({.per_topic = 100, .bytes = 3 * sizeof(std::uint64_t), .age = 10s});
    const Steady t0{};
    for (int i = 0; i < 5; ++i) {
        Message m = message_of(NodeId{}, i % 2 ? "odd" : "even", 0);
        history.record(m, t0 + std::chrono::seconds(i));
    }
    EXPECT_EQ(history.kept(), 3u);  // the oldest two went for the byte bound
    EXPECT_EQ(history.range_of("even", t0 + 4s), (TopicRange{"even", 2, 3}));
    EXPECT_EQ(history.range_of("odd", t0 + 4s), (TopicRange{"odd", 2, 2}));
    history.expire(t0 + 13s + 500ms);  // older than 10 s: what was recorded at 0-3 s
    EXPECT_EQ(history.kept(), 1u);
    EXPECT_EQ(history.range_of("odd", t0 + 14s), (TopicRange{"odd", 3, 2}));  // none kept
    Message next = message_of(NodeId{}, "odd", 0);
    EXPECT_EQ(history.record(next, t0 + 14s), 3u);
    // A shorter age asked for: only what is younger.
    EXPECT_EQ(history.range_of("even", t0 + 14s, 1s), (TopicRange{"even", 4, 3}));
}

TEST(TopicHistoryTest, ChangedTopicsAreTakenOnce) {
    TopicHistory history({});
    Message a = message_of(NodeId{}, "a", 0);
    history.record(a, Steady{});
    history.record(a, Steady{});
    EXPECT_EQ(history.take_changed(), std::vector<std::string>{"a"});
    EXPECT_TRUE(history.take_changed().empty());
    EXPECT_FALSE(history.has_changed());
}

TEST(TopicSyncBodyTest, RangesAndPrefixesRoundTripAndBadBodiesAreDropped) {
    const std::vector<TopicRange> ranges{{"a", 1, 5}, {"b.c", 7, 6}};
    msgpack::sbuffer out;
    encode_ranges(ranges, out);
    std::vector<TopicRange> decoded;
    ASSERT_EQ(decode_ranges(out.data(), out.size(), decoded), std::nullopt);
    EXPECT_EQ(decoded, ranges);

    const std::vector<ReliablePrefix> prefixes{{"sensors.", 10, 5000}, {"", 0, 0}};
    msgpack::sbuffer p;
    encode_prefixes(prefixes, p);
    std::vector<ReliablePrefix> back;
    ASSERT_EQ(decode_prefixes(p.data(), p.size(), back), std::nullopt);
    EXPECT_EQ(back, prefixes);

    // first > last + 1, a zero first, an empty topic, not an array, garbage.
    for (const std::vector<TopicRange>& bad :
         std::vector<std::vector<TopicRange>>{{{"a", 9, 5}}, {{"a", 0, 5}}, {{"", 1, 1}}}) {
        msgpack::sbuffer b;
        encode_ranges(bad, b);
        EXPECT_EQ(decode_ranges(b.data(), b.size(), decoded), Drop::frame_bad_sync);
    }
    const char junk[] = {'\x93', '\x01'};
    EXPECT_EQ(decode_ranges(junk, sizeof junk, decoded), Drop::frame_bad_sync);
    // A history past 32 bits.
    msgpack::sbuffer wide;
    encode_ranges(std::vector<TopicRange>{{"a", 1ull << 33, 1ull << 33}}, wide);
    EXPECT_EQ(decode_prefixes(wide.data(), wide.size(), back), Drop::frame_bad_sync);
}

class TopicStreamsTest : public ::testing::Test {
protected:
    TopicStreamsTest() {
        streams.set_prefixes({{"s.", 0, 0}}, now, fx);
        streams.publisher_seen(pub, "pub", 7, now, fx);
    }

    // The publisher's starting SYNC of epoch `epoch`.
    void started(std::vector<TopicRange> ranges = {}, std::uint64_t epoch = 1) {
        streams.on_sync(pub, epoch, true, ranges, now, fx);
    }
    void live(std::uint64_t seq, std::uint64_t epoch = 1, const std::string& topic = "s.t") {
        Message m = message_of(pub, topic, seq);
        EXPECT_TRUE(streams.on_message(m, epoch, now, fx));
    }
    // A REPAIR from the publisher (an answer to a RESEND).
    void repair(std::uint64_t seq) {
        Message m = message_of(pub, "s.t", seq);
        EXPECT_TRUE(streams.on_message(m, 1, now, fx, true));
    }
    // Takes what is ready: numbers delivered, and "lost a-b" for reports.
    std::vector<std::string> drain() {
        std::vector<std::string> out;
        streams.deliver([&](const TopicStreams::Out& o) {
            if (o.lost) {
                out.push_back("lost " + std::to_string(o.lost->first) + "-" +
                              std::to_string(o.lost->last) + " " + o.lost->reason);
            } else {
                out.push_back(std::to_string(o.message->seq) + (o.message->history ? "h" : ""));
            }
            return true;
        });
        return out;
    }
    // The ranges of the last RESEND asked, as "first-last".
    std::vector<std::string> asked() {
        std::vector<std::string> out;
        if (fx.resend.empty()) return out;
        for (const auto& r : fx.resend.back().ranges) {
            out.push_back(std::to_string(r.first) + "-" + std::to_string(r.last));
        }
        return out;
    }
    std::function<bool(const NodeId&)> alive = [](const NodeId&) { return true; };

    NodeId pub = NodeId::generate();
    Steady now{};
    TopicStreams streams{TopicStreams::Config{
        .max_held = 100, .retry = 400ms, .attempts = 3, .repairs_per_resend = 4}};
    TopicStreams::Effects fx;
};

TEST_F(TopicStreamsTest, AFollowedPublisherIsStartedAndMessagesWaitForItsStart) {
    ASSERT_EQ(fx.start.size(), 1u);
    EXPECT_EQ(fx.start[0], pub);
    live(5);  // live before the start: held
    EXPECT_TRUE(drain().empty());
    started({{"s.t", 5, 4}});  // its stream begins after 4: no history asked
    EXPECT_EQ(drain(), (std::vector<std::string>{"5"}));
    live(6);
    EXPECT_EQ(drain(), (std::vector<std::string>{"6"}));
    EXPECT_TRUE(fx.resend.empty());
}

TEST_F(TopicStreamsTest, HistoryThenLiveWithNoGapAndNoDuplicate) {
    live(9);
    live(10);
    started({{"s.t", 6, 8}});  // history 6..8 follows as REPAIRs; live 9, 10 already here
    EXPECT_TRUE(drain().empty());
    for (std::uint64_t seq : {6, 7, 8, 9}) live(seq);  // 9 again: a duplicate
    EXPECT_EQ(fx.duplicates, 1u);
    EXPECT_EQ(drain(), (std::vector<std::string>{"6h", "7h", "8h", "9", "10"}));
}

TEST_F(TopicStreamsTest, AGapIsAskedAgainAndClosedInOrder) {
    started({{"s.t", 1, 0}});
    live(1);
    live(4);
    live(6);
    EXPECT_EQ(asked(), (std::vector<std::string>{"2-3"}));  // asked at 4; 5 still unknown then
    EXPECT_EQ(drain(), (std::vector<std::string>{"1"}));
    fx.clear();
    now += 500ms;
    streams.tick(now, alive, fx);  // late: asked again, all holes now
    EXPECT_EQ(asked(), (std::vector<std::string>{"2-3", "5-5"}));
    live(2);
    live(3);
    live(5);
    EXPECT_EQ(drain(), (std::vector<std::string>{"2", "3", "4", "5", "6"}));
    fx.clear();
    now += 1s;
    streams.tick(now, alive, fx);
    EXPECT_TRUE(fx.resend.empty());
}

TEST_F(TopicStreamsTest, AClosedGapSaysHowLongItStayedOpenFromItsFirstResend) {
    started({{"s.t", 1, 0}});
    live(1);
    live(4);  // 2-3 missing: asked now
    now += 30ms;
    live(2);
    EXPECT_TRUE(fx.repaired.empty()) << "3 still missing";
    now += 500ms;
    streams.tick(now, alive, fx);  // asked again: the gap's start stays the first RESEND
    now += 20ms;
    live(3);
    ASSERT_EQ(fx.repaired.size(), 1u);
    EXPECT_EQ(fx.repaired[0].topic, "s.t");
    EXPECT_EQ(fx.repaired[0].took, 550ms);
    // The next gap is asked at once (not at the closed one's retry), and timed from then.
    fx.clear();
    live(6);
    EXPECT_EQ(asked(), (std::vector<std::string>{"5-5"}));
    now += 7ms;
    live(5);
    ASSERT_EQ(fx.repaired.size(), 1u);
    EXPECT_EQ(fx.repaired[0].took, 7ms);
    EXPECT_EQ(drain(), (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
}

TEST_F(TopicStreamsTest, ALongGapIsAskedPartByPartAsEachAnswerCompletesNotAtEachRetry) {
    started({{"s.t", 1, 0}});
    live(1);
    live(12);  // 2-11 missing; an answer holds 4 REPAIRs
    EXPECT_EQ(asked(), (std::vector<std::string>{"2-11"}));
    fx.clear();
    for (std::uint64_t seq : {2, 3, 4}) repair(seq);
    EXPECT_TRUE(fx.resend.empty()) << "the answer is still coming";
    repair(5);  // the last one the answer can hold: the rest is asked at once
    EXPECT_EQ(asked(), (std::vector<std::string>{"6-11"}));
    fx.clear();
    for (std::uint64_t seq : {6, 7, 8, 9}) repair(seq);
    EXPECT_EQ(asked(), (std::vector<std::string>{"10-11"}));
    fx.clear();
    repair(10);
    repair(11);
    EXPECT_TRUE(fx.resend.empty());
    ASSERT_EQ(fx.repaired.size(), 1u);
    EXPECT_EQ(fx.repaired[0].took, 0ms) << "timed from the first RESEND";
    EXPECT_EQ(drain().size(), 12u);

    // While live messages come, the rest waits until they pause (or for the retry): repairs
    // would take their room.
    fx.clear();
    live(20);  // 13-19 missing
    EXPECT_EQ(asked(), (std::vector<std::string>{"13-19"}));
    fx.clear();
    live(21);
    for (std::uint64_t seq : {13, 14, 15, 16}) repair(seq);
    EXPECT_TRUE(fx.resend.empty());
    now += 20ms;
    live(22);
    now += 20ms;
    streams.check_pauses(now, fx);
    EXPECT_TRUE(fx.resend.empty()) << "the live stream still moves";
    now += 10ms;
    EXPECT_EQ(streams.next_due(), now);
    streams.check_pauses(now, fx);  // 30 ms without a live message
    EXPECT_EQ(asked(), (std::vector<std::string>{"17-19"}));

    // An answer cut short (a REPAIR the publisher's link refused) is asked again at the retry.
    fx.clear();
    repair(17);  // 18 and 19 never come
    now += 500ms;
    streams.tick(now, alive, fx);
    EXPECT_EQ(asked(), (std::vector<std::string>{"18-19"}));
}

TEST_F(TopicStreamsTest, ARESENDListsRangesUntilTheyHoldWhatOneAnswerCan) {
    started({{"s.t", 1, 0}});
    for (std::uint64_t seq = 1; seq <= 13; seq += 2) live(seq);  // every other one lost
    now += 500ms;
    fx.clear();
    streams.tick(now, alive, fx);  // an answer holds 4 REPAIRs: 4 one-number ranges
    EXPECT_EQ(asked(), (std::vector<std::string>{"2-2", "4-4", "6-6", "8-8"}));
    fx.clear();
    for (std::uint64_t seq : {2, 4, 6, 8}) repair(seq);
    EXPECT_EQ(asked(), (std::vector<std::string>{"10-10", "12-12"}));
    fx.clear();
    for (std::uint64_t seq : {10, 12}) repair(seq);
    EXPECT_EQ(drain().size(), 13u);
}

TEST_F(TopicStreamsTest, AGapThatEndsInALossIsNoRepair) {
    started({{"s.t", 1, 0}});
    live(1);
    live(10);
    // 2-6 no longer held: lost; 7-9 repaired, but the gap did not close by repairs alone.
    streams.on_sync(pub, 1, false, {{"s.t", 7, 10}}, now, fx);
    for (std::uint64_t seq : {7, 8, 9}) live(seq);
    EXPECT_TRUE(fx.repaired.empty());
    // Given up: no repair either.
    live(12);
    for (int i = 0; i < 3; ++i) {
        now += 1s;
        streams.tick(now, alive, fx);
    }
    EXPECT_TRUE(fx.repaired.empty());
    EXPECT_EQ(drain(), (std::vector<std::string>{"1", "lost 2-6 not_held", "7", "8", "9", "10",
                                                 "lost 11-11 unanswered", "12"}));
    // History served at the start is not a repair: nothing was missing.
    fx.clear();
    live(13);
    EXPECT_TRUE(fx.repaired.empty());
}

TEST_F(TopicStreamsTest, WhatThePublisherNoLongerHoldsIsReportedLostInOrder) {
    started({{"s.t", 1, 0}});
    live(1);
    live(10);
    // Its answer: it holds 7..10 only.
    streams.on_sync(pub, 1, false, {{"s.t", 7, 10}}, now, fx);
    live(8);
    live(7);
    live(9);
    EXPECT_EQ(drain(), (std::vector<std::string>{"1", "lost 2-6 not_held", "7", "8", "9", "10"}));
}

TEST_F(TopicStreamsTest, WhatThePublisherNoLongerHoldsButIsStillOnItsWayIsNotReportedLost) {
    started({{"s.t", 1, 0}});
    live(1);
    live(3);  // 2 missing: asked
    EXPECT_EQ(asked(), (std::vector<std::string>{"2-2"}));
    // The answer: the publisher now holds 50-100 only. 4-49 are still queued on the PUB
    // connection; only 2, known missing, is lost.
    streams.on_sync(pub, 1, false, {{"s.t", 50, 100}}, now, fx);
    for (std::uint64_t seq = 4; seq <= 100; ++seq) live(seq);
    const auto out = drain();
    ASSERT_EQ(out.size(), 100u);
    EXPECT_EQ(out[0], "1");
    EXPECT_EQ(out[1], "lost 2-2 not_held");
    EXPECT_EQ(out[2], "3");
    EXPECT_EQ(out[99], "100");
    EXPECT_EQ(fx.duplicates, 0u);
}

TEST_F(TopicStreamsTest, AMessageOfARangeAlreadyReportedLostIsNotDeliveredLate) {
    started({{"s.t", 1, 0}});
    live(1);
    live(10);
    streams.on_sync(pub, 1, false, {{"s.t", 7, 10}}, now, fx);  // 2..6 lost
    live(4);                                                    // an older answer's REPAIR, late
    live(7);
    live(8);
    live(9);
    EXPECT_EQ(fx.duplicates, 1u);
    EXPECT_EQ(drain(), (std::vector<std::string>{"1", "lost 2-6 not_held", "7", "8", "9", "10"}));
    EXPECT_EQ(streams.held(), 0u);
}

TEST_F(TopicStreamsTest, TheTailIsFoundByTheSyncStateOnceTheLiveStreamPaused) {
    started({{"s.t", 1, 0}});
    live(1);
    EXPECT_EQ(drain(), (std::vector<std::string>{"1"}));
    streams.on_sync(pub, 1, false, {{"s.t", 1, 3}}, now, fx);  // 2 and 3: on their way, or lost
    EXPECT_TRUE(asked().empty());                              // the SYNC can overtake them
    EXPECT_TRUE(streams.waiting());
    EXPECT_EQ(streams.next_due(), now + 30ms);
    now += 20ms;
    live(2);
    now += 20ms;
    streams.check_pauses(now, fx);  // 40 ms after the SYNC, but 2 came 20 ms ago
    EXPECT_TRUE(asked().empty());
    EXPECT_EQ(streams.next_due(), now + 10ms);
    now += 10ms;
    streams.check_pauses(now, fx);  // 30 ms without a live message: 3 was lost on the way
    EXPECT_EQ(asked(), (std::vector<std::string>{"3-3"}));
    EXPECT_FALSE(streams.next_due());
    repair(3);
    EXPECT_EQ(drain(), (std::vector<std::string>{"2", "3"}));
    streams.tick(now, alive, fx);
    EXPECT_FALSE(streams.waiting());
}

TEST_F(TopicStreamsTest, ASyncThatOvertookTheLiveMessagesItCountsAsksForNone) {
    started({{"s.t", 1, 0}});
    live(1);
    std::size_t delivered = drain().size();
    std::uint64_t seq = 2;
    for (std::uint64_t last = 300; last <= 1100; last += 200) {
        // Every 100 ms the publisher's state runs ahead of a busy live stream.
        streams.on_sync(pub, 1, false, {{"s.t", 1, last}}, now, fx);
        for (int i = 0; i < 200; ++i) {
            now += 500us;
            live(seq++);
            delivered += drain().size();
        }
        streams.tick(now, alive, fx);
    }
    while (seq <= 1100) live(seq++);
    delivered += drain().size();
    now += 1s;
    streams.tick(now, alive, fx);
    EXPECT_TRUE(fx.resend.empty());
    EXPECT_EQ(fx.duplicates, 0u);
    EXPECT_EQ(delivered, 1100u);
    EXPECT_FALSE(streams.waiting());
}

TEST_F(TopicStreamsTest, AnUnansweredGapIsGivenUpOnlyAfterItsAttemptsWhileThePublisherLives) {
    started({{"s.t", 1, 0}});
    live(3);
    bool up = false;
    const auto is_up = [&](const NodeId&) { return up; };
    for (int i = 0; i < 10; ++i) {  // down: nothing is counted against the gap
        now += 1s;
        streams.tick(now, is_up, fx);
    }
    EXPECT_TRUE(drain().empty());
    up = true;
    for (int i = 0; i < 3; ++i) {
        now += 1s;
        streams.tick(now, is_up, fx);
    }
    EXPECT_EQ(drain(), (std::vector<std::string>{"lost 1-2 unanswered", "3"}));
}

TEST_F(TopicStreamsTest, ARestartedPublishersNewEpochStartsAgainWithoutAFalseGap) {
    started({{"s.t", 1, 0}});
    live(1);
    live(2);
    live(4);  // 3 missing when it restarts
    EXPECT_EQ(drain(), (std::vector<std::string>{"1", "2"}));
    fx.clear();
    live(1, 2);  // epoch 2's first message: held, a start asked for
    ASSERT_EQ(fx.start.size(), 1u);
    started({{"s.t", 1, 1}}, 2);
    live(2, 2);
    EXPECT_EQ(drain(), (std::vector<std::string>{"lost 3-3 publisher_restarted", "4", "1", "2"}));
    live(1, 1);  // a straggler of epoch 1
    EXPECT_EQ(fx.stale, 1u);
}

TEST_F(TopicStreamsTest, AGonePublisherLeavesItsGapsLostAndWhatCameDelivered) {
    started({{"s.t", 1, 0}});
    live(2);
    streams.publisher_gone(pub);
    EXPECT_EQ(drain(), (std::vector<std::string>{"lost 1-1 publisher_gone", "2"}));
    EXPECT_FALSE(streams.numbered(pub));
}

TEST_F(TopicStreamsTest, AStreamWaitsInOrderWhenItsSubscriberHasNoRoom) {
    started({{"s.t", 1, 0}});
    live(1);
    live(2);
    int room = 1;
    std::vector<std::uint64_t> got;
    const auto take = [&](const TopicStreams::Out& o) {
        if (room == 0) return false;
        --room;
        got.push_back(o.message->seq);
        return true;
    };
    streams.deliver(take);
    EXPECT_EQ(got, (std::vector<std::uint64_t>{1}));
    EXPECT_TRUE(streams.has_ready());
    room = 5;
    streams.deliver(take);
    EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 2}));
    EXPECT_FALSE(streams.has_ready());
}

TEST_F(TopicStreamsTest, HeldMessagesAreBoundedAndTheNewestWaitAtThePublisher) {
    started({{"s.t", 1, 0}});
    for (std::uint64_t seq = 2; seq <= 150; ++seq) live(seq);  // 1 is missing
    EXPECT_EQ(streams.held(), 100u);
    EXPECT_EQ(fx.held_full, 49u);
    live(1);
    const auto out = drain();
    ASSERT_EQ(out.size(), 101u);  // 1..101; 102..150 are asked again
    EXPECT_EQ(out.back(), "101");
    fx.clear();
    now += 500ms;
    streams.tick(now, alive, fx);
    EXPECT_EQ(asked(), (std::vector<std::string>{"102-150"}));
}

// A stream whose handler takes nothing holds what it can and asks for no more than that: what
// it could not hold is asked for once the handler made room, not again and again (a subscriber
// whose handler stalled had its publisher send the same messages 4.6 million times).
TEST_F(TopicStreamsTest, AStreamWithNoRoomAsksForNothingUntilItsHandlerMakesRoom) {
    started({{"s.t", 1, 0}});
    for (std::uint64_t seq = 1; seq <= 110; ++seq) live(seq);  // 1-100 held, 101-110 not
    EXPECT_EQ(fx.held_full, 10u);
    EXPECT_TRUE(fx.resend.empty()) << "asked for what it cannot hold: " << asked().front();
    // The handler still takes nothing: no retry asks, and nothing is given up as unanswered.
    for (int i = 0; i < 10; ++i) {
        now += 500ms;
        streams.tick(now, alive, fx);
        streams.check_pauses(now, fx);
    }
    EXPECT_TRUE(fx.resend.empty());
    // The handler takes 10: too little room to ask for.
    int room = 10;
    std::vector<std::string> got;
    const auto take = [&](const TopicStreams::Out& o) {
        if (room == 0) return false;
        --room;
        got.push_back(o.lost ? std::string("lost ") + o.lost->reason
                             : std::to_string(o.message->seq));
        return true;
    };
    streams.deliver(take);
    EXPECT_EQ(got.size(), 10u);
    streams.check_pauses(now, fx);
    EXPECT_TRUE(fx.resend.empty());
    // It takes 30 more: a quarter of the stream's room is free, due at once, and asked for.
    room = 30;
    streams.deliver(take);
    ASSERT_TRUE(streams.next_due().has_value());
    EXPECT_LE(*streams.next_due(), now);
    streams.check_pauses(now, fx);
    EXPECT_EQ(asked(), (std::vector<std::string>{"101-110"}));
    // The answer is taken (an answer holds 4: the rest is asked for as its last one comes).
    fx.clear();
    for (std::uint64_t seq = 101; seq <= 104; ++seq) repair(seq);
    EXPECT_EQ(asked(), (std::vector<std::string>{"105-110"}));
    fx.clear();
    for (std::uint64_t seq = 105; seq <= 110; ++seq) repair(seq);
    EXPECT_EQ(fx.held_full, 0u);
    room = 1000;
    streams.deliver(take);
    ASSERT_EQ(got.size(), 110u);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], std::to_string(i + 1));
}

// Holes below the newest message held are asked for whatever the room (their REPAIRs are always
// taken: they fill the stream, they do not lengthen it); numbers above it only once there is room.
TEST_F(TopicStreamsTest, HolesBelowWhatIsHeldAreAskedForAndWhatIsAboveWaitsForRoom) {
    started({{"s.t", 1, 0}});
    for (std::uint64_t seq = 1; seq <= 98; ++seq) live(seq);
    live(120);  // 99-119 missing, below 120
    EXPECT_EQ(asked(), (std::vector<std::string>{"99-119"}));
    for (std::uint64_t seq = 99; seq <= 119; ++seq) repair(seq);
    EXPECT_EQ(fx.held_full, 0u);
    EXPECT_EQ(streams.held(), 120u);
    // Full: 121-130 come and are not held, nor asked for.
    fx.clear();
    for (std::uint64_t seq = 121; seq <= 130; ++seq) live(seq);
    EXPECT_EQ(fx.held_full, 10u);
    EXPECT_TRUE(fx.resend.empty());
    // The handler takes 45: room for 25 of 100, and 121-130 are asked for.
    int room = 45;
    streams.deliver([&](const TopicStreams::Out&) { return room-- > 0; });
    streams.check_pauses(now, fx);
    EXPECT_EQ(asked(), (std::vector<std::string>{"121-130"}));
}

TEST_F(TopicStreamsTest, TopicsOfAnUnfollowedPrefixOrUnnumberedPublishersAreNotStreams) {
    EXPECT_TRUE(streams.follows("s.x"));
    EXPECT_FALSE(streams.follows("other"));
    EXPECT_FALSE(streams.numbered(NodeId::generate()));
}

}  // namespace
}  // namespace peermq::detail
