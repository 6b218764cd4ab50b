#include "reliability/topics.hpp"

namespace peermq::detail {

TopicMessage Topics::publish(const MessageId& id, std::string topic, std::int64_t created_ms,
                             Headers headers, Payload payload, msgpack::sbuffer& header) {
    // A topic message is sent once and never answered: no flags, attempt 1, no deadline.
    header.clear();
    encode_data_header(DataHeaderRef{self_, id, topic, 0, 1, created_ms, 0, 0, headers}, header);
    ChannelStats& stats = stats_of(topic);
    ++stats.sent;
    Message message;
    message.id = id;
    message.sender = self_;
    message.channel = std::move(topic);
    message.created_ms = created_ms;
    message.headers = std::move(headers);
    message.payload = std::move(payload);
    return {std::move(message), &stats};
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
