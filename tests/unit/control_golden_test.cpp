// The control protocol's bytes do not change (docs/spec/control.md is read by an independent
// peer): every request and reply kind, with representative values, encodes to bytes captured
// from the codec as it was before its messages were described by tables, and those bytes decode
// back to values that encode to the same bytes again. PEERMQ_PRINT_GOLDEN=1 prints the bytes the
// codec writes now, one line per vector.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "admin/control_codec.hpp"
#include "control_golden_vectors.hpp"

namespace detail = peermq::detail;

namespace {

std::string to_hex(const msgpack::sbuffer& buffer) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < buffer.size(); ++i) {
        const auto byte = static_cast<unsigned char>(buffer.data()[i]);
        out += kDigits[byte >> 4];
        out += kDigits[byte & 15];
    }
    return out;
}

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    }
    return out;
}

peermq::Uuid fixed_id(std::uint8_t seed) {
    std::array<std::uint8_t, peermq::Uuid::kSize> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::uint8_t>(seed + i * 17);
    }
    return peermq::Uuid(bytes);
}

// Counters of every MessagePack integer width: fixint, uint8, uint16, uint32, uint64.
peermq::ChannelStats channel(std::uint64_t scale) {
    peermq::ChannelStats c;
    c.sent = 1 * scale;
    c.received = 127 * scale;
    c.delivered = 128 * scale;
    c.handler_errors = 255 * scale;
    c.acked = 256 * scale;
    c.nacked = 65535 * scale;
    c.retried = 65536 * scale;
    c.redelivered = 4'294'967'295ull * scale;
    c.expired = 4'294'967'296ull;
    c.dead_lettered = ~0ull;
    c.duplicates = 0;
    c.in_flight = 42 * scale;
    c.depth = 7 * scale;
    for (std::uint64_t us : {1ull, 3ull, 1000ull, 5'000'000ull, ~0ull}) c.ack_latency.record(us);
    return c;
}

peermq::PeerInfo peer(std::uint8_t seed, std::string name, peermq::PeerState state,
                      std::size_t queues) {
    peermq::PeerInfo p;
    p.id = fixed_id(seed);
    p.name = std::move(name);
    p.cluster = "blue";
    p.state = state;
    p.inbox_endpoint = "tcp://127.0.0.1:40001";
    p.pub_endpoint = "tcp://127.0.0.1:40002";
    for (std::size_t i = 0; i < queues; ++i) p.queues.push_back("q" + std::to_string(i));
    p.topics = {"prices.", ""};
    p.last_heard_ms = 1'700'000'000'456;
    p.frames_sent = 99;
    p.frames_received = ~0ull;
    p.topics_omitted = 2;
    return p;
}

peermq::DeadLetter letter(std::uint8_t seed, std::string queue) {
    peermq::DeadLetter d;
    d.id = fixed_id(seed);
    d.queue = std::move(queue);
    d.headers = {{"traceparent", "00-abc-def-01"}, {"k", ""}};
    d.payload = peermq::Payload::from_string(std::string("\0\x01\xff payload", 11));
    d.reason = "max_attempts";
    d.attempts = 70000;
    d.last_error = "poison payload 13";
    d.created_ms = 1'700'000'000'000;
    d.first_failure_ms = -40000;
    d.last_failure_ms = -1;
    return d;
}

peermq::DeadLetterFilter full_filter() {
    peermq::DeadLetterFilter f;
    f.id = fixed_id(9);
    f.queue = "orders";
    f.reason = "max_attempts";
    f.since_ms = -129;
    f.until_ms = 1'700'000'000'000;
    f.limit = 300;
    return f;
}

peermq::NodeStats full_stats() {
    peermq::NodeStats s;
    s.id = fixed_id(1);
    s.name = "node-a";
    s.queues["orders"] = channel(1);
    s.queues["refunds"] = channel(3);
    s.topics["prices."] = channel(0);
    // The second peer lists more queue names than a reply carries (64): the rest are counted.
    s.peers = {peer(2, "node-b", peermq::PeerState::alive, 2),
               peer(3, "node-c", peermq::PeerState::suspect, 66), peermq::PeerInfo{}};
    s.dropped = {{"frame.garbage", 3}, {"control.unknown_verb", 1}};
    s.bad_frames = 3;
    s.discovery_ignored = {{"record.other_cluster", 2}};
    s.thread_errors = {{"control", 1}, {"peer_event_handler", 70000}};
    s.peers_omitted = 4;
    s.queues_omitted = 5;
    s.topics_omitted = 6;
    s.uncommitted = 1000;
    s.dead_letters = {{"orders", {{"max_attempts", 2}, {"rejected", 70000}}},
                      {"refunds", {{"corrupt", 1}}}};
    return s;
}

struct Case {
    std::string name;
    std::function<void(msgpack::sbuffer&)> encode;
    // Decodes `bytes` and encodes the result again; empty when the bytes do not decode.
    std::function<std::string(const std::string&)> round_trip;
};

