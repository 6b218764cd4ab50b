// The envelope codec (docs/spec/wire.md): round trips, forward compatibility, and every
// malformed case mapped to its drop reason.
#include <gtest/gtest.h>

#include <random>

#include "peermq/clock.hpp"
#include "wire/envelope.hpp"

namespace detail = peermq::detail;

namespace {

// A drop reason by the name the specs give it.
std::optional<std::string_view> named(std::optional<detail::Drop> reason) {
    if (!reason) return std::nullopt;
    return detail::name(*reason);
}

std::optional<std::string_view> decode(const std::string& bytes, detail::Header& out) {
    return named(detail::decode_header(bytes.data(), bytes.size(), out));
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
    // Element 13 is a topic publisher's epoch (wire.md §14); what a later revision appends after
    // it is skipped.
    const auto reason = decode(with_trailing(h, 7u, std::vector<std::string>{"future"}), out);
    ASSERT_FALSE(reason.has_value()) << *reason;
    EXPECT_EQ(out.id, h.id);
    EXPECT_EQ(out.error, h.error);
    EXPECT_EQ(out.epoch, 7u);
}

TEST(Envelope, AnEpochIsWrittenOnlyWhenSetAndReadBack) {
    auto h = full_header();
    msgpack::sbuffer plain;
    detail::encode_header(h, plain);
    EXPECT_EQ(static_cast<std::uint8_t>(plain.data()[0]), 0x9d);  // 13 elements, as before
    h.epoch = 1'700'000'000'123;
    msgpack::sbuffer with_epoch;
    detail::encode_header(h, with_epoch);
    EXPECT_EQ(static_cast<std::uint8_t>(with_epoch.data()[0]), 0x9e);
    detail::Header out;
    ASSERT_EQ(detail::decode_header(with_epoch.data(), with_epoch.size(), out), std::nullopt);
    EXPECT_EQ(out.epoch, h.epoch);
    ASSERT_EQ(detail::decode_header(plain.data(), plain.size(), out), std::nullopt);
    EXPECT_EQ(out.epoch, 0u);
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
        {"headers not a map", array(1u, 1u, kId, kId, channel, 0u, 1u, 0, 0, 0u, 5),
         "frame.bad_field"},
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
    EXPECT_FALSE(out.batch);
    hello.batch = true;
    buffer.clear();
    detail::encode_hello(hello, buffer);
    ASSERT_FALSE(detail::decode_hello(buffer.data(), buffer.size(), out).has_value());
    EXPECT_TRUE(out.batch);
    EXPECT_EQ(out.batch_max, 0u);  // not said: it reads the first BATCH revision's 64
    hello.batch_max = 256;
    buffer.clear();
    detail::encode_hello(hello, buffer);
    ASSERT_FALSE(detail::decode_hello(buffer.data(), buffer.size(), out).has_value());
    EXPECT_TRUE(out.batch);
    EXPECT_EQ(out.batch_max, 256u);
    EXPECT_FALSE(out.repair_batch);  // not said: REPAIRs go one frame each
    hello.repair_batch = true;
    buffer.clear();
    detail::encode_hello(hello, buffer);
    ASSERT_FALSE(detail::decode_hello(buffer.data(), buffer.size(), out).has_value());
    EXPECT_TRUE(out.repair_batch);

    auto map = [](auto&&... kv) {
        msgpack::sbuffer b;
        msgpack::packer<msgpack::sbuffer> pk(b);
        pk.pack_map(sizeof...(kv) / 2);
        (pk.pack(kv), ...);
        return std::string(b.data(), b.size());
    };
    auto reason = [&](const std::string& bytes) {
        auto r = detail::decode_hello(bytes.data(), bytes.size(), out);
        return r ? std::string(detail::name(*r)) : std::string("ok");
    };
    const std::string n = "name", c = "cluster", i = "inbox", p = "pub";
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u)), "ok");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u,
                         std::string("new-key"), 3)),
              "ok");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u)), "hello.missing_field");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 0u, p, 2u)), "hello.bad");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 70000u, p, 2u)), "hello.bad");
    EXPECT_EQ(reason(map(n, 5, c, std::string("b"), i, 1u, p, 2u)), "hello.bad");
    EXPECT_EQ(reason("\x93\x01\x02\x03"), "hello.bad");
    EXPECT_EQ(reason("\xc1"), "hello.bad");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u,
                         std::string("batch"), 1u)),
              "hello.bad");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u,
                         std::string("batch_max"), std::string("256"))),
              "hello.bad");
    EXPECT_EQ(reason(map(n, std::string("a"), c, std::string("b"), i, 1u, p, 2u,
                         std::string("batch_max"), 1ull << 40)),
              "hello.bad");
}

