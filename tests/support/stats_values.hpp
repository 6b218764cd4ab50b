// Test helper: a NodeStats in which every field of the stats tables
// (core/src/observability/stats_fields.hpp) holds a value of its own, set by walking the tables:
// a field added there gets a value here without a change to this file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "observability/stats_fields.hpp"
#include "peermq/stats.hpp"

namespace peermq::testing {

// Counters and gauges base + 1, base + 2, ... in table order; a histogram with two samples.
inline ChannelStats distinct_channel_stats(std::uint64_t base) {
    ChannelStats c;
    std::uint64_t next = base;
    detail::for_each_stats_field<ChannelStats>([&](const auto& field) {
        auto& value = c.*field.member;
        using Value = std::decay_t<decltype(value)>;
        ++next;
        if constexpr (std::is_same_v<Value, std::uint64_t>) {
            value = next;
        } else {
            static_assert(std::is_same_v<Value, LatencyHistogram>,
                          "a new kind of channel stats value: give it a value here");
            value.record(next);
            value.record(next * 1000);
        }
    });
    return c;
}

// Numbers from 1001 on in table order; a map holds one entry named after its field, the lists
// one element each.
inline NodeStats distinct_node_stats() {
    NodeStats s;
    std::uint64_t next = 1000;
    detail::for_each_stats_field<NodeStats>([&](const auto& field) {
        auto& value = s.*field.member;
        using Value = std::decay_t<decltype(value)>;
        const std::string name(field.name);
        ++next;
        if constexpr (std::is_same_v<Value, std::uint64_t>) {
            value = next;
        } else if constexpr (std::is_same_v<Value, std::string>) {
            value = name + "-" + std::to_string(next);
        } else if constexpr (std::is_same_v<Value, Uuid>) {
            value = Uuid::parse("0190a3c4-0000-7000-8000-00000000" + std::to_string(next)).value();
        } else if constexpr (std::is_same_v<Value, std::map<std::string, std::uint64_t>>) {
            value = {{name + ".reason", next}};
        } else if constexpr (std::is_same_v<Value, std::map<std::string, ChannelStats>>) {
            value = {{name + "-1", distinct_channel_stats(next * 100)}};
        } else {
            static_assert(std::is_same_v<Value, std::vector<PeerInfo>>,
                          "a new kind of stats value: give it a value here");
            PeerInfo peer;
            peer.id =
                Uuid::parse("0190a3c4-0000-7000-8000-00000000" + std::to_string(next)).value();
            peer.name = name + "-1";
            peer.state = PeerState::alive;
            peer.frames_sent = next;
            value = {peer};
        }
    });
    return s;
}

}  // namespace peermq::testing
