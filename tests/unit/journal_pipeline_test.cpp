// The journal pipeline (storage/journal_pipeline.hpp) against a real SQLite journal, with time
// given by the test: when a group commit starts, what a failed one does, what send() is told
// about the backlog, and what close() says it lost.
#include "storage/journal_pipeline.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "support/fake_clock.hpp"
#include "support/log_capture.hpp"
#include "support/temp_dir.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;
using Steady = Clock::Steady;

OutboxRecord record(std::uint64_t seq, std::size_t payload_bytes = 16) {
    const std::string bytes(payload_bytes, 'x');
    return OutboxRecord{MessageId::generate(),
                        "jobs",
                        {},
                        Payload::copy_of(bytes.data(), bytes.size()),
                        0,
                        1,
                        0,
                        1,
                        seq};
}

class JournalPipelineTest : public ::testing::Test {
protected:
    void open(std::size_t max_uncommitted = 20'000, std::chrono::milliseconds lag = 200ms) {
        auto journal = Journal::open(dir.path(), Durability::group_commit);
        ASSERT_TRUE(journal) << journal.status().to_string();
        raw = journal.value().get();
        pipeline = std::make_unique<JournalPipeline>(
            std::move(journal).value(), JournalPipeline::Settings{max_uncommitted, lag}, log,
            backlog, [this](const Status& status) { errors.push_back(status); },
            [this] { ++done_notices; });
    }
    // Waits for the commit in flight (the writer thread's own pace) and ends it.
    void finish_commit() { pipeline->settle(now); }
    std::size_t on_disk() {
        auto count = raw->outbox_count();
        EXPECT_TRUE(count);
        return count ? count.value() : 0;
    }

    peermq::testing::TempDir dir{"pipeline"};
    peermq::testing::LogCapture capture;
    Logger log{"node", LogLevel::info, LogFormat::logfmt, capture.sink()};
    JournalBacklog backlog;
    std::vector<Status> errors;  // what the node's storage error was set to, in order
    std::atomic<int> done_notices{0};
    Journal* raw = nullptr;
    std::unique_ptr<JournalPipeline> pipeline;
    Steady now = peermq::testing::FakeClock::kStartSteady;
};

TEST_F(JournalPipelineTest, AGroupCommitWaitsForItsIntervalOrItsSize) {
    open();
    pipeline->outbox_put(record(1), now);
    EXPECT_EQ(pipeline->next_due(), now + JournalPipeline::kCommitInterval);
    pipeline->maybe_commit(now + 1ms, false, {});
    EXPECT_TRUE(pipeline->next_due().has_value()) << "nothing started before the interval";
    EXPECT_EQ(pipeline->uncommitted(), 1u);

    pipeline->maybe_commit(now + JournalPipeline::kCommitInterval, false, {});
    EXPECT_FALSE(pipeline->next_due().has_value()) << "a commit is in flight";
    EXPECT_EQ(pipeline->uncommitted(), 1u) << "in flight still counts as uncommitted";
    finish_commit();
    EXPECT_EQ(on_disk(), 1u);
    EXPECT_EQ(pipeline->uncommitted(), 0u);
    EXPECT_TRUE(pipeline->idle());
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_TRUE(errors[0].ok());

    // A full group goes at once, whatever the interval.
    for (std::uint64_t seq = 2; seq < 2 + JournalPipeline::kCommitRecords; ++seq) {
        pipeline->outbox_put(record(seq), now);
    }
    pipeline->maybe_commit(now, false, {});
    finish_commit();
    EXPECT_EQ(on_disk(), 1 + JournalPipeline::kCommitRecords);
}

