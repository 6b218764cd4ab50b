// ServiceBrowser: the browse/resolve half of both Avahi backends. It browses one DNS-SD service
// type, resolves each instance found once (or leaves it to its node: share_resolves), and turns
// what they report into PeerTable changes through the backend's EventRelay: resolved →
// PeerTable::resolved(); removed by the browser, or no longer resolvable → PeerTable::removed()
// (docs/spec/discovery.md §6). `Owner` is the root object of the backend's API, AvahiClient
// (avahi-daemon) or AvahiServer (embedded); the calls that differ between the two are overloads in
// avahi_calls.hpp.
//
// Thread-safety: like the backend's other Avahi objects, only the poll thread (or a holder of the
// poll lock, or anyone before the poll thread starts) touches it. It owns the browser and the
// resolvers but not the Owner: the backend calls stop() (or forget()) before it frees the Owner.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <avahi-common/timeval.h>

#include "avahi_calls.hpp"
#include "avahi_common.hpp"
#include "peer_table.hpp"
#include "txt_record.hpp"

namespace peermq::detail {

template <typename Owner>
class ServiceBrowser {
public:
    using Browser = typename AvahiObjects<Owner>::Browser;
    using Resolver = typename AvahiObjects<Owner>::Resolver;

    // `protocol`: AVAHI_PROTO_INET, or AVAHI_PROTO_UNSPEC with IPv6; also the address family asked
    // of the resolvers. `interfaces`: results from other interfaces are dropped (not counted);
    // empty: every interface.
    ServiceBrowser(EventRelay& relay, std::string service_type, AvahiProtocol protocol,
                   std::vector<std::string> interfaces)
        : relay_(relay),
          service_type_(std::move(service_type)),
          protocol_(protocol),
          interfaces_(std::move(interfaces)) {}

    ServiceBrowser(const ServiceBrowser&) = delete;
    ServiceBrowser& operator=(const ServiceBrowser&) = delete;

    bool browsing() const { return browser_ != nullptr; }

    // A pair of nodes needs one resolve, not two (docs/spec/discovery.md §6.1): once this is
    // called, an instance whose short id is above `self_short` is left to its node, which
    // resolves ours and greets us; it is resolved here only if that node is not heard from
    // (`heard_from`) kLeaveToPeer after it was found. `poll` runs the timer. Before start().
    void share_resolves(const AvahiPoll* poll, std::string self_short,
                        Discovery::HeardFrom heard_from) {
        poll_ = poll;
        self_short_ = std::move(self_short);
        heard_from_ = std::move(heard_from);
    }

    // Starts browsing through `owner`; nothing when it browses already. The callbacks may run
    // inside this call (avahi-core answers from its cache).
    Status start(Owner* owner) {
        if (browser_ != nullptr) return {};
        owner_ = owner;
        browser_ = new_browser(owner, protocol_, service_type_.c_str(), &browse_callback, this);
        if (browser_ == nullptr) {
            owner_ = nullptr;
            return make_error(ErrorCode::unavailable, "cannot browse " + service_type_ +
                                                          std::string(AvahiObjects<Owner>::kVia) +
                                                          ": " + last_error(owner));
        }
        start_lookup(browser_);
        return {};
    }

    // Frees the browser and every resolver and forgets the instances: no callback comes after.
    void stop() {
        for (auto& [key, instance] : instances_) {
            if (instance->resolver != nullptr) free_lookup(instance->resolver);
        }
        if (browser_ != nullptr) free_lookup(browser_);
        forget();
    }

    // Forgets the browser, resolvers and instances without freeing them: their Owner is about to
    // free every object of its own (avahi_client_free()).
    void forget() {
        instances_.clear();
        browser_ = nullptr;
        owner_ = nullptr;
        if (timer_ != nullptr) poll_->timeout_free(timer_);  // the poll's, not the Owner's
        timer_ = nullptr;
    }

