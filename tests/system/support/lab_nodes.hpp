// The lab tests' nodes and commands (scripts/lab.sh): a `peermq_driver probe` on a lab host, and
// lab.sh run with a test failure when it fails.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/driver.hpp"
#include "support/process.hpp"
#include "system/support/system_env.hpp"

namespace peermq::testing {

// A `peermq_driver probe` on one lab host, with static peers only (nothing from the test's
// environment) and the secret key `secret_key` (its peers are given the public half).
inline std::unique_ptr<ProbeNode> lab_node(const std::string& dir, int host,
                                           const std::string& name,
                                           const std::vector<std::string>& args,
                                           const std::string& secret_key) {
    return std::make_unique<ProbeNode>(
        dir, name, args, std::vector<std::string>{lab_script(), "exec", std::to_string(host)},
        std::vector<std::string>{kNoStaticPeers, "PEERMQ_SECRET_KEY=" + secret_key});
}

// `lab.sh ARGS...`; a test failure (with its output) unless it succeeds.
inline bool lab(const std::vector<std::string>& args) {
    std::vector<std::string> command = {lab_script()};
    command.insert(command.end(), args.begin(), args.end());
    const auto result = run_process(command, std::chrono::seconds(20));
    std::string shown;
    for (const auto& arg : args) shown += " " + arg;
    EXPECT_EQ(result.exit_code, 0) << "lab.sh" << shown << ":\n" << result.output;
    return result.exit_code == 0;
}

inline bool lab(const std::string& action, int host) { return lab({action, std::to_string(host)}); }

}  // namespace peermq::testing
