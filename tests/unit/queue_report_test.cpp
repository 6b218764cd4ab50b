// The QUEUE_REPORT body (wire/queue_report.hpp, docs/spec/wire.md §15): what is encoded comes
// back the same; a report is bounded in queues and bytes, the rest counted as omitted; a body
// that is not a report is refused as frame.bad_report; a later revision's extra fields are read
// past.
#include "wire/queue_report.hpp"

#include <string>

#include <gtest/gtest.h>

#include "wire/envelope.hpp"

namespace peermq::detail {
namespace {

QueueReport sample(const std::string& name) {
    QueueReport q;
    q.queue = name;
    q.producer = true;
    q.consumer = true;
    q.waiting = 8;
    q.in_flight = 2;
    q.oldest_waiting_ms = 1234;
    q.dead_letters = 1;
    q.sent = 100;
    q.acked = 90;
    q.nacked = 3;
    q.retried = 4;
    q.redelivered = 5;
    q.expired = 6;
    q.dead_lettered = 7;
    q.prefetch = 64;
    q.delivered = 11;
    q.handler_errors = 12;
    return q;
}

void expect_same(const QueueReport& a, const QueueReport& b) {
    EXPECT_EQ(a.queue, b.queue);
    EXPECT_EQ(a.producer, b.producer);
    EXPECT_EQ(a.consumer, b.consumer);
    EXPECT_EQ(a.waiting, b.waiting);
    EXPECT_EQ(a.in_flight, b.in_flight);
    EXPECT_EQ(a.oldest_waiting_ms, b.oldest_waiting_ms);
    EXPECT_EQ(a.dead_letters, b.dead_letters);
    EXPECT_EQ(a.sent, b.sent);
    EXPECT_EQ(a.acked, b.acked);
    EXPECT_EQ(a.nacked, b.nacked);
    EXPECT_EQ(a.retried, b.retried);
    EXPECT_EQ(a.redelivered, b.redelivered);
    EXPECT_EQ(a.expired, b.expired);
    EXPECT_EQ(a.dead_lettered, b.dead_lettered);
    EXPECT_EQ(a.prefetch, b.prefetch);
    EXPECT_EQ(a.delivered, b.delivered);
    EXPECT_EQ(a.handler_errors, b.handler_errors);
}

TEST(QueueReportBody, WhatIsEncodedDecodesTheSame) {
    NodeQueues report;
    report.at_ms = 1'765'000'000'000;
    report.queues.push_back(sample("jobs"));
    QueueReport only_consumer;
    only_consumer.queue = "slow";
    only_consumer.consumer = true;
    only_consumer.prefetch = 2;
    report.queues.push_back(only_consumer);
    msgpack::sbuffer body;
    encode_queue_report(report, body);

    NodeQueues decoded;
    ASSERT_FALSE(decode_queue_report(body.data(), body.size(), decoded).has_value());
    EXPECT_EQ(decoded.at_ms, report.at_ms);
    EXPECT_EQ(decoded.queues_omitted, 0u);
    ASSERT_EQ(decoded.queues.size(), 2u);
    expect_same(decoded.queues[0], report.queues[0]);
    expect_same(decoded.queues[1], report.queues[1]);
}

TEST(QueueReportBody, AReportIsBoundedInQueuesAndBytesAndCountsWhatItLeavesOut) {
    NodeQueues many;
    for (int i = 0; i < 300; ++i) many.queues.push_back(sample("q" + std::to_string(i)));
    msgpack::sbuffer body;
    encode_queue_report(many, body);
    NodeQueues decoded;
    ASSERT_FALSE(decode_queue_report(body.data(), body.size(), decoded).has_value());
    EXPECT_EQ(decoded.queues.size(), kMaxReportQueues);
    EXPECT_EQ(decoded.queues_omitted, 300 - kMaxReportQueues);

    NodeQueues long_names;
    for (int i = 0; i < 256; ++i) {
        long_names.queues.push_back(
            sample(std::string(kMaxChannelBytes - 4, 'n') + std::to_string(i)));
    }
    body.clear();
    encode_queue_report(long_names, body);
    EXPECT_LE(body.size(), kMaxReportBytes);
    ASSERT_FALSE(decode_queue_report(body.data(), body.size(), decoded).has_value());
    EXPECT_GT(decoded.queues.size(), 0u);
    EXPECT_EQ(decoded.queues.size() + decoded.queues_omitted, 256u);
}

TEST(QueueReportBody, ABodyThatIsNotAReportIsRefused) {
    auto refused = [](const msgpack::sbuffer& body) {
        NodeQueues out;
        return decode_queue_report(body.data(), body.size(), out) == Drop::frame_bad_report;
    };
    msgpack::sbuffer body;
    msgpack::packer<msgpack::sbuffer> pk(body);
    pk.pack_str(5);
    pk.pack_str_body("hello", 5);
    EXPECT_TRUE(refused(body)) << "not an array";

    body.clear();
    pk.pack_array(3);
    pk.pack_uint64(1);
    pk.pack_uint64(0);
    pk.pack_array(1);
    pk.pack_array(3);  // an entry of three fields: too few
    pk.pack_str(1);
    pk.pack_str_body("q", 1);
    pk.pack_uint32(1);
    pk.pack_uint64(1);
    EXPECT_TRUE(refused(body)) << "a short entry";

    body.clear();
    pk.pack_array(3);
    pk.pack_int64(-5);  // a time before 1970
    pk.pack_uint64(0);
    pk.pack_array(0);
    EXPECT_TRUE(refused(body)) << "a negative time";

    body.clear();
    pk.pack_array(3);
    pk.pack_uint64(1);
    pk.pack_uint64(0);
    pk.pack_array(0);
    pk.pack_nil();  // a second object after the report
    EXPECT_TRUE(refused(body)) << "trailing bytes";

    const std::string huge(kMaxHeaderBytes + 1, '\x90');
    NodeQueues out;
    EXPECT_EQ(decode_queue_report(huge.data(), huge.size(), out), Drop::frame_bad_report);
}

TEST(QueueReportBody, ALaterRevisionsExtraFieldsAreReadPast) {
    msgpack::sbuffer body;
    msgpack::packer<msgpack::sbuffer> pk(body);
    pk.pack_array(4);  // and one more element in the report itself
    pk.pack_uint64(42);
    pk.pack_uint64(0);
    pk.pack_array(1);
    pk.pack_array(kReportFields + 2);
    pk.pack_str(4);
    pk.pack_str_body("jobs", 4);
    pk.pack_uint32(1);
    for (std::uint32_t i = 2; i < kReportFields + 2; ++i) pk.pack_uint64(i);
    pk.pack_str(3);
    pk.pack_str_body("new", 3);
    NodeQueues out;
    ASSERT_FALSE(decode_queue_report(body.data(), body.size(), out).has_value());
    ASSERT_EQ(out.queues.size(), 1u);
    EXPECT_EQ(out.queues[0].queue, "jobs");
    EXPECT_TRUE(out.queues[0].producer);
    EXPECT_FALSE(out.queues[0].consumer);
    EXPECT_EQ(out.queues[0].waiting, 2u);
    EXPECT_EQ(out.queues[0].handler_errors, 15u);
}

}  // namespace
}  // namespace peermq::detail
