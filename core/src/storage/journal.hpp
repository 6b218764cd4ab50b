// The node's on-disk journal: the outbox of unacked messages and the dead-letter queue, in one
// SQLite database (<data_dir>/peermq.db). The file format is specified in docs/spec/journal.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "peermq/dead_letters.hpp"
#include "peermq/message.hpp"
#include "peermq/options.hpp"
#include "peermq/status.hpp"
#include "peermq/uuid.hpp"
#include "util/uuid_table.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace peermq::detail {

// One unacked at_least_once / effectively_once message.
struct OutboxRecord {
    MessageId id;
    std::string queue;
    Headers headers;
    Payload payload;
    std::uint32_t attempts = 0;
    std::int64_t created_ms = 0;
    std::int64_t deadline_ms = 0;
    std::uint8_t guarantee = 1;  // static_cast of peermq::Guarantee
    std::uint64_t seq = 0;       // send order within this node; load order
};

// What a journal holds by its own count: every write transaction adds one commit and the rows it
// inserted, replaced, updated or deleted. Both only grow, whatever the transactions removed.
struct JournalCounts {
    std::uint64_t commits = 0;
    std::uint64_t rows = 0;
};

// The mark file (<data_dir>/peermq.db-mark): the counts of the latest commit, written after it,
// outside the database, so that a database that lost commits (a damaged WAL's dropped tail, an
// emptied or deleted file) holds fewer than its mark records.
struct JournalMark {
    enum class State { absent, ok, damaged };
    State state = State::absent;
    JournalCounts counts;
    std::string path;
};

// What Journal::accept_loss found and left.
struct JournalLossAccepted {
    JournalMark before;  // the mark as it was
    JournalCounts held;  // what the journal holds, and what the mark now records
    bool lost = false;   // the mark recorded more commits than the journal held, or was damaged
};

// Stored rows whose checksum does not match (docs/spec/journal.md §4.4), and rows of format 1
// that carry none.
struct JournalRecordCheck {
    std::size_t outbox = 0;
    std::size_t outbox_corrupt = 0;
    std::size_t dead_letters = 0;
    std::size_t dead_letters_corrupt = 0;  // failing their checksum now, or quarantined before
    std::size_t unverified = 0;
};

// How many dead letters a journal holds, by queue, then by reason (NodeStats::dead_letters).
using DeadLetterCounts = std::map<std::string, std::map<std::string, std::uint64_t>>;

// An outbox row that outbox_load() moved to the dead letters (reason `corrupt`).
struct QuarantinedRecord {
    MessageId id;
    std::string queue;
    std::string why;
};

// How Journal::open treats a missing database file.
enum class JournalOpenMode {
    create,    // the node: create the data directory and the file when absent
    existing,  // tools: a missing directory or file is not_found, nothing is created
};

// A finalizing owner of one prepared statement.
class SqlStatement {
public:
    SqlStatement() = default;
    explicit SqlStatement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    SqlStatement(SqlStatement&& other) noexcept;
    SqlStatement& operator=(SqlStatement&& other) noexcept;
    SqlStatement(const SqlStatement&) = delete;
    SqlStatement& operator=(const SqlStatement&) = delete;
    ~SqlStatement();

    sqlite3_stmt* get() const noexcept { return stmt_; }
    explicit operator bool() const noexcept { return stmt_ != nullptr; }

private:
    sqlite3_stmt* stmt_ = nullptr;
};

// Journal: the outbox and dead-letter tables of one node, with group commit.
//
// Not thread-safe: used only by the node's actor thread, or by one tool thread through
// DeadLetterJournal. Several Journal objects (in one process or several) may open the same file;
// SQLite's WAL locking keeps them consistent, and a writer waits up to the busy timeout for
// another. Owns its SQLite connection and prepared statements; closing (destruction) drops
// whatever was buffered and not committed.
class Journal {
public:
    static constexpr std::int32_t kFormatVersion = 2;
    // "PMQJ": PRAGMA application_id of every peermq journal.
    static constexpr std::int32_t kApplicationId = 0x504D514A;
    static constexpr const char* kFileName = "peermq.db";
    static constexpr const char* kMarkFileName = "peermq.db-mark";
    static constexpr std::chrono::milliseconds kDefaultBusyTimeout{1000};
    // The mark is rewritten after every commit but synced at most this often: a mark that lags
    // only weakens the check, it never raises a false alarm.
    static constexpr std::chrono::milliseconds kMarkSyncInterval{1000};

