// Tests of detail::Journal against real SQLite files (docs/spec/journal.md).
#include "storage/journal.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/journal.hpp"

namespace peermq::detail {
namespace {

namespace fs = std::filesystem;
using namespace peermq::testing;

class JournalTest : public peermq::testing::JournalFixture {};

TEST_F(JournalTest, CreatesDataDirAndReportsPath) {
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->path(), db_);
    EXPECT_TRUE(fs::is_regular_file(db_));
    EXPECT_EQ(journal->pending(), 0u);
    EXPECT_EQ(journal->commits(), 0u);
    EXPECT_TRUE(journal->verify().ok());

    RawDb raw(db_);
    EXPECT_EQ(raw.scalar("PRAGMA user_version"), Journal::kFormatVersion);
    EXPECT_EQ(raw.scalar("PRAGMA application_id"), Journal::kApplicationId);
    EXPECT_EQ(raw.scalar("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
}

TEST_F(JournalTest, OutboxRoundTripKeepsSeqOrderPayloadAndHeaders) {
    std::vector<OutboxRecord> written;
    {
        auto journal = open_journal();
        ASSERT_NE(journal, nullptr);
        for (std::uint64_t seq : {5u, 1u, 3u}) written.push_back(outbox_record(seq));
        written[0].payload = Payload::copy_of("\0\xff\x01 binary\0", 11);
        written[0].headers = {{"traceparent", "00-0af7651916cd43dd-b7ad6b7169203331-01"},
                              {"empty", ""},
                              {std::string("k\0ey", 4), std::string("v\xff", 2)}};
        written[1].payload = Payload();  // empty payloads stay empty, not NULL
        written[2].attempts = 3;
        written[2].deadline_ms = 1'800'000'000'000;
        written[2].guarantee = static_cast<std::uint8_t>(Guarantee::effectively_once);
        for (const auto& r : written) journal->outbox_put(r);
        EXPECT_EQ(journal->pending(), 3u);
        ASSERT_TRUE(journal->commit().ok());
        EXPECT_EQ(journal->pending(), 0u);
        EXPECT_EQ(journal->commits(), 1u);
    }
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    ASSERT_EQ(loaded->size(), 3u);
    const OutboxRecord* expected[] = {&written[1], &written[2], &written[0]};  // seq 1, 3, 5
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& got = (*loaded)[i];
        const auto& want = *expected[i];
        EXPECT_EQ(got.id, want.id);
        EXPECT_EQ(got.seq, want.seq);
        EXPECT_EQ(got.queue, want.queue);
        EXPECT_EQ(got.headers, want.headers);
        EXPECT_EQ(got.payload.view(), want.payload.view());
        EXPECT_EQ(got.attempts, want.attempts);
        EXPECT_EQ(got.created_ms, want.created_ms);
        EXPECT_EQ(got.deadline_ms, want.deadline_ms);
        EXPECT_EQ(got.guarantee, want.guarantee);
    }
    EXPECT_EQ(journal->outbox_count().value(), 3u);
}

TEST_F(JournalTest, PutThenRemoveBeforeCommitNeverReachesDisk) {
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    const auto kept = outbox_record(1);
    journal->outbox_put(kept);
    ASSERT_TRUE(journal->commit().ok());
    ASSERT_EQ(journal->commits(), 1u);
    const std::string db_before = read_bytes(db_);
    const std::string wal_before = read_bytes(db_ + "-wal");
    ASSERT_FALSE(wal_before.empty());

    const auto acked = outbox_record(2);
    journal->outbox_put(acked);
    journal->outbox_remove(acked.id);
    EXPECT_EQ(journal->pending(), 0u);
    ASSERT_TRUE(journal->commit().ok());

    // No transaction ran and not one byte of the files changed.
    EXPECT_EQ(journal->commits(), 1u);
    EXPECT_EQ(read_bytes(db_), db_before);
    EXPECT_EQ(read_bytes(db_ + "-wal"), wal_before);
    EXPECT_EQ(journal->outbox_count().value(), 1u);

    journal.reset();
    journal = open_journal();
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded->size(), 1u);
    EXPECT_EQ(loaded->front().id, kept.id);
}

TEST_F(JournalTest, PutAndRemoveInOneBatchLeaveOnlyTheSurvivors) {
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    std::vector<OutboxRecord> records;
    for (std::uint64_t i = 0; i < 10; ++i) {
        records.push_back(outbox_record(i));
        journal->outbox_put(records.back());
    }
    for (std::size_t i = 0; i < 10; i += 2) journal->outbox_remove(records[i].id);
    EXPECT_EQ(journal->pending(), 5u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 5u);
    auto loaded = journal->outbox_load().value();
    ASSERT_EQ(loaded.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(loaded[i].id, records[2 * i + 1].id);
}

TEST_F(JournalTest, RemoveOfCommittedRowDeletesItAlsoAfterReopen) {
    auto first = outbox_record(1);
    auto second = outbox_record(2);
    {
        auto journal = open_journal();
        journal->outbox_put(first);
        journal->outbox_put(second);
        ASSERT_TRUE(journal->commit().ok());
        journal->outbox_remove(first.id);
        EXPECT_EQ(journal->pending(), 1u);
        ASSERT_TRUE(journal->commit().ok());
        EXPECT_EQ(journal->outbox_count().value(), 1u);
    }
    auto journal = open_journal();
    // Rows loaded from disk are known to be there: their removal must reach the disk.
    journal->outbox_remove(second.id);
    EXPECT_EQ(journal->pending(), 1u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 0u);
    // Removing an id that is nowhere deletes nothing.
    journal->outbox_remove(Uuid::generate());
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 0u);
}

TEST_F(JournalTest, PutOfCommittedIdReplacesRowAndLaterRemoveStillDeletesIt) {
    auto journal = open_journal();
    auto r = outbox_record(1);
    journal->outbox_put(r);
    ASSERT_TRUE(journal->commit().ok());

    r.attempts = 2;
    journal->outbox_put(r);
    ASSERT_TRUE(journal->commit().ok());
    auto loaded = journal->outbox_load().value();
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0].attempts, 2u);

    // Update then remove in one batch: the committed row must not survive the cancellation.
    r.attempts = 3;
    journal->outbox_put(r);
    journal->outbox_remove(r.id);
    EXPECT_EQ(journal->pending(), 1u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 0u);

    // Remove then put again in one batch: the row is back.
    journal->outbox_put(r);
    ASSERT_TRUE(journal->commit().ok());
    journal->outbox_remove(r.id);
    journal->outbox_put(r);
    EXPECT_EQ(journal->pending(), 1u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 1u);
}

