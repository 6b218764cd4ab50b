// Logging: record formatting (logfmt, JSON), quoting, level filtering, settings precedence and
// the environment, and a logger shared by threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "peermq/log.hpp"
#include "peermq/uuid.hpp"
#include "support/fake_clock.hpp"
#include "support/log_capture.hpp"
#include "support/scoped_env.hpp"

namespace peermq {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kExampleMs = 1'795'852'800'123;  // 2026-11-28T08:00:00.123Z

LogRecord example() {
    LogRecord record;
    record.unix_ms = kExampleMs;
    record.level = LogLevel::info;
    record.node = "worker-1";
    record.component = "peer";
    record.message = "peer alive";
    record.fields = {{"peer", "worker-2"}, {"endpoint", "tcp://127.0.0.1:4000"}, {"attempts", 3}};
    return record;
}

using Capture = testing::LogCapture;
using testing::ScopedEnv;

TEST(LogFormat, LogfmtLineHasTimeLevelNodeComponentMessageAndFields) {
    EXPECT_EQ(format_logfmt(example()),
              "ts=2026-11-28T08:00:00.123Z level=info node=worker-1 component=peer "
              "msg=\"peer alive\" peer=worker-2 endpoint=tcp://127.0.0.1:4000 attempts=3");
}

TEST(LogFormat, TimesAreUtcWithMilliseconds) {
    EXPECT_EQ(format_log_time(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_log_time(kExampleMs), "2026-11-28T08:00:00.123Z");
    EXPECT_EQ(format_log_time(1'000'000'000'007), "2001-09-09T01:46:40.007Z");
}

TEST(LogFormat, RecordsOutsideANodeHaveNoNodeKey) {
    LogRecord record = example();
    record.node.clear();
    record.fields.clear();
    record.message = "ready";
    EXPECT_EQ(format_logfmt(record),
              "ts=2026-11-28T08:00:00.123Z level=info component=peer msg=\"ready\"");
}

TEST(LogFormat, LogfmtQuotesAndEscapesValuesThatNeedIt) {
    LogRecord record = example();
    record.fields = {{"plain", "abc-1.2:3/x"},
                     {"space", "two words"},
                     {"quote", "say \"hi\""},
                     {"newline", "line1\nline2"},
                     {"crtab", "a\rb\tc"},
                     {"equals", "a=b"},
                     {"backslash", "C:\\dir"},
                     {"empty", ""},
                     {"control", std::string("bell\x07", 5)},
                     {"utf8", "café"}};
    const std::string line = format_logfmt(record);
    EXPECT_NE(line.find(" plain=abc-1.2:3/x"), std::string::npos) << line;
    EXPECT_NE(line.find(" space=\"two words\""), std::string::npos) << line;
    EXPECT_NE(line.find(" quote=\"say \\\"hi\\\"\""), std::string::npos) << line;
    EXPECT_NE(line.find(" newline=\"line1\\nline2\""), std::string::npos) << line;
    EXPECT_NE(line.find(" crtab=\"a\\rb\\tc\""), std::string::npos) << line;
    EXPECT_NE(line.find(" equals=\"a=b\""), std::string::npos) << line;
    EXPECT_NE(line.find(" backslash=\"C:\\\\dir\""), std::string::npos) << line;
    EXPECT_NE(line.find(" empty=\"\""), std::string::npos) << line;
    EXPECT_NE(line.find(" control=\"bell\\u0007\""), std::string::npos) << line;
    EXPECT_NE(line.find(" utf8=café"), std::string::npos) << line;
    // One record, one line, whatever the values hold.
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.find('\r'), std::string::npos);
}

TEST(LogFormat, LogfmtMessageIsAlwaysQuotedAndEscaped) {
    LogRecord record = example();
    record.fields.clear();
    record.message = "ok";
    EXPECT_NE(format_logfmt(record).find(" msg=\"ok\""), std::string::npos);
    record.message = "bad \"frame\"\nnext";
    EXPECT_NE(format_logfmt(record).find(" msg=\"bad \\\"frame\\\"\\nnext\""), std::string::npos);
}

TEST(LogFormat, LogfmtKeysCannotBreakTheGrammar) {
    LogRecord record = example();
    record.fields = {{"a key", "v"}, {"k=v", "w"}, {"", "x"}};
    const std::string line = format_logfmt(record);
    EXPECT_NE(line.find(" a_key=v"), std::string::npos) << line;
    EXPECT_NE(line.find(" k_v=w"), std::string::npos) << line;
    EXPECT_NE(line.find(" _=x"), std::string::npos) << line;
}

TEST(LogFormat, JsonLineParsesBackWithTypedValues) {
    LogRecord record = example();
    record.fields = {{"peer", "worker-2"},
                     {"attempts", 3},
                     {"alive", true},
                     {"ratio", 0.5},
                     {"delay", 250ms},
                     {"error", "say \"hi\"\n\x01"},
                     {"id", Uuid::parse("0196a3c4-0000-7000-8000-000000000001").value()}};
    const std::string line = format_json(record);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    const auto json = nlohmann::json::parse(line);
    EXPECT_EQ(json["ts"], "2026-11-28T08:00:00.123Z");
    EXPECT_EQ(json["level"], "info");
    EXPECT_EQ(json["node"], "worker-1");
    EXPECT_EQ(json["component"], "peer");
    EXPECT_EQ(json["msg"], "peer alive");
    EXPECT_EQ(json["peer"], "worker-2");
    EXPECT_EQ(json["attempts"], 3);
    EXPECT_EQ(json["alive"], true);
    EXPECT_DOUBLE_EQ(json["ratio"].get<double>(), 0.5);
    EXPECT_EQ(json["delay"], 250);
    EXPECT_EQ(json["error"], "say \"hi\"\n\x01");
    EXPECT_EQ(json["id"], "0196a3c4-0000-7000-8000-000000000001");
    EXPECT_EQ(format_log_record(record, LogFormat::json), line);
    EXPECT_EQ(format_log_record(record, LogFormat::logfmt), format_logfmt(record));
}

TEST(LogFormat, FieldsConvertFromCommonTypes) {
    EXPECT_EQ(LogField("n", std::uint64_t{18'446'744'073'709'551'615u}).value,
              "18446744073709551615");
    EXPECT_EQ(LogField("n", -7).value, "-7");
    EXPECT_EQ(LogField("b", false).value, "false");
    EXPECT_EQ(LogField("d", 2s).value, "2000");
    EXPECT_EQ(LogField("s", std::string_view("view")).value, "view");
    EXPECT_TRUE(LogField("n", 1).literal);
    EXPECT_FALSE(LogField("s", "1").literal);
    LogRecord record = example();
    ASSERT_NE(record.find("peer"), nullptr);
    EXPECT_EQ(record.find("peer")->value, "worker-2");
    EXPECT_EQ(record.find("nope"), nullptr);
}

TEST(LogLevels, ParseNamesCaseInsensitivelyAndRejectTheRest) {
    EXPECT_EQ(parse_log_level("trace"), LogLevel::trace);
    EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::debug);
    EXPECT_EQ(parse_log_level(" Info "), LogLevel::info);
    EXPECT_EQ(parse_log_level("warn"), LogLevel::warn);
    EXPECT_EQ(parse_log_level("warning"), LogLevel::warn);
    EXPECT_EQ(parse_log_level("error"), LogLevel::error);
    EXPECT_EQ(parse_log_level("off"), LogLevel::off);
    EXPECT_EQ(parse_log_level("none"), LogLevel::off);
    EXPECT_EQ(parse_log_level(""), std::nullopt);
    EXPECT_EQ(parse_log_level("verbose"), std::nullopt);
    EXPECT_EQ(parse_log_level("3"), std::nullopt);
    EXPECT_EQ(parse_log_format("JSON"), LogFormat::json);
    EXPECT_EQ(parse_log_format("logfmt"), LogFormat::logfmt);
    EXPECT_EQ(parse_log_format("xml"), std::nullopt);
    for (LogLevel level : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn,
                           LogLevel::error, LogLevel::off}) {
        EXPECT_EQ(parse_log_level(to_string(level)), level);
    }
}

