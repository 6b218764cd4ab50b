// The wall clock as peermq stamps messages and ids: CLOCK_REALTIME_COARSE, in milliseconds.
// Every send() reads it (its UUIDv7 and its created stamp); a precise read costs about ten times
// as much for a resolution the stamps and TTLs do not need beyond a few ms
// (docs/spec/reliability.md).
#pragma once

#include <cstdint>
#include <ctime>

namespace peermq::detail {

inline std::int64_t coarse_unix_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace peermq::detail
