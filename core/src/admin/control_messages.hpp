// The control protocol's messages (docs/spec/control.md §4-5), each described once, as a table:
// the bodies of the replies (NodeStats, ChannelStats, PeerInfo, DeadLetter: maps keyed by field
// name), the dead-letter filter, and one row per verb giving its request's arguments and its
// reply's body. admin/control_codec.cpp derives both directions from these tables; NodeStats
// and ChannelStats come from the stats field table (observability/stats_fields.hpp), so a stats
// field is on the wire as soon as it is in that table. Constant data; safe from any thread.
//
// The order of a table is the order of the keys on the wire; it must not change (the tests
// compare the bytes with vectors captured from an earlier codec: control_golden_test.cpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "admin/control_codec.hpp"
#include "observability/stats_fields.hpp"
#include "wire/msgpack_table.hpp"

namespace peermq::detail::control {

inline constexpr std::size_t kMaxChannelName = 255;
// The lists of a stats or peers reply stop before the reply would pass kMaxReplyBytes, less
// room for the fields written after them: the omitted counts, and the key and header of
// `dead_letters`, whose own entries stop at kMaxReplyBytes (section 5.4).
inline constexpr std::size_t kReplyTail = 128;
inline constexpr std::size_t kReplyListBytes = kMaxReplyBytes - kReplyTail;
// A stats reply's `dead_letters`: at most this many queues, and reasons of each (section 5.4).
inline constexpr std::size_t kMaxReplyDeadLetterQueues = kMaxReplyChannels;
inline constexpr std::size_t kMaxReplyDeadLetterReasons = 16;

using Uint = UnsignedCodec<std::uint64_t>;

// --- Codecs of the control protocol's own types ---------------------------------------------

// A peer state by its name: connecting, alive, suspect or down.
struct PeerStateCodec {
    using value_type = PeerState;
    static void pack(MsgpackWriter& w, PeerState state) { pack_str(w.pk, to_string(state)); }
    static bool read(MsgpackReader&, const msgpack::object& o, PeerState& out) {
        std::string name;
        if (!read_str(o, name, kUnbounded)) return false;
        for (PeerState state :
             {PeerState::connecting, PeerState::alive, PeerState::suspect, PeerState::down}) {
            if (to_string(state) == name) {
                out = state;
                return true;
            }
        }
        return false;
    }
};

struct PayloadCodec {
    using value_type = Payload;
    static void pack(MsgpackWriter& w, const Payload& p) { pack_bin(w.pk, p.data(), p.size()); }
    static bool read(MsgpackReader&, const msgpack::object& o, Payload& out) {
        if (o.type != msgpack::type::BIN) return false;
        out = Payload::copy_of(o.via.bin.ptr, o.via.bin.size);
        return true;
    }
};

// The latency buckets: at most as many as LatencyHistogram has; missing ones are 0.
struct BucketsCodec {
    using value_type = decltype(LatencyHistogram::buckets);
    static void pack(MsgpackWriter& w, const value_type& buckets) {
        w.pk.pack_array(static_cast<std::uint32_t>(buckets.size()));
        for (std::uint64_t bucket : buckets) w.pk.pack_uint64(bucket);
    }
    static bool read(MsgpackReader&, const msgpack::object& o, value_type& out) {
        if (o.type != msgpack::type::ARRAY || o.via.array.size > out.size()) return false;
        out.fill(0);
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            if (!read_uint(o.via.array.ptr[i], out[i])) return false;
        }
        return true;
    }
};

using Counters = TextMapCodec<std::map<std::string, std::uint64_t>, Uint>;

// --- Reply bodies (section 5) ---------------------------------------------------------------

inline constexpr auto kHistogram =
    map_table<LatencyHistogram>({.what = "histogram", .prefix = "histogram."},
                                map_field<BucketsCodec>("buckets", &LatencyHistogram::buckets),
                                map_field<Uint>("count", &LatencyHistogram::count),
                                map_field<Uint>("sum_us", &LatencyHistogram::sum_us));

// The codec of each type of value a stats field holds.
template <typename Value>
struct StatsCodec;
template <>
struct StatsCodec<std::uint64_t> : std::type_identity<Uint> {};
template <>
struct StatsCodec<Uuid> : std::type_identity<IdCodec> {};
template <>
struct StatsCodec<std::string> : std::type_identity<TextCodec<>> {};
template <>
struct StatsCodec<std::map<std::string, std::uint64_t>> : std::type_identity<Counters> {};
template <>
struct StatsCodec<LatencyHistogram> : std::type_identity<MessageCodec<kHistogram>> {};

