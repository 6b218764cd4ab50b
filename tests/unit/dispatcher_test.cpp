// Dispatcher: outcomes leave as each handler returns, handlers of one slot run in order, and
// a hung handler holds back no outcome of a message handled before it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "dispatch/dispatcher.hpp"
#include "peermq/msgpack.hpp"
#include "support/log_capture.hpp"
#include "support/wait.hpp"

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

template <typename Condition>
bool testing_wait(Condition&& condition) {
    return peermq::testing::wait_until(std::forward<Condition>(condition), 5s);
}

// Plays the actor: takes the outcomes whenever the dispatcher wakes it.
struct Outcomes {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<HandlerOutcome> got;
    Dispatcher* dispatcher = nullptr;
    std::atomic<int> wakes{0};

    Dispatcher::OutcomeSink sink() {
        return [this] {
            ++wakes;
            std::vector<HandlerOutcome> taken;
            dispatcher->take_outcomes(taken);
            std::lock_guard lock(mutex);
            for (auto& o : taken) got.push_back(std::move(o));
            changed.notify_all();
        };
    }
    bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, timeout, [&] { return got.size() >= n; });
    }
    std::size_t size() {
        std::lock_guard lock(mutex);
        return got.size();
    }
};

std::vector<std::pair<std::uint32_t, Job>> jobs_for(std::uint32_t slot, int n) {
    std::vector<std::pair<std::uint32_t, Job>> jobs;
    for (int i = 0; i < n; ++i) {
        Job job;
        job.message.id = MessageId::generate();
        job.message.payload = Payload::encode(i);
        jobs.emplace_back(slot, std::move(job));
    }
    return jobs;
}

TEST(Dispatcher, AHungHandlerDoesNotHoldTheOutcomesOfMessagesHandledBeforeIt) {
    Outcomes outcomes;
    Dispatcher dispatcher(1, outcomes.sink());
    outcomes.dispatcher = &dispatcher;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    const std::uint32_t slot = dispatcher.add_consumer(
        [released](Delivery& d) {
            if (d.as<int>() == 3) released.wait();  // message 3 hangs until the test says
        },
        1);
    auto jobs = jobs_for(slot, 10);
    dispatcher.submit(jobs);
    // 0, 1 and 2 are done: their outcomes must reach the actor while 3 still runs.
    EXPECT_TRUE(outcomes.wait_for(3)) << outcomes.size();
    EXPECT_EQ(outcomes.size(), 3u);
    EXPECT_FALSE(dispatcher.idle());
    release.set_value();
    EXPECT_TRUE(outcomes.wait_for(10));
    dispatcher.stop();
}

TEST(Dispatcher, OutcomesKeepArrivalOrderAtConcurrencyOne) {
    Outcomes outcomes;
    Dispatcher dispatcher(2, outcomes.sink());
    outcomes.dispatcher = &dispatcher;
    const std::uint32_t slot = dispatcher.add_consumer(
        [](Delivery& d) {
            const int i = d.as<int>();
            if (i % 7 == 0) throw std::runtime_error("seven");
            if (i % 11 == 0) d.reject("eleven");
        },
        1);
    auto jobs = jobs_for(slot, 200);
    std::vector<MessageId> ids;
    for (const auto& [s, job] : jobs) ids.push_back(job.message.id);
    dispatcher.submit(jobs);
    ASSERT_TRUE(outcomes.wait_for(200));
    std::lock_guard lock(outcomes.mutex);
    ASSERT_EQ(outcomes.got.size(), 200u);
    for (int i = 0; i < 200; ++i) {
        const HandlerOutcome& o = outcomes.got[static_cast<std::size_t>(i)];
        EXPECT_EQ(o.id, ids[static_cast<std::size_t>(i)]);
        if (i % 7 == 0) {
            EXPECT_EQ(o.result, HandlerOutcome::Result::nack);
            EXPECT_EQ(o.error, "seven");
        } else if (i % 11 == 0) {
            EXPECT_EQ(o.result, HandlerOutcome::Result::reject);
            EXPECT_EQ(o.error, "eleven");
        } else {
            EXPECT_EQ(o.result, HandlerOutcome::Result::ack);
        }
    }
    EXPECT_EQ(dispatcher.handler_errors(slot), 29u);  // multiples of 7 in [0, 200)
    EXPECT_TRUE(dispatcher.idle());
    EXPECT_EQ(dispatcher.pending(slot), 0u);
}

