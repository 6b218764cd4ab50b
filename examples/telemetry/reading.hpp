// The message of the telemetry example: one reading of one sensor, published on the topic
// "sensors.<site>.<kind>".
#pragma once

#include <cstdint>
#include <string>

#include <peermq/peermq.hpp>

namespace telemetry {

struct Reading {
    std::string site;
    std::string kind;
    std::uint64_t seq = 0;  // 1, 2, 3... per sensor process: shows what a subscriber missed
    double value = 0;
    std::string unit;
    MSGPACK_DEFINE_MAP(site, kind, seq, value, unit)
};

}  // namespace telemetry
