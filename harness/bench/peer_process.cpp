#include "peer_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace peermq::bench {
namespace {

using Clock = std::chrono::steady_clock;

Status errno_error(const std::string& what) {
    return make_error(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

std::vector<std::string> split_words(std::string_view line) {
    std::vector<std::string> words;
    std::size_t start = 0;
    while (start < line.size()) {
        const std::size_t end = std::min(line.find(' ', start), line.size());
        if (end > start) words.emplace_back(line.substr(start, end - start));
        start = end + 1;
    }
    return words;
}

Result<PeerProcess> PeerProcess::spawn(const std::string& executable,
                                       const std::vector<std::string>& args) {
    int in[2];   // parent writes commands, child reads them as stdin
    int out[2];  // child writes replies as stdout, parent reads them
    if (::pipe2(in, O_CLOEXEC) != 0) return errno_error("pipe");
    if (::pipe2(out, O_CLOEXEC) != 0) {
        const Status error = errno_error("pipe");
        ::close(in[0]);
        ::close(in[1]);
        return error;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears close-on-exec on the new descriptors; every original closes at exec.
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);

    std::vector<std::string> argv_storage;
    argv_storage.push_back(executable);
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(argv_storage.size() + 1);
    for (auto& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);

    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, executable.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
        ::close(in[1]);
        ::close(out[0]);
        return make_error(ErrorCode::io_error,
                          "cannot start " + executable + ": " + std::strerror(rc));
    }
    return PeerProcess(pid, in[1], out[0]);
}

PeerProcess::PeerProcess(PeerProcess&& other) noexcept
    : pid_(other.pid_),
      to_child_(other.to_child_),
      from_child_(other.from_child_),
      buffer_(std::move(other.buffer_)) {
    other.pid_ = -1;
    other.to_child_ = -1;
    other.from_child_ = -1;
}

PeerProcess& PeerProcess::operator=(PeerProcess&& other) noexcept {
    if (this != &other) {
        kill_and_reap();
        close_fds();
        pid_ = other.pid_;
        to_child_ = other.to_child_;
        from_child_ = other.from_child_;
        buffer_ = std::move(other.buffer_);
        other.pid_ = -1;
        other.to_child_ = -1;
        other.from_child_ = -1;
    }
    return *this;
}

PeerProcess::~PeerProcess() {
    kill_and_reap();
    close_fds();
}

Status PeerProcess::send_line(std::string_view line) {
    if (to_child_ < 0) return make_error(ErrorCode::closed, "the peer process was stopped");
    std::string text(line);
    text.push_back('\n');
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(to_child_, text.data() + written, text.size() - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE) return make_error(ErrorCode::closed, "the peer process exited");
            return errno_error("writing to the peer process");
        }
        written += static_cast<std::size_t>(n);
    }
    return {};
}

Result<std::string> PeerProcess::read_line(std::chrono::milliseconds timeout) {
    if (from_child_ < 0) return make_error(ErrorCode::closed, "the peer process was stopped");
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (const std::size_t end = buffer_.find('\n'); end != std::string::npos) {
            std::string line = buffer_.substr(0, end);
            buffer_.erase(0, end + 1);
            return line;
        }
        pollfd item{from_child_, POLLIN, 0};
        const int ready = ::poll(&item, 1, remaining_ms(deadline));
        if (ready < 0) {
            if (errno == EINTR) continue;
            return errno_error("waiting for the peer process");
        }
        if (ready == 0) {
            return make_error(ErrorCode::timed_out, "the peer process did not answer within " +
                                                        std::to_string(timeout.count()) + " ms");
        }
        char chunk[512];
        const ssize_t n = ::read(from_child_, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("reading from the peer process");
        }
        if (n == 0) return make_error(ErrorCode::closed, "the peer process exited");
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

Result<std::vector<std::string>> PeerProcess::expect(std::string_view word,
                                                     std::chrono::milliseconds timeout) {
    auto line = read_line(timeout);
    if (!line) return line.status();
    auto words = split_words(line.value());
    if (words.empty() || words.front() != word) {
        return make_error(ErrorCode::protocol_error, "expected '" + std::string(word) +
                                                         "' from the peer process, got '" +
                                                         line.value() + "'");
    }
    return words;
}

Status PeerProcess::stop(std::chrono::milliseconds timeout) {
    if (pid_ < 0) return {};
    (void)send_line("quit");
    // The child closes its end of the pipe when it exits: EOF is the signal, no polling of pid.
    Status result;
    for (;;) {
        auto line = read_line(timeout);
        if (line) continue;  // late output
        if (line.status().code() == ErrorCode::closed) break;
        result = make_error(ErrorCode::timed_out, "the peer process did not exit; killed it");
        ::kill(pid_, SIGKILL);
        break;
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    close_fds();
    if (result.ok() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        result =
            make_error(ErrorCode::internal,
                       WIFSIGNALED(status)
                           ? "the peer process died of signal " + std::to_string(WTERMSIG(status))
                           : "the peer process exited with " + std::to_string(WEXITSTATUS(status)));
    }
    return result;
}

void PeerProcess::kill_and_reap() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

void PeerProcess::close_fds() {
    if (to_child_ >= 0) ::close(to_child_);
    if (from_child_ >= 0) ::close(from_child_);
    to_child_ = -1;
    from_child_ = -1;
}

}  // namespace peermq::bench