TEST_F(JournalTest, AfterReopenAReplacingPutCancelledByARemoveStillDeletesTheRow) {
    auto r = outbox_record(7);
    {
        auto journal = open_journal();
        journal->outbox_put(r);
        ASSERT_TRUE(journal->commit().ok());
    }
    auto journal = open_journal();
    // The seq is not above what is on disk: this put may replace a row, so its cancellation
    // must still delete that row.
    r.attempts = 4;
    journal->outbox_put(r);
    journal->outbox_remove(r.id);
    EXPECT_EQ(journal->pending(), 1u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 0u);
    // A new message (seq above all) put and acked between two commits never reaches the disk.
    const auto fresh = outbox_record(8);
    journal->outbox_put(fresh);
    journal->outbox_remove(fresh.id);
    EXPECT_EQ(journal->pending(), 0u);
}

TEST_F(JournalTest, ThousandPutsAreOneCommit) {
    auto journal = open_journal();
    for (std::uint64_t i = 1; i <= 1000; ++i) {
        journal->outbox_put(
            outbox_record(i, "q", std::string(100, static_cast<char>('a' + i % 26))));
    }
    EXPECT_EQ(journal->pending(), 1000u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->commits(), 1u);
    auto loaded = journal->outbox_load().value();
    ASSERT_EQ(loaded.size(), 1000u);
    for (std::uint64_t i = 0; i < 1000; ++i) {
        ASSERT_EQ(loaded[i].seq, i + 1);
        ASSERT_EQ(loaded[i].payload.view(),
                  std::string(100, static_cast<char>('a' + (i + 1) % 26)));
    }
}

