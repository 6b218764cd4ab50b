// The envelope codec (docs/spec/wire.md): round trips, forward compatibility, and every
// malformed case mapped to its drop reason.
#include <gtest/gtest.h>

#include "envelope.hpp"
#include "peermq/clock.hpp"

namespace detail = peermq::detail;

namespace {

std::optional<std::string_view> decode(const std::string& bytes, detail::Header& out) {
    return detail::decode_header(bytes.data(), bytes.size(), out);
}

std::string encode(const detail::Header& header) {
    msgpack::sbuffer buffer;
    detail::encode_header(header, buffer);
    return {buffer.data(), buffer.size()};
}

detail::Header full_header() {
    detail::Header h;
    h.kind = detail::Kind::nack;
    h.sender = peermq::NodeId::generate();
    h.id = peermq::MessageId::generate();
    h.channel = "orders";
    h.flags = detail::kFlagAckRequested | detail::kFlagDedupe;
    h.attempt = 3;
    h.created_ms = 1'700'000'000'123;
    h.deadline_ms = 1'700'000'060'123;
    h.seq = 42;
    h.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                 {"k", "v"}};
    h.ids = {peermq::MessageId::generate(), peermq::MessageId::generate()};
    h.error = "card declined";
    return h;
}

// A header array with `extra` unknown elements appended, as a later revision would send.
template <typename... Extra>
std::string with_trailing(const detail::Header& h, const Extra&... extra) {
    msgpack::sbuffer buffer;
    detail::encode_header(h, buffer);
    std::string bytes(buffer.data(), buffer.size());
    // fixarray of 13 → 13 + N elements (still a fixarray below 16).
    EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x90 | 13);
    bytes[0] = static_cast<char>(0x90 | (13 + sizeof...(extra)));
    msgpack::sbuffer tail;
    (msgpack::pack(tail, extra), ...);
    return bytes + std::string(tail.data(), tail.size());
}

template <typename... Fields>
std::string array(const Fields&... fields) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> pk(buffer);
    pk.pack_array(sizeof...(fields));
    (pk.pack(fields), ...);
    return {buffer.data(), buffer.size()};
}

const std::vector<char> kId(16, '\x07');  // std::vector<char> packs as MessagePack bin

}  // namespace

TEST(Envelope, HeaderRoundTripKeepsEveryField) {
    const auto h = full_header();
    detail::Header out;
    ASSERT_FALSE(decode(encode(h), out).has_value());
    EXPECT_EQ(out.version, 1u);
    EXPECT_EQ(out.kind, h.kind);
    EXPECT_EQ(out.sender, h.sender);
    EXPECT_EQ(out.id, h.id);
    EXPECT_EQ(out.channel, h.channel);
    EXPECT_EQ(out.flags, h.flags);
    EXPECT_EQ(out.attempt, h.attempt);
    EXPECT_EQ(out.created_ms, h.created_ms);
    EXPECT_EQ(out.deadline_ms, h.deadline_ms);
    EXPECT_EQ(out.seq, h.seq);
    EXPECT_EQ(out.headers, h.headers);
    EXPECT_EQ(out.ids, h.ids);
    EXPECT_EQ(out.error, h.error);
}

TEST(Envelope, DataHeaderEncoderMatchesTheGeneralOne) {
    auto h = full_header();
    h.kind = detail::Kind::data;
    h.ids.clear();
    h.error.clear();
    msgpack::sbuffer fast;
    detail::encode_data_header({h.sender, h.id, h.channel, h.flags, h.attempt, h.created_ms,
                                h.deadline_ms, h.seq, h.headers},
                               fast);
    EXPECT_EQ(std::string(fast.data(), fast.size()), encode(h));
}

TEST(Envelope, UnknownTrailingFieldsAreSkipped) {
    const auto h = full_header();
    detail::Header out;
    const auto reason = decode(with_trailing(h, std::string("future"), std::vector<int>{1, 2}), out);
    ASSERT_FALSE(reason.has_value()) << *reason;
    EXPECT_EQ(out.id, h.id);
    EXPECT_EQ(out.error, h.error);
}

TEST(Envelope, MissingTrailingFieldsTakeTheirDefaults) {
    detail::Header out;
    const auto reason = decode(array(1u, 5u, kId, kId, std::string("")), out);
    ASSERT_FALSE(reason.has_value()) << *reason;
    EXPECT_EQ(out.kind, detail::Kind::heartbeat);
    EXPECT_EQ(out.attempt, 1u);
    EXPECT_EQ(out.flags, 0u);
    EXPECT_TRUE(out.headers.empty());
    EXPECT_TRUE(out.ids.empty());
}

