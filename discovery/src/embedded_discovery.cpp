// The embedded backend: Avahi's mDNS stack (libavahi-core) inside this process, on an
// AvahiThreadedPoll. No daemon, no D-Bus.
//
// Coexistence (see /docs/spec/discovery.md): several stacks on one host share UDP 5353. The stack
// publishes no address records of its own (publish_addresses = 0: they would fight over the
// reverse-lookup PTR record with the daemon and with each other). Instead the backend publishes
// an A record for a host name of its own, "peermq-<short id>.local", without the reverse PTR
// (AVAHI_PUBLISH_NO_REVERSE), and points its service at that name.
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-core/core.h>
#include <avahi-core/lookup.h>
#include <avahi-core/publish.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "avahi_common.hpp"
#include "backends.hpp"
#include "txt_record.hpp"

namespace peermq::detail {
namespace {

struct LocalAddress {
    int interface_index;
    AvahiAddress address;
};

// The addresses of the allowed interfaces, read when (re)announcing.
std::vector<LocalAddress> local_addresses(const std::vector<std::string>& interfaces, bool ipv6) {
    std::vector<LocalAddress> result;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return result;
    for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
        if (entry->ifa_addr == nullptr || entry->ifa_name == nullptr) continue;
        if (std::find(interfaces.begin(), interfaces.end(), entry->ifa_name) == interfaces.end()) {
            continue;
        }
        const int index = static_cast<int>(if_nametoindex(entry->ifa_name));
        if (index == 0) continue;
        LocalAddress local{index, {}};
        if (entry->ifa_addr->sa_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
            local.address.proto = AVAHI_PROTO_INET;
            local.address.data.ipv4.address = in->sin_addr.s_addr;
        } else if (ipv6 && entry->ifa_addr->sa_family == AF_INET6) {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
            local.address.proto = AVAHI_PROTO_INET6;
            std::memcpy(local.address.data.ipv6.address, in6->sin6_addr.s6_addr, 16);
        } else {
            continue;
        }
        result.push_back(local);
    }
    freeifaddrs(list);
    return result;
}

class EmbeddedDiscovery final : public Discovery {
public:
    explicit EmbeddedDiscovery(discovery::AvahiOptions options)
        : options_(std::move(options)),
          protocol_(options_.ipv6 ? AVAHI_PROTO_UNSPEC : AVAHI_PROTO_INET) {}

    ~EmbeddedDiscovery() override {
        stop();
        if (poll_ != nullptr) avahi_threaded_poll_free(poll_);
    }

    EmbeddedDiscovery(const EmbeddedDiscovery&) = delete;
    EmbeddedDiscovery& operator=(const EmbeddedDiscovery&) = delete;

    std::string_view backend() const override { return "embedded"; }

    Status start(const ServiceRecord& self, DiscoverySink sink) override {
        if (started_) return make_error(ErrorCode::invalid_argument, "discovery already started");
        if (options_.interfaces.empty()) {  // checked by the factory too; never run without
            return make_error(ErrorCode::invalid_argument,
                              "the embedded Avahi stack needs an interface allow-list");
        }
        if (auto indexes = interface_indexes(options_.interfaces); !indexes)
            return indexes.status();
        announce_ = self.inbox_port != 0;
        if (announce_ && (self.id.is_nil() || self.cluster.empty())) {
            return make_error(ErrorCode::invalid_argument,
                              "a node announced by DNS-SD needs an id and a cluster");
        }
        self_ = self;
        service_name_ = instance_name(self);
        txt_ = format_txt(self);
        host_label_ = "peermq-" + (self.id.is_nil() ? Uuid::generate() : self.id).short_string();
        relay_.reset(PeerTable(self.id, self.cluster), std::move(sink));
        install_avahi_log_filter();

        poll_ = avahi_threaded_poll_new();
        if (poll_ == nullptr)
            return make_error(ErrorCode::internal, "avahi_threaded_poll_new failed");

        AvahiServerConfig config;
        avahi_server_config_init(&config);
        avahi_free(config.host_name);
        config.host_name = avahi_strdup(host_label_.c_str());
        config.use_ipv4 = 1;
        config.use_ipv6 = options_.ipv6 ? 1 : 0;
        for (const auto& name : options_.interfaces) {
            config.allow_interfaces = avahi_string_list_add(config.allow_interfaces, name.c_str());
        }
        config.publish_addresses = 0;
        config.publish_hinfo = 0;
        config.publish_workstation = 0;
        config.publish_domain = 0;
        config.publish_aaaa_on_ipv4 = 0;
        config.publish_a_on_ipv6 = 0;
        config.enable_wide_area = 0;
        config.enable_reflector = 0;
        config.disallow_other_stacks = 0;  // 1 fails next to a running avahi-daemon

        started_ = true;
        int error = 0;
        AvahiServer* server = avahi_server_new(avahi_threaded_poll_get(poll_), &config,
                                               &server_callback, this, &error);
        avahi_server_config_free(&config);
        if (server == nullptr) {
            started_ = false;
            return make_error(ErrorCode::unavailable,
                              "the embedded Avahi stack failed to start on " +
                                  join(options_.interfaces, ",") + ": " + avahi_strerror(error));
        }
        server_ = server;

        browser_ = avahi_s_service_browser_prepare(
            server_, AVAHI_IF_UNSPEC, protocol_, options_.service_type.c_str(), nullptr,
            static_cast<AvahiLookupFlags>(0), &browse_callback, this);
        if (browser_ == nullptr) {
            const Status status(ErrorCode::unavailable,
                                std::string("cannot browse ") + options_.service_type + ": " +
                                    avahi_strerror(avahi_server_errno(server_)));
            avahi_server_free(server_);
            server_ = nullptr;
            started_ = false;
            return status;
        }
        avahi_s_service_browser_start(browser_);

        if (avahi_threaded_poll_start(poll_) < 0) {
            return make_error(ErrorCode::internal, "could not start the Avahi poll thread");
        }
        poll_running_ = true;
        return {};
    }