// wire.md §6: `host` becomes an endpoint, so it is an IP address or the HELLO is dropped; what
// one HELLO may announce is bounded.
TEST(Envelope, HelloHostMustBeAnAddressAndItsSizeIsBounded) {
    detail::Hello hello;
    hello.name = "n";
    hello.cluster = "c";
    hello.inbox_port = 1;
    hello.pub_port = 2;
    auto reason = [](const detail::Hello& h) {
        msgpack::sbuffer buffer;
        detail::encode_hello(h, buffer);
        detail::Hello out;
        auto r = detail::decode_hello(buffer.data(), buffer.size(), out);
        return r ? std::string(detail::name(*r)) : std::string("ok");
    };
    for (const char* good : {"10.0.0.5", "127.0.0.1", "::1", "fe80::1", "2001:db8::2"}) {
        hello.host = good;
        EXPECT_EQ(reason(hello), "ok") << good;
    }
    for (const char* bad : {"!bad", "a b", "host.local", "10.0.0.5:80", "[::1]", "*", "10.0.0.256",
                            "127.0.0.1;x", "tcp://1.2.3.4"}) {
        hello.host = bad;
        EXPECT_EQ(reason(hello), "hello.bad_host") << bad;
    }
    hello.host.clear();  // absent: the address the HELLO came from

    for (std::size_t i = 0; i < detail::kMaxHelloQueues; ++i) {
        hello.queues.push_back({"q" + std::to_string(i), 1});
    }
    EXPECT_EQ(reason(hello), "ok");
    hello.queues.push_back({"one-more", 1});
    EXPECT_EQ(reason(hello), "hello.oversized");
    hello.queues.clear();
    for (std::size_t i = 0; i <= detail::kMaxHelloTopics; ++i) {
        hello.topics.push_back("t" + std::to_string(i));
    }
    EXPECT_EQ(reason(hello), "hello.oversized");
    hello.topics.clear();
    // The body as a whole, whatever it holds: an unknown key of 64 KiB.
    msgpack::sbuffer buffer;
    detail::encode_hello(hello, buffer);
    std::string body(buffer.data(), buffer.size());
    ASSERT_EQ(static_cast<unsigned char>(body[0]) & 0xf0, 0x80);  // a fixmap: one more key
    body[0] = static_cast<char>(body[0] + 1);
    msgpack::sbuffer extra;
    msgpack::packer<msgpack::sbuffer> pk(extra);
    pk.pack(std::string("padding"));
    pk.pack(std::string(detail::kMaxHelloBytes, 'x'));
    body.append(extra.data(), extra.size());
    detail::Hello out;
    auto r = detail::decode_hello(body.data(), body.size(), out);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(detail::name(*r), "hello.oversized");
}

