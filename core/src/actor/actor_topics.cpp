// The actor's topics: publishing (numbered, kept in the history), topic messages read from the
// SUB sockets, and reliable topics (docs/spec/wire.md §14): as a publisher it answers RESEND
// from its history and tells its followers where its topics stand; as a subscriber it feeds
// TopicStreams and carries out what they decide (RESEND, in-order delivery, lost reports).
#include "actor/actor.hpp"

#include <string_view>
#include <unordered_set>

#include "wire/frames.hpp"

namespace peermq::detail {
namespace {

bool follows(const std::vector<ReliablePrefix>& prefixes, const std::string& topic) {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](const ReliablePrefix& p) { return topic.starts_with(p.prefix); });
}

}  // namespace

void Actor::on_subscribe(SubscribeCmd& cmd) {
    links_.subscribe(cmd.prefix, peers_);
    topics_.subscribe(Subscription{cmd.prefix, cmd.slot, &core_.dispatcher->load(cmd.slot),
                                   cmd.reliable, cmd.history, cmd.history_age,
                                   std::move(cmd.on_lost)});
    hello_dirty_ = true;
    if (cmd.reliable) {
        streams_.set_prefixes(topics_.reliable_prefixes(), now_, stream_fx_);
        apply_stream_effects();
    }
}

