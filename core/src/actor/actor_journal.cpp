// The actor's side of the journal: the unsent messages of a previous run taken back into the
// queues (load_outbox), each reliable message written as it is accepted (journal_put), Queue::flush
// answered when the journal's commits catch up, and close()'s last commit. The commits themselves
// are the JournalPipeline's (storage/journal_pipeline.hpp), on its writer thread.
#include "actor/actor.hpp"

namespace peermq::detail {

Status Actor::load_outbox() {
    if (!journal_) return {};
    auto records = journal_->journal().outbox_load();
    if (!records) return records.status();
    for (auto& record : records.value()) {
        QueueOptions options;
        options.guarantee = static_cast<Guarantee>(std::min<std::uint8_t>(record.guarantee, 2));
        if (options.guarantee == Guarantee::best_effort) {
            options.guarantee = Guarantee::at_least_once;
        }
        auto index = core_.declare_queue(record.queue, options);
        if (!index) return index.status();
        if (!sender_.queue(index.value()).declared) sender_.declare(index.value(), options);
        Outgoing message;
        message.id = record.id;
        message.payload = std::move(record.payload);
        message.headers = std::move(record.headers);
        message.created_ms = record.created_ms;
        message.deadline_ms = record.deadline_ms;
        message.seq = record.seq;
        message.attempts = record.attempts;
        message.journaled = true;
        sender_.restore(index.value(), std::move(message));
    }
    // Records whose bytes changed on disk were not loaded: the journal moved them to the dead
    // letters (reason `corrupt`). They count as dead-lettered, and a person is told at once.
    const auto& damaged = journal_->journal().quarantined();
    for (const auto& record : damaged) ++queue_stats(record.queue)->dead_lettered;
    if (!damaged.empty()) {
        PEERMQ_LOG(log_, LogLevel::error, "journal",
                   "unsent messages damaged on disk were moved to the dead letters, not sent",
                   {"count", static_cast<std::uint64_t>(damaged.size())},
                   {"first_id", damaged.front().id}, {"queue", damaged.front().queue},
                   {"why", damaged.front().why});
    }
    return {};
}

bool Actor::journal_put(const OutQueue& q, const Outgoing& message) {
    if (!journal_ || options_.durability == Durability::memory) return false;
    journal_->outbox_put(OutboxRecord{message.id, q.name, message.headers, message.payload, 0,
                                      message.created_ms, message.deadline_ms,
                                      static_cast<std::uint8_t>(q.options.guarantee), message.seq},
                         now_);
    return true;
}

void Actor::on_flush(FlushCmd& cmd) {
    if (!journal_ || options_.durability == Durability::memory) {
        cmd.done->set_value(core_.storage_error());
        return;
    }
    journal_->when_committed(std::move(cmd.done), core_.storage_error());
}

void Actor::commit_for_close() {
    if (!journal_) return;
    Status lost = journal_->commit_for_close(clock_, clock_.steady_now() + close_flush_timeout_,
                                             core_.storage_error());
    if (!lost.ok()) core_.set_close_status(std::move(lost));
}

}  // namespace peermq::detail