// wire.md §10: the largest ACK a sender builds fits the header limit (4 096 ids would not).
TEST(Envelope, TheLargestAckASenderBuildsFitsTheHeaderLimit) {
    detail::Header ack;
    ack.kind = detail::Kind::ack;
    ack.sender = peermq::NodeId::generate();
    for (std::size_t i = 0; i < detail::kMaxIdsPerAck; ++i) {
        ack.ids.push_back(peermq::MessageId::generate());
    }
    msgpack::sbuffer buffer;
    detail::encode_header(ack, buffer);
    EXPECT_LE(buffer.size(), detail::kMaxHeaderBytes);
    detail::Header out;
    EXPECT_FALSE(detail::decode_header(buffer.data(), buffer.size(), out).has_value());
    EXPECT_EQ(out.ids.size(), detail::kMaxIdsPerAck);
    while (ack.ids.size() < detail::kMaxIdsPerFrame) ack.ids.push_back(peermq::MessageId{});
    buffer.clear();
    detail::encode_header(ack, buffer);
    EXPECT_GT(buffer.size(), detail::kMaxHeaderBytes);
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

namespace {

std::string batch_body(const std::vector<std::pair<std::string, std::string>>& entries) {
    msgpack::sbuffer out;
    for (const auto& [header, payload] : entries) detail::append_batch_entry(header, payload, out);
    return {out.data(), out.size()};
}

std::optional<std::string_view> split(const std::string& body, std::uint64_t count,
                                      std::vector<detail::BatchEntry>& out) {
    return named(detail::split_batch(body.data(), body.size(), count, out));
}

}  // namespace

TEST(Envelope, BatchRoundTrip) {
    detail::Header first = full_header();
    first.kind = detail::Kind::data;
    detail::Header second = first;
    second.id = peermq::MessageId::generate();
    second.headers.clear();
    const std::string body = batch_body({{encode(first), "payload one"},
                                         {encode(second), ""},
                                         {encode(first), std::string(2048, '\xff')}});
    // Big-endian 32-bit lengths around each part (docs/spec/wire.md §batch).
    const std::string first_header = encode(first);
    ASSERT_EQ(body.size(), 3 * detail::kBatchEntryOverhead + 2 * first_header.size() +
                               encode(second).size() + 11 + 2048);
    EXPECT_EQ(static_cast<unsigned char>(body[3]), first_header.size());
    EXPECT_EQ(body.substr(0, 3), std::string(3, '\0'));

    std::vector<detail::BatchEntry> entries;
    ASSERT_FALSE(split(body, 3, entries));
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].payload, "payload one");
    EXPECT_EQ(entries[1].payload, "");
    EXPECT_EQ(entries[2].payload, std::string(2048, '\xff'));
    detail::Header out;
    ASSERT_FALSE(detail::decode_header(entries[1].header.data(), entries[1].header.size(), out));
    EXPECT_EQ(out.id, second.id);
    EXPECT_TRUE(out.headers.empty());

    // The BATCH header itself: kind 8, its entry count in seq.
    detail::Header batch;
    batch.kind = detail::Kind::batch;
    batch.sender = first.sender;
    batch.seq = 3;
    ASSERT_FALSE(decode(encode(batch), out));
    EXPECT_EQ(out.kind, detail::Kind::batch);
    EXPECT_EQ(out.seq, 3u);
    EXPECT_EQ(detail::to_string(detail::Kind::batch), "BATCH");
}