TEST_F(JournalTest, DeadLetterPutRemovesOutboxRowInTheSameCommit) {
    auto journal = open_journal();
    auto committed = outbox_record(1);
    auto buffered = outbox_record(2);
    journal->outbox_put(committed);
    ASSERT_TRUE(journal->commit().ok());
    journal->outbox_put(buffered);

    auto dl1 = dead_letter("orders", "max_attempts", 1000);
    dl1.id = committed.id;
    auto dl2 = dead_letter("orders", "expired", 2000);
    dl2.id = buffered.id;
    journal->dead_letter_put(dl1);
    journal->dead_letter_put(dl2);
    // The committed row needs a DELETE; the buffered put cancels out.
    EXPECT_EQ(journal->pending(), 3u);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->commits(), 2u);
    EXPECT_EQ(journal->outbox_count().value(), 0u);
    auto listed = journal->dead_letter_list({}).value();
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0].id, committed.id);
    EXPECT_EQ(listed[1].id, buffered.id);

    auto got = journal->dead_letter_get(dl1.id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->queue, "orders");
    EXPECT_EQ(got->reason, "max_attempts");
    EXPECT_EQ(got->attempts, 5u);
    EXPECT_EQ(got->last_error, "handler threw");
    EXPECT_EQ(got->headers, dl1.headers);
    EXPECT_EQ(got->payload.as<std::string>(), "dead orders");
    EXPECT_EQ(got->created_ms, 900);
    EXPECT_EQ(got->first_failure_ms, 950);
    EXPECT_EQ(got->last_failure_ms, 1000);
}

TEST_F(JournalTest, DeadLetterListCommitsPendingFirst) {
    auto journal = open_journal();
    journal->dead_letter_put(dead_letter("orders", "rejected", 10));
    EXPECT_EQ(journal->pending(), 2u);  // the letter, and the DELETE of its outbox row
    EXPECT_EQ(journal->dead_letter_list({}).value().size(), 1u);
    EXPECT_EQ(journal->pending(), 0u);
    EXPECT_EQ(journal->commits(), 1u);
}

TEST_F(JournalTest, DeadLetterListFilters) {
    auto journal = open_journal();
    std::vector<DeadLetter> letters = {
        dead_letter("orders", "max_attempts", 100),  dead_letter("orders", "expired", 200),
        dead_letter("billing", "max_attempts", 300), dead_letter("orders", "rejected", 400),
        dead_letter("billing", "expired", 500),
    };
    // Put out of time order: the list is ordered by last_failure_ms.
    for (int i : {3, 0, 4, 1, 2}) journal->dead_letter_put(letters[i]);
    ASSERT_TRUE(journal->commit().ok());

    auto ids = [&](const DeadLetterFilter& f) {
        std::vector<std::int64_t> times;
        auto listed = journal->dead_letter_list(f);
        EXPECT_TRUE(listed.ok()) << listed.status().to_string();
        if (listed.ok()) {
            for (const auto& l : *listed) times.push_back(l.last_failure_ms);
        }
        return times;
    };
    using V = std::vector<std::int64_t>;
    EXPECT_EQ(ids({}), (V{100, 200, 300, 400, 500}));
    EXPECT_EQ(ids(filter("orders")), (V{100, 200, 400}));
    EXPECT_EQ(ids(filter("nope")), V{});
    EXPECT_EQ(ids(filter({}, "expired")), (V{200, 500}));
    EXPECT_EQ(ids(filter({}, {}, 300)), (V{300, 400, 500}));
    EXPECT_EQ(ids(filter({}, {}, {}, 300)), (V{100, 200}));
    EXPECT_EQ(ids(filter({}, {}, 200, 500)), (V{200, 300, 400}));
    EXPECT_EQ(ids(filter({}, {}, {}, {}, 2)), (V{100, 200}));
    EXPECT_EQ(ids(filter("billing", "expired")), (V{500}));
    EXPECT_EQ(ids(filter("orders", "max_attempts", 50, 150, 10)), (V{100}));
    // The same shape again reuses its statement with new values.
    EXPECT_EQ(ids(filter("billing")), (V{300, 500}));
}

TEST_F(JournalTest, DeadLetterGetOfMissingIdIsNotFound) {
    auto journal = open_journal();
    auto got = journal->dead_letter_get(Uuid::generate());
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), ErrorCode::not_found);
}

