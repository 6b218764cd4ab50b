// Maps keyed by message id for the per-message bookkeeping of the hot path.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "peermq/uuid.hpp"

namespace peermq::detail {

// A hash map from message id to V, open addressing with linear probing: no allocation per entry
// and one cache line per lookup, for the journal's per-message bookkeeping. Ids hash well as
// they are (UuidHash). Removal shifts the following entries back, so there are no tombstones.
// Not thread-safe.
template <typename V>
class UuidTable {
public:
    V* find(const Uuid& id) {
        if (id == Uuid{}) return has_nil_ ? &nil_value_ : nullptr;
        if (size_ == 0) return nullptr;
        for (std::size_t i = slot_of(id);; i = (i + 1) & mask_) {
            if (slots_[i].first == Uuid{}) return nullptr;
            if (slots_[i].first == id) return &slots_[i].second;
        }
    }
    bool contains(const Uuid& id) { return find(id) != nullptr; }

    // The value of `id`, inserted as `value` when absent (one probe either way); `value` is
    // moved from only when it is inserted.
    std::pair<V*, bool> try_insert(const Uuid& id, V&& value) {
        if (id == Uuid{}) {
            if (has_nil_) return {&nil_value_, false};
            has_nil_ = true;
            nil_value_ = std::move(value);
            return {&nil_value_, true};
        }
        if ((size_ + 1) * 4 > slots_.size() * 3) grow();
        for (std::size_t i = slot_of(id);; i = (i + 1) & mask_) {
            if (slots_[i].first == Uuid{}) {
                slots_[i] = {id, std::move(value)};
                ++size_;
                return {&slots_[i].second, true};
            }
            if (slots_[i].first == id) return {&slots_[i].second, false};
        }
    }

    void insert_or_assign(const Uuid& id, V value) {
        auto [slot, inserted] = try_insert(id, std::move(value));
        // `value` was not moved from when it was not inserted.
        if (!inserted) *slot = std::move(value);  // NOLINT(bugprone-use-after-move)
    }

    // Removes `id`; its value is moved to *removed when given.
    bool erase(const Uuid& id, V* removed = nullptr) {
        if (id == Uuid{}) {
            if (has_nil_ && removed) *removed = std::move(nil_value_);
            return std::exchange(has_nil_, false);
        }
        if (size_ == 0) return false;
        std::size_t i = slot_of(id);
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].first == Uuid{}) return false;
            if (slots_[i].first == id) break;
        }
        if (removed) *removed = std::move(slots_[i].second);
        // Backward shift: move up every later entry of the run that may sit at i.
        for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
            if (slots_[j].first == Uuid{}) break;
            const std::size_t home = slot_of(slots_[j].first);
            // Entry j may move to i when its home is not in (i, j] (cyclically).
            const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (stays) continue;
            slots_[i] = std::move(slots_[j]);
            i = j;
        }
        slots_[i] = {};
        --size_;
        return true;
    }

    // Keeps the table only as big as its latest use needs, so clearing a table that was once
    // large does not cost its peak size every time.
    // Calls f(id, value) for every entry. f must not insert or erase.
    template <typename F>
    void for_each(F&& f) {
        if (has_nil_) f(Uuid{}, nil_value_);
        for (auto& slot : slots_) {
            if (!(slot.first == Uuid{})) f(static_cast<const Uuid&>(slot.first), slot.second);
        }
    }
    std::size_t size() const noexcept { return size_ + (has_nil_ ? 1 : 0); }

    void clear() {
        std::size_t fit = 64;
        while (size_ * 4 > fit * 3) fit *= 2;
        if (slots_.size() > 2 * fit) {
            slots_.assign(fit, Slot{});
            mask_ = fit - 1;
        } else if (size_ > 0) {
            std::fill(slots_.begin(), slots_.end(), Slot{});
        }
        size_ = 0;
        has_nil_ = false;
    }

private:
    using Slot = std::pair<Uuid, V>;

    std::size_t slot_of(const Uuid& id) const { return UuidHash{}(id)&mask_; }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
        mask_ = slots_.size() - 1;
        size_ = 0;
        for (auto& slot : old) {
            if (!(slot.first == Uuid{})) insert_or_assign(slot.first, std::move(slot.second));
        }
    }

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
    bool has_nil_ = false;
    V nil_value_{};
};

// IdMap: values with stable addresses, keyed by message id: a UuidTable of pointers to values
// that come from a free list of the map's own (blocks of one size, allocated 256 at a time and
// reused; std::pmr's pools search for a freed pointer's chunk, this does not). Compared with
// std::unordered_map, an insert or an erase touches no other entry's node and allocates
// nothing once the map has grown. Values are constructed empty (V{}) by try_emplace. Not
// thread-safe.
template <typename V>
class IdMap {
public:
    IdMap() = default;
    ~IdMap() { clear(); }
    IdMap(const IdMap&) = delete;
    IdMap& operator=(const IdMap&) = delete;

    V* find(const Uuid& id) {
        V** value = index_.find(id);
        return value ? *value : nullptr;
    }
    V& at(const Uuid& id) {
        V* value = find(id);
        if (!value) throw std::out_of_range("IdMap::at: no such id");
        return *value;
    }
    // The value of `id`, and whether it was created now.
    std::pair<V*, bool> try_emplace(const Uuid& id) {
        auto [slot, inserted] = index_.try_insert(id, nullptr);
        if (!inserted) return {*slot, false};
        try {
            *slot = ::new (allocate()) V{};
        } catch (...) {
            index_.erase(id);
            throw;
        }
        return {*slot, true};
    }
    void erase(const Uuid& id) {
        V* value = nullptr;
        if (index_.erase(id, &value)) destroy(value);
    }
    template <typename F>
    void for_each(F&& f) {
        index_.for_each([&](const Uuid& id, V* value) { f(id, *value); });
    }
    std::size_t size() const noexcept { return index_.size(); }
    bool empty() const noexcept { return size() == 0; }
    void clear() {
        index_.for_each([this](const Uuid&, V* value) { destroy(value); });
        index_.clear();
    }

private:
    union Block {
        Block* next_free;
        alignas(V) std::byte bytes[sizeof(V)];
    };
    static constexpr std::size_t kBlocksPerChunk = 256;

    void* allocate() {
        if (!free_) {
            auto chunk = std::make_unique<Block[]>(kBlocksPerChunk);
            for (std::size_t i = 0; i < kBlocksPerChunk; ++i) {
                chunk[i].next_free = free_;
                free_ = &chunk[i];
            }
            chunks_.push_back(std::move(chunk));
        }
        Block* block = free_;
        free_ = block->next_free;
        return block->bytes;
    }
    void destroy(V* value) {
        value->~V();
        auto* block = reinterpret_cast<Block*>(value);
        block->next_free = free_;
        free_ = block;
    }

    std::vector<std::unique_ptr<Block[]>> chunks_;
    Block* free_ = nullptr;
    UuidTable<V*> index_;
};

}  // namespace peermq::detail
