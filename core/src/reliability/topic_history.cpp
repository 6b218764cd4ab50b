#include "reliability/topic_history.hpp"

#include <algorithm>

namespace peermq::detail {

std::uint64_t TopicHistory::record(Message& message, Steady now) {
    auto it = topics_.find(message.channel);
    if (it == topics_.end()) {
        if (topics_.size() >= kMaxTopics) return message.seq = 0;
        it = topics_.emplace(message.channel, Topic{}).first;
    }
    Topic& topic = it->second;
    message.seq = ++topic.last;
    if (!topic.changed) {
        topic.changed = true;
        changed_.push_back(message.channel);
    }
    if (limits_.per_topic == 0 || limits_.bytes == 0) return message.seq;
    if (topic.ring.size() >= limits_.per_topic) pop_front(topic);
    topic.ring.push_back(Kept{message.seq, now, message});
    order_.push_back(Order{&topic, message.seq});
    ++kept_;
    bytes_ += message.payload.size();
    while (bytes_ > limits_.bytes && !order_.empty()) {
        const Order oldest = order_.front();
        order_.pop_front();
        if (!oldest.topic->ring.empty() && oldest.topic->ring.front().seq == oldest.seq) {
            pop_front(*oldest.topic);
        }
    }
    return message.seq;
}

void TopicHistory::pop_front(Topic& topic) {
    bytes_ -= topic.ring.front().message.payload.size();
    --kept_;
    topic.ring.pop_front();
}

void TopicHistory::expire(Steady now) {
    const Steady cutoff = now - limits_.age;
    while (!order_.empty()) {
        const Order oldest = order_.front();
        Topic& topic = *oldest.topic;
        const bool current = !topic.ring.empty() && topic.ring.front().seq == oldest.seq;
        if (current && topic.ring.front().at > cutoff) break;
        order_.pop_front();
        if (current) pop_front(topic);
    }
}

TopicRange TopicHistory::range_of(const std::string& topic, Steady now,
                                  std::chrono::milliseconds max_age) const {
    TopicRange range{topic, 1, 0};
    auto it = topics_.find(topic);
    if (it == topics_.end()) return range;
    const Topic& t = it->second;
    range.last = t.last;
    range.first = t.last + 1;
    const Steady cutoff =
        now - (max_age.count() > 0 ? std::min(max_age, limits_.age) : limits_.age);
    for (const Kept& kept : t.ring) {
        if (kept.at > cutoff) {
            range.first = kept.seq;
            break;
        }
    }
    return range;
}

std::vector<const TopicHistory::Kept*> TopicHistory::messages(const std::string& topic,
                                                              std::uint64_t first,
                                                              std::uint64_t last,
                                                              std::size_t limit) const {
    std::vector<const Kept*> out;
    auto it = topics_.find(topic);
    if (it == topics_.end() || it->second.ring.empty() || first > last) return out;
    const auto& ring = it->second.ring;
    // The ring holds consecutive numbers: the first wanted is found by offset.
    const std::uint64_t oldest = ring.front().seq;
    const std::uint64_t from = std::max(first, oldest);
    for (std::uint64_t seq = from; seq <= last && seq - oldest < ring.size() && out.size() < limit;
         ++seq) {
        out.push_back(&ring[seq - oldest]);
    }
    return out;
}

std::vector<std::string> TopicHistory::topics_matching(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [name, topic] : topics_) {
        if (name.starts_with(prefix)) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> TopicHistory::take_changed() {
    for (const auto& name : changed_) {
        if (auto it = topics_.find(name); it != topics_.end()) it->second.changed = false;
    }
    return std::exchange(changed_, {});
}

}  // namespace peermq::detail
