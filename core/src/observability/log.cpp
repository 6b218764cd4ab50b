#include "peermq/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace peermq {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

void append_unicode_escape(std::string& out, unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\u00";
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
}

// The escapes shared by both formats: logfmt quoted values follow Go's strconv.Quote for these.
void append_escaped(std::string& out, std::string_view text) {
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (is_control(c)) {
                    append_unicode_escape(out, c);
                } else {
                    out += ch;
                }
        }
    }
}

bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == ' ' || ch == '=' || ch == '"' || ch == '\\' || is_control(c)) return true;
    }
    return false;
}

void append_logfmt_value(std::string& out, std::string_view value, bool always_quote) {
    if (!always_quote && !needs_quotes(value)) {
        out += value;
        return;
    }
    out += '"';
    append_escaped(out, value);
    out += '"';
}

// Keys are written bare: characters that would break the key=value grammar become '_'.
void append_logfmt_key(std::string& out, std::string_view key) {
    if (key.empty()) {
        out += '_';
        return;
    }
    for (char ch : key) {
        const auto c = static_cast<unsigned char>(ch);
        out += (ch == ' ' || ch == '=' || ch == '"' || is_control(c)) ? '_' : ch;
    }
}

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    append_escaped(out, text);
    out += '"';
}

void write_stderr(const LogRecord& record, LogFormat format) {
    std::string line = format_log_record(record, format);
    line += '\n';
    // One fwrite per line: stdio's lock keeps lines from different loggers whole.
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace

std::string LogField::format_double(double v) {
    char text[32];
    const int n = std::snprintf(text, sizeof text, "%.6g", v);
    return std::string(text, n > 0 ? static_cast<std::size_t>(n) : 0);
}

const LogField* LogRecord::find(std::string_view key) const {
    for (const auto& field : fields) {
        if (field.key == key) return &field;
    }
    return nullptr;
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::trace: return "trace";
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        case LogLevel::off: return "off";
        case LogLevel::unset: return "unset";
    }
    return "unset";
}

std::string_view to_string(LogFormat format) noexcept {
    switch (format) {
        case LogFormat::logfmt: return "logfmt";
        case LogFormat::json: return "json";
        case LogFormat::unset: return "unset";
    }
    return "unset";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
    text = trim(text);
    for (LogLevel level : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn,
                           LogLevel::error, LogLevel::off}) {
        if (iequals(text, to_string(level))) return level;
    }
    if (iequals(text, "warning")) return LogLevel::warn;
    if (iequals(text, "none")) return LogLevel::off;
    return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view text) {
    text = trim(text);
    if (iequals(text, "logfmt")) return LogFormat::logfmt;
    if (iequals(text, "json")) return LogFormat::json;
    return std::nullopt;
}

std::string format_log_time(std::int64_t unix_ms) {
    std::int64_t seconds = unix_ms / 1000;
    std::int64_t millis = unix_ms % 1000;
    if (millis < 0) {
        millis += 1000;
        --seconds;
    }
    const auto t = static_cast<std::time_t>(seconds);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char text[40];
    const int n = std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                                utc.tm_min, utc.tm_sec, static_cast<int>(millis));
    return std::string(text, n > 0 ? static_cast<std::size_t>(n) : 0);
}

std::string format_logfmt(const LogRecord& record) {
    std::string out;
    out.reserve(128 + record.message.size() + record.fields.size() * 24);
    out += "ts=";
    out += format_log_time(record.unix_ms);
    out += " level=";
    out += to_string(record.level);
    if (!record.node.empty()) {
        out += " node=";
        append_logfmt_value(out, record.node, false);
    }
    out += " component=";
    append_logfmt_value(out, record.component, false);
    out += " msg=";
    append_logfmt_value(out, record.message, true);
    for (const auto& field : record.fields) {
        out += ' ';
        append_logfmt_key(out, field.key);
        out += '=';
        append_logfmt_value(out, field.value, false);
    }
    return out;
}

