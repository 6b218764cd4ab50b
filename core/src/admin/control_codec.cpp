#include "admin/control_codec.hpp"

#include "wire/msgpack_fields.hpp"

#include <algorithm>
#include <limits>
#include <type_traits>

namespace peermq::detail {
namespace {

using msgpack::type::object_type;
using Packer = msgpack::packer<msgpack::sbuffer>;
using Object = msgpack::object;

constexpr std::size_t kMaxChannelName = 255;
constexpr std::size_t kLatencyBuckets = std::tuple_size_v<decltype(LatencyHistogram::buckets)>;

// --- Encoding -------------------------------------------------------------------------------

void pack_id(Packer& pk, const Uuid& id) { pack_bin(pk, id.data(), Uuid::kSize); }

void pack_counters(Packer& pk, const std::map<std::string, std::uint64_t>& counters) {
    pk.pack_map(static_cast<std::uint32_t>(counters.size()));
    for (const auto& [name, count] : counters) {
        pack_str(pk, name);
        pk.pack_uint64(count);
    }
}

void pack_filter(Packer& pk, const DeadLetterFilter& f) {
    const std::uint32_t n = (f.id ? 1 : 0) + (f.queue ? 1 : 0) + (f.reason ? 1 : 0) +
                            (f.since_ms ? 1 : 0) + (f.until_ms ? 1 : 0) + (f.limit != 0 ? 1 : 0);
    pk.pack_map(n);
    if (f.id) {
        pack_str(pk, "id");
        pack_id(pk, *f.id);
    }
    if (f.queue) {
        pack_str(pk, "queue");
        pack_str(pk, *f.queue);
    }
    if (f.reason) {
        pack_str(pk, "reason");
        pack_str(pk, *f.reason);
    }
    if (f.since_ms) {
        pack_str(pk, "since_ms");
        pk.pack_int64(*f.since_ms);
    }
    if (f.until_ms) {
        pack_str(pk, "until_ms");
        pk.pack_int64(*f.until_ms);
    }
    if (f.limit != 0) {
        pack_str(pk, "limit");
        pk.pack_uint64(f.limit);
    }
}

void pack_histogram(Packer& pk, const LatencyHistogram& h) {
    pk.pack_map(3);
    pack_str(pk, "buckets");
    pk.pack_array(static_cast<std::uint32_t>(h.buckets.size()));
    for (std::uint64_t bucket : h.buckets) pk.pack_uint64(bucket);
    pack_str(pk, "count");
    pk.pack_uint64(h.count);
    pack_str(pk, "sum_us");
    pk.pack_uint64(h.sum_us);
}

void pack_channel(Packer& pk, const ChannelStats& c) {
    const std::pair<const char*, std::uint64_t> counters[] = {
        {"sent", c.sent},
        {"received", c.received},
        {"delivered", c.delivered},
        {"handler_errors", c.handler_errors},
        {"acked", c.acked},
        {"nacked", c.nacked},
        {"retried", c.retried},
        {"redelivered", c.redelivered},
        {"expired", c.expired},
        {"dead_lettered", c.dead_lettered},
        {"duplicates", c.duplicates},
        {"in_flight", c.in_flight},
        {"depth", c.depth},
    };
    pk.pack_map(static_cast<std::uint32_t>(std::size(counters) + 1));
    for (const auto& [name, value] : counters) {
        pack_str(pk, name);
        pk.pack_uint64(value);
    }
    pack_str(pk, "ack_latency");
    pack_histogram(pk, c.ack_latency);
}

// Packs into `out`, as an array (or a map), the first items `pack_one` writes that fit:
// at most `max` of them, and only while the whole reply stays within kMaxReplyBytes (less
// kReplyTail for the fixed-size fields written after the lists). Returns how many. Each item
// is packed once into a scratch buffer and copied once: the time and memory spent follow what
// is listed, not what `items` holds.
constexpr std::size_t kReplyTail = 64;

template <typename Items, typename PackOne>
std::size_t pack_bounded(msgpack::sbuffer& out, const Items& items, std::size_t max, bool as_map,
                         PackOne&& pack_one) {
    constexpr std::size_t kHeader = 5;  // an array or map header, at most
    msgpack::sbuffer listed;
    msgpack::sbuffer item;
    Packer item_pk(&item);
    std::size_t n = 0;
    for (const auto& element : items) {
        if (n == max) break;
        item.clear();
        pack_one(item_pk, element);
        if (out.size() + kHeader + listed.size() + item.size() + kReplyTail > kMaxReplyBytes) {
            break;
        }
        listed.write(item.data(), item.size());
        ++n;
    }
    Packer pk(&out);
    if (as_map) {
        pk.pack_map(static_cast<std::uint32_t>(n));
    } else {
        pk.pack_array(static_cast<std::uint32_t>(n));
    }
    out.write(listed.data(), listed.size());
    return n;
}

// The node's own queues or topics, as many as fit; returns how many were left out.
std::uint64_t pack_channels(msgpack::sbuffer& out,
                            const std::map<std::string, ChannelStats>& channels) {
    const std::size_t listed =
        pack_bounded(out, channels, kMaxReplyChannels, true, [](Packer& pk, const auto& entry) {
            pack_str(pk, entry.first);
            pack_channel(pk, entry.second);
        });
    return channels.size() - listed;
}

// At most kMaxReplyNamesPerPeer of a peer's names; returns how many were left out.
std::uint64_t pack_names(Packer& pk, const std::vector<std::string>& names) {
    const std::size_t listed = std::min(names.size(), kMaxReplyNamesPerPeer);
    pk.pack_array(static_cast<std::uint32_t>(listed));
    for (std::size_t i = 0; i < listed; ++i) pack_str(pk, names[i]);
    return names.size() - listed;
}

void pack_peer(Packer& pk, const PeerInfo& p) {
    pk.pack_map(13);
    pack_str(pk, "id");
    pack_id(pk, p.id);
    pack_str(pk, "name");
    pack_str(pk, p.name);
    pack_str(pk, "cluster");
    pack_str(pk, p.cluster);
    pack_str(pk, "state");
    pack_str(pk, to_string(p.state));
    pack_str(pk, "inbox_endpoint");
    pack_str(pk, p.inbox_endpoint);
    pack_str(pk, "pub_endpoint");
    pack_str(pk, p.pub_endpoint);
    pack_str(pk, "queues");
    const std::uint64_t queues_omitted = pack_names(pk, p.queues) + p.queues_omitted;
    pack_str(pk, "topics");
    const std::uint64_t topics_omitted = pack_names(pk, p.topics) + p.topics_omitted;
    pack_str(pk, "last_heard_ms");
    pk.pack_int64(p.last_heard_ms);
    pack_str(pk, "frames_sent");
    pk.pack_uint64(p.frames_sent);
    pack_str(pk, "frames_received");
    pk.pack_uint64(p.frames_received);
    pack_str(pk, "queues_omitted");
    pk.pack_uint64(queues_omitted);
    pack_str(pk, "topics_omitted");
    pk.pack_uint64(topics_omitted);
}

// As many peers as fit; returns how many were left out.
std::uint64_t pack_peers(msgpack::sbuffer& out, const std::vector<PeerInfo>& peers) {
    const std::size_t listed = pack_bounded(out, peers, kMaxReplyPeers, false, pack_peer);
    return peers.size() - listed;
}

// The small fields first, then the lists, which stop at the reply's budget, then what they
// left out.
void pack_stats(msgpack::sbuffer& out, const NodeStats& s) {
    Packer pk(&out);
    pk.pack_map(13);
    pack_str(pk, "id");
    pack_id(pk, s.id);
    pack_str(pk, "name");
    pack_str(pk, s.name);
    pack_str(pk, "dropped");
    pack_counters(pk, s.dropped);
    pack_str(pk, "bad_frames");
    pk.pack_uint64(s.bad_frames);
    pack_str(pk, "uncommitted");
    pk.pack_uint64(s.uncommitted);
    pack_str(pk, "discovery_ignored");
    pack_counters(pk, s.discovery_ignored);
    pack_str(pk, "thread_errors");
    pack_counters(pk, s.thread_errors);
    pack_str(pk, "queues");
    const std::uint64_t queues_omitted = pack_channels(out, s.queues) + s.queues_omitted;
    pack_str(pk, "topics");
    const std::uint64_t topics_omitted = pack_channels(out, s.topics) + s.topics_omitted;
    pack_str(pk, "peers");
    const std::uint64_t peers_omitted = pack_peers(out, s.peers) + s.peers_omitted;
    pack_str(pk, "queues_omitted");
    pk.pack_uint64(queues_omitted);
    pack_str(pk, "topics_omitted");
    pk.pack_uint64(topics_omitted);
    pack_str(pk, "peers_omitted");
    pk.pack_uint64(peers_omitted);
}

void pack_dead_letter(Packer& pk, const DeadLetter& d) {
    pk.pack_map(10);
    pack_str(pk, "id");
    pack_id(pk, d.id);
    pack_str(pk, "queue");
    pack_str(pk, d.queue);
    pack_str(pk, "headers");
    pk.pack_map(static_cast<std::uint32_t>(d.headers.size()));
    for (const auto& [key, value] : d.headers) {
        pack_str(pk, key);
        pack_str(pk, value);
    }
    pack_str(pk, "payload");
    pack_bin(pk, d.payload.data(), d.payload.size());
    pack_str(pk, "reason");
    pack_str(pk, d.reason);
    pack_str(pk, "attempts");
    pk.pack_uint32(d.attempts);
    pack_str(pk, "last_error");
    pack_str(pk, d.last_error);
    pack_str(pk, "created_ms");
    pk.pack_int64(d.created_ms);
    pack_str(pk, "first_failure_ms");
    pk.pack_int64(d.first_failure_ms);
    pack_str(pk, "last_failure_ms");
    pk.pack_int64(d.last_failure_ms);
}

// --- Decoding -------------------------------------------------------------------------------

std::string_view key_of(const msgpack::object_kv& kv) {
    if (kv.key.type != object_type::STR) return {};
    return {kv.key.via.str.ptr, kv.key.via.str.size};
}

// Reply bodies come from a node of this host; decoding reports the first field that is wrong.
class BodyReader {
public:
    bool fail(std::string_view what) {
        if (error_.empty()) error_ = std::string(what);
        return false;
    }
    const std::string& error() const noexcept { return error_; }

