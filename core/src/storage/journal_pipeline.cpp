#include "storage/journal_pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <string>

#include "platform/signals.hpp"
#include "util/mutex.hpp"

namespace peermq::detail {

// The thread that runs Journal::write_batch. It is handed one batch at a time and calls
// `on_done` when that batch is done; the journal's other members are not called meanwhile (see
// Journal::take_batch).
class JournalPipeline::Writer {
public:
    Writer(Journal& journal, std::function<void()> on_done)
        : journal_(journal), on_done_(std::move(on_done)), thread_([this] {
              block_async_signals();
              run();
          }) {}

    ~Writer() {
        {
            MutexLock lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }

    void submit(std::unique_ptr<Journal::Batch> batch) {
        {
            MutexLock lock(mutex_);
            todo_ = std::move(batch);
            finished_ = false;
        }
        wake_.notify_all();
    }

    // The finished batch and its status: waits for the batch in flight when `block`, else
    // nullopt while it runs.
    std::optional<std::pair<std::unique_ptr<Journal::Batch>, Status>> finished(bool block) {
        MutexLock lock(mutex_);
        while (block && !finished_) wake_.wait(lock);
        if (!finished_) return std::nullopt;
        finished_ = false;
        return std::make_pair(std::move(done_), std::move(status_));
    }

    std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

private:
    void run() {
        MutexLock lock(mutex_);
        for (;;) {
            while (!stop_ && todo_ == nullptr) wake_.wait(lock);
            if (!todo_) return;  // stopping, nothing left to write
            auto batch = std::move(todo_);
            lock.unlock();
            Status status = write(*batch);
            lock.lock();
            done_ = std::move(batch);
            status_ = std::move(status);
            finished_ = true;
            wake_.notify_all();
            lock.unlock();
            try {
                on_done_();  // wakes the actor
            } catch (...) {
                // Out of memory posting the notice: the actor still settles it before any read.
            }
            lock.lock();
        }
    }

    Status write(Journal::Batch& batch) {
        try {
            return journal_.write_batch(batch);
        } catch (const std::exception& e) {
            // The batch is not known to be on disk: like a failed commit, it is retried.
            errors_.fetch_add(1, std::memory_order_relaxed);
            return make_error(ErrorCode::internal, std::string("journal write: ") + e.what());
        } catch (...) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            return make_error(ErrorCode::internal, "journal write: an unknown exception");
        }
    }

