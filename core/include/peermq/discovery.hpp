// Discovery: how a node finds peers. The node announces itself and is told of peers found,
// updated and lost; it never judges liveness from discovery (heartbeats do that).
//
// Backends: static (this module), and in peermq::discovery the Avahi daemon client, the embedded
// Avahi stack, and `automatic`. A backend delivers events on a thread of its own through the sink
// given to start(); the sink is thread-safe and does not block. start() and stop() are called
// from one thread (the node's); stop() returns after the last event was delivered.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "peermq/status.hpp"
#include "peermq/uuid.hpp"

namespace peermq {

// A node as announced on the network. A record found by endpoint only (static backend) has a nil
// id: the node learns the id from that peer's HELLO.
struct ServiceRecord {
    NodeId id;
    std::string name;
    std::string cluster;
    std::uint32_t protocol_version = 1;
    std::string host;  // IPv4/IPv6 literal or host name to connect to
    std::uint16_t inbox_port = 0;
    std::uint16_t pub_port = 0;  // 0 = unknown until HELLO
    std::string interface;       // interface it was found on, when known
    std::string instance;        // DNS-SD instance name, when found by DNS-SD
    std::string public_key;      // CURVE public key (Z85) the id derives from; empty: unknown
};

struct DiscoveryEvent {
    enum class Kind { found, updated, lost };
    Kind kind = Kind::found;
    ServiceRecord record;
};

using DiscoverySink = std::function<void(DiscoveryEvent)>;

class Discovery {
public:
    virtual ~Discovery() = default;

    // "static", "avahi", "embedded".
    virtual std::string_view backend() const = 0;
    // Announce `self` (unless it has no inbox port) and start reporting peers to `sink`.
    virtual Status start(const ServiceRecord& self, DiscoverySink sink) = 0;
    virtual void stop() = 0;
    // Records seen and ignored, by reason ("txt.missing_id", "txt.bad_port", ...).
    virtual std::map<std::string, std::uint64_t> ignored() const { return {}; }
    // The interfaces it announces and browses on, by name; empty when it cannot tell. Asked
    // before start(): a node whose NodeOptions::interface is "" listens on these.
    virtual std::vector<std::string> interfaces() const { return {}; }

    // Whether the node hears from the node whose id ends in `short_id` (the last 8 hex digits of
    // its id, as DNS-SD instance names carry them): alive or suspect to it now. Thread-safe and
    // cheap; called on the backend's thread.
    using HeardFrom = std::function<bool(std::string_view short_id)>;
    // Given by the node before start(). A backend may leave a record unresolved while its node
    // is heard from: the Avahi backends resolve only the records of nodes whose id ends below
    // their own, and the others only when that node has not greeted them within a few seconds
    // (docs/spec/discovery.md §6.1). Without it, every record is resolved. The default ignores it.
    virtual void set_heard_from(HeardFrom /*heard_from*/) {}
};

using DiscoveryFactory = std::function<Result<std::unique_ptr<Discovery>>()>;

// Endpoints "host:port" or "tcp://host:port" (inbox ports); each is reported once as found.
Result<std::unique_ptr<Discovery>> make_static_discovery(std::vector<std::string> endpoints);

// Parses "host:port" or "tcp://host:port", each with an optional "#KEY" (a Z85 public key,
// which also gives the record's id); used for options, files and PEERMQ_PEERS.
Result<ServiceRecord> parse_endpoint(std::string_view endpoint);

}  // namespace peermq
