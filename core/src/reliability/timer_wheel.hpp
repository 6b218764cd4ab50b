// TimerWheel: one hashed timing wheel holding the retry (backoff) deadlines of a node. Ack
// deadlines are not here: they are a FIFO per queue (docs/spec/reliability.md §13).
//
// A fixed tick (e.g. 1 ms) and a fixed number of slots (e.g. 4096); a deadline lands in slot
// (tick number mod slots) and remembers its absolute tick, so deadlines more than one revolution
// ahead simply wait in their slot until the wheel comes round to their tick (the "rounds" of
// Varghese & Lauck's scheme 6). Each key has at most one deadline.
//
// Costs, independent of the number of timers: schedule, reschedule and cancel are a hash lookup,
// an intrusive list splice and, when a slot's earliest deadline improves, log2(slots) steps up
// a tournament tree of slot minima (12 for 4096 slots). Nothing is left behind by cancel, so
// memory follows size() under any churn. next_due() reads the tree's root; a slot whose earliest
// entry was removed is rescanned only when it reaches the root. expire() visits the occupied
// slots between its previous call and now (a bitmap, slots / 64 words) and sorts what fires.
//
// Time is an argument: the wheel never reads a clock. Not thread-safe: owned by the node's actor
// thread. Keys must be copyable, hashable with Hash and equality-comparable.
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace peermq::detail {

template <class Key, class Hash = std::hash<Key>>
class TimerWheel {
public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;
    using Duration = Clock::duration;

    // `tick` is the resolution of the slots, not of firing: expire() compares exact deadlines.
    // One revolution spans tick * slots. A non-positive tick is taken as 1 ms, and the slot
    // count is clamped to [1, 2^24].
    TimerWheel(Duration tick, std::size_t slots, TimePoint start)
        : tick_(tick > Duration::zero() ? tick : std::chrono::milliseconds(1)),
          start_(start),
          slots_(std::clamp<std::size_t>(slots, 1, kMaxSlots)),
          occupied_((slots_.size() + 63) / 64, 0),
          leaves_(std::bit_ceil(slots_.size())),
          tree_(2 * leaves_, kNoSlot) {
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            tree_[leaves_ + i] = static_cast<std::uint32_t>(i);
        }
        for (std::size_t node = leaves_ - 1; node >= 1; --node) {
            tree_[node] = winner(tree_[2 * node], tree_[2 * node + 1]);
        }
    }

    TimerWheel(const TimerWheel&) = delete;  // slots point into entries_
    TimerWheel& operator=(const TimerWheel&) = delete;

    // Arms `key` to fire at `due`, replacing its previous deadline if it had one. A deadline in
    // the past fires at the next expire(). Scheduled from inside an expire() callback, a key never
    // fires within that same call, even if already due (no livelock on a self-rescheduling key).
    void schedule(const Key& key, TimePoint due) {
        auto [it, inserted] = entries_.try_emplace(key);
        Node* node = &*it;
        Entry& entry = node->second;
        if (!inserted && entry.slot != kUnlinked) unlink(node);
        entry.due = due;
        entry.tick = std::max(tick_of(due), cursor_);
        entry.seq = ++seq_;
        link(node);
    }

    // Disarms `key`; false if it was not scheduled (never, already fired, or cancelled).
    bool cancel(const Key& key) {
        auto it = entries_.find(key);
        if (it == entries_.end()) return false;
        if (it->second.slot != kUnlinked) unlink(&*it);
        entries_.erase(it);
        return true;
    }

    // Calls on_expired(key) once for every key whose deadline is at or before `now`, in deadline
    // order (ties in scheduling order), and removes it before the call, so the callback may
    // schedule it again or cancel others. A key cancelled or rescheduled by an earlier callback
    // of the same call does not fire. Returns how many fired. If a callback throws, the keys not
    // yet fired stay scheduled and the exception propagates.
    template <class F>
    std::size_t expire(TimePoint now, F&& on_expired) {
        const std::uint64_t now_tick = std::max(tick_of(now), cursor_);
        std::vector<Due> batch;
        collect_due(now, now_tick, batch);
        cursor_ = now_tick;
        if (batch.empty()) return 0;
        std::sort(batch.begin(), batch.end(), [](const Due& a, const Due& b) {
            return a.due != b.due ? a.due < b.due : a.seq < b.seq;
        });

        std::size_t fired = 0;
        std::size_t next = 0;
        // Collected keys are on no slot until they fire: next_due() looks at them through
        // firing_, and they go back on the wheel if a callback throws.
        struct Firing {
            TimerWheel* wheel;
            std::vector<Due>* batch;
            std::size_t* next;
            const std::vector<Due>* outer_batch;
            const std::size_t* outer_next;
            ~Firing() {
                wheel->firing_ = outer_batch;
                wheel->firing_next_ = outer_next;
                for (std::size_t i = *next; i < batch->size(); ++i) wheel->relink((*batch)[i]);
            }
        } guard{this, &batch, &next, firing_, firing_next_};
        firing_ = &batch;
        firing_next_ = &next;
        while (next < batch.size()) {
            const Due& item = batch[next++];
            auto it = entries_.find(item.key);
            if (it == entries_.end() || it->second.seq != item.seq) continue;
            entries_.erase(it);
            ++fired;
            on_expired(item.key);
        }
        return fired;
    }

    // The earliest deadline still scheduled; nullopt when empty.
    std::optional<TimePoint> next_due() const {
        if (entries_.empty()) return std::nullopt;
        std::optional<TimePoint> earliest = earliest_on_slots();
        if (firing_ != nullptr) {
            // Inside a callback: keys collected for firing are scheduled but on no slot. The
            // batch is sorted, so its first live key is its earliest.
            for (std::size_t i = *firing_next_; i < firing_->size(); ++i) {
                const Due& item = (*firing_)[i];
                auto it = entries_.find(item.key);
                if (it != entries_.end() && it->second.seq == item.seq) {
                    if (!earliest || item.due < *earliest) earliest = item.due;
                    break;
                }
            }
        }
        return earliest;
    }

    bool contains(const Key& key) const { return entries_.count(key) != 0; }
    // The deadline of `key`, if scheduled.
    std::optional<TimePoint> due(const Key& key) const {
        auto it = entries_.find(key);
        if (it == entries_.end()) return std::nullopt;
        return it->second.due;
    }
    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }
    Duration tick() const noexcept { return tick_; }
    std::size_t slot_count() const noexcept { return slots_.size(); }

    void clear() {
        entries_.clear();
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            slots_[i] = Slot{};
            update_tree(i);
        }
        std::fill(occupied_.begin(), occupied_.end(), 0);
    }

