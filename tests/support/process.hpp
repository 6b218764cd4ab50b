// Test helpers: a program started by a test in a process of its own (ChildProcess), its output
// read line by line with deadlines; and a program run to completion (run_process).
//
// ChildProcess: the child's stdout and stderr go to one pipe (or, on request, to one each) that a
// reader thread collects; tests wait for a line with a deadline (never sleep). The destructor
// SIGKILLs the child if it still runs and reaps it: only the PID this object spawned is ever
// signalled. Not copyable; the methods may be called from one test thread while the reader
// thread runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace peermq::testing {

class ChildProcess {
public:
    // Where the child's stderr goes: into the stdout lines, or into lines of its own.
    enum class Stderr { merged, separate };
    enum class Stream { out = 0, err = 1 };  // err: only with Stderr::separate

    // argv[0] is a path, or looked up in PATH. `extra_env` entries ("KEY=value") override the
    // environment. The child starts with default signal dispositions and an empty signal mask.
    explicit ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env = {},
                          Stderr stderr_to = Stderr::merged);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    bool started() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }

    // The first line from the start of the output for which `match` is true (lines are not
    // consumed: a later call may return the same line); nullopt at the deadline or once the
    // output ended.
    std::optional<std::string> wait_for_line(const std::function<bool(const std::string&)>& match,
                                             std::chrono::milliseconds timeout,
                                             Stream stream = Stream::out);
    std::optional<std::string> wait_for_line_containing(const std::string& text,
                                                        std::chrono::milliseconds timeout,
                                                        Stream stream = Stream::out);
    // The next line after the last one next_line() returned for which `match` is true; the
    // lines passed over on the way are consumed. For request/answer exchanges (an answer that
    // comes late is read by the next call).
    std::optional<std::string> next_line(const std::function<bool(const std::string&)>& match,
                                         std::chrono::milliseconds timeout,
                                         Stream stream = Stream::out);
    // next_line() starting with `prefix`, without the prefix.
    std::optional<std::string> read_line(
        const std::string& prefix, std::chrono::milliseconds timeout = std::chrono::seconds(20));
    std::vector<std::string> lines(Stream stream = Stream::out) const;
    // Everything the stream carried so far, byte for byte.
    std::string output(Stream stream = Stream::out) const;

    // Writes to the child's stdin (false when it is closed or the child does not read it).
    bool write_stdin(const std::string& text);
    void close_stdin();
    void signal(int signo);  // to this child only, while it has not been reaped
    // Waits for the child to exit; its exit code (128 + signal when killed), or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));

private:
    struct Lines {
        std::vector<std::string> lines;
        std::string text;        // every byte read
        std::string partial;     // the last line, until its newline
        std::size_t cursor = 0;  // next_line(): the lines before this one are consumed
        bool closed = false;
    };
    void read_output(int out_fd, int err_fd);
    bool output_closed() const { return streams_[0].closed && streams_[1].closed; }

    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    int wake_[2] = {-1, -1};  // tells the reader thread to stop waiting for output
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    Lines streams_[2];
    std::optional<int> exit_code_;
};

struct ProcessResult {
    std::optional<int> exit_code;  // nullopt: timed out (and killed); 128 + signal when killed
    std::string output;            // stdout and stderr
};

// Runs a program to completion with `input` on its stdin, killing it at the deadline.
ProcessResult run_process(std::vector<std::string> argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          std::vector<std::string> extra_env = {}, const std::string& input = {});

}  // namespace peermq::testing
