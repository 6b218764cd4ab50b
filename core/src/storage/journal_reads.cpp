// The journal's reads: the outbox at start, the dead letters, and the checks of `peermq doctor`.
#include "storage/journal.hpp"

#include <algorithm>
#include <utility>

#include "storage/journal_rows.hpp"

namespace peermq::detail {
using namespace journal_rows;

// --- Reads -----------------------------------------------------------------------------------

Result<std::vector<OutboxRecord>> Journal::outbox_load() {
    std::vector<OutboxRecord> records;
    std::vector<QuarantinedRecord> damaged;
    {
        sqlite3_stmt* stmt = stmts_->outbox_load.get();
        StatementUse use(stmt);
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            auto id = column_id(stmt, 0);
            if (!id) {
                return Status(
                    ErrorCode::corrupt_journal,
                    "journal " + path_ + ": an outbox row has an id that is not 16 bytes");
            }
            const auto matches = checksum_matches(stmt, kOutboxChecksummed);
            auto headers = decode_headers(sqlite3_column_blob(stmt, 7),
                                          static_cast<std::size_t>(sqlite3_column_bytes(stmt, 7)));
            if ((matches && !*matches) || !headers) {
                damaged.push_back({*id, column_text(stmt, 2),
                                   headers ? "it fails its checksum (its bytes changed on disk)"
                                           : "its headers do not decode"});
                continue;
            }
            records.push_back(outbox_record(stmt, *id, std::move(*headers)));
        }
        if (rc != SQLITE_DONE) return error(rc, "reading the outbox");
    }
    if (!damaged.empty()) {
        if (Status s = quarantine(damaged); !s.ok()) return s;
    }
    return records;
}

Status Journal::quarantine(const std::vector<QuarantinedRecord>& records) {
    // A tool on a journal that lost commits may not write: the rows are only left out.
    if (loss_.ok()) {
        if (Status s = begin(); !s.ok()) return s;
        const std::int64_t now = system_clock()->unix_ms();
        Status status;
        for (const auto& record : records) {
            const std::string why = "damaged on disk: " + record.why + "; never delivered";
            sqlite3_stmt* stmt = stmts_->quarantine.get();
            Binder bind(stmt);
            bind.id(1, record.id);
            bind.text(2, why);
            bind.integer(3, now);
            status = bind.rc() == SQLITE_OK
                         ? run(stmt, "moving a damaged outbox row to the dead letters")
                         : error(bind.rc(), "binding a damaged outbox row");
            if (!status.ok()) break;
            sqlite3_stmt* remove = stmts_->outbox_remove.get();
            Binder bind_remove(remove);
            bind_remove.id(1, record.id);
            status = bind_remove.rc() == SQLITE_OK
                         ? run(remove, "deleting a damaged outbox row")
                         : error(bind_remove.rc(), "binding an outbox id");
            if (!status.ok()) break;
        }
        if (Status s = finish(std::move(status)); !s.ok()) return s;
    }
    quarantined_.insert(quarantined_.end(), records.begin(), records.end());
    return {};
}

Result<std::size_t> Journal::outbox_count() {
    sqlite3_stmt* stmt = stmts_->outbox_count.get();
    StatementUse use(stmt);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) return error(rc, "counting the outbox");
    return static_cast<std::size_t>(sqlite3_column_int64(stmt, 0));
}

Result<DeadLetter> Journal::read_dead_letter(sqlite3_stmt* stmt, bool* corrupt) {
    DeadLetter letter;
    auto id = column_id(stmt, 0);
    if (!id) {
        return Status(ErrorCode::corrupt_journal,
                      "journal " + path_ + ": a dead letter has an id that is not 16 bytes");
    }
    const auto matches = checksum_matches(stmt, kDeadLetterChecksummed);
    auto headers = decode_headers(sqlite3_column_blob(stmt, 8),
                                  static_cast<std::size_t>(sqlite3_column_bytes(stmt, 8)));
    letter.id = *id;
    letter.queue = column_text(stmt, 1);
    letter.reason = column_text(stmt, 2);
    letter.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 3));
    letter.last_error = column_text(stmt, 4);
    letter.created_ms = sqlite3_column_int64(stmt, 5);
    letter.first_failure_ms = sqlite3_column_int64(stmt, 6);
    letter.last_failure_ms = sqlite3_column_int64(stmt, 7);
    letter.headers = headers ? std::move(*headers) : Headers{};
    letter.payload = column_payload(stmt, 9);
    // Flagged, not an error: the other letters stay readable, and this one's bytes can still
    // be looked at.
    const bool damaged = (matches && !*matches) || !headers;
    if (damaged && letter.reason != kCorruptReason) {
        letter.last_error =
            std::string("damaged on disk: ") +
            (headers ? "it fails its checksum" : "its headers do not decode") + " (stored reason " +
            letter.reason +
            (letter.last_error.empty() ? "" : ", last error: " + letter.last_error) + ")";
        letter.reason = kCorruptReason;
    }
    if (corrupt != nullptr) *corrupt = damaged || letter.reason == kCorruptReason;
    return letter;
}

