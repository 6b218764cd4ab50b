// The dead-letter store's counts (storage/dead_letter_store.hpp, NodeStats::dead_letters), by
// queue and reason, on a real journal file behind a real JournalPipeline and in memory: puts add,
// takes and purges remove, a reopened journal counts what it holds, the outbox rows the load
// moves to the dead letters count as `corrupt`, a damaged letter refused for replay moves to
// `corrupt`, and a count that cannot be read leaves the counts as they were. Then the counts in a
// control protocol stats reply (docs/spec/control.md §5.1, §5.4): read back as written, and
// bounded.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "admin/control_codec.hpp"
#include "admin/control_messages.hpp"
#include "storage/dead_letter_store.hpp"
#include "support/fake_clock.hpp"
#include "support/journal.hpp"
#include "support/log_capture.hpp"

namespace peermq::detail {
namespace {

using Counts = DeadLetterStore::Counts;
using peermq::testing::dead_letter;
using peermq::testing::filter;
using peermq::testing::RawDb;

class DeadLetterCountsTest : public peermq::testing::JournalFixture {
protected:
    ~DeadLetterCountsTest() override { close(); }

    // The journal in dir_ behind a pipeline, and a store on it (made as the node makes it).
    void open() {
        auto journal = open_journal();
        ASSERT_NE(journal, nullptr);
        pipeline_ = std::make_unique<JournalPipeline>(
            std::move(journal), JournalPipeline::Settings{20'000, std::chrono::milliseconds(200)},
            log_, backlog_, [](const Status&) {}, [] {});
        store_ = std::make_unique<DeadLetterStore>(pipeline_.get());
    }
    // Commits what is buffered and closes the journal, as a node's close() does.
    void close() {
        store_.reset();
        if (pipeline_) pipeline_->commit_now(now_, {});
        pipeline_.reset();
    }
    // Starts a group commit of what is buffered (it runs on the writer thread).
    void start_commit() { pipeline_->maybe_commit(now_, true, {}); }
    // How many letters the journal lists.
    std::uint64_t listed() {
        auto all = store_->list({}, now_);
        EXPECT_TRUE(all.ok()) << all.status().to_string();
        return all.ok() ? all->size() : 0;
    }

    peermq::testing::LogCapture capture_;
    Logger log_{"node", LogLevel::info, LogFormat::logfmt, capture_.sink()};
    JournalBacklog backlog_;
    std::unique_ptr<JournalPipeline> pipeline_;
    std::unique_ptr<DeadLetterStore> store_;
    const Clock::Steady now_ = peermq::testing::FakeClock::kStartSteady;
};

TEST_F(DeadLetterCountsTest, PutsTakesAndPurgesKeepTheJournalsCountsAndAReopenFindsThem) {
    open();
    EXPECT_TRUE(store_->counts().empty());
    const DeadLetter first = dead_letter("orders", "rejected", 10);
    store_->put(first, now_);
    store_->put(dead_letter("orders", "rejected", 20), now_);
    store_->put(dead_letter("orders", "max_attempts", 30), now_);
    start_commit();  // these three on disk meanwhile; the next two stay buffered
    store_->put(dead_letter("mail", "rejected", 40), now_);
    const DeadLetter mail_attempts = dead_letter("mail", "max_attempts", 50);
    store_->put(mail_attempts, now_);
    EXPECT_EQ(store_->counts(), (Counts{{"orders", {{"rejected", 2}, {"max_attempts", 1}}},
                                        {"mail", {{"rejected", 1}, {"max_attempts", 1}}}}));

    // A take (a replay) waits for the commit in flight and takes the letter off its reason.
    auto taken = store_->take(first.id, now_);
    ASSERT_TRUE(taken.ok()) << taken.status().to_string();
    EXPECT_EQ(store_->counts(), (Counts{{"orders", {{"rejected", 1}, {"max_attempts", 1}}},
                                        {"mail", {{"rejected", 1}, {"max_attempts", 1}}}}));
    EXPECT_EQ(store_->take(first.id, now_).status().code(), ErrorCode::not_found);
    EXPECT_EQ(store_->counts().at("orders").at("rejected"), 1u) << "a take of nothing took one";

    // A purge by a filter: what reaches 0 is gone, not listed as 0.
    auto purged = store_->purge(filter(std::string("mail"), std::string("rejected")), now_);
    ASSERT_TRUE(purged.ok()) << purged.status().to_string();
    EXPECT_EQ(purged.value(), 1u);
    const Counts left{{"orders", {{"rejected", 1}, {"max_attempts", 1}}},
                      {"mail", {{"max_attempts", 1}}}};
    EXPECT_EQ(store_->counts(), left);
    ASSERT_EQ(store_->purge(filter(std::string("mail")), now_).value(), 1u);
    const Counts orders_only{{"orders", {{"rejected", 1}, {"max_attempts", 1}}}};
    EXPECT_EQ(store_->counts(), orders_only);
    EXPECT_EQ(store_->purge(filter(std::string("mail")), now_).value(), 0u);
    EXPECT_EQ(store_->counts(), orders_only);
    EXPECT_EQ(listed(), 2u);
    store_->recount(now_);
    EXPECT_EQ(store_->counts(), orders_only) << "counted again, the table says the same";

    // A letter put and not yet committed when the node closes is committed by close().
    store_->put(dead_letter("refunds", "expired", 60), now_);
    close();
    open();
    EXPECT_EQ(store_->counts(), (Counts{{"orders", {{"rejected", 1}, {"max_attempts", 1}}},
                                        {"refunds", {{"expired", 1}}}}));
    EXPECT_EQ(listed(), 3u);
}

TEST_F(DeadLetterCountsTest, OutboxRowsTheLoadMovesToTheDeadLettersCountAsCorrupt) {
    {
        auto journal = open_journal();
        ASSERT_NE(journal, nullptr);
        journal->outbox_put(peermq::testing::outbox_record(1, "orders"));
        journal->outbox_put(peermq::testing::outbox_record(2, "orders"));
        journal->dead_letter_put(dead_letter("orders", "expired", 10));
        ASSERT_TRUE(journal->commit().ok());
    }
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("UPDATE outbox SET payload = X'00' WHERE seq = 1"), SQLITE_OK);
    }
    // The node makes the store, then loads its outbox.
    open();
    EXPECT_EQ(store_->counts(), (Counts{{"orders", {{"expired", 1}}}}));
    auto loaded = pipeline_->journal().outbox_load();
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    ASSERT_EQ(loaded->size(), 1u);
    ASSERT_EQ(pipeline_->journal().quarantined().size(), 1u);
    const Counts with_corrupt{{"orders", {{"expired", 1}, {"corrupt", 1}}}};
    EXPECT_EQ(store_->counts(), with_corrupt);
    EXPECT_EQ(store_->counts(), with_corrupt) << "counted once";
    store_->recount(now_);
    EXPECT_EQ(store_->counts(), with_corrupt);

