// The control protocol codec (docs/spec/control.md): every request and reply round trips with
// all its fields, and every malformed request or reply is refused with its reason, never a
// crash.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "admin/control_codec.hpp"

namespace detail = peermq::detail;
using peermq::ErrorCode;

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

std::string bytes_of(const std::function<void(Packer&)>& write) {
    msgpack::sbuffer buffer;
    Packer pk(buffer);
    write(pk);
    return {buffer.data(), buffer.size()};
}

void str(Packer& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void bin(Packer& pk, const std::string& s) {
    pk.pack_bin(static_cast<std::uint32_t>(s.size()));
    pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

std::string id_bytes(const peermq::Uuid& id) {
    return {reinterpret_cast<const char*>(id.data()), peermq::Uuid::kSize};
}

std::string encode(const detail::ControlRequest& request) {
    msgpack::sbuffer buffer;
    detail::encode_request(request, buffer);
    return {buffer.data(), buffer.size()};
}

detail::ControlRequest decode_ok(const std::string& bytes) {
    detail::ControlRequest out;
    auto error = detail::decode_request(bytes.data(), bytes.size(), out);
    EXPECT_FALSE(error.has_value()) << (error ? error->message : "");
    return out;
}

// The reason a request is refused with ("" when it is accepted).
std::string refused(const std::string& bytes) {
    detail::ControlRequest out;
    auto error = detail::decode_request(bytes.data(), bytes.size(), out);
    if (!error) return "";
    EXPECT_FALSE(error->message.empty());
    return std::string(error->reason);
}

// A request array [1, verb, args...] written by `args`.
std::string request(std::string_view verb, std::uint32_t extra = 0,
                    const std::function<void(Packer&)>& args = {}) {
    return bytes_of([&](Packer& pk) {
        pk.pack_array(2 + extra);
        pk.pack_uint32(1);
        str(pk, verb);
        if (args) args(pk);
    });
}

std::string reply(const detail::ControlReplyBody& body) {
    msgpack::sbuffer buffer;
    detail::encode_ok_reply(body, buffer);
    return {buffer.data(), buffer.size()};
}

// An ok reply whose body `body` writes.
std::string ok_reply(const std::function<void(Packer&)>& body) {
    return bytes_of([&](Packer& pk) {
        pk.pack_array(3);
        pk.pack_uint32(1);
        str(pk, "ok");
        body(pk);
    });
}

peermq::DeadLetterFilter full_filter() {
    peermq::DeadLetterFilter f;
    f.queue = "orders";
    f.reason = "max_attempts";
    f.since_ms = -5;
    f.until_ms = 1'700'000'000'000;
    f.limit = 7;
    f.id = peermq::MessageId::generate();
    return f;
}

void expect_filter_eq(const peermq::DeadLetterFilter& a, const peermq::DeadLetterFilter& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.queue, b.queue);
    EXPECT_EQ(a.reason, b.reason);
    EXPECT_EQ(a.since_ms, b.since_ms);
    EXPECT_EQ(a.until_ms, b.until_ms);
    EXPECT_EQ(a.limit, b.limit);
}

peermq::ChannelStats channel(std::uint64_t base) {
    peermq::ChannelStats c;
    c.sent = base + 1;
    c.received = base + 2;
    c.delivered = base + 3;
    c.handler_errors = base + 4;
    c.acked = base + 5;
    c.nacked = base + 6;
    c.retried = base + 7;
    c.redelivered = base + 8;
    c.expired = base + 9;
    c.dead_lettered = base + 10;
    c.duplicates = base + 11;
    c.in_flight = base + 12;
    c.depth = base + 13;
    for (std::uint64_t us : {1ull, 3ull, 1000ull, 5'000'000ull, ~0ull}) c.ack_latency.record(us);
    return c;
}

void expect_channel_eq(const peermq::ChannelStats& a, const peermq::ChannelStats& b) {
    EXPECT_EQ(a.sent, b.sent);
    EXPECT_EQ(a.received, b.received);
    EXPECT_EQ(a.delivered, b.delivered);
    EXPECT_EQ(a.handler_errors, b.handler_errors);
    EXPECT_EQ(a.acked, b.acked);
    EXPECT_EQ(a.nacked, b.nacked);
    EXPECT_EQ(a.retried, b.retried);
    EXPECT_EQ(a.redelivered, b.redelivered);
    EXPECT_EQ(a.expired, b.expired);
    EXPECT_EQ(a.dead_lettered, b.dead_lettered);
    EXPECT_EQ(a.duplicates, b.duplicates);
    EXPECT_EQ(a.in_flight, b.in_flight);
    EXPECT_EQ(a.depth, b.depth);
    EXPECT_EQ(a.ack_latency.buckets, b.ack_latency.buckets);
    EXPECT_EQ(a.ack_latency.count, b.ack_latency.count);
    EXPECT_EQ(a.ack_latency.sum_us, b.ack_latency.sum_us);
}

peermq::PeerInfo peer(std::string name, peermq::PeerState state) {
    peermq::PeerInfo p;
    p.id = peermq::NodeId::generate();
    p.name = std::move(name);
    p.cluster = "blue";
    p.state = state;
    p.inbox_endpoint = "tcp://127.0.0.1:40001";
    p.pub_endpoint = "tcp://127.0.0.1:40002";
    p.queues = {"orders", "refunds"};
    p.topics = {"prices.", ""};
    p.last_heard_ms = 1'700'000'000'456;
    p.frames_sent = 99;
    p.frames_received = ~0ull;
    return p;
}

void expect_peer_eq(const peermq::PeerInfo& a, const peermq::PeerInfo& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.cluster, b.cluster);
    EXPECT_EQ(a.state, b.state);
    EXPECT_EQ(a.inbox_endpoint, b.inbox_endpoint);
    EXPECT_EQ(a.pub_endpoint, b.pub_endpoint);
    EXPECT_EQ(a.queues, b.queues);
    EXPECT_EQ(a.topics, b.topics);
    EXPECT_EQ(a.last_heard_ms, b.last_heard_ms);
    EXPECT_EQ(a.frames_sent, b.frames_sent);
    EXPECT_EQ(a.frames_received, b.frames_received);
}

