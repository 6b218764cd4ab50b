// AckBatcher: the receiver's acks on their way back, in one batch per sender. A batch leaves
// when it holds its limit of ids (NodeOptions::ack_batch_size, but at most half the consumer's
// credit, so that the sender gets credit back while it still has some to send with), when its
// first id has waited ack_batch_interval, or when the caller forces it (the handlers are idle,
// the node closes). One batch goes as ACK frames of at most kMaxIdsPerAck ids each. A batch
// for a sender the node has no route to is dropped and counted (ack.no_route): its acks come
// again when the sender retries. A batch whose link takes no frame (not connected yet, or full)
// is held, up to kMaxHeld ids, and tried again at every flush: a sender whose own link to this
// node came back first (a healed partition) gets its acks as soon as this node's link to it
// connects, instead of retrying each message elsewhere after its ack timeout. Owned by the
// actor's thread; time comes from the caller.
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

    // The ids held for one sender whose link takes nothing; past it the oldest go, counted with
    // the unrouted (the sender retries them). 8 192 ids: 128 KiB a peer.
    static constexpr std::size_t kMaxHeld = 4 * kMaxIdsPerAck;

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

    // Sends the batches that are due (all of them when `force`), and every held one:
    // `route(sender)` gives where to (null: no route), `send(where, ids)` sends one frame's
    // worth, false when the link took nothing (the rest of the batch is then held). Returns the
    // ids dropped: for want of a route, or past kMaxHeld.
    template <typename Route, typename Send>
    std::size_t flush(Steady now, bool force, Route&& route, Send&& send) {
        if (pending_ == 0) return 0;
        std::size_t dropped = 0;
        for (auto it = batches_.begin(); it != batches_.end();) {
            Batch& batch = it->second;
            if (batch.ids.empty() || (!batch.held && !force && batch.ids.size() < batch.limit &&
                                      now - batch.first < interval_)) {
                ++it;
                continue;
            }
            auto* where = route(it->first);
            if (!where) {
                // A sender with no route (spoofed, or forgotten): its batch goes with it, or every
                // id that ever claimed to come from somewhere would keep an entry.
                dropped += batch.ids.size();
                pending_ -= batch.ids.size();
                if (last_ == &batch) last_ = nullptr;
                it = batches_.erase(it);
                continue;
            }
            const std::size_t n = batch.ids.size();
            std::size_t sent = 0;
            while (sent < n) {
                const std::size_t count = std::min(kMaxIdsPerAck, n - sent);
                if (!send(where, std::span<const MessageId>(batch.ids.data() + sent, count))) break;
                sent += count;
            }
            std::size_t gone = sent;
            if (n - sent > kMaxHeld) {
                dropped += n - sent - kMaxHeld;
                gone = n - kMaxHeld;
            }
            batch.ids.erase(batch.ids.begin(),
                            batch.ids.begin() + static_cast<std::ptrdiff_t>(gone));
            pending_ -= gone;
            batch.held = !batch.ids.empty();
            ++it;
        }
        return dropped;
    }

    // The sender is gone: its batch with it.
    void forget(const NodeId& sender) {
        auto it = batches_.find(sender);
        if (it == batches_.end()) return;
        pending_ -= it->second.ids.size();
        if (last_ == &it->second) last_ = nullptr;
        batches_.erase(it);
    }

    // When the oldest batch is due by the interval. Held batches wait for their link, which
    // wakes the caller when it takes frames again, not for a time.
    std::optional<Steady> next_due() const {
        if (pending_ == 0) return std::nullopt;
        std::optional<Steady> due;
        for (const auto& [sender, batch] : batches_) {
            if (batch.ids.empty() || batch.held) continue;
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
        bool held = false;  // its link took nothing at the last flush
    };

    Steady::duration interval_;
    std::unordered_map<NodeId, Batch, UuidHash> batches_;
    Batch* last_ = nullptr;  // add()'s last batch (batches are node-based: it stays)
    NodeId last_sender_;
    std::size_t pending_ = 0;
};

}  // namespace peermq::detail
