// Dispatcher: the pool of threads that runs user handlers, so that no handler ever runs on the
// actor thread.
//
// Each consumer or subscriber is a slot with its own job queue and a concurrency limit (1 = its
// messages are handled one at a time, in arrival order). The outcome of a queue handler (ack,
// nack, reject) is ready for the actor as soon as the handler returns: it joins an outbox that
// the actor empties with take_outcomes(), and the sink wakes the actor only when the outbox
// was empty (or already taken), so a busy actor gets outcomes in batches without a wake-up each.
// Thread-safe; slots are added from any thread and never removed while the dispatcher runs.
// No exception ends a pool thread: a handler's is its outcome, a peer event handler's and any
// other (the sink, an allocation) is logged at error and counted (add_thread_errors).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "peermq/log.hpp"
#include "peermq/message.hpp"
#include "util/mutex.hpp"
#include "util/ring.hpp"
#include "util/spin_lock.hpp"

namespace peermq::detail {

struct HandlerOutcome {
    enum class Result : std::uint8_t { ack, nack, reject };
    std::uint32_t slot = 0;
    Result result = Result::ack;
    std::uint32_t flags = 0;  // the DATA header's flags
    NodeId sender;
    MessageId id;
    std::string error;
};

struct Job {
    Message message;
    std::uint32_t flags = 0;
    // The actor needs the handler's outcome (to ack, nack or settle the message). A remote
    // best-effort message has nothing to settle: its handler calls are only counted, and only
    // a failure is reported (for the log). A subscription's job reports only its end, when a
    // reliable topic stream waits for room in its handler.
    bool report = true;
    std::function<void()> task;  // set for plain tasks (peer events)
};

// What one slot holds: jobs queued or running, and their payload bytes. Updated by submit() and
// as jobs finish; read lock-free (the actor bounds what it queues for each handler).
struct SlotLoad {
    std::atomic<std::uint64_t> jobs{0};
    std::atomic<std::uint64_t> bytes{0};
};

class Dispatcher {
public:
    // Wakes the actor: outcomes wait in take_outcomes(). Called from pool threads.
    using OutcomeSink = std::function<void()>;

    // `log` (null = process_logger()) must outlive the dispatcher.
    Dispatcher(std::size_t threads, OutcomeSink sink, const Logger* log = nullptr);
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    std::uint32_t add_consumer(ConsumeHandler handler, std::uint32_t concurrency);
    std::uint32_t add_subscriber(SubscribeHandler handler);

    // Queues jobs for their slots (one lock for the batch) and clears `jobs`.
    void submit(std::vector<std::pair<std::uint32_t, Job>>& jobs);
    // Runs `task` on a pool thread; tasks run one at a time, in order.
    void post(std::function<void()> task);
    // Moves every outcome ready so far into `out` (cleared first; its capacity is reused). The
    // next outcome wakes the actor again through the sink.
    void take_outcomes(std::vector<HandlerOutcome>& out);

    // Jobs queued and not yet finished for `slot`.
    std::uint64_t pending(std::uint32_t slot) const;
    // The slot's load; the reference stays valid for the dispatcher's life.
    const SlotLoad& load(std::uint32_t slot) const;
    // True when every submitted job has finished (its outcome is posted to the sink or about to
    // be): no handler is running or waiting. Lock-free; a hint (it may change right after).
    bool idle() const noexcept { return unfinished_.load(std::memory_order_acquire) == 0; }
    // Idle, and every outcome already in take_outcomes(): no thread is between a handler's
    // return and its outcome's emission. Lock-free; final only once nothing more is submitted.
    bool drained() const noexcept { return busy_.load(std::memory_order_acquire) == 0 && idle(); }
    // Handler calls of a consumer slot that returned or threw, and those that threw.
    std::uint64_t handled(std::uint32_t slot) const;
    std::uint64_t handler_errors(std::uint32_t slot) const;
    // Adds the exceptions caught outside queue and subscription handlers to `out`:
    // "peer_event_handler" (a task posted with post() threw) and "dispatcher" (anything else).
    void add_thread_errors(std::map<std::string, std::uint64_t>& out) const;

    // Drops queued jobs, waits for running handlers, joins the threads, then releases the
    // handlers (and whatever they captured). Idempotent.
    void stop();

private:
    // Reached through slots_, under mutex_: running, ready and jobs are read and written only
    // with it held (the analysis cannot name the dispatcher's mutex from here). The handler and
    // concurrency are set under it before the slot's first job, and cleared by stop() once no
    // pool thread runs; the pool threads call the handler without the lock.
    struct Slot {
        ConsumeHandler consume;
        SubscribeHandler subscribe;
        std::uint32_t concurrency = 1;
        std::uint32_t running = 0;
        bool ready = false;
        Ring<Job> jobs;
        SlotLoad load;
        std::atomic<std::uint64_t> handled{0};
        std::atomic<std::uint64_t> errors{0};
    };

    void run();
    void serve();
    void make_ready_locked(std::uint32_t index) PEERMQ_REQUIRES(mutex_);
    // Runs one job; for a queue handler, its outcome.
    std::optional<HandlerOutcome> execute(std::uint32_t index, Slot& slot, Job& job);
    void emit(HandlerOutcome&& outcome);
    // Counts and logs an exception caught in a pool thread, outside any handler.
    void caught(std::string_view where, std::exception_ptr error) noexcept;

    OutcomeSink sink_;
    const Logger& log_;
    std::atomic<std::uint64_t> thread_errors_{0};
    mutable Mutex mutex_;
    CondVar wake_;
    // A deque: stable addresses as slots are added.
    std::deque<Slot> slots_ PEERMQ_GUARDED_BY(mutex_);
    std::deque<std::uint32_t> ready_ PEERMQ_GUARDED_BY(mutex_);
    bool stopping_ PEERMQ_GUARDED_BY(mutex_) = false;
    std::atomic<std::uint64_t> unfinished_{0};  // every slot's outstanding jobs
    std::atomic<std::uint32_t> busy_{0};        // threads running a batch, emits included
    std::uint32_t task_slot_ = 0;
    SpinLock outbox_mutex_;  // held to push one outcome or to swap them all out
    std::vector<HandlerOutcome> outbox_ PEERMQ_GUARDED_BY(outbox_mutex_);
    // The sink ran since the last take_outcomes().
    bool woken_ PEERMQ_GUARDED_BY(outbox_mutex_) = false;
    std::vector<std::thread> threads_;  // the owner's: started by the constructor, joined by stop()
};

}  // namespace peermq::detail