peermq::DeadLetter letter(std::string queue) {
    peermq::DeadLetter d;
    d.id = peermq::MessageId::generate();
    d.queue = std::move(queue);
    d.headers = {{"traceparent", "00-abc-def-01"}, {"k", ""}};
    d.payload = peermq::Payload::from_string(std::string("\0\x01\xff payload", 11));
    d.reason = "max_attempts";
    d.attempts = 5;
    d.last_error = "poison payload 13";
    d.created_ms = 1'700'000'000'000;
    d.first_failure_ms = 1'700'000'000'100;
    d.last_failure_ms = -1;
    return d;
}

void expect_letter_eq(const peermq::DeadLetter& a, const peermq::DeadLetter& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.queue, b.queue);
    EXPECT_EQ(a.headers, b.headers);
    EXPECT_EQ(a.payload.view(), b.payload.view());
    EXPECT_EQ(a.reason, b.reason);
    EXPECT_EQ(a.attempts, b.attempts);
    EXPECT_EQ(a.last_error, b.last_error);
    EXPECT_EQ(a.created_ms, b.created_ms);
    EXPECT_EQ(a.first_failure_ms, b.first_failure_ms);
    EXPECT_EQ(a.last_failure_ms, b.last_failure_ms);
}

// --- Requests ----------------------------------------------------------------------------------

TEST(ControlCodecTest, EveryRequestRoundTrips) {
    EXPECT_TRUE(
        std::holds_alternative<detail::StatsRequest>(decode_ok(encode(detail::StatsRequest{}))));
    EXPECT_TRUE(
        std::holds_alternative<detail::PeersRequest>(decode_ok(encode(detail::PeersRequest{}))));

    for (const auto& filter : {peermq::DeadLetterFilter{}, full_filter()}) {
        auto list = decode_ok(encode(detail::DeadLetterListRequest{filter}));
        ASSERT_TRUE(std::holds_alternative<detail::DeadLetterListRequest>(list));
        expect_filter_eq(std::get<detail::DeadLetterListRequest>(list).filter, filter);

        auto purge = decode_ok(encode(detail::DeadLetterPurgeRequest{filter}));
        ASSERT_TRUE(std::holds_alternative<detail::DeadLetterPurgeRequest>(purge));
        expect_filter_eq(std::get<detail::DeadLetterPurgeRequest>(purge).filter, filter);
    }

    const auto id = peermq::MessageId::generate();
    auto get = decode_ok(encode(detail::DeadLetterGetRequest{id}));
    ASSERT_TRUE(std::holds_alternative<detail::DeadLetterGetRequest>(get));
    EXPECT_EQ(std::get<detail::DeadLetterGetRequest>(get).id, id);

    for (std::string queue : {std::string(), std::string("orders.retry"), std::string(255, 'q')}) {
        auto replay = decode_ok(encode(detail::DeadLetterReplayRequest{id, queue}));
        ASSERT_TRUE(std::holds_alternative<detail::DeadLetterReplayRequest>(replay));
        EXPECT_EQ(std::get<detail::DeadLetterReplayRequest>(replay).id, id);
        EXPECT_EQ(std::get<detail::DeadLetterReplayRequest>(replay).queue, queue);
    }
}

