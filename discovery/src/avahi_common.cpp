#include "avahi_common.hpp"

#include <avahi-common/alternative.h>
#include <avahi-common/malloc.h>
#include <avahi-core/log.h>
#include <net/if.h>

#include <cstdlib>
#include <cstring>
#include <exception>

#include "txt_record.hpp"

namespace peermq::detail {
namespace {

// Called by avahi-core (C): nothing may escape it.
void filtered_avahi_log(AvahiLogLevel level, const char* text) noexcept {
    static const bool verbose = [] {
        const char* value = std::getenv("PEERMQ_AVAHI_LOG");
        return value != nullptr && std::strcmp(value, "1") == 0;
    }();
    const LogLevel ours = level == AVAHI_LOG_ERROR ? LogLevel::warn
                          : verbose                ? LogLevel::info
                                                   : LogLevel::debug;
    try {
        PEERMQ_LOG(process_logger(), ours, "avahi-core", text == nullptr ? "" : text);
    } catch (...) {
        // A log line lost (out of memory) is all it costs.
    }
}

}  // namespace

void log_line(std::string_view text, LogLevel level) {
    PEERMQ_LOG(process_logger(), level, "discovery", text);
}

void install_avahi_log_filter() {
    static std::once_flag once;
    std::call_once(once, [] { avahi_set_log_function(filtered_avahi_log); });
}

std::vector<std::string> to_strings(AvahiStringList* list) {
    std::vector<std::string> strings;
    for (AvahiStringList* item = list; item != nullptr; item = avahi_string_list_get_next(item)) {
        const auto* text = reinterpret_cast<const char*>(avahi_string_list_get_text(item));
        strings.emplace_back(text, avahi_string_list_get_size(item));
    }
    return strings;
}

AvahiStringList* to_string_list(const std::vector<std::string>& strings) {
    AvahiStringList* list = nullptr;
    // avahi_string_list_add() prepends: add in reverse to keep the order on the wire.
    for (auto it = strings.rbegin(); it != strings.rend(); ++it) {
        list = avahi_string_list_add_arbitrary(
            list, reinterpret_cast<const std::uint8_t*>(it->data()), it->size());
    }
    return list;
}

std::string address_literal(const AvahiAddress& address, std::string_view interface_name) {
    char text[AVAHI_ADDRESS_STR_MAX] = {};
    if (avahi_address_snprint(text, sizeof text, &address) == nullptr) return {};
    std::string literal(text);
    if (address.proto == AVAHI_PROTO_INET6 && !interface_name.empty() &&
        address.data.ipv6.address[0] == 0xfe && (address.data.ipv6.address[1] & 0xc0) == 0x80) {
        literal += "%";
        literal += interface_name;
    }
    return literal;
}

std::string interface_name(int index) {
    if (index <= 0) return {};
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(static_cast<unsigned>(index), name) == nullptr) return {};
    return name;
}

Result<std::vector<int>> interface_indexes(const std::vector<std::string>& names) {
    std::vector<int> indexes;
    for (const auto& name : names) {
        const unsigned index = if_nametoindex(name.c_str());
        if (index == 0) {
            return make_error(ErrorCode::unknown_interface,
                              "network interface '" + name + "' does not exist");
        }
        indexes.push_back(static_cast<int>(index));
    }
    return indexes;
}

std::string alternative_service_name(const std::string& name) {
    const std::unique_ptr<char, decltype(&avahi_free)> alternative(
        avahi_alternative_service_name(name.c_str()), &avahi_free);
    return alternative ? alternative.get() : name;
}

std::string alternative_host_name(const std::string& name) {
    const std::unique_ptr<char, decltype(&avahi_free)> alternative(
        avahi_alternative_host_name(name.c_str()), &avahi_free);
    return alternative ? alternative.get() : name;
}

PollThread::~PollThread() {
    if (poll_ != nullptr) avahi_threaded_poll_free(poll_);
}

Status PollThread::create() {
    poll_ = avahi_threaded_poll_new();
    if (poll_ == nullptr) return make_error(ErrorCode::internal, "avahi_threaded_poll_new failed");
    return {};
}

Status PollThread::start() {
    if (avahi_threaded_poll_start(poll_) < 0) {
        return make_error(ErrorCode::internal, "could not start the Avahi poll thread");
    }
    running_ = true;
    return {};
}

Status Announcement::set(const ServiceRecord& record) {
    enabled = record.inbox_port != 0;
    if (enabled && (record.id.is_nil() || record.cluster.empty())) {
        return make_error(ErrorCode::invalid_argument,
                          "a node announced by DNS-SD needs an id and a cluster");
    }
    self = record;
    service_name = instance_name(record);
    txt = format_txt(record);
    return {};
}

void EventRelay::reset(PeerTable table, DiscoverySink sink) {
    MutexLock lock(mutex_);
    table_.emplace(std::move(table));
    sink_ = std::move(sink);
}

std::map<std::string, std::uint64_t> EventRelay::ignored() const {
    std::map<std::string, std::uint64_t> out;
    {
        MutexLock lock(mutex_);
        if (table_) out = table_->ignored();
    }
    if (const std::uint64_t n = callback_errors_.load(std::memory_order_relaxed); n != 0) {
        out["callback.exception"] += n;
    }
    return out;
}

void EventRelay::deliver(const std::vector<DiscoveryEvent>& events) {
    // One event the sink fails on costs that event, not the ones after it.
    for (const auto& event : events)
        guard("the event sink", [&] {
            if (sink_) sink_(event);
        });
}

void EventRelay::caught(std::string_view callback, std::exception_ptr error) noexcept {
    callback_errors_.fetch_add(1, std::memory_order_relaxed);
    try {
        PEERMQ_LOG(process_logger(), LogLevel::error, "discovery",
                   "exception caught in a discovery callback", {"callback", callback},
                   {"error", exception_text(error)});
    } catch (...) {
        // Nothing left to tell it with; the count stands.
    }
}

}  // namespace peermq::detail
