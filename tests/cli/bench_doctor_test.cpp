// `peermq bench` and `peermq doctor`. The bench runs its receivers as processes of the tool
// itself on tcp loopback (label cli). The doctor tests that browse (CliMdnsTest.*) run beside
// the avahi-daemon restricted to lo (fixture avahi_lo, RESOURCE_LOCK mdns, labels cli and
// system) and only ever pass --interface lo; the others never browse.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "support/free_port.hpp"
#include "support/nodes.hpp"
#include "support/temp_dir.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;

// The check of that name in doctor's JSON, or null.
Json find_check(const Json& report, const std::string& name) {
    for (const auto& check : report.at("checks")) {
        if (check.at("check") == name) return check;
    }
    return nullptr;
}

TEST(CliBenchTest, QueueFiguresBesideRawZeroMqWithTheRatio) {
    const CliResult result =
        run_cli(Args{"bench", "--messages", "20000", "--size", "64", "--json"}, 120s);
    ASSERT_EQ(result.exit_code, 0) << result;
    const Json report = Json::parse(result.out);
    EXPECT_EQ(report.at("pattern"), "queue");
    EXPECT_EQ(report.at("guarantee"), "at_least_once");
    EXPECT_EQ(report.at("size"), 64);
    const Json& throughput = report.at("throughput");
    EXPECT_GT(throughput.at("peermq").at("msgs_per_sec").get<double>(), 0) << result;
    EXPECT_EQ(throughput.at("raw").at("socket"), "PUSH->PULL");
    EXPECT_GT(throughput.at("raw").at("msgs_per_sec").get<double>(), 0) << result;
    EXPECT_GT(throughput.at("ratio").get<double>(), 0) << result;
    EXPECT_EQ(throughput.at("peermq").at("lost"), 0);
    // at_least_once is acked: send->ack latency beside the REQ->REP round trip.
    const Json& latency = report.at("latency");
    ASSERT_TRUE(latency.is_object()) << result;
    EXPECT_GT(latency.at("peermq").at("p50_us").get<double>(), 0);
    EXPECT_GE(latency.at("peermq").at("p99_us").get<double>(),
              latency.at("peermq").at("p50_us").get<double>());
    EXPECT_GT(latency.at("raw").at("p50_us").get<double>(), 0);
    EXPECT_GT(latency.at("ratio_p50").get<double>(), 0);
}

TEST(CliBenchTest, TopicFiguresBesideRawPubSub) {
    const CliResult result = run_cli(
        Args{"bench", "--pattern", "topic", "--messages", "20000", "--size", "64", "--json"}, 120s);
    ASSERT_EQ(result.exit_code, 0) << result;
    const Json report = Json::parse(result.out);
    EXPECT_EQ(report.at("pattern"), "topic");
    EXPECT_EQ(report.at("guarantee"), "best_effort");
    const Json& throughput = report.at("throughput");
    EXPECT_EQ(throughput.at("raw").at("socket"), "PUB->SUB");
    EXPECT_GT(throughput.at("peermq").at("msgs_per_sec").get<double>(), 0) << result;
    EXPECT_GT(throughput.at("raw").at("msgs_per_sec").get<double>(), 0) << result;
    EXPECT_GT(throughput.at("ratio").get<double>(), 0) << result;
    EXPECT_TRUE(report.at("latency").is_null()) << "topics are never acked";
}

TEST(CliBenchTest, PlainOutputPrintsEachFigureAndTheRatio) {
    const CliResult result = run_cli(
        Args{"bench", "--guarantee", "best_effort", "--messages", "5000", "--runs", "1"}, 120s);
    ASSERT_EQ(result.exit_code, 0) << result;
    EXPECT_NE(result.out.find("peermq queue"), std::string::npos) << result;
    EXPECT_NE(result.out.find("raw ZeroMQ PUSH->PULL"), std::string::npos) << result;
    EXPECT_NE(result.out.find("ratio peermq/raw"), std::string::npos) << result;
    EXPECT_EQ(result.out.find("latency"), std::string::npos) << "best_effort is never acked";
}