TEST(LogSettingsTest, DefaultIsWarnInLogfmt) {
    const LogSettings s = resolve_log_settings(LogLevel::unset, LogFormat::unset, nullptr, nullptr);
    EXPECT_EQ(s.level, LogLevel::warn);
    EXPECT_EQ(s.format, LogFormat::logfmt);
    EXPECT_TRUE(s.warnings.empty());
    const LogSettings empty = resolve_log_settings(LogLevel::unset, LogFormat::unset, "", "");
    EXPECT_EQ(empty.level, LogLevel::warn);
    EXPECT_TRUE(empty.warnings.empty());
}

TEST(LogSettingsTest, EnvironmentWinsOverTheDefault) {
    const LogSettings s = resolve_log_settings(LogLevel::unset, LogFormat::unset, "debug", "json");
    EXPECT_EQ(s.level, LogLevel::debug);
    EXPECT_EQ(s.format, LogFormat::json);
    EXPECT_TRUE(s.warnings.empty());
}

TEST(LogSettingsTest, ExplicitOptionWinsOverTheEnvironment) {
    const LogSettings s = resolve_log_settings(LogLevel::error, LogFormat::logfmt, "trace", "json");
    EXPECT_EQ(s.level, LogLevel::error);
    EXPECT_EQ(s.format, LogFormat::logfmt);
}

