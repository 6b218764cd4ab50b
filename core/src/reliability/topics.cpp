#include "reliability/topics.hpp"

#include <algorithm>

namespace peermq::detail {

TopicMessage Topics::publish(const MessageId& id, std::string topic, std::int64_t created_ms,
                             Headers headers, Payload payload, msgpack::sbuffer& header,
                             TopicHistory::Steady now) {
    ChannelStats& stats = stats_of(topic);
    ++stats.sent;
    Message message;
    message.id = id;
    message.sender = self_;
    message.channel = std::move(topic);
    message.created_ms = created_ms;
    message.headers = std::move(headers);
    message.payload = std::move(payload);
    const std::uint64_t seq = history_.record(message, now);
    // A topic message is sent once and never answered: no flags, attempt 1, no deadline. Its
    // number and the epoch let reliable subscribers find gaps (wire.md §14).
    header.clear();
    encode_data_header(DataHeaderRef{self_, id, message.channel, 0, 1, created_ms, 0, seq,
                                     message.headers, seq != 0 ? epoch_ : 0},
                       header);
    return {std::move(message), &stats};
}

void Topics::encode_repair(const Message& message, msgpack::sbuffer& header) const {
    header.clear();
    Header h;
    h.kind = Kind::repair;
    h.sender = self_;
    h.id = message.id;
    h.channel = message.channel;
    h.created_ms = message.created_ms;
    h.seq = message.seq;
    h.headers = message.headers;
    h.epoch = epoch_;
    encode_header(h, header);
}

std::vector<ReliablePrefix> Topics::reliable_prefixes() const {
    std::vector<ReliablePrefix> out;
    for (const auto& s : subscriptions_) {
        if (!s.reliable) continue;
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const ReliablePrefix& p) { return p.prefix == s.prefix; });
        const auto age = static_cast<std::uint64_t>(s.history_age.count());
        if (it == out.end()) {
            out.push_back(ReliablePrefix{s.prefix, s.history, age});
        } else {
            it->history = std::max(it->history, s.history);
            it->max_age_ms = it->max_age_ms == 0 || age == 0 ? 0 : std::max(it->max_age_ms, age);
        }
    }
    return out;
}

bool Topics::any_reliable(const std::string& topic) const {
    return std::any_of(subscriptions_.begin(), subscriptions_.end(), [&](const Subscription& s) {
        return s.reliable && topic.starts_with(s.prefix);
    });
}

std::optional<Drop> Topics::check(std::string_view topic, std::string_view header,
                                  std::size_t payload_bytes, Header& out) const {
    if (auto reason = decode_header(header.data(), header.size(), out)) return reason;
    if (out.kind != Kind::data) return Drop::frame_unknown_kind;
    if (topic != out.channel) return Drop::frame_topic_mismatch;
    // The same limit as for queues (wire.md §8.1): the SUB socket's own limit leaves room for
    // the header, so a payload just past max_payload_bytes still arrives.
    if (payload_bytes > max_payload_bytes_) return Drop::frame_oversized_payload;
    return std::nullopt;
}

TopicMessage Topics::received(Header& header, Payload payload) {
    ChannelStats& stats = stats_of(header.channel);
    ++stats.received;
    Message message;
    message.id = header.id;
    message.sender = header.sender;
    message.channel = header.channel;
    message.created_ms = header.created_ms;
    message.headers = std::move(header.headers);
    message.payload = std::move(payload);
    message.seq = header.seq;
    return {std::move(message), &stats};
}

ChannelStats& Topics::stats_of(const std::string& topic) {
    auto it = stats_.find(topic);
    if (it != stats_.end()) return it->second;
    // Topics can be many: past a bound they share one entry.
    if (stats_.size() >= kMaxTopicStats) return stats_["*"];
    return stats_[topic];
}

}  // namespace peermq::detail