TEST(CliBenchTest, RejectsAGuaranteeForTopicsInOneLine) {
    const CliResult result =
        run_cli(Args{"bench", "--pattern", "topic", "--guarantee", "at_least_once"});
    EXPECT_EQ(result.exit_code, 2) << result;
    ASSERT_EQ(result.err_lines().size(), 1u) << result;
    EXPECT_EQ(result.err.rfind("peermq: topics are best effort", 0), 0u) << result;
    EXPECT_TRUE(result.out.empty()) << result;
}

TEST(CliBenchTest, ThePeerCommandIsHidden) {
    const CliResult help = run_cli(Args{"--help"});
    EXPECT_EQ(help.exit_code, 0) << help;
    EXPECT_NE(help.out.find("bench"), std::string::npos) << help;
    EXPECT_EQ(help.out.find("bench-peer"), std::string::npos) << help;
    // Started by hand, it says what it is for instead of serving.
    const CliResult by_hand = run_cli(Args{"bench-peer"});
    EXPECT_EQ(by_hand.exit_code, 2) << by_hand;
    EXPECT_NE(by_hand.err.find("started by peermq bench"), std::string::npos) << by_hand;
}

TEST(CliDoctorTest, UnknownInterfaceIsAProblemWithAFix) {
    const CliResult result = run_cli(Args{"doctor", "--interface", "nosuch0"});
    EXPECT_EQ(result.exit_code, 1) << result;
    const auto lines = result.out_lines();
    const auto problem = std::find_if(lines.begin(), lines.end(), [](const std::string& line) {
        return line.rfind("PROBLEM  interface ", 0) == 0 &&
               line.find("nosuch0") != std::string::npos;
    });
    ASSERT_NE(problem, lines.end()) << result;
    ASSERT_NE(std::next(problem), lines.end()) << result;
    // The line after a problem says how to fix it: here, which interfaces would do.
    EXPECT_NE(std::next(problem)->find("fix: pass one of lo"), std::string::npos) << result;
    EXPECT_EQ(result.out.find("browse"), std::string::npos) << "no browse on a bad interface";
}

TEST(CliDoctorTest, JsonReportParses) {
    const CliResult result = run_cli(Args{"doctor", "--interface", "nosuch0", "--json"});
    EXPECT_EQ(result.exit_code, 1) << result;
    const Json report = Json::parse(result.out);
    EXPECT_EQ(report.at("interface"), "nosuch0");
    EXPECT_GE(report.at("problems").get<int>(), 1);
    for (const char* name : {"dbus", "avahi-daemon", "interfaces", "interface"}) {
        EXPECT_TRUE(find_check(report, name).is_object()) << name << "\n" << result;
    }
    const Json interface = find_check(report, "interface");
    EXPECT_EQ(interface.at("status"), "problem");
    EXPECT_FALSE(interface.at("fix").get<std::string>().empty());
    const Json interfaces = find_check(report, "interfaces");
    EXPECT_EQ(interfaces.at("status"), "ok") << result;
    EXPECT_NE(interfaces.at("detail").get<std::string>().find("lo 127.0.0.1"), std::string::npos);
    EXPECT_TRUE(report.at("peers").empty());
}

