#include "journal.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include <msgpack.hpp>

namespace peermq::detail {
namespace {

namespace fs = std::filesystem;

// Payload last: SQLite keeps a row's overflow at its end, so the small columns stay readable
// without walking a large payload's overflow pages. Keep in step with docs/spec/journal.md.
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
    payload     BLOB    NOT NULL
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
    payload          BLOB    NOT NULL
);
CREATE INDEX dead_letters_queue_time ON dead_letters (queue, last_failure_ms);
CREATE INDEX dead_letters_reason ON dead_letters (reason);
)sql";

constexpr const char* kOutboxColumns =
    "id, seq, queue, attempts, created_ms, deadline_ms, guarantee, headers, payload";
constexpr const char* kDeadLetterColumns =
    "id, queue, reason, attempts, last_error, created_ms, first_failure_ms, last_failure_ms, "
    "headers, payload";

// The WAL is truncated back to this after a checkpoint, so a burst does not leave a huge file.
constexpr std::int64_t kWalSizeLimit = 64ll << 20;

enum FilterBits : unsigned {
    kByQueue = 1,
    kByReason = 2,
    kSince = 4,
    kUntil = 8,
    kById = 16,
    kFilterShapes = 32,
};

ErrorCode code_for(int rc) {
    switch (rc & 0xff) {
        case SQLITE_FULL: return ErrorCode::disk_full;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return ErrorCode::corrupt_journal;
        default: return ErrorCode::io_error;
    }
}

// Resets a statement when leaving scope, which also ends a read statement's snapshot.
class StatementUse {
public:
    explicit StatementUse(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;
    ~StatementUse() { sqlite3_reset(stmt_); }

private:
    sqlite3_stmt* stmt_;
};

// Collects the first failing bind code of a row.
class Binder {
public:
    explicit Binder(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}

    void blob(int index, const void* data, std::size_t size) {
        // A null pointer would bind SQL NULL; an empty payload is an empty blob.
        note(size == 0 ? sqlite3_bind_zeroblob(stmt_, index, 0)
                       : sqlite3_bind_blob64(stmt_, index, data, size, SQLITE_STATIC));
    }
    void text(int index, std::string_view value) {
        note(sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                                 SQLITE_STATIC, SQLITE_UTF8));
    }
    void integer(int index, std::int64_t value) { note(sqlite3_bind_int64(stmt_, index, value)); }
    void id(int index, const MessageId& id) { blob(index, id.data(), MessageId::kSize); }

    int rc() const noexcept { return rc_; }

private:
    void note(int rc) {
        if (rc_ == SQLITE_OK) rc_ = rc;
    }
    sqlite3_stmt* stmt_;
    int rc_ = SQLITE_OK;
};

std::string column_text(sqlite3_stmt* stmt, int index) {
    const auto* text = sqlite3_column_text(stmt, index);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt, index)));
}

Payload column_payload(sqlite3_stmt* stmt, int index) {
    const void* data = sqlite3_column_blob(stmt, index);
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, index));
    if (data == nullptr || size == 0) return {};
    return Payload::copy_of(data, size);
}

std::optional<MessageId> column_id(sqlite3_stmt* stmt, int index) {
    const void* data = sqlite3_column_blob(stmt, index);
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, index));
    if (data == nullptr) return std::nullopt;
    return Uuid::from_bytes(data, size);
}

// Headers are a MessagePack map of str -> str (bin accepted on read), as on the wire.
void encode_headers(const Headers& headers, msgpack::sbuffer& out) {
    out.clear();
    msgpack::packer<msgpack::sbuffer> packer(out);
    packer.pack_map(static_cast<std::uint32_t>(headers.size()));
    for (const auto& [key, value] : headers) {
        packer.pack_str(static_cast<std::uint32_t>(key.size()));
        packer.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
        packer.pack_str(static_cast<std::uint32_t>(value.size()));
        packer.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
    }
}

bool string_of(const msgpack::object& object, std::string& out) {
    if (object.type == msgpack::type::STR) {
        out.assign(object.via.str.ptr, object.via.str.size);
        return true;
    }
    if (object.type == msgpack::type::BIN) {
        out.assign(object.via.bin.ptr, object.via.bin.size);
        return true;
    }
    return false;
}

