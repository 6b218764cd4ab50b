// Helpers of the CLI tests: the `peermq` binary run as a user runs it (its stdout, stderr and
// exit code, each read separately, with deadlines), peermq_test_node processes to talk to, and
// temporary directories.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_node_process.hpp"
#include "wait.hpp"

#ifndef PEERMQ_CLI
#error "PEERMQ_CLI must be defined by the build"
#endif

namespace peermq::cli_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Args = std::vector<std::string>;
using peermq::testing::ChildProcess;
using peermq::testing::host_port;
using peermq::testing::operator+;
using peermq::testing::wait_until;

// Liveness of the test nodes: a stopped node is noticed quickly, a busy one is not mistaken for
// a dead one on two shared cores.
inline constexpr auto kHeartbeat = 250ms;
inline constexpr auto kPeerTimeout = 1500ms;

// A temporary directory peermq-cli-XXXXXX, removed with everything in it.
struct TempDir : peermq::testing::TempDir {
    TempDir() : peermq::testing::TempDir("peermq-cli") {}
};

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

// One run of the `peermq` binary with separate pipes for stdin, stdout and stderr. Killed
// (SIGKILL) when destroyed before it exited.
class CliProcess {
public:
    explicit CliProcess(std::vector<std::string> args) {
        args.insert(args.begin(), PEERMQ_CLI);
        const auto in = peermq::testing::make_pipe();
        const auto out = peermq::testing::make_pipe();
        const auto err = peermq::testing::make_pipe();
        pid_ = peermq::testing::spawn(std::move(args), in[0], out[1], err[1]);
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        stdin_ = in[1];
        fds_[0] = out[0];
        fds_[1] = err[0];
    }
    ~CliProcess() {
        if (!exited_) {
            ::kill(pid_, SIGKILL);
            (void)wait_exit(5s);
        }
        close_stdin();
        for (int fd : fds_) {
            if (fd >= 0) ::close(fd);
        }
    }
    CliProcess(const CliProcess&) = delete;
    CliProcess& operator=(const CliProcess&) = delete;

    void write_stdin(const std::string& text) {
        const char* p = text.data();
        std::size_t left = text.size();
        while (left > 0) {
            const ssize_t n = ::write(stdin_, p, left);
            if (n <= 0) return;
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    }
    void close_stdin() {
        if (stdin_ >= 0) ::close(stdin_);
        stdin_ = -1;
    }
    void signal(int sig) {
        if (!exited_) ::kill(pid_, sig);
    }

    // The next stdout (stream 0) or stderr (stream 1) line containing `needle`, or nullopt at
    // the deadline or end of stream. Lines read past stay in the result of finish().
    std::optional<std::string> wait_line(int stream, const std::string& needle,
                                         std::chrono::milliseconds timeout = 20s) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            std::size_t& pos = scanned_[stream];
            const std::string& text = text_[stream];
            for (auto end = text.find('\n', pos); end != std::string::npos;
                 end = text.find('\n', pos)) {
                std::string line = text.substr(pos, end - pos);
                pos = end + 1;
                if (line.find(needle) != std::string::npos) return line;
            }
            if (fds_[stream] < 0 || Clock::now() >= deadline) return std::nullopt;
            pump(deadline);
        }
    }
    std::optional<std::string> wait_out(const std::string& needle,
                                        std::chrono::milliseconds timeout = 20s) {
        return wait_line(0, needle, timeout);
    }
    std::optional<std::string> wait_err(const std::string& needle,
                                        std::chrono::milliseconds timeout = 20s) {
        return wait_line(1, needle, timeout);
    }

    // Reads both streams to their end and waits for the exit; killed at the deadline.
    CliResult finish(std::chrono::milliseconds timeout = 30s) {
        const auto deadline = Clock::now() + timeout;
        while ((fds_[0] >= 0 || fds_[1] >= 0) && Clock::now() < deadline) pump(deadline);
        CliResult result;
        if (fds_[0] >= 0 || fds_[1] >= 0) ::kill(pid_, SIGKILL);
        const int status = wait_exit(deadline - Clock::now() + 5s);
        result.exit_code =
            exited_ && WIFEXITED(status) && !killed_at_deadline_ ? WEXITSTATUS(status) : -1;
        result.out = text_[0];
        result.err = text_[1];
        return result;
    }

    bool exited() {
        if (exited_) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exited_ = true;
            status_ = status;
        }
        return exited_;
    }

private:
    // Reads whatever either stream has, waiting until the deadline at most.
    void pump(Clock::time_point deadline) {
        pollfd p[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (::poll(p, 2, static_cast<int>(std::max<long long>(0, left))) <= 0) return;
        for (int i = 0; i < 2; ++i) {
            if (fds_[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char chunk[8192];
            const ssize_t n = ::read(fds_[i], chunk, sizeof chunk);
            if (n <= 0) {
                ::close(fds_[i]);
                fds_[i] = -1;
            } else {
                text_[i].append(chunk, static_cast<std::size_t>(n));
            }
        }
    }

    int wait_exit(Clock::duration timeout) {
        if (!wait_until([&] { return exited(); },
                        std::chrono::duration_cast<std::chrono::milliseconds>(timeout))) {
            ::kill(pid_, SIGKILL);
            killed_at_deadline_ = true;
            ::waitpid(pid_, &status_, 0);
            exited_ = true;
        }
        return status_;
    }

    pid_t pid_ = -1;
    int stdin_ = -1;
    int fds_[2] = {-1, -1};
    std::string text_[2];
    std::size_t scanned_[2] = {0, 0};
    bool exited_ = false;
    bool killed_at_deadline_ = false;
    int status_ = 0;
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

// One peermq_test_node process with the tests' liveness settings. Killed (SIGKILL) when
// destroyed.
struct TestNode : peermq::testing::TestNode {
    explicit TestNode(Args args)
        : peermq::testing::TestNode(
              std::move(args) + Args{"--heartbeat-ms", std::to_string(kHeartbeat.count()),
                                     "--peer-timeout-ms", std::to_string(kPeerTimeout.count())}) {}
};

// The payloads a peermq_test_node consumer logged.
inline std::vector<std::string> read_log(const std::string& path) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    // A line still being written (no newline yet) is left for the next read.
    return split_lines(
        text.substr(0, text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1));
}

}  // namespace peermq::cli_test
