// examples/worker_pool: a ventilator, three workers and a sink on static peers (lo). One worker
// is SIGKILLed while it holds tasks; the sink still gets a result for every task.
#include <csignal>
#include <set>

#include "examples_support.hpp"

namespace peermq::examples_test {
namespace {

constexpr int kTasks = 60;

TEST(WorkerPoolExample, SinkGetsEveryResultWhenAWorkerIsKilledMidRun) {
    const Args common = on_lo(new_cluster("pool"), /*static_peers=*/true);
    const std::string tasks = std::to_string(kTasks);
    auto sink = start("peermq_pool_sink", common + Args{"--expect", tasks});
    auto ventilator = start("peermq_pool_ventilator",
                            common + Args{"--tasks", tasks, "--work-ms", "30", "--workers", "3"});
    const std::string sink_at = endpoint_of(*sink);
    const std::string ventilator_at = endpoint_of(*ventilator);
    ASSERT_FALSE(sink_at.empty()) << sink->output();
    ASSERT_FALSE(ventilator_at.empty()) << ventilator->output();

    std::vector<std::unique_ptr<ChildProcess>> workers;
    for (const char* name : {"worker-1", "worker-2", "worker-3"}) {
        workers.push_back(
            start("peermq_pool_worker",
                  common + Args{"--name", name, "--peer", sink_at, "--peer", ventilator_at}));
    }
    ASSERT_TRUE(ventilator->wait_for_line_containing("3 workers ready", 20s))
        << ventilator->output();

    // Mid-run: worker-3 has finished a task and, with tasks left, holds more unacked ones.
    ChildProcess& victim = *workers[2];
    ASSERT_TRUE(victim.wait_for_line_containing("worker-3: task", 20s)) << victim.output();
    victim.signal(SIGKILL);
    ASSERT_EQ(victim.wait(5s), 128 + SIGKILL);
    EXPECT_FALSE(sink->wait_for_line_containing("sink: all done", 0ms))
        << "the run ended before the kill; nothing was tested\n"
        << sink->output();

    EXPECT_EQ(ventilator->wait(60s), 0) << ventilator->output();
    ASSERT_TRUE(sink->wait_for_line_containing("sink: all done", 10s)) << sink->output();

    // Each task id at least once; the distinct ones are exactly 1..kTasks.
    const auto results = captured_ints(*sink, std::regex(R"(^sink: task (\d+) )"));
    const std::set<int> distinct(results.begin(), results.end());
    std::set<int> expected;
    for (int id = 1; id <= kTasks; ++id) expected.insert(id);
    EXPECT_EQ(distinct, expected) << sink->output();

    // The kill mattered: tasks the victim held went to the others.
    const auto line = ventilator->wait_for_line_containing("tasks acked", 0ms);
    ASSERT_TRUE(line) << ventilator->output();
    std::smatch counts;
    ASSERT_TRUE(
        std::regex_search(*line, counts, std::regex(R"((\d+) redelivered .*, (\d+) retried)")))
        << *line;
    EXPECT_GE(std::stoi(counts[1].str()) + std::stoi(counts[2].str()), 1) << *line;

    sink->signal(SIGTERM);
    EXPECT_EQ(sink->wait(10s), 0) << sink->output();
    for (int i = 0; i < 2; ++i) {
        workers[i]->signal(SIGTERM);
        EXPECT_EQ(workers[i]->wait(15s), 0) << workers[i]->output();
    }
}

}  // namespace
}  // namespace peermq::examples_test
