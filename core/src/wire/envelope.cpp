// The envelope's frame codec (docs/spec/wire.md §4): every frame's header, written and read in
// place by hand (the bytes msgpack-c writes and accepts, with no object tree), the BATCH body's
// framing, and the decoder that reads a BATCH's entries on their shared bytes. The HELLO body's
// codec is in hello.cpp.
#include "wire/envelope.hpp"

#include <array>
#include <cstring>
#include <memory>

namespace peermq::detail {
namespace {

// A hand-written reader for the header array (docs/spec/wire.md §header). It accepts exactly
// what msgpack::unpack with the limits below accepted, and reports the same drop reasons, but
// builds no object tree: the header is read in place, strings straight into `out`.
class HeaderReader {
public:
    // Limits of the former msgpack::unpack_limit: elements of an array and pairs of a map; a
    // container, even empty, may sit at most kMaxDepth levels deep (the root array is level 1).
    static constexpr std::uint32_t kMaxArray = kMaxIdsPerFrame;
    static constexpr std::uint32_t kMaxMap = 256;
    static constexpr std::uint32_t kMaxDepth = 4;

    enum class Type : std::uint8_t {
        nil,
        boolean,
        uint,
        nint,
        f32,
        f64,
        str,
        bin,
        ext,
        array,
        map
    };

    struct Item {
        Type type = Type::nil;
        std::uint64_t u = 0;        // uint value; negative int as two's complement; container count
        const char* ptr = nullptr;  // str, bin, ext body
        std::uint32_t size = 0;
    };

    HeaderReader(const void* data, std::size_t size)
        : p_(static_cast<const std::uint8_t*>(data)), end_(p_ + size) {}

    bool at_end() const noexcept { return p_ == end_; }

    // Reads one element's header (a container's count; a string's or binary's whole body).
    // Inlined into the field loop: it runs a dozen times for every message received.
    [[gnu::always_inline]] bool next(Item& item) {
        if (p_ == end_) return false;
        const std::uint8_t b = *p_++;
        if (b <= 0x7f) return set_uint(item, b);
        if (b >= 0xe0) return set_int(item, static_cast<std::int8_t>(b));
        if ((b & 0xf0) == 0x80) return set_container(item, Type::map, b & 0x0f);
        if ((b & 0xf0) == 0x90) return set_container(item, Type::array, b & 0x0f);
        if ((b & 0xe0) == 0xa0) return body(item, Type::str, b & 0x1f);
        std::uint64_t n = 0;
        switch (b) {
            case 0xc0: item.type = Type::nil; return true;
            case 0xc2:
            case 0xc3: item.type = Type::boolean; return true;
            case 0xc4: return be(1, n) && body(item, Type::bin, n);
            case 0xc5: return be(2, n) && body(item, Type::bin, n);
            case 0xc6: return be(4, n) && body(item, Type::bin, n);
            case 0xc7: return be(1, n) && body(item, Type::ext, n + 1);
            case 0xc8: return be(2, n) && body(item, Type::ext, n + 1);
            case 0xc9: return be(4, n) && body(item, Type::ext, n + 1);
            case 0xca: item.type = Type::f32; return skip(4);
            case 0xcb: item.type = Type::f64; return skip(8);
            case 0xcc: return be(1, n) && set_uint(item, n);
            case 0xcd: return be(2, n) && set_uint(item, n);
            case 0xce: return be(4, n) && set_uint(item, n);
            case 0xcf: return be(8, n) && set_uint(item, n);
            case 0xd0: return be(1, n) && set_int(item, static_cast<std::int8_t>(n));
            case 0xd1: return be(2, n) && set_int(item, static_cast<std::int16_t>(n));
            case 0xd2: return be(4, n) && set_int(item, static_cast<std::int32_t>(n));
            case 0xd3: return be(8, n) && set_int(item, static_cast<std::int64_t>(n));
            case 0xd4: return body(item, Type::ext, 2);
            case 0xd5: return body(item, Type::ext, 3);
            case 0xd6: return body(item, Type::ext, 5);
            case 0xd7: return body(item, Type::ext, 9);
            case 0xd8: return body(item, Type::ext, 17);
            case 0xd9: return be(1, n) && body(item, Type::str, n);
            case 0xda: return be(2, n) && body(item, Type::str, n);
            case 0xdb: return be(4, n) && body(item, Type::str, n);
            case 0xdc: return be(2, n) && set_container(item, Type::array, n);
            case 0xdd: return be(4, n) && set_container(item, Type::array, n);
            case 0xde: return be(2, n) && set_container(item, Type::map, n);
            case 0xdf: return be(4, n) && set_container(item, Type::map, n);
            default: return false;  // 0xc1: never used
        }
    }

