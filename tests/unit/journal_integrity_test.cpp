// The journal notices what SQLite does not report (docs/spec/journal.md §8, issue #12 items 3-6):
// a WAL whose tail SQLite dropped, an emptied or deleted database of a data directory that was
// used, flipped payload bytes, and a database it cannot write. Real files throughout; a crash is a
// child process that dies without closing its connection.
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/msgpack.hpp"
#include "platform/data_dir_lock.hpp"
#include "storage/journal.hpp"
#include "support/journal.hpp"

namespace peermq::detail {
namespace {

namespace fs = std::filesystem;
using namespace peermq::testing;

std::string padded(const std::string& text, std::size_t size) {
    std::string out = text;
    while (out.size() < size) out.push_back(static_cast<char>('a' + out.size() % 26));
    return out;
}

class JournalIntegrityTest : public peermq::testing::JournalFixture {
protected:
    // `batches` commits of `per_batch` new outbox rows each, by a child process that then dies
    // without closing its connection: the WAL keeps them, as after kill -9.
    void commit_then_die(int batches, int per_batch) {
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            auto opened = Journal::open(dir_, Durability::group_commit);
            if (!opened.ok()) ::_exit(2);
            std::uint64_t seq = 0;
            for (int b = 0; b < batches; ++b) {
                for (int i = 0; i < per_batch; ++i) {
                    (*opened)->outbox_put(outbox_record(++seq, "orders", padded("message", 200)));
                }
                if (!(*opened)->commit().ok()) ::_exit(3);
            }
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
        ASSERT_TRUE(fs::exists(wal_));
    }

    static void expect_corrupt_naming(const Status& status, const std::string& path,
                                      const std::string& what) {
        EXPECT_EQ(status.code(), ErrorCode::corrupt_journal) << status.to_string();
        EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
        EXPECT_NE(status.message().find(what), std::string::npos) << status.message();
    }
};

// --- Item 3: a damaged WAL ---------------------------------------------------------------------

TEST_F(JournalIntegrityTest, WalDamagedMidwayIsCorruptJournalCountingWhatIsMissing) {
    commit_then_die(20, 50);
    const auto extent = wal_extent(wal_);
    ASSERT_GE(extent.commit_frames, 20u);
    // SQLite replays the WAL up to the frame before the damage and drops the rest silently.
    flip_byte(wal_, extent.frame_offset(extent.frames / 2) + 24 + 100);

    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok()) << "the journal opened without the commits after the damage";
    expect_corrupt_naming(journal.status(), db_, "missing");
}

TEST_F(JournalIntegrityTest, WalDamagedInItsFirstFrameIsCorruptJournalNotAFreshStart) {
    commit_then_die(5, 100);
    flip_byte(wal_, wal_extent(wal_).frame_offset(0) + 24 + 10);

    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok()) << "a journal whose whole WAL was dropped became a new one";
    expect_corrupt_naming(journal.status(), db_, "missing");
    RawDb raw(db_);
    EXPECT_EQ(raw.scalar("SELECT count(*) FROM sqlite_schema"), 0) << "a schema was created";
}

TEST_F(JournalIntegrityTest, AMarkBehindTheJournalIsNoAlarmAndIsBroughtUpToDate) {
    {
        auto journal = open_journal();
        journal->outbox_put(outbox_record(1));
        ASSERT_TRUE(journal->commit().ok());
    }
    const std::string mark = dir_ + "/peermq.db-mark";
    const std::string old_mark = peermq::testing::read_bytes(mark);
    {
        auto journal = open_journal();
        for (std::uint64_t i = 2; i <= 5; ++i) {
            journal->outbox_put(outbox_record(i));
            ASSERT_TRUE(journal->commit().ok());
        }
    }
    // As after a power cut that kept the journal's synced commits but not the mark's last
    // writes (or a crash between a commit and its mark update).
    { std::ofstream(mark, std::ios::binary | std::ios::trunc) << old_mark; }
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->outbox_load()->size(), 5u);
    const auto now = Journal::read_mark(dir_);
    EXPECT_EQ(now.state, JournalMark::State::ok);
    EXPECT_EQ(now.counts.commits, journal->held().commits);
}