std::optional<Headers> decode_headers(const void* data, std::size_t size) {
    if (data == nullptr || size == 0) return Headers{};
    try {
        // Every element takes at least one byte, so these limits reject a forged count before
        // msgpack-c allocates for it.
        const msgpack::unpack_limit limit(0, size / 2, size, size, 0, 2);
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr, limit);
        const msgpack::object& map = handle.get();
        if (offset != size || map.type != msgpack::type::MAP) return std::nullopt;
        Headers headers;
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
            std::string key;
            std::string value;
            if (!string_of(map.via.map.ptr[i].key, key) ||
                !string_of(map.via.map.ptr[i].val, value)) {
                return std::nullopt;
            }
            headers.insert_or_assign(std::move(key), std::move(value));
        }
        return headers;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// Makes a new file's directory entry durable; SQLite syncs the directory only for its journals.
void sync_directory(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

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

std::string filter_where(unsigned shape) {
    std::string where = "1";
    if (shape & kByQueue) where += " AND queue = ?1";
    if (shape & kByReason) where += " AND reason = ?2";
    if (shape & kSince) where += " AND last_failure_ms >= ?3";
    if (shape & kUntil) where += " AND last_failure_ms < ?4";
    if (shape & kById) where += " AND id = ?6";
    return where;
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

// Every statement the journal runs, prepared once; the filtered ones on first use of a shape.
struct Journal::Statements {
    SqlStatement begin;
    SqlStatement commit;
    SqlStatement rollback;
    SqlStatement outbox_put;
    SqlStatement outbox_remove;
    SqlStatement outbox_load;
    SqlStatement outbox_ids;
    SqlStatement outbox_count;
    SqlStatement outbox_max_seq;
    SqlStatement dead_letter_put;
    SqlStatement dead_letter_get;
    SqlStatement dead_letter_remove;
    std::array<SqlStatement, kFilterShapes> dead_letter_list;
    std::array<SqlStatement, kFilterShapes> dead_letter_purge;
    msgpack::sbuffer headers;  // reused encoding buffer, bound SQLITE_STATIC for one step
};

Journal::Journal(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db), stmts_(std::make_unique<Statements>()) {}

Journal::~Journal() {
    stmts_.reset();  // finalize before closing, or sqlite3_close would refuse
    sqlite3_close_v2(db_);
}

Status Journal::error(int rc, std::string_view what) const {
    std::string message = "journal " + path_ + ": " + std::string(what) + ": ";
    const bool db_has_it = db_ != nullptr && (sqlite3_extended_errcode(db_) & 0xff) == (rc & 0xff);
    message += db_has_it ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    return Status(code_for(rc), std::move(message));
}

Result<std::unique_ptr<Journal>> Journal::open(const std::string& data_dir, Durability durability,
                                               JournalOpenMode mode) {
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
    journal->set_busy_timeout(kDefaultBusyTimeout);
    if (Status status = journal->initialize(durability, !file_existed); !status.ok()) {
        return status;
    }
    return journal;
}

Status Journal::initialize(Durability durability, bool created_file) {
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
    }

    if (Status s = prepare_all(); !s.ok()) {
        return Status(
            ErrorCode::corrupt_journal,
            "journal " + path_ + " does not have the peermq journal schema: " + s.message());
    }
    return check_outbox();
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
                                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
        {&stmts_->outbox_remove, "DELETE FROM outbox WHERE id = ?1"},
        {&stmts_->outbox_load, "SELECT " + outbox_columns + " FROM outbox ORDER BY seq, id"},
        {&stmts_->outbox_ids, "SELECT id, seq FROM outbox"},
        {&stmts_->outbox_count, "SELECT count(*) FROM outbox"},
        {&stmts_->outbox_max_seq, "SELECT coalesce(max(seq), 0) FROM outbox"},
        // A second failure of the same message keeps its first row and moves its failure data.
        {&stmts_->dead_letter_put,
         "INSERT INTO dead_letters (" + dead_letter_columns +
             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO UPDATE SET "
             "reason = excluded.reason, attempts = excluded.attempts, "
             "last_error = excluded.last_error, last_failure_ms = excluded.last_failure_ms"},
        {&stmts_->dead_letter_get,
         "SELECT " + dead_letter_columns + " FROM dead_letters WHERE id = ?1"},
        {&stmts_->dead_letter_remove, "DELETE FROM dead_letters WHERE id = ?1"},
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

Status Journal::begin() { return run(stmts_->begin.get(), "beginning a transaction"); }

Status Journal::finish(Status status) {
    if (status.ok()) status = run(stmts_->commit.get(), "committing");
    // After some errors SQLite has already rolled back; after others (BUSY) it has not.
    if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
        (void)run(stmts_->rollback.get(), "rolling back");
    }
    return status;
}

Status Journal::bind_outbox(sqlite3_stmt* stmt, const OutboxRecord& record) {
    encode_headers(record.headers, stmts_->headers);
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

// --- Reads -----------------------------------------------------------------------------------

Result<std::vector<OutboxRecord>> Journal::outbox_load() {
    sqlite3_stmt* stmt = stmts_->outbox_load.get();
    StatementUse use(stmt);
    std::vector<OutboxRecord> records;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        OutboxRecord record;
        auto id = column_id(stmt, 0);
        auto headers = decode_headers(sqlite3_column_blob(stmt, 7),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt, 7)));
        if (!id || !headers) {
            return Status(ErrorCode::corrupt_journal,
                          "journal " + path_ + ": outbox row " +
                              (id ? id->to_string() : std::string("with a bad id")) +
                              " has unreadable " + (id ? "headers" : "id"));
        }
        record.id = *id;
        record.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
        record.queue = column_text(stmt, 2);
        record.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 3));
        record.created_ms = sqlite3_column_int64(stmt, 4);
        record.deadline_ms = sqlite3_column_int64(stmt, 5);
        record.guarantee = static_cast<std::uint8_t>(sqlite3_column_int64(stmt, 6));
        record.headers = std::move(*headers);
        record.payload = column_payload(stmt, 8);
        records.push_back(std::move(record));
    }
    if (rc != SQLITE_DONE) return error(rc, "reading the outbox");
    return records;
}