    bool strings(const Object& o, std::vector<std::string>& out, std::string_view what) {
        if (o.type != object_type::ARRAY) return fail(what);
        out.clear();
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            std::string item;
            if (!read_str(o.via.array.ptr[i], item, std::numeric_limits<std::size_t>::max())) {
                return fail(what);
            }
            out.push_back(std::move(item));
        }
        return true;
    }

    bool counters(const Object& o, std::map<std::string, std::uint64_t>& out,
                  std::string_view what) {
        if (o.type != object_type::MAP) return fail(what);
        out.clear();
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            std::uint64_t count = 0;
            if (kv.key.type != object_type::STR || !read_uint(kv.val, count)) return fail(what);
            out[std::string(key_of(kv))] = count;
        }
        return true;
    }

    bool histogram(const Object& o, LatencyHistogram& out) {
        if (o.type != object_type::MAP) return fail("ack_latency");
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            const std::string_view key = key_of(kv);
            if (key == "buckets") {
                const Object& b = kv.val;
                if (b.type != object_type::ARRAY || b.via.array.size > kLatencyBuckets) {
                    return fail("ack_latency.buckets");
                }
                out.buckets.fill(0);
                for (std::uint32_t j = 0; j < b.via.array.size; ++j) {
                    if (!read_uint(b.via.array.ptr[j], out.buckets[j])) {
                        return fail("ack_latency.buckets");
                    }
                }
            } else if (key == "count") {
                if (!read_uint(kv.val, out.count)) return fail("ack_latency.count");
            } else if (key == "sum_us") {
                if (!read_uint(kv.val, out.sum_us)) return fail("ack_latency.sum_us");
            }
        }
        return true;
    }

    bool channel(const Object& o, ChannelStats& out) {
        if (o.type != object_type::MAP) return fail("channel stats");
        std::uint64_t* const counters[] = {
            &out.sent,    &out.received,      &out.delivered,  &out.handler_errors,
            &out.acked,   &out.nacked,        &out.retried,    &out.redelivered,
            &out.expired, &out.dead_lettered, &out.duplicates, &out.in_flight,
            &out.depth,
        };
        static constexpr std::string_view kNames[] = {
            "sent",       "received",  "delivered",   "handler_errors", "acked",
            "nacked",     "retried",   "redelivered", "expired",        "dead_lettered",
            "duplicates", "in_flight", "depth",
        };
        static_assert(std::size(kNames) == std::size(counters));
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            const std::string_view key = key_of(kv);
            if (key == "ack_latency") {
                if (!histogram(kv.val, out.ack_latency)) return false;
                continue;
            }
            for (std::size_t n = 0; n < std::size(kNames); ++n) {
                if (key != kNames[n]) continue;
                if (!read_uint(kv.val, *counters[n])) return fail(kNames[n]);
                break;
            }
        }
        return true;
    }

    bool channels(const Object& o, std::map<std::string, ChannelStats>& out,
                  std::string_view what) {
        if (o.type != object_type::MAP) return fail(what);
        out.clear();
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            if (kv.key.type != object_type::STR) return fail(what);
            if (!channel(kv.val, out[std::string(key_of(kv))])) return false;
        }
        return true;
    }

    bool peer(const Object& o, PeerInfo& out) {
        if (o.type != object_type::MAP) return fail("peer");
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            const std::string_view key = key_of(kv);
            const std::size_t any = std::numeric_limits<std::size_t>::max();
            bool ok = true;
            if (key == "id") {
                ok = read_id(kv.val, out.id);
            } else if (key == "name") {
                ok = read_str(kv.val, out.name, any);
            } else if (key == "cluster") {
                ok = read_str(kv.val, out.cluster, any);
            } else if (key == "state") {
                std::string state;
                ok = read_str(kv.val, state, any);
                if (ok) {
                    auto parsed = peer_state(state);
                    ok = parsed.has_value();
                    if (ok) out.state = *parsed;
                }
            } else if (key == "inbox_endpoint") {
                ok = read_str(kv.val, out.inbox_endpoint, any);
            } else if (key == "pub_endpoint") {
                ok = read_str(kv.val, out.pub_endpoint, any);
            } else if (key == "queues") {
                if (!strings(kv.val, out.queues, "peer.queues")) return false;
            } else if (key == "topics") {
                if (!strings(kv.val, out.topics, "peer.topics")) return false;
            } else if (key == "last_heard_ms") {
                ok = read_int(kv.val, out.last_heard_ms);
            } else if (key == "frames_sent") {
                ok = read_uint(kv.val, out.frames_sent);
            } else if (key == "frames_received") {
                ok = read_uint(kv.val, out.frames_received);
            } else if (key == "queues_omitted") {
                ok = read_uint(kv.val, out.queues_omitted);
            } else if (key == "topics_omitted") {
                ok = read_uint(kv.val, out.topics_omitted);
            }
            if (!ok) return fail("peer." + std::string(key));
        }
        return true;
    }

    bool peers(const Object& o, std::vector<PeerInfo>& out) {
        if (o.type != object_type::ARRAY) return fail("peers");
        out.assign(o.via.array.size, PeerInfo{});
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            if (!peer(o.via.array.ptr[i], out[i])) return false;
        }
        return true;
    }

    bool stats(const Object& o, NodeStats& out) {
        if (o.type != object_type::MAP) return fail("stats");
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            const std::string_view key = key_of(kv);
            if (key == "id") {
                if (!read_id(kv.val, out.id)) return fail("id");
            } else if (key == "name") {
                if (!read_str(kv.val, out.name, std::numeric_limits<std::size_t>::max())) {
                    return fail("name");
                }
            } else if (key == "queues") {
                if (!channels(kv.val, out.queues, "queues")) return false;
            } else if (key == "topics") {
                if (!channels(kv.val, out.topics, "topics")) return false;
            } else if (key == "peers") {
                if (!peers(kv.val, out.peers)) return false;
            } else if (key == "dropped") {
                if (!counters(kv.val, out.dropped, "dropped")) return false;
            } else if (key == "bad_frames") {
                if (!read_uint(kv.val, out.bad_frames)) return fail("bad_frames");
            } else if (key == "uncommitted") {
                if (!read_uint(kv.val, out.uncommitted)) return fail("uncommitted");
            } else if (key == "discovery_ignored") {
                if (!counters(kv.val, out.discovery_ignored, "discovery_ignored")) return false;
            } else if (key == "thread_errors") {
                if (!counters(kv.val, out.thread_errors, "thread_errors")) return false;
            } else if (key == "peers_omitted") {
                if (!read_uint(kv.val, out.peers_omitted)) return fail("peers_omitted");
            } else if (key == "queues_omitted") {
                if (!read_uint(kv.val, out.queues_omitted)) return fail("queues_omitted");
            } else if (key == "topics_omitted") {
                if (!read_uint(kv.val, out.topics_omitted)) return fail("topics_omitted");
            }
        }
        return true;
    }

    bool dead_letter(const Object& o, DeadLetter& out) {
        if (o.type != object_type::MAP) return fail("dead letter");
        const std::size_t any = std::numeric_limits<std::size_t>::max();
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            const std::string_view key = key_of(kv);
            bool ok = true;
            if (key == "id") {
                ok = read_id(kv.val, out.id);
            } else if (key == "queue") {
                ok = read_str(kv.val, out.queue, any);
            } else if (key == "headers") {
                ok = kv.val.type == object_type::MAP;
                out.headers.clear();
                for (std::uint32_t j = 0; ok && j < kv.val.via.map.size; ++j) {
                    const auto& h = kv.val.via.map.ptr[j];
                    std::string name, value;
                    ok = read_str(h.key, name, any) && read_str(h.val, value, any);
                    if (ok) out.headers.insert_or_assign(std::move(name), std::move(value));
                }
            } else if (key == "payload") {
                ok = kv.val.type == object_type::BIN;
                if (ok) out.payload = Payload::copy_of(kv.val.via.bin.ptr, kv.val.via.bin.size);
            } else if (key == "reason") {
                ok = read_str(kv.val, out.reason, any);
            } else if (key == "attempts") {
                ok = read_u32(kv.val, out.attempts);
            } else if (key == "last_error") {
                ok = read_str(kv.val, out.last_error, any);
            } else if (key == "created_ms") {
                ok = read_int(kv.val, out.created_ms);
            } else if (key == "first_failure_ms") {
                ok = read_int(kv.val, out.first_failure_ms);
            } else if (key == "last_failure_ms") {
                ok = read_int(kv.val, out.last_failure_ms);
            }
            if (!ok) return fail("dead letter " + std::string(key));
        }
        return true;
    }

    bool dead_letters(const Object& o, std::vector<DeadLetter>& out) {
        if (o.type != object_type::ARRAY) return fail("dead letters");
        out.assign(o.via.array.size, DeadLetter{});
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            if (!dead_letter(o.via.array.ptr[i], out[i])) return false;
        }
        return true;
    }

