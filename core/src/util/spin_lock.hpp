#pragma once

#include <atomic>
#include <thread>

namespace peermq::detail {

// SpinLock: for locks held only to push one item or to swap a whole batch out (the actor's
// mailbox, the dispatcher's outbox). A thread that finds it taken spins briefly instead of
// sleeping: a std::mutex would put it to sleep and make the holder pay a futex wake-up on every
// contended unlock, which with one thread producing flat out and another draining is most of
// them. Yields after a short spin, so a preempted holder gets the core back. Not for waits.
class SpinLock {
public:
    void lock() noexcept {
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
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

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

}  // namespace peermq::detail
