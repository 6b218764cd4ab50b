// Small pieces shared by the two Avahi backends: the poll thread and its lock, conversions
// between Avahi and peermq types, event delivery and logging.
#pragma once

#include <avahi-common/address.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>

#include <atomic>
#include <exception>
#include <map>
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

std::string join(const std::vector<std::string>& items, std::string_view separator);

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