private:
    static std::optional<PeerState> peer_state(std::string_view name) {
        for (PeerState state :
             {PeerState::connecting, PeerState::alive, PeerState::suspect, PeerState::down}) {
            if (to_string(state) == name) return state;
        }
        return std::nullopt;
    }

    std::string error_;
};

// Unpacks exactly one MessagePack object filling the whole buffer; on anything else, why not.
std::optional<std::string> unpack_one(const void* data, std::size_t size,
                                      const msgpack::unpack_limit& limit,
                                      msgpack::object_handle& out) {
    if (data == nullptr || size == 0) return "empty";
    try {
        std::size_t offset = 0;
        out =
            msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr, limit);
        if (offset != size) return "trailing bytes";
        return std::nullopt;
    } catch (const msgpack::size_overflow& e) {
        return std::string("exceeds the decode limits: ") + e.what();
    } catch (const std::exception& e) {
        return e.what();
    }
}

std::optional<ControlRequestError> bad(std::string_view reason, std::string message) {
    return ControlRequestError{reason, std::move(message)};
}

// The filter of dlq.list and dlq.purge. Unknown keys are refused: a key that narrows a purge
// must never be ignored.
std::optional<std::string> read_filter(const Object& o, DeadLetterFilter& out) {
    if (o.type != object_type::MAP) return "the filter must be a map";
    out = DeadLetterFilter{};
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != object_type::STR) return "a filter key must be a string";
        const std::string key(key_of(kv));
        if (kv.val.type == object_type::NIL) {
            if (key == "id" || key == "queue" || key == "reason" || key == "since_ms" ||
                key == "until_ms" || key == "limit") {
                continue;
            }
            return "unknown filter key '" + key + "'";
        }
        if (key == "id") {
            Uuid id;
            if (!read_id(kv.val, id)) return "filter id must be 16 bytes of binary";
            out.id = id;
        } else if (key == "queue") {
            std::string queue;
            if (!read_str(kv.val, queue, kMaxChannelName)) {
                return "filter queue must be a string of at most 255 bytes";
            }
            out.queue = std::move(queue);
        } else if (key == "reason") {
            std::string reason;
            if (!read_str(kv.val, reason, kMaxControlStringBytes))
                return "filter reason must be a string";
            out.reason = std::move(reason);
        } else if (key == "since_ms" || key == "until_ms") {
            std::int64_t ms = 0;
            if (!read_int(kv.val, ms)) return "filter " + key + " must be an integer (Unix ms)";
            (key == "since_ms" ? out.since_ms : out.until_ms) = ms;
        } else if (key == "limit") {
            std::uint64_t limit = 0;
            if (!read_uint(kv.val, limit)) return "filter limit must be an unsigned integer";
            out.limit = static_cast<std::size_t>(limit);
        } else {
            return "unknown filter key '" + key + "'";
        }
    }
    return std::nullopt;
}

