#include "reliability/backoff.hpp"

#include <algorithm>
#include <limits>

namespace peermq::detail {

Backoff::Backoff(Duration initial, Duration max, std::uint64_t seed)
    : initial_(std::max(initial, Duration::zero())),
      max_(std::max(max, Duration::zero())),
      random_(seed) {}

Backoff::Duration Backoff::base(std::uint32_t attempt) const noexcept {
    const std::uint32_t shift = attempt <= 1 ? 0 : attempt - 1;
    const auto initial = static_cast<std::uint64_t>(initial_.count());
    const auto cap = static_cast<std::uint64_t>(max_.count());
    if (initial == 0) return Duration::zero();
    if (initial >= cap) return max_;
    // initial < cap here, so initial << shift stays below cap (no overflow) exactly when
    // initial <= cap >> shift.
    if (shift >= 63 || initial > (cap >> shift)) return max_;
    return Duration(static_cast<Duration::rep>(std::min(initial << shift, cap)));
}

Backoff::Duration Backoff::delay(std::uint32_t attempt) {
    const Duration::rep full = base(attempt).count();
    const Duration::rep half = full / 2;
    if (full == 0) return Duration::zero();
    std::uniform_int_distribution<Duration::rep> jitter(0, full - half);
    return Duration(half + jitter(random_));
}

Backoff::Duration Backoff::max_total(std::uint32_t retries) const noexcept {
    constexpr auto kLimit = std::numeric_limits<Duration::rep>::max();
    if (initial_ == Duration::zero()) return Duration::zero();
    Duration::rep total = 0;
    for (std::uint32_t n = 1; n <= retries; ++n) {
        const Duration::rep b = base(n).count();
        if (b == max_.count()) {
            // Every later term equals max: finish in one multiplication, saturating.
            const std::uint64_t rest = static_cast<std::uint64_t>(retries) - n + 1;
            if (b != 0 && rest > static_cast<std::uint64_t>((kLimit - total) / b)) {
                return Duration(kLimit);
            }
            return Duration(total + static_cast<Duration::rep>(rest) * b);
        }
        // At most 63 terms below max (they double); saturate anyway for a max near the limit.
        if (b > kLimit - total) return Duration(kLimit);
        total += b;
    }
    return Duration(total);
}

std::uint64_t Backoff::random_seed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace peermq::detail
