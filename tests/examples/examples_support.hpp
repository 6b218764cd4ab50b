// Helpers of the example tests: the example programs run as a user runs them (their output read
// line by line, with deadlines), on lo only, in a cluster of their own.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#ifndef PEERMQ_EXAMPLES_DIR
#error "PEERMQ_EXAMPLES_DIR must be defined by the build"
#endif

namespace peermq::examples_test {

using namespace std::chrono_literals;
using peermq::testing::Args;
using peermq::testing::ChildProcess;
using peermq::testing::operator+;
using peermq::testing::TempDir;

// The flags every example of a test takes: lo only, and a cluster no other run shares.
// `static_peers`: no mDNS at all (the peers come from --peer).
inline Args on_lo(const std::string& cluster, bool static_peers) {
    Args args = {"--interface", "lo", "--cluster", cluster};
    if (static_peers) args = args + Args{"--discovery", "static"};
    return args;
}

inline std::string new_cluster(const std::string& prefix) {
    return prefix + "-" + peermq::testing::unique_token();
}

// One example program (a target name under examples/), killed (SIGKILL) when destroyed.
inline std::unique_ptr<ChildProcess> start(const std::string& program, Args args, Args env = {}) {
    args.insert(args.begin(), std::string(PEERMQ_EXAMPLES_DIR) + "/" + program);
    return std::make_unique<ChildProcess>(std::move(args), std::move(env));
}

// The "host:port" a program prints in its "... up at tcp://host:port" line; empty when it does
// not print one in time.
inline std::string endpoint_of(ChildProcess& process, std::chrono::milliseconds timeout = 20s) {
    const auto line = process.wait_for_line_containing(" at tcp://", timeout);
    if (!line) return {};
    static const std::regex kEndpoint(R"(tcp://([0-9.]+:[0-9]+(?:#\S{40})?))");
    std::smatch match;
    return std::regex_search(*line, match, kEndpoint) ? match[1].str() : std::string();
}

// Every line of `process` so far that matches `pattern`, with its first capture group as an int.
inline std::vector<int> captured_ints(const ChildProcess& process, const std::regex& pattern) {
    std::vector<int> values;
    for (const auto& line : process.lines()) {
        std::smatch match;
        if (std::regex_search(line, match, pattern)) values.push_back(std::stoi(match[1].str()));
    }
    return values;
}

// Waits until `process` has printed `count` lines matching `pattern`.
inline bool wait_for_lines(ChildProcess& process, const std::regex& pattern, std::size_t count,
                           std::chrono::milliseconds timeout) {
    std::size_t seen = 0;
    return process
        .wait_for_line(
            [&](const std::string& line) {
                return std::regex_search(line, pattern) && ++seen >= count;
            },
            timeout)
        .has_value();
}

}  // namespace peermq::examples_test