std::string format_json(const LogRecord& record) {
    std::string out;
    out.reserve(128 + record.message.size() + record.fields.size() * 28);
    out += "{\"ts\":";
    append_json_string(out, format_log_time(record.unix_ms));
    out += ",\"level\":";
    append_json_string(out, to_string(record.level));
    if (!record.node.empty()) {
        out += ",\"node\":";
        append_json_string(out, record.node);
    }
    out += ",\"component\":";
    append_json_string(out, record.component);
    out += ",\"msg\":";
    append_json_string(out, record.message);
    for (const auto& field : record.fields) {
        out += ',';
        append_json_string(out, field.key);
        out += ':';
        if (field.literal && !field.value.empty()) {
            out += field.value;
        } else {
            append_json_string(out, field.value);
        }
    }
    out += '}';
    return out;
}

std::string format_log_record(const LogRecord& record, LogFormat format) {
    return format == LogFormat::json ? format_json(record) : format_logfmt(record);
}

LogSettings resolve_log_settings(LogLevel level, LogFormat format, const char* env_level,
                                 const char* env_format) {
    LogSettings settings;
    if (level != LogLevel::unset) {
        settings.level = level;
    } else if (env_level != nullptr && *env_level != '\0') {
        if (auto parsed = parse_log_level(env_level)) {
            settings.level = *parsed;
        } else {
            settings.warnings.push_back(std::string("ignoring PEERMQ_LOG=") + env_level +
                                        ": not one of trace, debug, info, warn, error, off");
        }
    }
    if (format != LogFormat::unset) {
        settings.format = format;
    } else if (env_format != nullptr && *env_format != '\0') {
        if (auto parsed = parse_log_format(env_format)) {
            settings.format = *parsed;
        } else {
            settings.warnings.push_back(std::string("ignoring PEERMQ_LOG_FORMAT=") + env_format +
                                        ": not one of logfmt, json");
        }
    }
    return settings;
}

Logger::Logger(std::string node, LogLevel level, LogFormat format, LogSink sink,
               std::shared_ptr<Clock> clock)
    : node_(std::move(node)),
      level_(LogLevel::warn),
      format_(LogFormat::logfmt),
      clock_(clock ? std::move(clock) : system_clock()),
      sink_(std::move(sink)) {
    LogSettings settings = resolve_log_settings(level, format, std::getenv("PEERMQ_LOG"),
                                                std::getenv("PEERMQ_LOG_FORMAT"));
    level_.store(settings.level, std::memory_order_relaxed);
    format_ = settings.format;
    for (const auto& warning : settings.warnings) {
        PEERMQ_LOG(*this, LogLevel::warn, "log", warning);
    }
}

void Logger::set_level(LogLevel level) {
    if (level == LogLevel::unset) {
        level = resolve_log_settings(LogLevel::unset, LogFormat::unset, std::getenv("PEERMQ_LOG"),
                                     nullptr)
                    .level;
    }
    level_.store(level, std::memory_order_relaxed);
}

void Logger::set_sink(LogSink sink) {
    std::lock_guard lock(mutex_);
    sink_ = std::move(sink);
}

void Logger::write(LogLevel level, std::string_view component, std::string_view message,
                   std::initializer_list<LogField> fields) const {
    if (!enabled(level) || level == LogLevel::off || level == LogLevel::unset) return;
    LogRecord record;
    record.unix_ms = clock_->unix_ms();
    record.level = level;
    record.node = node_;
    record.component = component;
    record.message = message;
    record.fields.assign(fields.begin(), fields.end());
    std::lock_guard lock(mutex_);
    // No exception from a user's sink may reach the actor loop or a discovery thread.
    try {
        if (sink_) {
            sink_(record);
        } else {
            write_stderr(record, format_);
        }
    } catch (...) {
    }
}

std::string exception_text(std::exception_ptr error) {
    if (!error) return "no exception";
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception of a type not derived from std::exception";
    }
}

Logger& process_logger() {
    // Never destroyed: discovery threads may still log while static objects are torn down.
    static Logger* logger = new Logger();
    return *logger;
}

}  // namespace peermq
