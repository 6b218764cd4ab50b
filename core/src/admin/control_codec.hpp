// The control protocol codec (docs/spec/control.md): requests and replies of a node's control
// endpoint, each one MessagePack frame. Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "peermq/dead_letters.hpp"
#include "peermq/stats.hpp"
#include "peermq/status.hpp"

namespace peermq::detail {

inline constexpr std::uint32_t kControlVersion = 1;
// The largest request a node reads (the server socket's ZMQ_MAXMSGSIZE).
inline constexpr std::size_t kMaxControlRequestBytes = 65536;
inline constexpr std::size_t kMaxControlStringBytes = 16384;
// What one `stats` or `peers` reply lists at most (docs/spec/control.md §5.5); the rest is
// counted in the `*_omitted` fields, so the reply stays small and quick to build and read
// however many peers the node knows and whatever they announce.
inline constexpr std::size_t kMaxReplyPeers = 256;
inline constexpr std::size_t kMaxReplyNamesPerPeer = 64;  // of a peer's queues, and its topics
inline constexpr std::size_t kMaxReplyChannels = 1024;    // of the node's queues, and its topics
// Listing stops before a reply would pass this size.
inline constexpr std::size_t kMaxReplyBytes = 1 << 20;

struct StatsRequest {};
struct PeersRequest {};
struct DeadLetterListRequest {
    DeadLetterFilter filter;
};
struct DeadLetterGetRequest {
    MessageId id;
};
struct DeadLetterPurgeRequest {
    DeadLetterFilter filter;
};
struct DeadLetterReplayRequest {
    MessageId id;
    std::string queue;  // empty = the dead letter's own queue
};
using ControlRequest =
    std::variant<StatsRequest, PeersRequest, DeadLetterListRequest, DeadLetterGetRequest,
                 DeadLetterPurgeRequest, DeadLetterReplayRequest>;

// Why a request was refused: the counter it goes under ("control.garbage",
// "control.bad_version", "control.unknown_verb", "control.bad_request") and the text of the
// error reply.
struct ControlRequestError {
    std::string_view reason;
    std::string message;
};

void encode_request(const ControlRequest& request, msgpack::sbuffer& out);
// On failure returns why and leaves `out` unspecified.
std::optional<ControlRequestError> decode_request(const void* data, std::size_t size,
                                                  ControlRequest& out);

// The body of an ok reply, one alternative per verb: stats, peers, dlq.list, dlq.get,
// dlq.purge (how many), dlq.replay (the new id).
using ControlReplyBody = std::variant<NodeStats, std::vector<PeerInfo>, std::vector<DeadLetter>,
                                      DeadLetter, std::uint64_t, MessageId>;

// A stats or peers body is bounded as the constants above say, in time and bytes proportional
// to what it lists.
void encode_ok_reply(const ControlReplyBody& body, msgpack::sbuffer& out);
// `status` must not be ok.
void encode_error_reply(const Status& status, msgpack::sbuffer& out);

// The client's side. An error reply becomes its Status (an unknown code name: protocol_error
// with the name in the message); a reply that is not a well-formed ok reply of the expected
// body is protocol_error.
Result<NodeStats> decode_stats_reply(const void* data, std::size_t size);
Result<std::vector<PeerInfo>> decode_peers_reply(const void* data, std::size_t size);
Result<std::vector<DeadLetter>> decode_dead_letters_reply(const void* data, std::size_t size);
Result<DeadLetter> decode_dead_letter_reply(const void* data, std::size_t size);
Result<std::uint64_t> decode_count_reply(const void* data, std::size_t size);
Result<MessageId> decode_id_reply(const void* data, std::size_t size);

// "invalid_argument" -> ErrorCode::invalid_argument; nullopt for an unknown name.
std::optional<ErrorCode> error_code_from_name(std::string_view name);

}  // namespace peermq::detail