TEST(ControlCodecTest, RequestsAcceptOptionalAndLaterArguments) {
    // dlq.list without a filter lists everything; dlq.replay without a queue (or nil) replays
    // to the letter's own queue; nil filter values mean "no condition".
    auto list = decode_ok(request("dlq.list"));
    ASSERT_TRUE(std::holds_alternative<detail::DeadLetterListRequest>(list));
    EXPECT_FALSE(std::get<detail::DeadLetterListRequest>(list).filter.queue.has_value());

    const auto id = peermq::MessageId::generate();
    auto replay = decode_ok(request("dlq.replay", 1, [&](Packer& pk) { bin(pk, id_bytes(id)); }));
    EXPECT_EQ(std::get<detail::DeadLetterReplayRequest>(replay).queue, "");
    replay = decode_ok(request("dlq.replay", 2, [&](Packer& pk) {
        bin(pk, id_bytes(id));
        pk.pack_nil();
    }));
    EXPECT_EQ(std::get<detail::DeadLetterReplayRequest>(replay).queue, "");

    auto nil_filter = decode_ok(request("dlq.purge", 1, [](Packer& pk) {
        pk.pack_map(2);
        str(pk, "queue");
        pk.pack_nil();
        str(pk, "limit");
        pk.pack_nil();
    }));
    EXPECT_FALSE(std::get<detail::DeadLetterPurgeRequest>(nil_filter).filter.queue.has_value());

    // Trailing elements a later revision may add are ignored.
    auto stats = decode_ok(request("stats", 2, [](Packer& pk) {
        pk.pack_true();
        str(pk, "future");
    }));
    EXPECT_TRUE(std::holds_alternative<detail::StatsRequest>(stats));
}

TEST(ControlCodecTest, GarbageRequestsAreRefused) {
    EXPECT_EQ(refused(""), "control.garbage");
    EXPECT_EQ(refused("\xc1"), "control.garbage");  // never-used MessagePack byte
    EXPECT_EQ(refused("hello, node"), "control.garbage");
    const std::string stats = encode(detail::StatsRequest{});
    EXPECT_EQ(refused(stats.substr(0, stats.size() - 1)), "control.garbage");  // truncated
    EXPECT_EQ(refused(stats + "x"), "control.garbage");                        // trailing bytes
    EXPECT_EQ(refused(stats + stats), "control.garbage");                      // two values
    // Not an array [version, verb, ...].
    EXPECT_EQ(refused(bytes_of([](Packer& pk) { pk.pack_uint32(1); })), "control.garbage");
    EXPECT_EQ(refused(bytes_of([](Packer& pk) { str(pk, "stats"); })), "control.garbage");
    EXPECT_EQ(refused(bytes_of([](Packer& pk) { pk.pack_map(0); })), "control.garbage");
    EXPECT_EQ(refused(bytes_of([](Packer& pk) { pk.pack_array(0); })), "control.garbage");
    EXPECT_EQ(refused(bytes_of([](Packer& pk) {
                  pk.pack_array(1);
                  pk.pack_uint32(1);
              })),
              "control.garbage");
    // Version of the wrong type; verb of the wrong type.
    EXPECT_EQ(refused(bytes_of([](Packer& pk) {
                  pk.pack_array(2);
                  str(pk, "1");
                  str(pk, "stats");
              })),
              "control.garbage");
    EXPECT_EQ(refused(bytes_of([](Packer& pk) {
                  pk.pack_array(2);
                  pk.pack_int32(-1);
                  str(pk, "stats");
              })),
              "control.garbage");
    EXPECT_EQ(refused(bytes_of([](Packer& pk) {
                  pk.pack_array(2);
                  pk.pack_uint32(1);
                  pk.pack_uint32(7);
              })),
              "control.garbage");
    // Over the request size, nested too deep, a string over the limit.
    EXPECT_EQ(refused(std::string(detail::kMaxControlRequestBytes + 1, '\x90')), "control.garbage");
    EXPECT_EQ(refused(request("dlq.list", 1,
                              [](Packer& pk) {
                                  pk.pack_map(1);
                                  str(pk, "queue");
                                  pk.pack_array(1);
                                  pk.pack_array(1);
                                  pk.pack_array(0);
                              })),
              "control.garbage");
    EXPECT_EQ(refused(request("dlq.list", 1,
                              [](Packer& pk) {
                                  pk.pack_map(1);
                                  str(pk, "reason");
                                  str(pk, std::string(detail::kMaxControlStringBytes + 1, 'r'));
                              })),
              "control.garbage");
}

