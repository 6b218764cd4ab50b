// PeerProcess: the other side of a benchmark, run as a separate process (this same executable
// with a role argument) and driven over a pair of pipes with one line per command and reply.
//
// Owned by the thread that spawned it; not thread-safe. Destroying it kills and reaps the child
// if it is still running, so a failed figure never leaves a process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "peermq/status.hpp"

namespace peermq::bench {

class PeerProcess {
public:
    // Starts `executable args...` with its stdin and stdout connected to this object.
    static Result<PeerProcess> spawn(const std::string& executable,
                                     const std::vector<std::string>& args);

    PeerProcess(PeerProcess&& other) noexcept;
    PeerProcess& operator=(PeerProcess&& other) noexcept;
    PeerProcess(const PeerProcess&) = delete;
    PeerProcess& operator=(const PeerProcess&) = delete;
    ~PeerProcess();

    Status send_line(std::string_view line);
    // Reads one reply line; `timed_out` past the deadline, `closed` when the child exited.
    Result<std::string> read_line(std::chrono::milliseconds timeout);
    // Reads one line and checks that its first word is `word`; returns every word of it.
    Result<std::vector<std::string>> expect(std::string_view word,
                                            std::chrono::milliseconds timeout);
    // Asks the child to quit, waits for it to exit (killing it after `timeout`) and reaps it.
    Status stop(std::chrono::milliseconds timeout);

    pid_t pid() const noexcept { return pid_; }

private:
    PeerProcess(pid_t pid, int to_child, int from_child)
        : pid_(pid), to_child_(to_child), from_child_(from_child) {}
    void kill_and_reap();
    void close_fds();

    pid_t pid_ = -1;
    int to_child_ = -1;
    int from_child_ = -1;
    std::string buffer_;  // bytes read past the last returned line
};

// Splits on spaces.
std::vector<std::string> split_words(std::string_view line);

}  // namespace peermq::bench