void Actor::on_publish(PublishCmd& cmd) {
    const TopicMessage published =
        topics_.publish(cmd.id, std::move(cmd.topic), cmd.created_ms, std::move(cmd.headers),
                        std::move(cmd.payload), encode_buffer_, now_);
    const std::string& topic_name = published.message.channel;
    zmq::message_t topic(topic_name.data(), topic_name.size());
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    zmq::message_t payload = payload_frame(published.message.payload);
    // PUB never blocks: past its high-water mark ZeroMQ drops for slow subscribers (a reliable
    // one asks for what it missed; nobody waits for it).
    pub_.send(topic, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    pub_.send(header, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    pub_.send(payload, zmq::send_flags::dontwait);
    receiver_.deliver_topic(published, topics_.subscriptions());
}

void Actor::take_topic_message(TopicMessage topic, std::uint64_t epoch, bool repair) {
    const Message& message = topic.message;
    // Cheapest first: most nodes follow nothing reliably.
    const bool streamed = message.seq != 0 && !streams_.prefixes().empty() &&
                          topics_.any_reliable(message.channel) &&
                          streams_.numbered(message.sender);
    if (!repair) {
        receiver_.deliver_topic(
            topic, topics_.subscriptions(),
            streamed ? Receiver::Audience::best_effort : Receiver::Audience::all);
    }
    if (!streamed) return;
    if (repair) ++topic.stats->repaired;
    if (!streams_.on_message(topic.message, epoch, now_, stream_fx_, repair) && !repair) {
        // Not streamed after all (its publisher has too many): as it comes, to every one.
        receiver_.deliver_topic(topic, topics_.subscriptions(), Receiver::Audience::reliable);
    }
    apply_stream_effects();
}

void Actor::on_repair(Peer* peer, std::string_view payload, zmq::message_t* frame,
                      const std::shared_ptr<const void>* owner) {
    if (!peer) {
        drop(Drop::frame_unknown_sender);
        return;
    }
    if (header_.channel.empty() || header_.seq == 0) {
        drop(Drop::frame_bad_field);
        return;
    }
    if (payload.size() > options_.max_payload_bytes) {
        drop(Drop::frame_oversized_payload);
        return;
    }
    if (const Permissions* allowed = peer->key ? trust_.permissions(*peer->key) : nullptr;
        allowed && !allowed->may_publish(header_.channel)) {
        drop(Drop::auth_publish_denied);
        return;
    }
    const std::uint64_t epoch = header_.epoch;
    take_topic_message(topics_.received(header_, payload_from(payload, frame, owner)), epoch, true);
}

void Actor::on_sync(Peer* peer, zmq::message_t& body) {
    if (!peer) {
        drop(Drop::frame_unknown_sender);
        return;
    }
    if (auto reason = decode_ranges(body.data(), body.size(), sync_ranges_)) {
        drop(*reason);
        return;
    }
    streams_.on_sync(peer->id, header_.epoch, header_.flags & kFlagStart, sync_ranges_, now_,
                     stream_fx_, header_.flags & kFlagMore);
    apply_stream_effects();
}

void Actor::on_resend(Peer* peer, zmq::message_t& body) {
    if (!peer) {
        drop(Drop::frame_unknown_sender);
        return;
    }
    const Permissions* allowed = connection_permissions();
    if (header_.flags & kFlagStart) {
        std::vector<ReliablePrefix> prefixes;
        if (auto reason = decode_prefixes(body.data(), body.size(), prefixes)) {
            drop(*reason);
            return;
        }
        // authorized: it follows only what its key may subscribe to.
        if (allowed) {
            std::erase_if(prefixes, [&](const ReliablePrefix& p) {
                if (allowed->may_subscribe(p.prefix)) return false;
                drop(Drop::auth_subscribe_denied);
                return true;
            });
        }
        peer->follows = std::move(prefixes);
        answer_start(*peer);
        return;
    }
    if (auto reason = decode_ranges(body.data(), body.size(), sync_ranges_)) {
        drop(*reason);
        return;
    }
    TopicHistory& history = topics_.history();
    // Each topic once, found in a set: a RESEND may list 1 024 ranges, each of another topic.
    std::vector<TopicRange> state;
    std::unordered_set<std::string_view> listed;
    for (const TopicRange& asked : sync_ranges_) {
        if (allowed && !allowed->may_subscribe(asked.topic)) continue;
        if (listed.insert(asked.topic).second) state.push_back(history.range_of(asked.topic, now_));
    }
    // Where each topic stands first (what it no longer holds is lost to the asker), then what
    // it holds of the ranges, unless they were asked of an earlier life of this node.
    send_ranges(*peer, Kind::sync, false, topics_.epoch(), state);
    if (header_.epoch != topics_.epoch()) return;
    // At most kMaxRepairsPerResend, looked up no further than that.
    std::size_t sent = 0;
    for (const TopicRange& asked : sync_ranges_) {
        if (sent == kMaxRepairsPerResend) break;
        if (allowed && !allowed->may_subscribe(asked.topic)) continue;
        std::uint64_t& resent = topics_.stats_of(asked.topic).resent;
        for (const TopicHistory::Kept* kept :
             history.messages(asked.topic, asked.first, asked.last, kMaxRepairsPerResend - sent)) {
            if (!send_repair(*peer, kept->message, resent)) return;
            ++sent;
        }
    }
    flush_repairs(*peer);
}

void Actor::answer_start(Peer& peer) {
    TopicHistory& history = topics_.history();
    std::vector<TopicRange> state;
    for (const std::string& topic : history.topics_matching("")) {
        std::uint32_t wanted = 0;
        std::uint64_t age_ms = 0;
        bool matched = false;
        for (const ReliablePrefix& p : peer.follows) {
            if (!topic.starts_with(p.prefix)) continue;
            if (!matched || p.history > wanted) {
                wanted = p.history;
                age_ms = p.max_age_ms;
            }
            matched = true;
        }
        if (!matched) continue;
        TopicRange range = history.range_of(topic, now_,
                                            std::chrono::milliseconds(static_cast<std::int64_t>(
                                                std::min<std::uint64_t>(age_ms, INT64_MAX))));
        // Its stream begins with the last `wanted` messages still held, or after the newest.
        const std::uint64_t from = range.last >= wanted ? range.last - wanted + 1 : 1;
        range.first = std::max(range.first, from);
        state.push_back(std::move(range));
    }
    send_ranges(peer, Kind::sync, true, topics_.epoch(), state);
    for (const TopicRange& range : state) {
        std::uint64_t& served = topics_.stats_of(range.topic).history_served;
        for (const TopicHistory::Kept* kept :
             history.messages(range.topic, range.first, range.last)) {
            if (!send_repair(peer, kept->message, served)) return;  // asked again by the follower
        }
    }
    flush_repairs(peer);
}

void Actor::send_ranges(Peer& peer, Kind kind, bool start, std::uint64_t epoch,
                        const std::vector<TopicRange>& ranges) {
    // An empty starting SYNC still says "started"; other frames only carry ranges. A long list
    // goes in several bodies, each within kMaxSyncEntries and kMaxSyncBodyBytes; a starting SYNC
    // says in each but the last that more follows.
    std::size_t at = 0;
    do {
        std::size_t n = 0;
        std::size_t bytes = 8;
        while (at + n < ranges.size() && n < kMaxSyncEntries) {
            const std::size_t entry = ranges[at + n].topic.size() + 24;
            if (bytes + entry > kMaxSyncBodyBytes) break;
            bytes += entry;
            ++n;
        }
        if (n == 0 && !(start && kind == Kind::sync)) return;
        const bool more = at + n < ranges.size();
        msgpack::sbuffer body;
        encode_ranges(std::span<const TopicRange>(ranges).subspan(at, n), body);
        const std::uint32_t flags =
            (start ? std::uint32_t{kFlagStart} : 0u) | (start && more ? kFlagMore : 0u);
        if (!send_body(peer, kind, flags, epoch, body)) return;
        at += n;
    } while (at < ranges.size());
}

void Actor::send_start(Peer& peer) {
    msgpack::sbuffer body;
    encode_prefixes(streams_.prefixes(), body);
    // Not sent (a new link not connected yet): sent the moment it is, like an owed HELLO.
    peer.start_owed = !send_body(peer, Kind::resend, kFlagStart, 0, body);
}

bool Actor::send_body(Peer& peer, Kind kind, std::uint32_t flags, std::uint64_t epoch,
                      const msgpack::sbuffer& body) {
    Header h;
    h.kind = kind;
    h.sender = core_.id;
    h.flags = flags;
    h.epoch = epoch;
    encode_buffer_.clear();
    encode_header(h, encode_buffer_);
    zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
    zmq::message_t frame(body.data(), body.size());
    return links_.send(peer, header, &frame, now_);
}

bool Actor::send_repair(Peer& peer, const Message& message, std::uint64_t& counter) {
    RepairBatch& batch = repair_batch_;
    if (!peer.repair_batch || message.payload.size() > kBatchPayloadMax) {
        // Alone, zero-copy for a large payload; after what is batched, in order.
        if (!flush_repairs(peer)) return false;
        topics_.encode_repair(message, encode_buffer_);
        zmq::message_t header(encode_buffer_.data(), encode_buffer_.size());
        zmq::message_t payload = payload_frame(message.payload);
        if (!links_.send(peer, header, &payload, now_)) return false;
        ++counter;
        return true;
    }
    topics_.encode_repair(message, encode_buffer_);
    const std::size_t entry = kBatchEntryOverhead + encode_buffer_.size() + message.payload.size();
    if (batch.counters.size() == peer.batch_max || batch.body.size() + entry > kMaxBatchBytes) {
        if (!flush_repairs(peer)) return false;
    }
    append_batch_entry({encode_buffer_.data(), encode_buffer_.size()}, message.payload.view(),
                       batch.body);
    batch.counters.push_back(&counter);
    return true;
}

bool Actor::flush_repairs(Peer& peer) {
    RepairBatch& batch = repair_batch_;
    if (batch.counters.empty()) return true;
    auto [header, body] = take_batch(core_.id, batch.counters.size(), batch.body, batch.header);
    const bool sent = links_.send(peer, header, &body, now_);
    if (sent) {
        for (std::uint64_t* counter : batch.counters) ++*counter;
    }
    batch.counters.clear();
    return sent;
}

void Actor::topic_tick(Steady now) {
    next_topic_tick_ = now + kTopicTick;
    TopicHistory& history = topics_.history();
    history.expire(now);
    // Where the topics that moved stand, to their followers: what was lost at the tail of a
    // stream (nothing after it to show the gap) is found this way.
    const std::vector<std::string> changed = history.take_changed();
    if (!changed.empty()) {
        for (const auto& owned : peers_.all()) {
            Peer& peer = *owned;
            if (peer.follows.empty() || peer.state != PeerState::alive) continue;
            std::vector<TopicRange> state;
            for (const std::string& topic : changed) {
                if (follows(peer.follows, topic)) state.push_back(history.range_of(topic, now));
            }
            send_ranges(peer, Kind::sync, false, topics_.epoch(), state);
        }
    }
    streams_.tick(
        now,
        [this](const NodeId& id) {
            const Peer* peer = peers_.find(id);
            return peer && peer->state == PeerState::alive;
        },
        stream_fx_);
    apply_stream_effects();
}

void Actor::apply_stream_effects() {
    TopicStreams::Effects& fx = stream_fx_;
    for (const NodeId& id : fx.start) {
        if (Peer* peer = peers_.find(id)) send_start(*peer);
    }
    for (auto& resend : fx.resend) {
        if (Peer* peer = peers_.find(resend.publisher)) {
            send_ranges(*peer, Kind::resend, false, resend.epoch, resend.ranges);
        }
    }
    for (const auto& closed : fx.repaired) {
        topics_.stats_of(closed.topic)
            .repair_time.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(closed.took).count()));
    }
    if (fx.duplicates) drop(Drop::topic_duplicate, fx.duplicates);
    if (fx.stale) drop(Drop::topic_stale_epoch, fx.stale);
    if (fx.held_full) drop(Drop::topic_held_full, fx.held_full);
    fx.clear();
}