TEST(LogSettingsTest, BadEnvironmentValuesAreIgnoredWithAWarningEach) {
    const LogSettings s = resolve_log_settings(LogLevel::unset, LogFormat::unset, "loud", "xml");
    EXPECT_EQ(s.level, LogLevel::warn);
    EXPECT_EQ(s.format, LogFormat::logfmt);
    ASSERT_EQ(s.warnings.size(), 2u);
    EXPECT_NE(s.warnings[0].find("PEERMQ_LOG=loud"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.warnings[1].find("PEERMQ_LOG_FORMAT=xml"), std::string::npos) << s.warnings[1];
}

TEST(LoggerTest, FiltersByLevelAndStampsWithItsClock) {
    auto clock = std::make_shared<testing::FakeClock>(kExampleMs);
    Capture capture;
    Logger log("n1", LogLevel::info, LogFormat::unset, capture.sink(), clock);
    EXPECT_FALSE(log.enabled(LogLevel::debug));
    EXPECT_TRUE(log.enabled(LogLevel::info));
    EXPECT_TRUE(log.enabled(LogLevel::error));
    PEERMQ_LOG(log, LogLevel::debug, "queue", "hidden");
    PEERMQ_LOG(log, LogLevel::info, "queue", "shown", {"queue", "orders"}, {"attempts", 2});
    PEERMQ_LOG(log, LogLevel::warn, "journal", "also shown");
    ASSERT_EQ(capture.size(), 2u);
    EXPECT_EQ(capture.records()[0].message, "shown");
    EXPECT_EQ(capture.records()[0].node, "n1");
    EXPECT_EQ(capture.records()[0].component, "queue");
    EXPECT_EQ(capture.records()[0].unix_ms, kExampleMs);
    ASSERT_EQ(capture.records()[0].fields.size(), 2u);
    EXPECT_EQ(capture.records()[0].fields[1].value, "2");
    EXPECT_EQ(capture.records()[1].level, LogLevel::warn);

    log.set_level(LogLevel::off);
    PEERMQ_LOG(log, LogLevel::error, "journal", "silenced");
    EXPECT_EQ(capture.size(), 2u);
    log.set_level(LogLevel::trace);
    PEERMQ_LOG(log, LogLevel::trace, "queue", "everything");
    EXPECT_EQ(capture.size(), 3u);
}

TEST(LoggerTest, DisabledLevelsEvaluateNothing) {
    Capture capture;
    Logger log("n", LogLevel::warn, LogFormat::unset, capture.sink());
    int evaluated = 0;
    auto expensive = [&] {
        ++evaluated;
        return std::string("value");
    };
    PEERMQ_LOG(log, LogLevel::debug, "queue", "hidden", {"v", expensive()});
    PEERMQ_LOG(log, LogLevel::info, "queue", "hidden", {"v", expensive()});
    EXPECT_EQ(evaluated, 0);
    PEERMQ_LOG(log, LogLevel::warn, "queue", "shown", {"v", expensive()});
    EXPECT_EQ(evaluated, 1);
    EXPECT_EQ(capture.size(), 1u);
}

TEST(LoggerTest, ReadsTheEnvironmentWhenTheLevelIsUnset) {
    Capture capture;
    {
        ScopedEnv level("PEERMQ_LOG", "debug");
        Logger log("n", LogLevel::unset, LogFormat::unset, capture.sink());
        EXPECT_EQ(log.level(), LogLevel::debug);
        Logger explicit_level("n", LogLevel::error, LogFormat::unset, capture.sink());
        EXPECT_EQ(explicit_level.level(), LogLevel::error);
    }
    {
        ScopedEnv level("PEERMQ_LOG", nullptr);
        Logger log("n", LogLevel::unset, LogFormat::unset, capture.sink());
        EXPECT_EQ(log.level(), LogLevel::warn);
    }
    EXPECT_EQ(capture.size(), 0u);
    {
        ScopedEnv level("PEERMQ_LOG", "shouty");
        Logger log("n", LogLevel::unset, LogFormat::unset, capture.sink());
        EXPECT_EQ(log.level(), LogLevel::warn);
    }
    // The bad value is said once, at warn, by the logger it was meant for.
    ASSERT_EQ(capture.size(), 1u);
    EXPECT_EQ(capture.records()[0].level, LogLevel::warn);
    EXPECT_NE(capture.records()[0].message.find("PEERMQ_LOG=shouty"), std::string::npos);
}

TEST(LoggerTest, ASinkThatThrowsDoesNotEscape) {
    Logger log("n", LogLevel::info, LogFormat::unset,
               [](const LogRecord&) { throw std::runtime_error("sink broke"); });
    EXPECT_NO_THROW(PEERMQ_LOG(log, LogLevel::info, "node", "still fine"));
}

TEST(LoggerTest, SinkSeesOneRecordAtATimeFromManyThreads) {
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
    std::atomic<int> count{0};
    Logger log("n", LogLevel::info, LogFormat::unset, [&](const LogRecord&) {
        if (inside.fetch_add(1) != 0) overlapped = true;
        ++count;
        inside.fetch_sub(1);
    });
    constexpr int kThreads = 4;
    constexpr int kEach = 2000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                PEERMQ_LOG(log, LogLevel::info, "queue", "m", {"t", t}, {"i", i});
                PEERMQ_LOG(log, LogLevel::debug, "queue", "filtered");
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(count.load(), kThreads * kEach);
    EXPECT_FALSE(overlapped.load());
}

TEST(LoggerTest, ProcessLoggerCanBeRedirected) {
    Capture capture;
    Logger& process = process_logger();
    const LogLevel before = process.level();
    process.set_sink(capture.sink());
    process.set_level(LogLevel::info);
    PEERMQ_LOG(process, LogLevel::info, "discovery", "using something");
    process.set_sink({});
    process.set_level(before);
    ASSERT_EQ(capture.size(), 1u);
    EXPECT_TRUE(capture.records()[0].node.empty());
    EXPECT_EQ(capture.records()[0].component, "discovery");
}

}  // namespace
}  // namespace peermq
