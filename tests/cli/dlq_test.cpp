// `peermq dlq` and `peermq stats` on the dead letters and counters of a producer whose consumer
// fails on one poison message: on the journal of a stopped node, and through the control
// endpoint of a running one (docs/cli.md, "dlq", "stats").
#include <regex>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;

constexpr const char* kQueue = "poison";

// A producer (`peermq_driver node` with a data directory) that sent the integers 0..4 to a consumer
// whose handler throws "poison payload 3": 4 acked, 1 dead-lettered with reason max_attempts.
class CliDlqTest : public ::testing::Test {
protected:
    void SetUp() override {
        broken_ = std::make_unique<TestNode>(consumer_args("broken", {"--fail-payload", "3"}));
        ASSERT_TRUE(broken_->ready());
        start_producer({"--peer", host_port(broken_->endpoint()), "--produce", kQueue, "--count",
                        "5", "--max-attempts", "2", "--retry-initial-ms", "10", "--retry-max-ms",
                        "40"});
        ASSERT_TRUE(producer_->ready());
        ASSERT_TRUE(producer_->process().read_line("FLUSHED 5", 20s));
        ASSERT_TRUE(wait_until(
            [&] {
                return producer_->stat(std::string(kQueue) + ".dead_lettered") == 1u &&
                       producer_->stat(std::string(kQueue) + ".acked") == 4u;
            },
            20s));
    }

    std::vector<std::string> consumer_args(const std::string& name, std::vector<std::string> extra,
                                           const std::string& peer = {}) {
        Args args = {"--name",    name,   "--interface", "lo",
                     "--consume", kQueue, "--log",       dir_.file(name + ".log")};
        if (!peer.empty()) args = args + Args{"--peer", host_port(peer)};
        return args + extra;
    }

    void start_producer(std::vector<std::string> extra) {
        producer_ = std::make_unique<TestNode>(
            Args{"--name", "producer", "--interface", "lo", "--data-dir", data_dir()} + extra);
    }

    std::string data_dir() const { return dir_.file("producer-data"); }

    // The one dead letter, as `dlq list --json` shows it.
    Json only_dead_letter() {
        const CliResult listed = run_cli(Args{"dlq", "list", "--data-dir", data_dir(), "--json"});
        EXPECT_EQ(listed.exit_code, 0) << listed;
        const Json letters = Json::parse(listed.out, nullptr, false);
        EXPECT_TRUE(letters.is_array() && letters.size() == 1) << listed;
        return letters.is_array() && letters.size() == 1 ? letters[0] : Json();
    }

    void expect_no_dead_letters() {
        const CliResult listed = run_cli(Args{"dlq", "list", "--data-dir", data_dir(), "--json"});
        EXPECT_EQ(listed.exit_code, 0) << listed;
        EXPECT_EQ(listed.out, "[]\n") << listed;
    }

    TempDir dir_;
    std::unique_ptr<TestNode> broken_;
    std::unique_ptr<TestNode> producer_;
};

