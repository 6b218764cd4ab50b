// Measuring with links: raw ZeroMQ runs and peermq runs alternate, so that both see the same
// machine load; figures are medians of the runs. Plus the few helpers every report prints.
//
// Functions run the links given on the calling thread; they own nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "links.hpp"
#include "peermq/status.hpp"

namespace peermq::bench {

struct ThroughputSamples {
    std::vector<double> peermq;  // msg/s of each measured run
    std::vector<double> raw;
    std::uint64_t peermq_lost = 0;  // in the measured runs (topics only)
    std::uint64_t raw_lost = 0;
};

// Called after every run: "raw" or "peermq", the run (from 1), its message count and rate.
using RunObserver = std::function<void(const char* side, int run, std::size_t n, double rate)>;

// `runs` rounds of one raw run of raw_n messages then one peermq run of peermq_n; a null link
// is skipped. The links must be warm (one run each beforehand).
Result<ThroughputSamples> alternate_runs(ThroughputLink* raw, ThroughputLink* peermq,
                                         std::size_t raw_n, std::size_t peermq_n, int runs,
                                         const RunObserver& observer = {});

// `runs` rounds of one run of each link in turn, links[i] with counts[i] messages; returns the
// rates of each link's runs, by link (empty for a null link). Called after every run: the
// link's index, the run (from 1), its message count and rate. The links must be warm.
using RoundObserver = std::function<void(std::size_t link, int run, std::size_t n, double rate)>;
Result<std::vector<std::vector<double>>> round_robin_runs(const std::vector<ThroughputLink*>& links,
                                                          const std::vector<std::size_t>& counts,
                                                          int runs,
                                                          const RoundObserver& observer = {});

struct LatencySamples {
    std::vector<double> p50, p99, raw_p50, raw_p99;  // µs, one per run
};

// `warmup` round trips on each link, then `runs` rounds of `messages` round trips, raw first.
Result<LatencySamples> alternate_round_trips(LatencyLink& raw, LatencyLink& peermq,
                                             std::size_t warmup, std::size_t messages, int runs);

// Runs `body`, turning an exception into a failed result.
template <typename T>
Result<T> guarded(const std::function<Result<T>()>& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        return make_error(ErrorCode::internal, e.what());
    }
}

// This process's executable (/proc/self/exe), or `argv0` when unreadable.
std::string executable_path(const char* argv0);
// "0.52 0.61 0.70", or "unknown".
std::string load_average();
// 1234567 -> "1,234,567"
std::string grouped(double value);
// "64 B", "1 KiB"
std::string size_label(std::size_t size);
// "libzmq 4.3.4"
std::string zmq_version_string();

}  // namespace peermq::bench
