#include "storage/journal.hpp"

#include "storage/journal_rows.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

namespace peermq::detail {
using namespace journal_rows;
namespace {

namespace fs = std::filesystem;

// Payload near the end: SQLite keeps a row's overflow at its end, so the small columns stay
// readable without walking a large payload's overflow pages. The checksum comes after it because
// format 1 files get it by ALTER TABLE ADD COLUMN, which appends: one column order for every
// file, and it is only read together with the payload it covers. Keep in step with
// docs/spec/journal.md.
constexpr const char* kSchema = R"sql(
CREATE TABLE outbox (
    id          BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    seq         INTEGER NOT NULL,
    queue       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    guarantee   INTEGER NOT NULL,
    headers     BLOB    NOT NULL,
    payload     BLOB    NOT NULL,
    checksum    INTEGER
);
CREATE INDEX outbox_seq ON outbox (seq);
CREATE TABLE dead_letters (
    id               BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    queue            TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT    NOT NULL,
    created_ms       INTEGER NOT NULL,
    first_failure_ms INTEGER NOT NULL,
    last_failure_ms  INTEGER NOT NULL,
    headers          BLOB    NOT NULL,
    payload          BLOB    NOT NULL,
    checksum         INTEGER
);
CREATE INDEX dead_letters_queue_time ON dead_letters (queue, last_failure_ms);
CREATE INDEX dead_letters_reason ON dead_letters (reason);
)sql";

// Format 2 added the checksums and the journal's own counts (journal_state).
constexpr const char* kUpgradeFrom1 = R"sql(
ALTER TABLE outbox ADD COLUMN checksum INTEGER;
ALTER TABLE dead_letters ADD COLUMN checksum INTEGER;
)sql";

// The schema's creation (or upgrade) is the journal's first commit.
constexpr const char* kJournalState = R"sql(
CREATE TABLE journal_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    commits      INTEGER NOT NULL,
    rows_written INTEGER NOT NULL
);
INSERT INTO journal_state VALUES (1, 1, 0);
)sql";

// Every level syncs each commit (a power cut keeps what was committed): `memory` only opens a
// journal for the DLQ, and fsync_each differs from group_commit in how often the actor commits.
const char* synchronous_pragma(Durability durability) {
    switch (durability) {
        case Durability::memory:
        case Durability::group_commit:
        case Durability::fsync_each: return "PRAGMA synchronous=FULL";
    }
    return "PRAGMA synchronous=FULL";
}

}  // namespace

SqlStatement::SqlStatement(SqlStatement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)) {}

SqlStatement& SqlStatement::operator=(SqlStatement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
}

SqlStatement::~SqlStatement() { sqlite3_finalize(stmt_); }

Journal::Journal(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db), stmts_(std::make_unique<Statements>()) {}

Journal::~Journal() {
    stmts_.reset();  // finalize before closing, or sqlite3_close would refuse
    sqlite3_close_v2(db_);
    if (mark_fd_ >= 0) {
        (void)::fdatasync(mark_fd_);  // a clean stop leaves the mark current on disk
        ::close(mark_fd_);
    }
}

Status Journal::error(int rc, std::string_view what) const {
    std::string message = "journal " + path_ + ": " + std::string(what) + ": ";
    const bool db_has_it = db_ != nullptr && (sqlite3_extended_errcode(db_) & 0xff) == (rc & 0xff);
    message += db_has_it ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    return Status(code_for(rc), std::move(message));
}

Result<std::unique_ptr<Journal>> Journal::open(const std::string& data_dir, Durability durability,
                                               JournalOpenMode mode) {
    return open_checked(data_dir, durability, mode, false);
}

