#include "system/support/event_log.hpp"

namespace peermq::testing {

std::string describe(const DiscoveryEvent& event) {
    const char* kind = event.kind == DiscoveryEvent::Kind::found     ? "found"
                       : event.kind == DiscoveryEvent::Kind::updated ? "updated"
                                                                     : "lost";
    const auto& r = event.record;
    return std::string(kind) + " id=" + r.id.to_string() + " name=" + r.name +
           " cluster=" + r.cluster + " host=" + r.host + " inbox=" + std::to_string(r.inbox_port) +
           " pub=" + std::to_string(r.pub_port) + " iface=" + r.interface + " instance='" +
           r.instance + "'";
}

EventLog::EventLog() : state_(std::make_shared<State>()) {}

DiscoverySink EventLog::sink() {
    return [state = state_](DiscoveryEvent event) {
        std::lock_guard lock(state->mutex);
        state->events.push_back({std::move(event), SteadyClock::now()});
        state->changed.notify_all();
    };
}

std::vector<TimedEvent> EventLog::events() const {
    std::lock_guard lock(state_->mutex);
    return state_->events;
}

namespace {

std::map<NodeId, ServiceRecord> fold(const std::vector<TimedEvent>& events) {
    std::map<NodeId, ServiceRecord> peers;
    for (const auto& e : events) {
        if (e.event.kind == DiscoveryEvent::Kind::lost) {
            peers.erase(e.event.record.id);
        } else {
            peers[e.event.record.id] = e.event.record;
        }
    }
    return peers;
}

}  // namespace

std::map<NodeId, ServiceRecord> EventLog::peers() const { return fold(events()); }

bool EventLog::wait(const std::function<bool(const std::vector<TimedEvent>&)>& done,
                    std::chrono::milliseconds timeout) const {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return done(state_->events); });
}

std::optional<TimedEvent> EventLog::wait_found(const NodeId& id,
                                               std::chrono::milliseconds timeout) const {
    std::optional<TimedEvent> found;
    wait(
        [&](const std::vector<TimedEvent>& events) {
            for (const auto& e : events) {
                if (e.event.record.id == id && e.event.kind == DiscoveryEvent::Kind::found) {
                    found = e;
                    return true;
                }
            }
            return false;
        },
        timeout);
    return found;
}

std::optional<TimedEvent> EventLog::wait_lost(const NodeId& id,
                                              std::chrono::milliseconds timeout) const {
    std::optional<TimedEvent> lost;
    wait(
        [&](const std::vector<TimedEvent>& events) {
            for (const auto& e : events) {
                if (e.event.record.id == id && e.event.kind == DiscoveryEvent::Kind::lost) {
                    lost = e;
                    return true;
                }
            }
            return false;
        },
        timeout);
    return lost;
}

std::optional<TimedEvent> EventLog::wait_event(const NodeId& id, DiscoveryEvent::Kind kind,
                                               SteadyClock::time_point since,
                                               std::chrono::milliseconds timeout) const {
    std::optional<TimedEvent> match;
    wait(
        [&](const std::vector<TimedEvent>& events) {
            for (const auto& e : events) {
                if (e.at >= since && e.event.record.id == id && e.event.kind == kind) {
                    match = e;
                    return true;
                }
            }
            return false;
        },
        timeout);
    return match;
}

std::string EventLog::dump() const {
    std::string text;
    for (const auto& e : events()) text += "  " + describe(e.event) + "\n";
    return text.empty() ? "  (no events)\n" : text;
}

double ms_between(SteadyClock::time_point from, SteadyClock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace peermq::testing
