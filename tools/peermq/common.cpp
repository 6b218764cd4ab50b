// Output and process plumbing of the subcommands (common.hpp): tables and joined names, signals
// (Interrupts), the handlers' wakeup (Wakeup), the progress bar and notes on stderr. Node
// options are in common_node.cpp, durations and times in common_time.cpp, payloads and JSON in
// common_json.cpp.
#include "common.hpp"

#include <systemd/sd-daemon.h>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace peermq::cli {

// ---------------------------------------------------------------------------------------------
// Output

std::string Table::render() const {
    std::vector<std::size_t> widths(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    };
    measure(header_);
    for (const auto& row : rows_) measure(row);
    std::string out;
    auto line = [&](const std::vector<std::string>& row) {
        std::string text;
        for (std::size_t i = 0; i < widths.size(); ++i) {
            const std::string cell = i < row.size() ? row[i] : "";
            text += cell;
            if (i + 1 < widths.size()) text += std::string(widths[i] - cell.size() + 2, ' ');
        }
        while (!text.empty() && text.back() == ' ') text.pop_back();
        out += text + "\n";
    };
    line(header_);
    for (const auto& row : rows_) line(row);
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator,
                 std::string_view empty) {
    if (items.empty()) return std::string(empty);
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

std::string join_names(const std::vector<std::string>& names, std::uint64_t omitted,
                       std::size_t shown) {
    if (names.empty() && omitted == 0) return "-";
    std::string out;
    const std::size_t listed = std::min(names.size(), shown);
    for (std::size_t i = 0; i < listed; ++i) {
        if (i > 0) out += ",";
        out += names[i];
    }
    const std::uint64_t more = names.size() - listed + omitted;
    if (more > 0) out += (out.empty() ? "+" : " +") + std::to_string(more) + " more";
    return out;
}

std::string truncate(std::string text, std::size_t width) {
    for (auto& c : text) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (text.size() <= width) return text;
    // Cut on a UTF-8 character boundary.
    std::size_t cut = width > 3 ? width - 3 : 0;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
    return text.substr(0, cut) + "...";
}

Interrupts::Interrupts() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) throw CliError(std::string("signalfd failed: ") + std::strerror(errno));
}

Interrupts::~Interrupts() {
    if (fd_ >= 0) ::close(fd_);
}

bool Interrupts::received() {
    signalfd_siginfo info;
    while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) received_ = true;
    return received_;
}

bool Interrupts::wait(std::chrono::milliseconds timeout, int wakeup_fd) {
    if (received()) return true;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wakeup_fd, POLLIN, 0}};
    const int count = wakeup_fd >= 0 ? 2 : 1;
    const int ms = static_cast<int>(std::clamp<std::int64_t>(timeout.count(), 0, 1'000'000));
    (void)::poll(fds, count, ms);
    return received();
}

Wakeup::Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw CliError(std::string("eventfd failed: ") + std::strerror(errno));
}

Wakeup::~Wakeup() {
    if (fd_ >= 0) ::close(fd_);
}

void Wakeup::notify() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
}

void Wakeup::drain() noexcept {
    std::uint64_t value;
    (void)!::read(fd_, &value, sizeof value);
}

Progress::Progress(std::string label, std::uint64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(std::uint64_t done, bool force) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    char text[256];
    if (total_ > 0) {
        constexpr int kWidth = 30;
        const double fraction =
            std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
        const int filled = static_cast<int>(fraction * kWidth);
        std::string bar(static_cast<std::size_t>(filled), '=');
        if (filled < kWidth) bar += '>';
        bar.resize(kWidth, ' ');
        std::snprintf(text, sizeof text, "\r%s [%s] %llu/%llu %3.0f%% %.0f msg/s\033[K",
                      label_.c_str(), bar.c_str(), static_cast<unsigned long long>(done),
                      static_cast<unsigned long long>(total_), fraction * 100, rate);
    } else {
        std::snprintf(text, sizeof text, "\r%s %llu %.0f msg/s\033[K", label_.c_str(),
                      static_cast<unsigned long long>(done), rate);
    }
    std::fputs(text, stderr);
    std::fflush(stderr);
}

void Progress::finish() {
    if (!enabled_ || !drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
}

std::string count_and_rate(std::uint64_t count, std::chrono::steady_clock::duration elapsed) {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    const double rate = seconds > 0 ? static_cast<double>(count) / seconds : 0;
    char text[128];
    std::snprintf(text, sizeof text, "%llu message%s in %.3f s (%.0f msg/s)",
                  static_cast<unsigned long long>(count), count == 1 ? "" : "s", seconds, rate);
    return text;
}

void print_text(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

void print_line(const std::string& line) { print_text(line + "\n"); }

void notify_ready(const std::string& status) {
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

void notify_stopping() { (void)sd_notify(0, "STOPPING=1"); }

void note(const std::string& text, bool prefixed) {
    std::fprintf(stderr, "%s%s\n", prefixed ? "peermq: " : "", text.c_str());
    std::fflush(stderr);
}

}  // namespace peermq::cli