void Actor::deliver_streams() {
    // What is queued goes first, and the handlers' room is read afresh: a stream that waited
    // for room finds what the handlers freed since (their outcomes woke this turn).
    flush_jobs();
    streams_.deliver([this](const TopicStreams::Out& out) {
        if (out.lost) {
            report_lost(*out.lost);
            return true;
        }
        return receiver_.deliver_reliable(*out.message, topics_.stats_of(out.message->channel),
                                          topics_.subscriptions());
    });
}

void Actor::report_lost(const SampleLost& lost) {
    const std::uint64_t n = lost.last - lost.first + 1;
    ChannelStats& stats = topics_.stats_of(lost.topic);
    stats.lost += n;
    ++stats.lost_ranges;
    drop(Drop::topic_lost, n);
    PEERMQ_LOG(log_, LogLevel::info, "topic", "topic messages lost", {"topic", lost.topic},
               {"publisher", lost.publisher_name}, {"first", lost.first}, {"last", lost.last},
               {"reason", lost.reason});
    for (const Subscription& s : topics_.subscriptions()) {
        if (!s.reliable || !s.on_lost || !lost.topic.starts_with(s.prefix)) continue;
        core_.dispatcher->post([handler = s.on_lost, lost] { handler(lost); });
    }
}

}  // namespace peermq::detail
