// Queue reports (docs/spec/wire.md §15): this node's own report, the QUEUE_QUERY of a peer it
// answers, and the questions Node::cluster_queues() asks of its peers. There is no central
// server: each node reports what it counts itself, and the asker puts the reports together.
#include <map>
#include <utility>

#include "actor/actor.hpp"
#include "wire/queue_report.hpp"

namespace peermq::detail {
namespace {

// How often one peer's questions are answered at most: a report walks every queue and is up to
// 60 KB for a question of 60 bytes, so a peer asking in a loop gets a burst of kReportBurst,
// then four a second, and the rest are counted (report.rate_limited).
constexpr double kReportBurst = 5;
constexpr double kReportsPerSecond = 4;

}  // namespace

NodeQueues Actor::queue_report(const Permissions* allowed) {
    NodeQueues out;
    out.id = core_.id;
    out.name = options_.name;
    out.answered = true;
    out.at_ms = clock_.unix_ms();
    sender_.update_stats();
    std::map<std::string, QueueReport> queues;  // by name: the report's order
    auto entry = [&](const std::string& name) -> QueueReport& {
        QueueReport& queue = queues[name];
        queue.queue = name;
        return queue;
    };
    sender_.for_each_queue([&](const std::string& name, std::int64_t head_created_ms) {
        QueueReport& queue = entry(name);
        queue.producer = true;
        if (head_created_ms != 0) {
            queue.oldest_waiting_ms = std::max<std::int64_t>(0, out.at_ms - head_created_ms);
        }
    });
    // Letters outlive the queue's sender state (a restarted node has them before it sends):
    // they are the producer's.
    for (const auto& [name, reasons] : dead_letters_->counts()) {
        std::uint64_t letters = 0;
        for (const auto& [reason, count] : reasons) letters += count;
        if (letters == 0) continue;
        QueueReport& queue = entry(name);
        queue.producer = true;
        queue.dead_letters = letters;
    }
    for (auto& [name, queue] : queues) {
        auto it = queue_stats_.find(name);
        if (it == queue_stats_.end()) continue;
        const ChannelStats& stats = it->second;
        queue.waiting = stats.depth;
        queue.in_flight = stats.in_flight;
        queue.sent = stats.sent;
        queue.acked = stats.acked;
        queue.nacked = stats.nacked;
        queue.retried = stats.retried;
        queue.redelivered = stats.redelivered;
        queue.expired = stats.expired;
        queue.dead_lettered = stats.dead_lettered;
    }
    for (const auto& [name, consumer] : receiver_.consumers()) {
        QueueReport& queue = entry(name);
        queue.consumer = true;
        queue.prefetch = consumer.options.prefetch;
        queue.delivered = core_.dispatcher->handled(consumer.slot);
        queue.handler_errors = core_.dispatcher->handler_errors(consumer.slot);
    }
    out.queues.reserve(queues.size());
    for (auto& [name, queue] : queues) {
        // authorized: a peer learns of the queues its key may send to or consume, no others.
        if (allowed && !allowed->may_send(name) && !allowed->may_consume(name)) continue;
        out.queues.push_back(std::move(queue));
    }
    return out;
}

void Actor::on_queue_query(Peer* peer) {
    if (!peer) {
        drop(Drop::frame_unknown_sender);
        return;
    }
    // A token bucket per peer, full when the peer is new.
    const double elapsed = peer->last_report == Steady{}
                               ? kReportBurst / kReportsPerSecond
                               : std::chrono::duration<double>(now_ - peer->last_report).count();
    peer->report_tokens = std::min(kReportBurst, peer->report_tokens + elapsed * kReportsPerSecond);
    peer->last_report = now_;
    if (peer->report_tokens < 1) {
        drop(Drop::report_rate_limited);
        return;
    }
    peer->report_tokens -= 1;
    peer->report_owed = header_.seq;
    send_queue_report(*peer);
}

void Actor::send_queue_report(Peer& peer) {
    // Asked before this node's link to the asker connected (its link to this node came up
    // first): answered when it connects, as an owed HELLO.
    const Permissions* allowed = peer.key ? trust_.permissions(*peer.key) : nullptr;
    msgpack::sbuffer body;
    encode_queue_report(queue_report(allowed && !allowed->unrestricted() ? allowed : nullptr),
                        body);
    Header h;
    h.kind = Kind::queue_report;
    h.sender = core_.id;
    h.seq = peer.report_owed;
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    zmq::message_t frame(body.data(), body.size());
    if (links_.send(peer, header, &frame, now_)) peer.report_owed = 0;
}

void Actor::on_queue_report(Peer* peer, zmq::message_t& body) {
    auto it = queue_queries_.find(header_.seq);
    if (!peer || it == queue_queries_.end()) {
        drop(Drop::report_unexpected);  // not asked, or asked too long ago
        return;
    }
    NodeQueues report;
    if (auto reason = decode_queue_report(body.data(), body.size(), report)) {
        drop(*reason);
        return;
    }
    if (!it->second->answer(peer->id, std::move(report))) drop(Drop::report_unexpected);
}

void Actor::start_queue_query(const std::shared_ptr<QueueQuery>& query) {
    const std::uint64_t seq = ++queue_query_seq_;
    std::vector<NodeQueues> nodes;
    nodes.push_back(queue_report(nullptr));
    std::vector<Peer*> asked;
    for (const auto& peer : peers_.all()) {
        if (peer->state != PeerState::alive) continue;
        NodeQueues& node = nodes.emplace_back();
        node.id = peer->id;
        node.name = peer->name;
        if (!peer->queue_reports) {
            node.error = "its version does not report queues";
            continue;
        }
        asked.push_back(peer.get());
    }
    // The query is complete before the first question leaves: an answer may come this turn.
    query->begin(seq, std::move(nodes));
    queue_queries_[seq] = query;
    for (Peer* peer : asked) {
        peer->query_owed = seq;
        send_queue_query(*peer);
    }
}

void Actor::send_queue_query(Peer& peer) {
    // Asked while its link was not connected yet: asked when it is, if the query still waits.
    const std::uint64_t seq = std::exchange(peer.query_owed, 0);
    if (!queue_queries_.contains(seq)) return;
    Header h;
    h.kind = Kind::queue_query;
    h.sender = core_.id;
    h.seq = seq;
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    if (!links_.send(peer, header, nullptr, now_)) peer.query_owed = seq;
}

void Actor::end_queue_query(std::uint64_t seq) { queue_queries_.erase(seq); }

}  // namespace peermq::detail