    // The quarantined letter is never handed out for replay; it stays, and so does its count.
    const MessageId corrupt_id = pipeline_->journal().quarantined().front().id;
    EXPECT_EQ(store_->take(corrupt_id, now_).status().code(), ErrorCode::corrupt_journal);
    EXPECT_EQ(store_->counts(), with_corrupt);
    close();
    open();
    EXPECT_EQ(store_->counts(), with_corrupt);
}

TEST_F(DeadLetterCountsTest, ADamagedLetterRefusedForReplayMovesToCorrupt) {
    open();
    const DeadLetter letter = dead_letter("orders", "rejected", 10);
    store_->put(letter, now_);
    store_->put(dead_letter("orders", "rejected", 20), now_);
    store_->recount(now_);  // commits both
    EXPECT_EQ(store_->counts(), (Counts{{"orders", {{"rejected", 2}}}}));
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("UPDATE dead_letters SET payload = X'00' WHERE last_failure_ms = 10"),
                  SQLITE_OK);
    }
    auto taken = store_->take(letter.id, now_);
    ASSERT_FALSE(taken.ok()) << "a damaged letter was handed out";
    EXPECT_EQ(taken.status().code(), ErrorCode::corrupt_journal);
    EXPECT_EQ(store_->counts(), (Counts{{"orders", {{"rejected", 1}, {"corrupt", 1}}}}));
}

TEST_F(DeadLetterCountsTest, ACountThatCannotBeReadKeepsTheCountsAndSaysSo) {
    open();
    store_->put(dead_letter("orders", "rejected", 10), now_);
    store_->recount(now_);
    const Counts before{{"orders", {{"rejected", 1}}}};
    ASSERT_EQ(store_->counts(), before);
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("ALTER TABLE dead_letters RENAME TO hidden_letters"), SQLITE_OK);
    }
    store_->recount(now_);
    EXPECT_EQ(store_->counts(), before);
    EXPECT_EQ(capture_.count("could not count the dead letters; the counts stay as they were"), 1u);
    EXPECT_FALSE(store_->purge(filter(std::string("orders")), now_).ok());
    EXPECT_EQ(store_->counts(), before);
    {
        RawDb raw(db_);
        ASSERT_EQ(raw.exec("ALTER TABLE hidden_letters RENAME TO dead_letters"), SQLITE_OK);
    }
    ASSERT_EQ(store_->purge(filter(std::string("orders")), now_).value(), 1u);
    EXPECT_TRUE(store_->counts().empty());
}

