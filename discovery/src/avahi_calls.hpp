// The Avahi calls that differ between the two backends' APIs, as overloads on their types:
// avahi-client (AvahiClient, the avahi-daemon backend) and avahi-core (AvahiServer, the embedded
// stack). What both backends do with them is then written once: ServiceBrowser
// (service_browser.hpp) and renew_entry_group() below. Plain functions; they have the thread
// rules of the objects they are given (the poll thread, or a holder of the poll lock).
#pragma once

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/error.h>
#include <avahi-core/core.h>
#include <avahi-core/lookup.h>
#include <avahi-core/publish.h>

#include <string>
#include <string_view>

#include "avahi_common.hpp"

namespace peermq::detail {

// The lookup and publishing objects of each API, and how a failed browse names it.
template <typename Owner>
struct AvahiObjects;

template <>
struct AvahiObjects<AvahiClient> {
    using Browser = AvahiServiceBrowser;
    using Resolver = AvahiServiceResolver;
    static constexpr std::string_view kVia = " through avahi-daemon";
};

template <>
struct AvahiObjects<AvahiServer> {
    using Browser = AvahiSServiceBrowser;
    using Resolver = AvahiSServiceResolver;
    static constexpr std::string_view kVia = "";
};

inline std::string last_error(AvahiClient* client) {
    return avahi_strerror(avahi_client_errno(client));
}
inline std::string last_error(AvahiServer* server) {
    return avahi_strerror(avahi_server_errno(server));
}

// Browsers and resolvers. avahi-client starts one as it creates it (its answers come later, over
// D-Bus); avahi-core only prepares it, and start_lookup() may call back at once from its cache.
inline AvahiServiceBrowser* new_browser(AvahiClient* client, AvahiProtocol protocol,
                                        const char* type, AvahiServiceBrowserCallback callback,
                                        void* userdata) {
    return avahi_service_browser_new(client, AVAHI_IF_UNSPEC, protocol, type, nullptr,
                                     static_cast<AvahiLookupFlags>(0), callback, userdata);
}
inline AvahiSServiceBrowser* new_browser(AvahiServer* server, AvahiProtocol protocol,
                                         const char* type, AvahiSServiceBrowserCallback callback,
                                         void* userdata) {
    return avahi_s_service_browser_prepare(server, AVAHI_IF_UNSPEC, protocol, type, nullptr,
                                           static_cast<AvahiLookupFlags>(0), callback, userdata);
}

// `aprotocol`: the address family asked for (AVAHI_PROTO_INET unless IPv6 is wanted).
inline AvahiServiceResolver* new_resolver(AvahiClient* client, const InstanceKey& key,
                                          const char* type, const char* domain,
                                          AvahiProtocol aprotocol,
                                          AvahiServiceResolverCallback callback, void* userdata) {
    return avahi_service_resolver_new(client, key.interface_index, key.protocol, key.name.c_str(),
                                      type, domain, aprotocol, static_cast<AvahiLookupFlags>(0),
                                      callback, userdata);
}
inline AvahiSServiceResolver* new_resolver(AvahiServer* server, const InstanceKey& key,
                                           const char* type, const char* domain,
                                           AvahiProtocol aprotocol,
                                           AvahiSServiceResolverCallback callback, void* userdata) {
    return avahi_s_service_resolver_prepare(server, key.interface_index, key.protocol,
                                            key.name.c_str(), type, domain, aprotocol,
                                            static_cast<AvahiLookupFlags>(0), callback, userdata);
}

inline void start_lookup(AvahiServiceBrowser* /*started when created*/) {}
inline void start_lookup(AvahiServiceResolver* /*started when created*/) {}
inline void start_lookup(AvahiSServiceBrowser* browser) { avahi_s_service_browser_start(browser); }
inline void start_lookup(AvahiSServiceResolver* resolver) {
    avahi_s_service_resolver_start(resolver);
}

inline void free_lookup(AvahiServiceBrowser* browser) { avahi_service_browser_free(browser); }
inline void free_lookup(AvahiServiceResolver* resolver) { avahi_service_resolver_free(resolver); }
inline void free_lookup(AvahiSServiceBrowser* browser) { avahi_s_service_browser_free(browser); }
inline void free_lookup(AvahiSServiceResolver* resolver) {
    avahi_s_service_resolver_free(resolver);
}

// Entry groups.
inline AvahiEntryGroup* new_entry_group(AvahiClient* client, AvahiEntryGroupCallback callback,
                                        void* userdata) {
    return avahi_entry_group_new(client, callback, userdata);
}
inline AvahiSEntryGroup* new_entry_group(AvahiServer* server, AvahiSEntryGroupCallback callback,
                                         void* userdata) {
    return avahi_s_entry_group_new(server, callback, userdata);
}
inline void reset_entry_group(AvahiEntryGroup* group) { avahi_entry_group_reset(group); }
inline void reset_entry_group(AvahiSEntryGroup* group) { avahi_s_entry_group_reset(group); }

// Makes `group` ready for a fresh announcement: created through `owner` on first use (with
// `callback` and `userdata`), emptied afterwards. False, logged, when it cannot be created.
template <typename Owner, typename Group, typename Callback>
bool renew_entry_group(Owner* owner, Group*& group, Callback callback, void* userdata) {
    if (group != nullptr) {
        reset_entry_group(group);
        return true;
    }
    group = new_entry_group(owner, callback, userdata);
    if (group == nullptr) log_line("cannot create an avahi entry group: " + last_error(owner));
    return group != nullptr;
}

}  // namespace peermq::detail