// [1, "ok", body]: the body, or the Status of an error reply or of a malformed reply.
Result<const Object*> reply_body(const msgpack::object_handle& handle,
                                 const std::optional<std::string>& unpack_error) {
    auto malformed = [](std::string what) {
        return Status(ErrorCode::protocol_error, "malformed control reply: " + std::move(what));
    };
    if (unpack_error) return malformed("not one MessagePack value (" + *unpack_error + ")");
    const Object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size < 2) {
        return malformed("not an array [version, status, ...]");
    }
    const Object* e = root.via.array.ptr;
    std::uint64_t version = 0;
    if (!read_uint(e[0], version)) return malformed("the version is not an unsigned integer");
    if (version != kControlVersion) {
        return Status(ErrorCode::protocol_error,
                      "the node answered in control protocol version " + std::to_string(version) +
                          "; this client speaks version " + std::to_string(kControlVersion));
    }
    std::string status;
    if (!read_str(e[1], status, kMaxControlStringBytes))
        return malformed("the status is not a string");
    if (status == "error") {
        std::string code_name, message;
        if (root.via.array.size < 4 || !read_str(e[2], code_name, kMaxControlStringBytes) ||
            !read_str(e[3], message, kMaxControlStringBytes)) {
            return malformed("an error reply needs a code name and a message");
        }
        auto code = error_code_from_name(code_name);
        if (!code || *code == ErrorCode::ok) {
            return Status(ErrorCode::protocol_error, code_name + ": " + message);
        }
        return Status(*code, std::move(message));
    }
    if (status != "ok") return malformed("unknown status '" + status + "'");
    if (root.via.array.size < 3) return malformed("an ok reply without a body");
    return &e[2];
}