TEST(DeadLetterCountsMemory, AtItsLimitTheDroppedOldestLetterIsTakenOff) {
    DeadLetterStore store(nullptr, 3);
    const Clock::Steady now{};
    store.put(dead_letter("a", "rejected", 1), now);
    store.put(dead_letter("a", "rejected", 2), now);
    store.put(dead_letter("b", "expired", 3), now);
    EXPECT_EQ(store.counts(), (Counts{{"a", {{"rejected", 2}}}, {"b", {{"expired", 1}}}}));

    const DeadLetter c = dead_letter("c", "max_attempts", 4);
    EXPECT_FALSE(store.put(c, now)) << "full: the oldest made room";
    EXPECT_EQ(
        store.counts(),
        (Counts{{"a", {{"rejected", 1}}}, {"b", {{"expired", 1}}}, {"c", {{"max_attempts", 1}}}}));
    EXPECT_FALSE(store.put(dead_letter("d", "rejected", 5), now));
    EXPECT_EQ(
        store.counts(),
        (Counts{{"b", {{"expired", 1}}}, {"c", {{"max_attempts", 1}}}, {"d", {{"rejected", 1}}}}));

    ASSERT_TRUE(store.take(c.id, now).ok());
    EXPECT_EQ(store.counts(), (Counts{{"b", {{"expired", 1}}}, {"d", {{"rejected", 1}}}}));
    EXPECT_EQ(store.purge(filter({}, std::string("expired")), now).value(), 1u);
    const Counts left{{"d", {{"rejected", 1}}}};
    EXPECT_EQ(store.counts(), left);
    store.recount(now);
    EXPECT_EQ(store.counts(), left);
    EXPECT_EQ(store.purge({}, now).value(), 1u);
    EXPECT_TRUE(store.counts().empty());
}

NodeStats stats_reply_round_trip(const NodeStats& stats, std::size_t* bytes = nullptr) {
    msgpack::sbuffer buffer;
    encode_ok_reply(stats, buffer);
    if (bytes != nullptr) *bytes = buffer.size();
    auto decoded = decode_stats_reply(buffer.data(), buffer.size());
    EXPECT_TRUE(decoded.ok()) << decoded.status().to_string();
    return decoded.ok() ? std::move(decoded).value() : NodeStats{};
}

TEST(DeadLetterCountsInAStatsReply, AreReadBackAsWritten) {
    NodeStats stats;
    stats.dead_letters = {{"orders", {{"max_attempts", 3}, {"rejected", 1}}},
                          {"mail \"x\"", {{"corrupt", 70000}}}};
    EXPECT_EQ(stats_reply_round_trip(stats).dead_letters, stats.dead_letters);
    EXPECT_TRUE(stats_reply_round_trip(NodeStats{}).dead_letters.empty());
}

TEST(DeadLetterCountsInAStatsReply, ListTheFirstQueuesAndReasonsWithinTheReplysBounds) {
    NodeStats stats;
    const std::size_t queues = control::kMaxReplyDeadLetterQueues + 10;
    const std::size_t reasons = control::kMaxReplyDeadLetterReasons + 4;
    for (std::size_t q = 0; q < queues; ++q) {
        char name[16];
        std::snprintf(name, sizeof name, "q%05zu", q);
        for (std::size_t r = 0; r < reasons; ++r) {
            stats.dead_letters[name]["reason-" + std::to_string(100 + r)] = r + 1;
        }
    }
    std::size_t bytes = 0;
    const NodeStats read = stats_reply_round_trip(stats, &bytes);
    EXPECT_LE(bytes, kMaxReplyBytes);
    ASSERT_EQ(read.dead_letters.size(), control::kMaxReplyDeadLetterQueues);
    EXPECT_EQ(read.dead_letters.begin()->first, stats.dead_letters.begin()->first);
    for (const auto& [queue, by_reason] : read.dead_letters) {
        ASSERT_EQ(by_reason.size(), control::kMaxReplyDeadLetterReasons) << queue;
        EXPECT_EQ(by_reason.begin()->second, 1u) << "the first reasons are listed";
    }

    // A reply whose lists used up their budget still stays within kMaxReplyBytes: the counts
    // come last and take what is left.
    for (int i = 0; i < 300; ++i) {
        PeerInfo peer;
        peer.name = "peer-" + std::to_string(i);
        peer.inbox_endpoint = std::string(3000, 'e');
        for (int n = 0; n < 64; ++n)
            peer.queues.push_back(std::string(40, 'q') + std::to_string(n));
        stats.peers.push_back(std::move(peer));
    }
    const NodeStats crowded = stats_reply_round_trip(stats, &bytes);
    EXPECT_LE(bytes, kMaxReplyBytes);
    EXPECT_GT(crowded.peers_omitted, 0u) << "the peers filled the reply";
    EXPECT_LT(crowded.dead_letters.size(), control::kMaxReplyDeadLetterQueues);
}

}  // namespace
}  // namespace peermq::detail