Result<sqlite3_stmt*> Journal::filter_statement(const DeadLetterFilter& filter, bool purge) {
    unsigned shape = 0;
    if (filter.queue) shape |= kByQueue;
    if (filter.reason) shape |= kByReason;
    if (filter.since_ms) shape |= kSince;
    if (filter.until_ms) shape |= kUntil;
    if (filter.id) shape |= kById;
    SqlStatement& slot = purge ? stmts_->dead_letter_purge[shape] : stmts_->dead_letter_list[shape];
    if (!slot) {
        // Built once per filter shape, so each shape gets its own plan and index.
        const std::string select = "SELECT " + std::string(purge ? "id" : kDeadLetterColumns) +
                                   " FROM dead_letters WHERE " + filter_where(shape) +
                                   " ORDER BY last_failure_ms, id LIMIT ?5";
        const std::string sql =
            purge ? "DELETE FROM dead_letters WHERE id IN (" + select + ")" : select;
        sqlite3_stmt* raw = nullptr;
        const int rc =
            sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        slot = SqlStatement(raw);
        if (rc != SQLITE_OK) return error(rc, "preparing a dead-letter query");
    }
    sqlite3_stmt* stmt = slot.get();
    Binder bind(stmt);
    if (filter.queue) bind.text(1, *filter.queue);
    if (filter.reason) bind.text(2, *filter.reason);
    if (filter.since_ms) bind.integer(3, *filter.since_ms);
    if (filter.until_ms) bind.integer(4, *filter.until_ms);
    if (filter.id) bind.id(6, *filter.id);
    const auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    bind.integer(
        5, filter.limit == 0 ? -1 : static_cast<std::int64_t>(std::min(filter.limit, max_limit)));
    if (bind.rc() != SQLITE_OK) return error(bind.rc(), "binding a dead-letter filter");
    return stmt;
}

Result<std::vector<DeadLetter>> Journal::dead_letter_list(const DeadLetterFilter& filter) {
    if (Status s = commit(); !s.ok()) return s;
    auto prepared = filter_statement(filter, false);
    if (!prepared.ok()) return prepared.status();
    sqlite3_stmt* stmt = *prepared;
    StatementUse use(stmt);
    std::vector<DeadLetter> letters;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        auto letter = read_dead_letter(stmt);
        if (!letter.ok()) return letter.status();
        letters.push_back(std::move(letter).value());
    }
    if (rc != SQLITE_DONE) return error(rc, "listing dead letters");
    return letters;
}

Result<DeadLetter> Journal::select_dead_letter(const MessageId& id, bool* corrupt) {
    sqlite3_stmt* stmt = stmts_->dead_letter_get.get();
    StatementUse use(stmt);
    Binder bind(stmt);
    bind.id(1, id);
    if (bind.rc() != SQLITE_OK) return error(bind.rc(), "binding a dead-letter id");
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        return Status(ErrorCode::not_found, "no dead letter " + id.to_string());
    }
    if (rc != SQLITE_ROW) return error(rc, "reading a dead letter");
    return read_dead_letter(stmt, corrupt);
}

Result<DeadLetter> Journal::dead_letter_get(const MessageId& id) {
    if (Status s = commit(); !s.ok()) return s;
    return select_dead_letter(id);
}

Result<std::size_t> Journal::dead_letter_purge(const DeadLetterFilter& filter) {
    if (Status s = commit(); !s.ok()) return s;
    auto prepared = filter_statement(filter, true);
    if (!prepared.ok()) return prepared.status();
    if (Status s = begin(); !s.ok()) return s;
    Status status = run(*prepared, "purging dead letters");
    const auto removed = static_cast<std::size_t>(sqlite3_changes64(db_));
    if (Status s = finish(std::move(status)); !s.ok()) return s;
    return removed;
}

Result<DeadLetterCounts> Journal::dead_letter_counts() {
    if (Status s = commit(); !s.ok()) return s;
    // Prepared for each call: the counts are read at start, after a purge and after a refused
    // take, never per message.
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(
        db_, "SELECT queue, reason, COUNT(*) FROM dead_letters GROUP BY queue, reason", -1, &raw,
        nullptr);
    SqlStatement stmt(raw);
    if (rc != SQLITE_OK) return error(rc, "preparing the dead-letter counts");
    DeadLetterCounts counts;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
        const std::int64_t n = sqlite3_column_int64(raw, 2);
        if (n > 0) counts[column_text(raw, 0)][column_text(raw, 1)] = static_cast<std::uint64_t>(n);
    }
    if (rc != SQLITE_DONE) return error(rc, "counting the dead letters");
    return counts;
}

