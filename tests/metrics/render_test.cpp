// render_metrics on hand-built stats: exact lines, cumulative histogram buckets, escaping, both
// formats, and the Accept-header negotiation and "[address:]port" parsing of the server.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "metrics_internal.hpp"
#include "peermq/metrics.hpp"
#include "support/process.hpp"
#include "support/stats_values.hpp"

namespace {

using peermq::MetricsFormat;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text)) {
        if (l == line) return true;
    }
    return false;
}

// The lines of text that start with `prefix`, in order.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& l : lines_of(text)) {
        if (l.rfind(prefix, 0) == 0) out.push_back(l);
    }
    return out;
}

peermq::NodeStats sample_stats() {
    peermq::NodeStats stats;
    stats.id = peermq::Uuid::parse("0190a3c4-0000-7000-8000-000000000001").value();
    stats.name = "n1";
    auto& orders = stats.queues["orders"];
    orders.sent = 9;
    orders.received = 0;
    orders.acked = 7;
    orders.retried = 2;
    orders.in_flight = 1;
    orders.depth = 3;
    stats.queues["payments"].dead_lettered = 4;
    stats.topics["prices.eur"].sent = 11;
    stats.topics["prices.eur"].delivered = 10;
    stats.topics["prices.eur"].repair_time.record(50'000);   // bucket 15: [32.768, 65.536) ms
    stats.topics["prices.eur"].repair_time.record(250'000);  // bucket 17

    peermq::PeerInfo alive;
    alive.id = peermq::Uuid::parse("0190a3c4-0000-7000-8000-000000000002").value();
    alive.name = "n2";
    alive.state = peermq::PeerState::alive;
    alive.inbox_endpoint = "tcp://127.0.0.1:40001";
    alive.last_heard_ms = 1'700'000'000'123;
    alive.frames_sent = 12;
    alive.frames_received = 13;
    peermq::PeerInfo connecting;  // no id, no name yet: named by its endpoint
    connecting.inbox_endpoint = "tcp://127.0.0.1:40002";
    stats.peers = {alive, connecting, connecting};  // the duplicate is written once

    stats.dropped["frame.garbage"] = 5;
    stats.dropped["ack.unknown_id"] = 1;
    stats.bad_frames = 5;
    stats.discovery_ignored["other_cluster"] = 2;
    stats.thread_errors["control"] = 3;
    stats.dead_letters["payments"] = {{"max_attempts", 3}, {"rejected", 1}};
    return stats;
}

TEST(RenderMetrics, CounterLinesInOpenMetrics) {
    const std::string text = peermq::render_metrics(sample_stats(), MetricsFormat::openmetrics);
    EXPECT_TRUE(has_line(text, "# HELP peermq_queue_acked Messages acknowledged by a consumer."));
    EXPECT_TRUE(has_line(text, "# TYPE peermq_queue_acked counter"));
    EXPECT_TRUE(has_line(text, R"(peermq_queue_acked_total{node="n1",queue="orders"} 7)"));
    EXPECT_TRUE(has_line(text, R"(peermq_queue_acked_total{node="n1",queue="payments"} 0)"));
    EXPECT_TRUE(
        has_line(text, R"(peermq_queue_dead_lettered_total{node="n1",queue="payments"} 4)"));
    EXPECT_TRUE(has_line(text, R"(peermq_queue_in_flight{node="n1",queue="orders"} 1)"));
    EXPECT_TRUE(has_line(text, "# TYPE peermq_queue_depth gauge"));
    EXPECT_TRUE(has_line(text, R"(peermq_queue_depth{node="n1",queue="orders"} 3)"));
    EXPECT_TRUE(has_line(text, R"(peermq_topic_sent_total{node="n1",topic="prices.eur"} 11)"));
    EXPECT_TRUE(has_line(
        text, R"(peermq_node_info{node="n1",node_id="0190a3c4-0000-7000-8000-000000000001"} 1)"));
    EXPECT_TRUE(has_line(text, R"(peermq_dropped_total{node="n1",reason="frame.garbage"} 5)"));
    EXPECT_TRUE(has_line(text, R"(peermq_bad_frames_total{node="n1"} 5)"));
    EXPECT_TRUE(
        has_line(text, R"(peermq_discovery_ignored_total{node="n1",reason="other_cluster"} 2)"));
    EXPECT_TRUE(has_line(text, R"(peermq_thread_errors_total{node="n1",where="control"} 3)"));
    // Topics are never acked: no ack latency for them; the repair time is theirs alone.
    EXPECT_TRUE(lines_starting(text, "peermq_topic_ack_latency").empty());
    EXPECT_TRUE(lines_starting(text, "peermq_queue_repair_time").empty());
    EXPECT_TRUE(has_line(text, "# TYPE peermq_topic_repair_time_seconds histogram"));
    EXPECT_TRUE(has_line(
        text,
        R"(peermq_topic_repair_time_seconds_bucket{node="n1",topic="prices.eur",le="0.065536"} 1)"));
    EXPECT_TRUE(has_line(
        text, R"(peermq_topic_repair_time_seconds_count{node="n1",topic="prices.eur"} 2)"));
    EXPECT_TRUE(has_line(
        text, R"(peermq_topic_repair_time_seconds_sum{node="n1",topic="prices.eur"} 0.3)"));
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(lines_of(text).back(), "# EOF");
    EXPECT_EQ(text.back(), '\n');
}

TEST(RenderMetrics, PrometheusTextNamesCountersWithTotalAndHasNoEof) {
    const std::string text = peermq::render_metrics(sample_stats(), MetricsFormat::prometheus);
    EXPECT_TRUE(has_line(text, "# TYPE peermq_queue_acked_total counter"));
    EXPECT_TRUE(
        has_line(text, "# HELP peermq_queue_acked_total Messages acknowledged by a consumer."));
    EXPECT_TRUE(has_line(text, R"(peermq_queue_acked_total{node="n1",queue="orders"} 7)"));
    EXPECT_TRUE(has_line(text, "# TYPE peermq_queue_ack_latency_seconds histogram"));
    EXPECT_EQ(text.find("# EOF"), std::string::npos);
    EXPECT_EQ(text.find("# UNIT"), std::string::npos);
}

// Every field of the stats table (core/src/observability/stats_fields.hpp) that has a metric is
// a family of that name, type and help text, whose samples hold the field's values; a field
// added to the table is exported without a change to the renderer.
TEST(RenderMetrics, EveryFieldOfTheStatsTableIsAFamilyWithItsHelpAndValues) {
    namespace detail = peermq::detail;
    using detail::StatsKind;
    const peermq::NodeStats stats = peermq::testing::distinct_node_stats();
    const std::string text = peermq::render_metrics(stats, MetricsFormat::prometheus);
    const std::string node = "{node=\"" + stats.name + "\"";
    auto expect_family = [&](const std::string& family, const std::string& type,
                             std::string_view help) {
        const std::string meta = type == "counter" ? family + "_total" : family;
        EXPECT_TRUE(has_line(text, "# HELP " + meta + " " + std::string(help))) << meta;
        EXPECT_TRUE(has_line(text, "# TYPE " + meta + " " + type)) << meta;
    };
    auto type_of = [](StatsKind kind) { return kind == StatsKind::counter ? "counter" : "gauge"; };
    auto suffix_of = [](StatsKind kind) { return kind == StatsKind::counter ? "_total" : ""; };

    detail::for_each_stats_field<peermq::NodeStats>([&](const auto& field) {
        const auto& value = stats.*field.member;
        using Value = std::decay_t<decltype(value)>;
        const std::string metric(field.metric);
        if (field.kind == StatsKind::identity || field.kind == StatsKind::omitted) {
            EXPECT_TRUE(lines_starting(text, "peermq_" + std::string(field.name)).empty());
            return;
        }
        if constexpr (std::is_same_v<Value, std::uint64_t>) {
            expect_family(metric, type_of(field.kind), field.help);
            EXPECT_TRUE(has_line(
                text, metric + suffix_of(field.kind) + node + "} " + std::to_string(value)))
                << metric;
        } else if constexpr (std::is_same_v<Value, std::map<std::string, std::uint64_t>>) {
            expect_family(metric, "counter", field.help);
            for (const auto& [key, count] : value) {
                EXPECT_TRUE(has_line(text, metric + "_total" + node + "," +
                                               std::string(field.label) + "=\"" + key + "\"} " +
                                               std::to_string(count)))
                    << metric;
            }
        } else if constexpr (std::is_same_v<Value, std::vector<peermq::PeerInfo>>) {
            expect_family(metric, "gauge", field.help);
        } else if constexpr (std::is_same_v<Value, std::map<std::string, peermq::ChannelStats>>) {
            ASSERT_FALSE(value.empty());
            const auto& [channel, channel_stats] = *value.begin();
            const std::string labels =
                node + "," + std::string(field.label) + "=\"" + channel + "\"} ";
            detail::for_each_stats_field<peermq::ChannelStats>([&](const auto& counter) {
                const std::string family = metric + "_" + std::string(counter.metric);
                const auto& count = channel_stats.*counter.member;
                if constexpr (std::is_same_v<std::decay_t<decltype(count)>, std::uint64_t>) {
                    expect_family(family, type_of(counter.kind), counter.help);
                    EXPECT_TRUE(has_line(
                        text, family + suffix_of(counter.kind) + labels + std::to_string(count)))
                        << family;
                } else if (counter.only_for == field.label) {
                    expect_family(family, "histogram", counter.help);
                    EXPECT_TRUE(
                        has_line(text, family + "_count" + labels + std::to_string(count.count)))
                        << family;
                } else {
                    EXPECT_TRUE(lines_starting(text, "# HELP " + family).empty()) << family;
                }
            });
        } else {
            ADD_FAILURE() << field.name << ": a field kind this test does not know";
        }
    });
}

TEST(RenderMetrics, PeersAreLabelledByNameOrEndpointOnce) {
    const std::string text = peermq::render_metrics(sample_stats());
    const std::string n2 = R"(node="n1",peer="n2",peer_id="0190a3c4-0000-7000-8000-000000000002")";
    const std::string ep = R"(node="n1",peer="tcp://127.0.0.1:40002",peer_id="")";
    EXPECT_TRUE(has_line(text, "peermq_peer_up{" + n2 + "} 1"));
    EXPECT_TRUE(has_line(text, "peermq_peer_up{" + ep + "} 0"));
    EXPECT_EQ(lines_starting(text, "peermq_peer_up{").size(), 2u);
    EXPECT_TRUE(has_line(text, "peermq_peer_state{" + n2 + R"(,state="alive"} 1)"));
    EXPECT_TRUE(has_line(text, "peermq_peer_state{" + n2 + R"(,state="suspect"} 0)"));
    EXPECT_TRUE(has_line(text, "peermq_peer_state{" + ep + R"(,state="connecting"} 1)"));
    EXPECT_TRUE(has_line(text, "peermq_peer_frames_sent_total{" + n2 + "} 12"));
    EXPECT_TRUE(has_line(text, "peermq_peer_frames_received_total{" + n2 + "} 13"));
    // Numbers are printed as Prometheus (Go) prints them: shortest form, exponent from 1e6 on.
    EXPECT_TRUE(
        has_line(text, "peermq_peer_last_heard_timestamp_seconds{" + n2 + "} 1.700000000123e+09"));
    EXPECT_TRUE(has_line(text, "# UNIT peermq_peer_last_heard_timestamp_seconds seconds"));
    // Never heard from: no sample rather than a misleading 0 (1970).
    EXPECT_TRUE(lines_starting(text, "peermq_peer_last_heard_timestamp_seconds{" + ep).empty());
    EXPECT_TRUE(has_line(text, R"(peermq_peers{node="n1",state="alive"} 1)"));
    EXPECT_TRUE(has_line(text, R"(peermq_peers{node="n1",state="connecting"} 2)"));
    EXPECT_TRUE(has_line(text, R"(peermq_peers{node="n1",state="down"} 0)"));
}

TEST(RenderMetrics, HistogramBucketsAreCumulativeInSecondsAndEndWithInf) {
    peermq::NodeStats stats;
    stats.name = "n1";
    auto& h = stats.queues["q"].ack_latency;
    for (const std::uint64_t micros : {0u, 1u, 3u, 1000u}) h.record(micros);
    h.record(5'000'000'000u);  // past 2^31 µs: the open-ended last bucket
    ASSERT_EQ(h.count, 5u);

    const std::string text = peermq::render_metrics(stats);
    EXPECT_TRUE(has_line(text, "# TYPE peermq_queue_ack_latency_seconds histogram"));
    EXPECT_TRUE(has_line(text, "# UNIT peermq_queue_ack_latency_seconds seconds"));
    const auto buckets = lines_starting(text, "peermq_queue_ack_latency_seconds_bucket{");
    ASSERT_EQ(buckets.size(), 32u);  // 31 finite bounds (2 µs .. 2^31 µs) and +Inf
    const std::string labels = R"(node="n1",queue="q")";
    EXPECT_EQ(buckets[0],
              "peermq_queue_ack_latency_seconds_bucket{" + labels + R"(,le="2e-06"} 2)");
    EXPECT_EQ(buckets[1],
              "peermq_queue_ack_latency_seconds_bucket{" + labels + R"(,le="4e-06"} 3)");
    EXPECT_EQ(buckets[8],
              "peermq_queue_ack_latency_seconds_bucket{" + labels + R"(,le="0.000512"} 3)");
    EXPECT_EQ(buckets[9],
              "peermq_queue_ack_latency_seconds_bucket{" + labels + R"(,le="0.001024"} 4)");
    EXPECT_EQ(buckets[30],
              "peermq_queue_ack_latency_seconds_bucket{" + labels + R"(,le="2147.483648"} 4)");
    EXPECT_EQ(buckets[31],
              "peermq_queue_ack_latency_seconds_bucket{" + labels + R"(,le="+Inf"} 5)");
    std::uint64_t previous = 0;
    for (const auto& line : buckets) {
        const std::uint64_t value = std::stoull(line.substr(line.rfind(' ') + 1));
        EXPECT_GE(value, previous) << line;
        previous = value;
    }
    EXPECT_TRUE(has_line(text, "peermq_queue_ack_latency_seconds_count{" + labels + "} 5"));
    EXPECT_TRUE(has_line(text, "peermq_queue_ack_latency_seconds_sum{" + labels + "} 5000.001004"));
}

TEST(RenderMetrics, LabelValuesAreEscapedAndMadeValidUtf8) {
    peermq::NodeStats stats;
    stats.name = "node \"one\"";
    stats.queues["a\"b\\c\nd"].sent = 1;
    stats.topics["caf\xC3\xA9"].sent = 2;               // valid UTF-8: kept
    stats.topics["bad\xFF\xC3(\xED\xA0\x80"].sent = 3;  // invalid byte, truncated, surrogate
    const std::string text = peermq::render_metrics(stats);
    EXPECT_TRUE(
        has_line(text, R"(peermq_queue_sent_total{node="node \"one\"",queue="a\"b\\c\nd"} 1)"));
    EXPECT_TRUE(has_line(
        text, "peermq_topic_sent_total{node=\"node \\\"one\\\"\",topic=\"caf\xC3\xA9\"} 2"));
    EXPECT_TRUE(has_line(text,
                         "peermq_topic_sent_total{node=\"node \\\"one\\\"\",topic=\"bad"
                         "\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"} 3"));
}

// NodeStats::dead_letters, which the stats field table has no kind for: one gauge, a sample per
// queue and reason, labels escaped like every other; no family while there are none.
TEST(RenderMetrics, DeadLettersAreAGaugeByQueueAndReason) {
    auto stats = sample_stats();
    stats.dead_letters["a\"b\\c\nd"]["corrupt"] = 2;
    const std::string help =
        "Letters in the dead-letter store now, by queue and reason (replay and purge take them "
        "out).";
    const std::string text = peermq::render_metrics(stats, MetricsFormat::prometheus);
    EXPECT_TRUE(has_line(text, "# HELP peermq_dead_letters " + help));
    EXPECT_TRUE(has_line(text, "# TYPE peermq_dead_letters gauge"));
    EXPECT_EQ(lines_starting(text, "peermq_dead_letters").size(), 3u);
    EXPECT_TRUE(has_line(
        text, R"(peermq_dead_letters{node="n1",queue="payments",reason="max_attempts"} 3)"));
    EXPECT_TRUE(
        has_line(text, R"(peermq_dead_letters{node="n1",queue="payments",reason="rejected"} 1)"));
    EXPECT_TRUE(
        has_line(text, R"(peermq_dead_letters{node="n1",queue="a\"b\\c\nd",reason="corrupt"} 2)"));

    const std::string open = peermq::render_metrics(stats, MetricsFormat::openmetrics);
    EXPECT_TRUE(has_line(open, "# TYPE peermq_dead_letters gauge"));
    EXPECT_TRUE(
        has_line(open, R"(peermq_dead_letters{node="n1",queue="payments",reason="rejected"} 1)"));

    stats.dead_letters.clear();
    const std::string none = peermq::render_metrics(stats);
    EXPECT_TRUE(lines_starting(none, "# HELP peermq_dead_letters").empty());
    EXPECT_TRUE(lines_starting(none, "peermq_dead_letters").empty());
}

TEST(RenderMetrics, FamiliesAreNotInterleavedAndEachHasOneHeader) {
    const std::string text = peermq::render_metrics(sample_stats(), MetricsFormat::prometheus);
    std::set<std::string> closed;
    std::string current;
    std::set<std::string> typed;
    for (const auto& line : lines_of(text)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            const std::string family = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(typed.insert(family).second) << "second TYPE for " << family;
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        std::string name = line.substr(0, line.find_first_of("{ "));
        for (const char* suffix : {"_bucket", "_count", "_sum"}) {
            const std::string s(suffix);
            if (name.size() > s.size() && name.ends_with(s) &&
                typed.count(name.substr(0, name.size() - s.size())) != 0) {
                name = name.substr(0, name.size() - s.size());
            }
        }
        EXPECT_EQ(typed.count(name), 1u) << "sample without TYPE: " << line;
        if (name != current) {
            EXPECT_EQ(closed.count(name), 0u) << "family " << name << " interleaved";
            if (!current.empty()) closed.insert(current);
            current = name;
        }
    }
}

TEST(RenderMetrics, IsDeterministicAndEmptyStatsAreStillValid) {
    EXPECT_EQ(peermq::render_metrics(sample_stats()), peermq::render_metrics(sample_stats()));
    const std::string empty = peermq::render_metrics(peermq::NodeStats{});
    EXPECT_TRUE(has_line(empty, R"(peermq_node_info{node="",node_id=""} 1)"));
    EXPECT_TRUE(has_line(empty, R"(peermq_bad_frames_total{node=""} 0)"));
    EXPECT_TRUE(lines_starting(empty, "peermq_queue_").empty());
    EXPECT_EQ(lines_of(empty).back(), "# EOF");
}

// The real parsers of the Prometheus project (python3-prometheus-client, promtool) accept both
// formats, escaping and replacement characters included.
std::string tricky_text(MetricsFormat format) {
    auto stats = sample_stats();
    stats.queues["a\"b\\c\nd"].ack_latency.record(1500);
    stats.topics["bad\xFF"].sent = 1;
    stats.dead_letters["a\"b\\c\nd"]["bad\xFF"] = 1;
    return peermq::render_metrics(stats, format);
}

void expect_python_parses(MetricsFormat format) {
    if (std::string(PEERMQ_PYTHON).empty()) GTEST_SKIP() << "python3 not found";
    const auto result = peermq::testing::run_process(
        {PEERMQ_PYTHON, PEERMQ_CHECK_EXPOSITION,
         format == MetricsFormat::openmetrics ? "openmetrics" : "prometheus"},
        std::chrono::seconds(30), {}, tricky_text(format));
    if (result.exit_code == 77) GTEST_SKIP() << result.output;
    EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST(RenderMetrics, PythonClientParsesOpenMetrics) {
    expect_python_parses(MetricsFormat::openmetrics);
}

TEST(RenderMetrics, PythonClientParsesPrometheusText) {
    expect_python_parses(MetricsFormat::prometheus);
}

TEST(RenderMetrics, PromtoolChecksMetricsCleanly) {
    if (std::string(PEERMQ_PROMTOOL).empty())
        GTEST_SKIP() << "promtool not found (Debian: prometheus)";
    const auto result = peermq::testing::run_process({PEERMQ_PROMTOOL, "check", "metrics"},
                                                     std::chrono::seconds(30), {},
                                                     tricky_text(MetricsFormat::prometheus));
    // promtool also lints (names, units, HELP): any finding is printed and fails the check.
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(result.output, "") << result.output;
}

TEST(MetricsFormatNegotiation, FollowsTheAcceptHeader) {
    using peermq::detail::negotiate_metrics_format;
    // What Prometheus 2.x sends.
    EXPECT_EQ(negotiate_metrics_format("application/openmetrics-text;version=1.0.0,application/"
                                       "openmetrics-text;version=0.0.1;q=0.75,text/"
                                       "plain;version=0.0.4;q=0.5,*/*;q=0.1"),
              MetricsFormat::openmetrics);
    EXPECT_EQ(negotiate_metrics_format("application/openmetrics-text"), MetricsFormat::openmetrics);
    EXPECT_EQ(negotiate_metrics_format("text/plain, application/openmetrics-text; q=0.3"),
              MetricsFormat::openmetrics);
    EXPECT_EQ(negotiate_metrics_format(""), MetricsFormat::prometheus);
    EXPECT_EQ(negotiate_metrics_format("*/*"), MetricsFormat::prometheus);
    EXPECT_EQ(negotiate_metrics_format("text/plain;version=0.0.4"), MetricsFormat::prometheus);
    EXPECT_EQ(negotiate_metrics_format("application/openmetrics-text;q=0"),
              MetricsFormat::prometheus);
    EXPECT_EQ(negotiate_metrics_format("application/openmetrics-textual"),
              MetricsFormat::prometheus);
}

TEST(MetricsListen, ParsesAddressAndPort) {
    auto port_only = peermq::parse_metrics_listen("9464");
    ASSERT_TRUE(port_only.ok()) << port_only.status().to_string();
    EXPECT_EQ(port_only->address, "127.0.0.1");  // loopback unless an address is given
    EXPECT_EQ(port_only->port, 9464);
    EXPECT_EQ(port_only->path, "/metrics");

    auto any = peermq::parse_metrics_listen("0.0.0.0:9464");
    ASSERT_TRUE(any.ok());
    EXPECT_EQ(any->address, "0.0.0.0");
    auto v6 = peermq::parse_metrics_listen("[::1]:0");
    ASSERT_TRUE(v6.ok());
    EXPECT_EQ(v6->address, "::1");
    EXPECT_EQ(v6->port, 0);
    auto colon = peermq::parse_metrics_listen(" :80 ");
    ASSERT_TRUE(colon.ok());
    EXPECT_EQ(colon->address, "127.0.0.1");
    EXPECT_EQ(colon->port, 80);

    for (const char* bad : {"", "abc", "70000", "-1", "host:", "::1:80", "[::1]", "[::1]80",
                            "127.0.0.1:9464x", "123456"}) {
        auto parsed = peermq::parse_metrics_listen(bad);
        ASSERT_FALSE(parsed.ok()) << bad;
        EXPECT_EQ(parsed.status().code(), peermq::ErrorCode::invalid_argument) << bad;
    }
}

TEST(MetricsListen, EnvironmentTurnsItOnAndIsOffByDefault) {
    ::unsetenv("PEERMQ_METRICS");
    auto off = peermq::metrics_options_from_env();
    ASSERT_TRUE(off.ok());
    EXPECT_FALSE(off->has_value());

    ::setenv("PEERMQ_METRICS", "", 1);
    ASSERT_TRUE(peermq::metrics_options_from_env().ok());
    EXPECT_FALSE(peermq::metrics_options_from_env()->has_value());

    ::setenv("PEERMQ_METRICS", "9464", 1);
    auto on = peermq::metrics_options_from_env();
    ASSERT_TRUE(on.ok());
    ASSERT_TRUE(on->has_value());
    EXPECT_EQ((*on)->address, "127.0.0.1");
    EXPECT_EQ((*on)->port, 9464);

    ::setenv("PEERMQ_METRICS", "nine", 1);
    auto bad = peermq::metrics_options_from_env();
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("PEERMQ_METRICS"), std::string::npos);
    ::unsetenv("PEERMQ_METRICS");
}

}  // namespace