TEST_F(JournalPipelineTest, WaitersAreAnsweredByTheCommitThatHoldsTheirRecords) {
    open();
    auto idle = std::make_shared<std::promise<Status>>();
    pipeline->when_committed(idle, {});
    EXPECT_EQ(idle->get_future().wait_for(0s), std::future_status::ready) << "nothing to wait for";

    pipeline->outbox_put(record(1), now);
    auto durable = std::make_shared<std::promise<Status>>();
    auto answer = durable->get_future();
    pipeline->wait_for_commit(durable);
    EXPECT_TRUE(pipeline->has_waiters());
    pipeline->maybe_commit(now, true, {});  // forced: someone waits
    // Registered after the commit started: it waits for the next one.
    auto late = std::make_shared<std::promise<Status>>();
    auto late_answer = late->get_future();
    pipeline->outbox_put(record(2), now);
    pipeline->wait_for_commit(late);
    finish_commit();
    ASSERT_EQ(answer.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(answer.get().ok());
    EXPECT_EQ(late_answer.wait_for(0s), std::future_status::timeout);
    pipeline->maybe_commit(now, true, {});
    finish_commit();
    EXPECT_TRUE(late_answer.get().ok());
    EXPECT_EQ(on_disk(), 2u);
}

TEST_F(JournalPipelineTest, AFailedCommitIsReportedRetriedLaterAndClearedWhenItWorks) {
    open();
    ASSERT_TRUE(raw->set_size_limit(1).ok());  // every page the commit needs is over the limit
    pipeline->outbox_put(record(1, 64 * 1024), now);
    pipeline->maybe_commit(now, true, {});
    finish_commit();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code(), ErrorCode::disk_full) << errors[0].to_string();
    EXPECT_EQ(pipeline->uncommitted(), 1u) << "the record is back in the buffer";
    EXPECT_EQ(capture.count("journal commit failed; retrying"), 1u);

    // Not before the retry interval, however often it is asked.
    EXPECT_EQ(pipeline->next_due(), now + JournalPipeline::kCommitRetry);
    pipeline->maybe_commit(now + 50ms, true, {});
    EXPECT_TRUE(pipeline->next_due().has_value()) << "no commit started during the pause";

    ASSERT_TRUE(raw->set_size_limit(0).ok());  // room again
    now += JournalPipeline::kCommitRetry;
    pipeline->maybe_commit(now, true, {});
    finish_commit();
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_TRUE(errors[1].ok()) << "the storage error is cleared by a commit that works";
    EXPECT_EQ(on_disk(), 1u);
    EXPECT_EQ(capture.count("journal writes again"), 1u);
}

TEST_F(JournalPipelineTest, TheBacklogSendSeesIsItsRecordsAndTheAgeOfTheOldest) {
    open(/*max_uncommitted=*/3, /*lag=*/200ms);
    backlog.queued = 2;  // two send()s admitted...
    pipeline->outbox_put(record(1), now);
    pipeline->outbox_put(record(2), now);
    pipeline->taken_from_backlog();  // ...and journaled
    pipeline->taken_from_backlog();
    pipeline->publish_backlog(now);
    EXPECT_EQ(backlog.records.load(), 2u);
    EXPECT_EQ(backlog.queued.load(), 0u);
    EXPECT_FALSE(backlog.full(3));
    EXPECT_FALSE(backlog.too_old.load());
    pipeline->publish_backlog(now + 200ms);
    EXPECT_TRUE(backlog.too_old.load()) << "the oldest record waited max_commit_lag";
    EXPECT_TRUE(backlog.full(3));

    pipeline->maybe_commit(now + 200ms, true, {});
    finish_commit();
    pipeline->publish_backlog(now + 200ms);
    EXPECT_EQ(backlog.records.load(), 0u);
    EXPECT_FALSE(backlog.too_old.load());
}

TEST_F(JournalPipelineTest, CloseSaysHowManyMessagesItCouldNotWrite) {
    open();
    ASSERT_TRUE(raw->set_size_limit(1).ok());
    for (std::uint64_t seq = 1; seq <= 3; ++seq) pipeline->outbox_put(record(seq, 8192), now);
    peermq::testing::FakeClock clock;
    // Deadline already passed: one try, no waiting.
    const Status lost = pipeline->commit_for_close(clock, clock.steady_now(), {});
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.code(), ErrorCode::disk_full);
    EXPECT_NE(lost.message().find("3 messages handed to send() were not written"),
              std::string::npos)
        << lost.message();
    EXPECT_EQ(capture.count("closing with messages not on disk"), 1u);

    ASSERT_TRUE(raw->set_size_limit(0).ok());
    EXPECT_TRUE(pipeline->commit_for_close(clock, clock.steady_now(), {}).ok());
    EXPECT_EQ(on_disk(), 3u);
}

}  // namespace
}  // namespace peermq::detail
