#include "observability/drops.hpp"

namespace peermq::detail {
namespace {

// The first warn-worthy drop of a reason: where and what. Every one is about a frame, except the
// in-memory dead letters' overflow and reliable topic messages lost.
struct Warning {
    const char* component;
    const char* first;    // the first of them
    const char* summary;  // the ones since, every kSummaryInterval
};
Warning warning_of(Drop reason) {
    constexpr const char* kDlq = "in-memory dead letters full: dropped the oldest";
    constexpr const char* kTopic = "reliable topic messages lost (reported to their subscriptions)";
    switch (reason) {
        case Drop::dlq_memory_full: return {"dlq", kDlq, kDlq};
        case Drop::topic_lost: return {"topic", kTopic, kTopic};
        default: return {"frame", "dropped a bad frame", "dropped bad frames"};
    }
}

}  // namespace

void Drops::internal_error(Drop reason, std::string_view what) noexcept {
    if (counts_[index(reason)]++ > 0) return;
    try {
        PEERMQ_LOG(log_, LogLevel::error, "node", "internal error; the node carries on",
                   {"reason", name(reason)}, {"error", what});
    } catch (...) {
        // The log itself failed (a user's sink): the count stands.
    }
}

void Drops::log(Drop reason, std::uint64_t n, Steady now) {
    if (!warn_worthy(reason)) {
        log_.write(LogLevel::trace, "frame", "dropped", {{"reason", name(reason)}, {"count", n}});
        return;
    }
    const std::size_t i = index(reason);
    if (warned_[i]) return;  // the summary says the rest
    warned_[i] = true;
    any_warned_ = true;
    logged_[i] = counts_[i];
    const Warning warning = warning_of(reason);
    log_.write(LogLevel::warn, warning.component, warning.first,
               {{"reason", name(reason)},
                {"count", n},
                {"summary_every_s", static_cast<std::int64_t>(kSummaryInterval.count())}});
    if (next_summary_ <= now) next_summary_ = now + kSummaryInterval;
}

void Drops::summarize(Steady now) {
    if (!any_warned_ || now < next_summary_) return;
    next_summary_ = now + kSummaryInterval;
    for (std::size_t i = 0; i < kDropCount; ++i) {
        if (!warned_[i] || counts_[i] == logged_[i]) continue;
        const auto reason = static_cast<Drop>(i);
        const Warning warning = warning_of(reason);
        PEERMQ_LOG(log_, LogLevel::warn, warning.component, warning.summary,
                   {"reason", name(reason)}, {"count", counts_[i] - logged_[i]},
                   {"total", counts_[i]},
                   {"interval_s", static_cast<std::int64_t>(kSummaryInterval.count())});
        logged_[i] = counts_[i];
    }
}

void Drops::add_to(std::map<std::string, std::uint64_t>& dropped, std::uint64_t& bad_frames) const {
    for (std::size_t i = 0; i < kDropCount; ++i) {
        if (counts_[i] == 0) continue;
        dropped[std::string(kDropReasons[i].name)] += counts_[i];
        if (bad_frame(static_cast<Drop>(i))) bad_frames += counts_[i];
    }
}

}  // namespace peermq::detail