    void stop() override {
        if (!started_ || stopping_) return;
        {
            std::optional<PollLock> lock;
            if (poll_running_) lock.emplace(poll_);
            stopping_ = true;
            for (auto& [key, instance] : instances_) {
                if (instance->resolver != nullptr)
                    avahi_s_service_resolver_free(instance->resolver);
            }
            instances_.clear();
            if (browser_ != nullptr) avahi_s_service_browser_free(browser_);
            browser_ = nullptr;
            // The server frees the group itself, sending goodbye packets for every record and
            // flushing them before it closes its sockets. Freeing the group first would leave a
            // dead group for the server's teardown, which avahi 0.8 may assert on.
            group_ = nullptr;
            if (server_ != nullptr) avahi_server_free(server_);
            server_ = nullptr;
        }
        if (poll_running_) {
            avahi_threaded_poll_stop(poll_);
            poll_running_ = false;
        }
    }

    std::map<std::string, std::uint64_t> ignored() const override { return relay_.ignored(); }

private:
    struct Instance {
        EmbeddedDiscovery* owner = nullptr;
        InstanceKey key;
        std::string interface_name;
        AvahiSServiceResolver* resolver = nullptr;
    };

    void rename_after_collision() {
        char* service = avahi_alternative_service_name(service_name_.c_str());
        char* host = avahi_alternative_host_name(avahi_server_get_host_name(server_));
        log_line("DNS-SD name collision on '" + service_name_ + "': renamed to '" + service +
                 "' on host '" + host + ".local'");
        service_name_ = service;
        avahi_free(service);
        // The A record may have been the one in conflict: move it to a new host name too. The
        // server re-registers and calls back with RUNNING, which announces again.
        avahi_server_set_host_name(server_, host);
        avahi_free(host);
    }