TEST(ControlCodecTest, WrongVersionAndUnknownVerbAreRefused) {
    for (std::uint32_t version : {0u, 2u, 4'000'000'000u}) {
        const std::string bytes = bytes_of([&](Packer& pk) {
            pk.pack_array(2);
            pk.pack_uint32(version);
            str(pk, "stats");
        });
        detail::ControlRequest out;
        auto error = detail::decode_request(bytes.data(), bytes.size(), out);
        ASSERT_TRUE(error.has_value());
        EXPECT_EQ(error->reason, "control.bad_version");
        EXPECT_NE(error->message.find(std::to_string(version)), std::string::npos);
    }
    for (std::string_view verb : {"", "STATS", "flush", "dlq", "dlq.list.all"}) {
        EXPECT_EQ(refused(request(verb)), "control.unknown_verb") << verb;
    }
}

TEST(ControlCodecTest, MalformedArgumentsAreRefused) {
    const auto id = peermq::MessageId::generate();
    const std::string good_id = id_bytes(id);
    // dlq.get / dlq.replay: the id is required, bin of exactly 16 bytes.
    EXPECT_EQ(refused(request("dlq.get")), "control.bad_request");
    EXPECT_EQ(refused(request("dlq.replay")), "control.bad_request");
    EXPECT_EQ(refused(request("dlq.get", 1, [&](Packer& pk) { bin(pk, good_id.substr(1)); })),
              "control.bad_request");
    EXPECT_EQ(refused(request("dlq.get", 1, [&](Packer& pk) { bin(pk, good_id + "x"); })),
              "control.bad_request");
    EXPECT_EQ(refused(request("dlq.get", 1, [&](Packer& pk) { str(pk, id.to_string()); })),
              "control.bad_request");
    EXPECT_EQ(refused(request("dlq.get", 1, [](Packer& pk) { pk.pack_nil(); })),
              "control.bad_request");
    // dlq.replay: the queue is a string of at most 255 bytes.
    EXPECT_EQ(refused(request("dlq.replay", 2,
                              [&](Packer& pk) {
                                  bin(pk, good_id);
                                  pk.pack_uint32(3);
                              })),
              "control.bad_request");
    EXPECT_EQ(refused(request("dlq.replay", 2,
                              [&](Packer& pk) {
                                  bin(pk, good_id);
                                  str(pk, std::string(256, 'q'));
                              })),
              "control.bad_request");
    // dlq.purge needs its filter ({} = everything): purging all is never implied.
    EXPECT_EQ(refused(request("dlq.purge")), "control.bad_request");
    // Filters: a map, string keys, known keys only, values of the right type.
    auto filter = [](std::function<void(Packer&)> write) { return request("dlq.purge", 1, write); };
    EXPECT_EQ(refused(filter([](Packer& pk) { pk.pack_array(0); })), "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) { str(pk, "orders"); })), "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  pk.pack_uint32(1);
                  str(pk, "orders");
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "queue_prefix");  // a later narrowing key: never ignored
                  str(pk, "ord");
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "queue");
                  pk.pack_uint32(1);
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "queue");
                  str(pk, std::string(256, 'q'));
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "reason");
                  pk.pack_true();
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "since_ms");
                  str(pk, "yesterday");
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "until_ms");
                  pk.pack_uint64(~0ull);  // over INT64_MAX
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "limit");
                  pk.pack_int32(-1);
              })),
              "control.bad_request");
    EXPECT_EQ(refused(filter([](Packer& pk) {
                  pk.pack_map(1);
                  str(pk, "limit");
                  pk.pack_double(1.5);
              })),
              "control.bad_request");
}

