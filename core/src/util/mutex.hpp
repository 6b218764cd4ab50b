// Mutex, MutexLock, CondVar: std::mutex, a scoped lock and std::condition_variable with the
// thread-safety attributes of util/thread_annotations.hpp, so that clang checks which data each
// lock guards (the `tsa` preset). Same costs as the std types they wrap.
//
//   Mutex mutex_;
//   CondVar changed_;
//   bool ready_ PEERMQ_GUARDED_BY(mutex_) = false;
//
//   void set() {
//       { MutexLock lock(mutex_); ready_ = true; }
//       changed_.notify_all();
//   }
//   void wait() {
//       MutexLock lock(mutex_);
//       while (!ready_) changed_.wait(lock);  // a loop the analysis follows
//   }
//
// A predicate given to CondVar::wait* runs with the mutex held, but the analysis looks at a
// lambda on its own: one that reads guarded data says so, [&]() PEERMQ_REQUIRES(mutex_) {...}.
// Mutex also has lock() and unlock(), so std::lock_guard and std::scoped_lock work with it; the
// analysis does not see what those hold, so prefer MutexLock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "util/thread_annotations.hpp"

namespace peermq::detail {

class PEERMQ_CAPABILITY("mutex") Mutex {
public:
    Mutex() = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    void lock() PEERMQ_ACQUIRE() { mutex_.lock(); }
    void unlock() PEERMQ_RELEASE() { mutex_.unlock(); }
    bool try_lock() PEERMQ_TRY_ACQUIRE(true) { return mutex_.try_lock(); }

private:
    friend class MutexLock;
    std::mutex mutex_;
};

// Holds a Mutex from construction to destruction; unlock() and lock() let go of it and take it
// again in between (the analysis follows both).
class PEERMQ_SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& mutex) PEERMQ_ACQUIRE(mutex) : lock_(mutex.mutex_) {}
    ~MutexLock() PEERMQ_RELEASE() {}
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

    void unlock() PEERMQ_RELEASE() { lock_.unlock(); }
    void lock() PEERMQ_ACQUIRE() { lock_.lock(); }

private:
    friend class CondVar;
    std::unique_lock<std::mutex> lock_;
};

// std::condition_variable for a MutexLock. Each wait returns with the mutex held again.
class CondVar {
public:
    void notify_one() noexcept { cv_.notify_one(); }
    void notify_all() noexcept { cv_.notify_all(); }

    // May wake spuriously: wait in a loop on the condition.
    void wait(MutexLock& lock) { cv_.wait(lock.lock_); }
    // False when the deadline passed (the condition may still have come true meanwhile).
    template <typename Clock, typename Duration>
    bool wait_until(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& deadline) {
        return cv_.wait_until(lock.lock_, deadline) == std::cv_status::no_timeout;
    }

    // Until `ready()` is true. Not analysed inside: `ready` says what it needs (see above).
    template <typename Predicate>
    void wait(MutexLock& lock, Predicate ready) PEERMQ_NO_THREAD_SAFETY_ANALYSIS {
        cv_.wait(lock.lock_, std::move(ready));
    }
    // Until `ready()` is true or `timeout` passes; the last value of `ready()`.
    template <typename Rep, typename Period, typename Predicate>
    bool wait_for(MutexLock& lock, const std::chrono::duration<Rep, Period>& timeout,
                  Predicate ready) PEERMQ_NO_THREAD_SAFETY_ANALYSIS {
        return cv_.wait_for(lock.lock_, timeout, std::move(ready));
    }

private:
    std::condition_variable cv_;
};

}  // namespace peermq::detail