TEST_F(JournalIntegrityTest, EveryCommitAdvancesTheMarkAndTheDatabaseCountsTogether) {
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    const auto created = journal->held();
    EXPECT_EQ(created.commits, 1u);  // the schema
    EXPECT_EQ(Journal::read_mark(dir_).counts.commits, 1u);
    for (std::uint64_t i = 1; i <= 3; ++i) journal->outbox_put(outbox_record(i));
    ASSERT_TRUE(journal->commit().ok());
    auto r = outbox_record(9);
    journal->outbox_put(r);
    journal->outbox_remove(outbox_record(1).id);  // a DELETE that finds nothing writes no row
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->held().commits, 3u);
    EXPECT_EQ(journal->held().rows, 4u);
    const auto mark = Journal::read_mark(dir_);
    ASSERT_EQ(mark.state, JournalMark::State::ok);
    EXPECT_EQ(mark.counts.commits, 3u);
    EXPECT_EQ(mark.counts.rows, 4u);
    RawDb raw(db_);
    EXPECT_EQ(raw.scalar("SELECT commits FROM journal_state"), 3);
}

TEST_F(JournalIntegrityTest, AcceptingTheLossKeepsWhatIsLeftAndTheJournalWorksOn) {
    commit_then_die(20, 50);
    const auto extent = wal_extent(wal_);
    flip_byte(wal_, extent.frame_offset(extent.frames / 2) + 24 + 100);
    const auto before = Journal::read_mark(dir_);
    ASSERT_EQ(before.state, JournalMark::State::ok);
    EXPECT_EQ(before.counts.commits, 21u);

    auto accepted = Journal::accept_loss(dir_);
    ASSERT_TRUE(accepted.ok()) << accepted.status().to_string();
    EXPECT_TRUE(accepted->lost);
    EXPECT_EQ(accepted->before.counts.commits, 21u);
    EXPECT_LT(accepted->held.commits, 21u);
    EXPECT_GT(accepted->held.commits, 1u);
    EXPECT_TRUE(!fs::exists(wal_) || fs::file_size(wal_) == 0) << "the damaged WAL is still there";

    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok());
    // Whole commits of 50, in order: what was left is a prefix.
    EXPECT_EQ(loaded->size(), (accepted->held.commits - 1) * 50);
    for (std::size_t i = 0; i < loaded->size(); ++i) EXPECT_EQ((*loaded)[i].seq, i + 1);
    journal->outbox_put(outbox_record(10'000));
    ASSERT_TRUE(journal->commit().ok());
    journal.reset();
    EXPECT_NE(open_journal(), nullptr);
}

TEST_F(JournalIntegrityTest, AcceptingTheLossOfAnEmptiedDatabaseStartsAFreshJournal) {
    {
        auto journal = open_journal();
        journal->outbox_put(outbox_record(1));
        ASSERT_TRUE(journal->commit().ok());
    }
    fs::resize_file(db_, 0);
    ASSERT_FALSE(Journal::open(dir_, Durability::group_commit).ok());
    auto accepted = Journal::accept_loss(dir_);
    ASSERT_TRUE(accepted.ok()) << accepted.status().to_string();
    EXPECT_TRUE(accepted->lost);
    EXPECT_EQ(accepted->held.commits, 1u);
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->outbox_count().value(), 0u);
}

TEST_F(JournalIntegrityTest, AcceptingTheLossIsRefusedWhileANodeHoldsTheDataDir) {
    {
        auto journal = open_journal();
        ASSERT_NE(journal, nullptr);
    }
    auto lock = DataDirLock::acquire(dir_);
    ASSERT_TRUE(lock.ok());
    EXPECT_EQ(Journal::accept_loss(dir_).status().code(), ErrorCode::in_use);
}

TEST_F(JournalIntegrityTest, AToolReadsWhatIsLeftOfAShortJournalButWritesNothing) {
    {
        auto journal = open_journal();
        DeadLetter letter;
        letter.id = Uuid::generate();
        letter.queue = "orders";
        letter.reason = "expired";
        journal->dead_letter_put(letter);
        ASSERT_TRUE(journal->commit().ok());
    }
    commit_then_die(10, 50);
    const auto extent = wal_extent(wal_);
    flip_byte(wal_, extent.frame_offset(extent.frames - 2) + 24 + 100);

    auto tool = Journal::open(dir_, Durability::group_commit, JournalOpenMode::existing);
    ASSERT_TRUE(tool.ok()) << tool.status().to_string();
    EXPECT_EQ((*tool)->loss().code(), ErrorCode::corrupt_journal);
    EXPECT_NE((*tool)->loss().message().find("missing"), std::string::npos);
    auto letters = (*tool)->dead_letter_list({});
    ASSERT_TRUE(letters.ok()) << letters.status().to_string();
    EXPECT_EQ(letters->size(), 1u);
    EXPECT_GT((*tool)->outbox_load()->size(), 0u);
    EXPECT_EQ((*tool)->dead_letter_purge({}).status().code(), ErrorCode::corrupt_journal);
    EXPECT_EQ((*tool)->dead_letter_list({})->size(), 1u);
}

