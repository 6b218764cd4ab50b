// Test helper: a child process with a pipe to its stdout, killed (SIGKILL) at destruction.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace peermq::testing {

class ChildProcess {
public:
    explicit ChildProcess(std::vector<std::string> argv) {
        int out[2];
        int in[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe failed");
        }
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            ::dup2(in[0], STDIN_FILENO);
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
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
    std::optional<std::string> read_line(const std::string& prefix,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (auto pos = buffer_.find('\n'); pos != std::string::npos; pos = buffer_.find('\n')) {
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

}  // namespace peermq::testing
