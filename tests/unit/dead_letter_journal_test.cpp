// Tests of peermq::DeadLetterJournal, the offline view of a node's dead letters, on real files.
#include "peermq/dead_letters.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "peermq/clock.hpp"
#include "peermq/msgpack.hpp"
#include "storage/journal.hpp"
#include "support/journal.hpp"

namespace peermq {
namespace {

namespace fs = std::filesystem;
using testing::dead_letter;
using testing::filter;

// The data directory exists (DeadLetterJournal::open tells an empty one from a missing one).
class DeadLetterJournalTest : public testing::JournalFixture {
protected:
    void SetUp() override { fs::create_directories(dir_); }

    // What a node's actor leaves behind: some outbox rows and these dead letters.
    void write_node_journal(const std::vector<DeadLetter>& letters, std::uint64_t outbox_rows) {
        auto journal = detail::Journal::open(dir_, Durability::group_commit);
        ASSERT_TRUE(journal.ok()) << journal.status().to_string();
        for (std::uint64_t seq = 1; seq <= outbox_rows; ++seq) {
            (*journal)->outbox_put(testing::outbox_record(seq, "orders", "pending"));
        }
        for (const auto& l : letters) (*journal)->dead_letter_put(l);
        ASSERT_TRUE((*journal)->commit().ok());
    }
};

TEST_F(DeadLetterJournalTest, OpenOfMissingJournalIsNotFoundAndCreatesNothing) {
    const std::string missing = dir_ + "/nope";
    auto dlq = DeadLetterJournal::open(missing);
    ASSERT_FALSE(dlq.ok());
    EXPECT_EQ(dlq.status().code(), ErrorCode::not_found);
    EXPECT_NE(dlq.status().message().find(missing), std::string::npos);
    EXPECT_FALSE(fs::exists(missing));
    EXPECT_EQ(DeadLetterJournal::open(dir_).status().code(), ErrorCode::not_found);
}

TEST_F(DeadLetterJournalTest, GarbageFileIsCorruptJournalNamingIt) {
    { std::ofstream(dir_ + "/peermq.db", std::ios::binary) << std::string(4096, '\x5a'); }
    auto dlq = DeadLetterJournal::open(dir_);
    ASSERT_FALSE(dlq.ok());
    EXPECT_EQ(dlq.status().code(), ErrorCode::corrupt_journal);
    EXPECT_NE(dlq.status().message().find(dir_ + "/peermq.db"), std::string::npos);
}

TEST_F(DeadLetterJournalTest, ListGetAndPurgeAStoppedNodesDeadLetters) {
    const auto a = dead_letter("orders", "max_attempts", 100);
    const auto b = dead_letter("orders", "expired", 200);
    const auto c = dead_letter("billing", "rejected", 300);
    write_node_journal({a, b, c}, 0);

    auto dlq = DeadLetterJournal::open(dir_);
    ASSERT_TRUE(dlq.ok()) << dlq.status().to_string();
    auto all = dlq->list();
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ((*all)[0].id, a.id);
    EXPECT_EQ(dlq->list(filter("orders")).value().size(), 2u);
    EXPECT_EQ(dlq->list(filter({}, "rejected")).value().at(0).id, c.id);
    EXPECT_EQ(dlq->list(filter({}, {}, 150, 250)).value().at(0).id, b.id);
    EXPECT_EQ(dlq->list(filter({}, {}, {}, {}, 1)).value().size(), 1u);

    auto got = dlq->get(c.id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->queue, "billing");
    EXPECT_EQ(got->reason, "rejected");
    EXPECT_EQ(got->attempts, 5u);
    EXPECT_EQ(got->last_error, "handler threw");
    EXPECT_EQ(got->headers, c.headers);
    EXPECT_EQ(got->payload.as<std::string>(), "dead billing");
    EXPECT_EQ(got->created_ms, 200);
    EXPECT_EQ(got->first_failure_ms, 250);
    EXPECT_EQ(got->last_failure_ms, 300);
    EXPECT_EQ(dlq->get(Uuid::generate()).status().code(), ErrorCode::not_found);

    // By id: exactly that one, whatever else shares its queue and times.
    DeadLetterFilter by_id;
    by_id.id = b.id;
    EXPECT_EQ(dlq->list(by_id).value().size(), 1u);
    EXPECT_EQ(dlq->purge(by_id).value(), 1u);
    EXPECT_EQ(dlq->purge(by_id).value(), 0u);
    EXPECT_EQ(dlq->list(filter("orders")).value().at(0).id, a.id);

    EXPECT_EQ(dlq->purge(filter("orders")).value(), 1u);
    EXPECT_EQ(dlq->purge(filter("orders")).value(), 0u);
    EXPECT_EQ(dlq->list().value().size(), 1u);
    EXPECT_EQ(dlq->purge(filter()).value(), 1u);
    EXPECT_TRUE(dlq->list().value().empty());
}

TEST_F(DeadLetterJournalTest, ReplayOfflineMovesTheLetterToTheOutboxUnderANewId) {
    const auto dl = dead_letter("orders", "max_attempts", 100);
    write_node_journal({dl}, 3);

    const std::int64_t before = system_clock()->unix_ms();
    MessageId new_id;
    {
        auto dlq = DeadLetterJournal::open(dir_);
        ASSERT_TRUE(dlq.ok()) << dlq.status().to_string();
        auto replayed = dlq->replay(dl.id);
        ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
        new_id = *replayed;
        EXPECT_NE(new_id, dl.id);
        EXPECT_EQ(dlq->get(dl.id).status().code(), ErrorCode::not_found);
        EXPECT_EQ(dlq->replay(dl.id).status().code(), ErrorCode::not_found);
    }
    const std::int64_t after = system_clock()->unix_ms();

    // What the node loads when it next starts.
    auto journal = detail::Journal::open(dir_, Durability::group_commit);
    ASSERT_TRUE(journal.ok());
    auto loaded = (*journal)->outbox_load();
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded->size(), 4u);
    const auto& row = loaded->back();
    EXPECT_EQ(row.id, new_id);
    EXPECT_EQ(row.seq, 4u);
    EXPECT_EQ(row.queue, "orders");
    EXPECT_EQ(row.attempts, 0u);
    EXPECT_EQ(row.deadline_ms, 0);
    EXPECT_GE(row.created_ms, before);
    EXPECT_LE(row.created_ms, after);
    EXPECT_EQ(row.guarantee, static_cast<std::uint8_t>(Guarantee::at_least_once));
    EXPECT_EQ(row.headers, dl.headers);
    EXPECT_EQ(row.payload.view(), dl.payload.view());
    EXPECT_TRUE((*journal)->dead_letter_list({}).value().empty());
}

TEST_F(DeadLetterJournalTest, ReplayToAnotherQueueIntoAnEmptyOutbox) {
    const auto dl = dead_letter("orders", "no_consumer", 100);
    write_node_journal({dl}, 0);
    auto dlq = DeadLetterJournal::open(dir_);
    ASSERT_TRUE(dlq.ok());
    auto replayed = dlq->replay(dl.id, "orders-retry");
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();

    auto journal = detail::Journal::open(dir_, Durability::group_commit);
    ASSERT_TRUE(journal.ok());
    auto loaded = (*journal)->outbox_load().value();
    ASSERT_EQ(loaded.size(), 1u);
    EXPECT_EQ(loaded[0].id, *replayed);
    EXPECT_EQ(loaded[0].queue, "orders-retry");
    EXPECT_EQ(loaded[0].seq, 1u);
}

TEST_F(DeadLetterJournalTest, ReplayOfMissingIdChangesNothing) {
    write_node_journal({dead_letter("orders", "expired", 1)}, 2);
    auto dlq = DeadLetterJournal::open(dir_);
    ASSERT_TRUE(dlq.ok());
    auto replayed = dlq->replay(Uuid::generate());
    ASSERT_FALSE(replayed.ok());
    EXPECT_EQ(replayed.status().code(), ErrorCode::not_found);
    EXPECT_EQ(dlq->list().value().size(), 1u);
    auto journal = detail::Journal::open(dir_, Durability::group_commit);
    ASSERT_TRUE(journal.ok());
    EXPECT_EQ((*journal)->outbox_count().value(), 2u);
}

TEST_F(DeadLetterJournalTest, ToolAndNodeShareTheFile) {
    write_node_journal({}, 0);
    auto node = detail::Journal::open(dir_, Durability::group_commit);
    ASSERT_TRUE(node.ok());
    auto dlq = DeadLetterJournal::open(dir_);
    ASSERT_TRUE(dlq.ok());

    const auto dl = dead_letter("orders", "rejected", 7);
    (*node)->dead_letter_put(dl);
    EXPECT_TRUE(dlq->list().value().empty());  // buffered in the node, not yet committed
    ASSERT_TRUE((*node)->commit().ok());
    ASSERT_EQ(dlq->list().value().size(), 1u);
    EXPECT_EQ(dlq->list().value()[0].id, dl.id);
}

TEST_F(DeadLetterJournalTest, MovedFromObjectReportsClosed) {
    write_node_journal({}, 0);
    auto dlq = DeadLetterJournal::open(dir_);
    ASSERT_TRUE(dlq.ok());
    DeadLetterJournal moved = std::move(dlq).value();
    EXPECT_TRUE(moved.list().ok());
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is what is under test.
    EXPECT_EQ(dlq->list().status().code(), ErrorCode::closed);
}

}  // namespace
}  // namespace peermq
