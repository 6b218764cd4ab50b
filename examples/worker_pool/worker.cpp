// The worker pool, part two: a worker takes tasks from the "tasks" queue and sends each result
// to the sink on the "results" queue. Start as many as you like; each gets its share.
//
//   peermq_pool_worker [--name worker-1] [common flags]
//
// Kill one (even with kill -9) while they work: the tasks it had not acknowledged go to the
// others as soon as its heartbeats stop.
#include <future>
#include <stdexcept>
#include <thread>

#include "example.hpp"
#include "task.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "");
    peermq::NodeOptions options = examples::node_options(args, "worker", "worker-pool");
    worker_pool::fast_failover(options);
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
    const std::string name = node.name();

    peermq::Queue results = node.queue("results").value();
    auto on_task = [&](peermq::Delivery& delivery) {
        const auto task = delivery.as<worker_pool::Task>();
        std::this_thread::sleep_for(std::chrono::milliseconds(task.work_ms));  // the work

        // The task is acked when this handler returns. Wait for the sink's ack of the result
        // first: were this worker killed in between, the task would be done again elsewhere
        // (a duplicate result, which the sink ignores) instead of lost.
        auto receipt = results.send_confirmed(worker_pool::Result{task.id, name, task.work_ms});
        if (receipt.wait_for(10s) != std::future_status::ready) {
            throw std::runtime_error("the sink did not take the result in 10 s");  // a nack
        }
        const auto sent = receipt.get();
        if (!sent || sent->outcome != peermq::Receipt::Outcome::acked) {
            throw std::runtime_error("the result was not delivered");  // a nack: tried again
        }
        examples::say("%s: task %d done (attempt %u)", name.c_str(), task.id,
                      delivery.message().attempt);
    };
    // prefetch 2: a worker holds at most two unacked tasks, so a fast worker gets more of them
    // and a dead one takes few with it.
    examples::check(node.consume("tasks", on_task, {.prefetch = 2}), "consume");
    examples::say("%s: up at %s, taking tasks", name.c_str(), node.address().c_str());
    stop.wait();
    examples::say("%s: stopping", name.c_str());
}
