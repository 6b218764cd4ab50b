#include "peermq/clock.hpp"

#include <ctime>

namespace peermq {
namespace {

class SystemClock final : public Clock {
public:
    Steady steady_now() const override { return std::chrono::steady_clock::now(); }
    // The coarse clock: every send() stamps its message, and a precise read costs ten times
    // as much for a resolution (1 ms) the stamps and TTLs do not need beyond a few ms.
    std::int64_t unix_ms() const override {
        timespec ts{};
        ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
    }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
    static const std::shared_ptr<Clock> instance = std::make_shared<SystemClock>();
    return instance;
}

}  // namespace peermq