    // Opens or creates <data_dir>/peermq.db (see JournalOpenMode), in WAL mode with
    // synchronous=FULL. `memory` durability is treated as group_commit (the DLQ still needs the
    // file). A corrupt, truncated or foreign file is corrupt_journal naming the path; a file of
    // a newer format is corrupt_journal saying so; a format 1 file is upgraded.
    //
    // A journal that holds fewer commits than its mark file records (or whose mark is damaged)
    // has lost committed data: corrupt_journal naming the file and what is missing. So is a
    // missing or empty database whose mark records commits. In `existing` mode (tools) a journal
    // with such a loss still opens, for salvage: reads work, writes fail with loss().
    // In `create` mode a database that cannot be written is io_error naming it.
    static Result<std::unique_ptr<Journal>> open(const std::string& data_dir, Durability durability,
                                                 JournalOpenMode mode = JournalOpenMode::create);

    // The explicit way on after a loss (node stopped; `in_use` while a node holds data_dir):
    // settles what is left (a checkpoint drops the damaged WAL tail; a missing or empty
    // database is created anew) and rewrites the mark to what the journal now holds.
    static Result<JournalLossAccepted> accept_loss(const std::string& data_dir);
    static JournalMark read_mark(const std::string& data_dir);

    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;
    ~Journal();

    const std::string& path() const noexcept { return path_; }
    // The database's own counts, as of open or its latest commit through this object.
    const JournalCounts& held() const noexcept { return held_; }
    // Ok, or (existing mode only) why the journal refuses writes: the loss found at open.
    const Status& loss() const noexcept { return loss_; }

    // How long a write waits for another connection's write lock before failing (io_error).
    void set_busy_timeout(std::chrono::milliseconds timeout);
    // Caps the database size (rounded down to whole pages); a commit that would grow past it
    // fails with disk_full. 0 restores SQLite's default limit.
    Status set_size_limit(std::uint64_t max_bytes);

    // --- Outbox. These only buffer; nothing touches the disk until commit().
    // A put of an id already in the outbox replaces it (e.g. to persist a new attempt count).
    void outbox_put(OutboxRecord record);
    // Acked, or moved to the DLQ. A put of a new message (a seq above every earlier one) and a
    // remove of it between two commits cancel out: neither reaches the disk. Any other remove
    // is a DELETE in the next commit (of nothing, for an id that was never put).
    void outbox_remove(const MessageId& id);
    // Committed rows, ordered by seq (then id). Buffered operations are not included. A row
    // that fails its checksum (or whose headers do not decode) is not returned: it is moved to
    // the dead letters with reason `corrupt` in one transaction, and listed by quarantined().
    Result<std::vector<OutboxRecord>> outbox_load();
    // Every row outbox_load() moved to the dead letters through this object.
    const std::vector<QuarantinedRecord>& quarantined() const noexcept { return quarantined_; }
    Result<std::size_t> outbox_count();

    // --- Dead letters.
    // Buffers the letter (written by the next commit) and removes its id from the outbox in the
    // same transaction. The same id put again updates reason, attempts, last_error and
    // last_failure_ms and keeps the rest of the first row.
    void dead_letter_put(DeadLetter letter);
    // These commit what is buffered first (and return its error if that fails). Lists are
    // ordered by last_failure_ms, then id. A letter that fails its checksum (or whose headers
    // do not decode) is returned flagged: reason `corrupt`, last_error saying so and what its
    // stored reason and error were.
    Result<std::vector<DeadLetter>> dead_letter_list(const DeadLetterFilter& filter);
    Result<DeadLetter> dead_letter_get(const MessageId& id);  // not_found if absent
    Result<std::size_t> dead_letter_purge(const DeadLetterFilter& filter);
    // The dead letters by queue and by their stored reason, no zero entries. A letter that
    // fails its checksum is counted under the reason it was stored with until a take marks it
    // `corrupt` (a filter by reason finds it the same way).
    Result<DeadLetterCounts> dead_letter_counts();
    // Removes and returns a dead letter, for replay by a running node. A corrupt one (flagged
    // as above, or stored with reason `corrupt`) is never handed out: corrupt_journal naming
    // it, and it stays, with reason `corrupt`.
    Result<DeadLetter> dead_letter_take(const MessageId& id);
    // In one transaction: deletes the dead letter and inserts it into the outbox under a new id
    // (attempts 0, seq = max(seq) + 1, created_ms = now_ms, no deadline, at_least_once), for
    // `queue`, or its own queue when empty. Returns the new id. Used on a stopped node's journal.
    // A corrupt letter is refused as by dead_letter_take.
    Result<MessageId> dead_letter_replay(const MessageId& id, std::string_view queue,
                                         std::int64_t now_ms);

    // Group commit: one transaction holding every buffered operation, synced to disk. Ok when
    // nothing is pending. On failure (disk_full; corrupt_journal; io_error otherwise, e.g. the
    // write lock stayed busy) the transaction is rolled back and the buffered operations are
    // kept, so a later commit retries them.
    Status commit();
    std::size_t pending() const noexcept { return live_ops_; }
    // The messages among them: outbox puts and dead letters (not removals). Walks the buffer.
    std::size_t pending_messages() const noexcept;

