// The peermq wire envelope (docs/spec/wire.md): the MessagePack header of every frame, the HELLO
// body, and the limits a receiver enforces. Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <msgpack.hpp>

#include "observability/drop_reasons.hpp"
#include "peermq/message.hpp"
#include "peermq/uuid.hpp"

namespace peermq::detail {

inline constexpr std::uint32_t kProtocolVersion = 1;
inline constexpr std::size_t kMaxHeaderBytes = 65536;
inline constexpr std::size_t kMaxChannelBytes = 255;
inline constexpr std::size_t kMaxHeaderEntries = 64;
inline constexpr std::size_t kMaxIdsPerFrame = 4096;  // what a receiver accepts
// What a sender puts in one ACK, NACK or REJECT: 2 048 ids (18 bytes each) stay well inside
// kMaxHeaderBytes, which 3 641 would not.
inline constexpr std::size_t kMaxIdsPerAck = 2048;
inline constexpr std::size_t kHeaderFields = 13;
// BATCH frames (docs/spec/wire.md §batch): at most this many entries and body bytes; a sender
// puts only payloads of at most kBatchPayloadMax bytes in one (larger ones go zero-copy alone).
// kMaxBatchEntries is what this node reads (it says so in its HELLO's `batch_max`); a peer whose
// HELLO says `batch` without `batch_max` reads kBatchEntriesDefault.
inline constexpr std::size_t kMaxBatchEntries = 256;
inline constexpr std::size_t kBatchEntriesDefault = 64;
inline constexpr std::size_t kMaxBatchBytes = 65536;
inline constexpr std::size_t kBatchPayloadMax = 2048;
inline constexpr std::size_t kBatchEntryOverhead = 8;  // the two 32-bit lengths
// What one HELLO may announce (docs/spec/wire.md §6): what a peer can make a node hold.
inline constexpr std::size_t kMaxHelloBytes = 65536;
inline constexpr std::size_t kMaxHelloQueues = 1024;
inline constexpr std::size_t kMaxHelloTopics = 1024;

enum class Kind : std::uint8_t {
    data = 1,
    ack = 2,
    nack = 3,
    hello = 4,
    heartbeat = 5,
    bye = 6,
    reject = 7,
    batch = 8,
    // Reliable topics (docs/spec/wire.md §14), sent only to peers whose HELLO has `rtopics`.
    sync = 9,     // publisher -> subscriber: where its topics stand
    resend = 10,  // subscriber -> publisher: start me, or send these ranges again
    repair = 11,  // publisher -> subscriber: a topic message sent again, on the inbox
    // Queue reports (docs/spec/wire.md §15), asked only of peers whose HELLO has `qreports`.
    queue_query = 12,   // how do your queues stand? (`seq`: the question's number)
    queue_report = 13,  // the answer: the same `seq`, the report in the body
};
inline constexpr std::uint64_t kMaxKind = 13;

enum HeaderFlag : std::uint32_t {
    kFlagAckRequested = 1u << 0,  // at_least_once / effectively_once
    kFlagDedupe = 1u << 1,        // effectively_once
    kFlagStart = 1u << 0,         // SYNC and RESEND: the start of a reliable subscription
};

struct Header {
    std::uint32_t version = kProtocolVersion;
    Kind kind = Kind::data;
    NodeId sender;
    MessageId id;
    std::string channel;
    std::uint32_t flags = 0;
    std::uint32_t attempt = 1;
    std::int64_t created_ms = 0;
    std::int64_t deadline_ms = 0;
    std::uint64_t seq = 0;
    Headers headers;
    std::vector<MessageId> ids;
    std::string error;
    // Element 13: a topic publisher's epoch (its incarnation) on topic DATA, SYNC, RESEND and
    // REPAIR; 0 (and not written) on every other frame.
    std::uint64_t epoch = 0;
};

// Appends the MessagePack encoding of `header` to `out` (clear it first to reuse it).
void encode_header(const Header& header, msgpack::sbuffer& out);

// The DATA header of the hot path, encoded from its parts without building a Header.
struct DataHeaderRef {
    const NodeId& sender;
    const MessageId& id;
    std::string_view channel;
    std::uint32_t flags;
    std::uint32_t attempt;
    std::int64_t created_ms;
    std::int64_t deadline_ms;
    std::uint64_t seq;
    const Headers& headers;
    std::uint64_t epoch = 0;  // written as element 13 when not 0
};
void encode_data_header(const DataHeaderRef& header, msgpack::sbuffer& out);

// Decodes a header frame in place (no MessagePack object tree; strings are assigned into `out`,
// so a reused Header allocates nothing on the hot path). On failure returns the drop reason
// (Drop::frame_garbage, Drop::frame_bad_version, ...) and leaves `out` unspecified.
std::optional<Drop> decode_header(const void* data, std::size_t size, Header& out);

// Decodes the headers of one BATCH's entries, in order, into one reused Header. Entries come
// from one sender and most often for one channel, so their leading fields are the same bytes:
// after an entry decoded in full, the next ones are compared on those bytes (version, kind,
// sender, channel) and only their own fields are read. Results are decode_header's. Holds
// views into the entries: one decoder per BATCH body, used while the body lives.
class BatchHeaderDecoder {
public:
    // `out` must be the Header given to the previous call (its shared fields are kept).
    std::optional<Drop> decode(std::string_view entry, Header& out);

private:
    std::string_view prefix_;   // array header .. sender of the last entry decoded in full
    std::string_view channel_;  // its channel, encoded
    std::uint64_t fields_ = 0;  // its element count; 0: no shared bytes to compare with
};

// Appends one entry (an encoded DATA header and its payload) to the body of a BATCH frame.
void append_batch_entry(std::string_view header, std::string_view payload, msgpack::sbuffer& out);

// One entry of a BATCH body: views into the body, valid while it lives.
struct BatchEntry {
    std::string_view header;
    std::string_view payload;
};

// Splits a BATCH body that its header says holds `count` entries into `out` (cleared first).
// Checks the framing only; each entry's header is then decoded like a DATA frame's. On failure
// returns Drop::frame_bad_batch and leaves `out` unspecified.
std::optional<Drop> split_batch(const void* data, std::size_t size, std::uint64_t count,
                                std::vector<BatchEntry>& out);

struct QueueAd {
    std::string name;
    std::uint32_t prefetch = 0;
};

struct Hello {
    std::string name;
    std::string cluster;
    std::string host;  // empty: use the address the HELLO came from
    std::uint16_t inbox_port = 0;
    std::uint16_t pub_port = 0;
    std::vector<QueueAd> queues;
    std::vector<std::string> topics;
    std::uint32_t heartbeat_ms = 0;
    bool batch = false;           // reads BATCH frames (docs/spec/wire.md §batch)
    std::uint32_t batch_max = 0;  // entries per BATCH it reads; 0 = not said (64)
    // How many times the node with this key has started; 0 = not said. A HELLO of a lower
    // incarnation than the one known is stale; a higher one is the node restarted.
    std::uint64_t incarnation = 0;
    // It sequences its topic messages, keeps their history and answers RESEND (wire.md §14).
    bool reliable_topics = false;
    // It answers QUEUE_QUERY with a QUEUE_REPORT (wire.md §15).
    bool queue_reports = false;
    // It reads REPAIR entries in BATCH frames (wire.md §4.3, §14.4).
    bool repair_batch = false;
};

// True for an IPv4 or IPv6 address literal (no brackets, no name, no port): what a HELLO's
// `host` and a discovery record's address must be before they become an endpoint.
bool is_ip_literal(std::string_view host);

void encode_hello(const Hello& hello, msgpack::sbuffer& out);
// On failure returns the drop reason (Drop::hello_bad, Drop::hello_bad_host, Drop::hello_oversized,
// Drop::hello_missing_field).
std::optional<Drop> decode_hello(const void* data, std::size_t size, Hello& out);

std::string_view to_string(Kind kind) noexcept;

}  // namespace peermq::detail