TEST_F(JournalTest, DeadLetterPurgeCountsWhatItRemoved) {
    auto journal = open_journal();
    for (int i = 0; i < 4; ++i) journal->dead_letter_put(dead_letter("orders", "expired", 100 + i));
    for (int i = 0; i < 3; ++i)
        journal->dead_letter_put(dead_letter("billing", "expired", 200 + i));
    EXPECT_EQ(journal->dead_letter_purge(filter("nope")).value(), 0u);
    EXPECT_EQ(journal->dead_letter_purge(filter("orders", {}, {}, {}, 3)).value(), 3u);
    auto left = journal->dead_letter_list(filter("orders")).value();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].last_failure_ms, 103);  // the oldest went first
    EXPECT_EQ(journal->dead_letter_purge({}).value(), 4u);
    EXPECT_TRUE(journal->dead_letter_list({}).value().empty());
}

TEST_F(JournalTest, DeadLetterTakeRemovesAndReturnsIt) {
    auto journal = open_journal();
    auto dl = dead_letter("orders", "rejected", 100);
    journal->dead_letter_put(dl);  // still buffered: take commits it first
    auto taken = journal->dead_letter_take(dl.id);
    ASSERT_TRUE(taken.ok()) << taken.status().to_string();
    EXPECT_EQ(taken->id, dl.id);
    EXPECT_EQ(taken->payload.view(), dl.payload.view());
    EXPECT_EQ(taken->headers, dl.headers);
    EXPECT_EQ(journal->dead_letter_get(dl.id).status().code(), ErrorCode::not_found);
    EXPECT_EQ(journal->dead_letter_take(dl.id).status().code(), ErrorCode::not_found);
}

TEST_F(JournalTest, SameIdDeadLetteredTwiceKeepsOneRowAndFirstFailure) {
    auto journal = open_journal();
    auto first = dead_letter("orders", "rejected", 1000);
    journal->dead_letter_put(first);
    ASSERT_TRUE(journal->commit().ok());

    auto again = first;
    again.reason = "max_attempts";
    again.attempts = 9;
    again.last_error = "still failing";
    again.first_failure_ms = 1900;
    again.last_failure_ms = 2000;
    journal->dead_letter_put(again);
    auto third = again;  // twice within one batch as well
    third.attempts = 10;
    third.last_failure_ms = 3000;
    journal->dead_letter_put(third);

    auto listed = journal->dead_letter_list({}).value();
    ASSERT_EQ(listed.size(), 1u);
    const auto& got = listed[0];
    EXPECT_EQ(got.reason, "max_attempts");
    EXPECT_EQ(got.attempts, 10u);
    EXPECT_EQ(got.last_error, "still failing");
    EXPECT_EQ(got.first_failure_ms, first.first_failure_ms);
    EXPECT_EQ(got.last_failure_ms, 3000);
    EXPECT_EQ(got.payload.view(), first.payload.view());
}

TEST_F(JournalTest, ReplayMovesDeadLetterToOutboxWithNewId) {
    auto journal = open_journal();
    journal->outbox_put(outbox_record(41));
    auto dl = dead_letter("orders", "max_attempts", 100);
    journal->dead_letter_put(dl);
    auto replayed = journal->dead_letter_replay(dl.id, "", 5555);
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    EXPECT_NE(*replayed, dl.id);
    EXPECT_EQ(journal->dead_letter_get(dl.id).status().code(), ErrorCode::not_found);
    auto loaded = journal->outbox_load().value();
    ASSERT_EQ(loaded.size(), 2u);
    const auto& row = loaded[1];
    EXPECT_EQ(row.id, *replayed);
    EXPECT_EQ(row.seq, 42u);
    EXPECT_EQ(row.queue, "orders");
    EXPECT_EQ(row.attempts, 0u);
    EXPECT_EQ(row.created_ms, 5555);
    EXPECT_EQ(row.deadline_ms, 0);
    EXPECT_EQ(row.payload.view(), dl.payload.view());
    EXPECT_EQ(row.headers, dl.headers);
    // The journal knows the row is on disk: an ack of it deletes it.
    journal->outbox_remove(row.id);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 1u);

    EXPECT_EQ(journal->dead_letter_replay(dl.id, "", 1).status().code(), ErrorCode::not_found);
}

