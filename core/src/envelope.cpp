#include "envelope.hpp"

#include <cstring>

namespace peermq::detail {
namespace {

using msgpack::type::object_type;

void pack_uuid(msgpack::packer<msgpack::sbuffer>& pk, const Uuid& id) {
    pk.pack_bin(Uuid::kSize);
    pk.pack_bin_body(reinterpret_cast<const char*>(id.data()), Uuid::kSize);
}

void pack_str(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

// Field readers: false when the element has the wrong type.
bool read_uint(const msgpack::object& o, std::uint64_t& out) {
    if (o.type != object_type::POSITIVE_INTEGER) return false;
    out = o.via.u64;
    return true;
}

bool read_int(const msgpack::object& o, std::int64_t& out) {
    if (o.type == object_type::POSITIVE_INTEGER) {
        if (o.via.u64 > static_cast<std::uint64_t>(INT64_MAX)) return false;
        out = static_cast<std::int64_t>(o.via.u64);
        return true;
    }
    if (o.type == object_type::NEGATIVE_INTEGER) {
        out = o.via.i64;
        return true;
    }
    return false;
}

bool read_str(const msgpack::object& o, std::string& out, std::size_t max) {
    if (o.type != object_type::STR || o.via.str.size > max) return false;
    out.assign(o.via.str.ptr, o.via.str.size);
    return true;
}

bool read_uuid(const msgpack::object& o, Uuid& out) {
    if (o.type != object_type::BIN) return false;
    auto id = Uuid::from_bytes(o.via.bin.ptr, o.via.bin.size);
    if (!id) return false;
    out = *id;
    return true;
}

bool read_u32(const msgpack::object& o, std::uint32_t& out) {
    std::uint64_t v = 0;
    if (!read_uint(o, v) || v > UINT32_MAX) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
}

}  // namespace

std::string_view to_string(Kind kind) noexcept {
    switch (kind) {
        case Kind::data: return "DATA";
        case Kind::ack: return "ACK";
        case Kind::nack: return "NACK";
        case Kind::hello: return "HELLO";
        case Kind::heartbeat: return "HEARTBEAT";
        case Kind::bye: return "BYE";
        case Kind::reject: return "REJECT";
    }
    return "?";
}

static void pack_common(msgpack::packer<msgpack::sbuffer>& pk, std::uint32_t version, Kind kind,
                 const DataHeaderRef& h) {
    pk.pack_array(kHeaderFields);
    pk.pack_uint32(version);
    pk.pack_uint8(static_cast<std::uint8_t>(kind));
    pack_uuid(pk, h.sender);
    pack_uuid(pk, h.id);
    pack_str(pk, h.channel);
    pk.pack_uint32(h.flags);
    pk.pack_uint32(h.attempt);
    pk.pack_int64(h.created_ms);
    pk.pack_int64(h.deadline_ms);
    pk.pack_uint64(h.seq);
    pk.pack_map(static_cast<std::uint32_t>(h.headers.size()));
    for (const auto& [key, value] : h.headers) {
        pack_str(pk, key);
        pack_str(pk, value);
    }
}

void encode_data_header(const DataHeaderRef& h, msgpack::sbuffer& out) {
    msgpack::packer<msgpack::sbuffer> pk(out);
    pack_common(pk, kProtocolVersion, Kind::data, h);
    pk.pack_array(0);
    pack_str(pk, {});
}

void encode_header(const Header& h, msgpack::sbuffer& out) {
    msgpack::packer<msgpack::sbuffer> pk(out);
    pack_common(pk, h.version, h.kind,
                DataHeaderRef{h.sender, h.id, h.channel, h.flags, h.attempt, h.created_ms,
                              h.deadline_ms, h.seq, h.headers});
    pk.pack_array(static_cast<std::uint32_t>(h.ids.size()));
    for (const auto& id : h.ids) pack_uuid(pk, id);
    pack_str(pk, h.error);
}

std::optional<std::string_view> decode_header(const void* data, std::size_t size, Header& out,
                                              msgpack::zone& zone) {
    if (size > kMaxHeaderBytes) return "frame.oversized_header";
    if (size == 0) return "frame.garbage";
    msgpack::object root;
    try {
        std::size_t offset = 0;
        // Bounds keep a hostile header from allocating much: it is at most 64 KiB anyway.
        const msgpack::unpack_limit limit(kMaxIdsPerFrame, 256, 65536, 65536, 65536, 4);
        root = msgpack::unpack(zone, static_cast<const char*>(data), size, offset, nullptr,
                               nullptr, limit);
        if (offset != size) return "frame.garbage";
    } catch (const std::exception&) {
        return "frame.garbage";
    }
    if (root.type != object_type::ARRAY) return "frame.garbage";
    const auto& a = root.via.array;
    if (a.size < 5) return "frame.missing_field";

    std::uint64_t version = 0;
    if (!read_uint(a.ptr[0], version)) return "frame.bad_field";
    if (version != kProtocolVersion) return "frame.bad_version";
    out.version = static_cast<std::uint32_t>(version);

    std::uint64_t kind = 0;
    if (!read_uint(a.ptr[1], kind)) return "frame.bad_field";
    if (kind < 1 || kind > 7) return "frame.unknown_kind";
    out.kind = static_cast<Kind>(kind);
    if (!read_uuid(a.ptr[2], out.sender)) return "frame.bad_field";
    if (!read_uuid(a.ptr[3], out.id)) return "frame.bad_field";
    if (!read_str(a.ptr[4], out.channel, kMaxChannelBytes)) return "frame.bad_field";

    // Optional trailing elements: absent means the default.
    out.flags = 0;
    out.attempt = 1;
    out.created_ms = 0;
    out.deadline_ms = 0;
    out.seq = 0;
    out.headers.clear();
    out.ids.clear();
    out.error.clear();
    if (a.size > 5 && !read_u32(a.ptr[5], out.flags)) return "frame.bad_field";
    if (a.size > 6 && !read_u32(a.ptr[6], out.attempt)) return "frame.bad_field";
    if (a.size > 7 && !read_int(a.ptr[7], out.created_ms)) return "frame.bad_field";
    if (a.size > 8 && !read_int(a.ptr[8], out.deadline_ms)) return "frame.bad_field";
    if (a.size > 9 && !read_uint(a.ptr[9], out.seq)) return "frame.bad_field";
    if (a.size > 10) {
        const auto& m = a.ptr[10];
        if (m.type != object_type::MAP || m.via.map.size > kMaxHeaderEntries) {
            return "frame.bad_field";
        }
        for (std::uint32_t i = 0; i < m.via.map.size; ++i) {
            std::string key, value;
            if (!read_str(m.via.map.ptr[i].key, key, 1024) ||
                !read_str(m.via.map.ptr[i].val, value, 16384)) {
                return "frame.bad_field";
            }
            out.headers.insert_or_assign(std::move(key), std::move(value));
        }
    }
    if (a.size > 11) {
        const auto& ids = a.ptr[11];
        if (ids.type != object_type::ARRAY || ids.via.array.size > kMaxIdsPerFrame) {
            return "frame.bad_field";
        }
        out.ids.resize(ids.via.array.size);
        for (std::uint32_t i = 0; i < ids.via.array.size; ++i) {
            if (!read_uuid(ids.via.array.ptr[i], out.ids[i])) return "frame.bad_field";
        }
    }
    if (a.size > 12 && !read_str(a.ptr[12], out.error, 16384)) return "frame.bad_field";
    if (out.attempt == 0) return "frame.bad_field";
    return std::nullopt;
}

void encode_hello(const Hello& h, msgpack::sbuffer& out) {
    msgpack::packer<msgpack::sbuffer> pk(out);
    pk.pack_map(h.host.empty() ? 7 : 8);
    pack_str(pk, "name");
    pack_str(pk, h.name);
    pack_str(pk, "cluster");
    pack_str(pk, h.cluster);
    pack_str(pk, "inbox");
    pk.pack_uint16(h.inbox_port);
    pack_str(pk, "pub");
    pk.pack_uint16(h.pub_port);
    if (!h.host.empty()) {
        pack_str(pk, "host");
        pack_str(pk, h.host);
    }
    pack_str(pk, "queues");
    pk.pack_array(static_cast<std::uint32_t>(h.queues.size()));
    for (const auto& q : h.queues) {
        pk.pack_array(2);
        pack_str(pk, q.name);
        pk.pack_uint32(q.prefetch);
    }
    pack_str(pk, "topics");
    pk.pack_array(static_cast<std::uint32_t>(h.topics.size()));
    for (const auto& t : h.topics) pack_str(pk, t);
    pack_str(pk, "hb_ms");
    pk.pack_uint32(h.heartbeat_ms);
}

std::optional<std::string_view> decode_hello(const void* data, std::size_t size, Hello& out) {
    msgpack::object_handle handle;
    try {
        const msgpack::unpack_limit limit(4096, 64, 65536, 4096, 4096, 4);
        handle = msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr, limit);
    } catch (const std::exception&) {
        return "hello.bad";
    }
    const msgpack::object& root = handle.get();
    if (root.type != object_type::MAP) return "hello.bad";
    out = Hello{};
    bool have_name = false, have_cluster = false, have_inbox = false, have_pub = false;
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        if (kv.key.type != object_type::STR) return "hello.bad";
        const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        std::uint64_t number = 0;
        if (key == "name") {
            if (!read_str(kv.val, out.name, 255)) return "hello.bad";
            have_name = true;
        } else if (key == "cluster") {
            if (!read_str(kv.val, out.cluster, 255)) return "hello.bad";
            have_cluster = true;
        } else if (key == "host") {
            if (!read_str(kv.val, out.host, 255)) return "hello.bad";
        } else if (key == "inbox" || key == "pub") {
            if (!read_uint(kv.val, number) || number == 0 || number > 65535) return "hello.bad";
            (key == "inbox" ? out.inbox_port : out.pub_port) = static_cast<std::uint16_t>(number);
            (key == "inbox" ? have_inbox : have_pub) = true;
        } else if (key == "hb_ms") {
            if (!read_u32(kv.val, out.heartbeat_ms)) return "hello.bad";
        } else if (key == "queues") {
            if (kv.val.type != object_type::ARRAY) return "hello.bad";
            for (std::uint32_t j = 0; j < kv.val.via.array.size; ++j) {
                const auto& q = kv.val.via.array.ptr[j];
                if (q.type != object_type::ARRAY || q.via.array.size < 2) return "hello.bad";
                QueueAd ad;
                if (!read_str(q.via.array.ptr[0], ad.name, kMaxChannelBytes) ||
                    !read_u32(q.via.array.ptr[1], ad.prefetch)) {
                    return "hello.bad";
                }
                out.queues.push_back(std::move(ad));
            }
        } else if (key == "topics") {
            if (kv.val.type != object_type::ARRAY) return "hello.bad";
            for (std::uint32_t j = 0; j < kv.val.via.array.size; ++j) {
                std::string topic;
                if (!read_str(kv.val.via.array.ptr[j], topic, kMaxChannelBytes)) return "hello.bad";
                out.topics.push_back(std::move(topic));
            }
        }
        // Unknown keys are skipped: later revisions add keys.
    }
    if (!have_name || !have_cluster || !have_inbox || !have_pub) return "hello.missing_field";
    return std::nullopt;
}

}  // namespace peermq::detail
