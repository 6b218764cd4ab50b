// The documents list exactly the fields the code's tables have: docs/spec/control.md (read by
// independent implementations) against the stats field table and the control messages
// (core/src/observability/stats_fields.hpp, core/src/admin/control_messages.hpp), and
// docs/metrics.md and docs/cli.md against the stats field table. A field added to a table and
// not to its document fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "admin/control_messages.hpp"
#include "observability/stats_fields.hpp"

#ifndef PEERMQ_SOURCE_DIR
#error "PEERMQ_SOURCE_DIR must be defined by the build"
#endif

namespace {

namespace detail = peermq::detail;
using Names = std::set<std::string>;

std::vector<std::string> lines_of(const std::string& relative_path) {
    std::ifstream in(std::string(PEERMQ_SOURCE_DIR) + "/" + relative_path);
    EXPECT_TRUE(in.good()) << relative_path;
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The lines under `heading` up to the next heading (outside code blocks).
std::vector<std::string> section(const std::vector<std::string>& lines, std::string_view heading) {
    std::vector<std::string> out;
    bool inside = false;
    bool code = false;
    for (const auto& line : lines) {
        if (line.rfind("```", 0) == 0) code = !code;
        if (!code && line.rfind("#", 0) == 0) {
            if (inside) break;
            inside = line == heading;
            continue;
        }
        if (inside) out.push_back(line);
    }
    EXPECT_FALSE(out.empty()) << "no section " << heading;
    return out;
}

// Every `name` in backticks in `text`.
Names backquoted(std::string_view text) {
    Names names;
    for (std::size_t at = text.find('`'); at != std::string_view::npos;) {
        const std::size_t end = text.find('`', at + 1);
        if (end == std::string_view::npos) break;
        names.emplace(text.substr(at + 1, end - at - 1));
        at = text.find('`', end + 1);
    }
    return names;
}

// The names quoted in the first column of the Markdown table whose header row starts with
// `header` (leading spaces ignored: a table may sit in a list item).
Names first_column(const std::vector<std::string>& lines, std::string_view header) {
    Names names;
    bool inside = false;
    for (const auto& raw : lines) {
        const std::size_t indent = raw.find_first_not_of(' ');
        const std::string_view line =
            indent == std::string::npos ? std::string_view{} : std::string_view(raw).substr(indent);
        if (!inside) {
            inside = line.rfind(header, 0) == 0;
            continue;
        }
        if (line.empty() || line[0] != '|') break;
        if (line.rfind("|---", 0) == 0 || line.rfind("| ---", 0) == 0) continue;
        const std::size_t end = line.find('|', 1);
        const Names cell = backquoted(line.substr(1, end - 1));
        names.insert(cell.begin(), cell.end());
    }
    EXPECT_TRUE(inside) << "no table " << header;
    return names;
}

// The text of the paragraph that starts with `start` (up to the next blank line).
std::string paragraph(const std::vector<std::string>& lines, std::string_view start) {
    std::string text;
    for (const auto& line : lines) {
        if (text.empty() && line.rfind(start, 0) != 0) continue;
        if (line.empty()) break;
        text += line + " ";
    }
    EXPECT_FALSE(text.empty()) << "no paragraph " << start;
    return text;
}

template <typename Owner>
Names stats_names() {
    Names names;
    detail::for_each_stats_field<Owner>(
        [&](const auto& field) { names.insert(std::string(field.name)); });
    return names;
}

template <const auto& kTable>
Names message_keys() {
    Names names;
    std::apply([&](const auto&... field) { (names.insert(std::string(field.key)), ...); },
               kTable.fields);
    return names;
}

TEST(FieldTablesTest, ControlSpecListsEveryStatsField) {
    const auto lines = lines_of("docs/spec/control.md");
    const auto node_stats = section(lines, "### 5.1 NodeStats");
    // The keys of a stats reply: every field of the stats table, and those the control messages
    // add after them (`dead_letters`).
    const Names keys = message_keys<detail::control::kNodeStats>();
    for (const auto& name : stats_names<peermq::NodeStats>()) EXPECT_EQ(keys.count(name), 1u);
    EXPECT_EQ(first_column(node_stats, "| key |"), keys);

    // "ChannelStats: a map with the uint keys `sent`, ... (meanings ...), and two histograms,
    // `ack_latency` (...) and `repair_time` (...). A histogram is a map: `buckets` (...), `count`
    // (uint), `sum_us` (uint)."
    const std::string channel = paragraph(node_stats, "ChannelStats:");
    const std::size_t histograms = channel.find(", and two histograms, ");
    const std::size_t layout = channel.find("A histogram is a map:");
    ASSERT_NE(histograms, std::string::npos) << channel;
    ASSERT_NE(layout, std::string::npos) << channel;
    Names channel_names =
        backquoted(std::string_view(channel).substr(0, channel.find("(meanings")));
    const Names histogram_fields =
        backquoted(std::string_view(channel).substr(histograms, layout - histograms));
    Names all = channel_names;
    all.insert(histogram_fields.begin(), histogram_fields.end());
    EXPECT_EQ(all, stats_names<peermq::ChannelStats>());
    Names histogram_names = backquoted(std::string_view(channel).substr(layout));
    EXPECT_EQ(histogram_names, message_keys<detail::control::kHistogram>());
}

TEST(FieldTablesTest, ControlSpecListsEveryKeyOfEveryMessage) {
    const auto lines = lines_of("docs/spec/control.md");
    EXPECT_EQ(first_column(section(lines, "### 5.2 PeerInfo"), "| key |"),
              message_keys<detail::control::kPeerInfo>());
    EXPECT_EQ(first_column(section(lines, "### 5.3 DeadLetter"), "| key |"),
              message_keys<detail::control::kDeadLetter>());
    const auto requests = section(lines, "## 4. Requests");
    EXPECT_EQ(first_column(requests, "| key | type | condition"),
              message_keys<detail::control::kDeadLetterFilter>());
    Names verbs;
    std::apply([&](const auto&... verb) { (verbs.insert(std::string(verb.name)), ...); },
               detail::control::kVerbs);
    EXPECT_EQ(first_column(requests, "| verb |"), verbs);
}

// Every family the renderer makes from the table is in the guide's table of families, and the
// HELP lines of its example scrape are the table's help texts.
TEST(FieldTablesTest, MetricsGuideListsEveryFamilyWithItsHelp) {
    const auto lines = lines_of("docs/metrics.md");
    const Names documented = first_column(section(lines, "## Metric families"), "| family |");
    std::map<std::string, std::string> help_of;  // family as the Prometheus text names it
    auto expect_family = [&](const std::string& family, peermq::detail::StatsKind kind,
                             std::string_view help) {
        const std::string name =
            kind == detail::StatsKind::counter || kind == detail::StatsKind::by_reason
                ? family + "_total"
                : family;
        EXPECT_EQ(documented.count(name), 1u) << name;
        help_of[name] = std::string(help);
    };
    detail::for_each_stats_field<peermq::NodeStats>([&](const auto& field) {
        switch (field.kind) {
            case detail::StatsKind::identity:
            case detail::StatsKind::omitted:
            case detail::StatsKind::histogram: return;
            case detail::StatsKind::channels:
                detail::for_each_stats_field<peermq::ChannelStats>([&](const auto& channel) {
                    // A histogram is exported only for the channels it is for, and listed.
                    if (channel.kind == detail::StatsKind::histogram &&
                        channel.only_for != field.label) {
                        return;
                    }
                    const std::string family =
                        std::string(field.metric) + "_" + std::string(channel.metric);
                    if (field.label == "topic" &&
                        channel.kind != detail::StatsKind::histogram) {  // "peermq_topic_*"
                        help_of[family +
                                (channel.kind == detail::StatsKind::counter ? "_total" : "")] =
                            std::string(channel.help);
                        return;
                    }
                    expect_family(family, channel.kind, channel.help);
                });
                return;
            default: expect_family(std::string(field.metric), field.kind, field.help);
        }
    });
    EXPECT_EQ(documented.count("peermq_topic_*"), 1u);
    std::size_t checked = 0;
    for (const auto& line : lines) {
        if (line.rfind("# HELP ", 0) != 0) continue;
        const std::size_t space = line.find(' ', 7);
        const auto found = help_of.find(line.substr(7, space - 7));
        if (found == help_of.end()) continue;
        EXPECT_EQ(line.substr(space + 1), found->second) << line;
        ++checked;
    }
    EXPECT_GT(checked, 0u);
}

TEST(FieldTablesTest, CliGuideNamesEveryKeyOfStatsJson) {
    const auto stats = section(lines_of("docs/cli.md"), "## stats");
    const Names documented = backquoted(paragraph(stats, "`--json` prints one object:"));
    for (const auto& name : stats_names<peermq::NodeStats>()) {
        EXPECT_EQ(documented.count(name), 1u) << name;
    }
}

}  // namespace