// --- Replies -----------------------------------------------------------------------------------

TEST(ControlCodecTest, StatsReplyRoundTripsEveryField) {
    peermq::NodeStats stats;
    stats.id = peermq::NodeId::generate();
    stats.name = "node-a";
    stats.queues["orders"] = channel(100);
    stats.queues["refunds"] = channel(200);
    stats.topics["prices."] = channel(300);
    stats.peers = {
        peer("node-b", peermq::PeerState::alive), peer("node-c", peermq::PeerState::connecting),
        peer("node-d", peermq::PeerState::suspect), peer("node-e", peermq::PeerState::down)};
    stats.dropped = {{"frame.garbage", 3}, {"control.unknown_verb", 1}};
    stats.bad_frames = 3;
    stats.discovery_ignored = {{"record.other_cluster", 2}};
    stats.thread_errors = {{"control", 1}, {"peer_event_handler", 4}};

    const std::string bytes = reply(stats);
    auto decoded = detail::decode_stats_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    const peermq::NodeStats& got = decoded.value();
    EXPECT_EQ(got.id, stats.id);
    EXPECT_EQ(got.name, stats.name);
    ASSERT_EQ(got.queues.size(), 2u);
    expect_channel_eq(got.queues.at("orders"), stats.queues.at("orders"));
    expect_channel_eq(got.queues.at("refunds"), stats.queues.at("refunds"));
    ASSERT_EQ(got.topics.size(), 1u);
    expect_channel_eq(got.topics.at("prices."), stats.topics.at("prices."));
    ASSERT_EQ(got.peers.size(), stats.peers.size());
    for (std::size_t i = 0; i < got.peers.size(); ++i) expect_peer_eq(got.peers[i], stats.peers[i]);
    EXPECT_EQ(got.dropped, stats.dropped);
    EXPECT_EQ(got.bad_frames, stats.bad_frames);
    EXPECT_EQ(got.discovery_ignored, stats.discovery_ignored);
    EXPECT_EQ(got.thread_errors, stats.thread_errors);

    // An empty snapshot round trips too.
    const std::string empty = reply(peermq::NodeStats{});
    auto decoded_empty = detail::decode_stats_reply(empty.data(), empty.size());
    ASSERT_TRUE(decoded_empty.ok());
    EXPECT_TRUE(decoded_empty->queues.empty());
    EXPECT_TRUE(decoded_empty->id.is_nil());
}

TEST(ControlCodecTest, PeerAndDeadLetterRepliesRoundTrip) {
    const std::vector<peermq::PeerInfo> peers = {peer("b", peermq::PeerState::alive),
                                                 peermq::PeerInfo{}};
    std::string bytes = reply(peers);
    auto got_peers = detail::decode_peers_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(got_peers.ok()) << got_peers.status().to_string();
    ASSERT_EQ(got_peers->size(), 2u);
    expect_peer_eq((*got_peers)[0], peers[0]);
    expect_peer_eq((*got_peers)[1], peers[1]);

    const std::vector<peermq::DeadLetter> letters = {letter("orders"), letter("refunds"),
                                                     peermq::DeadLetter{}};
    bytes = reply(letters);
    auto got_letters = detail::decode_dead_letters_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(got_letters.ok()) << got_letters.status().to_string();
    ASSERT_EQ(got_letters->size(), 3u);
    for (std::size_t i = 0; i < letters.size(); ++i)
        expect_letter_eq((*got_letters)[i], letters[i]);

    const peermq::DeadLetter one = letter("orders");
    bytes = reply(one);
    auto got_one = detail::decode_dead_letter_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(got_one.ok()) << got_one.status().to_string();
    expect_letter_eq(got_one.value(), one);

    bytes = reply(std::uint64_t{12345678901234ull});
    auto count = detail::decode_count_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(count.value(), 12345678901234ull);

    const auto id = peermq::MessageId::generate();
    bytes = reply(id);
    auto got_id = detail::decode_id_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(got_id.ok());
    EXPECT_EQ(got_id.value(), id);
}

