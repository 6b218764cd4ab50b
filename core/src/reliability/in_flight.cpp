#include "reliability/in_flight.hpp"

namespace peermq::detail {

bool Inflight::tried(const NodeId& id) const {
    if (has_tried && (first_tried == id ||
                      std::find(more_tried.begin(), more_tried.end(), id) != more_tried.end())) {
        return true;
    }
    if (!message.failures) return false;
    const auto& earlier = message.failures->tried;
    return std::find(earlier.begin(), earlier.end(), id) != earlier.end();
}

void Inflight::keep_tried() {
    if (!has_tried) return;
    auto& earlier = message.failed().tried;
    auto keep = [&](const NodeId& id) {
        if (std::find(earlier.begin(), earlier.end(), id) == earlier.end()) earlier.push_back(id);
    };
    keep(first_tried);
    for (const auto& id : more_tried) keep(id);
}

void Inflight::add_tried(const NodeId& id) {
    if (!has_tried) {
        first_tried = id;
        has_tried = true;
    } else if (!tried(id)) {
        more_tried.push_back(id);
    }
}

void AckDeadlines::arm(Inflight& entry, Clock::Steady due, std::size_t live) {
    // Emptied slots behind a live one at the front wait at most ack_timeout; compacting when
    // they outnumber the live ones keeps the FIFO proportional to what is in flight.
    if (fifo_.size() > 2 * live + 1024) {
        std::deque<Slot> kept;
        for (const Slot& slot : fifo_) {
            if (!slot.entry) continue;
            slot.entry->ack_slot = kept.size();
            kept.push_back(slot);
        }
        fifo_.swap(kept);
        base_ = 0;
    }
    entry.ack_slot = base_ + fifo_.size();
    entry.ack_armed = true;
    fifo_.push_back(Slot{due, &entry});
}

void AckDeadlines::clear(Inflight& entry) {
    if (!entry.ack_armed) return;
    entry.ack_armed = false;
    fifo_[entry.ack_slot - base_].entry = nullptr;
    drop_cleared_front();
}

Inflight* AckDeadlines::pop_due(Clock::Steady now) {
    while (!fifo_.empty() && fifo_.front().due <= now) {
        Inflight* entry = fifo_.front().entry;
        fifo_.pop_front();
        ++base_;
        if (!entry) continue;
        entry->ack_armed = false;
        drop_cleared_front();
        return entry;
    }
    // An emptied slot left at the front would only wake the actor early.
    drop_cleared_front();
    return nullptr;
}

void AckDeadlines::drop_cleared_front() {
    while (!fifo_.empty() && !fifo_.front().entry) {
        fifo_.pop_front();
        ++base_;
    }
}

}  // namespace peermq::detail