    // Skips one whole element at nesting `level`, enforcing the limits.
    bool skip_value(std::uint32_t level) {
        Item item;
        if (!next(item)) return false;
        return skip_children(item, level);
    }

    // Skips the children of a container just read by next() at nesting `level`.
    bool skip_children(const Item& item, std::uint32_t level) {
        if (item.type != Type::array && item.type != Type::map) return true;
        if (item.type == Type::array ? item.u > kMaxArray : item.u > kMaxMap) return false;
        if (level > kMaxDepth) return false;
        const std::uint64_t n = item.type == Type::map ? item.u * 2 : item.u;
        for (std::uint64_t i = 0; i < n; ++i) {
            if (!skip_value(level + 1)) return false;
        }
        return true;
    }

private:
    bool set_uint(Item& item, std::uint64_t v) {
        item.type = Type::uint;
        item.u = v;
        return true;
    }
    bool set_int(Item& item, std::int64_t v) {
        item.type = v < 0 ? Type::nint : Type::uint;
        item.u = static_cast<std::uint64_t>(v);
        return true;
    }
    bool set_container(Item& item, Type type, std::uint64_t n) {
        item.type = type;
        item.u = n;
        return true;
    }
    bool be(int bytes, std::uint64_t& out) {
        if (end_ - p_ < bytes) return false;
        out = 0;
        for (int i = 0; i < bytes; ++i) out = out << 8 | p_[i];
        p_ += bytes;
        return true;
    }
    bool body(Item& item, Type type, std::uint64_t n) {
        if (static_cast<std::uint64_t>(end_ - p_) < n) return false;
        item.type = type;
        item.ptr = reinterpret_cast<const char*>(p_);
        item.size = static_cast<std::uint32_t>(n);
        p_ += n;
        return true;
    }
    bool skip(std::size_t n) {
        if (static_cast<std::size_t>(end_ - p_) < n) return false;
        p_ += n;
        return true;
    }

    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

using Item = HeaderReader::Item;
using Type = HeaderReader::Type;

bool item_uint(const Item& item, std::uint64_t& out) {
    if (item.type != Type::uint) return false;
    out = item.u;
    return true;
}

bool item_u32(const Item& item, std::uint32_t& out) {
    if (item.type != Type::uint || item.u > UINT32_MAX) return false;
    out = static_cast<std::uint32_t>(item.u);
    return true;
}

bool item_int(const Item& item, std::int64_t& out) {
    if (item.type == Type::uint) {
        if (item.u > static_cast<std::uint64_t>(INT64_MAX)) return false;
        out = static_cast<std::int64_t>(item.u);
        return true;
    }
    if (item.type == Type::nint) {
        out = static_cast<std::int64_t>(item.u);
        return true;
    }
    return false;
}

bool item_str(const Item& item, std::string& out, std::size_t max) {
    if (item.type != Type::str || item.size > max) return false;
    out.assign(item.ptr, item.size);
    return true;
}

bool item_uuid(const Item& item, Uuid& out) {
    if (item.type != Type::bin || item.size != Uuid::kSize) return false;
    std::array<std::uint8_t, Uuid::kSize> bytes;
    std::memcpy(bytes.data(), item.ptr, Uuid::kSize);
    out = Uuid(bytes);
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
        case Kind::batch: return "BATCH";
        case Kind::sync: return "SYNC";
        case Kind::resend: return "RESEND";
        case Kind::repair: return "REPAIR";
        case Kind::queue_query: return "QUEUE_QUERY";
        case Kind::queue_report: return "QUEUE_REPORT";
    }
    return "?";
}

namespace {

// Writes MessagePack in its shortest forms (the same bytes msgpack::packer writes) straight into
// a buffer sized beforehand: the header of every frame is encoded here, so no per-call checks.
class HeaderWriter {
public:
    explicit HeaderWriter(char* out) : p_(reinterpret_cast<std::uint8_t*>(out)) {}