TEST_F(JournalTest, ReopenKeepsEverything) {
    auto r = outbox_record(7);
    auto dl = dead_letter("orders", "expired", 100);
    {
        auto journal = open_journal();
        journal->outbox_put(r);
        journal->dead_letter_put(dl);
        ASSERT_TRUE(journal->commit().ok());
    }
    for (int round = 0; round < 2; ++round) {
        auto journal = open_journal();
        ASSERT_NE(journal, nullptr);
        EXPECT_EQ(journal->commits(), 0u);
        auto loaded = journal->outbox_load().value();
        ASSERT_EQ(loaded.size(), 1u);
        EXPECT_EQ(loaded[0].id, r.id);
        EXPECT_EQ(journal->dead_letter_get(dl.id).value().reason, "expired");
    }
}

TEST_F(JournalTest, GarbageFileIsCorruptJournalNamingThePath) {
    fs::create_directories(dir_);
    {
        std::ofstream out(db_, std::ios::binary);
        std::string garbage;
        for (int i = 0; i < 8192; ++i) garbage.push_back(static_cast<char>((i * 7919) & 0xff));
        out << garbage;
    }
    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok());
    EXPECT_EQ(journal.status().code(), ErrorCode::corrupt_journal);
    EXPECT_NE(journal.status().message().find(db_), std::string::npos)
        << journal.status().message();
}

TEST_F(JournalTest, HeaderOnlyGarbageThatLooksLikeSqliteIsRejected) {
    fs::create_directories(dir_);
    {
        std::ofstream out(db_, std::ios::binary);
        out << std::string("SQLite format 3\0", 16) << std::string(84, '\x7f');
    }
    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok());
    EXPECT_EQ(journal.status().code(), ErrorCode::corrupt_journal);
    EXPECT_NE(journal.status().message().find(db_), std::string::npos);
}

TEST_F(JournalTest, TruncatedJournalIsAnErrorOrReadableNeverACrash) {
    {
        auto journal = open_journal();
        for (std::uint64_t i = 0; i < 300; ++i) {
            journal->outbox_put(outbox_record(i, "q", std::string(1000, 'x')));
            journal->dead_letter_put(dead_letter("q", "expired", static_cast<std::int64_t>(i)));
        }
        ASSERT_TRUE(journal->commit().ok());
    }
    ASSERT_FALSE(fs::exists(db_ + "-wal"));  // a clean close checkpoints the WAL
    const auto size = fs::file_size(db_);
    ASSERT_GT(size, 100'000u);
    fs::resize_file(db_, size / 2);

    auto journal = Journal::open(dir_, Durability::group_commit);
    if (!journal.ok()) {
        EXPECT_EQ(journal.status().code(), ErrorCode::corrupt_journal);
        EXPECT_NE(journal.status().message().find(db_), std::string::npos);
        return;
    }
    // If SQLite accepted the file, every read must be a clear result.
    auto loaded = (*journal)->outbox_load();
    if (!loaded.ok()) {
        EXPECT_EQ(loaded.status().code(), ErrorCode::corrupt_journal);
    }
    auto listed = (*journal)->dead_letter_list({});
    if (!listed.ok()) {
        EXPECT_EQ(listed.status().code(), ErrorCode::corrupt_journal);
    }
    EXPECT_EQ((*journal)->verify().code(), ErrorCode::corrupt_journal);
}

TEST_F(JournalTest, UndecodableHeadersAreQuarantinedOrFlaggedNotACrash) {
    auto r = outbox_record(1);
    auto dl = dead_letter("q", "expired", 1);
    {
        auto journal = open_journal();
        journal->outbox_put(r);
        journal->dead_letter_put(dl);
        ASSERT_TRUE(journal->commit().ok());
    }
    {
        RawDb raw(db_);
        // A map claiming 2^32-1 entries, then a headers value that is not a map at all.
        ASSERT_EQ(raw.exec("UPDATE outbox SET headers = X'DFFFFFFFFF'"), SQLITE_OK);
        ASSERT_EQ(raw.exec("UPDATE dead_letters SET headers = X'92A161A162'"), SQLITE_OK);
    }
    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    // The outbox row is never handed out: it moves to the dead letters as corrupt.
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    EXPECT_TRUE(loaded->empty());
    ASSERT_EQ(journal->quarantined().size(), 1u);
    EXPECT_EQ(journal->quarantined()[0].id, r.id);
    // Both letters are listed, flagged; the other rows stay readable.
    auto listed = journal->dead_letter_list({});
    ASSERT_TRUE(listed.ok()) << listed.status().to_string();
    ASSERT_EQ(listed->size(), 2u);
    for (const auto& l : *listed) {
        EXPECT_EQ(l.reason, "corrupt") << l.id.to_string();
        EXPECT_NE(l.last_error.find("headers do not decode"), std::string::npos) << l.last_error;
    }
    EXPECT_EQ(journal->dead_letter_take(dl.id).status().code(), ErrorCode::corrupt_journal);
}

TEST_F(JournalTest, DataDirThatIsARegularFileIsAClearError) {
    { std::ofstream(dir_) << "not a directory"; }
    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok());
    EXPECT_EQ(journal.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(journal.status().message().find(dir_), std::string::npos);
    EXPECT_NE(journal.status().message().find("not a directory"), std::string::npos);
}

TEST_F(JournalTest, EmptyDataDirIsInvalidArgument) {
    EXPECT_EQ(Journal::open("", Durability::group_commit).status().code(),
              ErrorCode::invalid_argument);
}

TEST_F(JournalTest, ExistingModeCreatesNothing) {
    auto journal = Journal::open(dir_, Durability::group_commit, JournalOpenMode::existing);
    ASSERT_FALSE(journal.ok());
    EXPECT_EQ(journal.status().code(), ErrorCode::not_found);
    EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(JournalTest, ForeignSqliteDatabaseIsRejected) {
    fs::create_directories(dir_);
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("CREATE TABLE users (name TEXT)"), SQLITE_OK);
    }
    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok());
    EXPECT_EQ(journal.status().code(), ErrorCode::corrupt_journal);
    EXPECT_NE(journal.status().message().find("not a peermq journal"), std::string::npos);
    EXPECT_NE(journal.status().message().find(db_), std::string::npos);
}

