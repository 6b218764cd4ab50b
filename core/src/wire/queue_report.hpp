// The body of a QUEUE_REPORT (docs/spec/wire.md §15): how one node's queues stand, as it counts
// them. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include <msgpack.hpp>

#include "observability/drop_reasons.hpp"
#include "peermq/stats.hpp"

namespace peermq::detail {

// Queues one report lists at most; past it (or past kMaxReportBytes) the rest are counted in
// NodeQueues::queues_omitted.
inline constexpr std::size_t kMaxReportQueues = 256;
// What a sender puts in one body at most: the receiver reads at most kMaxHeaderBytes.
inline constexpr std::size_t kMaxReportBytes = 60'000;
// The fields of one queue's entry in this revision; a later one may add more after them.
inline constexpr std::uint32_t kReportFields = 16;

// Encodes `report`'s at_ms, queues and queues_omitted (the queues past the bounds are counted
// as omitted, not written).
void encode_queue_report(const NodeQueues& report, msgpack::sbuffer& out);
// Fills `out`'s at_ms, queues and queues_omitted; Drop::frame_bad_report when the body is not
// such a report.
std::optional<Drop> decode_queue_report(const void* data, std::size_t size, NodeQueues& out);

}  // namespace peermq::detail
