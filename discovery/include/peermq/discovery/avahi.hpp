// DNS-SD discovery through Avahi: the avahi-daemon client (D-Bus), the embedded in-process mDNS
// stack (libavahi-core), and `automatic`, which picks one of the two.
//
// Each factory returns a peermq::DiscoveryFactory; calling it builds one Discovery object that the
// node owns. Every backend runs its own thread (an AvahiThreadedPoll) and delivers events on it.
// Records follow docs/spec/discovery.md: `_peermq._tcp`, instance `<name>-<short id>`, port = inbox
// port, TXT `v`, `id`, `pub`, `cluster`. Only records of the node's own cluster are reported; a
// node never reports itself; malformed records are counted in Discovery::ignored().
#pragma once

#include <string>
#include <vector>

#include "peermq/discovery.hpp"

namespace peermq::discovery {

struct AvahiOptions {
    // Interface allow-list by name, e.g. {"lo"}. Required by the embedded stack (it refuses to
    // start without one, so that it never talks mDNS on every interface). For the daemon client
    // it selects where the node is announced and whose results are accepted (empty = all).
    std::vector<std::string> interfaces;
    // false: IPv4 only (records are browsed and resolved with AVAHI_PROTO_INET).
    bool ipv6 = false;
    std::string service_type = "_peermq._tcp";
};

// Discovery through a running avahi-daemon, over the D-Bus system bus. Calling the factory fails
// with ErrorCode::unavailable when the daemon does not answer; once started, the backend survives
// a restart of the daemon (it reconnects, announces itself again and browses again).
peermq::DiscoveryFactory avahi_daemon(AvahiOptions options);

// Discovery through Avahi's embedded mDNS stack, inside this process: no daemon, no D-Bus. Needs
// an interface allow-list (invalid_argument otherwise). Coexists with an avahi-daemon and other
// embedded stacks on the same host.
peermq::DiscoveryFactory embedded(AvahiOptions options);

// avahi_daemon() when the daemon answers, else embedded(). Logs one record at info (component
// "discovery", through peermq::process_logger(), so visible with PEERMQ_LOG=info) saying which
// backend was chosen and why.
peermq::DiscoveryFactory automatic(AvahiOptions options);

}  // namespace peermq::discovery
