// The bodies of the reliable-topic frames (docs/spec/wire.md §14): a SYNC's or a RESEND's list of
// topic ranges, and a starting RESEND's list of reliable subscriptions. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "observability/drop_reasons.hpp"

namespace peermq::detail {

// What one SYNC or RESEND body holds at most (a SYNC lists more topics in several frames).
inline constexpr std::size_t kMaxSyncEntries = 1024;
// What a sender puts in one body at most: the receiver's limit is the header's, 65 536 bytes.
inline constexpr std::size_t kMaxSyncBodyBytes = 60'000;
// REPAIRs a publisher sends for one RESEND at most: the subscriber asks for the rest once the
// last of them arrived (TopicStreams).
inline constexpr std::size_t kMaxRepairsPerResend = 4096;
// Reliable subscriptions a node may hold (so that a starting RESEND fits one body).
inline constexpr std::size_t kMaxReliablePrefixes = 128;
// The flag of a starting SYNC that more of it follows (it is cut by kMaxSyncEntries and bytes).
inline constexpr std::uint32_t kFlagMore = 1u << 1;

// SYNC: where the publisher's topic stands (`first` the oldest message it will still send,
// `last` the newest; first = last + 1 when it holds none). RESEND: the messages asked again.
struct TopicRange {
    std::string topic;
    std::uint64_t first = 0;
    std::uint64_t last = 0;

    bool operator==(const TopicRange&) const = default;
};

// A starting RESEND's entry: a prefix the subscriber follows reliably, the history it wants of
// each matching topic (the last `history` messages, none older than `max_age_ms`; 0: any age).
struct ReliablePrefix {
    std::string prefix;
    std::uint32_t history = 0;
    std::uint64_t max_age_ms = 0;

    bool operator==(const ReliablePrefix&) const = default;
};

void encode_ranges(std::span<const TopicRange> ranges, msgpack::sbuffer& out);
void encode_prefixes(const std::vector<ReliablePrefix>& prefixes, msgpack::sbuffer& out);
// Drop::frame_bad_sync when the body is not such a list (or first > last + 1 in a range).
std::optional<Drop> decode_ranges(const void* data, std::size_t size, std::vector<TopicRange>& out);
std::optional<Drop> decode_prefixes(const void* data, std::size_t size,
                                    std::vector<ReliablePrefix>& out);

}  // namespace peermq::detail
