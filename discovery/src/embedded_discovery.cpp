// The embedded backend: Avahi's mDNS stack (libavahi-core) inside this process, on an
// AvahiThreadedPoll. No daemon, no D-Bus.
//
// Coexistence (see /docs/spec/discovery.md): several stacks on one host share UDP 5353. The stack
// publishes no address records of its own (publish_addresses = 0: they would fight over the
// reverse-lookup PTR record with the daemon and with each other). Instead the backend publishes
// an A record for a host name of its own, "peermq-<short id>.local", without the reverse PTR
// (AVAHI_PUBLISH_NO_REVERSE), and points its service at that name.
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-core/core.h>
#include <avahi-core/publish.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "avahi_backend.hpp"
#include "avahi_calls.hpp"
#include "backends.hpp"
#include "platform/interfaces.hpp"
#include "service_browser.hpp"

namespace peermq::detail {
namespace {

struct LocalAddress {
    int interface_index;
    AvahiAddress address;
};

// The addresses of the allowed interfaces, read when (re)announcing.
std::vector<LocalAddress> local_addresses(const std::vector<std::string>& interfaces, bool ipv6) {
    std::vector<LocalAddress> result;
    auto all = network_interfaces();
    if (!all) return result;
    for (const auto& interface : all.value()) {
        if (interface.index == 0 ||
            std::find(interfaces.begin(), interfaces.end(), interface.name) == interfaces.end()) {
            continue;
        }
        for (const auto& address : interface.addresses) {
            LocalAddress local{static_cast<int>(interface.index), {}};
            if (address.family == AF_INET) {
                local.address.proto = AVAHI_PROTO_INET;
                std::memcpy(&local.address.data.ipv4.address, address.bytes.data(), 4);
            } else if (ipv6 && address.family == AF_INET6) {
                local.address.proto = AVAHI_PROTO_INET6;
                std::memcpy(local.address.data.ipv6.address, address.bytes.data(), 16);
            } else {
                continue;
            }
            result.push_back(local);
        }
    }
    return result;
}

class EmbeddedDiscovery final : public AvahiBackend {
public:
    explicit EmbeddedDiscovery(discovery::AvahiOptions options)
        : AvahiBackend(std::move(options)),
          // No interface filter: the stack itself runs on the allowed interfaces only.
          browser_(relay_, options_.service_type, protocol_, {}) {}

    ~EmbeddedDiscovery() override { stop(); }

    std::string_view backend() const override { return "embedded"; }

    Status start(const ServiceRecord& self, DiscoverySink sink) override {
        if (started_) return make_error(ErrorCode::invalid_argument, "discovery already started");
        if (options_.interfaces.empty()) {  // checked by the factory too; never run without
            return make_error(ErrorCode::invalid_argument,
                              "the embedded Avahi stack needs an interface allow-list");
        }
        if (auto indexes = begin(self, std::move(sink)); !indexes) return indexes.status();
        host_label_ = "peermq-" + (self.id.is_nil() ? Uuid::generate() : self.id).short_string();
        install_avahi_log_filter();

        if (Status created = poll_.create(); !created.ok()) return created;

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
        AvahiServer* server =
            avahi_server_new(poll_.api(), &config, &server_callback, this, &error);
        avahi_server_config_free(&config);
        if (server == nullptr) {
            started_ = false;
            return make_error(ErrorCode::unavailable,
                              "the embedded Avahi stack failed to start on " +
                                  join(options_.interfaces, ",") + ": " + avahi_strerror(error));
        }
        server_ = server;

        share_resolves(browser_);
        if (Status browsing = browser_.start(server_); !browsing.ok()) {
            avahi_server_free(server_);
            server_ = nullptr;
            started_ = false;
            return browsing;
        }
        return poll_.start();
    }

private:
    void teardown() override {
        browser_.stop();
        // The server frees the group itself, sending goodbye packets for every record and
        // flushing them before it closes its sockets. Freeing the group first would leave a
        // dead group for the server's teardown, which avahi 0.8 may assert on.
        group_ = nullptr;
        if (server_ != nullptr) avahi_server_free(server_);
        server_ = nullptr;
    }

    void rename_after_collision() {
        std::string& name = announcement_.service_name;
        const std::string service = alternative_service_name(name);
        const std::string host = alternative_host_name(avahi_server_get_host_name(server_));
        log_line("DNS-SD name collision on '" + name + "': renamed to '" + service + "' on host '" +
                 host + ".local'");
        name = service;
        // The A record may have been the one in conflict: move it to a new host name too. The
        // server re-registers and calls back with RUNNING, which announces again.
        avahi_server_set_host_name(server_, host.c_str());
    }

    void register_service() {
        if (!announcement_.enabled || server_ == nullptr) return;
        if (!renew_entry_group(server_, group_, &group_callback, this)) return;
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
        const int added = add_service(
            announcement_, indexes,
            [&](int index, AvahiStringList* txt) {
                return avahi_server_add_service_strlst(
                    server_, group_, index, protocol_, static_cast<AvahiPublishFlags>(0),
                    announcement_.service_name.c_str(), options_.service_type.c_str(), nullptr,
                    host.c_str(), announcement_.self.inbox_port, txt);
            },
            [&] { return avahi_s_entry_group_commit(group_); });
        if (added == AVAHI_ERR_COLLISION) {
            // A local collision: this stack already holds the name (cannot happen with one
            // service per stack, but costs nothing to handle like a remote one).
            rename_after_collision();
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
                    const std::string host =
                        alternative_host_name(avahi_server_get_host_name(server));
                    log_line("host name collision: renaming to '" + host + ".local'");
                    avahi_server_set_host_name(server, host.c_str());
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

    // Owned. After start() only the poll thread (or a holder of the poll lock) touches these.
    AvahiServer* server_ = nullptr;
    AvahiSEntryGroup* group_ = nullptr;
    ServiceBrowser<AvahiServer> browser_;
    std::string host_label_;
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
