// Test helper: run a program to completion with some bytes on its stdin, collecting its output.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace peermq::testing {

struct ProcessResult {
    int exit_code = -1;  // -1 when killed (signal or deadline)
    std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a path) with `input` on stdin; kills it with SIGKILL at the deadline.
inline ProcessResult run_process(std::vector<std::string> argv, const std::string& input = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    int out[2];
    int in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(out[1], STDERR_FILENO);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
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