TEST(Envelope, EveryMalformedBatchIsABadBatch) {
    detail::Header h = full_header();
    h.kind = detail::Kind::data;
    const std::string one = batch_body({{encode(h), "abc"}});
    const std::string two = one + one;
    const std::string max = [&] {
        std::string s;
        for (std::size_t i = 0; i < detail::kMaxBatchEntries; ++i) s += batch_body({{"", ""}});
        return s;
    }();
    struct Case {
        const char* what;
        std::string body;
        std::uint64_t count;
    };
    const std::vector<Case> cases = {
        {"no entries", "", 0},
        {"count 0 with an entry", one, 0},
        {"count above the limit", max + batch_body({{"", ""}}), detail::kMaxBatchEntries + 1},
        {"count far above the limit", two, 1ull << 40},
        {"more entries than counted", two, 1},
        {"fewer entries than counted", two, 3},
        {"empty body", "", 1},
        {"cut in a header length", one.substr(0, 2), 1},
        {"cut in a header", one.substr(0, 10), 1},
        {"cut in a payload length", one.substr(0, one.size() - 5), 1},
        {"cut in a payload", one.substr(0, one.size() - 1), 1},
        {"trailing byte", one + "x", 1},
        {"header length past the end", "\xff\xff\xff\xff" + one, 1},
        {"payload length past the end", std::string("\0\0\0\0\xff\xff\xff\xff", 8), 1},
        {"body above the limit", batch_body({{"", std::string(detail::kMaxBatchBytes, 'x')}}), 1},
    };
    for (const auto& c : cases) {
        std::vector<detail::BatchEntry> entries;
        auto reason = split(c.body, c.count, entries);
        ASSERT_TRUE(reason.has_value()) << c.what;
        EXPECT_EQ(*reason, "frame.bad_batch") << c.what;
    }
    // The limits themselves are accepted.
    std::vector<detail::BatchEntry> entries;
    EXPECT_FALSE(split(max, detail::kMaxBatchEntries, entries));
    EXPECT_EQ(entries.size(), detail::kMaxBatchEntries);
    const std::string full =
        batch_body({{"", std::string(detail::kMaxBatchBytes - detail::kBatchEntryOverhead, 'x')}});
    EXPECT_FALSE(split(full, 1, entries));
    // Framing is all split_batch checks: a bad entry header is caught by decode_header later.
    const std::string bad_entry = batch_body({{"\xc1", "x"}});  // entries point into it
    EXPECT_FALSE(split(bad_entry, 1, entries));
    detail::Header out;
    EXPECT_EQ(named(detail::decode_header(entries[0].header.data(), entries[0].header.size(), out)),
              "frame.garbage");
}

namespace {

// Every field of a decoded header, for comparing two in one line of a failure message.
std::string describe(const detail::Header& h) {
    std::string out = std::to_string(h.version) + " " + std::string(detail::to_string(h.kind)) +
                      " " + h.sender.to_string() + " " + h.id.to_string() + " [" + h.channel +
                      "] " + std::to_string(h.flags) + " " + std::to_string(h.attempt) + " " +
                      std::to_string(h.created_ms) + " " + std::to_string(h.deadline_ms) + " " +
                      std::to_string(h.seq) + " {";
    for (const auto& [key, value] : h.headers) out += key + "=" + value + ",";
    out += "} [";
    for (const auto& id : h.ids) out += id.to_string() + ",";
    return out + "] [" + h.error + "]";
}

// Decodes `headers` as the entries of one BATCH, with one BatchHeaderDecoder, and checks each
// result against decode_header of that entry alone: the same reason, or the same header.
void expect_batch_decodes_like_single(const std::vector<std::string>& headers,
                                      const std::string& what) {
    detail::BatchHeaderDecoder decoder;
    detail::Header shared;
    for (std::size_t i = 0; i < headers.size(); ++i) {
        SCOPED_TRACE(what + ", entry " + std::to_string(i));
        detail::Header alone;
        const auto expected = decode(headers[i], alone);
        ASSERT_EQ(named(decoder.decode(headers[i], shared)), expected);
        if (!expected) {
            EXPECT_EQ(describe(shared), describe(alone));
        }
    }
}

detail::Header data_header(const peermq::NodeId& sender, std::string channel) {
    detail::Header h;
    h.kind = detail::Kind::data;
    h.sender = sender;
    h.id = peermq::MessageId::generate();
    h.channel = std::move(channel);
    h.flags = detail::kFlagAckRequested;
    h.created_ms = 1'700'000'000'123;
    return h;
}

}  // namespace

