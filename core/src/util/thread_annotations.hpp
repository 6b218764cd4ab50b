// Clang's thread-safety attributes (-Wthread-safety), as PEERMQ_ macros: they say which lock
// guards which data and which lock a function needs, and the `tsa` build preset checks it at
// compile time. Other compilers see nothing. docs/design/threads.md lists the locks and what
// each guards.
//
// A lock is a type marked PEERMQ_CAPABILITY (util/mutex.hpp's Mutex, util/spin_lock.hpp's
// SpinLock); std::mutex is not annotated by libstdc++ and so is invisible to the analysis.
//   Mutex mutex_;
//   std::vector<Job> jobs_ PEERMQ_GUARDED_BY(mutex_);    // read or written only under mutex_
//   void make_ready_locked() PEERMQ_REQUIRES(mutex_);    // the caller holds mutex_
//   void stop() PEERMQ_EXCLUDES(mutex_);                 // takes mutex_ itself
// What the analysis cannot follow (a lock another thread holds on this one's behalf) is a
// function marked PEERMQ_NO_THREAD_SAFETY_ANALYSIS, with one line saying why.
#pragma once

#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(guarded_by)
#define PEERMQ_THREAD_ANNOTATION(x) __attribute__((x))
#endif
#endif
#ifndef PEERMQ_THREAD_ANNOTATION
#define PEERMQ_THREAD_ANNOTATION(x)
#endif

// A type that is a lock ("mutex" in the messages).
#define PEERMQ_CAPABILITY(name) PEERMQ_THREAD_ANNOTATION(capability(name))
// An RAII type that holds a lock for its lifetime (MutexLock).
#define PEERMQ_SCOPED_CAPABILITY PEERMQ_THREAD_ANNOTATION(scoped_lockable)

// Data read or written only with the lock held.
#define PEERMQ_GUARDED_BY(lock) PEERMQ_THREAD_ANNOTATION(guarded_by(lock))
// What the pointer points to is read or written only with the lock held.
#define PEERMQ_PT_GUARDED_BY(lock) PEERMQ_THREAD_ANNOTATION(pt_guarded_by(lock))
// Lock order: this lock is taken before / after the ones named.
#define PEERMQ_ACQUIRED_BEFORE(...) PEERMQ_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define PEERMQ_ACQUIRED_AFTER(...) PEERMQ_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))

// The caller holds the lock(s) (exclusively / shared).
#define PEERMQ_REQUIRES(...) PEERMQ_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define PEERMQ_REQUIRES_SHARED(...) \
    PEERMQ_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// The caller must not hold the lock(s): the function takes them.
#define PEERMQ_EXCLUDES(...) PEERMQ_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// The function takes / releases the lock(s) (no argument on a lock's own methods: `this`).
#define PEERMQ_ACQUIRE(...) PEERMQ_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define PEERMQ_RELEASE(...) PEERMQ_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// Takes the lock when it returns `result` (try_lock: true).
#define PEERMQ_TRY_ACQUIRE(...) PEERMQ_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// Checks at run time that the lock is held; the analysis takes it as held afterwards.
#define PEERMQ_ASSERT_CAPABILITY(lock) PEERMQ_THREAD_ANNOTATION(assert_capability(lock))
// The function returns a reference to the lock.
#define PEERMQ_RETURN_CAPABILITY(lock) PEERMQ_THREAD_ANNOTATION(lock_returned(lock))

// The function is not checked: say why next to it.
#define PEERMQ_NO_THREAD_SAFETY_ANALYSIS PEERMQ_THREAD_ANNOTATION(no_thread_safety_analysis)
