#include "storage/journal.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include <msgpack.hpp>
// Header-only (inlined): nothing to link, so the installed static library needs no new
// dependency.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "platform/data_dir_lock.hpp"
#include "peermq/clock.hpp"

namespace peermq::detail {
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

constexpr const char* kOutboxColumns =
    "id, seq, queue, attempts, created_ms, deadline_ms, guarantee, headers, payload, checksum";
constexpr const char* kDeadLetterColumns =
    "id, queue, reason, attempts, last_error, created_ms, first_failure_ms, last_failure_ms, "
    "headers, payload, checksum";

constexpr const char* kCorruptReason = "corrupt";

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

// Flushes what any process wrote to `path` (nothing when it does not exist).
void sync_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

// The outbox row `stmt` is on, with its id and headers already read.
OutboxRecord outbox_record(sqlite3_stmt* stmt, const MessageId& id, Headers headers) {
    OutboxRecord record;
    record.id = id;
    record.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
    record.queue = column_text(stmt, 2);
    record.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 3));
    record.created_ms = sqlite3_column_int64(stmt, 4);
    record.deadline_ms = sqlite3_column_int64(stmt, 5);
    record.guarantee = static_cast<std::uint8_t>(sqlite3_column_int64(stmt, 6));
    record.headers = std::move(headers);
    record.payload = column_payload(stmt, 8);
    return record;
}

// --- Checksums (spec §4.4) ---------------------------------------------------------------------

// XXH3-64 over the id, the queue, the encoded headers and the payload, each hashed with the
// previous result as its seed, so that bytes cannot move between fields unnoticed. Stored as
// SQLite's signed 64-bit integer. XXH3 rather than CRC32C, which no Debian library ships, or
// zlib's CRC32, which is slower and has half the bits.
std::int64_t record_checksum(const void* id, std::size_t id_size, std::string_view queue,
                             const void* headers, std::size_t headers_size, const void* payload,
                             std::size_t payload_size) {
    XXH64_hash_t hash = XXH3_64bits(id, id_size);
    hash = XXH3_64bits_withSeed(queue.data(), queue.size(), hash);
    hash = XXH3_64bits_withSeed(headers, headers_size, hash);
    hash = XXH3_64bits_withSeed(payload, payload_size, hash);
    return static_cast<std::int64_t>(hash);
}

// Where a row's checksummed columns are in a result row.
struct ChecksumColumns {
    int id, queue, headers, payload, checksum;
};
constexpr ChecksumColumns kOutboxChecksummed{0, 2, 7, 8, 9};
constexpr ChecksumColumns kDeadLetterChecksummed{0, 1, 8, 9, 10};

// Whether the row's stored checksum matches its bytes; nullopt for a row of format 1, which
// has none.
std::optional<bool> checksum_matches(sqlite3_stmt* stmt, const ChecksumColumns& at) {
    if (sqlite3_column_type(stmt, at.checksum) == SQLITE_NULL) return std::nullopt;
    const std::int64_t stored = sqlite3_column_int64(stmt, at.checksum);
    // Each pointer is taken before its size, as SQLite asks.
    const void* id = sqlite3_column_blob(stmt, at.id);
    const auto id_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.id));
    const auto* queue = reinterpret_cast<const char*>(sqlite3_column_text(stmt, at.queue));
    const auto queue_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.queue));
    const void* headers = sqlite3_column_blob(stmt, at.headers);
    const auto headers_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.headers));
    const void* payload = sqlite3_column_blob(stmt, at.payload);
    const auto payload_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.payload));
    return stored == record_checksum(id, id_size,
                                     std::string_view(queue == nullptr ? "" : queue, queue_size),
                                     headers, headers_size, payload, payload_size);
}

// --- The mark file (spec §2.1) -----------------------------------------------------------------

// Fixed size, so that an update is one pwrite over the same bytes; text, so that a person can
// read it; checked, so that a torn or damaged mark is told apart from a real one.
constexpr std::size_t kMarkBodySize = 77;
constexpr std::size_t kMarkSize = kMarkBodySize + 23;
using MarkText = std::array<char, kMarkSize + 1>;  // with snprintf's terminating NUL

MarkText encode_mark(const JournalCounts& counts) {
    MarkText text{};
    std::snprintf(text.data(), kMarkBodySize + 1,
                  "peermq journal mark 1\ncommits %020llu\nrows %020llu\n",
                  static_cast<unsigned long long>(counts.commits),
                  static_cast<unsigned long long>(counts.rows));
    std::snprintf(text.data() + kMarkBodySize, kMarkSize - kMarkBodySize + 1, "check %016llx\n",
                  static_cast<unsigned long long>(XXH3_64bits(text.data(), kMarkBodySize)));
    return text;
}

