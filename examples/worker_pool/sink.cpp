// The worker pool, part three: the sink collects the workers' results from the "results" queue.
//
//   peermq_pool_sink [--expect N] [common flags]
//
// It prints each result, says so once it has a result for each of the N tasks (ids 1..N), and
// runs until Ctrl-C. Results arrive at least once: when a worker dies after sending a result but
// before its task was acknowledged, the task is done again elsewhere and its result comes twice.
// The sink keys results by task id, so a duplicate changes nothing (an idempotent consumer).
#include <map>
#include <mutex>
#include <set>

#include "example.hpp"
#include "task.hpp"

namespace {

// What the sink has collected; the handler and main() share it.
struct Tally {
    std::mutex mutex;
    std::set<int> tasks;                   // task ids with a result
    std::map<std::string, int> by_worker;  // first results per worker
    int duplicates = 0;

    std::string summary(long expect) {
        std::string workers;
        for (const auto& [worker, count] : by_worker) {
            workers += " " + worker + "=" + std::to_string(count);
        }
        return std::to_string(tasks.size()) + " of " + std::to_string(expect) +
               " tasks have a result (" + std::to_string(duplicates) +
               " duplicates ignored); by worker:" + workers;
    }
};

}  // namespace

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "[--expect N]");
    const long expect = args.get_int("expect", 40);
    peermq::NodeOptions options = examples::node_options(args, "sink", "worker-pool");
    worker_pool::fast_failover(options);
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS

    Tally tally;
    auto on_result = [&](peermq::Delivery& delivery) {
        const auto result = delivery.as<worker_pool::Result>();
        std::lock_guard lock(tally.mutex);
        if (!tally.tasks.insert(result.task_id).second) {
            ++tally.duplicates;
            examples::say("sink: task %d again, from %s (a duplicate; ignored)", result.task_id,
                          result.worker.c_str());
            return;
        }
        ++tally.by_worker[result.worker];
        examples::say("sink: task %d from %s (%zu/%ld)", result.task_id, result.worker.c_str(),
                      tally.tasks.size(), expect);
        if (static_cast<long>(tally.tasks.size()) == expect) {
            examples::say("sink: all done: %s", tally.summary(expect).c_str());
        }
    };
    examples::check(node.consume("results", on_result), "consume");
    examples::say("sink: up at %s, expecting %ld results", node.address().c_str(), expect);

    stop.wait();
    node.close();  // no handler runs after this
    examples::say("sink: stopping: %s", tally.summary(expect).c_str());
    return static_cast<long>(tally.tasks.size()) == expect ? 0 : 1;
}
