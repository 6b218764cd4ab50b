// The avahi-daemon backend: avahi-client over D-Bus, driven by an AvahiThreadedPoll.
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/timeval.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>

#include "avahi_common.hpp"
#include "backends.hpp"
#include "txt_record.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

// After a reconnect, peers not seen again within this time are reported lost. The restarted
// daemon has an empty cache; re-learning the LAN takes about one query round (~1 s) plus
// resolution (~1 s), so this leaves a wide margin.
constexpr auto kResyncGrace = 10s;
// Retry interval when a new client cannot even be created (e.g. the system bus is down).
constexpr auto kReconnectRetry = 1s;

class AvahiDaemonDiscovery final : public Discovery {
public:
    explicit AvahiDaemonDiscovery(discovery::AvahiOptions options)
        : options_(std::move(options)),
          protocol_(options_.ipv6 ? AVAHI_PROTO_UNSPEC : AVAHI_PROTO_INET) {}

    ~AvahiDaemonDiscovery() override {
        stop();
        if (client_ != nullptr) avahi_client_free(client_);
        if (poll_ != nullptr) avahi_threaded_poll_free(poll_);
    }

    AvahiDaemonDiscovery(const AvahiDaemonDiscovery&) = delete;
    AvahiDaemonDiscovery& operator=(const AvahiDaemonDiscovery&) = delete;

    Status connect() {
        poll_ = avahi_threaded_poll_new();
        if (poll_ == nullptr)
            return make_error(ErrorCode::internal, "avahi_threaded_poll_new failed");
        int error = 0;
        // Without AVAHI_CLIENT_NO_FAIL: a missing daemon is reported now, so automatic() can
        // choose another backend. Reconnects later use NO_FAIL.
        AvahiClient* client =
            avahi_client_new(avahi_threaded_poll_get(poll_), static_cast<AvahiClientFlags>(0),
                             &client_callback, this, &error);
        if (client == nullptr) {
            return make_error(
                ErrorCode::unavailable,
                std::string("avahi-daemon does not answer on D-Bus: ") + avahi_strerror(error));
        }
        client_ = client;
        return {};
    }

    std::string_view backend() const override { return "avahi"; }

    Status start(const ServiceRecord& self, DiscoverySink sink) override {
        if (started_) return make_error(ErrorCode::invalid_argument, "discovery already started");
        if (client_ == nullptr)
            return make_error(ErrorCode::closed, "avahi client is not connected");
        auto indexes = interface_indexes(options_.interfaces);
        if (!indexes) return indexes.status();
        announce_ = self.inbox_port != 0;
        if (announce_ && (self.id.is_nil() || self.cluster.empty())) {
            return make_error(ErrorCode::invalid_argument,
                              "a node announced by DNS-SD needs an id and a cluster");
        }
        publish_indexes_ = std::move(indexes).value();
        self_ = self;
        service_name_ = instance_name(self);
        txt_ = format_txt(self);
        relay_.reset(PeerTable(self.id, self.cluster), std::move(sink));
        started_ = true;

        // The poll thread does not run yet: Avahi may be called directly.
        const AvahiClientState state = avahi_client_get_state(client_);
        if (state == AVAHI_CLIENT_S_RUNNING || state == AVAHI_CLIENT_S_REGISTERING ||
            state == AVAHI_CLIENT_S_COLLISION) {
            if (Status browsing = start_browsing(); !browsing.ok()) return browsing;
        }
        if (state == AVAHI_CLIENT_S_RUNNING) register_service();
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
            forget_lookups(/*free_them=*/true);
            // Freeing the group withdraws the record: the daemon sends goodbye packets.
            if (group_ != nullptr) avahi_entry_group_free(group_);
            group_ = nullptr;
            cancel_timer(resync_timer_);
            cancel_timer(reconnect_timer_);
        }
        if (poll_running_) {
            avahi_threaded_poll_stop(poll_);
            poll_running_ = false;
        }
    }

    std::map<std::string, std::uint64_t> ignored() const override { return relay_.ignored(); }

