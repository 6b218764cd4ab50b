// The journal's writes: what is buffered between commits and how a commit applies it.
#include "storage/journal.hpp"

#include <algorithm>
#include <utility>

#include "storage/journal_rows.hpp"

namespace peermq::detail {
using namespace journal_rows;

// --- Buffering -------------------------------------------------------------------------------

void Journal::outbox_put(OutboxRecord record) {
    const MessageId id = record.id;
    // A new message has a seq above every one put so far: no row of its id can exist. Any
    // other put may replace a row on disk, which a later remove must then delete.
    const bool fresh = note_seq(record.seq);
    if (BufferedOp* op = outbox_ops_.find(id)) {
        // The new row supersedes a buffered put or remove of the same id.
        op->row_on_disk = op->row_on_disk || std::holds_alternative<OutboxRemoval>(ops_[op->index]);
        ops_[op->index] = std::monostate{};
        --live_ops_;
        op->index = ops_.size();
    } else {
        outbox_ops_.insert_or_assign(id, BufferedOp{ops_.size(), !fresh});
    }
    ops_.emplace_back(std::move(record));
    ++live_ops_;
}

bool Journal::note_seq(std::uint64_t seq) {
    const bool above = !max_seq_ || seq > *max_seq_;
    if (above) max_seq_ = seq;
    return above;
}

void Journal::outbox_remove(const MessageId& id) {
    if (BufferedOp* op = outbox_ops_.find(id)) {
        if (std::holds_alternative<OutboxRemoval>(ops_[op->index])) return;
        // The put is still buffered: it never reaches the disk, and unless it replaced a row
        // that may be there, nothing else has to.
        const bool row_on_disk = op->row_on_disk;
        ops_[op->index] = std::monostate{};
        --live_ops_;
        outbox_ops_.erase(id);
        if (!row_on_disk) return;
    }
    // The put was committed, or is in the batch being committed. (Or there was none: then the
    // DELETE finds nothing, which costs less than knowing every id on disk.)
    outbox_ops_.insert_or_assign(id, BufferedOp{ops_.size(), true});
    ops_.emplace_back(OutboxRemoval{id});
    ++live_ops_;
}

void Journal::dead_letter_put(DeadLetter letter) {
    outbox_remove(letter.id);
    ops_.emplace_back(std::move(letter));
    ++live_ops_;
}

// --- Commit ----------------------------------------------------------------------------------

Status Journal::run(sqlite3_stmt* stmt, const char* what) {
    StatementUse use(stmt);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return {};
    return error(rc, what);
}

Status Journal::begin() {
    if (!loss_.ok()) return loss_;  // what is left is for salvage, not for more commits
    Status status = run(stmts_->begin.get(), "beginning a transaction");
    if (status.ok()) changes_at_begin_ = sqlite3_total_changes64(db_);
    return status;
}

Status Journal::finish(Status status) {
    JournalCounts counts;
    if (status.ok()) {
        // Every transaction counts itself, in itself: a lost commit takes its count with it.
        sqlite3_stmt* stmt = stmts_->count_commit.get();
        StatementUse use(stmt);
        Binder bind(stmt);
        bind.integer(1, sqlite3_total_changes64(db_) - changes_at_begin_);
        const int rc = bind.rc() == SQLITE_OK ? sqlite3_step(stmt) : bind.rc();
        if (rc == SQLITE_ROW) {
            counts.commits = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
            counts.rows = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
        } else if (rc == SQLITE_DONE) {
            status = Status(ErrorCode::corrupt_journal,
                            "journal " + path_ + ": its journal_state row is missing");
        } else {
            status = error(rc, "counting the commit");
        }
    }
    if (status.ok()) status = run(stmts_->commit.get(), "committing");
    // After some errors SQLite has already rolled back; after others (BUSY) it has not.
    if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
        (void)run(stmts_->rollback.get(), "rolling back");
    }
    if (status.ok()) note_committed(counts);
    return status;
}

Status Journal::bind_outbox(sqlite3_stmt* stmt, const OutboxRecord& record) {
    encode_headers(record.headers, stmts_->headers);
    // Computed here, on the thread that writes the batch: outbox_put stays a buffer append.
    const std::int64_t checksum =
        record_checksum(record.id.data(), MessageId::kSize, record.queue, stmts_->headers.data(),
                        stmts_->headers.size(), record.payload.data(), record.payload.size());
    Binder bind(stmt);
    bind.id(1, record.id);
    bind.integer(2, static_cast<std::int64_t>(record.seq));
    bind.text(3, record.queue);
    bind.integer(4, record.attempts);
    bind.integer(5, record.created_ms);
    bind.integer(6, record.deadline_ms);
    bind.integer(7, record.guarantee);
    bind.blob(8, stmts_->headers.data(), stmts_->headers.size());
    bind.blob(9, record.payload.data(), record.payload.size());
    bind.integer(10, checksum);
    return bind.rc() == SQLITE_OK ? Status() : error(bind.rc(), "binding an outbox row");
}