// The deepest reply: [1, "ok", {"queues": {name: {"ack_latency": {"buckets": [...]}}}}].
constexpr std::size_t kMaxReplyDepth = 8;

// Decodes an ok reply whose body `read` turns into a T. No container of the reply can claim
// more elements than the reply has bytes: a forged length is refused before anything is
// allocated for it.
template <typename T, typename Read>
Result<T> decode_reply(const void* data, std::size_t size, std::string_view what, Read&& read) {
    const msgpack::unpack_limit limit(size, size / 2, size, size, 0, kMaxReplyDepth);
    msgpack::object_handle handle;
    const auto unpack_error = unpack_one(data, size, limit, handle);
    auto body = reply_body(handle, unpack_error);
    if (!body) return body.status();
    T value{};
    BodyReader reader;
    if (!read(reader, *body.value(), value)) {
        return Status(ErrorCode::protocol_error, "malformed control reply: " + std::string(what) +
                                                     " body: bad " + reader.error());
    }
    return value;
}

}  // namespace

void encode_request(const ControlRequest& request, msgpack::sbuffer& out) {
    Packer pk(&out);
    std::visit(
        [&](const auto& r) {
            using R = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<R, StatsRequest>) {
                pk.pack_array(2);
                pk.pack_uint32(kControlVersion);
                pack_str(pk, "stats");
            } else if constexpr (std::is_same_v<R, PeersRequest>) {
                pk.pack_array(2);
                pk.pack_uint32(kControlVersion);
                pack_str(pk, "peers");
            } else if constexpr (std::is_same_v<R, DeadLetterListRequest>) {
                pk.pack_array(3);
                pk.pack_uint32(kControlVersion);
                pack_str(pk, "dlq.list");
                pack_filter(pk, r.filter);
            } else if constexpr (std::is_same_v<R, DeadLetterGetRequest>) {
                pk.pack_array(3);
                pk.pack_uint32(kControlVersion);
                pack_str(pk, "dlq.get");
                pack_id(pk, r.id);
            } else if constexpr (std::is_same_v<R, DeadLetterPurgeRequest>) {
                pk.pack_array(3);
                pk.pack_uint32(kControlVersion);
                pack_str(pk, "dlq.purge");
                pack_filter(pk, r.filter);
            } else {
                static_assert(std::is_same_v<R, DeadLetterReplayRequest>);
                pk.pack_array(4);
                pk.pack_uint32(kControlVersion);
                pack_str(pk, "dlq.replay");
                pack_id(pk, r.id);
                pack_str(pk, r.queue);
            }
        },
        request);
}