TEST_F(JournalIntegrityTest, ADamagedMarkIsAnErrorUntilAccepted) {
    {
        auto journal = open_journal();
        journal->outbox_put(outbox_record(1));
        ASSERT_TRUE(journal->commit().ok());
    }
    flip_byte(dir_ + "/peermq.db-mark", 30);
    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok());
    expect_corrupt_naming(journal.status(), db_, "damaged");
    ASSERT_TRUE(Journal::accept_loss(dir_).ok());
    EXPECT_NE(open_journal(), nullptr);
}

TEST_F(JournalIntegrityTest, AJournalWithoutAMarkGetsOneFromWhatItHolds) {
    {
        auto journal = open_journal();
        journal->outbox_put(outbox_record(1));
        ASSERT_TRUE(journal->commit().ok());
    }
    fs::remove(dir_ + "/peermq.db-mark");
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    const auto mark = Journal::read_mark(dir_);
    EXPECT_EQ(mark.state, JournalMark::State::ok);
    EXPECT_EQ(mark.counts.commits, 2u);
}

// --- Item 4: an emptied or deleted database ----------------------------------------------------

TEST_F(JournalIntegrityTest, EmptiedDatabaseOfAUsedDataDirIsCorruptJournal) {
    {
        auto journal = open_journal();
        for (std::uint64_t i = 1; i <= 100; ++i) journal->outbox_put(outbox_record(i));
        ASSERT_TRUE(journal->commit().ok());
    }
    ASSERT_FALSE(fs::exists(wal_));
    fs::resize_file(db_, 0);

    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok()) << "an emptied journal became a new one";
    expect_corrupt_naming(journal.status(), db_, "empty");
    EXPECT_EQ(fs::file_size(db_), 0u);
}

TEST_F(JournalIntegrityTest, DeletedDatabaseOfAUsedDataDirIsCorruptJournalAndNothingIsCreated) {
    {
        auto journal = open_journal();
        journal->outbox_put(outbox_record(1));
        ASSERT_TRUE(journal->commit().ok());
    }
    fs::remove(db_);

    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok()) << "a deleted journal was silently created anew";
    expect_corrupt_naming(journal.status(), db_, "missing");
    EXPECT_FALSE(fs::exists(db_));
}

// --- Item 5: flipped bytes in stored rows ------------------------------------------------------

TEST_F(JournalIntegrityTest, FlippedPayloadBytesAreQuarantinedAsACorruptDeadLetter) {
    std::vector<OutboxRecord> records;
    {
        auto journal = open_journal();
        for (std::uint64_t i = 1; i <= 10; ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "payload-%03llu-", static_cast<unsigned long long>(i));
            records.push_back(outbox_record(i, "orders", padded(name, 300)));
            journal->outbox_put(records.back());
        }
        ASSERT_TRUE(journal->commit().ok());
    }
    ASSERT_FALSE(fs::exists(wal_));  // a clean close checkpointed everything into peermq.db
    const auto at = find_bytes(db_, "payload-005-");
    ASSERT_TRUE(at.has_value());
    for (std::uint64_t i = 20; i < 23; ++i) flip_byte(db_, *at + i);

    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    EXPECT_TRUE(journal->verify().ok()) << "SQLite itself sees nothing wrong";
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    ASSERT_EQ(loaded->size(), 9u) << "the damaged record was loaded for delivery";
    for (const auto& r : *loaded) EXPECT_NE(r.id, records[4].id);
    auto letters = journal->dead_letter_list({});
    ASSERT_TRUE(letters.ok()) << letters.status().to_string();
    ASSERT_EQ(letters->size(), 1u);
    EXPECT_EQ((*letters)[0].id, records[4].id);
    EXPECT_EQ((*letters)[0].reason, "corrupt");
    EXPECT_EQ((*letters)[0].queue, "orders");
    // Loaded again (the next start): the quarantine holds, nothing comes back.
    journal.reset();
    journal = open_journal();
    EXPECT_EQ(journal->outbox_load()->size(), 9u);
}