Status Journal::apply(const PendingOp& op) {
    if (const auto* record = std::get_if<OutboxRecord>(&op)) {
        sqlite3_stmt* stmt = stmts_->outbox_put.get();
        if (Status s = bind_outbox(stmt, *record); !s.ok()) return s;
        return run(stmt, "writing an outbox row");
    }
    if (const auto* removal = std::get_if<OutboxRemoval>(&op)) {
        sqlite3_stmt* stmt = stmts_->outbox_remove.get();
        Binder bind(stmt);
        bind.id(1, removal->id);
        if (bind.rc() != SQLITE_OK) return error(bind.rc(), "binding an outbox id");
        return run(stmt, "deleting an outbox row");
    }
    if (const auto* letter = std::get_if<DeadLetter>(&op)) {
        sqlite3_stmt* stmt = stmts_->dead_letter_put.get();
        encode_headers(letter->headers, stmts_->headers);
        Binder bind(stmt);
        bind.id(1, letter->id);
        bind.text(2, letter->queue);
        bind.text(3, letter->reason);
        bind.integer(4, letter->attempts);
        bind.text(5, letter->last_error);
        bind.integer(6, letter->created_ms);
        bind.integer(7, letter->first_failure_ms);
        bind.integer(8, letter->last_failure_ms);
        bind.blob(9, stmts_->headers.data(), stmts_->headers.size());
        bind.blob(10, letter->payload.data(), letter->payload.size());
        // Over the fields a repeated put keeps (id, queue, headers, payload): the upsert does
        // not change the stored checksum.
        bind.integer(11, record_checksum(letter->id.data(), MessageId::kSize, letter->queue,
                                         stmts_->headers.data(), stmts_->headers.size(),
                                         letter->payload.data(), letter->payload.size()));
        if (bind.rc() != SQLITE_OK) return error(bind.rc(), "binding a dead letter");
        return run(stmt, "writing a dead letter");
    }
    return {};  // cancelled
}

Status Journal::commit() {
    // The writer thread's three steps, run in one go on the caller's thread.
    std::unique_ptr<Batch> batch = take_batch();
    Status status = write_batch(*batch);
    finish_batch(std::move(batch), status);
    return status;
}

std::size_t Journal::pending_messages() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(ops_.begin(), ops_.end(), [](const PendingOp& op) {
            return std::holds_alternative<OutboxRecord>(op) ||
                   std::holds_alternative<DeadLetter>(op);
        }));
}

std::unique_ptr<Journal::Batch> Journal::take_batch() {
    auto batch = std::make_unique<Batch>();
    if (live_ops_ > 0) {
        batch->ops_.swap(ops_);
        ops_.swap(spare_ops_);  // the vector of an earlier batch: its capacity is reused
    }
    ops_.clear();
    // From here the batch's outcome counts as on disk, so a later remove of one of its puts
    // leaves a DELETE (a failed batch is retried ahead of it, so the order holds).
    outbox_ops_.clear();
    live_ops_ = 0;
    return batch;
}

Status Journal::write_batch(Batch& batch) {
    if (batch.ops_.empty()) return {};
    if (Status s = begin(); !s.ok()) return s;
    Status status;
    for (const PendingOp& op : batch.ops_) {
        status = apply(op);
        if (!status.ok()) break;
    }
    return finish(std::move(status));
}

void Journal::finish_batch(std::unique_ptr<Batch> batch, const Status& status) {
    if (!batch || batch->ops_.empty()) return;
    if (status.ok()) {
        ++commits_;
        batch->ops_.clear();
        if (batch->ops_.capacity() > spare_ops_.capacity()) spare_ops_.swap(batch->ops_);
        return;
    }
    // Retried first, then what was buffered meanwhile; index the latest live op of each id.
    std::erase_if(batch->ops_,
                  [](const PendingOp& op) { return std::holds_alternative<std::monostate>(op); });
    ops_.insert(ops_.begin(), std::make_move_iterator(batch->ops_.begin()),
                std::make_move_iterator(batch->ops_.end()));
    outbox_ops_.clear();
    live_ops_ = 0;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
        const PendingOp& op = ops_[i];
        if (std::holds_alternative<std::monostate>(op)) continue;
        ++live_ops_;
        // The failed batch may have been partly applied before it was rolled back, or not:
        // its puts count as maybe on disk.
        if (const auto* record = std::get_if<OutboxRecord>(&op)) {
            outbox_ops_.insert_or_assign(record->id, BufferedOp{i, true});
        } else if (const auto* removal = std::get_if<OutboxRemoval>(&op)) {
            outbox_ops_.insert_or_assign(removal->id, BufferedOp{i, true});
        }
    }
}

}  // namespace peermq::detail