std::optional<ControlRequestError> decode_request(const void* data, std::size_t size,
                                                  ControlRequest& out) {
    // Requests are small: bounded containers and strings, at most three levels deep.
    static const msgpack::unpack_limit limit(64, 64, kMaxControlStringBytes, kMaxControlStringBytes,
                                             0, 3);
    if (size > kMaxControlRequestBytes) {
        return bad("control.garbage",
                   "a request is at most " + std::to_string(kMaxControlRequestBytes) + " bytes");
    }
    msgpack::object_handle handle;
    if (unpack_one(data, size, limit, handle)) {
        return bad("control.garbage", "a request is one MessagePack array [version, verb, ...]");
    }
    const Object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size < 2) {
        return bad("control.garbage", "a request is a MessagePack array [version, verb, ...]");
    }
    const Object* e = root.via.array.ptr;
    const std::uint32_t n = root.via.array.size;
    std::uint64_t version = 0;
    if (!read_uint(e[0], version)) {
        return bad("control.garbage", "the request version must be an unsigned integer");
    }
    if (version != kControlVersion) {
        return bad("control.bad_version",
                   "unsupported control protocol version " + std::to_string(version) +
                       "; this node speaks version " + std::to_string(kControlVersion));
    }
    std::string verb;
    if (!read_str(e[1], verb, 64)) {
        return bad("control.garbage", "the request verb must be a string");
    }
    if (verb == "stats") {
        out = StatsRequest{};
    } else if (verb == "peers") {
        out = PeersRequest{};
    } else if (verb == "dlq.list" || verb == "dlq.purge") {
        DeadLetterFilter filter;
        if (n < 3) {
            if (verb == "dlq.purge") {
                return bad("control.bad_request", "dlq.purge needs a filter ({} = everything)");
            }
        } else if (auto error = read_filter(e[2], filter)) {
            return bad("control.bad_request", verb + ": " + *error);
        }
        if (verb == "dlq.list") {
            out = DeadLetterListRequest{std::move(filter)};
        } else {
            out = DeadLetterPurgeRequest{std::move(filter)};
        }
    } else if (verb == "dlq.get" || verb == "dlq.replay") {
        MessageId id;
        if (n < 3 || !read_id(e[2], id)) {
            return bad("control.bad_request", verb + " needs a message id (bin 16)");
        }
        if (verb == "dlq.get") {
            out = DeadLetterGetRequest{id};
        } else {
            std::string queue;
            if (n >= 4 && e[3].type != object_type::NIL &&
                !read_str(e[3], queue, kMaxChannelName)) {
                return bad("control.bad_request",
                           "dlq.replay: the queue must be a string of at most 255 bytes");
            }
            out = DeadLetterReplayRequest{id, std::move(queue)};
        }
    } else {
        return bad("control.unknown_verb", "unknown control verb '" + verb + "'");
    }
    return std::nullopt;
}