std::optional<JournalCounts> decode_mark(std::string_view text) {
    if (text.size() != kMarkSize) return std::nullopt;
    unsigned long long commits = 0;
    unsigned long long rows = 0;
    unsigned long long check = 0;
    char tail = 0;
    const std::string copy(text);
    if (std::sscanf(copy.c_str(),
                    "peermq journal mark 1\ncommits %20llu\nrows %20llu\ncheck %16llx%c", &commits,
                    &rows, &check, &tail) != 4 ||
        tail != '\n') {
        return std::nullopt;
    }
    if (check != XXH3_64bits(copy.data(), kMarkBodySize)) return std::nullopt;
    const JournalCounts counts{commits, rows};
    // Only the exact encoding is a mark (sscanf would also take other spacing).
    if (std::string_view(encode_mark(counts).data(), kMarkSize) != text) return std::nullopt;
    return counts;
}

std::string mark_path_of(const fs::path& data_dir) {
    return (data_dir / Journal::kMarkFileName).string();
}

// Writes the mark to a new file and renames it into place: the mark is then either the old one
// or the new one, never a torn one, also after a power cut.
Status write_mark_atomically(const std::string& path, const JournalCounts& counts) {
    const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Status(ErrorCode::io_error,
                      "journal: cannot create " + temporary + ": " + std::strerror(errno));
    }
    const MarkText text = encode_mark(counts);
    const bool written =
        ::write(fd, text.data(), kMarkSize) == static_cast<ssize_t>(kMarkSize) && ::fsync(fd) == 0;
    const int error = errno;
    ::close(fd);
    if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int cause = written ? errno : error;
        ::unlink(temporary.c_str());
        return Status(ErrorCode::io_error,
                      "journal: cannot write " + path + ": " + std::strerror(cause));
    }
    sync_directory(fs::path(path).parent_path());
    return {};
}

std::string describe(const JournalCounts& counts) {
    return std::to_string(counts.commits) + " commit" + (counts.commits == 1 ? "" : "s") + " (" +
           std::to_string(counts.rows) + " row write" + (counts.rows == 1 ? "" : "s") + ")";
}

std::string salvage_advice(const std::string& path) {
    const std::string dir = fs::path(path).parent_path().string();
    return "Nothing was changed. Salvage what is left first (copy " + dir +
           " aside; `peermq dlq list --data-dir " + dir + "`, `sqlite3 -readonly " + path +
           "`), then accept the loss and go on with `peermq doctor --data-dir " + dir +
           " --accept-journal-loss` (docs/spec/journal.md §8)";
}

// corrupt_journal for a journal that holds less than its mark records.
Status lost_commits(const std::string& path, const JournalMark& mark, const JournalCounts& held,
                    const std::string& why) {
    const JournalCounts& recorded = mark.counts;
    const std::uint64_t commits = recorded.commits - std::min(recorded.commits, held.commits);
    const std::uint64_t rows = recorded.rows - std::min(recorded.rows, held.rows);
    return Status(ErrorCode::corrupt_journal,
                  "journal " + path + " has lost committed data: " + why + ". Its mark " +
                      mark.path + " records " + describe(recorded) + ", the journal holds " +
                      describe(held) + ": " + std::to_string(commits) + " commit" +
                      (commits == 1 ? " is" : "s are") + " missing, with " + std::to_string(rows) +
                      " row writes (messages journaled, acks, dead letters). " +
                      salvage_advice(path));
}

Status damaged_mark(const std::string& path, const JournalMark& mark) {
    const std::string dir = fs::path(path).parent_path().string();
    return Status(ErrorCode::corrupt_journal,
                  "journal " + path + ": its mark " + mark.path +
                      " is damaged, so whether committed data was lost cannot be told. If the "
                      "journal is complete, `peermq doctor --data-dir " +
                      dir + " --accept-journal-loss` writes a new mark (docs/spec/journal.md §8)");
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
    SqlStatement dead_letter_flag;
    SqlStatement quarantine;
    SqlStatement count_commit;
    SqlStatement held;
    std::array<SqlStatement, kFilterShapes> dead_letter_list;
    std::array<SqlStatement, kFilterShapes> dead_letter_purge;
    msgpack::sbuffer headers;  // reused encoding buffer, bound SQLITE_STATIC for one step
};

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