Result<std::size_t> Journal::outbox_count() {
    sqlite3_stmt* stmt = stmts_->outbox_count.get();
    StatementUse use(stmt);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) return error(rc, "counting the outbox");
    return static_cast<std::size_t>(sqlite3_column_int64(stmt, 0));
}

Result<DeadLetter> Journal::read_dead_letter(sqlite3_stmt* stmt) {
    DeadLetter letter;
    auto id = column_id(stmt, 0);
    auto headers = decode_headers(sqlite3_column_blob(stmt, 8),
                                  static_cast<std::size_t>(sqlite3_column_bytes(stmt, 8)));
    if (!id || !headers) {
        return Status(ErrorCode::corrupt_journal,
                      "journal " + path_ + ": dead letter " +
                          (id ? id->to_string() : std::string("with a bad id")) +
                          " has unreadable " + (id ? "headers" : "id"));
    }
    letter.id = *id;
    letter.queue = column_text(stmt, 1);
    letter.reason = column_text(stmt, 2);
    letter.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 3));
    letter.last_error = column_text(stmt, 4);
    letter.created_ms = sqlite3_column_int64(stmt, 5);
    letter.first_failure_ms = sqlite3_column_int64(stmt, 6);
    letter.last_failure_ms = sqlite3_column_int64(stmt, 7);
    letter.headers = std::move(*headers);
    letter.payload = column_payload(stmt, 9);
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

Result<DeadLetter> Journal::select_dead_letter(const MessageId& id) {
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
    return read_dead_letter(stmt);
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

Result<DeadLetter> Journal::dead_letter_take(const MessageId& id) {
    if (Status s = commit(); !s.ok()) return s;
    if (Status s = begin(); !s.ok()) return s;
    auto letter = select_dead_letter(id);
    Status status = letter.status();
    if (status.ok()) {
        sqlite3_stmt* stmt = stmts_->dead_letter_remove.get();
        Binder bind(stmt);
        bind.id(1, id);
        status = bind.rc() == SQLITE_OK ? run(stmt, "deleting a dead letter")
                                        : error(bind.rc(), "binding a dead-letter id");
    }
    if (Status s = finish(std::move(status)); !s.ok()) return s;
    return letter;
}

Result<MessageId> Journal::dead_letter_replay(const MessageId& id, std::string_view queue,
                                              std::int64_t now_ms) {
    if (Status s = commit(); !s.ok()) return s;
    if (Status s = begin(); !s.ok()) return s;
    auto taken = [&]() -> Result<OutboxRecord> {
        auto letter = select_dead_letter(id);
        if (!letter.ok()) return letter.status();
        std::int64_t max_seq = 0;
        {
            sqlite3_stmt* stmt = stmts_->outbox_max_seq.get();
            StatementUse use(stmt);
            const int rc = sqlite3_step(stmt);
            if (rc != SQLITE_ROW) return error(rc, "reading the outbox sequence");
            max_seq = sqlite3_column_int64(stmt, 0);
        }
        sqlite3_stmt* remove = stmts_->dead_letter_remove.get();
        Binder bind_remove(remove);
        bind_remove.id(1, id);
        if (bind_remove.rc() != SQLITE_OK) return error(bind_remove.rc(), "binding an id");
        if (Status s = run(remove, "deleting a dead letter"); !s.ok()) return s;

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

}  // namespace peermq::detail