Result<DeadLetter> Journal::take_dead_letter(const MessageId& id, Status& refused) {
    bool corrupt = false;
    auto letter = select_dead_letter(id, &corrupt);
    if (!letter.ok()) return letter;
    if (corrupt) {
        refused = Status(ErrorCode::corrupt_journal,
                         "journal " + path_ + ": dead letter " + id.to_string() +
                             " is damaged on disk and is never replayed (" + letter->last_error +
                             "); its stored bytes can still be read (peermq dlq show)");
        // Stored as corrupt, so that a listing by reason finds it.
        sqlite3_stmt* stmt = stmts_->dead_letter_flag.get();
        Binder bind(stmt);
        bind.id(1, id);
        bind.text(2, letter->last_error);
        if (bind.rc() != SQLITE_OK) return error(bind.rc(), "binding a dead-letter id");
        if (Status s = run(stmt, "marking a dead letter corrupt"); !s.ok()) return s;
        return letter;
    }
    sqlite3_stmt* stmt = stmts_->dead_letter_remove.get();
    Binder bind(stmt);
    bind.id(1, id);
    if (bind.rc() != SQLITE_OK) return error(bind.rc(), "binding a dead-letter id");
    if (Status s = run(stmt, "deleting a dead letter"); !s.ok()) return s;
    return letter;
}

Result<DeadLetter> Journal::dead_letter_take(const MessageId& id) {
    if (Status s = commit(); !s.ok()) return s;
    if (Status s = begin(); !s.ok()) return s;
    Status refused;
    auto letter = take_dead_letter(id, refused);
    if (Status s = finish(letter.status()); !s.ok()) return s;
    if (!refused.ok()) return refused;
    return letter;
}

Result<MessageId> Journal::dead_letter_replay(const MessageId& id, std::string_view queue,
                                              std::int64_t now_ms) {
    if (Status s = commit(); !s.ok()) return s;
    if (Status s = begin(); !s.ok()) return s;
    Status refused;
    auto taken = [&]() -> Result<OutboxRecord> {
        auto letter = take_dead_letter(id, refused);
        if (!letter.ok()) return letter.status();
        if (!refused.ok()) return OutboxRecord{};  // nothing sent; the letter's mark committed
        std::int64_t max_seq = 0;
        {
            sqlite3_stmt* stmt = stmts_->outbox_max_seq.get();
            StatementUse use(stmt);
            const int rc = sqlite3_step(stmt);
            if (rc != SQLITE_ROW) return error(rc, "reading the outbox sequence");
            max_seq = sqlite3_column_int64(stmt, 0);
        }
        OutboxRecord record;
        record.id = Uuid::generate();
        record.queue = queue.empty() ? letter->queue : std::string(queue);
        record.headers = std::move(letter->headers);
        record.payload = std::move(letter->payload);
        record.attempts = 0;
        record.created_ms = now_ms;
        record.deadline_ms = 0;
        record.guarantee = static_cast<std::uint8_t>(Guarantee::at_least_once);
        record.seq = static_cast<std::uint64_t>(max_seq) + 1;
        sqlite3_stmt* put = stmts_->outbox_put.get();
        if (Status s = bind_outbox(put, record); !s.ok()) return s;
        if (Status s = run(put, "writing an outbox row"); !s.ok()) return s;
        return record;
    }();
    if (Status s = finish(taken.status()); !s.ok()) return s;
    if (!refused.ok()) return refused;
    (void)note_seq(taken->seq);
    return taken->id;
}

Status Journal::verify() {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA quick_check(1)", -1, &raw, nullptr);
    SqlStatement stmt(raw);
    if (rc == SQLITE_OK) rc = sqlite3_step(raw);
    if (rc != SQLITE_ROW) return error(rc, "checking integrity");
    const std::string finding = column_text(raw, 0);
    if (finding == "ok") return {};
    return Status(ErrorCode::corrupt_journal, "journal " + path_ + " is corrupt: " + finding);
}

Result<JournalRecordCheck> Journal::check_records() {
    JournalRecordCheck check;
    {
        sqlite3_stmt* stmt = stmts_->outbox_load.get();
        StatementUse use(stmt);
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            ++check.outbox;
            const auto matches = checksum_matches(stmt, kOutboxChecksummed);
            if (!matches) ++check.unverified;
            const bool headers_ok =
                decode_headers(sqlite3_column_blob(stmt, 7),
                               static_cast<std::size_t>(sqlite3_column_bytes(stmt, 7)))
                    .has_value();
            if ((matches && !*matches) || !headers_ok || !column_id(stmt, 0)) {
                ++check.outbox_corrupt;
            }
        }
        if (rc != SQLITE_DONE) return error(rc, "reading the outbox");
    }
    auto prepared = filter_statement({}, false);
    if (!prepared.ok()) return prepared.status();
    sqlite3_stmt* stmt = *prepared;
    StatementUse use(stmt);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        ++check.dead_letters;
        if (sqlite3_column_type(stmt, kDeadLetterChecksummed.checksum) == SQLITE_NULL) {
            ++check.unverified;
        }
        bool corrupt = false;
        auto letter = read_dead_letter(stmt, &corrupt);
        if (!letter.ok() || corrupt) ++check.dead_letters_corrupt;
    }
    if (rc != SQLITE_DONE) return error(rc, "reading the dead letters");
    return check;
}

}  // namespace peermq::detail