    std::size_t written(const char* start) const {
        return static_cast<std::size_t>(reinterpret_cast<const char*>(p_) - start);
    }

    void uint(std::uint64_t v) {
        if (v < 0x80) {
            *p_++ = static_cast<std::uint8_t>(v);
        } else if (v <= 0xff) {
            *p_++ = 0xcc;
            be(v, 1);
        } else if (v <= 0xffff) {
            *p_++ = 0xcd;
            be(v, 2);
        } else if (v <= 0xffffffffu) {
            *p_++ = 0xce;
            be(v, 4);
        } else {
            *p_++ = 0xcf;
            be(v, 8);
        }
    }
    void sint(std::int64_t v) {
        if (v >= 0) return uint(static_cast<std::uint64_t>(v));
        const auto u = static_cast<std::uint64_t>(v);
        if (v >= -32) {
            *p_++ = static_cast<std::uint8_t>(u);
        } else if (v >= INT8_MIN) {
            *p_++ = 0xd0;
            be(u, 1);
        } else if (v >= INT16_MIN) {
            *p_++ = 0xd1;
            be(u, 2);
        } else if (v >= INT32_MIN) {
            *p_++ = 0xd2;
            be(u, 4);
        } else {
            *p_++ = 0xd3;
            be(u, 8);
        }
    }
    void str(std::string_view s) {
        const std::size_t n = s.size();
        if (n < 32) {
            *p_++ = static_cast<std::uint8_t>(0xa0 | n);
        } else if (n <= 0xff) {
            *p_++ = 0xd9;
            be(n, 1);
        } else if (n <= 0xffff) {
            *p_++ = 0xda;
            be(n, 2);
        } else {
            *p_++ = 0xdb;
            be(n, 4);
        }
        raw(s.data(), n);
    }
    void uuid(const Uuid& id) {
        *p_++ = 0xc4;
        *p_++ = Uuid::kSize;
        raw(id.data(), Uuid::kSize);
    }
    void container(std::size_t n, std::uint8_t fix, std::uint8_t m16) {
        if (n < 16) {
            *p_++ = static_cast<std::uint8_t>(fix | n);
        } else if (n <= 0xffff) {
            *p_++ = m16;
            be(n, 2);
        } else {
            *p_++ = static_cast<std::uint8_t>(m16 + 1);
            be(n, 4);
        }
    }
    void array(std::size_t n) { container(n, 0x90, 0xdc); }
    void map(std::size_t n) { container(n, 0x80, 0xde); }

    // An upper bound of the bytes str(s) writes.
    static constexpr std::size_t str_bound(std::size_t n) { return n + 5; }

private:
    void be(std::uint64_t v, int bytes) {
        for (int i = bytes - 1; i >= 0; --i) *p_++ = static_cast<std::uint8_t>(v >> (8 * i));
    }
    void raw(const void* data, std::size_t n) {
        if (n == 0) return;  // an empty string_view may hold a null pointer: not for memcpy
        std::memcpy(p_, data, n);
        p_ += n;
    }

