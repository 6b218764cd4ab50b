// The DNS-SD record of a peermq node (docs/spec/discovery.md): the TXT keys it carries, how they
// are written and how a received TXT is validated. Pure functions, no Avahi types: unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "peermq/discovery.hpp"
#include "peermq/uuid.hpp"

namespace peermq::detail {

inline constexpr std::uint32_t kDiscoveryRecordVersion = 1;
// DNS labels (and so instance names) are at most 63 bytes.
inline constexpr std::size_t kMaxInstanceNameBytes = 63;

// The validated content of a peermq TXT record.
struct TxtRecord {
    std::uint32_t version = kDiscoveryRecordVersion;
    NodeId id;
    std::uint16_t pub_port = 0;
    std::string cluster;
    std::string public_key;  // `pk1`: the node's CURVE public key (Z85); empty when absent
};

// Why a TXT record was rejected. Checked in this order; the first problem found is reported.
enum class TxtProblem {
    bad_version,      // `v` missing, not a number, or not a version this code speaks
    missing_id,       // no `id` key, or `id` without a value
    bad_id,           // `id` is not a canonical UUID, or is the nil UUID
    bad_port,         // `pub` missing or not a port in 1..65535
    bad_key,          // `pk1` not a Z85 key, or not the key `id` derives from
    missing_cluster,  // no `cluster` key, or an empty cluster
};

// The counter name of a problem, as reported by Discovery::ignored(): "txt.bad_version", ...
std::string_view reason(TxtProblem problem) noexcept;

using TxtParseResult = std::variant<TxtRecord, TxtProblem>;

// Validates TXT strings ("key=value" each, as received). Keys are case-insensitive and only the
// first occurrence of a key counts (RFC 6763 §6.4); unknown keys are ignored.
TxtParseResult parse_txt(const std::vector<std::string>& entries);

// The TXT strings announcing `self`, in the order v, id, pub, cluster.
std::vector<std::string> format_txt(const ServiceRecord& self);

// "<name>-<short id>", cut to 63 bytes by shortening the name (never the id).
std::string instance_name(const ServiceRecord& self);

// The node name inside an instance name: the instance without its "-<short id>" suffix (also
// without a " #2"-style suffix added on a name collision); the whole instance otherwise.
std::string node_name_from_instance(std::string_view instance, const NodeId& id);

// The short id (last 8 hex digits of the node id) an instance name ends with, as instance_name()
// writes it (a " #2"-style collision suffix allowed); empty when it ends otherwise.
std::string_view short_id_of_instance(std::string_view instance) noexcept;

// Whether the node `self_short` may leave resolving `instance` to that instance's node: true when
// the instance's short id is above `self_short` (docs/spec/discovery.md §6.1). False for names
// without a short id, and for an equal one.
bool peer_resolves_first(std::string_view instance, std::string_view self_short) noexcept;

// True for 127.0.0.0/8, ::1 and ::ffff:127.x.x.x literals.
bool is_loopback_literal(std::string_view host) noexcept;

}  // namespace peermq::detail
