#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

extern char** environ;

namespace peermq::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
    std::map<std::string, std::string> vars;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string text(*entry);
        vars[text.substr(0, text.find('='))] = text;
    }
    for (const auto& text : extra) vars[text.substr(0, text.find('='))] = text;
    std::vector<std::string> result;
    for (auto& [key, text] : vars) result.push_back(std::move(text));
    return result;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (auto& text : strings) pointers.push_back(text.data());
    pointers.push_back(nullptr);
    return pointers;
}

int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env,
                           Stderr stderr_to) {
    const bool separate = stderr_to == Stderr::separate;
    streams_[1].closed = !separate;
    int in[2] = {-1, -1};
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
        (separate && pipe2(err, O_CLOEXEC) != 0)) {
        for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
            if (fd >= 0) close(fd);
        }
        streams_[0].lines.push_back("pipe failed: " + std::string(std::strerror(errno)));
        streams_[0].closed = streams_[1].closed = true;
        return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, separate ? err[1] : out[1], STDERR_FILENO);
    // The child gets default signal dispositions and an empty mask whatever the test runner set.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    auto env = merged_environment(extra_env);
    auto env_pointers = c_strings(env);
    auto argv_pointers = c_strings(argv);
    pid_t pid = -1;
    const int spawned = posix_spawnp(&pid, argv_pointers[0], &actions, &attributes,
                                     argv_pointers.data(), env_pointers.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(in[0]);
    close(out[1]);
    if (separate) close(err[1]);
    if (spawned != 0) {
        for (int fd : {in[1], out[0], err[0]}) {
            if (fd >= 0) close(fd);
        }
        streams_[0].lines.push_back("spawn failed: " + std::string(std::strerror(spawned)));
        streams_[0].closed = streams_[1].closed = true;
        return;
    }
    pid_ = pid;
    stdin_fd_ = in[1];
    if (pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    reader_ =
        std::thread([this, out_fd = out[0], err_fd = err[0]] { read_output(out_fd, err_fd); });
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !exit_code_) {
        signal(SIGKILL);
        (void)wait(std::chrono::seconds(10));
    }
    close_stdin();
    if (wake_[1] >= 0) {
        const char byte = 1;
        (void)!write(wake_[1], &byte, 1);
    }
    if (reader_.joinable()) reader_.join();
    if (wake_[0] >= 0) close(wake_[0]);
    if (wake_[1] >= 0) close(wake_[1]);
}

