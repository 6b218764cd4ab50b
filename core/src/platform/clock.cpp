#include "peermq/clock.hpp"

#include "platform/coarse_clock.hpp"

namespace peermq {
namespace {

class SystemClock final : public Clock {
public:
    Steady steady_now() const override { return std::chrono::steady_clock::now(); }
    std::int64_t unix_ms() const override { return detail::coarse_unix_ms(); }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
    static const std::shared_ptr<Clock> instance = std::make_shared<SystemClock>();
    return instance;
}

}  // namespace peermq