// With --data-dir, doctor reads the key files as the node would: a key file others may read and
// an authorized_keys others may write are problems (the node refuses both), a line a node would
// skip is a warning naming it, a directory others may enter a warning.
TEST(CliDoctorTest, TheDataDirectorysKeyFilesAreChecked) {
    testing::TempDir dir;
    const std::string data_dir = dir.file("node");
    ASSERT_EQ(run_cli(Args{"keys", "generate", "--data-dir", data_dir}).exit_code, 0);
    const std::string peer_key = run_cli(Args{"keys", "generate", "--json"}).out;
    const std::string public_key = Json::parse(peer_key).at("public_key");
    {
        std::ofstream keys(data_dir + "/authorized_keys");
        keys << public_key << " billing send=invoices\n"
             << "not-a-key broken\n";
    }
    ASSERT_EQ(::chmod((data_dir + "/authorized_keys").c_str(), 0600), 0);

    CliResult result = run_cli(Args{"doctor", "--data-dir", data_dir, "--json"});
    Json report = Json::parse(result.out);
    EXPECT_EQ(find_check(report, "key").at("status"), "ok") << result;
    EXPECT_EQ(find_check(report, "data-dir").at("status"), "ok") << result;
    const Json listed = find_check(report, "authorized-keys");
    EXPECT_EQ(listed.at("status"), "warn") << result;
    EXPECT_NE(listed.at("detail").get<std::string>().find("line 2"), std::string::npos) << result;

    ASSERT_EQ(::chmod((data_dir + "/authorized_keys").c_str(), 0666), 0);
    ASSERT_EQ(::chmod((data_dir + "/node.key").c_str(), 0644), 0);
    ASSERT_EQ(::chmod(data_dir.c_str(), 0755), 0);
    result = run_cli(Args{"doctor", "--data-dir", data_dir, "--json"});
    EXPECT_EQ(result.exit_code, 1) << result;
    report = Json::parse(result.out);
    EXPECT_EQ(find_check(report, "key").at("status"), "problem") << result;
    EXPECT_NE(find_check(report, "key").at("detail").get<std::string>().find("chmod 600"),
              std::string::npos)
        << result;
    EXPECT_EQ(find_check(report, "authorized-keys").at("status"), "problem") << result;
    EXPECT_EQ(find_check(report, "data-dir").at("status"), "warn") << result;
}

// Runs `peermq doctor args --json` until `seen` holds for its report (each run browses 2 s).
std::optional<Json> doctor_until(const Args& args, const std::function<bool(const Json&)>& seen,
                                 CliResult& last) {
    std::optional<Json> found;
    wait_until(
        [&] {
            last = run_cli(Args{"doctor", "--json"} + args, 60s);
            const Json report = Json::parse(last.out, nullptr, false);
            if (report.is_discarded() || !seen(report)) return false;
            found = report;
            return true;
        },
        30s);
    return found;
}

bool has_peer(const Json& report, const std::string& name) {
    for (const auto& peer : report.at("peers")) {
        if (peer.at("name") == name) return true;
    }
    return false;
}

TEST(CliMdnsTest, DoctorFindsANodeThroughTheAvahiDaemonAndReachesIt) {
    const std::string cluster = "cli-doctor-" + std::to_string(::getpid());
    TestNode node(Args{"--name", "doctor-node", "--interface", "lo", "--cluster", cluster,
                       "--discovery", "avahi", "--consume", "jobs"});
    ASSERT_TRUE(node.ready());

    CliResult last;
    const auto report = doctor_until(
        Args{"--interface", "lo", "--cluster", cluster},
        [](const Json& r) { return has_peer(r, "doctor-node"); }, last);
    ASSERT_TRUE(report) << last;
    EXPECT_EQ(last.exit_code, 0) << last;
    EXPECT_EQ(report->at("problems"), 0) << last;
    EXPECT_EQ(find_check(*report, "dbus").at("status"), "ok") << last;
    EXPECT_EQ(find_check(*report, "avahi-daemon").at("status"), "ok") << last;
    EXPECT_EQ(find_check(*report, "interface").at("status"), "ok") << last;
    const Json browse = find_check(*report, "browse");
    EXPECT_NE(browse.at("detail").get<std::string>().find("through the avahi-daemon"),
              std::string::npos)
        << last;
    ASSERT_EQ(report->at("peers").size(), 1u) << last;
    const Json& peer = report->at("peers")[0];
    EXPECT_EQ(peer.at("host"), "127.0.0.1");
    EXPECT_EQ("tcp://127.0.0.1:" + std::to_string(peer.at("inbox_port").get<int>()),
              peermq::testing::without_key(node.endpoint()));
    EXPECT_TRUE(peer.at("inbox_reachable").get<bool>()) << last;
    EXPECT_TRUE(peer.at("pub_reachable").get<bool>()) << last;
}