private:
    static constexpr std::size_t kUnlinked = std::numeric_limits<std::size_t>::max();
    static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();
    static constexpr std::size_t kMaxSlots = std::size_t{1} << 24;

    struct Entry;
    // Nodes of an unordered_map never move, so slots can link them directly.
    using Node = std::pair<const Key, Entry>;

    struct Entry {
        TimePoint due{};
        std::uint64_t tick = 0;  // absolute tick number since start_, never below cursor_
        std::uint64_t seq = 0;   // tells a rescheduled key from the one collected for firing
        std::size_t slot = kUnlinked;
        Node* prev = nullptr;
        Node* next = nullptr;
    };

    // Deadlines order the same way as (tick, due): a key's tick is the floor of its deadline,
    // or the cursor for a deadline already past, which is below every other tick.
    struct Slot {
        Node* head = nullptr;
        std::size_t count = 0;
        // Lower bound of the earliest (tick, due) in the slot: exact unless min_stale. Mutable
        // because next_due() refreshes it.
        mutable std::uint64_t min_tick = 0;
        mutable TimePoint min_due{};
        mutable bool min_stale = false;
    };

    struct Due {
        Key key;
        TimePoint due;
        std::uint64_t seq;
    };

    std::uint64_t tick_of(TimePoint t) const {
        if (t <= start_) return 0;
        return static_cast<std::uint64_t>((t - start_) / tick_);
    }

    // Tournament tree over slot minima: tree_[1] is the slot holding the earliest deadline
    // (up to stale lower bounds, which next_due() resolves).
    std::uint32_t winner(std::uint32_t a, std::uint32_t b) const {
        if (a == kNoSlot || slots_[a].count == 0) return b;
        if (b == kNoSlot || slots_[b].count == 0) return a;
        const Slot& x = slots_[a];
        const Slot& y = slots_[b];
        return std::pair(y.min_tick, y.min_due) < std::pair(x.min_tick, x.min_due) ? b : a;
    }

    void update_tree(std::size_t slot) const {
        for (std::size_t node = (leaves_ + slot) / 2; node >= 1; node /= 2) {
            tree_[node] = winner(tree_[2 * node], tree_[2 * node + 1]);
        }
    }

    void link(Node* node) {
        Entry& entry = node->second;
        const std::size_t index = static_cast<std::size_t>(entry.tick % slots_.size());
        Slot& slot = slots_[index];
        entry.slot = index;
        entry.prev = nullptr;
        entry.next = slot.head;
        if (slot.head != nullptr) slot.head->second.prev = node;
        slot.head = node;
        if (slot.count++ == 0) {
            occupied_[index / 64] |= std::uint64_t{1} << (index % 64);
        } else if (!(std::pair(entry.tick, entry.due) < std::pair(slot.min_tick, slot.min_due))) {
            return;
        }
        // Below a lower bound of the others: the exact minimum, even if the bound was stale.
        slot.min_tick = entry.tick;
        slot.min_due = entry.due;
        slot.min_stale = false;
        update_tree(index);
    }

    void unlink(Node* node) {
        Entry& entry = node->second;
        const std::size_t index = entry.slot;
        Slot& slot = slots_[index];
        if (entry.prev != nullptr) {
            entry.prev->second.next = entry.next;
        } else {
            slot.head = entry.next;
        }
        if (entry.next != nullptr) entry.next->second.prev = entry.prev;
        entry.slot = kUnlinked;
        entry.prev = entry.next = nullptr;
        if (--slot.count == 0) {
            occupied_[index / 64] &= ~(std::uint64_t{1} << (index % 64));
            slot.min_stale = false;
            update_tree(index);
        } else if (entry.tick == slot.min_tick && entry.due == slot.min_due) {
            slot.min_stale = true;  // still a lower bound: the tree stays valid, only pessimistic
        }
    }

    // Puts a collected-but-unfired key back on the wheel (after a throwing callback).
    void relink(const Due& item) {
        auto it = entries_.find(item.key);
        if (it == entries_.end() || it->second.seq != item.seq || it->second.slot != kUnlinked) {
            return;
        }
        it->second.tick = std::max(it->second.tick, cursor_);
        link(&*it);
    }

    void refresh_min(std::size_t index) const {
        const Slot& slot = slots_[index];
        bool first = true;
        for (Node* node = slot.head; node != nullptr; node = node->second.next) {
            const Entry& e = node->second;
            if (first || std::pair(e.tick, e.due) < std::pair(slot.min_tick, slot.min_due)) {
                slot.min_tick = e.tick;
                slot.min_due = e.due;
                first = false;
            }
        }
        slot.min_stale = false;
        update_tree(index);
    }

    std::optional<TimePoint> earliest_on_slots() const {
        for (;;) {
            const std::uint32_t top = tree_[1];
            if (top == kNoSlot || slots_[top].count == 0) return std::nullopt;
            // Every other slot's bound is at least this one; once exact, it is the minimum.
            if (!slots_[top].min_stale) return slots_[top].min_due;
            refresh_min(top);
        }
    }

    // Calls f(index) for each occupied slot in [first, last), last <= slot count.
    template <class F>
    void for_occupied(std::size_t first, std::size_t last, F&& f) {
        std::size_t index = first;
        while (index < last) {
            const std::uint64_t word = occupied_[index / 64] >> (index % 64);
            if (word == 0) {
                index = (index / 64 + 1) * 64;
                continue;
            }
            index += static_cast<std::size_t>(std::countr_zero(word));
            if (index >= last) break;
            f(index);
            ++index;
        }
    }

    // Unlinks into `batch` every entry due at `now` (tick <= now_tick and due <= now). Ticks
    // cursor_..now_tick are visited once each, at most one revolution of slots.
    void collect_due(TimePoint now, std::uint64_t now_tick, std::vector<Due>& batch) {
        const std::size_t n = slots_.size();
        const std::uint64_t ticks = now_tick - cursor_ + 1;
        const std::size_t span = ticks >= n ? n : static_cast<std::size_t>(ticks);
        const std::size_t first = static_cast<std::size_t>(cursor_ % n);
        auto visit = [&](std::size_t index) {
            Slot& slot = slots_[index];
            const std::size_t before = slot.count;
            for (Node* node = slot.head; node != nullptr;) {
                Node* next = node->second.next;
                const Entry& entry = node->second;
                if (entry.tick <= now_tick && entry.due <= now) {
                    batch.push_back(Due{node->first, entry.due, entry.seq});
                    unlink(node);
                }
                node = next;
            }
            if (slot.count != 0 && slot.count != before) refresh_min(index);
        };
        for_occupied(first, std::min(n, first + span), visit);
        if (first + span > n) for_occupied(0, first + span - n, visit);
    }

    Duration tick_;
    TimePoint start_;
    std::vector<Slot> slots_;
    std::vector<std::uint64_t> occupied_;  // bit i set <=> slots_[i].count != 0
    std::size_t leaves_;
    mutable std::vector<std::uint32_t> tree_;  // winner tree; leaves at [leaves_, 2 * leaves_)
    std::unordered_map<Key, Entry, Hash> entries_;
    std::uint64_t cursor_ = 0;  // every tick before this one has been expired
    std::uint64_t seq_ = 0;
    const std::vector<Due>* firing_ = nullptr;  // the batch expire() is firing, if any
    const std::size_t* firing_next_ = nullptr;
};

}  // namespace peermq::detail
