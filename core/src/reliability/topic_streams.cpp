#include "reliability/topic_streams.hpp"

#include <algorithm>

namespace peermq::detail {

void TopicStreams::set_prefixes(std::vector<ReliablePrefix> prefixes, Steady now, Effects& fx) {
    prefixes_ = std::move(prefixes);
    if (prefixes_.empty()) return;
    // The publishers learn the new list (and serve history for topics it newly matches).
    for (auto& [id, p] : publishers_) start(p, now, fx);
}

bool TopicStreams::follows(const std::string& topic) const {
    return std::any_of(prefixes_.begin(), prefixes_.end(),
                       [&](const ReliablePrefix& p) { return topic.starts_with(p.prefix); });
}

void TopicStreams::publisher_seen(const NodeId& id, const std::string& name,
                                  std::uint64_t incarnation, Steady now, Effects& fx) {
    auto [it, added] = publishers_.try_emplace(id);
    Publisher& p = it->second;
    p.name = name;
    if (added) {
        p.id = id;
        p.incarnation = incarnation;
        if (!prefixes_.empty()) start(p, now, fx);
        return;
    }
    if (incarnation != 0 && incarnation != p.incarnation) {
        // Restarted: it no longer knows this node follows it.
        p.incarnation = incarnation;
        if (!prefixes_.empty()) start(p, now, fx);
    }
}

void TopicStreams::publisher_gone(const NodeId& id) {
    auto it = publishers_.find(id);
    if (it == publishers_.end()) return;
    end_epoch(it->second, "publisher_gone");
    publishers_.erase(it);
}

bool TopicStreams::numbered(const NodeId& id) const { return publishers_.contains(id); }

void TopicStreams::start(Publisher& p, Steady now, Effects& fx) {
    p.starting = true;
    p.start_sent = now;
    fx.start.push_back(p.id);
}

bool TopicStreams::on_message(Message& message, std::uint64_t epoch, Steady now, Effects& fx,
                              bool repair) {
    auto it = publishers_.find(message.sender);
    if (it == publishers_.end()) return false;
    Publisher& p = it->second;
    if (epoch < p.epoch) {
        ++fx.stale;  // its earlier life
        return true;
    }
    // Not started in this epoch yet, or a topic the start under way may begin with history.
    if (p.epoch == 0 || epoch > p.epoch || (p.starting && !p.streams.contains(message.channel))) {
        // Kept until the starting SYNC says where its stream begins.
        if (p.before_start.size() >= config_.max_held) {
            ++fx.held_full;
            return true;
        }
        p.before_start.emplace_back(epoch, std::move(message));
        if (p.epoch != 0 && !p.starting) start(p, now, fx);  // a new epoch, before its HELLO
        return true;
    }
    if (!p.streams.contains(message.channel) && p.streams.size() >= config_.max_streams) {
        return false;
    }
    Stream& s = stream_of(p, message.channel);
    const std::uint64_t seq = message.seq;
    if (!repair) {
        s.live_since_ask = true;
        s.live_at = now;
    }
    if (seq < s.next || held_covers(s, seq)) {
        ++fx.duplicates;  // delivered, held, or already reported lost
        return true;
    }
    message.history = seq <= s.history_last;
    put(s, seq, Entry{std::move(message), std::nullopt}, fx);
    if (s.claimed_since && s.known_last >= s.claimed) settle_claim(s);
    // A new gap is asked at once. So is the rest of a long one, once the last REPAIR the
    // publisher's answer could hold came, if no live message came meanwhile: the publisher is
    // quiet, and 180 000 missing messages take 1.5 s instead of 45 retries. While live messages
    // come, the rest waits until they pause (check_pauses) or for the retry: repairs would take
    // the live stream's room and make it lose more (a saturated subscriber received a third
    // less).
    if (has_gap(s) && !s.asked) {
        ask(s, now, fx);
    } else if (has_gap(s) && repair && seq == s.answer_last) {
        // Answered while live messages came: asked again once they pause.
        if (!s.live_since_ask) {
            ask(s, now, fx);
        } else if (answered_.insert(&s).second) {
            note_pause(s.live_at + config_.quiet);
        }
    }
    settle_gap(s, now, fx);
    return true;
}

void TopicStreams::on_sync(const NodeId& publisher, std::uint64_t epoch, bool start_sync,
                           const std::vector<TopicRange>& ranges, Steady now, Effects& fx,
                           bool more) {
    auto it = publishers_.find(publisher);
    if (it == publishers_.end()) return;
    Publisher& p = it->second;
    if (epoch < p.epoch) {
        ++fx.stale;
        return;
    }
    // Followed across a restart: the new epoch's streams are wanted whole, from number 1.
    const bool restarted = epoch > p.epoch && p.epoch != 0;
    if (restarted) {
        // The streams of its earlier epoch end, and a start is asked for.
        end_epoch(p, "publisher_restarted");
        p.epoch = 0;
        if (!start_sync) {
            start(p, now, fx);
            return;
        }
    }
    if (p.epoch == 0 && !start_sync) return;  // the starting SYNC comes first
    if (start_sync) {
        p.epoch = epoch;
        p.starting = more;  // until its last part, a topic it has not named yet may still come
    }
    for (const TopicRange& range : ranges) {
        // Only what this node follows, and a bounded number of streams per publisher: a SYNC
        // is anyone's to send, and each stream costs memory.
        if (!follows(range.topic)) continue;
        const bool fresh = !p.streams.contains(range.topic);
        if (fresh && p.streams.size() >= config_.max_streams) continue;
        Stream& s = stream_of(p, range.topic);
        if (start_sync && fresh && restarted) {
            // Everything of the new epoch, asked for below what the start sends.
            s.next = 1;
        } else if (start_sync && fresh) {
            // Where this subscriber's stream begins: its history, then what follows.
            s.next = range.first;
            s.history_last = range.last;
        } else if (!start_sync && range.first > s.next && s.known_last >= s.next) {
            // The publisher no longer holds what this node lacks below `first`: lost, up to the
            // highest number known. Above it the live messages may still be on their way.
            lose_until(s, std::min(range.first - 1, s.known_last), "not_held");
        }
        if (start_sync) {
            s.known_last = std::max(s.known_last, range.last);
        } else {
            claim(s, range.last, now);
        }
        if (start_sync && fresh && !restarted && range.last >= range.first) {
            // The history is on its way (REPAIRs after this SYNC): asked again if it is late.
            s.asked = true;
            s.asked_at = now;
            gapped_.insert(&s);
        } else if (has_gap(s) && !s.asked) {
            ask(s, now, fx);
        }
        settle_gap(s, now, fx);
        update_ready(s);
    }
    if (start_sync) {
        auto early = std::move(p.before_start);
        p.before_start.clear();
        for (auto& [message_epoch, message] : early) {
            (void)on_message(message, message_epoch, now, fx);  // past max_streams: dropped
        }
    }
}

void TopicStreams::tick(Steady now, const std::function<bool(const NodeId&)>& alive, Effects& fx) {
    for (auto& [id, p] : publishers_) {
        if (p.starting && now - p.start_sent >= config_.retry && alive(id)) start(p, now, fx);
    }
    check_pauses(now, fx);
    for (auto it = gapped_.begin(); it != gapped_.end();) {
        Stream& s = **it;
        if (!s.asked || !has_gap(s)) {
            s.asked = false;
            s.attempts = 0;
            it = gapped_.erase(it);
            continue;
        }
        ++it;
        if (now - s.asked_at < config_.retry || !alive(s.publisher->id)) continue;
        if (s.next != s.asked_next) s.attempts = 0;  // answered in part: not given up on
        if (++s.attempts >= config_.attempts) {
            lose_until(s, s.known_last, "unanswered");
            settle_gap(s, now, fx);
            update_ready(s);
            continue;
        }
        ask(s, now, fx);
    }
}

void TopicStreams::check_pauses(Steady now, Effects& fx) {
    pause_due_.reset();  // made exact again below, from what still waits
    // A claimed tail that the live stream did not bring while it moved: lost on the way.
    for (auto it = claimed_.begin(); it != claimed_.end();) {
        Stream& s = **it;
        ++it;
        const Steady due = std::max(*s.claimed_since, s.live_at) + config_.quiet;
        if (now < due) {
            note_pause(due);
            continue;
        }
        s.known_last = std::max(s.known_last, s.claimed);
        settle_claim(s);
        if (has_gap(s) && !s.asked) ask(s, now, fx);
    }
    for (auto it = answered_.begin(); it != answered_.end();) {
        Stream& s = **it;
        const Steady due = s.live_at + config_.quiet;
        if (now < due) {
            note_pause(due);
            ++it;
            continue;
        }
        it = answered_.erase(it);
        if (has_gap(s)) ask(s, now, fx);
    }
    // Gaps that waited for their stream's handler to make room.
    for (auto it = roomless_.begin(); it != roomless_.end();) {
        Stream& s = **it;
        if (!has_room(s)) {
            ++it;
            continue;
        }
        it = roomless_.erase(it);
        if (has_gap(s) && !s.asked) ask(s, now, fx);
    }
}

void TopicStreams::note_pause(Steady due) {
    if (!pause_due_ || due < *pause_due_) pause_due_ = due;
}

void TopicStreams::deliver(const std::function<bool(const Out&)>& take) {
    for (auto it = ready_.begin(); it != ready_.end();) {
        Stream& s = **it;
        bool blocked = false;
        while (!s.held.empty() && s.held.begin()->first == s.next) {
            Entry& entry = s.held.begin()->second;
            const std::uint64_t last = entry.lost ? entry.lost->last : s.next;
            if (!take(entry.lost ? Out{nullptr, &*entry.lost} : Out{&entry.message, nullptr})) {
                blocked = true;
                break;
            }
            s.held.erase(s.held.begin());
            s.covered -= last - s.next + 1;
            s.next = last + 1;
        }
        // Room made for a gap that waited for it: asked on the next check.
        if (roomless_.contains(&s) && has_room(s)) note_pause(Steady::min());
        if (blocked) {
            ++it;
            continue;
        }
        it = ready_.erase(it);
    }
    // Streams of an ended epoch go once they are empty.
    std::erase_if(ended_, [this](const std::unique_ptr<Stream>& s) {
        if (!s->held.empty()) return false;
        ready_.erase(s.get());
        gapped_.erase(s.get());
        roomless_.erase(s.get());
        claimed_.erase(s.get());
        answered_.erase(s.get());
        return true;
    });
}

bool TopicStreams::waiting() const {
    if (!gapped_.empty() || !claimed_.empty() || !answered_.empty() || !roomless_.empty()) {
        return true;
    }
    return std::any_of(publishers_.begin(), publishers_.end(),
                       [](const auto& entry) { return entry.second.starting; });
}

std::size_t TopicStreams::streams() const {
    std::size_t n = 0;
    for (const auto& [id, p] : publishers_) n += p.streams.size();
    return n;
}

std::size_t TopicStreams::held() const {
    std::size_t n = 0;
    for (const auto& [id, p] : publishers_) {
        n += p.before_start.size();
        for (const auto& [topic, s] : p.streams) n += s->held.size();
    }
    return n;
}

void TopicStreams::end_epoch(Publisher& p, const char* reason) {
    for (auto& [topic, s] : p.streams) {
        // A claimed tail is owed too: its messages of the ended epoch will not be taken.
        if (s->claimed_since) {
            s->known_last = std::max(s->known_last, s->claimed);
            settle_claim(*s);
        }
        lose_until(*s, s->known_last, reason);
        gapped_.erase(s.get());
        answered_.erase(s.get());
        roomless_.erase(s.get());
        s->asked = false;
        update_ready(*s);
        if (!s->held.empty()) ended_.push_back(std::move(s));
    }
    p.streams.clear();
    // What came early for the epoch that ends waited for a start that will not come; what came
    // for a later one waits for that one's.
    std::erase_if(p.before_start, [&](const auto& early) { return early.first <= p.epoch; });
}

TopicStreams::Stream& TopicStreams::stream_of(Publisher& p, const std::string& topic) {
    auto& slot = p.streams[topic];
    if (!slot) {
        // A topic missing from the starting SYNC began after it: from its first message.
        slot = std::make_unique<Stream>();
        slot->publisher = &p;
        slot->order = ++streams_made_;
        slot->topic = topic;
        slot->epoch = p.epoch;
    }
    return *slot;
}

void TopicStreams::put(Stream& s, std::uint64_t seq, Entry entry, Effects& fx) {
    s.known_last = std::max(s.known_last, seq);
    if (room_of(s) == 0 && seq > top_of(s)) {
        // Held too much ahead of a gap: the newest waits at the publisher (asked again once the
        // handler made room: ask() asks only for what this takes).
        ++fx.held_full;
        return;
    }
    s.held.emplace(seq, std::move(entry));
    ++s.covered;
    update_ready(s);
}

void TopicStreams::lose_until(Stream& s, std::uint64_t up_to, const char* reason) {
    std::uint64_t seq = s.next;
    auto it = s.held.lower_bound(seq);
    while (seq <= up_to) {
        if (it != s.held.end() && it->first == seq) {
            seq = (it->second.lost ? it->second.lost->last : seq) + 1;
            ++it;
            continue;
        }
        const std::uint64_t hole_end = std::min(up_to, it != s.held.end() ? it->first - 1 : up_to);
        s.gap_lost = s.gap_since.has_value();
        SampleLost lost;
        lost.publisher = s.publisher->id;
        lost.publisher_name = s.publisher->name;
        lost.topic = s.topic;
        lost.epoch = s.epoch;
        lost.first = seq;
        lost.last = hole_end;
        lost.reason = reason;
        it = std::next(s.held.emplace_hint(it, seq, Entry{Message{}, std::move(lost)}));
        s.covered += hole_end - seq + 1;
        seq = hole_end + 1;
    }
    s.known_last = std::max(s.known_last, up_to);
}

void TopicStreams::ask(Stream& s, Steady now, Effects& fx) {
    // What the stream can take of the answer (put): a hole below the newest entry held, always;
    // above it, only while there is room. A stream with neither asks for nothing: its handler
    // falls behind, and what it asked for would only be sent again and again and dropped.
    const std::uint64_t top = top_of(s);
    std::uint64_t room = room_of(s);
    if (room == 0 && s.covered == top - s.next + 1) {
        wait_for_room(s);
        return;
    }
    Effects::Resend resend{s.publisher->id, s.epoch, {}};
    std::uint64_t seq = s.next;
    std::uint64_t answerable = config_.repairs_per_resend;  // numbers the answer can still hold
    s.answer_last = 0;
    auto it = s.held.lower_bound(seq);
    while (seq <= s.known_last && answerable > 0 && resend.ranges.size() < config_.max_ranges) {
        if (it != s.held.end() && it->first == seq) {
            seq = (it->second.lost ? it->second.lost->last : seq) + 1;
            ++it;
            continue;
        }
        std::uint64_t hole_end =
            std::min(s.known_last, it != s.held.end() ? it->first - 1 : s.known_last);
        if (seq > top) {
            if (room == 0) break;
            hole_end = std::min(hole_end, seq + room - 1);
        }
        resend.ranges.push_back(TopicRange{s.topic, seq, hole_end});
        const std::uint64_t taken = std::min(answerable, hole_end - seq + 1);
        s.answer_last = seq + taken - 1;
        answerable -= taken;
        room -= std::min(room, taken);
        seq = hole_end + 1;
    }
    if (resend.ranges.empty()) return;
    fx.resend.push_back(std::move(resend));
    answered_.erase(&s);
    s.live_since_ask = false;
    if (!s.gap_since) s.gap_since = now;
    s.asked_next = s.next;
    s.asked = true;
    s.asked_at = now;
    gapped_.insert(&s);
}

std::uint64_t TopicStreams::top_of(const Stream& s) const {
    if (s.held.empty()) return s.next - 1;
    const auto& [seq, entry] = *s.held.rbegin();
    return entry.lost ? entry.lost->last : seq;
}

std::uint64_t TopicStreams::room_of(const Stream& s) const {
    return config_.max_held > s.held.size() ? config_.max_held - s.held.size() : 0;
}

bool TopicStreams::has_room(const Stream& s) const {
    return room_of(s) >= std::max<std::size_t>(config_.max_held / 4, 1);
}

void TopicStreams::wait_for_room(Stream& s) {
    // Not asked, so neither retried nor given up on: the publisher is not late, this node is.
    s.asked = false;
    s.attempts = 0;
    gapped_.erase(&s);
    answered_.erase(&s);
    roomless_.insert(&s);
}

bool TopicStreams::held_covers(const Stream& s, std::uint64_t seq) const {
    auto it = s.held.upper_bound(seq);
    if (it == s.held.begin()) return false;
    --it;
    return it->first == seq || (it->second.lost && it->second.lost->last >= seq);
}

void TopicStreams::update_ready(Stream& s) {
    if (!s.held.empty() && s.held.begin()->first == s.next) ready_.insert(&s);
}

void TopicStreams::settle_gap(Stream& s, Steady now, Effects& fx) {
    if (has_gap(s)) return;
    if (s.gap_since && !s.gap_lost) fx.repaired.push_back({s.topic, now - *s.gap_since});
    s.gap_since.reset();
    s.gap_lost = false;
    // Closed: the next gap is asked for the moment it shows, not at this one's next retry.
    answered_.erase(&s);
    s.asked = false;
    s.attempts = 0;
}

void TopicStreams::claim(Stream& s, std::uint64_t last, Steady now) {
    if (last <= s.known_last) return;
    s.claimed = std::max(s.claimed, last);
    if (!s.claimed_since) {
        s.claimed_since = now;
        claimed_.insert(&s);
        note_pause(now + config_.quiet);
    }
}

void TopicStreams::settle_claim(Stream& s) {
    s.claimed_since.reset();
    claimed_.erase(&s);
}

bool TopicStreams::has_gap(const Stream& s) const {
    // Every held entry lies in [next, known_last]: a gap is a number none of them stands for.
    return s.known_last >= s.next && s.covered < s.known_last - s.next + 1;
}

}  // namespace peermq::detail
