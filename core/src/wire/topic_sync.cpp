#include "wire/topic_sync.hpp"

#include "wire/envelope.hpp"
#include "wire/msgpack_fields.hpp"

namespace peermq::detail {
namespace {

using msgpack::type::object_type;

// The body as a MessagePack array of at most kMaxSyncEntries arrays of three, or null.
const msgpack::object* entries_of(const void* data, std::size_t size,
                                  msgpack::object_handle& handle) {
    if (size > kMaxHeaderBytes) return nullptr;
    try {
        const msgpack::unpack_limit limit(kMaxSyncEntries, 1, kMaxChannelBytes, 0, 0, 3);
        std::size_t offset = 0;
        handle =
            msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr, limit);
        if (offset != size) return nullptr;  // one object, nothing after it
    } catch (const std::exception&) {
        return nullptr;
    }
    const msgpack::object& root = handle.get();
    if (root.type != object_type::ARRAY) return nullptr;
    for (std::uint32_t i = 0; i < root.via.array.size; ++i) {
        const auto& entry = root.via.array.ptr[i];
        if (entry.type != object_type::ARRAY || entry.via.array.size != 3) return nullptr;
    }
    return &root;
}

}  // namespace

void encode_ranges(std::span<const TopicRange> ranges, msgpack::sbuffer& out) {
    msgpack::packer<msgpack::sbuffer> pk(out);
    pk.pack_array(static_cast<std::uint32_t>(ranges.size()));
    for (const auto& range : ranges) {
        pk.pack_array(3);
        pack_str(pk, range.topic);
        pk.pack_uint64(range.first);
        pk.pack_uint64(range.last);
    }
}

void encode_prefixes(const std::vector<ReliablePrefix>& prefixes, msgpack::sbuffer& out) {
    msgpack::packer<msgpack::sbuffer> pk(out);
    pk.pack_array(static_cast<std::uint32_t>(prefixes.size()));
    for (const auto& prefix : prefixes) {
        pk.pack_array(3);
        pack_str(pk, prefix.prefix);
        pk.pack_uint32(prefix.history);
        pk.pack_uint64(prefix.max_age_ms);
    }
}

namespace {

// Decodes a body of entries of three into `out` (cleared first): read(fields, entry) fills one
// entry from its three fields, false when they are wrong.
template <typename Entry, typename Read>
std::optional<Drop> decode_entries(const void* data, std::size_t size, std::vector<Entry>& out,
                                   Read&& read) {
    out.clear();
    msgpack::object_handle handle;
    const msgpack::object* root = entries_of(data, size, handle);
    if (!root) return Drop::frame_bad_sync;
    for (std::uint32_t i = 0; i < root->via.array.size; ++i) {
        Entry entry;
        if (!read(root->via.array.ptr[i].via.array.ptr, entry)) return Drop::frame_bad_sync;
        out.push_back(std::move(entry));
    }
    return std::nullopt;
}

}  // namespace

std::optional<Drop> decode_ranges(const void* data, std::size_t size,
                                  std::vector<TopicRange>& out) {
    return decode_entries(data, size, out, [](const msgpack::object* fields, TopicRange& range) {
        return read_str(fields[0], range.topic, kMaxChannelBytes) && !range.topic.empty() &&
               read_uint(fields[1], range.first) && read_uint(fields[2], range.last) &&
               range.first != 0 && range.first <= range.last + 1;
    });
}

std::optional<Drop> decode_prefixes(const void* data, std::size_t size,
                                    std::vector<ReliablePrefix>& out) {
    return decode_entries(
        data, size, out, [](const msgpack::object* fields, ReliablePrefix& prefix) {
            return read_str(fields[0], prefix.prefix, kMaxChannelBytes) &&
                   read_u32(fields[1], prefix.history) && read_uint(fields[2], prefix.max_age_ms);
        });
}

}  // namespace peermq::detail
