// Topics: the node's side of publish/subscribe (docs/spec/wire.md §3, §8.1). It keeps the local
// subscriptions (their prefixes are what the SUB socket asks its peers for and what HELLO
// announces) and the statistics per topic, bounded: past kMaxTopicStats topics, the rest share
// one entry, "*". It builds the DATA header of each publish, and checks each message read from
// the SUB socket (a DATA, its topic frame equal to its channel, its payload within
// max_payload_bytes) before the receiver delivers it to the subscriptions whose prefix matches.
// No socket here: the actor puts the frames on PUB and reads SUB. Owned by the actor's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <msgpack.hpp>

#include "dispatch/dispatcher.hpp"
#include "observability/drop_reasons.hpp"
#include "peermq/stats.hpp"
#include "reliability/topic_history.hpp"
#include "wire/envelope.hpp"
#include "wire/topic_sync.hpp"

namespace peermq::detail {

struct Subscription {
    std::string prefix;
    std::uint32_t slot = 0;
    const SlotLoad* load = nullptr;
    bool reliable = false;
    std::uint32_t history = 0;
    std::chrono::milliseconds history_age{0};
    SampleLostHandler on_lost;
};

// A topic message and its topic's statistics entry, which its delivery counts.
struct TopicMessage {
    Message message;
    ChannelStats* stats = nullptr;
};

class Topics {
public:
    static constexpr std::size_t kMaxTopicStats = 1024;

    // `epoch`: the node's incarnation, which numbers its topics' messages anew at each start.
    Topics(const NodeId& self, std::size_t max_payload_bytes, std::uint64_t epoch,
           TopicHistory::Limits history)
        : self_(self), max_payload_bytes_(max_payload_bytes), epoch_(epoch), history_(history) {}

    void subscribe(Subscription subscription) { subscriptions_.push_back(std::move(subscription)); }
    const std::vector<Subscription>& subscriptions() const { return subscriptions_; }
    // The reliable subscriptions' prefixes, each with the most history one of them wants.
    std::vector<ReliablePrefix> reliable_prefixes() const;
    bool any_reliable(const std::string& topic) const;

    // A publish of this node: numbered and kept in the history, its DATA header encoded into
    // `header` (cleared first), the frame between the topic and the payload on the PUB socket.
    // Counts it sent and returns the message for this node's own subscribers.
    TopicMessage publish(const MessageId& id, std::string topic, std::int64_t created_ms,
                         Headers headers, Payload payload, msgpack::sbuffer& header,
                         TopicHistory::Steady now);
    // A kept message sent again (REPAIR, on a peer's inbox): its header into `header`.
    void encode_repair(const Message& message, msgpack::sbuffer& header) const;
    std::uint64_t epoch() const { return epoch_; }
    TopicHistory& history() { return history_; }
    const TopicHistory& history() const { return history_; }

    // A message read from the SUB socket, its frames `topic` and `header` and its payload's
    // size: decodes the header into `out` and returns the reason to drop it, if any.
    std::optional<Drop> check(std::string_view topic, std::string_view header,
                              std::size_t payload_bytes, Header& out) const;
    // The message of a header check() passed, counted received; moves the header's headers.
    TopicMessage received(Header& header, Payload payload);

    // The statistics entry of a topic ("*" once kMaxTopicStats topics have one).
    ChannelStats& stats_of(const std::string& topic);
    const std::unordered_map<std::string, ChannelStats>& stats() const { return stats_; }

private:
    const NodeId self_;
    const std::size_t max_payload_bytes_;
    const std::uint64_t epoch_;
    TopicHistory history_;
    std::vector<Subscription> subscriptions_;
    std::unordered_map<std::string, ChannelStats> stats_;
};

}  // namespace peermq::detail
