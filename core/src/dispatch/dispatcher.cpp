#include "dispatch/dispatcher.hpp"

#include <exception>

namespace peermq::detail {
namespace {

// Jobs a slot of concurrency 1 takes per turn: amortizes the lock without starving others. As
// many as a BATCH frame carries (kMaxBatchEntries), so a frame's messages are handled (and
// acked) in one turn. Outcomes still leave one job at a time (see run()).
constexpr std::size_t kBatch = 256;

}  // namespace

Dispatcher::Dispatcher(std::size_t threads, OutcomeSink sink, const Logger* log)
    : sink_(std::move(sink)), log_(log != nullptr ? *log : process_logger()) {
    slots_.emplace_back();  // slot 0: plain tasks, one at a time
    task_slot_ = 0;
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Dispatcher::~Dispatcher() { stop(); }

std::uint32_t Dispatcher::add_consumer(ConsumeHandler handler, std::uint32_t concurrency) {
    MutexLock lock(mutex_);
    auto& slot = slots_.emplace_back();
    slot.consume = std::move(handler);
    slot.concurrency = concurrency == 0 ? 1 : concurrency;
    return static_cast<std::uint32_t>(slots_.size() - 1);
}

std::uint32_t Dispatcher::add_subscriber(SubscribeHandler handler) {
    MutexLock lock(mutex_);
    auto& slot = slots_.emplace_back();
    slot.subscribe = std::move(handler);
    return static_cast<std::uint32_t>(slots_.size() - 1);
}

void Dispatcher::make_ready_locked(std::uint32_t index) {
    Slot& slot = slots_[index];
    if (!slot.ready && !slot.jobs.empty() && slot.running < slot.concurrency) {
        slot.ready = true;
        ready_.push_back(index);
    }
}

void Dispatcher::submit(std::vector<std::pair<std::uint32_t, Job>>& jobs) {
    if (jobs.empty()) return;
    std::size_t newly_ready = 0;
    {
        MutexLock lock(mutex_);
        if (stopping_) {
            jobs.clear();
            return;
        }
        unfinished_.fetch_add(jobs.size(), std::memory_order_relaxed);
        // Jobs of one slot come in runs (a batch is for one queue): one atomic add per run.
        Slot* run_slot = nullptr;
        std::uint64_t run_length = 0;
        std::uint64_t run_bytes = 0;
        auto add_run = [&] {
            if (!run_slot) return;
            run_slot->load.jobs.fetch_add(run_length, std::memory_order_relaxed);
            run_slot->load.bytes.fetch_add(run_bytes, std::memory_order_relaxed);
        };
        for (auto& [index, job] : jobs) {
            Slot& slot = slots_[index];
            if (&slot != run_slot) {
                add_run();
                run_slot = &slot;
                run_length = 0;
                run_bytes = 0;
            }
            ++run_length;
            run_bytes += job.message.payload.size();
            slot.jobs.push_back(std::move(job));
            if (!slot.ready && slot.running < slot.concurrency) {
                slot.ready = true;
                ready_.push_back(index);
                ++newly_ready;
            }
        }
        add_run();
    }
    jobs.clear();
    // Wake only as many threads as there is new work for: a slot already ready has its thread
    // on the way, and a busy slot is made ready again by the thread that runs it.
    if (newly_ready == 1) {
        wake_.notify_one();
    } else if (newly_ready > 1) {
        wake_.notify_all();
    }
}

void Dispatcher::post(std::function<void()> task) {
    std::vector<std::pair<std::uint32_t, Job>> one;
    Job job;
    job.task = std::move(task);
    one.emplace_back(task_slot_, std::move(job));
    submit(one);
}

std::uint64_t Dispatcher::pending(std::uint32_t slot) const {
    MutexLock lock(mutex_);
    return slot < slots_.size() ? slots_[slot].load.jobs.load(std::memory_order_relaxed) : 0;
}

const SlotLoad& Dispatcher::load(std::uint32_t slot) const {
    MutexLock lock(mutex_);
    return slots_.at(slot).load;
}

std::uint64_t Dispatcher::handled(std::uint32_t slot) const {
    MutexLock lock(mutex_);
    return slot < slots_.size() ? slots_[slot].handled.load(std::memory_order_relaxed) : 0;
}

std::uint64_t Dispatcher::handler_errors(std::uint32_t slot) const {
    MutexLock lock(mutex_);
    return slot < slots_.size() ? slots_[slot].errors.load(std::memory_order_relaxed) : 0;
}

void Dispatcher::add_thread_errors(std::map<std::string, std::uint64_t>& out) const {
    if (const std::uint64_t n = thread_errors_.load(std::memory_order_relaxed); n != 0) {
        out["dispatcher"] += n;
    }
    // Slot 0 runs the posted tasks: the peer event handler's calls.
    if (const std::uint64_t n = handler_errors(task_slot_); n != 0) out["peer_event_handler"] += n;
}

void Dispatcher::caught(std::string_view where, std::exception_ptr error) noexcept {
    thread_errors_.fetch_add(1, std::memory_order_relaxed);
    try {
        PEERMQ_LOG(log_, LogLevel::error, "dispatcher", "exception caught in a dispatcher thread",
                   {"where", where}, {"error", exception_text(error)});
    } catch (...) {
        // Nothing left to tell it with; the count stands.
    }
}

void Dispatcher::stop() {
    {
        MutexLock lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
        for (auto& slot : slots_) {
            unfinished_.fetch_sub(slot.jobs.size(), std::memory_order_relaxed);
            slot.jobs.clear();
        }
        ready_.clear();
    }
    wake_.notify_all();
    for (auto& thread : threads_) {
        if (thread.joinable()) thread.join();
    }
    threads_.clear();
    // No handler runs any more: let them go. One that holds a Queue (a responder's reply
    // routes) holds the node that owns this dispatcher, a cycle only this breaks. They are
    // destroyed outside the lock, as their captures may do anything on the way out.
    std::vector<ConsumeHandler> consumers;
    std::vector<SubscribeHandler> subscribers;
    {
        MutexLock lock(mutex_);
        for (auto& slot : slots_) {
            if (slot.consume) consumers.push_back(std::move(slot.consume));
            if (slot.subscribe) subscribers.push_back(std::move(slot.subscribe));
            slot.consume = nullptr;
            slot.subscribe = nullptr;
        }
    }
}

void Dispatcher::run() {
    // What serve() lets escape (an allocation failure between jobs) is counted and the thread
    // goes back to work: the jobs of the batch it was on are lost, their senders retry them.
    for (;;) {
        try {
            serve();
            return;
        } catch (...) {
            caught("between jobs", std::current_exception());
        }
    }
}

void Dispatcher::serve() {
    std::vector<Job> batch;
    batch.reserve(kBatch);
    MutexLock lock(mutex_);
    for (;;) {
        while (!stopping_ && ready_.empty()) wake_.wait(lock);
        if (stopping_) return;
        const std::uint32_t index = ready_.front();
        ready_.pop_front();
        Slot& slot = slots_[index];
        slot.ready = false;
        const std::size_t take = slot.concurrency == 1 ? kBatch : 1;
        batch.clear();
        while (!slot.jobs.empty() && batch.size() < take) {
            batch.push_back(std::move(slot.jobs.front()));
            slot.jobs.pop_front();
        }
        ++slot.running;
        busy_.fetch_add(1, std::memory_order_relaxed);
        make_ready_locked(index);  // more concurrency available: let another thread join in
        const bool more = slot.ready;
        lock.unlock();
        if (more) wake_.notify_one();

        // Each outcome goes to the actor as soon as its handler returns: held until the end of
        // the batch, the acks of handled messages would wait for every handler after them, and
        // for as long as one of those hangs.
        // The counters are shared with the actor's thread: they are settled once per batch,
        // or before an outcome leaves (the actor that takes an outcome must see the dispatcher
        // idle when it is, or it would hold the ack for the batching interval).
        std::uint64_t finished = 0;
        std::uint64_t finished_bytes = 0;
        auto settle = [&] {
            if (finished == 0) return;
            slot.load.jobs.fetch_sub(finished, std::memory_order_relaxed);
            slot.load.bytes.fetch_sub(finished_bytes, std::memory_order_relaxed);
            unfinished_.fetch_sub(finished, std::memory_order_release);
            finished = 0;
            finished_bytes = 0;
        };
        // A job that fails outside its handler (an allocation) is finished all the same:
        // otherwise the slot would never run again and the dispatcher never be idle.
        for (auto& job : batch) {
            std::optional<HandlerOutcome> outcome;
            finished_bytes += job.message.payload.size();  // before the handler takes it
            try {
                outcome = execute(index, slot, job);
            } catch (...) {
                caught("a job", std::current_exception());
            }
            ++finished;
            if (outcome) {
                settle();
                try {
                    emit(std::move(*outcome));
                } catch (...) {
                    caught("an outcome", std::current_exception());
                }
            }
        }
        settle();
        busy_.fetch_sub(1, std::memory_order_release);  // after every emit: see drained()

        lock.lock();
        --slot.running;
        make_ready_locked(index);
        // This thread takes the front of ready_ itself right away; wake another only for the
        // rest (waking one for a slot it will find taken costs a futex call and a switch).
        if (ready_.size() > 1) wake_.notify_one();
    }
}

void Dispatcher::emit(HandlerOutcome&& outcome) {
    bool wake;
    {
        SpinLockGuard lock(outbox_mutex_);
        outbox_.push_back(std::move(outcome));
        wake = !woken_;
        woken_ = true;
    }
    if (!wake || !sink_) return;
    try {
        sink_();
    } catch (...) {
        // The actor was not woken: let the next outcome try again.
        {
            SpinLockGuard lock(outbox_mutex_);
            woken_ = false;
        }
        caught("the outcome sink", std::current_exception());
    }
}

void Dispatcher::take_outcomes(std::vector<HandlerOutcome>& out) {
    out.clear();
    SpinLockGuard lock(outbox_mutex_);
    out.swap(outbox_);
    woken_ = false;
}

std::optional<HandlerOutcome> Dispatcher::execute(std::uint32_t index, Slot& slot, Job& job) {
    if (job.task) {
        try {
            job.task();
        } catch (...) {
            slot.errors.fetch_add(1, std::memory_order_relaxed);
            PEERMQ_LOG(log_, LogLevel::error, "peer", "peer event handler threw",
                       {"error", exception_text(std::current_exception())});
        }
        return std::nullopt;
    }
    if (slot.subscribe) {
        try {
            slot.subscribe(job.message);
        } catch (...) {
            slot.errors.fetch_add(1, std::memory_order_relaxed);
        }
        // A reliable topic stream may wait for this handler's room: its outcome wakes the actor.
        if (!job.report) return std::nullopt;
        HandlerOutcome done;
        done.slot = index;
        return done;
    }
    HandlerOutcome outcome;
    outcome.slot = index;
    outcome.flags = job.flags;
    outcome.sender = job.message.sender;
    outcome.id = job.message.id;
    Delivery delivery(std::move(job.message));
    try {
        slot.consume(delivery);
        if (delivery.rejected()) {
            outcome.result = HandlerOutcome::Result::reject;
            outcome.error = delivery.reject_reason();
        }
    } catch (const std::exception& e) {
        outcome.result = HandlerOutcome::Result::nack;
        outcome.error = e.what();
    } catch (...) {
        outcome.result = HandlerOutcome::Result::nack;
        outcome.error = "handler threw a non-std exception";
    }
    if (outcome.result == HandlerOutcome::Result::nack) {
        slot.errors.fetch_add(1, std::memory_order_relaxed);
    }
    slot.handled.fetch_add(1, std::memory_order_relaxed);
    // A failure is reported even when nothing waits for the outcome: the actor logs it.
    if (!job.report && outcome.result == HandlerOutcome::Result::ack) return std::nullopt;
    return outcome;
}

}  // namespace peermq::detail
