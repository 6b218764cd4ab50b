// Internals of peermq::metrics shared by its sources and its unit tests.
#pragma once

#include <string_view>

#include "peermq/metrics.hpp"

namespace peermq::detail {

// The format a scraper's Accept header asks for: OpenMetrics when it lists
// application/openmetrics-text (without q=0), Prometheus text 0.0.4 otherwise (also when absent).
MetricsFormat negotiate_metrics_format(std::string_view accept);

}  // namespace peermq::detail
