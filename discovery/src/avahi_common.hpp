// Small pieces shared by the two Avahi backends: the poll thread and its lock, what a node
// announces and how its service record is added, conversions between Avahi and peermq types,
// event delivery and logging. What they share beyond these pieces: AvahiBackend
// (avahi_backend.hpp: start, stop and their state) and ServiceBrowser (service_browser.hpp:
// browse and resolve).
#pragma once

#include <avahi-common/address.h>
#include <avahi-common/error.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>

#include <atomic>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peer_table.hpp"
#include "peermq/discovery.hpp"
#include "peermq/discovery/avahi.hpp"
#include "peermq/log.hpp"
#include "peermq/status.hpp"
#include "util/mutex.hpp"
#include "util/strings.hpp"

namespace peermq::detail {

// Holds an AvahiThreadedPoll's lock: required for every Avahi call made outside its thread.
class PollLock {
public:
    explicit PollLock(AvahiThreadedPoll* poll) : poll_(poll) { avahi_threaded_poll_lock(poll_); }
    ~PollLock() { avahi_threaded_poll_unlock(poll_); }
    PollLock(const PollLock&) = delete;
    PollLock& operator=(const PollLock&) = delete;

private:
    AvahiThreadedPoll* poll_;
};

// The AvahiThreadedPoll a backend's callbacks run on: create() makes it, start() starts its
// thread, stop() stops it; the destructor frees it (after the backend freed what runs on it).
// Only its backend calls these, from one thread at a time.
class PollThread {
public:
    PollThread() = default;
    ~PollThread();
    PollThread(const PollThread&) = delete;
    PollThread& operator=(const PollThread&) = delete;

    Status create();
    const AvahiPoll* api() const { return avahi_threaded_poll_get(poll_); }
    Status start();
    // Runs `teardown` where no callback can run beside it (under the poll's lock while the thread
    // runs), then stops the thread: no callback runs after this returns.
    template <typename Teardown>
    void stop(Teardown&& teardown) {
        {
            std::optional<PollLock> lock;
            if (running_) lock.emplace(poll_);
            teardown();
        }
        if (running_) {
            avahi_threaded_poll_stop(poll_);
            running_ = false;
        }
    }

private:
    AvahiThreadedPoll* poll_ = nullptr;
    bool running_ = false;
};

// One record of component "discovery" through peermq::process_logger() (peermq/log.hpp): a
// discovery backend runs outside any node. Most of what the backends say is a problem: warn.
void log_line(std::string_view text, LogLevel level = LogLevel::warn);

// Routes the embedded stack's log (avahi-core logs every interface join, and warns about the
// avahi-daemon it coexists with on purpose) to process_logger() as component "avahi-core":
// its errors at warn, the rest at debug (at info when the environment sets PEERMQ_AVAHI_LOG=1).
// Process-wide; installed once.
void install_avahi_log_filter();

std::vector<std::string> to_strings(AvahiStringList* list);
// Caller frees with avahi_string_list_free().
AvahiStringList* to_string_list(const std::vector<std::string>& strings);

// "127.0.0.1"; IPv6 link-local addresses get "%<interface>" so that they can be connected to.
std::string address_literal(const AvahiAddress& address, std::string_view interface_name);

// if_indextoname(), or "" when the index is unknown.
std::string interface_name(int index);

// Checks that every named interface exists; their indexes, in the given order.
Result<std::vector<int>> interface_indexes(const std::vector<std::string>& names);

// avahi_alternative_service_name() / avahi_alternative_host_name(): "name" → "name #2" → ...
std::string alternative_service_name(const std::string& name);
std::string alternative_host_name(const std::string& name);

// What a backend announces for its node (docs/spec/discovery.md §2-§4), fixed by start(). A
// node without an inbox port (a browse only, like `peermq doctor`'s) announces nothing.
struct Announcement {
    bool enabled = false;
    ServiceRecord self;
    std::string service_name;  // the DNS-SD instance name; renamed on collisions (§4)
    std::vector<std::string> txt;

    // invalid_argument when `record` is to be announced without an id or a cluster.
    Status set(const ServiceRecord& record);
};

// Adds `announcement`'s service record on each of `indexes` through `add(index, txt)` (the TXT
// list built once), then commits it through `commit()`. Returns AVAHI_ERR_COLLISION when the
// name is taken locally (nothing committed: the caller renames and adds again); any other
// failure is logged here.
template <typename Add, typename Commit>
int add_service(const Announcement& announcement, const std::vector<int>& indexes, Add&& add,
                Commit&& commit) {
    int result = AVAHI_OK;
    {
        const std::unique_ptr<AvahiStringList, decltype(&avahi_string_list_free)> txt(
            to_string_list(announcement.txt), &avahi_string_list_free);
        for (int index : indexes) {
            result = add(index, txt.get());
            if (result < 0) break;
        }
    }
    if (result == AVAHI_ERR_COLLISION) return result;
    if (result < 0) {
        log_line("cannot announce '" + announcement.service_name + "': " + avahi_strerror(result));
        return result;
    }
    if (const int committed = commit(); committed < 0) {
        log_line(std::string("cannot commit the DNS-SD record: ") + avahi_strerror(committed));
    }
    return AVAHI_OK;
}

// The table of one backend with the lock that lets ignored() read it from the node's thread,
// and the sink the events go to. Events are delivered outside the table's lock.
//
// Everything a backend does in an Avahi callback runs through guard() or apply(): an
// exception must never unwind through Avahi's C frames. One that reaches them (of any type) is
// logged at error and counted as "callback.exception" in ignored(), and the poll thread goes on.
class EventRelay {
public:
    void reset(PeerTable table, DiscoverySink sink);
    // Runs `change` on the table under its lock, then delivers the events it produced.
    template <typename Change>
    void apply(Change&& change) noexcept {
        guard("a table change", [&] {
            std::vector<DiscoveryEvent> events;
            {
                MutexLock lock(mutex_);
                if (!table_) return;
                events = change(*table_);
            }
            deliver(events);
        });
    }
    // Runs the body of the Avahi callback `callback` ("browse", "resolve", ...).
    template <typename Body>
    void guard(std::string_view callback, Body&& body) noexcept {
        try {
            body();
        } catch (...) {
            caught(callback, std::current_exception());
        }
    }
    std::map<std::string, std::uint64_t> ignored() const;

private:
    void deliver(const std::vector<DiscoveryEvent>& events);
    void caught(std::string_view callback, std::exception_ptr error) noexcept;

    mutable Mutex mutex_;
    std::optional<PeerTable> table_ PEERMQ_GUARDED_BY(mutex_);
    DiscoverySink sink_;  // set by reset() before the poll thread starts; then read-only
    std::atomic<std::uint64_t> callback_errors_{0};
};

}  // namespace peermq::detail
