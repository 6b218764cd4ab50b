// Test helpers: starting a program in a child process (spawn), a child process with a pipe to
// its stdout killed (SIGKILL) at destruction (ChildProcess), and a program run to completion
// with its output collected (run_process).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace peermq::testing {

// A pipe ({read end, write end}) whose ends close on exec.
inline std::array<int, 2> make_pipe() {
    std::array<int, 2> fds{-1, -1};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    return fds;
}

// Forks and executes argv[0] (a path) with `in`, `out` and `err` as its stdin, stdout and
// stderr (-1: the parent's own); the child exits with 127 when it cannot be executed.
inline pid_t spawn(std::vector<std::string> argv, int in, int out, int err) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        if (in >= 0) ::dup2(in, STDIN_FILENO);
        if (out >= 0) ::dup2(out, STDOUT_FILENO);
        if (err >= 0) ::dup2(err, STDERR_FILENO);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

// A program in a child process with a pipe from its stdout and one to its stdin; killed (SIGKILL)
// and reaped when destroyed. Not thread-safe.
class ChildProcess {
public:
    explicit ChildProcess(std::vector<std::string> argv) {
        const auto out = make_pipe();
        const auto in = make_pipe();
        pid_ = spawn(std::move(argv), in[0], out[1], -1);
        ::close(out[1]);
        ::close(in[0]);
        stdout_ = out[0];
        stdin_ = in[1];
    }
    ~ChildProcess() {
        kill(SIGKILL);
        wait();
        if (stdout_ >= 0) ::close(stdout_);
        if (stdin_ >= 0) ::close(stdin_);
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }

    // The next line the child prints that starts with `prefix`, or nullopt at the deadline / EOF.
    std::optional<std::string> read_line(
        const std::string& prefix, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (auto pos = buffer_.find('\n'); pos != std::string::npos;
                 pos = buffer_.find('\n')) {
                std::string line = buffer_.substr(0, pos);
                buffer_.erase(0, pos + 1);
                if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{stdout_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char chunk[4096];
            const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
            if (n <= 0) return std::nullopt;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    void kill(int signal) {
        if (pid_ > 0 && !exited_) ::kill(pid_, signal);
    }
    // Closes the child's stdin: peermq_test_node then closes its node and exits.
    void close_stdin() {
        if (stdin_ >= 0) ::close(stdin_);
        stdin_ = -1;
    }
    int wait() {
        if (pid_ <= 0 || exited_) return status_;
        ::waitpid(pid_, &status_, 0);
        exited_ = true;
        return status_;
    }

private:
    pid_t pid_ = -1;
    int stdout_ = -1;
    int stdin_ = -1;
    bool exited_ = false;
    int status_ = 0;
    std::string buffer_;
};

// What run_process() collected.
struct ProcessResult {
    int exit_code = -1;  // -1 when killed (signal or deadline)
    std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a path) with `input` on stdin; kills it with SIGKILL at the deadline.
inline ProcessResult run_process(std::vector<std::string> argv, const std::string& input = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto out = make_pipe();
    const auto in = make_pipe();
    const pid_t pid = spawn(std::move(argv), in[0], out[1], out[1]);
    ::close(out[1]);
    ::close(in[0]);
    ::fcntl(in[1], F_SETFL, O_NONBLOCK);
    ::signal(SIGPIPE, SIG_IGN);  // a child that exits without reading its stdin

    ProcessResult result;
    std::size_t written = 0;
    int stdin_fd = in[1];
    if (input.empty()) {
        ::close(stdin_fd);
        stdin_fd = -1;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool killed = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        pollfd fds[2] = {{out[0], POLLIN, 0}, {stdin_fd, POLLOUT, 0}};
        if (::poll(fds, stdin_fd >= 0 ? 2 : 1, static_cast<int>(left.count())) <= 0) continue;
        if (stdin_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            const ssize_t n = ::write(stdin_fd, input.data() + written, input.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            if (n < 0 || written == input.size()) {
                ::close(stdin_fd);
                stdin_fd = -1;
            }
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            char chunk[65536];
            const ssize_t n = ::read(out[0], chunk, sizeof chunk);
            if (n <= 0) break;  // EOF: the child closed its output
            result.output.append(chunk, static_cast<std::size_t>(n));
        }
    }
    if (stdin_fd >= 0) ::close(stdin_fd);
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!killed && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    return result;
}

}  // namespace peermq::testing