TEST_F(JournalTest, NewerFormatVersionIsAClearError) {
    { ASSERT_NE(open_journal(), nullptr); }
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("PRAGMA user_version = 99"), SQLITE_OK);
    }
    auto journal = Journal::open(dir_, Durability::group_commit);
    ASSERT_FALSE(journal.ok());
    EXPECT_EQ(journal.status().code(), ErrorCode::corrupt_journal);
    EXPECT_NE(journal.status().message().find("format 99"), std::string::npos)
        << journal.status().message();
    EXPECT_NE(journal.status().message().find("newer peermq"), std::string::npos);
}

TEST_F(JournalTest, EveryDurabilityLevelOpensAndCommits) {
    for (auto durability : {Durability::memory, Durability::group_commit, Durability::fsync_each}) {
        auto journal = Journal::open(dir_, durability);
        ASSERT_TRUE(journal.ok()) << journal.status().to_string();
        (*journal)->outbox_put(outbox_record(1));
        ASSERT_TRUE((*journal)->commit().ok());
    }
    EXPECT_EQ(open_journal()->outbox_count().value(), 3u);
}

TEST_F(JournalTest, CommitFailureKeepsPendingOperationsForARetry) {
    auto journal = open_journal();
    journal->outbox_put(outbox_record(1));
    ASSERT_TRUE(journal->commit().ok());

    RawDb other(db_);
    // In WAL mode this holds the one write lock, as a tool purging dead letters would.
    ASSERT_EQ(other.exec("BEGIN IMMEDIATE"), SQLITE_OK);
    journal->set_busy_timeout(std::chrono::milliseconds(20));
    std::vector<OutboxRecord> records;
    for (std::uint64_t i = 2; i <= 11; ++i) {
        records.push_back(outbox_record(i));
        journal->outbox_put(records.back());
    }
    journal->dead_letter_put(dead_letter("q", "expired", 1));
    const Status failed = journal->commit();
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.code(), ErrorCode::io_error);
    EXPECT_NE(failed.message().find(db_), std::string::npos) << failed.message();
    EXPECT_EQ(journal->pending(), 12u);  // 10 puts, the letter and its outbox DELETE
    EXPECT_EQ(journal->commits(), 1u);
    // Reads still work while the writer is locked out.
    EXPECT_EQ(journal->outbox_count().value(), 1u);

    ASSERT_EQ(other.exec("ROLLBACK"), SQLITE_OK);
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->pending(), 0u);
    EXPECT_EQ(journal->commits(), 2u);
    EXPECT_EQ(journal->outbox_count().value(), 11u);
    EXPECT_EQ(journal->dead_letter_list({}).value().size(), 1u);
}