Result<std::unique_ptr<Journal>> Journal::open_checked(const std::string& data_dir,
                                                       Durability durability, JournalOpenMode mode,
                                                       bool accepting) {
    if (data_dir.empty()) {
        return Status(ErrorCode::invalid_argument, "journal: data_dir is empty");
    }
    const fs::path dir(data_dir);
    const fs::path file = dir / kFileName;
    std::error_code ec;
    const auto dir_status = fs::status(dir, ec);
    if (fs::exists(dir_status) && !fs::is_directory(dir_status)) {
        return Status(ErrorCode::invalid_argument,
                      "journal: data_dir " + data_dir + " exists and is not a directory");
    }
    // The mark before the database: a writer advances it only after its commit, so a mark read
    // first is never ahead of the database read next, unless commits were lost.
    JournalMark mark = read_mark(data_dir);
    const bool recorded = mark.state == JournalMark::State::ok && mark.counts.commits > 0;
    if (!accepting && recorded && !fs::exists(file, ec)) {
        return lost_commits(file.string(), mark, {}, "the file is missing");
    }
    if (mode == JournalOpenMode::existing) {
        if (!fs::exists(file, ec)) {
            return Status(ErrorCode::not_found, "journal: no peermq journal at " + file.string());
        }
    } else if (!fs::exists(dir_status)) {
        if (!fs::create_directories(dir, ec) && ec) {
            return Status(ErrorCode::io_error,
                          "journal: cannot create data_dir " + data_dir + ": " + ec.message());
        }
        sync_directory(dir.has_parent_path() ? dir.parent_path() : fs::path("."));
    }
    const bool file_existed = fs::exists(file, ec);
    // The journal holds payloads: only the node's user may read it, whatever the umask. SQLite
    // gives its -wal and -shm files the mode of the database file, so making that one 0600 (and
    // creating it so, before SQLite does with 0644) covers all three.
    if (!file_existed && mode == JournalOpenMode::create) {
        const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) ::close(fd);
    }
    for (const char* suffix : {"", "-wal", "-shm"}) {  // older files: the owner's bits stay
        const std::string path = file.string() + suffix;
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
            ::chmod(path.c_str(), st.st_mode & 0700);
        }
    }

    sqlite3* db = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                      (mode == JournalOpenMode::create ? SQLITE_OPEN_CREATE : 0);
    const int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
    // From here the Journal owns `db`, even when opening failed.
    std::unique_ptr<Journal> journal(new Journal(file.string(), db));
    if (rc != SQLITE_OK) {
        if (db == nullptr) return Status(ErrorCode::internal, "journal: out of memory");
        return journal->error(rc, "cannot open");
    }
    sqlite3_extended_result_codes(db, 1);
    // SQLite falls back to read-only without a word when it may not write the file; the node
    // would then fail at its first commit, long after it said it had started.
    if (mode == JournalOpenMode::create && sqlite3_db_readonly(db, "main") == 1) {
        return Status(ErrorCode::io_error,
                      "journal " + file.string() +
                          " cannot be written (SQLite could open it read-only only): check the "
                          "owner and permissions of the file and of " +
                          data_dir + ", and that its file system is mounted read-write");
    }
    journal->set_busy_timeout(kDefaultBusyTimeout);
    journal->mark_ = std::move(mark);
    if (Status status = journal->initialize(durability, !file_existed, mode, accepting);
        !status.ok()) {
        return status;
    }
    return journal;
}

