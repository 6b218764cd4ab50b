#include "support/driver.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "support/wait.hpp"

#ifndef PEERMQ_DRIVER
#error "PEERMQ_DRIVER must be defined by the build"
#endif

namespace peermq::testing {
namespace {

// "key=value" words of a line whose value is a number.
std::map<std::string, std::int64_t> numbers_of(const std::string& line) {
    std::map<std::string, std::int64_t> fields;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
        const auto eq = word.find('=');
        if (eq == std::string::npos || eq + 1 == word.size()) continue;
        const std::string value = word.substr(eq + 1);
        if (!std::isdigit(static_cast<unsigned char>(value[0]))) continue;
        fields[word.substr(0, eq)] = std::stoll(value);
    }
    return fields;
}

}  // namespace

std::vector<std::string> driver_argv(const std::string& role) { return {PEERMQ_DRIVER, role}; }

std::vector<std::string> liveness_args() {
    return {"--heartbeat-ms", std::to_string(kHeartbeat.count()), "--peer-timeout-ms",
            std::to_string(kPeerTimeout.count())};
}

std::int64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

std::vector<long long> read_log(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    std::vector<long long> values;
    std::size_t begin = 0;
    for (std::size_t end = text.find('\n'); end != std::string::npos;
         end = text.find('\n', begin)) {
        values.push_back(std::stoll(text.substr(begin, end - begin)));
        begin = end + 1;
    }
    return values;
}

std::map<long long, int> counts(const std::vector<long long>& values) {
    std::map<long long, int> out;
    for (long long v : values) ++out[v];
    return out;
}

// --- TestNode ----------------------------------------------------------------------------------

TestNode::TestNode(Args args, Args extra_env, Args prefix)
    : process_(std::make_unique<ChildProcess>(prefix + driver_argv("node") + args,
                                              std::move(extra_env))) {
    if (auto ready = process_->read_line("READY ", 20s)) endpoint_ = *ready;
}

std::optional<std::map<std::string, std::uint64_t>> TestNode::stats(
    std::chrono::milliseconds timeout) {
    process_->signal(SIGUSR1);
    auto line = process_->read_line("STATS", timeout);
    if (!line) return std::nullopt;
    std::map<std::string, std::uint64_t> out;
    std::istringstream in(*line);
    std::string item;
    while (in >> item) {
        const auto eq = item.rfind('=');
        if (eq == std::string::npos) continue;
        out[item.substr(0, eq)] = std::stoull(item.substr(eq + 1));
    }
    return out;
}

std::optional<std::uint64_t> TestNode::stat(const std::string& key) {
    auto all = stats();
    if (!all) return std::nullopt;
    auto it = all->find(key);
    return it == all->end() ? 0 : it->second;
}

bool TestNode::wait_stat(const std::string& key, std::uint64_t value,
                         std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
            const auto current = stat(key);
            return current && *current == value;
        },
        timeout);
}

std::optional<int> TestNode::stop() {
    process_->close_stdin();
    return process_->wait(30s);
}

// --- ProbeNode ---------------------------------------------------------------------------------

ProbeNode::ProbeNode(const std::string& dir, std::string name, std::vector<std::string> args,
                     std::vector<std::string> prefix, std::vector<std::string> extra_env)
    : name_(std::move(name)) {
    const std::string fifo = dir + "/" + name_ + ".ctl";
    if (mkfifo(fifo.c_str(), 0600) == 0) commands_ = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    std::vector<std::string> argv = prefix + driver_argv("probe") +
                                    std::vector<std::string>{"--name", name_, "--commands", fifo};
    process_ = std::make_unique<ChildProcess>(argv + args, std::move(extra_env));
}

ProbeNode::~ProbeNode() {
    if (commands_ >= 0) close(commands_);
}

std::string ProbeNode::tail() const {
    std::string text;
    for (const auto& line : process_->lines()) {
        if (!line.starts_with("GOT ")) text += line + "\n";
    }
    return text;
}

bool ProbeNode::ready(std::chrono::milliseconds timeout) {
    const auto line = process_->wait_for_line_containing("READY id=", timeout);
    if (!line || commands_ < 0) return false;
    id_ = line->substr(line->find("id=") + 3, 36);
    return true;
}

bool ProbeNode::tell(const std::string& command) {
    const std::string line = command + "\n";
    return commands_ >= 0 &&
           write(commands_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}

std::optional<std::string> ProbeNode::ask(const std::string& command,
                                          std::chrono::milliseconds timeout) {
    std::string upper = command.substr(0, command.find(' '));
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    const std::size_t skip = process_->lines().size();
    if (!tell(command)) return std::nullopt;
    std::size_t index = 0;
    return process_->wait_for_line(
        [&](const std::string& text) { return index++ >= skip && text.starts_with(upper + " "); },
        timeout);
}

bool ProbeNode::ask_ok(const std::string& command, std::chrono::milliseconds timeout) {
    const auto answer = ask(command, timeout);
    const bool ok = answer && answer->find(" ok") != std::string::npos;
    EXPECT_TRUE(ok) << name_ << ": '" << command << "' answered " << answer.value_or("nothing")
                    << "; output:\n"
                    << tail();
    return ok;
}

std::map<std::string, std::int64_t> ProbeNode::stats(const std::string& queue) {
    const auto answer = ask("stats " + queue, 10s);
    return answer ? numbers_of(*answer) : std::map<std::string, std::int64_t>{};
}

std::optional<std::int64_t> ProbeNode::peer_state(const std::string& peer, const std::string& state,
                                                  std::int64_t since_ns,
                                                  std::chrono::milliseconds timeout) {
    std::optional<std::int64_t> at;
    process_->wait_for_line(
        [&](const std::string& line) {
            if (!line.starts_with("PEER t_ns=") ||
                line.find(" name=" + peer + " ") == std::string::npos ||
                line.find(" state=" + state + " ") == std::string::npos) {
                return false;
            }
            const std::int64_t t = std::stoll(line.substr(10));
            if (t < since_ns) return false;
            at = t;
            return true;
        },
        timeout);
    return at;
}

std::vector<long long> ProbeNode::got() const {
    std::vector<long long> values;
    for (const auto& line : process_->lines()) {
        if (line.starts_with("GOT ")) values.push_back(std::stoll(line.substr(4)));
    }
    return values;
}

bool ProbeNode::got_from(long long first, std::chrono::milliseconds timeout) {
    return process_
        ->wait_for_line(
            [&](const std::string& line) {
                return line.starts_with("GOT ") && std::stoll(line.substr(4)) >= first;
            },
            timeout)
        .has_value();
}

std::optional<int> ProbeNode::quit() {
    (void)tell("quit");
    return process_->wait(15s);
}

}  // namespace peermq::testing
