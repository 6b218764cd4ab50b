// Payloads and library values as a person reads them (common.hpp): a payload decoded from
// MessagePack, text or binary, and the JSON of headers, peers and statistics.
#include "common.hpp"

#include <map>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include <msgpack.hpp>

#include "observability/stats_fields.hpp"

namespace peermq::cli {

// ---------------------------------------------------------------------------------------------
// Payloads

namespace {

constexpr std::size_t kMaxDepth = 64;

Json msgpack_to_json(const msgpack::object& object, std::size_t depth);

std::string map_key(const msgpack::object& key, std::size_t depth) {
    if (key.type == msgpack::type::STR) return std::string(key.via.str.ptr, key.via.str.size);
    return dump(msgpack_to_json(key, depth));
}

Json msgpack_to_json(const msgpack::object& object, std::size_t depth) {
    if (depth > kMaxDepth) throw std::runtime_error("too deep");
    switch (object.type) {
        case msgpack::type::NIL: return nullptr;
        case msgpack::type::BOOLEAN: return object.via.boolean;
        case msgpack::type::POSITIVE_INTEGER: return object.via.u64;
        case msgpack::type::NEGATIVE_INTEGER: return object.via.i64;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: return object.via.f64;
        case msgpack::type::STR: return std::string(object.via.str.ptr, object.via.str.size);
        case msgpack::type::BIN:
            return Json{{"$bin", hex({object.via.bin.ptr, object.via.bin.size})}};
        case msgpack::type::EXT:
            return Json{{"$ext", object.via.ext.type()},
                        {"data", hex({object.via.ext.data(), object.via.ext.size})}};
        case msgpack::type::ARRAY: {
            Json array = Json::array();
            for (std::uint32_t i = 0; i < object.via.array.size; ++i)
                array.push_back(msgpack_to_json(object.via.array.ptr[i], depth + 1));
            return array;
        }
        case msgpack::type::MAP: {
            Json map = Json::object();
            for (std::uint32_t i = 0; i < object.via.map.size; ++i) {
                const auto& kv = object.via.map.ptr[i];
                map[map_key(kv.key, depth + 1)] = msgpack_to_json(kv.val, depth + 1);
            }
            return map;
        }
    }
    throw std::runtime_error("unknown MessagePack type");
}

// The JSON of the one MessagePack value `bytes` holds, or nullopt.
std::optional<Json> decode_msgpack(std::string_view bytes) {
    if (bytes.empty()) return std::nullopt;
    try {
        // No container can hold more elements than there are bytes left: this bound keeps a
        // forged length from allocating gigabytes.
        const std::size_t n = bytes.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, kMaxDepth);
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
        if (offset != bytes.size()) return std::nullopt;
        return msgpack_to_json(handle.get(), 0);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

bool is_printable_utf8(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
            ++i;
            continue;
        }
        std::size_t length = 0;
        std::uint32_t code = 0;
        if (c >= 0xc2 && c <= 0xdf) {
            length = 2;
            code = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            length = 3;
            code = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            length = 4;
            code = c & 0x07;
        } else {
            return false;
        }
        if (i + length > n) return false;
        for (std::size_t k = 1; k < length; ++k) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            code = (code << 6) | (p[i + k] & 0x3f);
        }
        const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
        if (overlong || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
        if (code >= 0x80 && code <= 0x9f) return false;  // C1 controls
        i += length;
    }
    return true;
}

std::string hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 0xf]);
    }
    return out;
}

DecodedPayload decode_payload(const Payload& payload) {
    const std::string_view bytes = payload.view();
    if (auto json = decode_msgpack(bytes)) return {PayloadKind::msgpack, std::move(*json)};
    if (is_printable_utf8(bytes)) return {PayloadKind::text, std::string(bytes)};
    return {PayloadKind::binary, hex(bytes)};
}

std::string_view to_string(PayloadKind kind) noexcept {
    switch (kind) {
        case PayloadKind::msgpack: return "msgpack";
        case PayloadKind::text: return "text";
        case PayloadKind::binary: return "binary";
    }
    return "binary";
}

std::string payload_line(const Payload& payload) {
    DecodedPayload decoded = decode_payload(payload);
    if (decoded.kind == PayloadKind::msgpack && !decoded.value.is_string())
        return dump(decoded.value);
    return decoded.value.get<std::string>();
}

std::string dump(const Json& value, int indent) {
    return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// JSON of library values

Json to_json(const Headers& headers) {
    Json out = Json::object();
    for (const auto& [key, value] : headers) out[key] = value;
    return out;
}

Json to_json(const PeerInfo& peer) {
    return Json{
        {"name", peer.name},
        {"id", peer.id.is_nil() ? Json(nullptr) : Json(peer.id.to_string())},
        {"cluster", peer.cluster},
        {"state", std::string(to_string(peer.state))},
        {"inbox", peer.inbox_endpoint},
        {"pub", peer.pub_endpoint},
        {"queues", peer.queues},
        {"topics", peer.topics},
        {"last_heard",
         peer.last_heard_ms == 0 ? Json(nullptr) : Json(format_time(peer.last_heard_ms))},
        {"last_heard_ms", peer.last_heard_ms},
        {"frames_sent", peer.frames_sent},
        {"frames_received", peer.frames_received},
        {"queues_omitted", peer.queues_omitted},
        {"topics_omitted", peer.topics_omitted},
        {"public_key", peer.public_key.empty() ? Json(nullptr) : Json(peer.public_key)},
        {"trust", peer.trust.empty() ? Json(nullptr) : Json(peer.trust)},
    };
}

// The counters of a queue or topic, by their names in detail::kChannelStatsFields; a histogram
// is summarised, in µs, under its name with _us.
Json to_json(const ChannelStats& s) {
    Json out = Json::object();
    detail::for_each_stats_field<ChannelStats>([&](const auto& field) {
        const auto& value = s.*field.member;
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, LatencyHistogram>) {
            out[std::string(field.name) + "_us"] = {
                {"count", value.count},
                {"mean", value.count == 0 ? 0 : value.sum_us / value.count},
                {"p50", value.quantile_us(0.5)},
                {"p99", value.quantile_us(0.99)}};
        } else {
            out[std::string(field.name)] = value;
        }
    });
    return out;
}

namespace {

Json stats_json(const NodeId& id) { return id.to_string(); }
Json stats_json(const std::string& text) { return text; }
Json stats_json(std::uint64_t count) { return count; }
Json stats_json(const std::map<std::string, std::uint64_t>& counts) { return counts; }

Json stats_json(const std::map<std::string, ChannelStats>& channels) {
    Json out = Json::object();
    for (const auto& [name, s] : channels) out[name] = to_json(s);
    return out;
}

Json stats_json(const std::vector<PeerInfo>& peers) {
    Json out = Json::array();
    for (const auto& peer : peers) out.push_back(to_json(peer));
    return out;
}

}  // namespace

// Every field of detail::kNodeStatsFields, under its name.
Json to_json(const NodeStats& stats) {
    Json out = Json::object();
    detail::for_each_stats_field<NodeStats>(
        [&](const auto& field) { out[std::string(field.name)] = stats_json(stats.*field.member); });
    return out;
}

}  // namespace peermq::cli
