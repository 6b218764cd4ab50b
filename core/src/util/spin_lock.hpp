#pragma once

#include <atomic>
#include <thread>

#include "util/thread_annotations.hpp"

namespace peermq::detail {

// SpinLock: for locks held only to push one item or to swap a whole batch out (the actor's
// mailbox, the dispatcher's outbox). A thread that finds it taken spins briefly instead of
// sleeping: a std::mutex would put it to sleep and make the holder pay a futex wake-up on every
// contended unlock, which with one thread producing flat out and another draining is most of
// them. Yields after a short spin, so a preempted holder gets the core back. Not for waits.
// Annotated like Mutex (util/mutex.hpp): hold it with SpinLockGuard.
class PEERMQ_CAPABILITY("mutex") SpinLock {
public:
    void lock() noexcept PEERMQ_ACQUIRE() {
        for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
            while (locked_.load(std::memory_order_relaxed)) {
                if (spins++ < kSpins) {
                    cpu_relax();
                } else {
                    std::this_thread::yield();
                }
            }
        }
    }
    void unlock() noexcept PEERMQ_RELEASE() { locked_.store(false, std::memory_order_release); }

private:
    static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
        asm volatile("yield");
#endif
    }

    static constexpr int kSpins = 64;
    std::atomic<bool> locked_{false};
};

// Holds a SpinLock for its lifetime.
class PEERMQ_SCOPED_CAPABILITY SpinLockGuard {
public:
    explicit SpinLockGuard(SpinLock& lock) noexcept PEERMQ_ACQUIRE(lock) : lock_(lock) {
        lock_.lock();
    }
    ~SpinLockGuard() PEERMQ_RELEASE() { lock_.unlock(); }
    SpinLockGuard(const SpinLockGuard&) = delete;
    SpinLockGuard& operator=(const SpinLockGuard&) = delete;

private:
    SpinLock& lock_;
};

}  // namespace peermq::detail