TEST(Dispatcher, OutcomesWaitingForTheActorCostOneWakeUp) {
    std::atomic<int> wakes{0};
    Dispatcher dispatcher(2, [&] { ++wakes; });
    std::atomic<int> handled{0};
    const std::uint32_t slot = dispatcher.add_consumer([&](Delivery&) { ++handled; }, 4);
    auto jobs = jobs_for(slot, 100);
    dispatcher.submit(jobs);
    ASSERT_TRUE(testing_wait([&] { return handled.load() == 100; }));
    dispatcher.stop();           // joins the threads: every outcome is in the outbox
    EXPECT_EQ(wakes.load(), 1);  // the actor has not taken the first yet: no more wake-ups
    std::vector<HandlerOutcome> taken;
    dispatcher.take_outcomes(taken);
    EXPECT_EQ(taken.size(), 100u);
    dispatcher.take_outcomes(taken);
    EXPECT_TRUE(taken.empty());
}

TEST(Dispatcher, UnreportedJobsAreCountedAndOnlyTheirFailuresReachTheActor) {
    // Remote best-effort messages: nothing to settle, so only a failure (for the log) comes back.
    Outcomes outcomes;
    Dispatcher dispatcher(2, outcomes.sink());
    outcomes.dispatcher = &dispatcher;
    const std::uint32_t slot = dispatcher.add_consumer(
        [](Delivery& d) {
            if (d.as<int>() % 10 == 0) throw std::runtime_error("tens");
        },
        1);
    auto jobs = jobs_for(slot, 100);
    for (auto& [s, job] : jobs) job.report = false;
    dispatcher.submit(jobs);
    ASSERT_TRUE(testing_wait([&] { return dispatcher.idle(); }));
    EXPECT_EQ(dispatcher.handled(slot), 100u);
    EXPECT_EQ(dispatcher.handler_errors(slot), 10u);
    ASSERT_TRUE(outcomes.wait_for(10));
    dispatcher.stop();
    std::lock_guard lock(outcomes.mutex);
    ASSERT_EQ(outcomes.got.size(), 10u);
    for (const HandlerOutcome& o : outcomes.got) {
        EXPECT_EQ(o.result, HandlerOutcome::Result::nack);
        EXPECT_EQ(o.error, "tens");
    }
}

// The sink wakes the actor; one that throws (here a non-std exception) must not end the pool
// thread it runs on: the outcome waits in the outbox, the next one wakes the actor again, and
// the failure is counted and logged at error.
TEST(Dispatcher, ASinkThatThrowsEndsNoThreadAndTheNextOutcomeWakesAgain) {
    testing::LogCapture capture;
    Logger log("node-a", LogLevel::warn, LogFormat::logfmt, capture.sink());
    Outcomes outcomes;
    std::atomic<int> calls{0};
    auto inner = outcomes.sink();
    Dispatcher dispatcher(
        1,
        [&] {
            if (++calls == 1) throw 42;
            inner();
        },
        &log);
    outcomes.dispatcher = &dispatcher;
    const std::uint32_t slot = dispatcher.add_consumer([](Delivery&) {}, 1);
    auto first = jobs_for(slot, 1);
    dispatcher.submit(first);
    ASSERT_TRUE(testing_wait([&] { return calls == 1 && dispatcher.idle(); }));
    auto second = jobs_for(slot, 1);
    dispatcher.submit(second);
    ASSERT_TRUE(outcomes.wait_for(2));
    EXPECT_EQ(dispatcher.handled(slot), 2u);

    std::map<std::string, std::uint64_t> errors;
    dispatcher.add_thread_errors(errors);
    EXPECT_EQ(errors, (std::map<std::string, std::uint64_t>{{"dispatcher", 1}}));
    const auto record =
        capture.find("exception caught in a dispatcher thread", {{"where", "the outcome sink"}});
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->level, LogLevel::error);
    EXPECT_NE(record->find("error")->value.find("not derived from std::exception"),
              std::string::npos);
    dispatcher.stop();
}

// A peer event handler (a posted task) that throws is counted and logged; the tasks after it
// run.
TEST(Dispatcher, APeerEventHandlerThatThrowsIsCountedAndLogged) {
    testing::LogCapture capture;
    Logger log("node-a", LogLevel::warn, LogFormat::logfmt, capture.sink());
    Dispatcher dispatcher(
        2, [] {}, &log);
    std::atomic<int> ran{0};
    dispatcher.post([] { throw 42; });
    dispatcher.post([] { throw std::runtime_error("no such peer"); });
    dispatcher.post([&] { ++ran; });
    ASSERT_TRUE(testing_wait([&] { return ran == 1 && dispatcher.idle(); }));
    std::map<std::string, std::uint64_t> errors;
    dispatcher.add_thread_errors(errors);
    EXPECT_EQ(errors, (std::map<std::string, std::uint64_t>{{"peer_event_handler", 2}}));
    EXPECT_EQ(capture.count("peer event handler threw"), 2u);
    EXPECT_TRUE(capture.find("peer event handler threw", {{"error", "no such peer"}}));
    dispatcher.stop();
}

}  // namespace
}  // namespace peermq::detail