    // --- The same group commit in three steps, so that the transaction can run on another
    // thread while the owner keeps buffering (the node's journal writer):
    //   take_batch()   owner thread: takes every buffered operation (empty batch: none);
    //   write_batch()  any one thread: the transaction; touches SQLite and the batch only;
    //   finish_batch() owner thread: on failure the operations go back in front of those
    //                  buffered since, to be retried by the next commit.
    // Until finish_batch, no other member may be called except the buffering ones
    // (outbox_put, outbox_remove, dead_letter_put), pending() and take_batch's result.
    class Batch;
    std::unique_ptr<Batch> take_batch();
    Status write_batch(Batch& batch);
    void finish_batch(std::unique_ptr<Batch> batch, const Status& status);
    std::uint64_t commits() const noexcept { return commits_; }

    // PRAGMA quick_check over the whole file: ok, or corrupt_journal with SQLite's first finding.
    Status verify();
    // Reads every row of both tables and checks its checksum (quick_check does not look at the
    // bytes of a value). Changes nothing.
    Result<JournalRecordCheck> check_records();

private:
    struct OutboxRemoval {
        MessageId id;
    };
    // std::monostate marks an operation cancelled by a later one.
    using PendingOp = std::variant<std::monostate, OutboxRecord, OutboxRemoval, DeadLetter>;

    struct Statements;

public:
    class Batch {
    public:
        bool empty() const noexcept { return ops_.empty(); }

    private:
        friend class Journal;
        std::vector<PendingOp> ops_;
    };

private:
    Journal(std::string path, sqlite3* db);

    static Result<std::unique_ptr<Journal>> open_checked(const std::string& data_dir,
                                                         Durability durability,
                                                         JournalOpenMode mode, bool accepting);
    Status initialize(Durability durability, bool created_file, JournalOpenMode mode,
                      bool accepting);
    Status upgrade_from_format_1();
    Status read_held();
    // Compares the mark read before opening with what the database holds.
    Status check_mark(JournalOpenMode mode, bool accepting);
    // Makes what the database holds durable, then writes it to the mark (atomically).
    Status raise_mark();
    void note_committed(const JournalCounts& counts);
    Status quarantine(const std::vector<QuarantinedRecord>& records);
    // Inside a transaction: reads the dead letter and deletes it. A corrupt one is kept, stored
    // with reason `corrupt`, and `refused` says why it is not handed out.
    Result<DeadLetter> take_dead_letter(const MessageId& id, Status& refused);
    Status prepare_all();
    // At open: every outbox id is 16 bytes (else corrupt_journal); notes the highest seq.
    Status check_outbox();
    // Records a seq put (or found on disk); true when it is above every earlier one.
    bool note_seq(std::uint64_t seq);
    Status apply(const PendingOp& op);
    Status bind_outbox(sqlite3_stmt* stmt, const OutboxRecord& record);
    Status run(sqlite3_stmt* stmt, const char* what);
    Status exec(const char* sql, const char* what);
    Status query_int(const char* sql, std::int64_t& out);
    Status begin();
    Status finish(Status status);
    Result<sqlite3_stmt*> filter_statement(const DeadLetterFilter& filter, bool purge);
    // `corrupt` (when given) tells whether the row failed its check (then flagged, see
    // dead_letter_list) or is stored with reason `corrupt`.
    Result<DeadLetter> read_dead_letter(sqlite3_stmt* stmt, bool* corrupt = nullptr);
    Result<DeadLetter> select_dead_letter(const MessageId& id, bool* corrupt = nullptr);
    Status error(int rc, std::string_view what) const;

    std::string path_;
    sqlite3* db_ = nullptr;  // closed last, after every statement is finalized
    std::unique_ptr<Statements> stmts_;

    // The latest live outbox operation buffered for an id, and whether a row of the id may be
    // on disk already (committed, or in the batch being committed): a put cancelled by a
    // remove leaves a DELETE behind only then.
    struct BufferedOp {
        std::size_t index = 0;  // in ops_
        bool row_on_disk = false;
    };

    std::vector<PendingOp> ops_;
    std::vector<PendingOp> spare_ops_;  // empty; the capacity of a committed batch
    std::size_t live_ops_ = 0;
    UuidTable<BufferedOp> outbox_ops_;
    // The highest seq ever put (or on disk at open): a put above it is a new message.
    std::optional<std::uint64_t> max_seq_;
    std::uint64_t commits_ = 0;
    std::int64_t default_max_pages_ = 0;  // SQLite's max_page_count before set_size_limit

    // Counted in each write transaction; the rows are SQLite's change count since begin().
    std::int64_t changes_at_begin_ = 0;
    JournalCounts held_;
    JournalMark mark_;  // as read at open, before the database
    int mark_fd_ = -1;  // -1: no mark to advance (a tool on a journal without one)
    std::chrono::steady_clock::time_point mark_synced_{};
    Status loss_;
    std::vector<QuarantinedRecord> quarantined_;
};

}  // namespace peermq::detail