Status Journal::initialize(Durability durability, bool created_file, JournalOpenMode mode,
                           bool accepting) {
    // The first read of a file that is not SQLite fails here with NOTADB / CORRUPT; a file cut
    // short is CORRUPT too, since its header counts more pages than it holds.
    auto not_a_journal = [this](const Status& cause) {
        if (cause.code() != ErrorCode::corrupt_journal) return cause;
        const std::string prefix = "journal " + path_ + ": ";
        std::string detail = cause.message();
        if (detail.starts_with(prefix)) detail.erase(0, prefix.size());
        return Status(ErrorCode::corrupt_journal,
                      "journal " + path_ +
                          " is not a readable peermq journal (corrupt, truncated or not an SQLite "
                          "database): " +
                          detail);
    };
    std::int64_t application_id = 0;
    std::int64_t version = 0;
    std::int64_t objects = 0;
    auto read_header = [&]() -> Status {
        if (Status s = query_int("PRAGMA application_id", application_id); !s.ok()) return s;
        if (Status s = query_int("PRAGMA user_version", version); !s.ok()) return s;
        return query_int("SELECT count(*) FROM sqlite_schema", objects);
    };
    if (Status s = read_header(); !s.ok()) return not_a_journal(s);

    const bool fresh = application_id == 0 && version == 0 && objects == 0;
    // A data directory that was used has no business with an empty journal: checked before
    // anything is written to the file.
    if (fresh && !accepting && mark_.state == JournalMark::State::damaged) {
        return damaged_mark(path_, mark_);
    }
    if (fresh && !accepting && mark_.state == JournalMark::State::ok && mark_.counts.commits > 0) {
        std::error_code ec;
        const bool empty = fs::file_size(path_, ec) == 0 && !ec;
        return lost_commits(path_, mark_, {},
                            empty ? "the file is empty, 0 bytes"
                                  : "the file holds no journal: the WAL that held all of it was "
                                    "dropped, damaged or deleted");
    }
    if (!fresh && application_id != kApplicationId) {
        return Status(ErrorCode::corrupt_journal,
                      "journal " + path_ +
                          " is an SQLite database but not a peermq journal (application_id " +
                          std::to_string(application_id) + ")");
    }
    if (!fresh && version > kFormatVersion) {
        return Status(ErrorCode::corrupt_journal,
                      "journal " + path_ + " has journal format " + std::to_string(version) +
                          "; this peermq reads format " + std::to_string(kFormatVersion) +
                          " and older: use a newer peermq");
    }
    if (!fresh && version < 1) {
        return Status(ErrorCode::corrupt_journal, "journal " + path_ +
                                                      " has an invalid journal format version " +
                                                      std::to_string(version));
    }

    {
        // WAL: readers (tools) never block the writer, and a commit appends to one file.
        sqlite3_stmt* raw = nullptr;
        int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &raw, nullptr);
        SqlStatement stmt(raw);
        if (rc == SQLITE_OK) rc = sqlite3_step(raw);
        if (rc != SQLITE_ROW) return not_a_journal(error(rc, "setting WAL mode"));
        const std::string mode = column_text(raw, 0);
        if (mode != "wal") {
            return Status(ErrorCode::io_error,
                          "journal " + path_ + ": cannot use WAL mode (got " + mode + ")");
        }
    }
    if (Status s = exec(synchronous_pragma(durability), "setting synchronous"); !s.ok()) {
        return s;
    }
    if (Status s = exec(("PRAGMA journal_size_limit=" + std::to_string(kWalSizeLimit)).c_str(),
                        "setting journal_size_limit");
        !s.ok()) {
        return s;
    }

    if (fresh) {
        // Another process may be creating the same journal: decide again under the write lock.
        if (Status s = exec("BEGIN IMMEDIATE", "creating the schema"); !s.ok()) return s;
        Status status = read_header();
        if (status.ok() && application_id == 0 && objects == 0) {
            status = exec(kSchema, "creating the schema");
            if (status.ok()) {
                status = exec(("PRAGMA application_id=" + std::to_string(kApplicationId)).c_str(),
                              "setting application_id");
            }
            if (status.ok()) status = exec(kJournalState, "creating the schema");
            if (status.ok()) {
                status = exec(("PRAGMA user_version=" + std::to_string(kFormatVersion)).c_str(),
                              "setting user_version");
            }
        } else if (status.ok() && application_id != kApplicationId) {
            status = Status(ErrorCode::corrupt_journal,
                            "journal " + path_ + " is an SQLite database but not a peermq journal");
        }
        if (status.ok()) status = exec("COMMIT", "creating the schema");
        if (!status.ok()) {
            if (sqlite3_get_autocommit(db_) == 0) (void)exec("ROLLBACK", "rolling back");
            return status;
        }
        if (created_file) sync_directory(fs::path(path_).parent_path());
    } else if (version == 1) {
        if (Status s = upgrade_from_format_1(); !s.ok()) return s;
    }

    if (Status s = prepare_all(); !s.ok()) {
        return Status(
            ErrorCode::corrupt_journal,
            "journal " + path_ + " does not have the peermq journal schema: " + s.message());
    }
    if (Status s = read_held(); !s.ok()) return s;
    if (Status s = check_mark(mode, accepting); !s.ok()) return s;
    return check_outbox();
}

Status Journal::upgrade_from_format_1() {
    // Under the write lock, deciding again: another process may be upgrading the same file.
    if (Status s = exec("BEGIN IMMEDIATE", "upgrading the journal format"); !s.ok()) return s;
    std::int64_t version = 0;
    Status status = query_int("PRAGMA user_version", version);
    if (status.ok() && version == 1) {
        status = exec(kUpgradeFrom1, "upgrading the journal format");
        if (status.ok()) status = exec(kJournalState, "upgrading the journal format");
        if (status.ok()) {
            status = exec(("PRAGMA user_version=" + std::to_string(kFormatVersion)).c_str(),
                          "upgrading the journal format");
        }
    }
    if (status.ok()) status = exec("COMMIT", "upgrading the journal format");
    if (!status.ok() && sqlite3_get_autocommit(db_) == 0) (void)exec("ROLLBACK", "rolling back");
    return status;
}

Status Journal::read_held() {
    sqlite3_stmt* stmt = stmts_->held.get();
    StatementUse use(stmt);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        return Status(ErrorCode::corrupt_journal,
                      "journal " + path_ +
                          " does not have the peermq journal schema: journal_state has no row");
    }
    if (rc != SQLITE_ROW) return error(rc, "reading journal_state");
    held_.commits = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    held_.rows = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
    return {};
}

Status Journal::query_int(const char* sql, std::int64_t& out) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
    SqlStatement stmt(raw);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(raw);
        if (rc == SQLITE_ROW) {
            out = sqlite3_column_int64(raw, 0);
            return {};
        }
    }
    return error(rc, std::string("running ") + sql);
}

Status Journal::exec(const char* sql, const char* what) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status() : error(rc, what);
}

