// Logging: structured, levelled records, quiet by default.
//
// A record is a level, a component ("node", "peer", "queue", "dlq", "discovery", "journal",
// "frame"...), a message and key=value fields. The default sink writes one line per record to
// stderr, in logfmt:
//
//   ts=2026-11-28T08:00:00.123Z level=info node=worker-1 component=peer msg="peer alive"
//   peer=worker-2 id=0196... endpoint=tcp://127.0.0.1:4000
//
// or, with the json format, one JSON object per line. At `info` a node logs its start and stop,
// peer lifecycle (alive, suspect, down, back alive, BYE) and every dead letter; at `warn` storage
// errors and dropped bad frames (the first of each reason, then a summary at most every 10 s); at
// `debug` retries and redeliveries; at `trace` every message sent, received and acked.
//
// Where the settings come from, for each node (NodeOptions::log_level, log_format, log_sink):
// an explicit option wins; else the environment (PEERMQ_LOG=trace|debug|info|warn|error|off,
// PEERMQ_LOG_FORMAT=logfmt|json); else the default, `warn` in logfmt to stderr. A bad value in the
// environment is ignored with one warning. Discovery backends, which run outside any node, log
// through process_logger(), which reads the same environment variables.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "peermq/clock.hpp"

namespace peermq {

// Ordered by severity; `off` disables everything. `unset` is not a level: in options it means
// "PEERMQ_LOG, else warn".
enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, off, unset = 255 };

// `unset`: PEERMQ_LOG_FORMAT, else logfmt.
enum class LogFormat : std::uint8_t { unset, logfmt, json };

// One key=value pair of a record. Built from strings, numbers, booleans, durations (as whole
// milliseconds) and anything with a to_string() member (ids, Status).
struct LogField {
    std::string key;
    std::string value;
    bool literal = false;  // a number or a boolean: unquoted in JSON

    LogField() = default;
    template <typename T>
    LogField(std::string_view k, const T& v) : key(k) {
        if constexpr (std::is_same_v<T, bool>) {
            value = v ? "true" : "false";
            literal = true;
        } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
            value = std::string_view(v);
        } else if constexpr (std::is_integral_v<T>) {
            value = std::to_string(v);
            literal = true;
        } else if constexpr (std::is_floating_point_v<T>) {
            value = format_double(static_cast<double>(v));
            literal = true;
        } else if constexpr (requires {
                                 std::chrono::duration_cast<std::chrono::milliseconds>(v);
                             }) {
            value =
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(v).count());
            literal = true;
        } else {
            static_assert(
                requires { v.to_string(); }, "LogField: no text form for this type");
            value = v.to_string();
        }
    }

private:
    static std::string format_double(double v);
};

// A record as handed to a sink. Owns its text: a sink may keep it.
struct LogRecord {
    std::int64_t unix_ms = 0;
    LogLevel level = LogLevel::info;
    std::string node;  // the node's name; empty for process-wide records (discovery)
    std::string component;
    std::string message;
    std::vector<LogField> fields;

    // The field named `key`, or null.
    const LogField* find(std::string_view key) const;
};

// Receives every record at or above the logger's level. A logger calls its sink for one record
// at a time (never concurrently), from whichever thread logged: the node's actor, a dispatcher
// thread or a discovery thread. A sink must not block for long and must not log through the
// same logger.
using LogSink = std::function<void(const LogRecord&)>;

// "trace", "debug", "info", "warn", "error", "off" ("unset" for unset).
std::string_view to_string(LogLevel level) noexcept;
std::string_view to_string(LogFormat format) noexcept;
// Case-insensitive; also accepts "warning" and "none". nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view text);
// "logfmt" or "json", case-insensitive.
std::optional<LogFormat> parse_log_format(std::string_view text);

// One line, without the newline. logfmt quotes a value when it is empty or holds a space, '=',
// '"', a backslash or a control character, and escapes \" \\ \n \r \t (other control characters
// as \u00XX); msg is always quoted. Times are UTC with milliseconds.
std::string format_logfmt(const LogRecord& record);
std::string format_json(const LogRecord& record);
std::string format_log_record(const LogRecord& record, LogFormat format);
// 2026-11-28T08:00:00.123Z
std::string format_log_time(std::int64_t unix_ms);

// The settings a logger ends up with, and why: see the precedence in the file comment.
struct LogSettings {
    LogLevel level = LogLevel::warn;
    LogFormat format = LogFormat::logfmt;
    std::vector<std::string> warnings;  // bad environment values, said once by the logger
};
// `env_level` and `env_format` are the values of PEERMQ_LOG and PEERMQ_LOG_FORMAT (null = unset).
LogSettings resolve_log_settings(LogLevel level, LogFormat format, const char* env_level,
                                 const char* env_format);

// Logger: filters records by level and hands them to a sink.
//
// Thread-safe: enabled() is one relaxed atomic load, so callers check it before building a
// record (the PEERMQ_LOG macro does): a disabled level costs no formatting and no allocation.
// Records reach the sink one at a time under the logger's mutex. Neither copyable nor movable.
class Logger {
public:
    // `level` and `format` may be unset (resolved from the environment); an empty `sink` writes
    // lines to stderr in the resolved format. `clock` stamps records (null = system clock).
    explicit Logger(std::string node = {}, LogLevel level = LogLevel::unset,
                    LogFormat format = LogFormat::unset, LogSink sink = {},
                    std::shared_ptr<Clock> clock = {});
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    bool enabled(LogLevel level) const noexcept {
        return static_cast<std::uint8_t>(level) >=
               static_cast<std::uint8_t>(level_.load(std::memory_order_relaxed));
    }
    LogLevel level() const noexcept { return level_.load(std::memory_order_relaxed); }
    // `unset` re-reads PEERMQ_LOG.
    void set_level(LogLevel level);
    // Empty = stderr in this logger's format.
    void set_sink(LogSink sink);
    const std::string& node() const noexcept { return node_; }

    // Builds and emits a record if `level` is enabled. Prefer PEERMQ_LOG(), which checks the
    // level before evaluating the fields.
    void write(LogLevel level, std::string_view component, std::string_view message,
               std::initializer_list<LogField> fields = {}) const;

private:
    std::string node_;
    std::atomic<LogLevel> level_;
    LogFormat format_;
    std::shared_ptr<Clock> clock_;
    mutable std::mutex mutex_;  // sink_ and calls to it
    LogSink sink_;
};

// The logger of code that runs outside a node (discovery backends, the embedded Avahi stack):
// stderr, settings from the environment. Change its level or sink to route those records.
Logger& process_logger();

// The text of an exception caught with catch (...): its what(), or "an exception of a type not
// derived from std::exception" (throw 42). For the record a thread of the library logs when it
// catches what would otherwise have ended it.
std::string exception_text(std::exception_ptr error);

}  // namespace peermq

// Logs through `logger` at `level` with the given {key, value} fields, evaluating the message
// and fields only when the level is enabled:
//   PEERMQ_LOG(log, LogLevel::info, "peer", "peer alive", {"peer", name}, {"id", id});
#define PEERMQ_LOG(logger, level, component, message, ...)                  \
    do {                                                                    \
        if ((logger).enabled(level)) {                                      \
            (logger).write((level), (component), (message), {__VA_ARGS__}); \
        }                                                                   \
    } while (0)