// The map of a stats table's fields, keyed by their names, in the table's order.
template <typename Owner, typename... Fields>
constexpr auto stats_message(MapRules rules, const std::tuple<Fields...>& fields) {
    return std::apply(
        [&](const auto&... f) {
            return map_table<Owner>(
                rules, map_field<typename StatsCodec<typename Fields::value_type>::type>(
                           f.name, f.member, {}, f.omitted_in)...);
        },
        fields);
}

inline constexpr auto kChannelStats =
    stats_message<ChannelStats>({.what = "channel stats"}, kChannelStatsFields);

// At most kMaxReplyNamesPerPeer of a peer's queues, and of its topics (section 5.4).
using PeerNames = ListCodec<TextCodec<>, kMaxReplyNamesPerPeer>;

// clang-format off
inline constexpr auto kPeerInfo = map_table<PeerInfo>(
    {.what = "peer", .prefix = "peer."},
    map_field<IdCodec>       ("id",              &PeerInfo::id),
    map_field<TextCodec<>>   ("name",            &PeerInfo::name),
    map_field<TextCodec<>>   ("cluster",         &PeerInfo::cluster),
    map_field<PeerStateCodec>("state",           &PeerInfo::state),
    map_field<TextCodec<>>   ("inbox_endpoint",  &PeerInfo::inbox_endpoint),
    map_field<TextCodec<>>   ("pub_endpoint",    &PeerInfo::pub_endpoint),
    map_field<PeerNames>     ("queues",          &PeerInfo::queues, {}, &PeerInfo::queues_omitted),
    map_field<PeerNames>     ("topics",          &PeerInfo::topics, {}, &PeerInfo::topics_omitted),
    map_field<SignedCodec>   ("last_heard_ms",   &PeerInfo::last_heard_ms),
    map_field<Uint>          ("frames_sent",     &PeerInfo::frames_sent),
    map_field<Uint>          ("frames_received", &PeerInfo::frames_received),
    map_field<Uint>          ("queues_omitted",  &PeerInfo::queues_omitted),
    map_field<Uint>          ("topics_omitted",  &PeerInfo::topics_omitted));
// clang-format on

// The peers of a stats or peers reply, and the node's queues and topics: as many as the
// bounds of section 5.4 let in.
using PeerList = ListCodec<MessageCodec<kPeerInfo>, kMaxReplyPeers, kReplyListBytes>;
using ChannelMap = TextMapCodec<std::map<std::string, ChannelStats>, MessageCodec<kChannelStats>,
                                kMaxReplyChannels, kReplyListBytes>;

template <>
struct StatsCodec<std::vector<PeerInfo>> : std::type_identity<PeerList> {};
template <>
struct StatsCodec<std::map<std::string, ChannelStats>> : std::type_identity<ChannelMap> {};

// NodeStats::dead_letters, the letters in the node's dead-letter store by queue and reason: a map
// of maps, which the stats field table has no kind for, so it is added here, after every field
// of the table (a later revision's key: the keys before it keep their bytes, section 5.1).
using DeadLetterReasons =
    TextMapCodec<std::map<std::string, std::uint64_t>, Uint, kMaxReplyDeadLetterReasons>;
using DeadLetterCountMap =
    TextMapCodec<std::map<std::string, std::map<std::string, std::uint64_t>>, DeadLetterReasons,
                 kMaxReplyDeadLetterQueues, kMaxReplyBytes>;

template <>
struct StatsCodec<std::map<std::string, std::map<std::string, std::uint64_t>>>
    : std::type_identity<DeadLetterCountMap> {};

inline constexpr auto kNodeStatsWireFields = std::tuple_cat(
    kNodeStatsFields, std::tuple{stats_field(&NodeStats::dead_letters,
                                             {.name = "dead_letters", .kind = StatsKind::gauge})});

inline constexpr auto kNodeStats =
    stats_message<NodeStats>({.what = "stats"}, kNodeStatsWireFields);

using HeaderMap = TextMapCodec<Headers, TextCodec<>>;

// clang-format off
inline constexpr auto kDeadLetter = map_table<DeadLetter>(
    {.what = "dead letter", .prefix = "dead letter "},
    map_field<IdCodec>                     ("id",               &DeadLetter::id),
    map_field<TextCodec<>>                 ("queue",            &DeadLetter::queue),
    map_field<HeaderMap>                   ("headers",          &DeadLetter::headers),
    map_field<PayloadCodec>                ("payload",          &DeadLetter::payload),
    map_field<TextCodec<>>                 ("reason",           &DeadLetter::reason),
    map_field<UnsignedCodec<std::uint32_t>>("attempts",         &DeadLetter::attempts),
    map_field<TextCodec<>>                 ("last_error",       &DeadLetter::last_error),
    map_field<SignedCodec>                 ("created_ms",       &DeadLetter::created_ms),
    map_field<SignedCodec>                 ("first_failure_ms", &DeadLetter::first_failure_ms),
    map_field<SignedCodec>                 ("last_failure_ms",  &DeadLetter::last_failure_ms));