JournalMark Journal::read_mark(const std::string& data_dir) {
    JournalMark mark;
    mark.path = mark_path_of(data_dir);
    const int fd = ::open(mark.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mark.state = errno == ENOENT ? JournalMark::State::absent : JournalMark::State::damaged;
        return mark;
    }
    mark.state = JournalMark::State::damaged;
    // A read that overlaps a writer's pwrite may see half of each: read again.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::array<char, kMarkSize + 1> buffer{};
        const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), 0);
        if (n < 0) break;
        if (auto counts =
                decode_mark(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
            mark.state = JournalMark::State::ok;
            mark.counts = *counts;
            break;
        }
    }
    ::close(fd);
    return mark;
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

Status Journal::check_mark(JournalOpenMode mode, bool accepting) {
    Status found;
    if (mark_.state == JournalMark::State::damaged) {
        found = damaged_mark(path_, mark_);
    } else if (mark_.state == JournalMark::State::ok && mark_.counts.commits > held_.commits) {
        found = lost_commits(path_, mark_, held_,
                             "it holds fewer commits than it made (SQLite drops the part of a WAL "
                             "after a damaged frame without an error; or an older copy of the "
                             "file was put in its place)");
    }
    if (accepting) return {};  // accept_loss settles the journal and writes the mark itself
    if (!found.ok()) {
        if (mode == JournalOpenMode::create) return found;
        loss_ = std::move(found);  // a tool may still read what is left, to salvage it
        return {};
    }
    if (mode == JournalOpenMode::create &&
        (mark_.state == JournalMark::State::absent || mark_.counts.commits < held_.commits)) {
        if (Status s = raise_mark(); !s.ok()) return s;
    }
    if (mark_.state == JournalMark::State::ok) {
        // A tool that may not write the mark leaves it behind, which is harmless.
        mark_fd_ = ::open(mark_.path.c_str(), O_RDWR | O_CLOEXEC);
        if (mark_fd_ < 0 && mode == JournalOpenMode::create) {
            return Status(ErrorCode::io_error,
                          "journal: cannot open " + mark_.path + ": " + std::strerror(errno));
        }
        mark_synced_ = std::chrono::steady_clock::now();
    }
    return {};
}

Status Journal::raise_mark() {
    // What the database holds may be only in the page cache (written by a process killed before
    // its fsync): on disk first, or a power cut could leave the mark ahead of the database.
    sync_file(path_ + "-wal");
    sync_file(path_);
    if (Status s = write_mark_atomically(mark_.path, held_); !s.ok()) return s;
    mark_.state = JournalMark::State::ok;
    mark_.counts = held_;
    return {};
}

void Journal::note_committed(const JournalCounts& counts) {
    held_ = counts;
    if (mark_fd_ < 0) return;
    // Not synced each time: a mark behind the database only weakens the check, and SQLite
    // has synced the commit it records. A failed write leaves it behind too.
    const MarkText text = encode_mark(counts);
    if (::pwrite(mark_fd_, text.data(), kMarkSize, 0) != static_cast<ssize_t>(kMarkSize)) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - mark_synced_ >= kMarkSyncInterval) {
        (void)::fdatasync(mark_fd_);
        mark_synced_ = now;
    }
}

Result<JournalLossAccepted> Journal::accept_loss(const std::string& data_dir) {
    std::error_code ec;
    if (data_dir.empty() || !fs::is_directory(data_dir, ec)) {
        return Status(ErrorCode::not_found, "journal: no data directory " + data_dir);
    }
    // Never under a running node; held until the mark is written.
    auto lock = DataDirLock::acquire(data_dir);
    if (!lock) return lock.status();
    JournalLossAccepted result;
    result.before = read_mark(data_dir);
    auto opened = open_checked(data_dir, Durability::group_commit, JournalOpenMode::create, true);
    if (!opened) return opened.status();
    Journal& journal = **opened;
    result.lost = result.before.state == JournalMark::State::damaged ||
                  (result.before.state == JournalMark::State::ok &&
                   result.before.counts.commits > journal.held_.commits);
    // What SQLite replayed moves into the database and the WAL is emptied: its damaged tail is
    // gone, and with it the chance that a later recovery reads it differently.
    if (Status s = journal.exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing"); !s.ok()) {
        return s;
    }
    if (Status s = journal.raise_mark(); !s.ok()) return s;
    result.held = journal.held_;
    return result;
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
