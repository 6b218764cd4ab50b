// Now: the time of a call into one of the node's parts, given by the caller (the actor reads the
// clock; a unit test says what time it is): steady for deadlines and timers, wall clock for
// message TTLs and timestamps.
#pragma once

#include <cstdint>

#include "peermq/clock.hpp"

namespace peermq::detail {

struct Now {
    Clock::Steady steady{};
    std::int64_t unix_ms = 0;
};

}  // namespace peermq::detail