TEST_F(JournalTest, FullJournalIsDiskFullAndRetryable) {
    auto journal = open_journal();
    ASSERT_TRUE(journal->set_size_limit(256 * 1024).ok());
    for (std::uint64_t i = 0; i < 100; ++i) {
        journal->outbox_put(outbox_record(i, "q", std::string(8 * 1024, 'z')));
    }
    const Status failed = journal->commit();
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.code(), ErrorCode::disk_full) << failed.to_string();
    EXPECT_EQ(journal->pending(), 100u);
    EXPECT_EQ(journal->outbox_count().value(), 0u);  // rolled back as a whole

    ASSERT_TRUE(journal->set_size_limit(0).ok());
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(journal->outbox_count().value(), 100u);
}

TEST_F(JournalTest, ReaderHoldingASnapshotDoesNotBlockCommits) {
    auto journal = open_journal();
    journal->outbox_put(outbox_record(1));
    ASSERT_TRUE(journal->commit().ok());

    RawDb reader(db_);
    ASSERT_EQ(reader.exec("BEGIN"), SQLITE_OK);
    ASSERT_EQ(reader.scalar("SELECT count(*) FROM outbox"), 1);
    journal->set_busy_timeout(std::chrono::milliseconds(0));
    journal->outbox_put(outbox_record(2));
    ASSERT_TRUE(journal->commit().ok());
    EXPECT_EQ(reader.scalar("SELECT count(*) FROM outbox"), 1);  // its snapshot
    ASSERT_EQ(reader.exec("COMMIT"), SQLITE_OK);
    EXPECT_EQ(reader.scalar("SELECT count(*) FROM outbox"), 2);
}

TEST_F(JournalTest, CommittedRowsSurviveAProcessCrash) {
    constexpr std::uint64_t kParentRows = 50;
    constexpr std::uint64_t kChildRows = 70;
    {
        auto journal = open_journal();
        for (std::uint64_t i = 0; i < kParentRows; ++i) journal->outbox_put(outbox_record(i));
        ASSERT_TRUE(journal->commit().ok());
    }
    // The child opens its own connection (an SQLite connection must not cross fork()), commits,
    // buffers more, and dies without closing anything.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto opened = Journal::open(dir_, Durability::group_commit);
        if (!opened.ok()) ::_exit(2);
        auto& journal = *opened;
        for (std::uint64_t i = 0; i < kChildRows; ++i) {
            journal->outbox_put(outbox_record(kParentRows + i, "child"));
        }
        journal->dead_letter_put(dead_letter("child", "expired", 1));
        if (!journal->commit().ok()) ::_exit(3);
        for (std::uint64_t i = 0; i < 10; ++i) journal->outbox_put(outbox_record(1000 + i, "lost"));
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    EXPECT_TRUE(fs::exists(db_ + "-wal"));  // nobody checkpointed: recovery reads the WAL

    auto journal = open_journal();
    ASSERT_NE(journal, nullptr);
    EXPECT_TRUE(journal->verify().ok());
    auto loaded = journal->outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    ASSERT_EQ(loaded->size(), kParentRows + kChildRows);
    for (std::uint64_t i = 0; i < loaded->size(); ++i) {
        EXPECT_EQ((*loaded)[i].seq, i);
        EXPECT_NE((*loaded)[i].queue, "lost");
    }
    EXPECT_EQ(journal->dead_letter_list(filter("child")).value().size(), 1u);
}

TEST_F(JournalTest, TwoConnectionsSeeEachOthersCommits) {
    auto node = open_journal();
    auto tool = open_journal();
    ASSERT_NE(node, nullptr);
    ASSERT_NE(tool, nullptr);
    node->dead_letter_put(dead_letter("orders", "expired", 5));
    ASSERT_TRUE(node->commit().ok());
    EXPECT_EQ(tool->dead_letter_list({}).value().size(), 1u);
    EXPECT_EQ(tool->dead_letter_purge({}).value(), 1u);
    EXPECT_TRUE(node->dead_letter_list({}).value().empty());
}

}  // namespace
}  // namespace peermq::detail