// clang-format on

// --- Requests (section 4) -------------------------------------------------------------------

// The filter of dlq.list and dlq.purge: only the conditions it has are written; a key the node
// does not know is refused, never ignored (a key that narrows a purge).
// clang-format off
inline constexpr auto kDeadLetterFilter = map_table<DeadLetterFilter>(
    {.what = "the filter must be a map",
     .unknown_key = "unknown filter key",
     .not_text_key = "a filter key must be a string"},
    map_field<OptionalCodec<IdCodec>>(
        "id", &DeadLetterFilter::id, "filter id must be 16 bytes of binary"),
    map_field<OptionalCodec<TextCodec<kMaxChannelName>>>(
        "queue", &DeadLetterFilter::queue, "filter queue must be a string of at most 255 bytes"),
    map_field<OptionalCodec<TextCodec<kMaxControlStringBytes>>>(
        "reason", &DeadLetterFilter::reason, "filter reason must be a string"),
    map_field<OptionalCodec<SignedCodec>>(
        "since_ms", &DeadLetterFilter::since_ms, "filter since_ms must be an integer (Unix ms)"),
    map_field<OptionalCodec<SignedCodec>>(
        "until_ms", &DeadLetterFilter::until_ms, "filter until_ms must be an integer (Unix ms)"),
    map_field<NonZeroCodec<UnsignedCodec<std::size_t>>>(
        "limit", &DeadLetterFilter::limit, "filter limit must be an unsigned integer"));
// clang-format on

enum class Presence {
    required,
    optional,         // absent = the member's default
    optional_or_nil,  // absent or nil = the member's default
};

// Argument i of a verb: element 2 + i of the request array; always written.
template <typename Request, typename Codec>
struct RequestArg {
    using codec = Codec;
    typename Codec::value_type Request::*member;
    Presence presence;
    std::string_view missing = {};  // after the verb, when a required argument is absent
    std::string_view bad = {};      // after the verb, when it is malformed ("" = ": " + why)
};

template <typename Codec, typename Request>
constexpr RequestArg<Request, Codec> request_arg(typename Codec::value_type Request::*member,
                                                 Presence presence, std::string_view missing = {},
                                                 std::string_view bad = {}) {
    return {member, presence, missing, bad};
}

// A verb: its request's arguments, and the body of its ok reply (`body_what` names a body
// that is not one, in the client's error).
template <typename Request, typename Body, typename... Args>
struct Verb {
    using request_type = Request;
    using body_codec = Body;
    std::string_view name;
    std::string_view body_what;
    std::tuple<Args...> args;
};

template <typename Request, typename Body, typename... Args>
constexpr Verb<Request, Body, Args...> verb(std::string_view name, std::string_view body_what,
                                            Args... args) {
    return {name, body_what, {args...}};
}

inline constexpr std::string_view kNeedsId = " needs a message id (bin 16)";

// clang-format off
inline constexpr auto kVerbs = std::tuple{
    verb<StatsRequest, MessageCodec<kNodeStats>>("stats", "stats"),
    verb<PeersRequest, PeerList>("peers", "peers"),
    verb<DeadLetterListRequest, ListCodec<MessageCodec<kDeadLetter>>>(
        "dlq.list", "dead letters",
        request_arg<MessageCodec<kDeadLetterFilter>>(
            &DeadLetterListRequest::filter, Presence::optional)),
    verb<DeadLetterGetRequest, MessageCodec<kDeadLetter>>(
        "dlq.get", "dead letter",
        request_arg<IdCodec>(
            &DeadLetterGetRequest::id, Presence::required, kNeedsId, kNeedsId)),
    verb<DeadLetterPurgeRequest, Uint>(
        "dlq.purge", "count",
        request_arg<MessageCodec<kDeadLetterFilter>>(
            &DeadLetterPurgeRequest::filter, Presence::required,
            " needs a filter ({} = everything)")),
    verb<DeadLetterReplayRequest, IdCodec>(
        "dlq.replay", "message id",
        request_arg<IdCodec>(
            &DeadLetterReplayRequest::id, Presence::required, kNeedsId, kNeedsId),
        request_arg<TextCodec<kMaxChannelName>>(
            &DeadLetterReplayRequest::queue, Presence::optional_or_nil, {},
            ": the queue must be a string of at most 255 bytes")),
};
// clang-format on

}  // namespace peermq::detail::control