void ChildProcess::read_output(int out_fd, int err_fd) {
    int fds[2] = {out_fd, err_fd};  // -1 once a stream ended
    char buffer[4096];
    while (fds[0] >= 0 || fds[1] >= 0) {
        pollfd items[3] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (poll(items, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (items[2].revents != 0) break;  // the destructor gives up on the output
        for (int s = 0; s < 2; ++s) {
            if (fds[s] < 0 || items[s].revents == 0) continue;
            const ssize_t n = read(fds[s], buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            std::lock_guard lock(mutex_);
            Lines& stream = streams_[s];
            if (n <= 0) {
                close(fds[s]);
                fds[s] = -1;
                if (!stream.partial.empty()) stream.lines.push_back(std::move(stream.partial));
                stream.partial.clear();
                stream.closed = true;
            } else {
                stream.text.append(buffer, static_cast<std::size_t>(n));
                stream.partial.append(buffer, static_cast<std::size_t>(n));
                std::size_t newline;
                while ((newline = stream.partial.find('\n')) != std::string::npos) {
                    stream.lines.push_back(stream.partial.substr(0, newline));
                    stream.partial.erase(0, newline + 1);
                }
            }
            changed_.notify_all();
        }
    }
    std::lock_guard lock(mutex_);
    for (int s = 0; s < 2; ++s) {
        if (fds[s] >= 0) close(fds[s]);
        streams_[s].closed = true;
    }
    changed_.notify_all();
}

std::optional<std::string> ChildProcess::wait_for_line(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout,
    Stream stream) {
    std::unique_lock lock(mutex_);
    const Lines& lines = streams_[static_cast<int>(stream)];
    std::size_t checked = 0;
    std::optional<std::string> found;
    changed_.wait_for(lock, timeout, [&] {
        for (; checked < lines.lines.size(); ++checked) {
            if (match(lines.lines[checked])) {
                found = lines.lines[checked];
                return true;
            }
        }
        return lines.closed;
    });
    return found;
}

std::optional<std::string> ChildProcess::wait_for_line_containing(const std::string& text,
                                                                  std::chrono::milliseconds timeout,
                                                                  Stream stream) {
    return wait_for_line(
        [&](const std::string& line) { return line.find(text) != std::string::npos; }, timeout,
        stream);
}

std::optional<std::string> ChildProcess::next_line(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout,
    Stream stream) {
    std::unique_lock lock(mutex_);
    Lines& lines = streams_[static_cast<int>(stream)];
    std::optional<std::string> found;
    changed_.wait_for(lock, timeout, [&] {
        while (lines.cursor < lines.lines.size()) {
            const std::string& line = lines.lines[lines.cursor++];
            if (match(line)) {
                found = line;
                return true;
            }
        }
        return lines.closed;
    });
    return found;
}

std::optional<std::string> ChildProcess::read_line(const std::string& prefix,
                                                   std::chrono::milliseconds timeout) {
    auto line =
        next_line([&](const std::string& text) { return text.starts_with(prefix); }, timeout);
    if (line) line->erase(0, prefix.size());
    return line;
}

std::vector<std::string> ChildProcess::lines(Stream stream) const {
    std::lock_guard lock(mutex_);
    return streams_[static_cast<int>(stream)].lines;
}

std::string ChildProcess::output(Stream stream) const {
    std::lock_guard lock(mutex_);
    const Lines& lines = streams_[static_cast<int>(stream)];
    if (lines.text.empty() && !lines.lines.empty()) {  // what it says when it did not start
        std::string text;
        for (const auto& line : lines.lines) text += line + "\n";
        return text;
    }
    return lines.text;
}

bool ChildProcess::write_stdin(const std::string& text) {
    std::size_t written = 0;
    while (stdin_fd_ >= 0 && written < text.size()) {
        const ssize_t n = write(stdin_fd_, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        written += static_cast<std::size_t>(n);
    }
    return written == text.size();
}

void ChildProcess::close_stdin() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
}

void ChildProcess::signal(int signo) {
    if (pid_ > 0 && !exit_code_) ::kill(pid_, signo);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    if (exit_code_) return exit_code_;
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t done = waitpid(pid_, &status, WNOHANG);
        if (done == pid_ || (done < 0 && errno != EINTR)) {
            exit_code_ = done == pid_ ? exit_code_of(status) : -1;
            // Collect what it wrote last (a process it left behind may hold the pipe: bounded).
            std::unique_lock lock(mutex_);
            changed_.wait_for(lock, std::chrono::seconds(2), [&] { return output_closed(); });
            return exit_code_;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        // No SIGCHLD handler here (the test runner owns signals): check again shortly.
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, std::chrono::milliseconds(10));
    }
}

ProcessResult run_process(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                          std::vector<std::string> extra_env, const std::string& input) {
    // A child that exits without reading all its input must not end the test with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    ChildProcess child(std::move(argv), std::move(extra_env));
    // Fed from a thread of its own: a child that reads nothing until it is killed at the
    // deadline must not block this one.
    std::thread feeder([&] {
        if (!input.empty()) (void)child.write_stdin(input);
        child.close_stdin();
    });
    ProcessResult result;
    result.exit_code = child.wait(timeout);
    if (!result.exit_code) {
        child.signal(SIGKILL);
        (void)child.wait(std::chrono::seconds(5));
    }
    feeder.join();
    result.output = child.output();
    return result;
}

}  // namespace peermq::testing