    std::uint8_t* p_;
};

void write_header(const DataHeaderRef& h, std::uint32_t version, Kind kind,
                  const std::vector<MessageId>& ids, std::string_view error,
                  msgpack::sbuffer& out) {
    // Fixed fields: array 1, version 5, kind 2, two ids 36, flags 5, attempt 5, three 64-bit
    // fields 27, map and array headers 10.
    std::size_t bound = 100 + HeaderWriter::str_bound(h.channel.size()) +
                        HeaderWriter::str_bound(error.size()) + ids.size() * (Uuid::kSize + 2);
    for (const auto& [key, value] : h.headers) {
        bound += HeaderWriter::str_bound(key.size()) + HeaderWriter::str_bound(value.size());
    }
    char small[512];
    std::unique_ptr<char[]> large;
    char* buffer = small;
    if (bound > sizeof small) {
        large = std::make_unique<char[]>(bound);
        buffer = large.get();
    }
    HeaderWriter w(buffer);
    w.array(h.epoch != 0 ? kHeaderFields + 1 : kHeaderFields);
    w.uint(version);
    w.uint(static_cast<std::uint8_t>(kind));
    w.uuid(h.sender);
    w.uuid(h.id);
    w.str(h.channel);
    w.uint(h.flags);
    w.uint(h.attempt);
    w.sint(h.created_ms);
    w.sint(h.deadline_ms);
    w.uint(h.seq);
    w.map(h.headers.size());
    for (const auto& [key, value] : h.headers) {
        w.str(key);
        w.str(value);
    }
    w.array(ids.size());
    for (const auto& id : ids) w.uuid(id);
    w.str(error);
    if (h.epoch != 0) w.uint(h.epoch);
    out.write(buffer, w.written(buffer));
}

}  // namespace

void encode_data_header(const DataHeaderRef& h, msgpack::sbuffer& out) {
    static const std::vector<MessageId> kNoIds;
    write_header(h, kProtocolVersion, Kind::data, kNoIds, {}, out);
}

void encode_header(const Header& h, msgpack::sbuffer& out) {
    write_header(DataHeaderRef{h.sender, h.id, h.channel, h.flags, h.attempt, h.created_ms,
                               h.deadline_ms, h.seq, h.headers, h.epoch},
                 h.version, h.kind, h.ids, h.error, out);
}

namespace {

constexpr Drop kGarbage = Drop::frame_garbage;

// The next element of a header, or nil (which fails every field check) with `ok` cleared when
// the frame ends early. Inlined into decode_fields: it runs a dozen times per message received.
[[gnu::always_inline]] inline const Item& next_field(HeaderReader& r, Item& item, bool& ok) {
    if (!r.next(item)) {
        ok = false;
        item = Item{};
    }
    return item;
}

std::optional<Drop> decode_tail(HeaderReader& r, std::uint64_t fields, Header& out);

// A field check that failed on a truncated frame is garbage, not a bad field. Used with `ok`
// in scope (cleared by next_field when the frame ended early).
#define PEERMQ_FIELD_CHECK(cond, reason) \
    if (!(cond)) return ok ? std::optional<Drop>(reason) : kGarbage

// Reads the fields in one pass. Returns kGarbage when the MessagePack itself is broken (as far
// as it was read), another reason when a field is wrong, nullopt when the whole frame is good.
std::optional<Drop> decode_fields(HeaderReader& r, Header& out) {
    Item item;
    if (!r.next(item) || item.type != Type::array) return kGarbage;
    if (item.u > HeaderReader::kMaxArray) return kGarbage;
    const std::uint64_t fields = item.u;
    if (fields < 5) return Drop::frame_missing_field;
    bool ok = true;
    auto field = [&]() -> const Item& { return next_field(r, item, ok); };

    std::uint64_t version = 0;
    PEERMQ_FIELD_CHECK(item_uint(field(), version), Drop::frame_bad_field);
    PEERMQ_FIELD_CHECK(version == kProtocolVersion, Drop::frame_bad_version);
    out.version = static_cast<std::uint32_t>(version);

    std::uint64_t kind = 0;
    PEERMQ_FIELD_CHECK(item_uint(field(), kind), Drop::frame_bad_field);
    PEERMQ_FIELD_CHECK(kind >= 1 && kind <= kMaxKind, Drop::frame_unknown_kind);
    out.kind = static_cast<Kind>(kind);
    PEERMQ_FIELD_CHECK(item_uuid(field(), out.sender), Drop::frame_bad_field);
    PEERMQ_FIELD_CHECK(item_uuid(field(), out.id), Drop::frame_bad_field);
    PEERMQ_FIELD_CHECK(item_str(field(), out.channel, kMaxChannelBytes), Drop::frame_bad_field);
    return decode_tail(r, fields, out);
}

// Reads the fields after the channel (the optional ones) and checks the end of the frame.
std::optional<Drop> decode_tail(HeaderReader& r, std::uint64_t fields, Header& out) {
    Item item;
    bool ok = true;
    auto field = [&]() -> const Item& { return next_field(r, item, ok); };

    // Optional trailing elements: absent means the default.
    out.flags = 0;
    out.attempt = 1;
    out.created_ms = 0;
    out.deadline_ms = 0;
    out.seq = 0;
    out.headers.clear();
    out.ids.clear();
    out.error.clear();
    out.epoch = 0;
    if (fields > 5) PEERMQ_FIELD_CHECK(item_u32(field(), out.flags), Drop::frame_bad_field);
    if (fields > 6) PEERMQ_FIELD_CHECK(item_u32(field(), out.attempt), Drop::frame_bad_field);
    if (fields > 7) PEERMQ_FIELD_CHECK(item_int(field(), out.created_ms), Drop::frame_bad_field);
    if (fields > 8) PEERMQ_FIELD_CHECK(item_int(field(), out.deadline_ms), Drop::frame_bad_field);
    if (fields > 9) PEERMQ_FIELD_CHECK(item_uint(field(), out.seq), Drop::frame_bad_field);
    if (fields > 10) {
        const Item& m = field();
        PEERMQ_FIELD_CHECK(m.type == Type::map && m.u <= kMaxHeaderEntries, Drop::frame_bad_field);
        const std::uint64_t entries = m.u;
        for (std::uint64_t i = 0; i < entries; ++i) {
            std::string key, value;
            PEERMQ_FIELD_CHECK(item_str(field(), key, 1024), Drop::frame_bad_field);
            PEERMQ_FIELD_CHECK(item_str(field(), value, 16384), Drop::frame_bad_field);
            out.headers.insert_or_assign(std::move(key), std::move(value));
        }
    }
    if (fields > 11) {
        const Item& ids = field();
        PEERMQ_FIELD_CHECK(ids.type == Type::array && ids.u <= kMaxIdsPerFrame,
                           Drop::frame_bad_field);
        out.ids.resize(ids.u);
        for (auto& id : out.ids) PEERMQ_FIELD_CHECK(item_uuid(field(), id), Drop::frame_bad_field);
    }
    if (fields > 12) PEERMQ_FIELD_CHECK(item_str(field(), out.error, 16384), Drop::frame_bad_field);
    if (fields > 13) PEERMQ_FIELD_CHECK(item_uint(field(), out.epoch), Drop::frame_bad_field);
#undef PEERMQ_FIELD_CHECK
    // Elements of later revisions are skipped, but must be well-formed too.
    for (std::uint64_t i = 14; i < fields; ++i) {
        if (!r.skip_value(2)) return kGarbage;
    }
    if (!r.at_end()) return kGarbage;
    if (out.attempt == 0) return Drop::frame_bad_field;
    return std::nullopt;
}

}  // namespace

std::optional<Drop> decode_header(const void* data, std::size_t size, Header& out) {
    if (size > kMaxHeaderBytes) return Drop::frame_oversized_header;
    if (size == 0) return kGarbage;
    HeaderReader r(data, size);
    auto reason = decode_fields(r, out);
    if (!reason || *reason == kGarbage) return reason;
    // A field was wrong before the end was reached: malformed MessagePack anywhere in the frame
    // still makes it garbage, so the rest is checked (only on this rare path).
    HeaderReader check(data, size);
    if (!check.skip_value(1) || !check.at_end()) return kGarbage;
    return reason;
}

std::optional<Drop> BatchHeaderDecoder::decode(std::string_view entry, Header& out) {
    // The layout MessagePack's shortest forms give (what encode_data_header writes): fixarray,
    // version and kind as positive fixints, sender and id as bin 8 of 16 bytes, then the channel.
    constexpr std::size_t kSender = 3, kId = kSender + 2 + Uuid::kSize,
                          kChannel = kId + 2 + Uuid::kSize;
    const auto* p = reinterpret_cast<const std::uint8_t*>(entry.data());
    if (fields_ != 0 && entry.size() > kChannel + channel_.size() &&
        entry.size() <= kMaxHeaderBytes && std::memcmp(p, prefix_.data(), kId) == 0 &&
        p[kId] == 0xc4 && p[kId + 1] == Uuid::kSize &&
        std::memcmp(p + kChannel, channel_.data(), channel_.size()) == 0) {
        std::array<std::uint8_t, Uuid::kSize> id;
        std::memcpy(id.data(), p + kId + 2, Uuid::kSize);
        out.id = Uuid(id);
        const std::size_t tail = kChannel + channel_.size();
        HeaderReader r(p + tail, entry.size() - tail);
        if (!decode_tail(r, fields_, out)) return std::nullopt;
        // A bad field after the shared ones: the full decode below names the reason.
    }
    fields_ = 0;
    auto reason = decode_header(entry.data(), entry.size(), out);
    if (reason) return reason;
    // Shared bytes are remembered only when they have that layout and hold what was decoded.
    const std::size_t channel_head = out.channel.size() < 32 ? 1 : 2;
    if (entry.size() > kChannel + channel_head + out.channel.size() && (p[0] & 0xf0) == 0x90 &&
        p[1] == out.version && p[2] == static_cast<std::uint8_t>(out.kind) && p[3] == 0xc4 &&
        p[4] == Uuid::kSize && p[kId] == 0xc4 && p[kId + 1] == Uuid::kSize &&
        (channel_head == 1 ? p[kChannel] == (0xa0 | out.channel.size())
                           : p[kChannel] == 0xd9 && p[kChannel + 1] == out.channel.size())) {
        prefix_ = entry.substr(0, kId);
        channel_ = entry.substr(kChannel, channel_head + out.channel.size());
        fields_ = p[0] & 0x0f;
    }
    return std::nullopt;
}

namespace {

void put_length(std::size_t n, msgpack::sbuffer& out) {
    const auto v = static_cast<std::uint32_t>(n);
    const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                           static_cast<char>(v >> 8), static_cast<char>(v)};
    out.write(bytes, sizeof bytes);
}

bool take_length(const std::uint8_t*& p, const std::uint8_t* end, std::string_view& out) {
    if (end - p < 4) return false;
    const std::uint32_t n = std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 |
                            std::uint32_t{p[2]} << 8 | std::uint32_t{p[3]};
    p += 4;
    if (static_cast<std::size_t>(end - p) < n) return false;
    out = std::string_view(reinterpret_cast<const char*>(p), n);
    p += n;
    return true;
}

}  // namespace

void append_batch_entry(std::string_view header, std::string_view payload, msgpack::sbuffer& out) {
    put_length(header.size(), out);
    out.write(header.data(), header.size());
    put_length(payload.size(), out);
    if (!payload.empty()) out.write(payload.data(), payload.size());
}

std::optional<Drop> split_batch(const void* data, std::size_t size, std::uint64_t count,
                                std::vector<BatchEntry>& out) {
    constexpr Drop kBadBatch = Drop::frame_bad_batch;
    out.clear();
    if (count == 0 || count > kMaxBatchEntries || size > kMaxBatchBytes) return kBadBatch;
    const auto* p = static_cast<const std::uint8_t*>(data);
    const auto* end = p + size;
    for (std::uint64_t i = 0; i < count; ++i) {
        BatchEntry entry;
        if (!take_length(p, end, entry.header) || !take_length(p, end, entry.payload)) {
            return kBadBatch;
        }
        out.push_back(entry);
    }
    if (p != end) return kBadBatch;
    return std::nullopt;
}

}  // namespace peermq::detail