void encode_ok_reply(const ControlReplyBody& body, msgpack::sbuffer& out) {
    Packer pk(&out);
    pk.pack_array(3);
    pk.pack_uint32(kControlVersion);
    pack_str(pk, "ok");
    std::visit(
        [&](const auto& b) {
            using B = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<B, NodeStats>) {
                pack_stats(out, b);
            } else if constexpr (std::is_same_v<B, std::vector<PeerInfo>>) {
                (void)pack_peers(out, b);
            } else if constexpr (std::is_same_v<B, std::vector<DeadLetter>>) {
                pk.pack_array(static_cast<std::uint32_t>(b.size()));
                for (const auto& letter : b) pack_dead_letter(pk, letter);
            } else if constexpr (std::is_same_v<B, DeadLetter>) {
                pack_dead_letter(pk, b);
            } else if constexpr (std::is_same_v<B, std::uint64_t>) {
                pk.pack_uint64(b);
            } else {
                static_assert(std::is_same_v<B, MessageId>);
                pack_id(pk, b);
            }
        },
        body);
}

void encode_error_reply(const Status& status, msgpack::sbuffer& out) {
    Packer pk(&out);
    pk.pack_array(4);
    pk.pack_uint32(kControlVersion);
    pack_str(pk, "error");
    pack_str(pk, to_string(status.ok() ? ErrorCode::internal : status.code()));
    const std::string_view message = status.message();
    pack_str(pk, message.substr(0, kMaxControlStringBytes));
}

