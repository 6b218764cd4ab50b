// Ring: a double-ended FIFO in one circular buffer, for the per-message queues of the hot path
// (messages waiting to be sent, jobs waiting for a handler).
//
// std::deque allocates a block every 512 bytes, so a queue of 200-byte messages calls malloc
// for every second push and free for every second pop. A ring allocates only when it grows (to
// the next power of two), and gives the memory of a burst back once a whole buffer's worth of
// elements has passed through without it filling a quarter of it. Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <utility>

namespace peermq::detail {

template <typename T>
class Ring {
public:
    Ring() = default;
    ~Ring() {
        clear();
        release(slots_);
    }
    Ring(Ring&& other) noexcept
        : slots_(std::exchange(other.slots_, nullptr)),
          mask_(std::exchange(other.mask_, 0)),
          head_(std::exchange(other.head_, 0)),
          size_(std::exchange(other.size_, 0)),
          peak_(std::exchange(other.peak_, 0)),
          passed_(std::exchange(other.passed_, 0)) {}
    Ring& operator=(Ring&& other) noexcept {
        if (this != &other) {
            clear();
            release(slots_);
            slots_ = std::exchange(other.slots_, nullptr);
            mask_ = std::exchange(other.mask_, 0);
            head_ = std::exchange(other.head_, 0);
            size_ = std::exchange(other.size_, 0);
            peak_ = std::exchange(other.peak_, 0);
            passed_ = std::exchange(other.passed_, 0);
        }
        return *this;
    }
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }

    T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & mask_]; }
    const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & mask_]; }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    template <typename... Args>
    T& emplace_back(Args&&... args) {
        if (size_ == capacity()) grow();
        T* slot = &slots_[(head_ + size_) & mask_];
        ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
        ++size_;
        return *slot;
    }
    void push_back(T&& value) { emplace_back(std::move(value)); }

    void push_front(T&& value) {
        if (size_ == capacity()) grow();
        const std::size_t at = (head_ + mask_) & mask_;
        ::new (static_cast<void*>(&slots_[at])) T(std::move(value));
        head_ = at;
        ++size_;
    }

    void pop_front() noexcept { erase_front(1); }

    // Removes the first n elements (n <= size()).
    void erase_front(std::size_t n) noexcept {
        peak_ = std::max(peak_, size_);
        for (std::size_t i = 0; i < n; ++i) {
            slots_[head_].~T();
            head_ = (head_ + 1) & mask_;
        }
        size_ -= n;
        if (size_ == 0) head_ = 0;
        passed_ += n;
        maybe_shrink();
    }

    // Removes, keeping the order of the rest, every element for which pred returns true. The
    // predicate may move from an element it removes.
    template <typename Pred>
    std::size_t erase_if(Pred pred) {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < size_; ++i) {
            T& element = (*this)[i];
            if (pred(element)) continue;
            if (kept != i) (*this)[kept] = std::move(element);
            ++kept;
        }
        const std::size_t removed = size_ - kept;
        for (std::size_t i = kept; i < size_; ++i) (*this)[i].~T();
        peak_ = std::max(peak_, size_);
        size_ = kept;
        if (size_ == 0) head_ = 0;
        passed_ += removed;
        maybe_shrink();
        return removed;
    }

    void clear() noexcept {
        for (std::size_t i = 0; i < size_; ++i) (*this)[i].~T();
        size_ = 0;
        head_ = 0;
    }

    template <typename Ref, typename Owner>
    class Iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = std::remove_reference_t<Ref>*;
        using reference = Ref;

        Iterator() = default;
        Iterator(Owner* ring, std::size_t i) : ring_(ring), i_(i) {}
        Ref operator*() const { return (*ring_)[i_]; }
        pointer operator->() const { return &(*ring_)[i_]; }
        Iterator& operator++() {
            ++i_;
            return *this;
        }
        Iterator operator++(int) {
            Iterator before = *this;
            ++i_;
            return before;
        }
        bool operator==(const Iterator& other) const { return i_ == other.i_; }

    private:
        Owner* ring_ = nullptr;
        std::size_t i_ = 0;
    };
    using iterator = Iterator<T&, Ring>;
    using const_iterator = Iterator<const T&, const Ring>;

    iterator begin() { return {this, 0}; }
    iterator end() { return {this, size_}; }
    const_iterator begin() const { return {this, 0}; }
    const_iterator end() const { return {this, size_}; }

private:
    static constexpr std::size_t kMinCapacity = 16;
    // Below this capacity a ring keeps its buffer however empty it gets.
    static constexpr std::size_t kShrinkAbove = 4096;

    static T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignof(T)}));
    }
    static void release(T* slots) noexcept {
        if (slots) ::operator delete (slots, std::align_val_t{alignof(T)});
    }

    void resize(std::size_t capacity) {
        T* slots = allocate(capacity);
        for (std::size_t i = 0; i < size_; ++i) {
            T& from = (*this)[i];
            ::new (static_cast<void*>(&slots[i])) T(std::move(from));
            from.~T();
        }
        release(slots_);
        slots_ = slots;
        mask_ = capacity - 1;
        head_ = 0;
    }

    void grow() { resize(slots_ ? 2 * (mask_ + 1) : kMinCapacity); }

    // Checked once per buffer's worth of removals (so amortized O(1)): if the ring never held
    // a quarter of its capacity meanwhile, halve it. A queue that drains to empty on every
    // turn but refills to the same size keeps its buffer; one that got a burst once gives the
    // memory back over the next few passes. Without memory it stays as it is.
    void maybe_shrink() noexcept {
        const std::size_t cap = capacity();
        if (passed_ < cap) return;
        const bool mostly_idle = peak_ * 4 < cap;
        passed_ = 0;
        peak_ = size_;
        if (cap <= kShrinkAbove || !mostly_idle) return;
        try {
            resize(cap / 2);
        } catch (const std::bad_alloc&) {
        }
    }

    T* slots_ = nullptr;
    std::size_t mask_ = 0;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    std::size_t peak_ = 0;    // the most elements held since the last shrink check
    std::size_t passed_ = 0;  // elements removed since then
};

}  // namespace peermq::detail
