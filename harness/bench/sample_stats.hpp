// Order statistics over benchmark samples: medians of runs and latency percentiles. Pure
// functions over values; thread-safe.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace peermq::bench {

// The q-quantile (0..1) by the nearest-rank method; 0 for no samples.
inline double quantile(std::vector<double> samples, double q) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const double rank = std::ceil(q * static_cast<double>(samples.size()));
    const std::size_t index = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
    return samples[std::min(index, samples.size() - 1)];
}

// Median; the mean of the two middle values for an even count.
inline double median(std::vector<double> samples) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    const std::size_t n = samples.size();
    return n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

// (max - min) / median: how much the runs of one figure disagree.
inline double spread(const std::vector<double>& samples) {
    if (samples.size() < 2) return 0;
    const auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
    const double mid = median(samples);
    return mid > 0 ? (*hi - *lo) / mid : 0;
}

}  // namespace peermq::bench