    // How long an instance left to its node waits for that node's greeting. On a LAN the node
    // resolves and connects within milliseconds; 32 hosts sharing two cores took up to 3 s, and
    // a shorter wait there had the fallback's resolves add to the load it waited out.
    static constexpr std::chrono::seconds kLeaveToPeer{5};

private:
    // One browse result, and its resolver until that answers. A resolver left open keeps its
    // SRV, TXT and address queries going for as long as it lives: one per instance on every
    // node made the LAN's daemons answer N² queries, and 32 hosts took 10-12 s to see each
    // other (4-7 s with each resolver freed once it has answered; docs/spec/discovery.md §8).
    // A node that comes back on another port is learnt from its HELLO (a higher incarnation
    // moves its link) or from the browser reporting its instance anew.
    struct Instance {
        ServiceBrowser* browser = nullptr;
        InstanceKey key;
        std::string interface_name;
        std::string type;  // the browse result's, for the resolver
        std::string domain;
        Resolver* resolver = nullptr;
        // Left to its node (share_resolves) until then; resolved then if it is not heard from.
        std::optional<std::chrono::steady_clock::time_point> waiting_until;
    };

    bool interface_allowed(const std::string& name) const {
        return interfaces_.empty() ||
               std::find(interfaces_.begin(), interfaces_.end(), name) != interfaces_.end();
    }

    void found(InstanceKey key, const char* type, const char* domain) {
        std::string ifname = interface_name(key.interface_index);
        if (!interface_allowed(ifname)) return;
        if (instances_.contains(key)) return;
        auto owned = std::make_unique<Instance>();
        Instance& instance = *owned;
        instance.browser = this;
        instance.key = key;
        instance.interface_name = std::move(ifname);
        instance.type = type;
        instance.domain = domain;
        instances_.emplace(std::move(key), std::move(owned));
        if (heard_from_ && peer_resolves_first(instance.key.name, self_short_)) {
            instance.waiting_until = std::chrono::steady_clock::now() + kLeaveToPeer;
            if (timer_ == nullptr) arm_timer(kLeaveToPeer);
            return;
        }
        resolve(instance);
    }

    // Kept before started: with avahi-core the callback may fire from the cache inside
    // start_lookup(), and by then the resolver must be stored.
    void resolve(Instance& instance) {
        Resolver* resolver =
            new_resolver(owner_, instance.key, instance.type.c_str(), instance.domain.c_str(),
                         protocol_, &resolve_callback, &instance);
        if (resolver == nullptr) {
            log_line("cannot resolve '" + instance.key.name + "': " + last_error(owner_));
            // Not kept: the browser reporting it anew is another try.
            const InstanceKey key = instance.key;
            instances_.erase(key);
            return;
        }
        instance.resolver = resolver;
        start_lookup(resolver);
    }

    void arm_timer(std::chrono::steady_clock::duration delay) {
        timeval when{};
        avahi_elapse_time(
            &when,
            static_cast<unsigned>(std::chrono::ceil<std::chrono::milliseconds>(delay).count()), 0);
        if (timer_ == nullptr) {
            timer_ = poll_->timeout_new(poll_, &when, &timer_callback, this);
        } else {
            poll_->timeout_update(timer_, &when);
        }
    }

    // The instances whose wait is over: resolved, unless their node greeted us meanwhile (then
    // mDNS has nothing to add: the link is up).
    void check_waiting() {
        const auto now = std::chrono::steady_clock::now();
        std::optional<std::chrono::steady_clock::time_point> next;
        // Resolving may call back into instances_ (from the cache): the due ones first.
        std::vector<Instance*> due;
        for (auto& [key, instance] : instances_) {
            if (!instance->waiting_until) continue;
            if (*instance->waiting_until <= now) {
                instance->waiting_until.reset();
                if (!heard_from_(short_id_of_instance(key.name))) due.push_back(instance.get());
            } else if (!next || *instance->waiting_until < *next) {
                next = instance->waiting_until;
            }
        }
        if (next) {
            arm_timer(*next - now);
        } else {
            poll_->timeout_free(timer_);
            timer_ = nullptr;
        }
        for (Instance* instance : due) resolve(*instance);
    }

