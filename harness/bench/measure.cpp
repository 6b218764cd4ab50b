#include "measure.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <zmq.h>

#include "sample_stats.hpp"

namespace peermq::bench {

Result<ThroughputSamples> alternate_runs(ThroughputLink* raw, ThroughputLink* peermq,
                                         std::size_t raw_n, std::size_t peermq_n, int runs,
                                         const RunObserver& observer) {
    ThroughputSamples samples;
    const std::uint64_t raw_lost = raw != nullptr ? raw->lost() : 0;
    const std::uint64_t peermq_lost = peermq != nullptr ? peermq->lost() : 0;
    for (int run = 1; run <= runs; ++run) {
        if (raw != nullptr) {
            auto rate = raw->run(raw_n);
            if (!rate) return rate.status();
            samples.raw.push_back(rate.value());
            if (observer) observer("raw", run, raw_n, rate.value());
        }
        if (peermq != nullptr) {
            auto rate = peermq->run(peermq_n);
            if (!rate) return rate.status();
            samples.peermq.push_back(rate.value());
            if (observer) observer("peermq", run, peermq_n, rate.value());
        }
    }
    if (raw != nullptr) samples.raw_lost = raw->lost() - raw_lost;
    if (peermq != nullptr) samples.peermq_lost = peermq->lost() - peermq_lost;
    return samples;
}

Result<std::vector<std::vector<double>>> round_robin_runs(const std::vector<ThroughputLink*>& links,
                                                          const std::vector<std::size_t>& counts,
                                                          int runs, const RoundObserver& observer) {
    if (counts.size() != links.size()) {
        return make_error(ErrorCode::invalid_argument, "one message count per link");
    }
    std::vector<std::vector<double>> rates(links.size());
    for (int run = 1; run <= runs; ++run) {
        for (std::size_t i = 0; i < links.size(); ++i) {
            if (links[i] == nullptr) continue;
            auto rate = links[i]->run(counts[i]);
            if (!rate) return rate.status();
            rates[i].push_back(rate.value());
            if (observer) observer(i, run, counts[i], rate.value());
        }
    }
    return rates;
}

Result<LatencySamples> alternate_round_trips(LatencyLink& raw, LatencyLink& peermq,
                                             std::size_t warmup, std::size_t messages, int runs) {
    if (auto warm = raw.run(warmup); !warm) return warm.status();
    if (auto warm = peermq.run(warmup); !warm) return warm.status();
    LatencySamples samples;
    for (int run = 0; run < runs; ++run) {
        auto raw_micros = raw.run(messages);
        if (!raw_micros) return raw_micros.status();
        samples.raw_p50.push_back(quantile(raw_micros.value(), 0.50));
        samples.raw_p99.push_back(quantile(raw_micros.value(), 0.99));
        auto micros = peermq.run(messages);
        if (!micros) return micros.status();
        samples.p50.push_back(quantile(micros.value(), 0.50));
        samples.p99.push_back(quantile(micros.value(), 0.99));
    }
    return samples;
}

std::string executable_path(const char* argv0) {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return argv0;
    path[n] = '\0';
    return path;
}

std::string load_average() {
    double load[3] = {0, 0, 0};
    if (::getloadavg(load, 3) != 3) return "unknown";
    char text[64];
    std::snprintf(text, sizeof text, "%.2f %.2f %.2f", load[0], load[1], load[2]);
    return text;
}

std::string grouped(double value) {
    const std::string digits = std::to_string(std::llround(value));
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
        out.push_back(digits[i]);
    }
    return out;
}

std::string size_label(std::size_t size) {
    return size >= 1024 && size % 1024 == 0 ? std::to_string(size / 1024) + " KiB"
                                            : std::to_string(size) + " B";
}

std::string zmq_version_string() {
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    return "libzmq " + std::to_string(major) + "." + std::to_string(minor) + "." +
           std::to_string(patch);
}

}  // namespace peermq::bench
