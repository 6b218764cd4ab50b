// AckBatcher: the receiver's acks on their way back, in one batch per sender. A batch leaves
// when it holds its limit of ids (NodeOptions::ack_batch_size, but at most half the consumer's
// credit, so that the sender gets credit back while it still has some to send with), when its
// first id has waited ack_batch_interval, or when the caller forces it (the handlers are idle,
// the node closes). One batch goes as ACK frames of at most kMaxIdsPerAck ids each. A batch
// for a sender the node has no route to is dropped and counted (ack.no_route): its acks come
// again when the sender retries. Owned by the actor's thread; time comes from the caller.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "peermq/clock.hpp"
#include "peermq/uuid.hpp"
#include "wire/envelope.hpp"

namespace peermq::detail {

class AckBatcher {
public:
    using Steady = Clock::Steady;

    explicit AckBatcher(Steady::duration interval) : interval_(interval) {}

    // The ids a batch holds before it leaves, for a consumer with `prefetch` credit.
    static std::size_t limit_for(std::uint32_t prefetch, std::size_t ack_batch_size) {
        return std::clamp<std::size_t>(prefetch / 2, 1, ack_batch_size);
    }

    // Adds an ack for `sender`; true when its batch is full and should be flushed now.
    bool add(const NodeId& sender, const MessageId& id, std::size_t limit, Steady now) {
        // Outcomes come in runs from one sender: one hash lookup per run.
        if (!last_ || last_sender_ != sender) {
            last_ = &batches_[sender];
            last_sender_ = sender;
        }
        Batch& batch = *last_;
        if (batch.ids.empty()) {
            batch.first = now;
            batch.limit = limit;
        } else {
            batch.limit = std::min(batch.limit, limit);
        }
        batch.ids.push_back(id);
        ++pending_;
        return batch.ids.size() >= batch.limit;
    }

    // Sends the batches that are due (all of them when `force`): `route(sender)` gives where to
    // (null: no route), `send(where, ids)` sends one frame's worth. Returns the ids dropped for
    // want of a route.
    template <typename Route, typename Send>
    std::size_t flush(Steady now, bool force, Route&& route, Send&& send) {
        if (pending_ == 0) return 0;
        std::size_t unrouted = 0;
        for (auto it = batches_.begin(); it != batches_.end();) {
            Batch& batch = it->second;
            if (batch.ids.empty() ||
                (!force && batch.ids.size() < batch.limit && now - batch.first < interval_)) {
                ++it;
                continue;
            }
            const std::size_t n = batch.ids.size();
            pending_ -= n;
            auto* where = route(it->first);
            if (!where) {
                // A sender with no route (spoofed, or forgotten): its batch goes with it, or every
                // id that ever claimed to come from somewhere would keep an entry.
                unrouted += n;
                if (last_ == &batch) last_ = nullptr;
                it = batches_.erase(it);
                continue;
            }
            for (std::size_t start = 0; start < n; start += kMaxIdsPerAck) {
                const std::size_t count = std::min(kMaxIdsPerAck, n - start);
                send(where, std::span<const MessageId>(batch.ids.data() + start, count));
            }
            // An ack that could not be sent is not kept: the sender retries, the receiver
            // re-acks.
            batch.ids.clear();
            ++it;
        }
        return unrouted;
    }

    // The sender is gone: its batch with it.
    void forget(const NodeId& sender) {
        auto it = batches_.find(sender);
        if (it == batches_.end()) return;
        pending_ -= it->second.ids.size();
        if (last_ == &it->second) last_ = nullptr;
        batches_.erase(it);
    }

    // When the oldest batch is due by the interval.
    std::optional<Steady> next_due() const {
        if (pending_ == 0) return std::nullopt;
        std::optional<Steady> due;
        for (const auto& [sender, batch] : batches_) {
            if (batch.ids.empty()) continue;
            const Steady at = batch.first + interval_;
            if (!due || at < *due) due = at;
        }
        return due;
    }
    std::size_t pending() const { return pending_; }

private:
    struct Batch {
        std::vector<MessageId> ids;
        Steady first{};
        std::size_t limit = 0;
    };

    Steady::duration interval_;
    std::unordered_map<NodeId, Batch, UuidHash> batches_;
    Batch* last_ = nullptr;  // add()'s last batch (batches are node-based: it stays)
    NodeId last_sender_;
    std::size_t pending_ = 0;
};

}  // namespace peermq::detail
