// How much a sender crash loses under group_commit (guarantees.md, "sender crash"): what send()
// accepted but the journal had not committed. NodeOptions::max_uncommitted (20 000 records) and
// max_commit_lag (200 ms) bound it: past them send() waits for the disk. The producer is frozen
// (SIGSTOP) mid-burst, so that every send() that returned has said so, then killed (SIGKILL).
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "fault_support.hpp"
#include "storage/journal.hpp"

namespace peermq::fault {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

TEST(CommitLag, AProducerKilledMidBurstLosesAtMostTheJournalsBacklogBound) {
    const std::uint64_t kBound = NodeOptions{}.max_uncommitted;
    constexpr std::uint64_t kProgress = 100;
    constexpr std::uint64_t kKillAfter = 150'000;
    TempDir dir;
    const std::string data_dir = dir.file("producer-data");
    std::vector<std::pair<std::uint64_t, SteadyTime>> progress;  // SENT lines, when read
    SteadyTime frozen{};
    {
        TestNode producer({"--name", "producer", "--interface", "lo", "--data-dir", data_dir,
                           "--durability", "group_commit", "--produce", "jobs", "--count", "1",
                           "--then-count", "1000000", "--progress-every", std::to_string(kProgress),
                           "--max-length", "2000000"});
        ASSERT_TRUE(producer.ready());
        ASSERT_TRUE(producer.process().read_line("FLUSHED 1", 60s));
        while (progress.empty() || progress.back().first < kKillAfter) {
            auto line = producer.process().read_line("SENT ", 60s);
            ASSERT_TRUE(line.has_value()) << "the producer stopped sending";
            progress.emplace_back(std::stoull(*line), std::chrono::steady_clock::now());
        }
        producer.kill(SIGSTOP);
        frozen = std::chrono::steady_clock::now();
        // What it printed before it froze: every send() that returned, to within kProgress.
        while (auto line = producer.process().read_line("SENT ", 300ms)) {
            progress.emplace_back(std::stoull(*line), frozen);
        }
        producer.kill(SIGKILL);
        producer.process().wait();
    }
    auto journal = detail::Journal::open(data_dir, Durability::group_commit,
                                         detail::JournalOpenMode::existing);
    ASSERT_TRUE(journal.ok()) << journal.status().to_string();
    auto outbox = journal.value()->outbox_load();
    ASSERT_TRUE(outbox.ok()) << outbox.status().to_string();
    const std::uint64_t survived = outbox.value().size();  // a prefix: commits keep send order
    const std::uint64_t returned = 1 + progress.back().first;
    ASSERT_GE(returned + kProgress, survived);
    const std::uint64_t lost = returned > survived ? returned - survived : 0;
    // How long before the freeze the first lost message was sent: the window in time.
    SteadyTime first_lost_sent = frozen;
    for (const auto& [sent, when] : progress) {
        if (1 + sent > survived) {
            first_lost_sent = when;
            break;
        }
    }
    const auto window_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(frozen - first_lost_sent).count();
    std::printf(
        "commit lag: %llu of %llu accepted messages lost (bound %llu records), sent in "
        "the last %lld ms before the crash\n",
        static_cast<unsigned long long>(lost), static_cast<unsigned long long>(returned),
        static_cast<unsigned long long>(kBound), static_cast<long long>(window_ms));
    RecordProperty("lost", static_cast<int>(lost));
    RecordProperty("window_ms", static_cast<int>(window_ms));
    EXPECT_LE(lost, kBound + kProgress);
}

}  // namespace
}  // namespace peermq::fault
