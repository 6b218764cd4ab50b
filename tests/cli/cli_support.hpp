// Helpers of the CLI tests: the `peermq` binary run as a user runs it (its stdout, stderr and
// exit code, each read separately, with deadlines), and `peermq_driver node` processes to talk
// to with the tests' liveness settings.
#pragma once

#include <signal.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/driver.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#ifndef PEERMQ_CLI
#error "PEERMQ_CLI must be defined by the build"
#endif

namespace peermq::cli_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using peermq::testing::Args;
using peermq::testing::ChildProcess;
using peermq::testing::host_port;
using peermq::testing::liveness_args;
using peermq::testing::operator+;
using peermq::testing::read_log;
using peermq::testing::TempDir;
using peermq::testing::wait_until;

inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// What a finished `peermq` run left behind.
struct CliResult {
    int exit_code = -1;  // -1: killed at the deadline, or by a signal
    std::string out;
    std::string err;

    std::vector<std::string> out_lines() const { return split_lines(out); }
    std::vector<std::string> err_lines() const { return split_lines(err); }
};

inline std::ostream& operator<<(std::ostream& os, const CliResult& r) {
    return os << "exit " << r.exit_code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

// One run of the `peermq` binary, its stdout and stderr read separately. Killed (SIGKILL) when
// destroyed before it exited.
class CliProcess {
public:
    // `env`: NAME=VALUE entries added to its environment.
    explicit CliProcess(Args args, Args env = {})
        : child_(Args{PEERMQ_CLI} + std::move(args), std::move(env),
                 ChildProcess::Stderr::separate) {}

    void write_stdin(const std::string& text) { (void)child_.write_stdin(text); }
    void close_stdin() { child_.close_stdin(); }
    void signal(int sig) { child_.signal(sig); }

    // The next stdout (or stderr) line containing `needle`, or nullopt at the deadline or the end
    // of the stream. The lines passed over stay in the result of finish().
    std::optional<std::string> wait_out(const std::string& needle,
                                        std::chrono::milliseconds timeout = 20s) {
        return next_containing(ChildProcess::Stream::out, needle, timeout);
    }
    std::optional<std::string> wait_err(const std::string& needle,
                                        std::chrono::milliseconds timeout = 20s) {
        return next_containing(ChildProcess::Stream::err, needle, timeout);
    }

    // Waits for the exit (killed at the deadline) and returns what it wrote.
    CliResult finish(std::chrono::milliseconds timeout = 30s) {
        auto code = child_.wait(timeout);
        if (!code) {
            child_.signal(SIGKILL);
            (void)child_.wait(5s);
        }
        CliResult result;
        result.exit_code = code && *code >= 0 && *code < 128 ? *code : -1;
        result.out = child_.output(ChildProcess::Stream::out);
        result.err = child_.output(ChildProcess::Stream::err);
        return result;
    }

private:
    std::optional<std::string> next_containing(ChildProcess::Stream stream,
                                               const std::string& needle,
                                               std::chrono::milliseconds timeout) {
        return child_.next_line(
            [&](const std::string& line) { return line.find(needle) != std::string::npos; },
            timeout, stream);
    }

    ChildProcess child_;
};

// Runs `peermq args...` to its end.
inline CliResult run_cli(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
    CliProcess process(std::move(args));
    process.close_stdin();
    return process.finish(timeout);
}

// The options every CLI run of these tests takes: loopback only, static peers only.
inline std::vector<std::string> on_lo(const std::vector<std::string>& peers = {}) {
    std::vector<std::string> args = {"--interface", "lo", "--discovery", "static"};
    for (const auto& peer : peers) {
        args.push_back("--peer");
        args.push_back(host_port(peer));
    }
    return args;
}

// The endpoint a `consume` or `tap` run announces on stderr once it is listening.
inline std::string listening_endpoint(CliProcess& process) {
    auto line = process.wait_err(" on tcp://", 20s);
    if (!line) return {};
    const auto begin = line->find("tcp://");
    const auto end = line->find_first_of("; ", begin);
    return line->substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// One `peermq_driver node` process with the test nodes' liveness (testing::kHeartbeat and
// kPeerTimeout). Killed (SIGKILL) when destroyed.
struct TestNode : peermq::testing::TestNode {
    explicit TestNode(Args args, Args extra_env = {})
        : peermq::testing::TestNode(std::move(args) + liveness_args(), std::move(extra_env)) {}
};

// What a user gets wrong: one line "peermq: ..." on stderr mentioning `mentions`, nothing on
// stdout, and `exit_code`.
inline void expect_one_error_line(const CliResult& result, int exit_code,
                                  const std::string& mentions) {
    EXPECT_EQ(result.exit_code, exit_code) << result;
    EXPECT_EQ(result.out, "") << result;
    const auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << result;
    EXPECT_EQ(lines[0].rfind("peermq: ", 0), 0u) << result;
    EXPECT_NE(lines[0].find(mentions), std::string::npos) << "expected '" << mentions << "' in\n"
                                                          << result;
}

}  // namespace peermq::cli_test