    void register_service() {
        if (!announce_ || server_ == nullptr) return;
        if (group_ == nullptr) {
            group_ = avahi_s_entry_group_new(server_, &group_callback, this);
            if (group_ == nullptr) {
                log_line(std::string("cannot create an entry group: ") +
                         avahi_strerror(avahi_server_errno(server_)));
                return;
            }
        } else {
            avahi_s_entry_group_reset(group_);
        }
        const std::string host = avahi_server_get_host_name_fqdn(server_);
        const auto addresses = local_addresses(options_.interfaces, options_.ipv6);
        std::vector<int> indexes;
        for (auto local : addresses) {
            const int added = avahi_server_add_address(
                server_, group_, local.interface_index, local.address.proto,
                AVAHI_PUBLISH_NO_REVERSE, host.c_str(), &local.address);
            if (added < 0) {
                log_line(std::string("cannot publish an address of ") + host + ": " +
                         avahi_strerror(added));
                continue;
            }
            if (std::find(indexes.begin(), indexes.end(), local.interface_index) == indexes.end()) {
                indexes.push_back(local.interface_index);
            }
        }
        if (indexes.empty()) {
            log_line("no address on " + join(options_.interfaces, ",") + ": not announcing");
            return;
        }
        AvahiStringList* txt = to_string_list(txt_);
        int result = AVAHI_OK;
        for (int index : indexes) {
            result = avahi_server_add_service_strlst(
                server_, group_, index, protocol_, static_cast<AvahiPublishFlags>(0),
                service_name_.c_str(), options_.service_type.c_str(), nullptr, host.c_str(),
                self_.inbox_port, txt);
            if (result < 0) break;
        }
        avahi_string_list_free(txt);
        if (result == AVAHI_ERR_COLLISION) {
            // A local collision: this stack already holds the name (cannot happen with one
            // service per stack, but costs nothing to handle like a remote one).
            rename_after_collision();
            return;
        }
        if (result < 0) {
            log_line(std::string("cannot announce '") + service_name_ +
                     "': " + avahi_strerror(result));
            return;
        }
        if (const int committed = avahi_s_entry_group_commit(group_); committed < 0) {
            log_line(std::string("cannot commit the DNS-SD record: ") + avahi_strerror(committed));
        }
    }

    static void server_callback(AvahiServer* server, AvahiServerState state, void* userdata) {
        auto* self = static_cast<EmbeddedDiscovery*>(userdata);
        self->relay_.guard("server", [&] {
            // Called from inside avahi_server_new() too, before it returns the pointer.
            self->server_ = server;
            if (!self->started_ || self->stopping_) return;
            switch (state) {
                case AVAHI_SERVER_RUNNING: self->register_service(); break;
                case AVAHI_SERVER_COLLISION: {
                    char* host = avahi_alternative_host_name(avahi_server_get_host_name(server));
                    log_line(std::string("host name collision: renaming to '") + host + ".local'");
                    avahi_server_set_host_name(server, host);
                    avahi_free(host);
                    break;
                }
                case AVAHI_SERVER_REGISTERING:
                    if (self->group_ != nullptr) avahi_s_entry_group_reset(self->group_);
                    break;
                case AVAHI_SERVER_FAILURE:
                    log_line(std::string("the embedded Avahi stack failed: ") +
                             avahi_strerror(avahi_server_errno(server)));
                    break;
                case AVAHI_SERVER_INVALID: break;
            }
        });
    }

    static void group_callback(AvahiServer* /*server*/, AvahiSEntryGroup* group,
                               AvahiEntryGroupState state, void* userdata) {
        auto* self = static_cast<EmbeddedDiscovery*>(userdata);
        self->relay_.guard("entry group", [&] {
            if (self->stopping_ || self->server_ == nullptr) return;
            switch (state) {
                case AVAHI_ENTRY_GROUP_COLLISION:
                    self->group_ = group;
                    self->rename_after_collision();
                    // If the server stays RUNNING (no host rename took effect yet), announce now.
                    if (avahi_server_get_state(self->server_) == AVAHI_SERVER_RUNNING) {
                        self->register_service();
                    }
                    break;
                case AVAHI_ENTRY_GROUP_FAILURE:
                    log_line(std::string("announcing failed: ") +
                             avahi_strerror(avahi_server_errno(self->server_)));
                    break;
                case AVAHI_ENTRY_GROUP_UNCOMMITED:
                case AVAHI_ENTRY_GROUP_REGISTERING:
                case AVAHI_ENTRY_GROUP_ESTABLISHED: break;
            }
        });
    }

