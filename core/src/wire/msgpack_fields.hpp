// MessagePack field helpers shared by the codecs built on msgpack-c (the envelope's HELLO body,
// the control protocol): packing strings and binaries, and reading typed fields out of a
// msgpack::object, false when the element has the wrong type or is out of range. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "peermq/uuid.hpp"

namespace peermq::detail {

inline void pack_str(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

inline void pack_bin(msgpack::packer<msgpack::sbuffer>& pk, const void* data, std::size_t size) {
    pk.pack_bin(static_cast<std::uint32_t>(size));
    pk.pack_bin_body(static_cast<const char*>(data), static_cast<std::uint32_t>(size));
}

inline bool read_uint(const msgpack::object& o, std::uint64_t& out) {
    if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
    out = o.via.u64;
    return true;
}

inline bool read_u32(const msgpack::object& o, std::uint32_t& out) {
    std::uint64_t v = 0;
    if (!read_uint(o, v) || v > std::numeric_limits<std::uint32_t>::max()) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
}

inline bool read_int(const msgpack::object& o, std::int64_t& out) {
    if (o.type == msgpack::type::NEGATIVE_INTEGER) {
        out = o.via.i64;
        return true;
    }
    if (o.type != msgpack::type::POSITIVE_INTEGER ||
        o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return false;
    }
    out = static_cast<std::int64_t>(o.via.u64);
    return true;
}

inline bool read_str(const msgpack::object& o, std::string& out, std::size_t max) {
    if (o.type != msgpack::type::STR || o.via.str.size > max) return false;
    out.assign(o.via.str.ptr, o.via.str.size);
    return true;
}

inline bool read_id(const msgpack::object& o, Uuid& out) {
    if (o.type != msgpack::type::BIN) return false;
    auto id = Uuid::from_bytes(o.via.bin.ptr, o.via.bin.size);
    if (!id) return false;
    out = *id;
    return true;
}

}  // namespace peermq::detail
