// Signals in the application's process. A profiler's SIGPROF, a timer's SIGALRM, SIGCHLD, a
// SIGUSR1 that rotates logs: whichever thread a signal lands on, the system call it is in returns
// EINTR, and libzmq then fails a send, a receive, a connect or a poll with EINTR — a non-blocking
// one too (a pending signal makes even a poll with no timeout return EINTR). Here every thread of
// the process is sent a signal every millisecond while a producer sends to a consumer: both nodes
// carry on, every message is acked and handled, and nothing is counted as dropped or as a
// thread's error. (Found by the node fuzz target, whose libFuzzer sends itself a SIGALRM every
// minute: its own receive threw EINTR; the node's actor did the same, and stopped the node.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using namespace peermq::testing;

namespace {

std::atomic<std::uint64_t> g_delivered{0};

void on_signal(int) { g_delivered.fetch_add(1, std::memory_order_relaxed); }

// Sends SIGUSR1 to every other thread of this process every millisecond until destroyed. The
// handler is installed without SA_RESTART, as a profiler's or a timer's usually is.
class SignalStorm {
public:
    SignalStorm() {
        struct sigaction action {};
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        ::sigaction(SIGUSR1, &action, &previous_);
        thread_ = std::thread([this] { run(); });
    }
    ~SignalStorm() {
        stop_ = true;
        thread_.join();
        ::sigaction(SIGUSR1, &previous_, nullptr);
    }
    SignalStorm(const SignalStorm&) = delete;
    SignalStorm& operator=(const SignalStorm&) = delete;

private:
    void run() {
        const pid_t self = static_cast<pid_t>(::syscall(SYS_gettid));
        while (!stop_) {
            for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
                const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
                if (tid != self) (void)::syscall(SYS_tgkill, ::getpid(), tid, SIGUSR1);
            }
            std::this_thread::sleep_for(1ms);  // the storm's pace, not a synchronization
        }
    }

    struct sigaction previous_ {};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// What would say a node was hurt: drops of a frame or inside the actor, errors caught on a
// thread. Appended to `why`.
void problems(const peermq::NodeStats& stats, std::string& why) {
    for (const auto& [reason, count] : stats.dropped) {
        if (count > 0 && (reason.starts_with("internal.") || reason.starts_with("frame."))) {
            why += stats.name + " dropped " + std::to_string(count) + " " + reason + "; ";
        }
    }
    for (const auto& [where, count] : stats.thread_errors) {
        if (count > 0) {
            why += stats.name + " caught " + std::to_string(count) + " in " + where + "; ";
        }
    }
}

}  // namespace

TEST(Signals, NodesCarryOnWhileEveryThreadIsInterruptedBySignals) {
    // Rounds of 2 000 messages until the storm has delivered this many signals (~10 s here), or
    // for 60 s on a slower build (sanitizers); at least kEnough of them, or the test proves
    // nothing.
    constexpr std::uint64_t kSignals = 40'000;
    constexpr std::uint64_t kEnough = 5'000;
    constexpr int kRound = 2'000;
    std::mutex mutex;
    std::multiset<int> handled;
    auto consumer = make_node({.name = "consumer", .interface = "lo"});
    auto producer =
        make_node({.name = "producer", .interface = "lo", .peers = {consumer.address()}});
    ASSERT_TRUE(consumer
                    .consume("signalled",
                             [&](peermq::Delivery& d) {
                                 std::lock_guard lock(mutex);
                                 handled.insert(d.as<int>());
                             })
                    .ok());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"consumer"}, "signalled"); }, 10s));
    auto queue = producer.queue("signalled", {.guarantee = peermq::Guarantee::at_least_once});
    ASSERT_TRUE(queue.ok()) << queue.status().to_string();

    int sent = 0;
    const std::uint64_t before = g_delivered.load();
    {
        SignalStorm storm;
        const auto end = std::chrono::steady_clock::now() + 60s;
        while (g_delivered.load() - before < kSignals && std::chrono::steady_clock::now() < end) {
            std::vector<std::future<peermq::Result<peermq::Receipt>>> receipts;
            receipts.reserve(kRound);
            for (int i = 0; i < kRound; ++i) receipts.push_back(queue->send_confirmed(sent++));
            for (auto& receipt : receipts) {
                ASSERT_EQ(receipt.wait_for(60s), std::future_status::ready)
                    << "no receipt within 60 s; the producer's queue: "
                    << describe(producer.stats().queues["signalled"]);
                auto result = receipt.get();
                ASSERT_TRUE(result.ok()) << result.status().to_string();
                ASSERT_EQ(result->outcome, peermq::Receipt::Outcome::acked) << result->reason;
            }
        }
    }

    EXPECT_GE(g_delivered.load() - before, kEnough) << "the storm was too weak to show anything";

    const peermq::NodeStats p = producer.stats();
    const peermq::NodeStats c = consumer.stats();
    EXPECT_EQ(p.id, producer.id()) << "the producer failed";
    EXPECT_EQ(c.id, consumer.id()) << "the consumer failed";
    std::string why;
    problems(p, why);
    problems(c, why);
    EXPECT_TRUE(why.empty()) << why;
    std::lock_guard lock(mutex);
    for (int i = 0; i < sent; ++i) ASSERT_GE(handled.count(i), 1u) << i;
    const auto queued = p.queues.at("signalled");
    EXPECT_LE(handled.size() - static_cast<std::size_t>(sent), queued.retried + queued.redelivered);
}
