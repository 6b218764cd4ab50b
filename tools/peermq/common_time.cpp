// Durations and times on the command line (common.hpp): parsing them, CLI11's validators for
// durations, times and counts, and their formatting for output.
#include "common.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <locale>
#include <sstream>
#include <system_error>

namespace peermq::cli {

// ---------------------------------------------------------------------------------------------
// Durations and times

namespace {

// Parses a non-negative decimal number at the front of `text`, advancing it.
std::optional<double> take_number(std::string_view& text) {
    std::size_t end = 0;
    bool dot = false;
    while (end < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[end])) || (text[end] == '.' && !dot))) {
        dot = dot || text[end] == '.';
        ++end;
    }
    if (end == 0 || (end == 1 && dot)) return std::nullopt;
    double value = 0;
    std::istringstream in{std::string(text.substr(0, end))};
    in.imbue(std::locale::classic());
    if (!(in >> value)) return std::nullopt;
    text.remove_prefix(end);
    return value;
}

std::optional<int> take_digits(std::string_view& text, std::size_t count) {
    if (text.size() < count) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    text.remove_prefix(count);
    return value;
}

bool take_char(std::string_view& text, char c) {
    if (text.empty() || text.front() != c) return false;
    text.remove_prefix(1);
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
    auto year = take_digits(text, 4);
    if (!year || !take_char(text, '-')) return std::nullopt;
    auto month = take_digits(text, 2);
    if (!month || !take_char(text, '-')) return std::nullopt;
    auto day = take_digits(text, 2);
    if (!day || *month < 1 || *month > 12 || *day < 1 || *day > 31) return std::nullopt;
    int hour = 0, minute = 0, second = 0, millis = 0;
    if (!text.empty() && (text.front() == 'T' || text.front() == 't' || text.front() == ' ')) {
        text.remove_prefix(1);
        auto h = take_digits(text, 2);
        if (!h || !take_char(text, ':')) return std::nullopt;
        auto m = take_digits(text, 2);
        if (!m) return std::nullopt;
        hour = *h;
        minute = *m;
        if (take_char(text, ':')) {
            auto s = take_digits(text, 2);
            if (!s) return std::nullopt;
            second = *s;
            if (take_char(text, '.') || take_char(text, ',')) {
                int digits = 0, fraction = 0;
                while (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front()))) {
                    if (digits < 3) fraction = fraction * 10 + (text.front() - '0');
                    ++digits;
                    text.remove_prefix(1);
                }
                if (digits == 0) return std::nullopt;
                for (int i = digits; i < 3; ++i) fraction *= 10;
                millis = fraction;
            }
        }
        if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    }
    std::int64_t offset_minutes = 0;
    if (take_char(text, 'Z') || take_char(text, 'z')) {
    } else if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
        const int sign = text.front() == '-' ? -1 : 1;
        text.remove_prefix(1);
        auto h = take_digits(text, 2);
        if (!h) return std::nullopt;
        take_char(text, ':');
        auto m = text.empty() ? std::optional<int>(0) : take_digits(text, 2);
        if (!m || *h > 23 || *m > 59) return std::nullopt;
        offset_minutes = sign * (*h * 60 + *m);
    }
    if (!text.empty()) return std::nullopt;
    const std::int64_t days =
        days_from_civil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
    const std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second;
    return (seconds - offset_minutes * 60) * 1000 + millis;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text == "0") return std::chrono::milliseconds(0);
    if (text.empty()) return std::nullopt;
    double total_ms = 0;
    while (!text.empty()) {
        auto number = take_number(text);
        if (!number) return std::nullopt;
        double unit = 0;
        if (text.starts_with("ms")) {
            unit = 1;
            text.remove_prefix(2);
        } else if (text.starts_with("s")) {
            unit = 1000;
            text.remove_prefix(1);
        } else if (text.starts_with("m")) {
            unit = 60'000;
            text.remove_prefix(1);
        } else if (text.starts_with("h")) {
            unit = 3'600'000;
            text.remove_prefix(1);
        } else if (text.starts_with("d")) {
            unit = 86'400'000;
            text.remove_prefix(1);
        } else {
            return std::nullopt;
        }
        total_ms += *number * unit;
    }
    if (!std::isfinite(total_ms) || total_ms > 1e15) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now) {
    if (auto iso = parse_iso8601(text)) return iso;
    if (auto ago = parse_duration(text)) return now - ago->count();
    return std::nullopt;
}

CLI::Validator duration_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (parse_duration(value)) return {};
            return "'" + value + "' is not a duration (examples: 500ms, 30s, 10m, 2h, 1d, 1h30m)";
        },
        "");
}

CLI::Option* add_duration_option(CLI::App& command, const std::string& name, std::string& value,
                                 const std::string& description) {
    return command.add_option(name, value, description)
        ->check(duration_validator())
        ->type_name("DUR")
        ->capture_default_str();
}

CLI::Validator count_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            std::uint64_t number = 0;
            const char* end = value.data() + value.size();
            const auto [at, error] = std::from_chars(value.data(), end, number);
            const bool digits =
                !value.empty() && std::isdigit(static_cast<unsigned char>(value[0]));
            if (digits && error == std::errc() && at == end) return {};
            if (digits && error == std::errc::result_out_of_range) {
                return "'" + value + "' is too large";
            }
            return "'" + value + "' is not a whole number from 0";
        },
        "");
}

CLI::Validator time_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (parse_time(value, 0)) return {};
            return "'" + value +
                   "' is not a time (ISO-8601 such as 2024-05-01T12:00:00Z, or a duration "
                   "before now such as 10m or 2h)";
        },
        "");
}

std::chrono::milliseconds duration_or_throw(const std::string& text) {
    auto value = parse_duration(text);
    if (!value) throw CliError("'" + text + "' is not a duration", 2);
    return *value;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string format_time(std::int64_t unix_ms) {
    if (unix_ms == 0) return "-";
    std::int64_t seconds = unix_ms / 1000;
    std::int64_t millis = unix_ms % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    if (!::gmtime_r(&t, &tm)) return std::to_string(unix_ms);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(millis));
    return text;
}

std::string format_age(std::int64_t unix_ms, std::int64_t now) {
    if (unix_ms == 0) return "never";
    const double seconds = static_cast<double>(std::max<std::int64_t>(0, now - unix_ms)) / 1000.0;
    char text[32];
    if (seconds < 60) {
        std::snprintf(text, sizeof text, "%.1fs ago", seconds);
    } else if (seconds < 3600) {
        std::snprintf(text, sizeof text, "%.0fm ago", seconds / 60);
    } else if (seconds < 86400) {
        std::snprintf(text, sizeof text, "%.0fh ago", seconds / 3600);
    } else {
        std::snprintf(text, sizeof text, "%.0fd ago", seconds / 86400);
    }
    return text;
}

std::string format_seconds(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", seconds);
    return text;
}

}  // namespace peermq::cli