TEST(Envelope, BatchEntriesSharingTheirLeadingFieldsDecodeLikeSingleHeaders) {
    const auto sender = peermq::NodeId::generate();
    const auto other = peermq::NodeId::generate();
    const std::string long_channel(40, 'q');  // str 8, not fixstr
    std::vector<std::string> headers;
    for (int i = 0; i < 6; ++i) {
        detail::Header h = data_header(sender, "orders");
        h.attempt = static_cast<std::uint32_t>(1 + i % 3);
        h.seq = static_cast<std::uint64_t>(1000 + i);
        h.deadline_ms = i % 2 ? h.created_ms + 5000 : 0;
        if (i == 2) h.headers = {{"traceparent", "00-abc-def-01"}};
        if (i == 4) h.flags |= detail::kFlagDedupe;
        headers.push_back(encode(h));
    }
    expect_batch_decodes_like_single(headers, "one sender, one channel");

    // What differs in the shared fields is seen: another channel (shorter, longer, same length),
    // another sender, another kind; each is then decoded in full.
    headers = {encode(data_header(sender, "orders")),     encode(data_header(sender, "orderz")),
               encode(data_header(sender, "orders.eu")),  encode(data_header(sender, "o")),
               encode(data_header(other, "o")),           encode(data_header(sender, long_channel)),
               encode(data_header(sender, long_channel)), encode(data_header(sender, ""))};
    detail::Header ack = data_header(sender, "");
    ack.kind = detail::Kind::ack;
    ack.ids = {peermq::MessageId::generate()};
    headers.push_back(encode(ack));
    headers.push_back(encode(data_header(sender, "")));
    expect_batch_decodes_like_single(headers, "changing channel, sender and kind");

    // Bad fields after the shared ones, and entries that are not even MessagePack, in between
    // good ones: the same reasons as alone, and the next good entry still decodes.
    detail::Header good = data_header(sender, "orders");
    std::string zero_attempt = encode(good);
    const std::string good_bytes = zero_attempt;
    detail::Header with_attempt = good;
    with_attempt.attempt = 0;
    zero_attempt = encode(with_attempt);
    std::string bad_created = good_bytes;
    bad_created[good_bytes.size() - 14] = '\xc1';  // inside the created stamp's encoding
    headers = {good_bytes,
               zero_attempt,
               good_bytes,
               good_bytes.substr(0, good_bytes.size() - 1),
               good_bytes + "x",
               bad_created,
               good_bytes.substr(0, 45),
               "",
               "\xc1",
               good_bytes};
    expect_batch_decodes_like_single(headers, "bad entries among good ones");

    // A sender whose encoder does not use the shortest forms (version as uint 8): decoded in
    // full every time, and right.
    std::string long_form = good_bytes;
    long_form.replace(1, 1, "\xcc\x01");
    headers = {long_form, long_form, good_bytes, long_form};
    expect_batch_decodes_like_single(headers, "longer encodings");
}

TEST(Envelope, BatchHeaderDecoderAgreesWithDecodeHeaderOnMutatedEntries) {
    // Entries of one batch, mutated one byte at a time in every field, shared or not.
    const auto sender = peermq::NodeId::generate();
    detail::Header h = data_header(sender, "orders.eu");
    h.headers = {{"k", "v"}};
    h.seq = 77;
    const std::string base = encode(h);
    std::mt19937_64 random(20261128);
    for (int round = 0; round < 4000; ++round) {
        std::vector<std::string> headers;
        for (int i = 0; i < 8; ++i) {
            std::string bytes = base;
            if (random() % 2) {
                const std::size_t at = random() % bytes.size();
                switch (random() % 3) {
                    case 0: bytes[at] = static_cast<char>(random()); break;
                    case 1: bytes[at] = static_cast<char>(bytes[at] ^ (1 << random() % 8)); break;
                    default: bytes.resize(at); break;
                }
            }
            headers.push_back(bytes);
        }
        expect_batch_decodes_like_single(headers, "round " + std::to_string(round));
        if (::testing::Test::HasFailure()) return;
    }
}