private:
    // One browse result being resolved. The resolver stays alive until the browser removes the
    // instance: it reports again when the instance's records change.
    struct Instance {
        AvahiDaemonDiscovery* owner = nullptr;
        InstanceKey key;
        std::string interface_name;
        AvahiServiceResolver* resolver = nullptr;
    };

    const AvahiPoll* api() const { return avahi_threaded_poll_get(poll_); }

    void cancel_timer(AvahiTimeout*& timer) {
        if (timer != nullptr) api()->timeout_free(timer);
        timer = nullptr;
    }

    AvahiTimeout* start_timer(std::chrono::milliseconds delay, AvahiTimeoutCallback callback) {
        timeval when{};
        avahi_elapse_time(&when, static_cast<unsigned>(delay.count()), 0);
        return api()->timeout_new(api(), &when, callback, this);
    }

    bool interface_allowed(const std::string& name) const {
        return options_.interfaces.empty() ||
               std::find(options_.interfaces.begin(), options_.interfaces.end(), name) !=
                   options_.interfaces.end();
    }

    // Drops the browser and resolvers. When the client is about to be freed they must not be
    // freed here: avahi_client_free() frees every object of the client.
    void forget_lookups(bool free_them) {
        for (auto& [key, instance] : instances_) {
            if (free_them && instance->resolver != nullptr) {
                avahi_service_resolver_free(instance->resolver);
            }
        }
        instances_.clear();
        if (free_them && browser_ != nullptr) avahi_service_browser_free(browser_);
        browser_ = nullptr;
    }

    Status start_browsing() {
        if (browser_ != nullptr) return {};
        browser_ = avahi_service_browser_new(
            client_, AVAHI_IF_UNSPEC, protocol_, options_.service_type.c_str(), nullptr,
            static_cast<AvahiLookupFlags>(0), &browse_callback, this);
        if (browser_ == nullptr) {
            const std::string text =
                std::string("cannot browse ") + options_.service_type +
                " through avahi-daemon: " + avahi_strerror(avahi_client_errno(client_));
            log_line(text);
            return make_error(ErrorCode::unavailable, text);
        }
        if (resyncing_) {
            cancel_timer(resync_timer_);
            resync_timer_ = start_timer(kResyncGrace, &resync_timeout);
        }
        return {};
    }

    void rename_service() {
        char* alternative = avahi_alternative_service_name(service_name_.c_str());
        log_line("DNS-SD name collision on '" + service_name_ + "': renamed to '" + alternative +
                 "'");
        service_name_ = alternative;
        avahi_free(alternative);
    }

    // Adds the service to the (new or reset) entry group and commits it.
    void register_service() {
        if (!announce_ || client_ == nullptr) return;
        if (group_ == nullptr) {
            group_ = avahi_entry_group_new(client_, &group_callback, this);
            if (group_ == nullptr) {
                log_line(std::string("cannot create an avahi entry group: ") +
                         avahi_strerror(avahi_client_errno(client_)));
                return;
            }
        } else {
            avahi_entry_group_reset(group_);
        }
        std::vector<int> indexes = publish_indexes_;
        if (indexes.empty()) indexes.push_back(AVAHI_IF_UNSPEC);
        // A local collision (another client of this daemon owns the name) is reported at once.
        for (int attempt = 0; attempt < 20; ++attempt) {
            AvahiStringList* txt = to_string_list(txt_);
            int result = AVAHI_OK;
            for (int index : indexes) {
                result = avahi_entry_group_add_service_strlst(
                    group_, index, protocol_, static_cast<AvahiPublishFlags>(0),
                    service_name_.c_str(), options_.service_type.c_str(), nullptr, nullptr,
                    self_.inbox_port, txt);
                if (result < 0) break;
            }
            avahi_string_list_free(txt);
            if (result == AVAHI_ERR_COLLISION) {
                rename_service();
                avahi_entry_group_reset(group_);
                continue;
            }
            if (result < 0) {
                log_line(std::string("cannot announce '") + service_name_ +
                         "': " + avahi_strerror(result));
                return;
            }
            if (const int committed = avahi_entry_group_commit(group_); committed < 0) {
                log_line(std::string("cannot commit the DNS-SD record: ") +
                         avahi_strerror(committed));
            }
            return;
        }
        log_line("giving up announcing after 20 name collisions");
    }

    // The daemon went away (restart): drop everything the old client owned and connect again;
    // the new client announces and browses once the daemon is back.
    void reconnect() {
        log_line("avahi-daemon disconnected; reconnecting (the node keeps running)");
        forget_lookups(/*free_them=*/false);
        group_ = nullptr;
        cancel_timer(resync_timer_);
        if (!resyncing_) {
            relay_.apply([](PeerTable& table) {
                table.begin_resync();
                return std::vector<DiscoveryEvent>{};
            });
            resyncing_ = true;
        }
        if (client_ != nullptr) avahi_client_free(client_);
        client_ = nullptr;
        int error = 0;
        AvahiClient* client =
            avahi_client_new(api(), AVAHI_CLIENT_NO_FAIL, &client_callback, this, &error);
        if (client == nullptr) {
            log_line(std::string("cannot create an avahi client: ") + avahi_strerror(error) +
                     "; retrying");
            cancel_timer(reconnect_timer_);
            reconnect_timer_ = start_timer(kReconnectRetry, &reconnect_timeout);
            return;
        }
        client_ = client;
    }

    void on_client_state(AvahiClient* client, AvahiClientState state) {
        switch (state) {
            case AVAHI_CLIENT_S_RUNNING:
                (void)start_browsing();
                register_service();
                break;
            case AVAHI_CLIENT_S_REGISTERING:
            case AVAHI_CLIENT_S_COLLISION:
                // The daemon (re)registers its host name: our record must wait for RUNNING.
                if (group_ != nullptr) avahi_entry_group_reset(group_);
                (void)start_browsing();
                break;
            case AVAHI_CLIENT_FAILURE: {
                const int error = avahi_client_errno(client);
                if (error != AVAHI_ERR_DISCONNECTED) {
                    log_line(std::string("avahi client failed: ") + avahi_strerror(error));
                }
                reconnect();
                break;
            }
            case AVAHI_CLIENT_CONNECTING:
                log_line("waiting for avahi-daemon to appear on D-Bus");
                break;
        }
    }

    static void client_callback(AvahiClient* client, AvahiClientState state, void* userdata) {
        auto* self = static_cast<AvahiDaemonDiscovery*>(userdata);
        self->relay_.guard("client", [&] {
            // Called from inside avahi_client_new() too, before it returns the pointer.
            self->client_ = client;
            if (!self->started_ || self->stopping_) return;
            self->on_client_state(client, state);
        });
    }

    static void group_callback(AvahiEntryGroup* group, AvahiEntryGroupState state, void* userdata) {
        auto* self = static_cast<AvahiDaemonDiscovery*>(userdata);
        self->relay_.guard("entry group", [&] {
            if (self->stopping_) return;
            switch (state) {
                case AVAHI_ENTRY_GROUP_COLLISION:
                    // Another host announces our instance name.
                    self->group_ = group;
                    self->rename_service();
                    self->register_service();
                    break;
                case AVAHI_ENTRY_GROUP_FAILURE:
                    log_line(
                        std::string("announcing failed: ") +
                        avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(group))));
                    break;
                case AVAHI_ENTRY_GROUP_UNCOMMITED:
                case AVAHI_ENTRY_GROUP_REGISTERING:
                case AVAHI_ENTRY_GROUP_ESTABLISHED: break;
            }
        });
    }

    static void browse_callback(AvahiServiceBrowser* /*browser*/, AvahiIfIndex interface,
                                AvahiProtocol protocol, AvahiBrowserEvent event, const char* name,
                                const char* type, const char* domain,
                                AvahiLookupResultFlags /*flags*/, void* userdata) {
        auto* self = static_cast<AvahiDaemonDiscovery*>(userdata);
        self->relay_.guard("browse", [&] {
            if (self->stopping_) return;
            switch (event) {
                case AVAHI_BROWSER_NEW: {
                    std::string ifname = interface_name(interface);
                    if (!self->interface_allowed(ifname)) return;
                    InstanceKey key{interface, protocol, name};
                    if (self->instances_.contains(key)) return;
                    auto instance = std::make_unique<Instance>();
                    instance->owner = self;
                    instance->key = key;
                    instance->interface_name = std::move(ifname);
                    instance->resolver = avahi_service_resolver_new(
                        self->client_, interface, protocol, name, type, domain,
                        self->options_.ipv6 ? AVAHI_PROTO_UNSPEC : AVAHI_PROTO_INET,
                        static_cast<AvahiLookupFlags>(0), &resolve_callback, instance.get());
                    if (instance->resolver == nullptr) {
                        log_line(std::string("cannot resolve '") + name +
                                 "': " + avahi_strerror(avahi_client_errno(self->client_)));
                        return;
                    }
                    try {
                        self->instances_.emplace(std::move(key), std::move(instance));
                    } catch (...) {
                        // Not kept: the resolver must not outlive the Instance it points to.
                        avahi_service_resolver_free(instance->resolver);
                        throw;
                    }
                    break;
                }
                case AVAHI_BROWSER_REMOVE: {
                    const InstanceKey key{interface, protocol, name};
                    auto it = self->instances_.find(key);
                    if (it == self->instances_.end()) return;
                    if (it->second->resolver != nullptr)
                        avahi_service_resolver_free(it->second->resolver);
                    self->instances_.erase(it);
                    self->relay_.apply([&](PeerTable& table) { return table.removed(key); });
                    break;
                }
                case AVAHI_BROWSER_FAILURE:
                    log_line(std::string("browsing failed: ") +
                             avahi_strerror(avahi_client_errno(self->client_)));
                    break;
                case AVAHI_BROWSER_CACHE_EXHAUSTED:
                case AVAHI_BROWSER_ALL_FOR_NOW: break;
            }
        });
    }

    static void resolve_callback(AvahiServiceResolver* /*resolver*/, AvahiIfIndex /*interface*/,
                                 AvahiProtocol /*protocol*/, AvahiResolverEvent event,
                                 const char* /*name*/, const char* /*type*/, const char* /*domain*/,
                                 const char* /*host_name*/, const AvahiAddress* address,
                                 uint16_t port, AvahiStringList* txt,
                                 AvahiLookupResultFlags /*flags*/, void* userdata) {
        auto* instance = static_cast<Instance*>(userdata);
        AvahiDaemonDiscovery* self = instance->owner;
        self->relay_.guard("resolve", [&] {
            if (self->stopping_) return;
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
        });
    }

    static void resync_timeout(AvahiTimeout* /*timeout*/, void* userdata) {
        auto* self = static_cast<AvahiDaemonDiscovery*>(userdata);
        self->relay_.guard("reconnect timer", [&] {
            self->relay_.guard("resync timer", [&] {
                self->cancel_timer(self->resync_timer_);
                if (self->stopping_) return;
                self->resyncing_ = false;
                self->relay_.apply([](PeerTable& table) { return table.end_resync(); });
            });
        });
    }

    static void reconnect_timeout(AvahiTimeout* /*timeout*/, void* userdata) {
        auto* self = static_cast<AvahiDaemonDiscovery*>(userdata);
        self->cancel_timer(self->reconnect_timer_);
        if (self->stopping_) return;
        self->reconnect();
    }

    const discovery::AvahiOptions options_;
    const AvahiProtocol protocol_;
    std::vector<int> publish_indexes_;  // empty: every interface

    // Owned. After start() only the poll thread (or a holder of the poll lock) touches these.
    AvahiThreadedPoll* poll_ = nullptr;
    AvahiClient* client_ = nullptr;
    AvahiEntryGroup* group_ = nullptr;
    AvahiServiceBrowser* browser_ = nullptr;
    AvahiTimeout* resync_timer_ = nullptr;
    AvahiTimeout* reconnect_timer_ = nullptr;
    std::map<InstanceKey, std::unique_ptr<Instance>> instances_;

    bool announce_ = false;
    ServiceRecord self_;
    std::string service_name_;
    std::vector<std::string> txt_;
    bool started_ = false;
    bool stopping_ = false;
    bool poll_running_ = false;
    bool resyncing_ = false;

    EventRelay relay_;
};

}  // namespace

Result<std::unique_ptr<Discovery>> make_avahi_daemon_discovery(
    const discovery::AvahiOptions& options) {
    if (Status valid = validate_service_type(options.service_type); !valid.ok()) return valid;
    if (auto indexes = interface_indexes(options.interfaces); !indexes) return indexes.status();
    auto discovery = std::make_unique<AvahiDaemonDiscovery>(options);
    if (Status connected = discovery->connect(); !connected.ok()) return connected;
    return std::unique_ptr<Discovery>(std::move(discovery));
}

}  // namespace peermq::detail