TEST(ControlCodecTest, ErrorRepliesKeepTheirCodeAndMessage) {
    for (int i = 1; i <= static_cast<int>(ErrorCode::internal); ++i) {
        const auto code = static_cast<ErrorCode>(i);
        msgpack::sbuffer buffer;
        detail::encode_error_reply(peermq::Status(code, "what went wrong"), buffer);
        auto got = detail::decode_dead_letter_reply(buffer.data(), buffer.size());
        ASSERT_FALSE(got.ok());
        EXPECT_EQ(got.status().code(), code) << peermq::to_string(code);
        EXPECT_EQ(got.status().message(), "what went wrong");
        EXPECT_EQ(detail::error_code_from_name(peermq::to_string(code)), code);
    }
    EXPECT_EQ(detail::error_code_from_name("no_such_code"), std::nullopt);

    // A code this client does not know keeps its name in the message.
    const std::string future = bytes_of([](Packer& pk) {
        pk.pack_array(4);
        pk.pack_uint32(1);
        str(pk, "error");
        str(pk, "quota_exceeded");
        str(pk, "slow down");
    });
    auto got = detail::decode_stats_reply(future.data(), future.size());
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), ErrorCode::protocol_error);
    EXPECT_EQ(got.status().message(), "quota_exceeded: slow down");
}

TEST(ControlCodecTest, UnknownReplyKeysAreIgnored) {
    const auto id = peermq::NodeId::generate();
    const std::string bytes = ok_reply([&](Packer& pk) {
        pk.pack_map(3);
        str(pk, "name");
        str(pk, "node-a");
        str(pk, "uptime_ms");  // a later revision's field
        pk.pack_uint32(5);
        str(pk, "id");
        bin(pk, id_bytes(id));
    });
    auto got = detail::decode_stats_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(got->name, "node-a");
    EXPECT_EQ(got->id, id);
}

