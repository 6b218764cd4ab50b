// examples/telemetry: two sensor sites publish on sensors.<site>.<kind>; a dashboard subscribed
// to "sensors." gets readings from every sensor; dashboards that join late get only readings
// published after they joined (topics keep no history), and a narrower prefix gets only its
// site. Found through mDNS on lo (the avahi-daemon of the avahi_lo fixture).
#include <algorithm>
#include <csignal>
#include <map>
#include <set>

#include "examples_support.hpp"

namespace peermq::examples_test {
namespace {

const std::vector<std::string> kTopics = {"sensors.berlin.humidity", "sensors.berlin.temperature",
                                          "sensors.paris.pressure", "sensors.paris.temperature"};

struct Received {
    std::string topic;
    std::string site;
    std::uint64_t seq = 0;
};

std::vector<Received> readings(const ChildProcess& dashboard) {
    static const std::regex kReading(R"(^[\w-]+: (sensors\.(\w+)\.\w+) #(\d+) = )");
    std::vector<Received> out;
    for (const auto& line : dashboard.lines()) {
        if (std::smatch m; std::regex_search(line, m, kReading)) {
            out.push_back({m[1].str(), m[2].str(), std::stoull(m[3].str())});
        }
    }
    return out;
}

// The highest reading number of `site` that `dashboard` printed so far.
std::uint64_t highest_seq(const ChildProcess& dashboard, const std::string& site) {
    std::uint64_t highest = 0;
    for (const auto& r : readings(dashboard)) {
        if (r.site == site) highest = std::max(highest, r.seq);
    }
    return highest;
}

// Waits until `dashboard` printed a reading of each of `topics`.
bool heard_from(ChildProcess& dashboard, const std::vector<std::string>& topics) {
    for (const auto& topic : topics) {
        if (!dashboard.wait_for_line_containing(": " + topic + " #", 20s)) return false;
    }
    return true;
}

const std::regex kRound(R"(^sensor \w+: #(\d+) )");

// The highest round a sensor has printed so far (it prints after publishing).
std::uint64_t last_published(const ChildProcess& sensor) {
    const auto rounds = captured_ints(sensor, kRound);
    return rounds.empty() ? 0 : static_cast<std::uint64_t>(rounds.back());
}

// Waits until `sensor` has printed round `seq` (a subscriber may get a reading before the
// sensor's line about it is read).
bool printed_round(ChildProcess& sensor, std::uint64_t seq) {
    return sensor
        .wait_for_line(
            [&](const std::string& line) {
                std::smatch m;
                return std::regex_search(line, m, kRound) && std::stoull(m[1].str()) >= seq;
            },
            10s)
        .has_value();
}

TEST(TelemetryExample, DashboardHearsEverySensorLateJoinerOnlyLaterReadings) {
    const Args common = on_lo(new_cluster("telemetry"), /*static_peers=*/false);
    const Args every = {"--interval-ms", "100"};
    auto berlin = start("peermq_telemetry_sensor", common + every + Args{"--site", "berlin"});
    auto paris = start("peermq_telemetry_sensor",
                       common + every + Args{"--site", "paris", "--kinds", "temperature,pressure"});
    auto dashboard = start("peermq_telemetry_dashboard", common);
    ASSERT_TRUE(heard_from(*dashboard, kTopics)) << dashboard->output();

    // Everything published up to here is gone for anyone who joins now.
    ASSERT_TRUE(printed_round(*berlin, highest_seq(*dashboard, "berlin"))) << berlin->output();
    ASSERT_TRUE(printed_round(*paris, highest_seq(*dashboard, "paris"))) << paris->output();
    const std::map<std::string, std::uint64_t> before = {{"berlin", last_published(*berlin)},
                                                         {"paris", last_published(*paris)}};
    ASSERT_GT(before.at("berlin"), 0u);
    ASSERT_GT(before.at("paris"), 0u);
    auto late = start("peermq_telemetry_dashboard", common + Args{"--name", "late-dashboard"});
    auto paris_only =
        start("peermq_telemetry_dashboard",
              common + Args{"--name", "paris-dashboard", "--prefix", "sensors.paris."});
    ASSERT_TRUE(heard_from(*late, kTopics)) << late->output();
    ASSERT_TRUE(heard_from(*paris_only, {kTopics[2], kTopics[3]})) << paris_only->output();

    for (auto* process : {late.get(), paris_only.get(), dashboard.get()}) {
        process->signal(SIGTERM);
        EXPECT_EQ(process->wait(10s), 0) << process->output();
    }
    for (const auto& r : readings(*late)) {
        EXPECT_GT(r.seq, before.at(r.site))
            << r.topic << " #" << r.seq << " was published before late-dashboard started";
    }
    for (const auto& r : readings(*paris_only)) {
        EXPECT_EQ(r.site, "paris") << r.topic;
        EXPECT_GT(r.seq, before.at(r.site)) << r.topic << " #" << r.seq;
    }
    // The early dashboard did get readings from before that point, from every sensor.
    std::set<std::string> early;
    for (const auto& r : readings(*dashboard)) {
        if (r.seq <= before.at(r.site)) early.insert(r.topic);
    }
    EXPECT_EQ(early, std::set<std::string>(kTopics.begin(), kTopics.end())) << dashboard->output();

    for (auto* sensor : {berlin.get(), paris.get()}) {
        sensor->signal(SIGTERM);
        EXPECT_EQ(sensor->wait(10s), 0) << sensor->output();
    }
}

// A dashboard that subscribes reliably with --history 5, started while a sensor runs: first the
// sensor's last five readings (marked history), then every later one, numbered one after the
// other: no gap, no duplicate, nothing reported lost.
TEST(TelemetryExample, ALateDashboardWithHistoryGetsTheLastReadingsThenEveryOneInOrder) {
    const Args common = on_lo(new_cluster("telemetry-history"), /*static_peers=*/false);
    auto berlin =
        start("peermq_telemetry_sensor", common + Args{"--interval-ms", "50", "--site", "berlin"});
    ASSERT_TRUE(printed_round(*berlin, 10)) << berlin->output();
    const std::uint64_t before = last_published(*berlin);
    auto late = start("peermq_telemetry_dashboard",
                      common + Args{"--name", "history-dashboard", "--history", "5", "--prefix",
                                    "sensors.berlin.temperature"});
    ASSERT_TRUE(late->wait_for_line(
                        [&](const std::string& line) {
                            static const std::regex kLive(R"(temperature #(\d+) = .* C$)");
                            std::smatch m;
                            return std::regex_search(line, m, kLive) &&
                                   std::stoull(m[1].str()) > before + 30;
                        },
                        20s)
                    .has_value())
        << late->output();
    late->signal(SIGTERM);
    EXPECT_EQ(late->wait(10s), 0) << late->output();
    berlin->signal(SIGTERM);
    EXPECT_EQ(berlin->wait(10s), 0) << berlin->output();

    static const std::regex kLine(
        R"(^[\w-]+: sensors\.berlin\.temperature #(\d+) = .*?( \(history\))?$)");
    std::vector<std::pair<std::uint64_t, bool>> got;  // number, from the history
    for (const auto& line : late->lines()) {
        if (std::smatch m; std::regex_search(line, m, kLine)) {
            got.emplace_back(std::stoull(m[1].str()), m[2].matched);
        }
        EXPECT_EQ(line.find("lost readings"), std::string::npos) << line;
    }
    ASSERT_GT(got.size(), 10u) << late->output();
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].second, i < 5) << "#" << got[i].first << "\n" << late->output();
        if (i > 0) {
            EXPECT_EQ(got[i].first, got[i - 1].first + 1) << late->output();
        }
    }
    EXPECT_GT(got.front().first, 1u);  // the last five, not the first ones
}

}  // namespace
}  // namespace peermq::examples_test
