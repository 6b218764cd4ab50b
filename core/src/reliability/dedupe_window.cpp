#include "reliability/dedupe_window.hpp"

#include <algorithm>

namespace peermq::detail {

DedupeWindow::DedupeWindow(std::chrono::milliseconds horizon, std::size_t capacity)
    : horizon_(std::max(horizon, std::chrono::milliseconds::zero())), capacity_(capacity) {}

bool DedupeWindow::live(const Seen& seen) const {
    auto it = index_.find(seen.id);
    return it != index_.end() && it->second == seen.seq;
}

void DedupeWindow::pop_front() {
    const Seen& front = order_.front();
    if (live(front)) index_.erase(front.id);
    order_.pop_front();
}

std::size_t DedupeWindow::evict_expired(std::int64_t now_ms) {
    // Clocks that step back do not un-age anything.
    if (!any_time_ || now_ms > latest_ms_) latest_ms_ = now_ms;
    any_time_ = true;
    std::size_t evicted = 0;
    // Remembered for at least the horizon: an id seen at t is kept while now - t <= horizon.
    while (!order_.empty() && latest_ms_ - order_.front().at_ms > horizon_.count()) {
        if (live(order_.front())) ++evicted;
        pop_front();
    }
    return evicted;
}

bool DedupeWindow::check_and_insert(const MessageId& id, std::int64_t now_ms) {
    evict_expired(now_ms);
    auto [it, inserted] = index_.try_emplace(id, next_seq_);
    if (!inserted) return false;
    order_.push_back(Seen{id, latest_ms_, next_seq_++});
    while (index_.size() > capacity_) {
        // Everything left is younger than the horizon, so this eviction is early.
        while (!live(order_.front())) order_.pop_front();
        ++evicted_early_;
        pop_front();
    }
    return true;
}

bool DedupeWindow::erase(const MessageId& id) {
    if (index_.erase(id) == 0) return false;
    // Its entry in order_ is now a tombstone; keep tombstones at most as many as live ids.
    if (order_.size() > 2 * index_.size() + 64) compact();
    return true;
}

void DedupeWindow::compact() {
    std::deque<Seen> kept;
    for (const Seen& seen : order_) {
        if (live(seen)) kept.push_back(seen);
    }
    order_.swap(kept);
}

}  // namespace peermq::detail
