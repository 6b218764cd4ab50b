// ServiceBrowser: the browse/resolve half of both Avahi backends. It browses one DNS-SD service
// type, resolves each instance found once, and turns what they report into PeerTable changes
// through the backend's EventRelay: resolved → PeerTable::resolved(); removed by the browser, or
// no longer resolvable → PeerTable::removed() (docs/spec/discovery.md §6). `Owner` is the root
// object of the backend's API, AvahiClient (avahi-daemon) or AvahiServer (embedded); the calls
// that differ between the two are overloads in avahi_calls.hpp.
//
// Thread-safety: like the backend's other Avahi objects, only the poll thread (or a holder of the
// poll lock, or anyone before the poll thread starts) touches it. It owns the browser and the
// resolvers but not the Owner: the backend calls stop() (or forget()) before it frees the Owner.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "avahi_calls.hpp"
#include "avahi_common.hpp"
#include "peer_table.hpp"

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
    }

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
        Resolver* resolver = nullptr;
    };

    bool interface_allowed(const std::string& name) const {
        return interfaces_.empty() ||
               std::find(interfaces_.begin(), interfaces_.end(), name) != interfaces_.end();
    }

    void found(InstanceKey key, const char* type, const char* domain) {
        std::string ifname = interface_name(key.interface_index);
        if (!interface_allowed(ifname)) return;
        if (instances_.contains(key)) return;
        auto instance = std::make_unique<Instance>();
        instance->browser = this;
        instance->key = key;
        instance->interface_name = std::move(ifname);
        // Created, kept, then started: with avahi-core the callback may fire from the cache
        // inside start_lookup(), and by then the resolver must be stored.
        Resolver* resolver =
            new_resolver(owner_, key, type, domain, protocol_, &resolve_callback, instance.get());
        if (resolver == nullptr) {
            log_line("cannot resolve '" + key.name + "': " + last_error(owner_));
            return;
        }
        instance->resolver = resolver;
        try {
            instances_.emplace(std::move(key), std::move(instance));
        } catch (...) {
            // Not kept: the resolver must not outlive the Instance it points to.
            free_lookup(resolver);
            throw;
        }
        start_lookup(resolver);
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
};

}  // namespace peermq::detail