TEST(ControlCodecTest, MalformedRepliesAreProtocolErrors) {
    auto expect_protocol_error = [](const std::string& bytes, const char* what) {
        auto got = detail::decode_stats_reply(bytes.data(), bytes.size());
        ASSERT_FALSE(got.ok()) << what;
        EXPECT_EQ(got.status().code(), ErrorCode::protocol_error) << what;
        EXPECT_FALSE(got.status().message().empty()) << what;
    };
    const std::string good = reply(peermq::NodeStats{});
    expect_protocol_error("", "empty");
    expect_protocol_error("\xc1", "garbage");
    expect_protocol_error(good.substr(0, good.size() - 1), "truncated");
    expect_protocol_error(good + "x", "trailing bytes");
    expect_protocol_error(bytes_of([](Packer& pk) { pk.pack_map(0); }), "not an array");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(1);
                              pk.pack_uint32(1);
                          }),
                          "no status");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(3);
                              pk.pack_uint32(2);
                              str(pk, "ok");
                              pk.pack_map(0);
                          }),
                          "version 2");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(3);
                              str(pk, "1");
                              str(pk, "ok");
                              pk.pack_map(0);
                          }),
                          "version of the wrong type");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(3);
                              pk.pack_uint32(1);
                              str(pk, "maybe");
                              pk.pack_map(0);
                          }),
                          "unknown status");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(2);
                              pk.pack_uint32(1);
                              str(pk, "ok");
                          }),
                          "ok without a body");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(3);
                              pk.pack_uint32(1);
                              str(pk, "error");
                              str(pk, "not_found");
                          }),
                          "error without a message");
    expect_protocol_error(bytes_of([](Packer& pk) {
                              pk.pack_array(4);
                              pk.pack_uint32(1);
                              str(pk, "error");
                              str(pk, "ok");
                              str(pk, "an error that says ok");
                          }),
                          "error with code ok");
    // Bodies of the wrong shape.
    expect_protocol_error(ok_reply([](Packer& pk) { pk.pack_array(0); }), "stats as an array");
    expect_protocol_error(reply(std::uint64_t{3}), "a count for stats");
    expect_protocol_error(ok_reply([](Packer& pk) {
                              pk.pack_map(1);
                              str(pk, "id");
                              bin(pk, "short");
                          }),
                          "id of 5 bytes");
    expect_protocol_error(ok_reply([](Packer& pk) {
                              pk.pack_map(1);
                              str(pk, "queues");
                              pk.pack_map(1);
                              str(pk, "orders");
                              pk.pack_map(1);
                              str(pk, "sent");
                              str(pk, "many");
                          }),
                          "a counter as a string");
    expect_protocol_error(ok_reply([](Packer& pk) {
                              pk.pack_map(1);
                              str(pk, "topics");
                              pk.pack_map(1);
                              str(pk, "t");
                              pk.pack_map(1);
                              str(pk, "ack_latency");
                              pk.pack_map(1);
                              str(pk, "buckets");
                              pk.pack_array(33);
                              for (int i = 0; i < 33; ++i) pk.pack_uint32(0);
                          }),
                          "33 latency buckets");
    expect_protocol_error(ok_reply([](Packer& pk) {
                              pk.pack_map(1);
                              str(pk, "peers");
                              pk.pack_array(1);
                              pk.pack_map(1);
                              str(pk, "state");
                              str(pk, "zombie");
                          }),
                          "unknown peer state");
    expect_protocol_error(ok_reply([](Packer& pk) {
                              pk.pack_map(1);
                              str(pk, "dropped");
                              pk.pack_map(1);
                              str(pk, "frame.garbage");
                              pk.pack_int32(-1);
                          }),
                          "a negative counter");

    // The other bodies: each decoder checks its own shape.
    const std::string letters = reply(std::vector<peermq::DeadLetter>{letter("q")});
    auto as_one = detail::decode_dead_letter_reply(letters.data(), letters.size());
    EXPECT_EQ(as_one.status().code(), ErrorCode::protocol_error);
    const std::string payload_as_str = ok_reply([](Packer& pk) {
        pk.pack_map(1);
        str(pk, "payload");
        str(pk, "text");
    });
    auto bad_payload =
        detail::decode_dead_letter_reply(payload_as_str.data(), payload_as_str.size());
    EXPECT_EQ(bad_payload.status().code(), ErrorCode::protocol_error);
    const std::string negative = ok_reply([](Packer& pk) { pk.pack_int32(-3); });
    EXPECT_EQ(detail::decode_count_reply(negative.data(), negative.size()).status().code(),
              ErrorCode::protocol_error);
    const std::string id_as_str = ok_reply([](Packer& pk) { str(pk, "0190a3c4"); });
    EXPECT_EQ(detail::decode_id_reply(id_as_str.data(), id_as_str.size()).status().code(),
              ErrorCode::protocol_error);
    const std::string stats = reply(peermq::NodeStats{});
    EXPECT_EQ(detail::decode_peers_reply(stats.data(), stats.size()).status().code(),
              ErrorCode::protocol_error);
}

// A few bytes claiming a container of 2^32-1 elements are refused by limits that follow the
// reply's size, before the decoder allocates the elements (~100 GiB of decoded objects).
TEST(ControlCodecTest, RepliesClaimingHugeContainersAreRefusedByTheLimits) {
    const std::string hostile[] = {
        std::string("\x91\xdd\xff\xff\xff\xff", 6),                  // [array32 of 2^32-1]
        std::string("\xdf\xff\xff\xff\xff\x01", 6),                  // map32 of 2^32-1 pairs
        std::string("\x93\x01\xa2ok\xdd\xff\xff\xff\xff", 10),       // [1, "ok", array32]
        std::string("\x93\x01\xa2ok\x81\xa5peers\xdc\xff\xff", 15),  // peers: array16
    };
    using Decode = std::function<peermq::Status(const std::string&)>;
    auto status_of = [](auto result) { return result.status(); };
    const Decode decoders[] = {
        [&](const std::string& b) {
            return status_of(detail::decode_stats_reply(b.data(), b.size()));
        },
        [&](const std::string& b) {
            return status_of(detail::decode_peers_reply(b.data(), b.size()));
        },
        [&](const std::string& b) {
            return status_of(detail::decode_dead_letters_reply(b.data(), b.size()));
        },
        [&](const std::string& b) {
            return status_of(detail::decode_dead_letter_reply(b.data(), b.size()));
        },
        [&](const std::string& b) {
            return status_of(detail::decode_count_reply(b.data(), b.size()));
        },
        [&](const std::string& b) {
            return status_of(detail::decode_id_reply(b.data(), b.size()));
        },
    };
    for (const auto& bytes : hostile) {
        for (const auto& decode : decoders) {
            const peermq::Status status = decode(bytes);
            EXPECT_EQ(status.code(), ErrorCode::protocol_error) << status.to_string();
            EXPECT_NE(status.message().find("decode limits"), std::string::npos)
                << status.to_string() << " for " << bytes.size() << " bytes";
            EXPECT_EQ(status.message().find("bad_alloc"), std::string::npos) << status.to_string();
        }
    }
}

