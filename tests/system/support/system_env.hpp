// Where the system tests find their scripts, and the facts about the host they check: the
// avahi-daemon started by scripts/avahi-lo.sh, the lab of scripts/lab.sh, mDNS group
// membership, records published and browsed with the avahi tools.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peermq/discovery.hpp"
#include "support/process.hpp"

namespace peermq::testing {

// How long a system test waits for discovery to find (or lose) a peer.
inline constexpr std::chrono::seconds kFindTimeout{20};
// Environment entries for the processes a test starts: no static peers from PEERMQ_PEERS
// (discovery is all they have); a system D-Bus that does not exist (no avahi-daemon answers).
inline const std::string kNoStaticPeers = "PEERMQ_PEERS=";
inline const std::string kNoBus = "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/peermq-no-bus";

std::string source_dir();       // the peermq source tree
std::string avahi_lo_script();  // scripts/avahi-lo.sh
std::string lab_script();       // scripts/lab.sh
std::string avahi_state_dir();  // $PEERMQ_AVAHI_STATE or /tmp/peermq-avahi

// Whether scripts/lab.sh has its `hosts` hosts up (`lab.sh status`).
bool lab_is_up(int hosts = 3);

// The avahi-daemon PID recorded by avahi-lo.sh, when that process still runs avahi-daemon.
std::optional<int> our_avahi_daemon_pid();

// Interfaces on which 224.0.0.251 (mDNS) is joined in this network namespace (/proc/net/igmp).
std::vector<std::string> mdns_group_interfaces();

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

// avahi-publish -s NAME _peermq._tcp PORT TXT... (a record by hand, through the avahi-daemon);
// waits until the daemon established it (a test failure when it did not).
std::unique_ptr<ChildProcess> publish_by_hand(const std::string& name, std::uint16_t port,
                                              const std::vector<std::string>& txt);

// Runs `avahi-browse -rpt <type>` (against the system bus) and parses the resolved ("=") lines.
std::vector<BrowseEntry> avahi_browse(const std::string& type);

// Decodes avahi-browse's -p escapes ("\032" = space, "\." = '.').
std::string unescape_browse_field(const std::string& text);

}  // namespace peermq::testing
