// PeerTable: turns DNS-SD browse/resolve results into the node's found/updated/lost events.
//
// A peer (one node id) may be seen as several DNS-SD instances: one per interface and protocol,
// or briefly two names after a rename. The table reports a peer as found when its first valid
// instance resolves, as updated when the instance it reports changes address or ports, and as
// lost when its last instance is gone. Records of another cluster, of this node itself, and
// malformed ones are dropped here (counted, except for this node's own record).
//
// Pure logic with no Avahi types, not thread-safe: each backend calls it from its poll thread and
// guards it with a mutex of its own so that ignored() can be read from the node's thread.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "peermq/discovery.hpp"

namespace peermq::detail {

// One browse result: (interface index, protocol, instance name) as Avahi reports it.
struct InstanceKey {
    int interface_index = -1;
    int protocol = -1;
    std::string name;

    friend auto operator<=>(const InstanceKey&, const InstanceKey&) = default;
    friend bool operator==(const InstanceKey&, const InstanceKey&) = default;
};

// What a resolver returned for one instance.
struct Resolution {
    std::string interface_name;    // "lo", "eth0"; empty when unknown
    std::string host;              // address literal ("127.0.0.1", "fe80::1%eth0")
    std::uint16_t port = 0;        // SRV port = the inbox port
    std::vector<std::string> txt;  // "key=value" strings
};

class PeerTable {
public:
    PeerTable(NodeId self, std::string cluster);

    // An instance resolved (for the first time or again with new data).
    std::vector<DiscoveryEvent> resolved(const InstanceKey& key, const Resolution& resolution);
    // An instance is gone (browser removal, or it can no longer be resolved).
    std::vector<DiscoveryEvent> removed(const InstanceKey& key);

    // After a reconnect to avahi-daemon every instance has to be seen again: begin_resync() marks
    // all of them stale, resolved() refreshes them, end_resync() removes those still stale.
    void begin_resync();
    std::vector<DiscoveryEvent> end_resync();

    const std::map<std::string, std::uint64_t>& ignored() const { return ignored_; }
    std::size_t peer_count() const { return peers_.size(); }

private:
    struct Instance {
        ServiceRecord record;
        bool stale = false;
    };
    struct Peer {
        ServiceRecord reported;  // the record last given to the node
        InstanceKey source;      // the instance `reported` came from
    };

    void count(std::string_view reason);
    // Drops `key`'s instance; reports the switch to another instance of its peer, or the loss.
    void drop_instance(const InstanceKey& key, std::vector<DiscoveryEvent>& events);

    NodeId self_;
    std::string cluster_;
    std::map<InstanceKey, Instance> instances_;  // valid instances only
    std::map<NodeId, Peer> peers_;
    std::map<std::string, std::uint64_t> ignored_;
};

}  // namespace peermq::detail
