// Where the system tests find their tools, and the facts about the host they check: the
// avahi-daemon started by scripts/avahi-lo.sh, mDNS group membership, avahi-browse output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peermq/discovery.hpp"

namespace peermq::test {

std::string source_dir();       // the peermq source tree
std::string probe_path();       // peermq_discovery_probe
std::string avahi_lo_script();  // scripts/avahi-lo.sh
std::string avahi_state_dir();  // $PEERMQ_AVAHI_STATE or /tmp/peermq-avahi

// The avahi-daemon PID recorded by avahi-lo.sh, when that process still runs avahi-daemon.
std::optional<int> our_avahi_daemon_pid();

// Interfaces on which 224.0.0.251 (mDNS) is joined in this network namespace (/proc/net/igmp).
std::vector<std::string> mdns_group_interfaces();

// A short random token ("k3f9q2"): test clusters and names, so that leftovers of other runs are
// never mistaken for this test's records.
std::string unique_token();

// A record for a node that has bound nothing: ports are only announced.
ServiceRecord make_self(const std::string& name, const std::string& cluster,
                        std::uint16_t inbox_port, std::uint16_t pub_port);

// One resolved line of `avahi-browse -rpt`.
struct BrowseEntry {
    std::string interface;
    std::string protocol;
    std::string name;  // unescaped
    std::string type;
    std::string host;
    std::string address;
    std::uint16_t port = 0;
    std::vector<std::string> txt;  // unquoted
};

// Runs `avahi-browse -rpt <type>` (against the system bus) and parses the resolved ("=") lines.
std::vector<BrowseEntry> avahi_browse(const std::string& type);

// Decodes avahi-browse's -p escapes ("\032" = space, "\." = '.').
std::string unescape_browse_field(const std::string& text);

}  // namespace peermq::test
