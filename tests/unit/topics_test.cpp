// Publish/subscribe's part alone (reliability/topics.hpp): the DATA header a publish puts on the
// PUB socket, the checks on what the SUB socket reads (each with its drop reason), and the
// bounded statistics per topic. No socket: frames are bytes.
#include "reliability/topics.hpp"

#include <string>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

std::string bytes(const msgpack::sbuffer& buffer) { return {buffer.data(), buffer.size()}; }

class TopicsTest : public ::testing::Test {
protected:
    // A topic message from another node, as its PUB socket sends it: the header frame's bytes.
    std::string remote_header(const std::string& channel, Kind kind = Kind::data) {
        Header h;
        h.kind = kind;
        h.sender = remote;
        h.id = MessageId::generate();
        h.channel = channel;
        h.created_ms = 1'700'000'000'000;
        h.headers = {{"k", "v"}};
        msgpack::sbuffer out;
        encode_header(h, out);
        return bytes(out);
    }

    NodeId self = NodeId::generate();
    NodeId remote = NodeId::generate();
    Topics topics{self, 1024, 1, TopicHistory::Limits{}};
    Header scratch;
};

TEST_F(TopicsTest, APublishIsADataHeaderOfThisNodeCountedSent) {
    msgpack::sbuffer header;
    const MessageId id = MessageId::generate();
    const TopicMessage published =
        topics.publish(id, "prices.eur", 42, {{"h", "1"}}, Payload::copy_of("abc", 3), header, {});
    ASSERT_EQ(decode_header(header.data(), header.size(), scratch), std::nullopt);
    EXPECT_EQ(scratch.kind, Kind::data);
    EXPECT_EQ(scratch.sender, self);
    EXPECT_EQ(scratch.id, id);
    EXPECT_EQ(scratch.channel, "prices.eur");
    EXPECT_EQ(scratch.flags, 0u);  // never acked, never retried
    EXPECT_EQ(scratch.created_ms, 42);
    EXPECT_EQ(scratch.headers.at("h"), "1");
    // The message for this node's own subscribers carries the same.
    EXPECT_EQ(published.message.id, id);
    EXPECT_EQ(published.message.sender, self);
    EXPECT_EQ(published.message.channel, "prices.eur");
    EXPECT_EQ(published.message.payload.size(), 3u);
    ASSERT_NE(published.stats, nullptr);
    EXPECT_EQ(published.stats->sent, 1u);
    EXPECT_EQ(topics.stats().at("prices.eur").sent, 1u);
}

TEST_F(TopicsTest, AMessageFromTheSubSocketPassesItsChecksAndIsCountedReceived) {
    const std::string header = remote_header("prices.eur");
    ASSERT_EQ(topics.check("prices.eur", header, 10, scratch), std::nullopt);
    const TopicMessage received = topics.received(scratch, Payload::copy_of("0123456789", 10));
    EXPECT_EQ(received.message.sender, remote);
    EXPECT_EQ(received.message.channel, "prices.eur");
    EXPECT_EQ(received.message.created_ms, 1'700'000'000'000);
    EXPECT_EQ(received.message.headers.at("k"), "v");
    EXPECT_EQ(received.stats->received, 1u);
}

TEST_F(TopicsTest, EachBadMessageIsDroppedUnderItsReason) {
    // Not a header at all.
    EXPECT_EQ(topics.check("prices.eur", "\xc1garbage", 1, scratch), Drop::frame_garbage);
    // A control frame on a topic.
    EXPECT_EQ(topics.check("prices.eur", remote_header("prices.eur", Kind::ack), 0, scratch),
              Drop::frame_unknown_kind);
    // The topic frame (what SUB filtered on) and the channel disagree: a subscriber of
    // "prices." must not get a message whose channel is "admin.".
    EXPECT_EQ(topics.check("prices.eur", remote_header("admin.reset"), 0, scratch),
              Drop::frame_topic_mismatch);
    // Over max_payload_bytes, as for queues; at it, accepted.
    EXPECT_EQ(topics.check("prices.eur", remote_header("prices.eur"), 1025, scratch),
              Drop::frame_oversized_payload);
    EXPECT_EQ(topics.check("prices.eur", remote_header("prices.eur"), 1024, scratch), std::nullopt);
    EXPECT_TRUE(topics.stats().empty());  // nothing dropped was counted as received
}

TEST_F(TopicsTest, StatisticsAreBoundedPastThatManyTopicsTheRestShareOneEntry) {
    msgpack::sbuffer header;
    for (std::size_t i = 0; i < Topics::kMaxTopicStats + 10; ++i) {
        topics.publish(MessageId::generate(), "t." + std::to_string(i), 0, {}, Payload{}, header,
                       {});
    }
    EXPECT_EQ(topics.stats().size(), Topics::kMaxTopicStats + 1);
    EXPECT_EQ(topics.stats().at("*").sent, 10u);
    EXPECT_EQ(topics.stats().at("t.0").sent, 1u);
    // A topic that has its own entry keeps it.
    topics.publish(MessageId::generate(), "t.0", 0, {}, Payload{}, header, {});
    EXPECT_EQ(topics.stats().at("t.0").sent, 2u);
}

TEST_F(TopicsTest, SubscriptionsAreKeptInTheOrderMade) {
    SlotLoad load;
    topics.subscribe({"prices.", 1, &load});
    topics.subscribe({"", 2, &load});
    ASSERT_EQ(topics.subscriptions().size(), 2u);
    EXPECT_EQ(topics.subscriptions()[0].prefix, "prices.");
    EXPECT_EQ(topics.subscriptions()[1].slot, 2u);
}

}  // namespace
}  // namespace peermq::detail
