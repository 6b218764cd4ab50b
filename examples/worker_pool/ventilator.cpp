// The worker pool, part one: the ventilator hands out tasks on the "tasks" work queue.
//
//   peermq_pool_ventilator [--tasks N] [--work-ms MS] [--workers K] [common flags]
//
// It waits until K workers are up (so that the work is spread from the start), sends N tasks,
// and exits once every task is acknowledged by a worker. A worker acknowledges a task only after
// the sink has its result, so "every task acked" means "every result is at the sink".
#include <future>
#include <thread>
#include <vector>

#include "example.hpp"
#include "task.hpp"

using namespace std::chrono_literals;

namespace {

// Workers (peers consuming "tasks") that are alive now.
std::vector<std::string> live_workers(const peermq::Node& node) {
    std::vector<std::string> names;
    for (const peermq::PeerInfo& peer : node.peers()) {
        if (peer.state != peermq::PeerState::alive) continue;
        for (const std::string& queue : peer.queues) {
            if (queue == "tasks") names.push_back(peer.name);
        }
    }
    return names;
}

}  // namespace

int main(int argc, char** argv) {
    examples::Args args(argc, argv, "[--tasks N] [--work-ms MS] [--workers K]");
    const int tasks = static_cast<int>(args.get_int("tasks", 40));
    const int work_ms = static_cast<int>(args.get_int("work-ms", 20));
    const std::size_t workers = static_cast<std::size_t>(args.get_int("workers", 1));
    peermq::NodeOptions options = examples::node_options(args, "ventilator", "worker-pool");
    worker_pool::fast_failover(options);
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
    examples::say("ventilator: up at %s; waiting for %zu workers", node.address().c_str(), workers);

    // Polling the peer table under a deadline (a PeerEvent would not say when a peer starts
    // consuming a queue).
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::vector<std::string> found = live_workers(node);
    while (found.size() < workers && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
        found = live_workers(node);
    }
    if (found.size() < workers) {
        std::fprintf(stderr, "ventilator: only %zu of %zu workers after 30 s\n", found.size(),
                     workers);
        return 1;
    }
    std::string names;
    for (const auto& name : found) names += " " + name;
    examples::say("ventilator: %zu workers ready:%s", found.size(), names.c_str());

    // at_least_once: a task whose worker dies before acking it is sent to another worker.
    peermq::Queue queue =
        node.queue("tasks", {.guarantee = peermq::Guarantee::at_least_once, .retry_initial = 100ms})
            .value();
    std::vector<std::future<peermq::Result<peermq::Receipt>>> receipts;
    for (int id = 1; id <= tasks; ++id) {
        receipts.push_back(queue.send_confirmed(worker_pool::Task{id, work_ms}));
    }
    examples::say("ventilator: sent %d tasks of %d ms each", tasks, work_ms);

    int acked = 0;
    for (auto& receipt : receipts) {
        const auto result = receipt.get();
        if (result && result->outcome == peermq::Receipt::Outcome::acked) ++acked;
    }
    const peermq::ChannelStats stats = node.stats().queues["tasks"];
    examples::say(
        "ventilator: %d of %d tasks acked; %llu redelivered from a lost worker, "
        "%llu retried",
        acked, tasks, static_cast<unsigned long long>(stats.redelivered),
        static_cast<unsigned long long>(stats.retried));
    return acked == tasks ? 0 : 1;
}
