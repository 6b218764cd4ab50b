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

namespace peermq::test {
namespace {

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

ChildProcess::ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env) {
    int in[2];
    int out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
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
    if (spawned != 0) {
        close(in[1]);
        close(out[0]);
        std::lock_guard lock(mutex_);
        lines_.push_back("spawn failed: " + std::string(std::strerror(spawned)));
        output_closed_ = true;
        return;
    }
    pid_ = pid;
    stdin_fd_ = in[1];
    if (pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    reader_ = std::thread([this, fd = out[0]] { read_output(fd); });
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

void ChildProcess::read_output(int fd) {
    char buffer[4096];
    for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents != 0) break;  // the destructor gives up on the output
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard lock(mutex_);
        partial_.append(buffer, static_cast<std::size_t>(n));
        std::size_t newline;
        while ((newline = partial_.find('\n')) != std::string::npos) {
            lines_.push_back(partial_.substr(0, newline));
            partial_.erase(0, newline + 1);
        }
        changed_.notify_all();
    }
    close(fd);
    std::lock_guard lock(mutex_);
    if (!partial_.empty()) lines_.push_back(std::move(partial_));
    partial_.clear();
    output_closed_ = true;
    changed_.notify_all();
}

std::optional<std::string> ChildProcess::wait_for_line(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::size_t checked = 0;
    std::optional<std::string> found;
    changed_.wait_for(lock, timeout, [&] {
        for (; checked < lines_.size(); ++checked) {
            if (match(lines_[checked])) {
                found = lines_[checked];
                return true;
            }
        }
        return output_closed_;
    });
    return found;
}

std::optional<std::string> ChildProcess::wait_for_line_containing(
    const std::string& text, std::chrono::milliseconds timeout) {
    return wait_for_line(
        [&](const std::string& line) { return line.find(text) != std::string::npos; }, timeout);
}

std::vector<std::string> ChildProcess::lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
}

std::string ChildProcess::output() const {
    std::string text;
    for (const auto& line : lines()) text += line + "\n";
    return text;
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
            changed_.wait_for(lock, std::chrono::seconds(2), [&] { return output_closed_; });
            return exit_code_;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        // No SIGCHLD handler here (the test runner owns signals): check again shortly.
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, std::chrono::milliseconds(10));
    }
}

CommandResult run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                          std::vector<std::string> extra_env) {
    ChildProcess child(std::move(argv), std::move(extra_env));
    child.close_stdin();
    CommandResult result;
    result.exit_code = child.wait(timeout);
    if (!result.exit_code) {
        child.signal(SIGKILL);
        (void)child.wait(std::chrono::seconds(5));
    }
    result.output = child.output();
    return result;
}

}  // namespace peermq::test
