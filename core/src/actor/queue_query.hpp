// QueueQuery: one Node::cluster_queues() call in progress. The caller's thread waits on it; the
// actor's thread fills in the peers' reports as their QUEUE_REPORTs come (docs/spec/wire.md §15).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "peermq/stats.hpp"

namespace peermq::detail {

class QueueQuery {
public:
    // The reports so far: this node's, then one per peer (answered false until it answers).
    // Set by the actor before any report can come.
    void begin(std::uint64_t seq, std::vector<NodeQueues> nodes) {
        std::lock_guard lock(mutex_);
        seq_ = seq;
        nodes_ = std::move(nodes);
        for (const auto& node : nodes_) waiting_ += node.answered || !node.error.empty() ? 0 : 1;
    }
    std::uint64_t seq() const {
        std::lock_guard lock(mutex_);
        return seq_;
    }

    // A peer's report: false when that peer was not asked or has answered already.
    bool answer(const NodeId& from, NodeQueues report) {
        {
            std::lock_guard lock(mutex_);
            NodeQueues* node = waiting_for(from);
            if (!node) return false;
            report.id = node->id;
            report.name = node->name;
            report.answered = true;
            *node = std::move(report);
            --waiting_;
        }
        answered_.notify_all();
        return true;
    }

    // Waits until every peer asked has answered or `deadline`; then those that have not are
    // marked as such. The reports.
    std::vector<NodeQueues> wait(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mutex_);
        answered_.wait_until(lock, deadline, [this] { return waiting_ == 0; });
        for (auto& node : nodes_) {
            if (!node.answered && node.error.empty()) node.error = "no answer in time";
        }
        waiting_ = 0;
        return nodes_;
    }

private:
    NodeQueues* waiting_for(const NodeId& from) {
        for (auto& node : nodes_) {
            if (node.id == from && !node.answered && node.error.empty()) return &node;
        }
        return nullptr;
    }

    mutable std::mutex mutex_;
    std::condition_variable answered_;
    std::uint64_t seq_ = 0;
    std::vector<NodeQueues> nodes_;
    std::size_t waiting_ = 0;
};

}  // namespace peermq::detail
