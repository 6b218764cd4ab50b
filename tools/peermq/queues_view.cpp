// The per-queue view of the cluster's queue reports (queues_view.hpp).
#include "queues_view.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

namespace peermq::cli {
namespace {

bool by_name(const NodeQueue& a, const NodeQueue& b) {
    return std::tie(a.name, a.id) < std::tie(b.name, b.id);
}

// The acks of (node, queue) in the earlier sample, to subtract from the later one.
using AckedBefore = std::map<std::pair<NodeId, std::string>, std::uint64_t>;

AckedBefore acked_before(const std::vector<NodeQueues>& previous) {
    AckedBefore out;
    for (const auto& node : previous) {
        if (!node.answered) continue;
        for (const auto& report : node.queues) out[{node.id, report.queue}] = report.acked;
    }
    return out;
}

// What one row gathers from its nodes' reports.
QueueRow make_row(std::string queue, std::vector<NodeQueue> nodes, const AckedBefore* before,
                  std::chrono::milliseconds elapsed) {
    QueueRow row;
    row.queue = std::move(queue);
    std::sort(nodes.begin(), nodes.end(), by_name);
    std::uint64_t acked = 0;
    for (const auto& node : nodes) {
        const QueueReport& r = node.report;
        if (r.producer) row.producers.push_back(node.name);
        if (r.consumer) row.consumers.push_back(node.name);
        row.waiting += r.waiting;
        row.in_flight += r.in_flight;
        row.dead_letters += r.dead_letters;
        row.oldest_waiting_ms = std::max(row.oldest_waiting_ms, r.oldest_waiting_ms);
        if (before == nullptr) continue;
        const auto it = before->find({node.id, row.queue});
        if (it != before->end() && r.acked >= it->second) acked += r.acked - it->second;
    }
    if (before != nullptr) {
        const double seconds = std::chrono::duration<double>(elapsed).count();
        row.acked_per_second = seconds > 0 ? static_cast<double>(acked) / seconds : 0.0;
    }
    row.nodes = std::move(nodes);
    return row;
}

Json to_json(const NodeQueue& node) {
    const QueueReport& r = node.report;
    return Json{
        {"name", node.name},
        {"id", node.id.to_string()},
        {"producer", r.producer},
        {"consumer", r.consumer},
        {"waiting", r.waiting},
        {"in_flight", r.in_flight},
        {"oldest_waiting_ms", r.oldest_waiting_ms},
        {"dead_letters", r.dead_letters},
        {"sent", r.sent},
        {"acked", r.acked},
        {"nacked", r.nacked},
        {"retried", r.retried},
        {"redelivered", r.redelivered},
        {"expired", r.expired},
        {"dead_lettered", r.dead_lettered},
        {"prefetch", r.prefetch},
        {"delivered", r.delivered},
        {"handler_errors", r.handler_errors},
    };
}

Json to_json(const QueueRow& row) {
    Json nodes = Json::array();
    for (const auto& node : row.nodes) nodes.push_back(to_json(node));
    return Json{
        {"queue", row.queue},
        {"producers", row.producers},
        {"consumers", row.consumers},
        {"waiting", row.waiting},
        {"in_flight", row.in_flight},
        {"acked_per_second", row.acked_per_second ? Json(*row.acked_per_second) : Json(nullptr)},
        {"dead_letters", row.dead_letters},
        {"oldest_waiting_ms", row.oldest_waiting_ms},
        {"nodes", std::move(nodes)},
    };
}

Json to_json(const NodeQueues& node) {
    return Json{
        {"name", node.name},         {"id", node.id.to_string()},
        {"answered", node.answered}, {"error", node.answered ? Json(nullptr) : Json(node.error)},
        {"at_ms", node.at_ms},       {"queues_omitted", node.queues_omitted},
    };
}

}  // namespace

QueuesView make_view(const std::vector<NodeQueues>& current,
                     const std::vector<NodeQueues>* previous, std::chrono::milliseconds elapsed) {
    QueuesView view;
    view.elapsed = previous != nullptr ? elapsed : std::chrono::milliseconds(0);
    std::map<std::string, std::vector<NodeQueue>> by_queue;
    for (const auto& node : current) {
        if (node.answered) {
            for (const auto& report : node.queues)
                by_queue[report.queue].push_back({node.id, node.name, report});
        }
        NodeQueues summary = node;
        summary.queues.clear();
        view.nodes.push_back(std::move(summary));
    }
    std::sort(view.nodes.begin(), view.nodes.end(), [](const NodeQueues& a, const NodeQueues& b) {
        return std::tie(a.name, a.id) < std::tie(b.name, b.id);
    });
    std::optional<AckedBefore> before;
    if (previous != nullptr) before = acked_before(*previous);
    for (auto& [queue, nodes] : by_queue) {
        view.queues.push_back(
            make_row(queue, std::move(nodes), before ? &*before : nullptr, view.elapsed));
    }
    return view;
}

std::vector<const NodeQueues*> unanswered(const QueuesView& view) {
    std::vector<const NodeQueues*> out;
    for (const auto& node : view.nodes) {
        if (!node.answered) out.push_back(&node);
    }
    return out;
}

Json to_json(const QueuesView& view) {
    Json queues = Json::array();
    for (const auto& row : view.queues) queues.push_back(to_json(row));
    Json nodes = Json::array();
    for (const auto& node : view.nodes) nodes.push_back(to_json(node));
    return Json{
        {"interval_ms", view.elapsed.count()},
        {"queues", std::move(queues)},
        {"nodes", std::move(nodes)},
    };
}

std::string format_wait(std::int64_t ms) {
    if (ms <= 0) return "-";
    const double seconds = static_cast<double>(ms) / 1000.0;
    char text[32];
    if (seconds < 60) {
        std::snprintf(text, sizeof text, "%.1fs", seconds);
    } else if (seconds < 3600) {
        std::snprintf(text, sizeof text, "%.0fm", seconds / 60);
    } else if (seconds < 86400) {
        std::snprintf(text, sizeof text, "%.0fh", seconds / 3600);
    } else {
        std::snprintf(text, sizeof text, "%.0fd", seconds / 86400);
    }
    return text;
}

std::string format_rate(std::optional<double> per_second) {
    if (!per_second) return "-";
    if (*per_second <= 0) return "0";
    char text[32];
    std::snprintf(text, sizeof text, *per_second < 100 ? "%.1f" : "%.0f", *per_second);
    return text;
}

}  // namespace peermq::cli
