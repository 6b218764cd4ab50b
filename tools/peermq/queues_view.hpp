// What `peermq queues` and `peermq top` show: the reports of the cluster's nodes
// (Node::cluster_queues) gathered per queue, and the acked rate between two samples. Pure
// functions of the reports, without the tool's node or its output, so that the tests can check
// them on reports they make up.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peermq/stats.hpp"

namespace peermq::cli {

using Json = nlohmann::json;

// One node's report of one queue, with the node it came from.
struct NodeQueue {
    NodeId id;
    std::string name;
    QueueReport report;
};

// One queue over the nodes that answered.
struct QueueRow {
    std::string queue;
    std::vector<std::string> producers;  // names of the nodes that report it as producer, sorted
    std::vector<std::string> consumers;  // and as consumer
    std::uint64_t waiting = 0;           // sums over the nodes
    std::uint64_t in_flight = 0;
    std::uint64_t dead_letters = 0;
    std::int64_t oldest_waiting_ms = 0;  // the oldest of the nodes' oldest; 0: nothing waits
    // Acks per second between the two samples; nullopt with one sample only.
    std::optional<double> acked_per_second;
    std::vector<NodeQueue> nodes;  // by name, then id
};

// The cluster's queues at the later of two samples.
struct QueuesView {
    std::vector<QueueRow> queues;          // by name
    std::vector<NodeQueues> nodes;         // every node asked, by name then id (queues left empty)
    std::chrono::milliseconds elapsed{0};  // between the two samples; 0 with one sample
};

// The view of `current`, with the acked rate since `previous` taken `elapsed` before (none
// without `previous`). A node's acks count toward the rate only when it answered both times and
// reported the queue both times: a node that joined or left meanwhile, or a queue it started
// reporting, contributes nothing, since its counters started before the first sample. A counter
// that went down (the node restarted with the same key) contributes nothing either.
QueuesView make_view(const std::vector<NodeQueues>& current,
                     const std::vector<NodeQueues>* previous = nullptr,
                     std::chrono::milliseconds elapsed = std::chrono::milliseconds(0));

// The nodes that did not answer.
std::vector<const NodeQueues*> unanswered(const QueuesView& view);

// `--json` of both commands (docs/cli.md, "queues").
Json to_json(const QueuesView& view);

// The age of the oldest waiting message as a column shows it: "-" for none, "0.4s", "3.2s",
// "12m", "2h", "3d".
std::string format_wait(std::int64_t ms);
// Acks per second: "-" without a rate, "0", "0.5", "12.3", "4521".
std::string format_rate(std::optional<double> per_second);

}  // namespace peermq::cli
