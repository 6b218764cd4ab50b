// JournalPipeline: how a node's journal is written while the actor keeps going. The actor buffers
// records (outbox puts and removes, dead letters); group commits of them run on a writer thread
// of the pipeline's own, one at a time, when enough records are buffered or the oldest has waited
// long enough; a failed commit is retried shortly and reported as the node's storage error
// (send() returns it) until one succeeds. Reads of the journal wait for the commit in flight.
// It also tells send() how far the journal is behind (JournalBacklog: NodeOptions::
// max_uncommitted and max_commit_lag), and commits what is left when the node closes.
//
// Owned and called by the actor's thread alone, except that the writer thread calls
// `commit_done` (given at construction) when a commit finishes: the actor then calls
// on_commit_done(). Every member takes `now` from its caller.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "node/node_core.hpp"
#include "peermq/clock.hpp"
#include "peermq/log.hpp"
#include "storage/journal.hpp"

namespace peermq::detail {

class JournalPipeline {
public:
    using Steady = Clock::Steady;
    static constexpr std::size_t kCommitRecords = 1000;  // group commit: at most this many...
    static constexpr auto kCommitInterval = std::chrono::milliseconds(2);  // ...or this long
    static constexpr auto kCommitRetry = std::chrono::milliseconds(100);

    struct Settings {
        std::size_t max_uncommitted = 0;             // NodeOptions::max_uncommitted
        std::chrono::milliseconds max_commit_lag{};  // NodeOptions::max_commit_lag
    };
    // `storage_error` is told the outcome of every commit (ok once it works again): the sticky
    // error send() reports. `commit_done` is called on the writer thread.
    JournalPipeline(std::unique_ptr<Journal> journal, Settings settings, Logger& log,
                    JournalBacklog& backlog, std::function<void(const Status&)> storage_error,
                    std::function<void()> commit_done);
    ~JournalPipeline();
    JournalPipeline(const JournalPipeline&) = delete;
    JournalPipeline& operator=(const JournalPipeline&) = delete;

    Journal& journal() { return *journal_; }
    Logger& log() { return log_; }
    // A group commit is running on the writer thread: the journal may not be read until
    // settle() or on_commit_done() ends it.
    bool committing() const { return in_flight_; }

    // Buffering. Each starts the commit-lag clock when the buffer was empty.
    void outbox_put(OutboxRecord record, Steady now);
    void outbox_remove(const MessageId& id, Steady now);
    void dead_letter_put(DeadLetter letter, Steady now);
    // `done` is fulfilled by the commit that covers what is buffered now (with its status), or
    // at once with `current` when nothing is buffered or being committed.
    void when_committed(StatusPromise done, const Status& current);
    // `done` waits for the next commit (fsync_each sends).
    void wait_for_commit(StatusPromise done) { waiters_.push_back(std::move(done)); }
    bool has_waiters() const { return !waiters_.empty(); }

    // A send() admitted against the backlog was journaled: publish_backlog() takes it out of
    // JournalBacklog::queued.
    void taken_from_backlog() { ++backlog_taken_; }
    bool backlog_to_publish() const { return backlog_taken_ > 0; }

    // Starts a group commit when one is due (or `force`, with records buffered); with nothing
    // buffered, answers the waiters with `current`.
    void maybe_commit(Steady now, bool force, const Status& current);
    // The writer's notice: ends the commit if it is done.
    void on_commit_done(Steady now);
    // Waits for the commit in flight, if any, and ends it (before reads of the journal).
    void settle(Steady now);
    // A commit of everything buffered, on this thread (closing).
    void commit_now(Steady now, const Status& current);
    // close(): commits, retrying until `deadline` on the given clock; the records still not on
    // disk then are logged at error and returned as the error close() gives.
    Status commit_for_close(Clock& clock, Steady deadline, const Status& current);

    // Publishes the backlog to send() and wakes the senders waiting for room.
    void publish_backlog(Steady now);
    // When maybe_commit() next has work to do, if it may.
    std::optional<Steady> next_due() const;
    // Records buffered or in the commit in flight (NodeStats::uncommitted).
    std::size_t uncommitted() const {
        return journal_->pending() + (in_flight_ ? in_flight_records_ : 0);
    }
    bool idle() const { return !in_flight_ && journal_->pending() == 0; }
    // Exceptions the writer thread caught (each made a failed commit, retried like one).
    std::uint64_t writer_errors() const;
    // Answers every waiter with `status` (the node is closing or failed).
    void abandon_waiters(const Status& status);

private:
    class Writer;
    void buffered(Steady now) {
        if (journal_->pending() == 0) first_uncommitted_ = now;
    }
    void end_commit(std::unique_ptr<Journal::Batch> batch, const Status& status, Steady now);

    std::unique_ptr<Journal> journal_;
    Settings settings_;
    Logger& log_;
    JournalBacklog& backlog_;
    std::function<void(const Status&)> storage_error_;
    std::vector<StatusPromise> waiters_;            // the next commit answers them
    std::vector<StatusPromise> in_flight_waiters_;  // the commit in flight answers them
    bool in_flight_ = false;
    std::size_t in_flight_records_ = 0;  // records in the commit in flight...
    Steady in_flight_oldest_{};          // ...and when the oldest of them was buffered
    Steady first_uncommitted_{};
    Steady retry_at_{};
    std::size_t backlog_taken_ = 0;  // sends journaled since publish_backlog(), still `queued`
    std::uint64_t failures_ = 0;     // commits failed in a row, for the log
    Status last_error_;
    std::unique_ptr<Writer> writer_;  // declared last: stopped before the journal closes
};

}  // namespace peermq::detail