TEST(CliMdnsTest, DoctorWithoutInterfaceBrowsesThroughTheDaemonOnly) {
    const std::string cluster = "cli-doctor-passive-" + std::to_string(::getpid());
    TestNode node(Args{"--name", "passive-node", "--interface", "lo", "--cluster", cluster,
                       "--discovery", "avahi"});
    ASSERT_TRUE(node.ready());
    CliResult last;
    wait_until(
        [&] {
            last = run_cli(Args{"doctor", "--cluster", cluster}, 60s);
            return last.out.find("passive-node") != std::string::npos;
        },
        30s);
    EXPECT_EQ(last.exit_code, 0) << last;
    EXPECT_NE(last.out.find("\nok       avahi-daemon "), std::string::npos) << last;
    // The daemon of the fixture listens on lo only, and doctor says where it listens.
    EXPECT_NE(last.out.find("224.0.0.251 is joined on lo "), std::string::npos) << last;
    EXPECT_NE(last.out.find("through the avahi-daemon"), std::string::npos) << last;
    EXPECT_NE(last.out.find("passive-node"), std::string::npos) << last;
    EXPECT_NE(last.out.find("reachable"), std::string::npos) << last;
}

TEST(CliMdnsTest, DoctorReportsAnUnreachablePeerWithTheFirewallFix) {
    const std::string cluster = "cli-doctor-ghost-" + std::to_string(::getpid());
    const std::uint16_t inbox = peermq::testing::free_port();
    const std::uint16_t pub = peermq::testing::free_port();
    ASSERT_NE(inbox, 0);
    ASSERT_NE(pub, 0);
    // A record whose ports nobody listens on, as a node behind a firewall would look.
    // avahi-publish says "Established" on stderr: the shell joins it to stdout.
    ChildProcess ghost(
        Args{"/bin/sh", "-c",
             "exec avahi-publish -s ghost-0000beef _peermq._tcp " + std::to_string(inbox) +
                 " v=1 id=6f1c2e4a-0000-4000-8000-00000000beef pub=" + std::to_string(pub) +
                 " cluster=" + cluster + " 2>&1"});
    ASSERT_TRUE(ghost.read_line("Established", 20s)) << "avahi-publish did not register";

    CliResult last;
    const auto report = doctor_until(
        Args{"--interface", "lo", "--cluster", cluster},
        [](const Json& r) { return has_peer(r, "ghost"); }, last);
    ASSERT_TRUE(report) << last;
    EXPECT_EQ(last.exit_code, 1) << last;
    const Json& peer = report->at("peers")[0];
    EXPECT_FALSE(peer.at("inbox_reachable").get<bool>()) << last;
    EXPECT_NE(peer.at("inbox_error").get<std::string>().find("refused"), std::string::npos) << last;
    Json problem;
    for (const auto& check : report->at("checks")) {
        if (check.at("check") == "peer") problem = check;
    }
    ASSERT_TRUE(problem.is_object()) << last;
    EXPECT_EQ(problem.at("status"), "problem");
    const std::string fix = problem.at("fix").get<std::string>();
    EXPECT_NE(fix.find("ufw allow " + std::to_string(inbox) + "/tcp"), std::string::npos) << fix;
    EXPECT_NE(fix.find("ufw allow " + std::to_string(pub) + "/tcp"), std::string::npos) << fix;
}

}  // namespace
}  // namespace peermq::cli_test
