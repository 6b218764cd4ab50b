// Node keys: every node has a CURVE (X25519) key pair, and its node id is derived from the
// public half, so that no one can speak as a node without holding its secret key
// (docs/security.md). Keys are written as Z85 text (40 characters, the ZeroMQ encoding).
#pragma once

#include <string>
#include <string_view>

#include "peermq/status.hpp"
#include "peermq/uuid.hpp"

namespace peermq {

inline constexpr std::size_t kKeyTextSize = 40;  // a Z85 CURVE key

struct KeyPair {
    std::string public_key;  // Z85
    std::string secret_key;  // Z85: keep it secret
};

// A fresh key pair from the system's CSPRNG (libsodium, through libzmq).
Result<KeyPair> generate_key_pair();

// The public half of a Z85 secret key; invalid_argument when `secret_key` is not one.
Result<std::string> public_key_of(std::string_view secret_key);

// The node id a Z85 public key gives: its first 16 bytes as a UUIDv8. invalid_argument when
// `public_key` is not a Z85 key.
Result<NodeId> node_id_of(std::string_view public_key);

// "tcp://host:port#KEY" (or "host:port#KEY"): an inbox endpoint with the node's public key,
// the form static peers take (NodeOptions::peers, PEERMQ_PEERS, --peer).
std::string peer_address(std::string_view inbox_endpoint, std::string_view public_key);

}  // namespace peermq