    static void timer_callback(AvahiTimeout* /*timeout*/, void* userdata) {
        auto* self = static_cast<ServiceBrowser*>(userdata);
        self->relay_.guard("resolve", [&] {
            if (self->owner_ == nullptr) return;  // stopped
            self->check_waiting();
        });
    }

    void removed(const InstanceKey& key) {
        auto it = instances_.find(key);
        if (it == instances_.end()) return;
        if (it->second->resolver != nullptr) free_lookup(it->second->resolver);
        instances_.erase(it);
        relay_.apply([&](PeerTable& table) { return table.removed(key); });
    }

    static void browse_callback(Browser* /*browser*/, AvahiIfIndex interface,
                                AvahiProtocol protocol, AvahiBrowserEvent event, const char* name,
                                const char* type, const char* domain,
                                AvahiLookupResultFlags /*flags*/, void* userdata) {
        auto* self = static_cast<ServiceBrowser*>(userdata);
        self->relay_.guard("browse", [&] {
            if (self->owner_ == nullptr) return;  // stopped
            switch (event) {
                case AVAHI_BROWSER_NEW:
                    self->found(InstanceKey{interface, protocol, name}, type, domain);
                    break;
                case AVAHI_BROWSER_REMOVE:
                    self->removed(InstanceKey{interface, protocol, name});
                    break;
                case AVAHI_BROWSER_FAILURE:
                    log_line("browsing failed: " + last_error(self->owner_));
                    break;
                case AVAHI_BROWSER_CACHE_EXHAUSTED:
                case AVAHI_BROWSER_ALL_FOR_NOW: break;
            }
        });
    }

    static void resolve_callback(Resolver* /*resolver*/, AvahiIfIndex /*interface*/,
                                 AvahiProtocol /*protocol*/, AvahiResolverEvent event,
                                 const char* /*name*/, const char* /*type*/, const char* /*domain*/,
                                 const char* /*host_name*/, const AvahiAddress* address,
                                 uint16_t port, AvahiStringList* txt,
                                 AvahiLookupResultFlags /*flags*/, void* userdata) {
        auto* instance = static_cast<Instance*>(userdata);
        ServiceBrowser* self = instance->browser;
        self->relay_.guard("resolve", [&] {
            if (self->owner_ == nullptr) return;  // stopped
            const InstanceKey key = instance->key;
            if (event != AVAHI_RESOLVER_FOUND || address == nullptr) {
                // Not resolvable (any more): the peer may still be reachable through another
                // instance.
                self->relay_.apply([&](PeerTable& table) { return table.removed(key); });
                return;
            }
            Resolution resolution;
            resolution.interface_name = instance->interface_name;
            resolution.host = address_literal(*address, instance->interface_name);
            resolution.port = port;
            resolution.txt = to_strings(txt);
            self->relay_.apply([&](PeerTable& table) { return table.resolved(key, resolution); });
            // Answered: no more queries for it (Avahi's own examples free a resolver in its
            // callback, with either API).
            if (instance->resolver != nullptr) {
                free_lookup(instance->resolver);
                instance->resolver = nullptr;
            }
        });
    }

    EventRelay& relay_;
    const std::string service_type_;
    const AvahiProtocol protocol_;
    const std::vector<std::string> interfaces_;

    Owner* owner_ = nullptr;  // while browsing
    Browser* browser_ = nullptr;
    std::map<InstanceKey, std::unique_ptr<Instance>> instances_;

    // share_resolves(): the poll, this node's short id, whom it hears from.
    const AvahiPoll* poll_ = nullptr;
    std::string self_short_;
    Discovery::HeardFrom heard_from_;
    AvahiTimeout* timer_ = nullptr;  // while an instance waits
};

}  // namespace peermq::detail
