// ChildProcess: a program started by a system test, with its output read line by line.
//
// stdout and stderr of the child go to one pipe that a reader thread collects; tests wait for a
// line with a deadline (never sleep). The destructor SIGKILLs the child if it still runs and
// reaps it: only the PID this object spawned is ever signalled. Not copyable; the methods may be
// called from one test thread while the reader thread runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace peermq::test {

using Clock = std::chrono::steady_clock;

class ChildProcess {
public:
    // argv[0] is looked up in PATH. `extra_env` entries ("KEY=value") override the environment.
    ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    bool started() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }

    // The first line (from the start of the output) for which `match` is true.
    std::optional<std::string> wait_for_line(const std::function<bool(const std::string&)>& match,
                                             std::chrono::milliseconds timeout);
    std::optional<std::string> wait_for_line_containing(const std::string& text,
                                                        std::chrono::milliseconds timeout);
    std::vector<std::string> lines() const;
    std::string output() const;

    void close_stdin();
    void signal(int signo);  // to this child only, while it has not been reaped
    // Waits for the child to exit; its exit code (128 + signal when killed), or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);

private:
    void read_output(int fd);

    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    int wake_[2] = {-1, -1};  // tells the reader thread to stop waiting for output
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> lines_;
    std::string partial_;
    bool output_closed_ = false;
    std::optional<int> exit_code_;
};

struct CommandResult {
    std::optional<int> exit_code;  // nullopt: timed out (and killed)
    std::string output;            // stdout and stderr
};

// Runs a command to completion, killing it at the deadline.
CommandResult run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                          std::vector<std::string> extra_env = {});

}  // namespace peermq::test