Result<NodeStats> decode_stats_reply(const void* data, std::size_t size) {
    return decode_reply<NodeStats>(
        data, size, "stats",
        [](BodyReader& r, const Object& o, NodeStats& v) { return r.stats(o, v); });
}

Result<std::vector<PeerInfo>> decode_peers_reply(const void* data, std::size_t size) {
    return decode_reply<std::vector<PeerInfo>>(
        data, size, "peers",
        [](BodyReader& r, const Object& o, std::vector<PeerInfo>& v) { return r.peers(o, v); });
}

Result<std::vector<DeadLetter>> decode_dead_letters_reply(const void* data, std::size_t size) {
    return decode_reply<std::vector<DeadLetter>>(
        data, size, "dlq.list", [](BodyReader& r, const Object& o, std::vector<DeadLetter>& v) {
            return r.dead_letters(o, v);
        });
}

Result<DeadLetter> decode_dead_letter_reply(const void* data, std::size_t size) {
    return decode_reply<DeadLetter>(
        data, size, "dlq.get",
        [](BodyReader& r, const Object& o, DeadLetter& v) { return r.dead_letter(o, v); });
}

Result<std::uint64_t> decode_count_reply(const void* data, std::size_t size) {
    return decode_reply<std::uint64_t>(data, size, "dlq.purge",
                                       [](BodyReader& r, const Object& o, std::uint64_t& v) {
                                           return read_uint(o, v) || r.fail("count");
                                       });
}

Result<MessageId> decode_id_reply(const void* data, std::size_t size) {
    return decode_reply<MessageId>(data, size, "dlq.replay",
                                   [](BodyReader& r, const Object& o, MessageId& v) {
                                       return read_id(o, v) || r.fail("message id");
                                   });
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
    for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i) {
        const auto code = static_cast<ErrorCode>(i);
        if (to_string(code) == name) return code;
    }
    return std::nullopt;
}

}  // namespace peermq::detail
