// A node's identity: its CURVE key pair, the node id derived from it, and its incarnation (how
// many times a node with this key has started), resolved at start from NodeOptions::secret_key,
// PEERMQ_SECRET_KEY, the data directory's key file, or made up for this run.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "peermq/status.hpp"
#include "peermq/uuid.hpp"

namespace peermq::detail {

using CurveKey = std::array<std::uint8_t, 32>;

// "ENDPOINT#KEY" split at the '#' before its last 40 characters (a Z85 key may itself hold '#'
// and ':', so the key is found by its length, never by searching); `key` is empty when the text
// does not end so, and `endpoint` is then the whole text.
struct KeySuffix {
    std::string_view endpoint;
    std::string_view key;
};
KeySuffix split_key_suffix(std::string_view text);

// Z85 text (40 characters) to the key's 32 bytes; nullopt for anything else.
std::optional<CurveKey> decode_key(std::string_view text);
std::string encode_key(const CurveKey& key);
// The id a public key gives: its first 16 bytes, with the UUID version 8 and RFC 9562 variant
// bits set (122 bits of the key remain: claiming an id means finding a key that matches them).
NodeId node_id_of(const CurveKey& public_key);

inline constexpr const char* kKeyFileName = "node.key";
inline constexpr const char* kIncarnationFileName = "incarnation";

struct NodeIdentity {
    std::string public_key;  // Z85
    std::string secret_key;  // Z85
    NodeId id;
    // Grows at every start of a node with this key: peers tell a restart from a stale HELLO.
    std::uint64_t incarnation = 0;
    // Where the key came from: "option", "environment", "data_dir", "ephemeral".
    std::string source;
};

// The key by NodeOptions::secret_key (`configured`, if not empty), else PEERMQ_SECRET_KEY, else
// the data directory's key file (created 0600 at the first start; one readable by others is
// refused), else a fresh ephemeral key. The incarnation is kept in the data directory when
// there is one (at least `unix_ms`, so that a lost counter never goes back), else `unix_ms`.
Result<NodeIdentity> resolve_identity(const std::string& configured, const std::string& data_dir,
                                      std::int64_t unix_ms);

// Reads (or, when `create`, makes) the key file of `data_dir`.
Result<NodeIdentity> read_key_file(const std::string& data_dir, bool create);

}  // namespace peermq::detail