std::string bytes_of(const msgpack::sbuffer& buffer) { return {buffer.data(), buffer.size()}; }

Case request_case(std::string name, detail::ControlRequest request) {
    return {std::move(name),
            [request](msgpack::sbuffer& out) { detail::encode_request(request, out); },
            [](const std::string& bytes) {
                detail::ControlRequest decoded;
                if (detail::decode_request(bytes.data(), bytes.size(), decoded))
                    return std::string();
                msgpack::sbuffer again;
                detail::encode_request(decoded, again);
                return bytes_of(again);
            }};
}

template <typename T, typename Decode>
Case reply_case(std::string name, T body, Decode decode) {
    return {std::move(name), [body](msgpack::sbuffer& out) { detail::encode_ok_reply(body, out); },
            [decode](const std::string& bytes) {
                auto decoded = decode(bytes.data(), bytes.size());
                if (!decoded.ok()) return std::string();
                msgpack::sbuffer again;
                detail::encode_ok_reply(std::move(decoded).value(), again);
                return bytes_of(again);
            }};
}

Case error_case(std::string name, peermq::Status status) {
    return {std::move(name),
            [status](msgpack::sbuffer& out) { detail::encode_error_reply(status, out); },
            {}};
}

std::vector<Case> cases() {
    using peermq::ErrorCode;
    return {
        request_case("request.stats", detail::StatsRequest{}),
        request_case("request.peers", detail::PeersRequest{}),
        request_case("request.dlq.list.empty", detail::DeadLetterListRequest{}),
        request_case("request.dlq.list.full", detail::DeadLetterListRequest{full_filter()}),
        request_case("request.dlq.purge.empty", detail::DeadLetterPurgeRequest{}),
        request_case("request.dlq.purge.full", detail::DeadLetterPurgeRequest{full_filter()}),
        request_case("request.dlq.get", detail::DeadLetterGetRequest{fixed_id(7)}),
        request_case("request.dlq.replay.own", detail::DeadLetterReplayRequest{fixed_id(8), ""}),
        request_case("request.dlq.replay.other",
                     detail::DeadLetterReplayRequest{fixed_id(8), "orders.retry"}),
        reply_case("reply.stats.full", full_stats(), detail::decode_stats_reply),
        reply_case("reply.stats.empty", peermq::NodeStats{}, detail::decode_stats_reply),
        reply_case("reply.peers",
                   std::vector<peermq::PeerInfo>{peer(4, "b", peermq::PeerState::connecting, 1),
                                                 peer(5, "", peermq::PeerState::down, 0)},
                   detail::decode_peers_reply),
        reply_case("reply.peers.empty", std::vector<peermq::PeerInfo>{},
                   detail::decode_peers_reply),
        reply_case("reply.dlq.list",
                   std::vector<peermq::DeadLetter>{letter(10, "orders"), peermq::DeadLetter{}},
                   detail::decode_dead_letters_reply),
        reply_case("reply.dlq.get", letter(11, "refunds"), detail::decode_dead_letter_reply),
        reply_case("reply.dlq.purge", std::uint64_t{12'345'678'901'234ull},
                   detail::decode_count_reply),
        reply_case("reply.dlq.replay", fixed_id(12), detail::decode_id_reply),
        error_case("reply.error.not_found", peermq::Status(ErrorCode::not_found, "no dead letter")),
        error_case("reply.error.internal",
                   peermq::Status(ErrorCode::internal, "boom: std::bad_alloc")),
        error_case("reply.error.protocol",
                   peermq::Status(ErrorCode::protocol_error, std::string(40, 'x'))),
    };
}

TEST(ControlGoldenTest, EveryMessageKindEncodesToTheCapturedBytes) {
    const auto all = cases();
    ASSERT_EQ(all.size(), std::size(kControlGoldenVectors));
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto& [name, hex] = kControlGoldenVectors[i];
        ASSERT_EQ(all[i].name, name);
        msgpack::sbuffer buffer;
        all[i].encode(buffer);
        EXPECT_EQ(to_hex(buffer), hex) << name;
        if (std::getenv("PEERMQ_PRINT_GOLDEN") != nullptr) {
            std::printf("GOLDEN %s %s\n", name, to_hex(buffer).c_str());
        }
    }
}

TEST(ControlGoldenTest, TheCapturedBytesDecodeToValuesThatEncodeToThemAgain) {
    const auto all = cases();
    ASSERT_EQ(all.size(), std::size(kControlGoldenVectors));
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (!all[i].round_trip) continue;
        const auto& [name, hex] = kControlGoldenVectors[i];
        const std::string bytes = from_hex(hex);
        // The bounded lists of a stats reply were already cut when the bytes were written: a
        // second pass lists the same, so the bytes are the same.
        EXPECT_EQ(all[i].round_trip(bytes), bytes) << name;
    }
}

}  // namespace
