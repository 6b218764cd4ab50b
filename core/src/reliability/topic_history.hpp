// TopicHistory: a publisher's side of reliable topics (docs/spec/wire.md §14). It numbers each
// topic's messages (1, 2, ... within the node's epoch), keeps the latest of them in a bounded
// history (per topic by count, in all by payload bytes, by age) from which subscribers' gaps are
// repaired and late joiners served, and remembers which topics moved since their last SYNC.
// Pure: it takes `now` and holds no socket. Owned by the actor's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "peermq/message.hpp"
#include "wire/topic_sync.hpp"

namespace peermq::detail {

class TopicHistory {
public:
    using Steady = std::chrono::steady_clock::time_point;

    struct Limits {
        std::size_t per_topic = 1024;
        std::size_t bytes = 16u << 20;
        std::chrono::milliseconds age{600'000};
    };
    // Topics numbered at most: past it a new topic's messages go unnumbered (seq 0, best effort
    // for every subscriber), so that a publisher of unbounded topic names stays bounded.
    static constexpr std::size_t kMaxTopics = 65536;

    struct Kept {
        std::uint64_t seq = 0;
        Steady at{};
        Message message;  // its seq set
    };

    explicit TopicHistory(Limits limits) : limits_(limits) {}

    // Numbers a message of `message.channel` (sets message.seq) and keeps a copy. Returns the
    // seq, 0 when the topic cannot be numbered (kMaxTopics).
    std::uint64_t record(Message& message, Steady now);
    // Forgets what is past the age bound.
    void expire(Steady now);

    // Where a topic stands: the oldest kept (no older than `max_age` if not 0) and the newest
    // message (first = last + 1 when none is kept; last = 0 for a topic never published).
    TopicRange range_of(const std::string& topic, Steady now,
                        std::chrono::milliseconds max_age = {}) const;
    // The kept messages first..last of a topic, in order, at most `limit` of them (a range is
    // anyone's to ask for, and a history can hold millions).
    std::vector<const Kept*> messages(const std::string& topic, std::uint64_t first,
                                      std::uint64_t last, std::size_t limit = SIZE_MAX) const;
    // Every numbered topic whose name starts with `prefix`.
    std::vector<std::string> topics_matching(const std::string& prefix) const;

    // Topics published since the last call, cleared.
    std::vector<std::string> take_changed();
    bool has_changed() const { return !changed_.empty(); }

    std::size_t kept() const { return kept_; }
    std::size_t bytes() const { return bytes_; }

private:
    struct Topic {
        std::uint64_t last = 0;
        std::deque<Kept> ring;
        bool changed = false;
    };
    void pop_front(Topic& topic);

    const Limits limits_;
    std::unordered_map<std::string, Topic> topics_;
    // Every kept message in publish order, for the byte and age bounds (entries whose message a
    // topic's own bound already dropped are skipped).
    struct Order {
        Topic* topic;
        std::uint64_t seq;
    };
    std::deque<Order> order_;
    std::vector<std::string> changed_;
    std::size_t kept_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace peermq::detail
