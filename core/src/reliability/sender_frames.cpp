// The sender's frames: one message sent to its consumer (a DATA frame to a peer, or a delivery
// to this node's own consumer), and a run of small messages sent to a peer in one BATCH frame,
// whose body goes to ZeroMQ without a copy. What follows a send (in flight, ack deadline,
// stats) is record_delivery's, in sender.cpp.
#include "reliability/sender.hpp"

#include "wire/frames.hpp"

namespace peermq::detail {

bool Sender::deliver(OutQueue& q, Outgoing& message, Target& target, Now now) {
    ++message.attempts;
    if (target.peer) {
        encode_buffer_.clear();
        encode_data_header(
            DataHeaderRef{self_, message.id, q.name, q.flags, message.attempts, message.created_ms,
                          message.deadline_ms, message.seq, message.headers},
            encode_buffer_);
        zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
        zmq::message_t payload = payload_frame(message.payload);
        if (!port_.send_to(*target.peer, header, &payload)) {
            --message.attempts;
            return false;
        }
    } else {
        port_.deliver_local(q, message);
    }
    record_delivery(q, message, target, now);
    return true;
}

std::size_t Sender::deliver_batch(OutQueue& q, Target& target, Now now) {
    if (target.peer->batch_max < 2 || q.waiting.size() < 2 || (q.options.ordered && q.reliable())) {
        return 0;
    }
    // A batch takes at most its consumer's share of what is waiting, so that a burst is spread
    // over the consumers as evenly as single frames would be.
    std::size_t ready = 0;
    for (const Target& t : q.targets) ready += available(q, t) ? 1 : 0;
    ready = std::max<std::size_t>(ready, 1);
    std::size_t limit = std::min(target.peer->batch_max, (q.waiting.size() + ready - 1) / ready);
    if (q.reliable()) {
        const QueueLink& link = *target.link;
        const std::uint32_t window = credit(q, link);
        limit = std::min<std::size_t>(limit, window > link.unacked ? window - link.unacked : 0);
    }
    // Cheap checks first: a lone message, or one big one behind it, goes out alone unencoded.
    auto fits = [&](const Outgoing& m, std::size_t position) {
        if (m.payload.size() > kBatchPayloadMax) return false;
        if (position == 0) return true;  // pump() checked its deadline; choose() its target
        return (!m.failures || (m.prefer().is_nil() && m.avoid().is_nil())) &&
               (m.deadline_ms == 0 || now.unix_ms < m.deadline_ms);
    };
    if (limit < 2 || !fits(q.waiting[0], 0) || !fits(q.waiting[1], 1)) return 0;
    batch_buffer_.clear();
    // Payloads above the inline size live wherever send() allocated them, long out of this
    // core's cache when a backlog has built up: ask for them a few entries ahead so the misses
    // overlap. (An inline payload is in the ring entry, which is read in order anyway.)
    constexpr std::size_t kPrefetchAhead = 4;
    for (std::size_t i = 0; i < std::min(limit, kPrefetchAhead); ++i) {
        __builtin_prefetch(q.waiting[i].payload.data());
    }
    std::size_t n = 0;
    for (; n < limit; ++n) {
        if (n + kPrefetchAhead < limit) {
            __builtin_prefetch(q.waiting[n + kPrefetchAhead].payload.data());
        }
        const Outgoing& m = q.waiting[n];
        if (!fits(m, n)) break;
        encode_buffer_.clear();
        encode_data_header(DataHeaderRef{self_, m.id, q.name, q.flags, m.attempts + 1, m.created_ms,
                                         m.deadline_ms, m.seq, m.headers},
                           encode_buffer_);
        const std::size_t entry = kBatchEntryOverhead + encode_buffer_.size() + m.payload.size();
        if (batch_buffer_.size() + entry > kMaxBatchBytes) break;
        append_batch_entry({encode_buffer_.data(), encode_buffer_.size()}, m.payload.view(),
                           batch_buffer_);
    }
    if (n < 2) return 0;
    auto [header, body] = take_batch(self_, n, batch_buffer_, encode_buffer_);
    if (!port_.send_to(*target.peer, header, &body)) return 0;
    for (std::size_t i = 0; i < n; ++i) {
        ++q.waiting[i].attempts;
        record_delivery(q, q.waiting[i], target, now);
    }
    return n;
}

}  // namespace peermq::detail
