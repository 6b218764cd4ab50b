#include "wire/queue_report.hpp"

#include <algorithm>
#include <limits>

#include "wire/envelope.hpp"
#include "wire/msgpack_fields.hpp"

namespace peermq::detail {
namespace {

using msgpack::type::object_type;

constexpr std::uint32_t kProducer = 1u << 0;
constexpr std::uint32_t kConsumer = 1u << 1;
// The largest entry: a name of kMaxChannelBytes and 15 numbers of 9 bytes.
constexpr std::size_t kMaxEntryBytes = kMaxChannelBytes + 3 + 1 + 15 * 9;

void pack_entry(msgpack::packer<msgpack::sbuffer>& pk, const QueueReport& q) {
    pk.pack_array(kReportFields);
    pack_str(pk, q.queue);
    pk.pack_uint32((q.producer ? kProducer : 0) | (q.consumer ? kConsumer : 0));
    pk.pack_uint64(q.waiting);
    pk.pack_uint64(q.in_flight);
    pk.pack_uint64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, q.oldest_waiting_ms)));
    pk.pack_uint64(q.dead_letters);
    pk.pack_uint64(q.sent);
    pk.pack_uint64(q.acked);
    pk.pack_uint64(q.nacked);
    pk.pack_uint64(q.retried);
    pk.pack_uint64(q.redelivered);
    pk.pack_uint64(q.expired);
    pk.pack_uint64(q.dead_lettered);
    pk.pack_uint32(q.prefetch);
    pk.pack_uint64(q.delivered);
    pk.pack_uint64(q.handler_errors);
}

bool read_entry(const msgpack::object& entry, QueueReport& q) {
    if (entry.type != object_type::ARRAY || entry.via.array.size < kReportFields) return false;
    const msgpack::object* f = entry.via.array.ptr;
    std::uint32_t roles = 0;
    std::uint64_t oldest = 0;
    if (!read_str(f[0], q.queue, kMaxChannelBytes) || q.queue.empty() || !read_u32(f[1], roles) ||
        !read_uint(f[2], q.waiting) || !read_uint(f[3], q.in_flight) || !read_uint(f[4], oldest) ||
        oldest > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        !read_uint(f[5], q.dead_letters) || !read_uint(f[6], q.sent) || !read_uint(f[7], q.acked) ||
        !read_uint(f[8], q.nacked) || !read_uint(f[9], q.retried) ||
        !read_uint(f[10], q.redelivered) || !read_uint(f[11], q.expired) ||
        !read_uint(f[12], q.dead_lettered) || !read_u32(f[13], q.prefetch) ||
        !read_uint(f[14], q.delivered) || !read_uint(f[15], q.handler_errors)) {
        return false;
    }
    q.oldest_waiting_ms = static_cast<std::int64_t>(oldest);
    q.producer = (roles & kProducer) != 0;
    q.consumer = (roles & kConsumer) != 0;
    return true;
}

}  // namespace

void encode_queue_report(const NodeQueues& report, msgpack::sbuffer& out) {
    // Entries are packed first, so that the count of those that fit is known.
    msgpack::sbuffer entries;
    msgpack::packer<msgpack::sbuffer> entry_packer(entries);
    std::uint32_t written = 0;
    for (const auto& queue : report.queues) {
        if (written == kMaxReportQueues || entries.size() + kMaxEntryBytes > kMaxReportBytes - 64) {
            break;
        }
        pack_entry(entry_packer, queue);
        ++written;
    }
    msgpack::packer<msgpack::sbuffer> pk(out);
    pk.pack_array(3);
    pk.pack_uint64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, report.at_ms)));
    pk.pack_uint64(report.queues_omitted + (report.queues.size() - written));
    pk.pack_array(written);
    out.write(entries.data(), entries.size());
}

std::optional<Drop> decode_queue_report(const void* data, std::size_t size, NodeQueues& out) {
    if (size > kMaxHeaderBytes) return Drop::frame_bad_report;
    msgpack::object_handle handle;
    try {
        // Arrays of at most kMaxReportQueues (the entries, and each entry's fields), no maps.
        const msgpack::unpack_limit limit(kMaxReportQueues, 0, kMaxChannelBytes, 0, 0, 3);
        std::size_t offset = 0;
        handle =
            msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr, limit);
        if (offset != size) return Drop::frame_bad_report;
    } catch (const std::exception&) {
        return Drop::frame_bad_report;
    }
    const msgpack::object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size < 3) return Drop::frame_bad_report;
    const msgpack::object* fields = root.via.array.ptr;
    std::uint64_t at = 0;
    if (!read_uint(fields[0], at) ||
        at > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        !read_uint(fields[1], out.queues_omitted) || fields[2].type != object_type::ARRAY) {
        return Drop::frame_bad_report;
    }
    out.at_ms = static_cast<std::int64_t>(at);
    out.queues.clear();
    out.queues.reserve(fields[2].via.array.size);
    for (std::uint32_t i = 0; i < fields[2].via.array.size; ++i) {
        QueueReport queue;
        if (!read_entry(fields[2].via.array.ptr[i], queue)) return Drop::frame_bad_report;
        out.queues.push_back(std::move(queue));
    }
    return std::nullopt;
}

}  // namespace peermq::detail