    Journal& journal_;
    std::function<void()> on_done_;
    Mutex mutex_;
    CondVar wake_;
    std::unique_ptr<Journal::Batch> todo_ PEERMQ_GUARDED_BY(mutex_);
    std::unique_ptr<Journal::Batch> done_ PEERMQ_GUARDED_BY(mutex_);
    Status status_ PEERMQ_GUARDED_BY(mutex_);
    bool finished_ PEERMQ_GUARDED_BY(mutex_) = false;
    bool stop_ PEERMQ_GUARDED_BY(mutex_) = false;
    std::atomic<std::uint64_t> errors_{0};
    std::thread thread_;
};

JournalPipeline::JournalPipeline(std::unique_ptr<Journal> journal, Settings settings, Logger& log,
                                 JournalBacklog& backlog,
                                 std::function<void(const Status&)> storage_error,
                                 std::function<void()> commit_done)
    : journal_(std::move(journal)),
      settings_(settings),
      log_(log),
      backlog_(backlog),
      storage_error_(std::move(storage_error)),
      writer_(std::make_unique<Writer>(*journal_, std::move(commit_done))) {}

JournalPipeline::~JournalPipeline() = default;

void JournalPipeline::outbox_put(OutboxRecord record, Steady now) {
    buffered(now);
    journal_->outbox_put(std::move(record));
}

void JournalPipeline::outbox_remove(const MessageId& id, Steady now) {
    buffered(now);
    journal_->outbox_remove(id);
}

void JournalPipeline::dead_letter_put(DeadLetter letter, Steady now) {
    buffered(now);
    journal_->dead_letter_put(std::move(letter));
}

void JournalPipeline::when_committed(StatusPromise done, const Status& current) {
    if (idle()) {
        done->set_value(current);
        return;
    }
    waiters_.push_back(std::move(done));
}

void JournalPipeline::maybe_commit(Steady now, bool force, const Status& current) {
    if (in_flight_) return;  // the next one starts when it is done
    const std::size_t pending = journal_->pending();
    if (pending == 0) {
        abandon_waiters(current);
        return;
    }
    if (now < retry_at_) return;
    if (!force && pending < kCommitRecords && now - first_uncommitted_ < kCommitInterval) return;
    in_flight_records_ = pending;
    in_flight_oldest_ = first_uncommitted_;
    // Waiters registered so far are covered by this batch; later ones wait for the next.
    in_flight_waiters_.swap(waiters_);
    waiters_.clear();
    writer_->submit(journal_->take_batch());
    in_flight_ = true;
}

void JournalPipeline::on_commit_done(Steady now) {
    if (!in_flight_) return;  // already settled by settle()
    auto done = writer_->finished(false);
    if (done) end_commit(std::move(done->first), done->second, now);
}

void JournalPipeline::settle(Steady now) {
    if (!in_flight_) return;
    auto done = writer_->finished(true);
    end_commit(std::move(done->first), done->second, now);
}

void JournalPipeline::end_commit(std::unique_ptr<Journal::Batch> batch, const Status& status,
                                 Steady now) {
    in_flight_ = false;
    in_flight_records_ = 0;
    journal_->finish_batch(std::move(batch), status);
    if (status.ok()) {
        if (failures_ > 0) {
            PEERMQ_LOG(log_, LogLevel::info, "journal", "journal writes again",
                       {"failed_commits", failures_});
            failures_ = 0;
        }
        last_error_ = {};
        storage_error_(Status{});
    } else {
        // Back in the journal's buffer, in front of what was buffered since (its records are the
        // oldest); retried shortly. send() reports it meanwhile. One line when it starts failing
        // (or fails differently), not one per retry.
        first_uncommitted_ = in_flight_oldest_;
        if (failures_ == 0 || status.message() != last_error_.message()) {
            PEERMQ_LOG(log_, LogLevel::warn, "journal", "journal commit failed; retrying",
                       {"error", status.to_string()}, {"retry_ms", kCommitRetry});
        }
        ++failures_;
        last_error_ = status;
        storage_error_(status);
        retry_at_ = now + kCommitRetry;
    }
    for (auto& waiter : in_flight_waiters_) waiter->set_value(status);
    in_flight_waiters_.clear();
}

void JournalPipeline::commit_now(Steady now, const Status& current) {
    settle(now);
    if (journal_->pending() == 0) {
        abandon_waiters(current);
        return;
    }
    Status status = journal_->commit();
    if (!status.ok()) {
        PEERMQ_LOG(log_, LogLevel::warn, "journal", "journal commit failed",
                   {"error", status.to_string()});
    }
    last_error_ = status;
    storage_error_(status);
    abandon_waiters(status);
}

Status JournalPipeline::commit_for_close(Clock& clock, Steady deadline, const Status& current) {
    commit_now(clock.steady_now(), current);
    while (journal_->pending() > 0 && clock.steady_now() < deadline) {
        // The journal refused (a full disk, an I/O error): try again until the deadline.
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
            kCommitRetry,
            std::chrono::ceil<std::chrono::milliseconds>(deadline - clock.steady_now())));
        commit_now(clock.steady_now(), last_error_);
    }
    const std::size_t lost = journal_->pending_messages();
    if (lost == 0) return {};
    Status error = last_error_;
    if (error.ok()) error = make_error(ErrorCode::io_error, "the journal's last commit failed");
    PEERMQ_LOG(log_, LogLevel::error, "journal", "closing with messages not on disk",
               {"lost", static_cast<std::uint64_t>(lost)}, {"error", error.to_string()});
    return make_error(error.code(), std::to_string(lost) +
                                        " messages handed to send() were not written to the "
                                        "journal and are lost: " +
                                        error.message());
}

void JournalPipeline::publish_backlog(Steady now) {
    const std::size_t records = uncommitted();
    const Steady oldest = in_flight_ ? in_flight_oldest_ : first_uncommitted_;
    // Records first, then what left `queued`: the sum send() reads never dips below the truth.
    backlog_.records.store(records);
    backlog_.too_old.store(records > 0 && now - oldest >= settings_.max_commit_lag);
    if (backlog_taken_ > 0) {
        backlog_.queued.fetch_sub(backlog_taken_);
        backlog_taken_ = 0;
    }
    if (backlog_.waiting.load() > 0 && !backlog_.full(settings_.max_uncommitted)) {
        std::lock_guard lock(backlog_.mutex);
        backlog_.room.notify_all();
    }
}

std::optional<JournalPipeline::Steady> JournalPipeline::next_due() const {
    if (in_flight_ || journal_->pending() == 0) return std::nullopt;
    return std::max(first_uncommitted_ + kCommitInterval, retry_at_);
}

std::uint64_t JournalPipeline::writer_errors() const { return writer_->errors(); }

void JournalPipeline::abandon_waiters(const Status& status) {
    for (auto& waiter : waiters_) waiter->set_value(status);
    waiters_.clear();
}

}  // namespace peermq::detail