TEST_F(JournalIntegrityTest, ChangedQueueOrHeadersAreCaughtToo) {
    auto a = outbox_record(1);
    auto b = outbox_record(2);
    {
        auto journal = open_journal();
        journal->outbox_put(a);
        journal->outbox_put(b);
        ASSERT_TRUE(journal->commit().ok());
    }
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("UPDATE outbox SET queue = 'orderz' WHERE seq = 1"), SQLITE_OK);
        // {"tenant": "acmf"}: still a valid map, one byte off.
        ASSERT_EQ(
            raw.exec("UPDATE outbox SET headers = X'81A674656E616E74A461636D66' WHERE seq = 2"),
            SQLITE_OK);
    }
    auto journal = open_journal();
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    EXPECT_TRUE(loaded->empty());
    EXPECT_EQ(journal->dead_letter_list({}).value().size(), 2u);
}

TEST_F(JournalIntegrityTest, FlippedDeadLetterPayloadIsFlaggedAndNeverReplayed) {
    DeadLetter letter;
    letter.id = Uuid::generate();
    letter.queue = "orders";
    letter.reason = "max_attempts";
    letter.payload = Payload::from_string(padded("dead-letter-payload-", 200));
    letter.last_error = "handler threw";
    {
        auto journal = open_journal();
        journal->dead_letter_put(letter);
        ASSERT_TRUE(journal->commit().ok());
    }
    const auto at = find_bytes(db_, "dead-letter-payload-");
    ASSERT_TRUE(at.has_value());
    for (std::uint64_t i = 30; i < 33; ++i) flip_byte(db_, *at + i);

    auto journal = open_journal();
    auto shown = journal->dead_letter_get(letter.id);
    ASSERT_TRUE(shown.ok()) << shown.status().to_string();
    EXPECT_EQ(shown->reason, "corrupt");
    EXPECT_NE(shown->last_error.find("max_attempts"), std::string::npos) << shown->last_error;
    auto taken = journal->dead_letter_take(letter.id);
    ASSERT_FALSE(taken.ok()) << "a damaged dead letter was handed out for replay";
    expect_corrupt_naming(taken.status(), db_, letter.id.to_string());
    auto offline = journal->dead_letter_replay(letter.id, "", 1);
    ASSERT_FALSE(offline.ok());
    EXPECT_EQ(journal->outbox_count().value(), 0u);
    EXPECT_EQ(journal->dead_letter_list({}).value().size(), 1u) << "the letter must be kept";
}

// A journal of format 1 (before checksums and counts), as peermq wrote it.
TEST_F(JournalIntegrityTest, AFormatOneJournalIsUpgradedAndItsRowsAreReadUnverified) {
    fs::create_directories(dir_);
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec(R"sql(
            PRAGMA journal_mode=WAL;
            CREATE TABLE outbox (
                id BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16), seq INTEGER NOT NULL,
                queue TEXT NOT NULL, attempts INTEGER NOT NULL, created_ms INTEGER NOT NULL,
                deadline_ms INTEGER NOT NULL, guarantee INTEGER NOT NULL,
                headers BLOB NOT NULL, payload BLOB NOT NULL);
            CREATE INDEX outbox_seq ON outbox (seq);
            CREATE TABLE dead_letters (
                id BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16), queue TEXT NOT NULL,
                reason TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL,
                created_ms INTEGER NOT NULL, first_failure_ms INTEGER NOT NULL,
                last_failure_ms INTEGER NOT NULL, headers BLOB NOT NULL, payload BLOB NOT NULL);
            CREATE INDEX dead_letters_queue_time ON dead_letters (queue, last_failure_ms);
            CREATE INDEX dead_letters_reason ON dead_letters (reason);
            INSERT INTO outbox VALUES (X'0190A3C4D5E67F008123456789ABCDEF', 1, 'orders', 0, 5, 0,
                                       1, X'80', X'A3616263');
            INSERT INTO dead_letters VALUES (X'0190A3C4D5E67F008123456789ABCDEE', 'orders',
                                             'expired', 1, '', 5, 6, 7, X'80', X'A3646566');
            PRAGMA application_id = 1347244362;
            PRAGMA user_version = 1;)sql"),
                  SQLITE_OK);
    }
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    ASSERT_EQ(loaded->size(), 1u);  // no checksum: accepted as it is
    EXPECT_EQ((*loaded)[0].payload.as<std::string>(), "abc");
    EXPECT_EQ(journal->dead_letter_list({}).value().at(0).reason, "expired");
    auto check = journal->check_records();
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(check->unverified, 2u);
    EXPECT_EQ(check->outbox_corrupt + check->dead_letters_corrupt, 0u);
    journal->outbox_put(outbox_record(2));
    ASSERT_TRUE(journal->commit().ok());
    journal.reset();
    RawDb raw(db_);
    EXPECT_EQ(raw.scalar("PRAGMA user_version"), 2);
    EXPECT_EQ(raw.scalar("SELECT count(*) FROM outbox WHERE checksum IS NULL"), 1);
    EXPECT_EQ(raw.scalar("SELECT count(*) FROM outbox WHERE checksum IS NOT NULL"), 1);
}