TEST(Envelope, EveryMalformedHeaderHasItsReason) {
    detail::Header out;
    const std::string channel = "q";
    struct Case {
        std::string name;
        std::string bytes;
        std::string_view reason;
    };
    const std::vector<Case> cases = {
        {"empty", "", "frame.garbage"},
        {"not msgpack", "\xc1", "frame.garbage"},
        {"truncated msgpack", encode(full_header()).substr(0, 20), "frame.garbage"},
        {"trailing bytes", encode(full_header()) + "x", "frame.garbage"},
        {"a map, not an array", "\x80", "frame.garbage"},
        {"too few elements", array(1u, 1u, kId, kId), "frame.missing_field"},
        {"version 2", array(2u, 1u, kId, kId, channel), "frame.bad_version"},
        {"version 0", array(0u, 1u, kId, kId, channel), "frame.bad_version"},
        {"version as string", array(std::string("1"), 1u, kId, kId, channel), "frame.bad_field"},
        {"kind 0", array(1u, 0u, kId, kId, channel), "frame.unknown_kind"},
        {"kind 200", array(1u, 200u, kId, kId, channel), "frame.unknown_kind"},
        {"short id", array(1u, 1u, std::vector<char>(15, 'x'), kId, channel), "frame.bad_field"},
        {"id as str", array(1u, 1u, std::string(16, 'x'), kId, channel), "frame.bad_field"},
        {"id not bin", array(1u, 1u, kId, 5, channel), "frame.bad_field"},
        {"channel too long", array(1u, 1u, kId, kId, std::string(256, 'c')), "frame.bad_field"},
        {"negative flags", array(1u, 1u, kId, kId, channel, -1), "frame.bad_field"},
        {"attempt 0", array(1u, 1u, kId, kId, channel, 0u, 0u), "frame.bad_field"},
        {"headers not a map", array(1u, 1u, kId, kId, channel, 0u, 1u, 0, 0, 0u, 5), "frame.bad_field"},
        {"oversized", std::string(detail::kMaxHeaderBytes + 1, '\x90'), "frame.oversized_header"},
    };
    for (const auto& c : cases) {
        const auto reason = decode(c.bytes, out);
        ASSERT_TRUE(reason.has_value()) << c.name;
        EXPECT_EQ(*reason, c.reason) << c.name;
    }
}

TEST(Envelope, HelloRoundTripAndValidation) {
    detail::Hello hello;
    hello.name = "billing-1";
    hello.cluster = "shop";
    hello.host = "10.0.0.5";
    hello.inbox_port = 5555;
    hello.pub_port = 5556;
    hello.queues = {{"orders", 256}, {"refunds", 8}};
    hello.topics = {"prices."};
    hello.heartbeat_ms = 1000;
    msgpack::sbuffer buffer;
    detail::encode_hello(hello, buffer);
    detail::Hello out;
    ASSERT_FALSE(detail::decode_hello(buffer.data(), buffer.size(), out).has_value());
    EXPECT_EQ(out.name, "billing-1");
    EXPECT_EQ(out.host, "10.0.0.5");
    EXPECT_EQ(out.inbox_port, 5555);
    EXPECT_EQ(out.pub_port, 5556);
    ASSERT_EQ(out.queues.size(), 2u);
    EXPECT_EQ(out.queues[1].name, "refunds");
    EXPECT_EQ(out.queues[1].prefetch, 8u);
    EXPECT_EQ(out.topics, std::vector<std::string>{"prices."});

    auto map = [](auto&&... kv) {
        msgpack::sbuffer b;
        msgpack::packer<msgpack::sbuffer> pk(b);
        pk.pack_map(sizeof...(kv) / 2);
        (pk.pack(kv), ...);
        return std::string(b.data(), b.size());
    };
    auto reason = [&](const std::string& bytes) {
        auto r = detail::decode_hello(bytes.data(), bytes.size(), out);
        return r ? std::string(*r) : std::string("ok");
    };
    const std::string n = "name", c = "cluster", i = "inbox", p = "pub";
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u)), "ok");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u, std::string("new-key"), 3)), "ok");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u)), "hello.missing_field");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 0u, p, 2u)), "hello.bad");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 70000u, p, 2u)), "hello.bad");
    EXPECT_EQ(reason(map(n, 5, c, std::string("b"), i, 1u, p, 2u)), "hello.bad");
    EXPECT_EQ(reason("\x93\x01\x02\x03"), "hello.bad");
    EXPECT_EQ(reason("\xc1"), "hello.bad");
}

TEST(Uuid, GeneratedIdsAreUniqueOrderedVersion7) {
    peermq::Uuid previous = peermq::Uuid::generate();
    for (int i = 0; i < 100'000; ++i) {
        const auto id = peermq::Uuid::generate();
        ASSERT_LT(previous, id);
        ASSERT_EQ(id.bytes()[6] >> 4, 7);
        ASSERT_EQ(id.bytes()[8] >> 6, 2);
        previous = id;
    }
    const auto id = peermq::Uuid::generate();
    EXPECT_EQ(peermq::Uuid::parse(id.to_string()), id);
    EXPECT_FALSE(peermq::Uuid::parse("not-a-uuid").has_value());
    EXPECT_NEAR(static_cast<double>(id.unix_ms()),
                static_cast<double>(peermq::system_clock()->unix_ms()), 5000.0);
}
