// The avahi-daemon backend: avahi-client over D-Bus, driven by an AvahiThreadedPoll.
#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/error.h>
#include <avahi-common/timeval.h>

#include <chrono>
#include <memory>

#include "avahi_backend.hpp"
#include "avahi_calls.hpp"
#include "backends.hpp"
#include "service_browser.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

// After a reconnect, peers not seen again within this time are reported lost. The restarted
// daemon has an empty cache; re-learning the LAN takes about one query round (~1 s) plus
// resolution (~1 s), so this leaves a wide margin.
constexpr auto kResyncGrace = 10s;
// Retry interval when a new client cannot even be created (e.g. the system bus is down).
constexpr auto kReconnectRetry = 1s;

class AvahiDaemonDiscovery final : public AvahiBackend {
public:
    explicit AvahiDaemonDiscovery(discovery::AvahiOptions options)
        : AvahiBackend(std::move(options)),
          browser_(relay_, options_.service_type, protocol_, options_.interfaces) {}

    ~AvahiDaemonDiscovery() override {
        stop();
        if (client_ != nullptr) avahi_client_free(client_);
    }

    Status connect() {
        if (Status created = poll_.create(); !created.ok()) return created;
        int error = 0;
        // Without AVAHI_CLIENT_NO_FAIL: a missing daemon is reported now, so automatic() can
        // choose another backend. Reconnects later use NO_FAIL.
        AvahiClient* client = avahi_client_new(poll_.api(), static_cast<AvahiClientFlags>(0),
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
        auto indexes = begin(self, std::move(sink));
        if (!indexes) return indexes.status();
        publish_indexes_ = std::move(indexes).value();
        started_ = true;
        share_resolves(browser_);

        // The poll thread does not run yet: Avahi may be called directly.
        const AvahiClientState state = avahi_client_get_state(client_);
        if (state == AVAHI_CLIENT_S_RUNNING || state == AVAHI_CLIENT_S_REGISTERING ||
            state == AVAHI_CLIENT_S_COLLISION) {
            if (Status browsing = start_browsing(); !browsing.ok()) return browsing;
        }
        if (state == AVAHI_CLIENT_S_RUNNING) register_service();
        return poll_.start();
    }

private:
    void teardown() override {
        browser_.stop();
        // Freeing the group withdraws the record: the daemon sends goodbye packets.
        if (group_ != nullptr) avahi_entry_group_free(group_);
        group_ = nullptr;
        cancel_timer(resync_timer_);
        cancel_timer(reconnect_timer_);
    }

    void cancel_timer(AvahiTimeout*& timer) {
        if (timer != nullptr) poll_.api()->timeout_free(timer);
        timer = nullptr;
    }

    AvahiTimeout* start_timer(std::chrono::milliseconds delay, AvahiTimeoutCallback callback) {
        timeval when{};
        avahi_elapse_time(&when, static_cast<unsigned>(delay.count()), 0);
        return poll_.api()->timeout_new(poll_.api(), &when, callback, this);
    }

    Status start_browsing() {
        if (browser_.browsing()) return {};
        if (Status browsing = browser_.start(client_); !browsing.ok()) {
            log_line(browsing.message());
            return browsing;
        }
        if (resyncing_) {
            cancel_timer(resync_timer_);
            resync_timer_ = start_timer(kResyncGrace, &resync_timeout);
        }
        return {};
    }

    void rename_service() {
        std::string& name = announcement_.service_name;
        const std::string alternative = alternative_service_name(name);
        log_line("DNS-SD name collision on '" + name + "': renamed to '" + alternative + "'");
        name = alternative;
    }

    // Adds the service to the (new or reset) entry group and commits it.
    void register_service() {
        if (!announcement_.enabled || client_ == nullptr) return;
        if (!renew_entry_group(client_, group_, &group_callback, this)) return;
        std::vector<int> indexes = publish_indexes_;
        if (indexes.empty()) indexes.push_back(AVAHI_IF_UNSPEC);
        // A local collision (another client of this daemon owns the name) is reported at once.
        for (int attempt = 0; attempt < 20; ++attempt) {
            const int added = add_service(
                announcement_, indexes,
                [&](int index, AvahiStringList* txt) {
                    return avahi_entry_group_add_service_strlst(
                        group_, index, protocol_, static_cast<AvahiPublishFlags>(0),
                        announcement_.service_name.c_str(), options_.service_type.c_str(), nullptr,
                        nullptr, announcement_.self.inbox_port, txt);
                },
                [&] { return avahi_entry_group_commit(group_); });
            if (added != AVAHI_ERR_COLLISION) return;
            rename_service();
            avahi_entry_group_reset(group_);
        }
        log_line("giving up announcing after 20 name collisions");
    }

    // The daemon went away (restart): drop everything the old client owned and connect again;
    // the new client announces and browses once the daemon is back.
    void reconnect() {
        log_line("avahi-daemon disconnected; reconnecting (the node keeps running)");
        // avahi_client_free() below frees the browser and resolvers with the old client.
        browser_.forget();
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
            avahi_client_new(poll_.api(), AVAHI_CLIENT_NO_FAIL, &client_callback, this, &error);
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

    std::vector<int> publish_indexes_;  // empty: every interface

    // Owned. After start() only the poll thread (or a holder of the poll lock) touches these.
    AvahiClient* client_ = nullptr;
    AvahiEntryGroup* group_ = nullptr;
    ServiceBrowser<AvahiClient> browser_;
    AvahiTimeout* resync_timer_ = nullptr;
    AvahiTimeout* reconnect_timer_ = nullptr;
    bool resyncing_ = false;
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