TEST_F(JournalIntegrityTest, CheckRecordsCountsDamagedRowsWithoutChangingThem) {
    auto a = outbox_record(1, "orders", padded("check-records-", 100));
    {
        auto journal = open_journal();
        journal->outbox_put(a);
        journal->outbox_put(outbox_record(2));
        ASSERT_TRUE(journal->commit().ok());
    }
    const auto at = find_bytes(db_, "check-records-");
    ASSERT_TRUE(at.has_value());
    flip_byte(db_, *at + 40);
    auto journal = Journal::open(dir_, Durability::group_commit, JournalOpenMode::existing);
    ASSERT_TRUE(journal.ok());
    auto check = (*journal)->check_records();
    ASSERT_TRUE(check.ok()) << check.status().to_string();
    EXPECT_EQ(check->outbox, 2u);
    EXPECT_EQ(check->outbox_corrupt, 1u);
    EXPECT_EQ(check->unverified, 0u);
    EXPECT_EQ((*journal)->outbox_count().value(), 2u);
}

// --- Item 6: a database the journal cannot write -----------------------------------------------

// Runs `body` in a child process that cannot write `file`: as root (who writes anything), after
// handing `dir` and `file` to nobody and dropping to that user; otherwise as ourselves. The
// file is made read-only (0444) either way. `top`, the test's own temporary directory that holds
// `dir`, is opened to others (mkdtemp makes it 0700). Returns the child's exit code.
int run_without_write_access(const std::string& top, const std::string& dir,
                             const std::string& file, int (*body)(const std::string&),
                             const std::string& arg) {
    constexpr uid_t kNobody = 65534;
    const bool root = ::geteuid() == 0;
    if (root) {
        EXPECT_EQ(::chmod(top.c_str(), 0755), 0);
        EXPECT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0);
        EXPECT_EQ(::chown(file.c_str(), kNobody, kNobody), 0);
    }
    EXPECT_EQ(::chmod(file.c_str(), 0444), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        if (root && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) ::_exit(9);
        ::_exit(body(arg));
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(JournalIntegrityTest, ReadOnlyDatabaseIsIoErrorNamingItAtOpen) {
    {
        auto journal = open_journal();
        journal->outbox_put(outbox_record(1));
        ASSERT_TRUE(journal->commit().ok());
    }
    // 0: io_error naming the file; 1: opened; 2: another error.
    const int result = run_without_write_access(
        root_.path(), dir_, db_,
        [](const std::string& data_dir) {
            auto journal = Journal::open(data_dir, Durability::group_commit);
            if (journal.ok()) return 1;
            std::fprintf(stderr, "%s\n", journal.status().to_string().c_str());
            const bool named =
                journal.status().message().find(data_dir + "/peermq.db") != std::string::npos;
            return journal.status().code() == ErrorCode::io_error && named ? 0 : 2;
        },
        dir_);
    EXPECT_EQ(result, 0) << (result == 1 ? "a read-only journal was accepted at open"
                                         : "not an io_error naming the file");
}

}  // namespace
}  // namespace peermq::detail
