#include "peermq/clock.hpp"

namespace peermq {
namespace {

class SystemClock final : public Clock {
public:
    Steady steady_now() const override { return std::chrono::steady_clock::now(); }
    std::int64_t unix_ms() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

}  // namespace

std::shared_ptr<Clock> system_clock() {
    static const std::shared_ptr<Clock> instance = std::make_shared<SystemClock>();
    return instance;
}

}  // namespace peermq
