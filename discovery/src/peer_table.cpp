#include "peer_table.hpp"

#include <variant>

#include "txt_record.hpp"

namespace peermq::detail {
namespace {

// The fields a node connects with: a change of any of them is an `updated` event.
bool same_endpoints(const ServiceRecord& a, const ServiceRecord& b) {
    return a.host == b.host && a.inbox_port == b.inbox_port && a.pub_port == b.pub_port;
}

}  // namespace

PeerTable::PeerTable(NodeId self, std::string cluster)
    : self_(self), cluster_(std::move(cluster)) {}

void PeerTable::count(std::string_view reason) { ++ignored_[std::string(reason)]; }

std::vector<DiscoveryEvent> PeerTable::resolved(const InstanceKey& key,
                                                const Resolution& resolution) {
    std::vector<DiscoveryEvent> events;
    const auto parsed = parse_txt(resolution.txt);
    const TxtRecord* txt = std::get_if<TxtRecord>(&parsed);
    std::string_view rejection;
    if (txt == nullptr) {
        rejection = reason(std::get<TxtProblem>(parsed));
    } else if (resolution.port == 0) {
        rejection = "txt.bad_port";  // the SRV port is the inbox port
    } else if (txt->cluster != cluster_) {
        rejection = "txt.other_cluster";
    } else if (is_loopback_literal(resolution.host) && resolution.interface_name != "lo") {
        // A loopback address is only reachable when the record was found on lo itself.
        rejection = "addr.loopback_not_on_lo";
    }
    if (!rejection.empty() || txt->id == self_) {
        if (!rejection.empty()) count(rejection);
        // The instance may have been valid before (its TXT changed): it no longer is.
        drop_instance(key, events);
        return events;
    }

    ServiceRecord record;
    record.id = txt->id;
    record.name = node_name_from_instance(key.name, txt->id);
    record.cluster = txt->cluster;
    record.protocol_version = txt->version;
    record.host = resolution.host;
    record.inbox_port = resolution.port;
    record.pub_port = txt->pub_port;
    record.public_key = txt->public_key;
    record.interface = resolution.interface_name;
    record.instance = key.name;

    // The same instance name now announcing another node id: the old node lost this instance.
    if (auto it = instances_.find(key); it != instances_.end() && it->second.record.id != txt->id) {
        drop_instance(key, events);
    }
    instances_[key] = Instance{record, false};

    auto peer = peers_.find(record.id);
    if (peer == peers_.end()) {
        peers_.emplace(record.id, Peer{record, key});
        events.push_back({DiscoveryEvent::Kind::found, record});
    } else if (peer->second.source == key) {
        const bool changed = !same_endpoints(peer->second.reported, record);
        peer->second.reported = record;
        if (changed) events.push_back({DiscoveryEvent::Kind::updated, record});
    }
    // Another instance of a known peer: kept as a fallback, nothing to report.
    return events;
}

std::vector<DiscoveryEvent> PeerTable::removed(const InstanceKey& key) {
    std::vector<DiscoveryEvent> events;
    drop_instance(key, events);
    return events;
}

void PeerTable::drop_instance(const InstanceKey& key, std::vector<DiscoveryEvent>& events) {
    auto it = instances_.find(key);
    if (it == instances_.end()) return;
    const NodeId id = it->second.record.id;
    instances_.erase(it);

    auto peer = peers_.find(id);
    if (peer == peers_.end() || peer->second.source != key) return;

    // Prefer a fresh instance over one waiting to be confirmed after a reconnect.
    const Instance* replacement = nullptr;
    const InstanceKey* replacement_key = nullptr;
    for (const auto& [other_key, other] : instances_) {
        if (other.record.id != id) continue;
        if (replacement == nullptr || (replacement->stale && !other.stale)) {
            replacement = &other;
            replacement_key = &other_key;
        }
    }
    if (replacement == nullptr) {
        events.push_back({DiscoveryEvent::Kind::lost, peer->second.reported});
        peers_.erase(peer);
        return;
    }
    const bool changed = !same_endpoints(peer->second.reported, replacement->record);
    peer->second.reported = replacement->record;
    peer->second.source = *replacement_key;
    if (changed) events.push_back({DiscoveryEvent::Kind::updated, replacement->record});
}

void PeerTable::begin_resync() {
    for (auto& [key, instance] : instances_) instance.stale = true;
}

std::vector<DiscoveryEvent> PeerTable::end_resync() {
    std::vector<InstanceKey> stale;
    for (const auto& [key, instance] : instances_) {
        if (instance.stale) stale.push_back(key);
    }
    std::vector<DiscoveryEvent> events;
    for (const auto& key : stale) drop_instance(key, events);
    return events;
}

}  // namespace peermq::detail
