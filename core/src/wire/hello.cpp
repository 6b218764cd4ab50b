// The HELLO body's codec (docs/spec/wire.md §6), declared in envelope.hpp: a MessagePack map of
// what a node announces to its peers (name, cluster, ports, queues, topics, heartbeat, BATCH
// support), and the checks a received one must pass before any of it is used: sizes, the
// limits of what a peer can make a node hold, and a `host` that is an address literal.
#include "wire/envelope.hpp"

#include "wire/msgpack_fields.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace peermq::detail {
namespace {

using msgpack::type::object_type;

}  // namespace

void encode_hello(const Hello& h, msgpack::sbuffer& out) {
    msgpack::packer<msgpack::sbuffer> pk(out);
    const bool batch_max = h.batch && h.batch_max != 0;
    pk.pack_map((h.host.empty() ? 7 : 8) + (h.batch ? 1 : 0) + (batch_max ? 1 : 0) +
                (h.incarnation != 0 ? 1 : 0) + (h.reliable_topics ? 1 : 0) +
                (h.queue_reports ? 1 : 0) + (h.repair_batch ? 1 : 0));
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
    if (h.batch) {
        pack_str(pk, "batch");
        pk.pack_true();
    }
    if (batch_max) {
        pack_str(pk, "batch_max");
        pk.pack_uint32(h.batch_max);
    }
    if (h.incarnation != 0) {
        pack_str(pk, "inc");
        pk.pack_uint64(h.incarnation);
    }
    if (h.reliable_topics) {
        pack_str(pk, "rtopics");
        pk.pack_true();
    }
    if (h.queue_reports) {
        pack_str(pk, "qreports");
        pk.pack_true();
    }
    if (h.repair_batch) {
        pack_str(pk, "rbatch");
        pk.pack_true();
    }
}

bool is_ip_literal(std::string_view host) {
    if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
    char text[INET6_ADDRSTRLEN];
    std::memcpy(text, host.data(), host.size());
    text[host.size()] = '\0';
    unsigned char address[sizeof(in6_addr)];
    return inet_pton(AF_INET, text, address) == 1 || inet_pton(AF_INET6, text, address) == 1;
}

std::optional<Drop> decode_hello(const void* data, std::size_t size, Hello& out) {
    if (size > kMaxHelloBytes) return Drop::hello_oversized;
    msgpack::object_handle handle;
    try {
        const msgpack::unpack_limit limit(4096, 64, 65536, 4096, 4096, 4);
        handle = msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr, limit);
    } catch (const std::exception&) {
        return Drop::hello_bad;
    }
    const msgpack::object& root = handle.get();
    if (root.type != object_type::MAP) return Drop::hello_bad;
    out = Hello{};
    bool have_name = false, have_cluster = false, have_inbox = false, have_pub = false;
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        if (kv.key.type != object_type::STR) return Drop::hello_bad;
        const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        std::uint64_t number = 0;
        if (key == "name") {
            if (!read_str(kv.val, out.name, 255)) return Drop::hello_bad;
            have_name = true;
        } else if (key == "cluster") {
            if (!read_str(kv.val, out.cluster, 255)) return Drop::hello_bad;
            have_cluster = true;
        } else if (key == "host") {
            if (!read_str(kv.val, out.host, 255)) return Drop::hello_bad;
            // It becomes an endpoint the node connects to: an address, never a name to resolve
            // or a string for ZeroMQ to parse.
            if (!is_ip_literal(out.host)) return Drop::hello_bad_host;
        } else if (key == "inbox" || key == "pub") {
            if (!read_uint(kv.val, number) || number == 0 || number > 65535) return Drop::hello_bad;
            (key == "inbox" ? out.inbox_port : out.pub_port) = static_cast<std::uint16_t>(number);
            (key == "inbox" ? have_inbox : have_pub) = true;
        } else if (key == "batch") {
            if (kv.val.type != object_type::BOOLEAN) return Drop::hello_bad;
            out.batch = kv.val.via.boolean;
        } else if (key == "batch_max") {
            if (!read_u32(kv.val, out.batch_max)) return Drop::hello_bad;
        } else if (key == "rtopics") {
            if (kv.val.type != object_type::BOOLEAN) return Drop::hello_bad;
            out.reliable_topics = kv.val.via.boolean;
        } else if (key == "qreports") {
            if (kv.val.type != object_type::BOOLEAN) return Drop::hello_bad;
            out.queue_reports = kv.val.via.boolean;
        } else if (key == "rbatch") {
            if (kv.val.type != object_type::BOOLEAN) return Drop::hello_bad;
            out.repair_batch = kv.val.via.boolean;
        } else if (key == "inc") {
            if (!read_uint(kv.val, out.incarnation)) return Drop::hello_bad;
        } else if (key == "hb_ms") {
            if (!read_u32(kv.val, out.heartbeat_ms)) return Drop::hello_bad;
        } else if (key == "queues") {
            if (kv.val.type != object_type::ARRAY) return Drop::hello_bad;
            if (kv.val.via.array.size > kMaxHelloQueues) return Drop::hello_oversized;
            for (std::uint32_t j = 0; j < kv.val.via.array.size; ++j) {
                const auto& q = kv.val.via.array.ptr[j];
                if (q.type != object_type::ARRAY || q.via.array.size < 2) return Drop::hello_bad;
                QueueAd ad;
                if (!read_str(q.via.array.ptr[0], ad.name, kMaxChannelBytes) ||
                    !read_u32(q.via.array.ptr[1], ad.prefetch)) {
                    return Drop::hello_bad;
                }
                out.queues.push_back(std::move(ad));
            }
        } else if (key == "topics") {
            if (kv.val.type != object_type::ARRAY) return Drop::hello_bad;
            if (kv.val.via.array.size > kMaxHelloTopics) return Drop::hello_oversized;
            for (std::uint32_t j = 0; j < kv.val.via.array.size; ++j) {
                std::string topic;
                if (!read_str(kv.val.via.array.ptr[j], topic, kMaxChannelBytes))
                    return Drop::hello_bad;
                out.topics.push_back(std::move(topic));
            }
        }
        // Unknown keys are skipped: later revisions add keys.
    }
    if (!have_name || !have_cluster || !have_inbox || !have_pub) return Drop::hello_missing_field;
    return std::nullopt;
}

}  // namespace peermq::detail