Status Journal::prepare_all() {
    auto prepare = [this](SqlStatement& slot, const std::string& sql) -> Status {
        sqlite3_stmt* raw = nullptr;
        const int rc =
            sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        slot = SqlStatement(raw);
        return rc == SQLITE_OK ? Status() : error(rc, "preparing \"" + sql + "\"");
    };
    const std::string outbox_columns = kOutboxColumns;
    const std::string dead_letter_columns = kDeadLetterColumns;
    const std::pair<SqlStatement*, std::string> all[] = {
        {&stmts_->begin, "BEGIN IMMEDIATE"},
        {&stmts_->commit, "COMMIT"},
        {&stmts_->rollback, "ROLLBACK"},
        {&stmts_->outbox_put, "INSERT OR REPLACE INTO outbox (" + outbox_columns +
                                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
        {&stmts_->outbox_remove, "DELETE FROM outbox WHERE id = ?1"},
        {&stmts_->outbox_load, "SELECT " + outbox_columns + " FROM outbox ORDER BY seq, id"},
        {&stmts_->outbox_ids, "SELECT id, seq FROM outbox"},
        {&stmts_->outbox_count, "SELECT count(*) FROM outbox"},
        {&stmts_->outbox_max_seq, "SELECT coalesce(max(seq), 0) FROM outbox"},
        // A second failure of the same message keeps its first row and moves its failure data.
        {&stmts_->dead_letter_put,
         "INSERT INTO dead_letters (" + dead_letter_columns +
             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO UPDATE "
             "SET "
             "reason = excluded.reason, attempts = excluded.attempts, "
             "last_error = excluded.last_error, last_failure_ms = excluded.last_failure_ms"},
        {&stmts_->dead_letter_get,
         "SELECT " + dead_letter_columns + " FROM dead_letters WHERE id = ?1"},
        {&stmts_->dead_letter_remove, "DELETE FROM dead_letters WHERE id = ?1"},
        {&stmts_->dead_letter_flag,
         "UPDATE dead_letters SET reason = 'corrupt', last_error = ?2 WHERE id = ?1"},
        // A damaged outbox row keeps its bytes and its checksum, so it is still seen as damaged
        // in the dead letters. (WHERE: SQLite's rule for an upsert of a SELECT.)
        {&stmts_->quarantine,
         "INSERT INTO dead_letters (" + dead_letter_columns +
             ") SELECT id, queue, 'corrupt', attempts, ?2, created_ms, ?3, ?3, headers, payload, "
             "checksum FROM outbox WHERE id = ?1 ON CONFLICT (id) DO UPDATE SET "
             "reason = excluded.reason, last_error = excluded.last_error, "
             "last_failure_ms = excluded.last_failure_ms"},
        {&stmts_->count_commit,
         "UPDATE journal_state SET commits = commits + 1, rows_written = rows_written + ?1 "
         "WHERE id = 1 RETURNING commits, rows_written"},
        {&stmts_->held, "SELECT commits, rows_written FROM journal_state WHERE id = 1"},
    };
    for (const auto& [slot, sql] : all) {
        if (Status s = prepare(*slot, sql); !s.ok()) return s;
    }
    return {};
}

Status Journal::check_outbox() {
    sqlite3_stmt* stmt = stmts_->outbox_ids.get();
    StatementUse use(stmt);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (!column_id(stmt, 0)) {
            return Status(ErrorCode::corrupt_journal,
                          "journal " + path_ + ": an outbox row has an id that is not 16 bytes");
        }
        (void)note_seq(static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1)));
    }
    return rc == SQLITE_DONE ? Status() : error(rc, "reading the outbox ids");
}

void Journal::set_busy_timeout(std::chrono::milliseconds timeout) {
    const auto ms = std::min<std::chrono::milliseconds::rep>(
        std::max<std::chrono::milliseconds::rep>(timeout.count(), 0),
        std::numeric_limits<int>::max());
    sqlite3_busy_timeout(db_, static_cast<int>(ms));
}

Status Journal::set_size_limit(std::uint64_t max_bytes) {
    if (default_max_pages_ == 0) {
        if (Status s = query_int("PRAGMA max_page_count", default_max_pages_); !s.ok()) return s;
    }
    std::int64_t page_size = 0;
    if (Status s = query_int("PRAGMA page_size", page_size); !s.ok()) return s;
    const auto pages =
        max_bytes == 0
            ? default_max_pages_
            : static_cast<std::int64_t>(std::clamp<std::uint64_t>(
                  max_bytes / static_cast<std::uint64_t>(std::max<std::int64_t>(page_size, 512)), 1,
                  static_cast<std::uint64_t>(default_max_pages_)));
    std::int64_t applied = 0;
    return query_int(("PRAGMA max_page_count=" + std::to_string(pages)).c_str(), applied);
}

}  // namespace peermq::detail
