// The messages of the worker pool: tasks on the "tasks" queue, results on the "results" queue.
#pragma once

#include <chrono>
#include <string>

#include <peermq/peermq.hpp>

namespace worker_pool {

struct Task {
    int id = 0;
    int work_ms = 0;  // how long the task takes
    MSGPACK_DEFINE_MAP(id, work_ms)
};

struct Result {
    int task_id = 0;
    std::string worker;
    int work_ms = 0;
    MSGPACK_DEFINE_MAP(task_id, worker, work_ms)
};

// Liveness settings shared by the pool's nodes: a killed worker is noticed within 1.5 s, and
// its unacked tasks go to the other workers at once (the defaults, 1 s and 3 s, suit a LAN).
inline void fast_failover(peermq::NodeOptions& options) {
    options.heartbeat_interval = std::chrono::milliseconds(250);
    options.peer_timeout = std::chrono::milliseconds(1500);
}

}  // namespace worker_pool
