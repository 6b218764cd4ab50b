// DedupeWindow: the message ids a receiver has seen recently, for effectively_once delivery.
//
// An id is remembered for at least `horizon` after it was first seen, unless more than
// `capacity` ids are remembered at once: then the oldest go first, early, and evicted_early()
// counts them (a window too small for the traffic: duplicates older than the window can get
// through). Ids are evicted in the order they were first seen. Every operation is O(1)
// amortized; memory is proportional to size() (forgotten ids are compacted away).
//
// Time is an argument (milliseconds on any clock that does not go backwards much; a step back
// is treated as no time passing). Not thread-safe: owned by the node's actor thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "peermq/uuid.hpp"

namespace peermq::detail {

class DedupeWindow {
public:
    DedupeWindow(std::chrono::milliseconds horizon, std::size_t capacity);

    // True if `id` was not in the window (first sighting): it is recorded at `now_ms`.
    // False for a duplicate (the original time is kept, not refreshed).
    bool check_and_insert(const MessageId& id, std::int64_t now_ms);

    // Forgets `id` so that its next arrival counts as new: a receiver calls this when the
    // handler failed (NACK), since the sender's retry must be handled, not dropped.
    // False if it was not remembered.
    bool erase(const MessageId& id);

    bool contains(const MessageId& id) const { return index_.count(id) != 0; }

    // Evicts the ids older than the horizon at `now_ms`; check_and_insert does this too.
    // Returns how many were evicted.
    std::size_t evict_expired(std::int64_t now_ms);

    std::size_t size() const noexcept { return index_.size(); }
    std::size_t capacity() const noexcept { return capacity_; }
    std::chrono::milliseconds horizon() const noexcept { return horizon_; }
    // Ids evicted because of capacity while still younger than the horizon.
    std::uint64_t evicted_early() const noexcept { return evicted_early_; }

private:
    struct Seen {
        MessageId id;
        std::int64_t at_ms;
        std::uint64_t seq;  // matches index_[id] unless the id was erased (or re-inserted)
    };

    bool live(const Seen& seen) const;
    void pop_front();
    void compact();

    std::chrono::milliseconds horizon_;
    std::size_t capacity_;
    std::deque<Seen> order_;  // first-seen order, with tombstones of erased ids
    std::unordered_map<MessageId, std::uint64_t, UuidHash> index_;  // id -> seq
    std::uint64_t next_seq_ = 0;
    std::int64_t latest_ms_ = 0;
    bool any_time_ = false;
    std::uint64_t evicted_early_ = 0;
};

}  // namespace peermq::detail