    static void browse_callback(AvahiSServiceBrowser* /*browser*/, AvahiIfIndex interface,
                                AvahiProtocol protocol, AvahiBrowserEvent event, const char* name,
                                const char* type, const char* domain,
                                AvahiLookupResultFlags /*flags*/, void* userdata) {
        auto* self = static_cast<EmbeddedDiscovery*>(userdata);
        self->relay_.guard("browse", [&] {
            if (self->stopping_ || self->server_ == nullptr) return;
            switch (event) {
                case AVAHI_BROWSER_NEW: {
                    InstanceKey key{interface, protocol, name};
                    if (self->instances_.contains(key)) return;
                    auto instance = std::make_unique<Instance>();
                    instance->owner = self;
                    instance->key = key;
                    instance->interface_name = interface_name(interface);
                    // prepare + start: the callback may fire from the cache inside start(), and
                    // by then the resolver must be stored.
                    instance->resolver = avahi_s_service_resolver_prepare(
                        self->server_, interface, protocol, name, type, domain,
                        self->options_.ipv6 ? AVAHI_PROTO_UNSPEC : AVAHI_PROTO_INET,
                        static_cast<AvahiLookupFlags>(0), &resolve_callback, instance.get());
                    if (instance->resolver == nullptr) {
                        log_line(std::string("cannot resolve '") + name +
                                 "': " + avahi_strerror(avahi_server_errno(self->server_)));
                        return;
                    }
                    AvahiSServiceResolver* resolver = instance->resolver;
                    try {
                        self->instances_.emplace(std::move(key), std::move(instance));
                    } catch (...) {
                        // Not kept: the resolver must not outlive the Instance it points to.
                        avahi_s_service_resolver_free(resolver);
                        throw;
                    }
                    avahi_s_service_resolver_start(resolver);
                    break;
                }
                case AVAHI_BROWSER_REMOVE: {
                    const InstanceKey key{interface, protocol, name};
                    auto it = self->instances_.find(key);
                    if (it == self->instances_.end()) return;
                    if (it->second->resolver != nullptr) {
                        avahi_s_service_resolver_free(it->second->resolver);
                    }
                    self->instances_.erase(it);
                    self->relay_.apply([&](PeerTable& table) { return table.removed(key); });
                    break;
                }
                case AVAHI_BROWSER_FAILURE:
                    log_line(std::string("browsing failed: ") +
                             avahi_strerror(avahi_server_errno(self->server_)));
                    break;
                case AVAHI_BROWSER_CACHE_EXHAUSTED:
                case AVAHI_BROWSER_ALL_FOR_NOW: break;
            }
        });
    }

    static void resolve_callback(AvahiSServiceResolver* /*resolver*/, AvahiIfIndex /*interface*/,
                                 AvahiProtocol /*protocol*/, AvahiResolverEvent event,
                                 const char* /*name*/, const char* /*type*/, const char* /*domain*/,
                                 const char* /*host_name*/, const AvahiAddress* address,
                                 uint16_t port, AvahiStringList* txt,
                                 AvahiLookupResultFlags /*flags*/, void* userdata) {
        auto* instance = static_cast<Instance*>(userdata);
        EmbeddedDiscovery* self = instance->owner;
        self->relay_.guard("resolve", [&] {
            if (self->stopping_) return;
            const InstanceKey key = instance->key;
            if (event != AVAHI_RESOLVER_FOUND || address == nullptr) {
                self->relay_.apply([&](PeerTable& table) { return table.removed(key); });
                return;
            }
            Resolution resolution;
            resolution.interface_name = instance->interface_name;
            resolution.host = address_literal(*address, instance->interface_name);
            resolution.port = port;
            resolution.txt = to_strings(txt);
            self->relay_.apply([&](PeerTable& table) { return table.resolved(key, resolution); });
        });
    }

    const discovery::AvahiOptions options_;
    const AvahiProtocol protocol_;

    // Owned. After start() only the poll thread (or a holder of the poll lock) touches these.
    AvahiThreadedPoll* poll_ = nullptr;
    AvahiServer* server_ = nullptr;
    AvahiSEntryGroup* group_ = nullptr;
    AvahiSServiceBrowser* browser_ = nullptr;
    std::map<InstanceKey, std::unique_ptr<Instance>> instances_;

    bool announce_ = false;
    ServiceRecord self_;
    std::string service_name_;
    std::string host_label_;
    std::vector<std::string> txt_;
    bool started_ = false;
    bool stopping_ = false;
    bool poll_running_ = false;

    EventRelay relay_;
};

}  // namespace

Result<std::unique_ptr<Discovery>> make_embedded_discovery(const discovery::AvahiOptions& options) {
    if (options.interfaces.empty()) {
        return make_error(ErrorCode::invalid_argument,
                          "the embedded Avahi stack needs an interface allow-list "
                          "(AvahiOptions::interfaces, e.g. {\"lo\"}); it never runs mDNS on every "
                          "interface");
    }
    if (Status valid = validate_service_type(options.service_type); !valid.ok()) return valid;
    if (auto indexes = interface_indexes(options.interfaces); !indexes) return indexes.status();
    return std::unique_ptr<Discovery>(std::make_unique<EmbeddedDiscovery>(options));
}

}  // namespace peermq::detail