// A node that knows many peers announcing many queues answers `stats` and `peers` with a reply
// of at most kMaxReplyBytes: the first peers, channels and names that fit, and counts of the
// rest.
TEST(ControlCodecTest, StatsAndPeersRepliesAreBoundedWhateverTheNodeKnows) {
    peermq::NodeStats stats;
    stats.name = "crowded";
    for (int i = 0; i < 3000; ++i) stats.queues["queue-" + std::to_string(i)] = channel(i);
    for (int i = 0; i < 1000; ++i) {
        peermq::PeerInfo p = peer("peer-" + std::to_string(i), peermq::PeerState::alive);
        p.queues.clear();
        p.topics.clear();
        for (int q = 0; q < 200; ++q) {
            p.queues.push_back(std::string(200, 'q') + std::to_string(q));
            p.topics.push_back(std::string(200, 't') + std::to_string(q));
        }
        stats.peers.push_back(std::move(p));
    }
    const std::string bytes = reply(stats);
    EXPECT_LE(bytes.size(), detail::kMaxReplyBytes);
    auto decoded = detail::decode_stats_reply(bytes.data(), bytes.size());
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(decoded->name, "crowded");
    EXPECT_LE(decoded->queues.size(), detail::kMaxReplyChannels);
    EXPECT_EQ(decoded->queues.size() + decoded->queues_omitted, 3000u);
    EXPECT_GT(decoded->peers.size(), 0u);
    EXPECT_LE(decoded->peers.size(), detail::kMaxReplyPeers);
    EXPECT_EQ(decoded->peers.size() + decoded->peers_omitted, 1000u);
    for (std::size_t i = 0; i < decoded->peers.size(); ++i) {
        const auto& p = decoded->peers[i];
        EXPECT_EQ(p.name, stats.peers[i].name);
        ASSERT_EQ(p.queues.size(), detail::kMaxReplyNamesPerPeer);
        EXPECT_EQ(p.queues_omitted, 200u - detail::kMaxReplyNamesPerPeer);
        EXPECT_EQ(p.topics.size() + p.topics_omitted, 200u);
        EXPECT_EQ(p.queues[0], stats.peers[i].queues[0]);
    }

    const std::string peers_bytes = reply(stats.peers);
    EXPECT_LE(peers_bytes.size(), detail::kMaxReplyBytes);
    auto peers = detail::decode_peers_reply(peers_bytes.data(), peers_bytes.size());
    ASSERT_TRUE(peers.ok()) << peers.status().to_string();
    EXPECT_GT(peers->size(), 0u);
    EXPECT_LE(peers->size(), detail::kMaxReplyPeers);

    // Within the bounds nothing is left out, and counts already in the snapshot carry over.
    peermq::NodeStats small;
    small.peers = {peer("b", peermq::PeerState::alive)};
    small.peers[0].queues_omitted = 7;
    small.peers_omitted = 3;
    const std::string small_bytes = reply(small);
    auto small_decoded = detail::decode_stats_reply(small_bytes.data(), small_bytes.size());
    ASSERT_TRUE(small_decoded.ok());
    EXPECT_EQ(small_decoded->peers.size(), 1u);
    EXPECT_EQ(small_decoded->peers[0].queues, small.peers[0].queues);
    EXPECT_EQ(small_decoded->peers[0].queues_omitted, 7u);
    EXPECT_EQ(small_decoded->peers_omitted, 3u);
    EXPECT_EQ(small_decoded->queues_omitted, 0u);
}

}  // namespace
