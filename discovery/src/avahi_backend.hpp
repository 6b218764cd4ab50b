// AvahiBackend: what the two Avahi backends (avahi_daemon_discovery.cpp, embedded_discovery.cpp)
// are made of besides their own Avahi objects: the options, the relay to the node, the poll
// thread their callbacks run on, what they announce, and when they run. A backend derives from
// it, adds its client or server, entry group and ServiceBrowser, and says in teardown() how they
// are freed. Its destructor calls stop() itself (a base destructor cannot reach teardown()).
//
// Thread-safety: start() and stop() are called by one thread at a time (the node's); ignored()
// by any thread; the rest runs on the poll thread, or before it starts.
#pragma once

#include <avahi-common/address.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "avahi_common.hpp"

namespace peermq::detail {

class AvahiBackend : public Discovery {
public:
    AvahiBackend(const AvahiBackend&) = delete;
    AvahiBackend& operator=(const AvahiBackend&) = delete;

    // Runs teardown() where no callback runs beside it, then stops the poll thread: no event
    // comes after this returns. Once; nothing before start().
    void stop() final;

    std::map<std::string, std::uint64_t> ignored() const final { return relay_.ignored(); }
    // The allow-list when there is one; else (a daemon serving all its interfaces) those on which
    // this host's mDNS group is joined: the daemon's.
    std::vector<std::string> interfaces() const final;
    void set_heard_from(HeardFrom heard_from) final { heard_from_ = std::move(heard_from); }

protected:
    explicit AvahiBackend(discovery::AvahiOptions options);
    ~AvahiBackend() override = default;

    // The part of start() both backends share: checks that the allowed interfaces exist and that
    // `self` can be announced, then routes events to `sink`. The interfaces' indexes.
    Result<std::vector<int>> begin(const ServiceRecord& self, DiscoverySink sink);

    // Frees the backend's Avahi objects; called once, by stop(), with the poll lock held.
    virtual void teardown() = 0;

    // Before `browser` starts: the records of peers whose id ends above ours are theirs to
    // resolve (docs/spec/discovery.md §6.1), when this node is announced (so that they can
    // greet it) and the node says whom it hears from.
    template <typename Browser>
    void share_resolves(Browser& browser) {
        if (announcement_.enabled && heard_from_) {
            browser.share_resolves(poll_.api(), announcement_.self.id.short_string(), heard_from_);
        }
    }

    const discovery::AvahiOptions options_;
    // AVAHI_PROTO_INET, or AVAHI_PROTO_UNSPEC with options_.ipv6.
    const AvahiProtocol protocol_;
    EventRelay relay_;
    PollThread poll_;  // destroyed after the derived backend's objects
    Announcement announcement_;
    HeardFrom heard_from_;  // set_heard_from(); empty: every record is resolved
    bool started_ = false;
    bool stopping_ = false;
};

}  // namespace peermq::detail
