#include "peermq/stats.hpp"

#include <bit>

namespace peermq {

std::string_view to_string(PeerState state) noexcept {
    switch (state) {
        case PeerState::connecting: return "connecting";
        case PeerState::alive: return "alive";
        case PeerState::suspect: return "suspect";
        case PeerState::down: return "down";
    }
    return "unknown";
}

void LatencyHistogram::record(std::uint64_t micros) noexcept {
    const std::size_t bucket =
        micros == 0 ? 0 : static_cast<std::size_t>(std::bit_width(micros) - 1);
    buckets[bucket < buckets.size() ? bucket : buckets.size() - 1]++;
    ++count;
    sum_us += micros;
}

std::uint64_t LatencyHistogram::quantile_us(double q) const noexcept {
    if (count == 0) return 0;
    const auto target = static_cast<std::uint64_t>(q * static_cast<double>(count - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        seen += buckets[i];
        if (seen >= target) return std::uint64_t{2} << i;
    }
    return std::uint64_t{2} << (buckets.size() - 1);
}

}  // namespace peermq