void expect_poison(const Json& letter) {
    EXPECT_EQ(letter.value("queue", ""), kQueue);
    EXPECT_EQ(letter.value("reason", ""), "max_attempts");
    EXPECT_EQ(letter.value("last_error", ""), "poison payload 3");
    EXPECT_EQ(letter.value("attempts", 0), 2);
    EXPECT_EQ(letter.value("payload", Json()), 3);
    EXPECT_EQ(letter.value("payload_encoding", ""), "msgpack");
    EXPECT_TRUE(std::regex_match(letter.value("last_failure", ""),
                                 std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z")))
        << letter;
}

TEST_F(CliDlqTest, ListAndShowTheDeadLetterOfAStoppedNode) {
    ASSERT_EQ(producer_->stop(), 0);

    const CliResult table = run_cli(Args{"dlq", "list", "--data-dir", data_dir()});
    ASSERT_EQ(table.exit_code, 0) << table;
    const auto lines = table.out_lines();
    ASSERT_EQ(lines.size(), 2u) << table;
    EXPECT_EQ(lines[0].rfind("ID", 0), 0u);
    EXPECT_NE(lines[1].find("max_attempts"), std::string::npos) << table;
    EXPECT_NE(lines[1].find("poison payload 3"), std::string::npos) << table;

    const Json letter = only_dead_letter();
    expect_poison(letter);
    const std::string id = letter.value("id", "");

    const CliResult shown = run_cli(Args{"dlq", "show", id, "--data-dir", data_dir()});
    ASSERT_EQ(shown.exit_code, 0) << shown;
    EXPECT_NE(shown.out.find("id:            " + id), std::string::npos) << shown;
    EXPECT_NE(shown.out.find("reason:        max_attempts"), std::string::npos) << shown;
    EXPECT_NE(shown.out.find("last error:    poison payload 3"), std::string::npos) << shown;
    EXPECT_NE(shown.out.find("payload:       msgpack, 1 byte\n3\n"), std::string::npos) << shown;
    const CliResult shown_json =
        run_cli(Args{"dlq", "show", id, "--data-dir", data_dir(), "--json"});
    ASSERT_EQ(shown_json.exit_code, 0) << shown_json;
    expect_poison(Json::parse(shown_json.out));

    // Filters: by reason, queue and time (ISO-8601 or a duration ago).
    auto count = [&](Args filter) {
        const CliResult r =
            run_cli(Args{"dlq", "list", "--data-dir", data_dir(), "--json"} + filter);
        EXPECT_EQ(r.exit_code, 0) << r;
        const Json j = Json::parse(r.out, nullptr, false);
        return j.is_array() ? static_cast<int>(j.size()) : -1;
    };
    EXPECT_EQ(count({"--reason", "max_attempts"}), 1);
    EXPECT_EQ(count({"--reason", "expired"}), 0);
    EXPECT_EQ(count({"--queue", kQueue}), 1);
    EXPECT_EQ(count({"--queue", "other"}), 0);
    EXPECT_EQ(count({"--since", "1h"}), 1);
    EXPECT_EQ(count({"--until", "1h"}), 0);
    EXPECT_EQ(count({"--since", letter.value("last_failure", "")}), 1);
    EXPECT_EQ(count({"--until", letter.value("last_failure", "")}), 0);
    EXPECT_EQ(count({"--until", "2999-01-01T00:00:00Z"}), 1);
    EXPECT_EQ(count({"--limit", "1"}), 1);
}

TEST_F(CliDlqTest, ReplayOnAStoppedNodeIsDeliveredWhenTheNodeRunsAgain) {
    ASSERT_EQ(producer_->stop(), 0);
    ASSERT_EQ(broken_->stop(), 0);
    const std::string old_id = only_dead_letter().value("id", "");

    const CliResult replayed = run_cli(Args{"dlq", "replay", "--all", "--data-dir", data_dir()});
    ASSERT_EQ(replayed.exit_code, 0) << replayed;
    ASSERT_EQ(replayed.out_lines().size(), 1u) << replayed;
    EXPECT_TRUE(
        std::regex_match(replayed.out_lines()[0],
                         std::regex("replayed " + old_id + " as [0-9a-f-]{36} on 'poison'")))
        << replayed;
    EXPECT_NE(replayed.err.find("the node sends them when it next starts"), std::string::npos)
        << replayed;
    expect_no_dead_letters();

    // The fix: a consumer without the bug, and the producer back on the same data directory.
    TestNode fixed(consumer_args("fixed", {}));
    ASSERT_TRUE(fixed.ready());
    start_producer({"--peer", host_port(fixed.endpoint())});
    ASSERT_TRUE(producer_->ready());
    EXPECT_TRUE(wait_until(
        [&] { return read_log(dir_.file("fixed.log")) == std::vector<long long>{3}; }, 20s));
    EXPECT_TRUE(
        wait_until([&] { return producer_->stat(std::string(kQueue) + ".acked") == 1u; }, 10s));
}

TEST_F(CliDlqTest, ReplayOnARunningNodeGoesThroughItsControlEndpoint) {
    const Json letter = only_dead_letter();  // listed through the control endpoint
    expect_poison(letter);
    ASSERT_EQ(broken_->stop(), 0);
    TestNode fixed(consumer_args("fixed", {}, producer_->endpoint()));
    ASSERT_TRUE(fixed.ready());

    const std::string old_id = letter.value("id", "");
    const CliResult replayed = run_cli(Args{"dlq", "replay", old_id, "--data-dir", data_dir()});
    ASSERT_EQ(replayed.exit_code, 0) << replayed;
    EXPECT_TRUE(std::regex_match(
        replayed.out, std::regex("replayed " + old_id + " as [0-9a-f-]{36} on 'poison'\n")))
        << replayed;
    EXPECT_EQ(replayed.err, "") << replayed;
    EXPECT_TRUE(wait_until(
        [&] { return read_log(dir_.file("fixed.log")) == std::vector<long long>{3}; }, 20s));
    expect_no_dead_letters();
}

TEST_F(CliDlqTest, PurgeOneByIdOnAStoppedNode) {
    ASSERT_EQ(producer_->stop(), 0);
    const std::string id = only_dead_letter().value("id", "");
    const CliResult purged = run_cli(Args{"dlq", "purge", id, "--data-dir", data_dir()});
    ASSERT_EQ(purged.exit_code, 0) << purged;
    EXPECT_EQ(purged.out, "purged " + id + "\n");
    expect_no_dead_letters();
    const CliResult again = run_cli(Args{"dlq", "purge", id, "--data-dir", data_dir()});
    EXPECT_EQ(again.exit_code, 1) << again;
    EXPECT_EQ(again.err_lines().size(), 1u) << again;
}

TEST_F(CliDlqTest, PurgeAllOnARunningNode) {
    const CliResult purged = run_cli(
        Args{"dlq", "purge", "--all", "--reason", "max_attempts", "--data-dir", data_dir()});
    ASSERT_EQ(purged.exit_code, 0) << purged;
    EXPECT_EQ(purged.out, "purged 1 dead letter\n");
    expect_no_dead_letters();
}

TEST_F(CliDlqTest, StatsOfTheRunningNode) {
    const CliResult json = run_cli(Args{"stats", "--data-dir", data_dir(), "--json"});
    ASSERT_EQ(json.exit_code, 0) << json;
    const Json stats = Json::parse(json.out);
    EXPECT_EQ(stats.at("name"), "producer");
    const Json& queue = stats.at("queues").at(kQueue);
    EXPECT_EQ(queue.at("acked"), 4);
    EXPECT_EQ(queue.at("dead_lettered"), 1);
    EXPECT_EQ(queue.at("nacked"), 2);
    EXPECT_EQ(queue.at("in_flight"), 0);
    ASSERT_TRUE(stats.at("peers").is_array());
    bool broken_listed = false;
    for (const auto& peer : stats.at("peers")) broken_listed |= peer.at("name") == "broken";
    EXPECT_TRUE(broken_listed) << json;
    EXPECT_TRUE(stats.at("dropped").is_object());

    // The same node named by its control endpoint.
    const CliResult by_endpoint =
        run_cli(Args{"stats", "--control", "ipc://" + data_dir() + "/control.sock", "--json"});
    ASSERT_EQ(by_endpoint.exit_code, 0) << by_endpoint;
    EXPECT_EQ(Json::parse(by_endpoint.out).at("name"), "producer");

    const CliResult table = run_cli(Args{"stats", "--data-dir", data_dir()});
    ASSERT_EQ(table.exit_code, 0) << table;
    EXPECT_NE(table.out.find("node producer ("), std::string::npos) << table;
    EXPECT_NE(table.out.find("\npoison "), std::string::npos) << table;
    EXPECT_NE(table.out.find("\nbroken "), std::string::npos) << table;
}

TEST_F(CliDlqTest, StatsOfAStoppedNodeSaysNoNodeRuns) {
    ASSERT_EQ(producer_->stop(), 0);
    const CliResult result = run_cli(Args{"stats", "--data-dir", data_dir()});
    EXPECT_EQ(result.exit_code, 1) << result;
    EXPECT_EQ(result.err, "peermq: no node is running on " + data_dir() + "\n") << result;
    EXPECT_EQ(result.out, "");
}

}  // namespace
}  // namespace peermq::cli_test
