// `peermq queues` and `peermq top --once` (docs/cli.md, "queues" and "top"): every queue of a
// cluster of real nodes over tcp loopback, gathered from the nodes' own reports, as a table and
// as JSON. And the per-queue view of made-up reports (tools/peermq/queues_view.hpp): sums, the
// acked rate between two samples, the nodes that did not answer.
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "cli_support.hpp"
#include "queues_view.hpp"
#include "support/free_port.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "wire/envelope.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;
using peermq::testing::make_node;
using peermq::testing::queue_stats;
using peermq::testing::sees;

// ---------------------------------------------------------------------------------------------
// The view of made-up reports

QueueReport report(std::string queue, bool producer, bool consumer) {
    QueueReport r;
    r.queue = std::move(queue);
    r.producer = producer;
    r.consumer = consumer;
    return r;
}

NodeQueues answered(std::string name, std::vector<QueueReport> queues) {
    NodeQueues node;
    node.id = Uuid::generate();
    node.name = std::move(name);
    node.answered = true;
    node.at_ms = 1'700'000'000'000;
    node.queues = std::move(queues);
    return node;
}

const cli::QueueRow* row_of(const cli::QueuesView& view, const std::string& queue) {
    for (const auto& row : view.queues) {
        if (row.queue == queue) return &row;
    }
    return nullptr;
}

TEST(QueuesViewTest, SumsEachQueueOverItsNodesSortedByName) {
    QueueReport p_jobs = report("jobs", true, false);
    p_jobs.waiting = 5;
    p_jobs.in_flight = 2;
    p_jobs.dead_letters = 1;
    p_jobs.oldest_waiting_ms = 1200;
    QueueReport q_jobs = report("jobs", true, true);
    q_jobs.waiting = 3;
    q_jobs.in_flight = 1;
    q_jobs.dead_letters = 4;
    q_jobs.oldest_waiting_ms = 3400;
    const std::vector<NodeQueues> nodes = {
        answered("zulu", {p_jobs, report("alpha", false, true)}),
        answered("yankee", {q_jobs}),
        answered("xray", {report("jobs", false, true)}),
    };
    const cli::QueuesView view = cli::make_view(nodes);

    ASSERT_EQ(view.queues.size(), 2u);
    EXPECT_EQ(view.queues[0].queue, "alpha");
    EXPECT_EQ(view.queues[1].queue, "jobs");
    const cli::QueueRow& jobs = view.queues[1];
    EXPECT_EQ(jobs.producers, (std::vector<std::string>{"yankee", "zulu"}));
    EXPECT_EQ(jobs.consumers, (std::vector<std::string>{"xray", "yankee"}));
    EXPECT_EQ(jobs.waiting, 8u);
    EXPECT_EQ(jobs.in_flight, 3u);
    EXPECT_EQ(jobs.dead_letters, 5u);
    EXPECT_EQ(jobs.oldest_waiting_ms, 3400);
    EXPECT_FALSE(jobs.acked_per_second) << "one sample has no rate";
    ASSERT_EQ(jobs.nodes.size(), 3u);
    EXPECT_EQ(jobs.nodes[0].name, "xray");
    EXPECT_EQ(jobs.nodes[2].name, "zulu");
    EXPECT_EQ(view.nodes.size(), 3u);
    EXPECT_TRUE(cli::unanswered(view).empty());
}

TEST(QueuesViewTest, TheRateIsTheSummedAckedDifferenceOverTheElapsedTime) {
    QueueReport a1 = report("jobs", true, false);
    a1.acked = 100;
    QueueReport b1 = report("jobs", true, false);
    b1.acked = 1000;
    const NodeQueues a_before = answered("a", {a1});
    const NodeQueues b_before = answered("b", {b1});
    NodeQueues a_after = a_before;
    a_after.queues[0].acked = 300;  // +200
    NodeQueues b_after = b_before;
    b_after.queues[0].acked = 1400;  // +400
    // A node that joined between the samples: its acks since it started are not in the rate.
    QueueReport c2 = report("jobs", true, false);
    c2.acked = 5000;
    const NodeQueues c_after = answered("c", {c2});

    const std::vector<NodeQueues> before = {a_before, b_before};
    const std::vector<NodeQueues> after = {a_after, b_after, c_after};
    const cli::QueuesView view = cli::make_view(after, &before, std::chrono::milliseconds(2000));
    const cli::QueueRow* jobs = row_of(view, "jobs");
    ASSERT_NE(jobs, nullptr);
    ASSERT_TRUE(jobs->acked_per_second);
    EXPECT_DOUBLE_EQ(*jobs->acked_per_second, 300.0);
    EXPECT_EQ(view.elapsed, std::chrono::milliseconds(2000));
}

TEST(QueuesViewTest, ANodeInOneSampleOnlyOrACounterThatWentDownAddsNothingToTheRate) {
    QueueReport before_report = report("jobs", true, false);
    before_report.acked = 50;
    const NodeQueues gone = answered("gone", {before_report});
    const NodeQueues restarted = answered("restarted", {before_report});
    NodeQueues restarted_after = restarted;
    restarted_after.queues[0].acked = 10;  // counters start again at a restart
    // Answered the first time, not the second.
    NodeQueues silent_after = answered("silent", {});
    const NodeQueues silent_before = answered("silent", {before_report});
    silent_after.id = silent_before.id;
    silent_after.answered = false;
    silent_after.error = "no answer in time";

    const std::vector<NodeQueues> before = {gone, restarted, silent_before};
    const std::vector<NodeQueues> after = {restarted_after, silent_after};
    const cli::QueuesView view = cli::make_view(after, &before, std::chrono::milliseconds(1000));
    const cli::QueueRow* jobs = row_of(view, "jobs");
    ASSERT_NE(jobs, nullptr);
    ASSERT_TRUE(jobs->acked_per_second);
    EXPECT_DOUBLE_EQ(*jobs->acked_per_second, 0.0);
    EXPECT_EQ(jobs->nodes.size(), 1u) << "a node that did not answer has no row data";

    const auto missing = cli::unanswered(view);
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_EQ(missing[0]->name, "silent");
    EXPECT_EQ(missing[0]->error, "no answer in time");
}

TEST(QueuesViewTest, TheJsonHasEveryReportFieldPerNodeAndTheNodesThatDidNotAnswer) {
    QueueReport jobs = report("jobs", true, true);
    jobs.waiting = 1;
    jobs.prefetch = 16;
    NodeQueues silent = answered("silent", {});
    silent.answered = false;
    silent.error = "its version does not report queues";
    const std::vector<NodeQueues> nodes = {answered("alpha", {jobs}), silent};
    const Json json = cli::to_json(cli::make_view(nodes));

    EXPECT_EQ(json.at("interval_ms"), 0);
    ASSERT_EQ(json.at("queues").size(), 1u);
    const Json& row = json.at("queues").at(0);
    EXPECT_EQ(row.at("queue"), "jobs");
    EXPECT_EQ(row.at("producers"), Json::array({"alpha"}));
    EXPECT_EQ(row.at("consumers"), Json::array({"alpha"}));
    EXPECT_TRUE(row.at("acked_per_second").is_null());
    const Json& detail = row.at("nodes").at(0);
    for (const char* key :
         {"name", "id", "producer", "consumer", "waiting", "in_flight", "oldest_waiting_ms",
          "dead_letters", "sent", "acked", "nacked", "retried", "redelivered", "expired",
          "dead_lettered", "prefetch", "delivered", "handler_errors"}) {
        EXPECT_TRUE(detail.contains(key)) << key;
    }
    EXPECT_EQ(detail.at("prefetch"), 16);
    ASSERT_EQ(json.at("nodes").size(), 2u);
    EXPECT_EQ(json.at("nodes").at(0).at("name"), "alpha");
    EXPECT_TRUE(json.at("nodes").at(0).at("error").is_null());
    EXPECT_EQ(json.at("nodes").at(1).at("answered"), false);
    EXPECT_EQ(json.at("nodes").at(1).at("error"), "its version does not report queues");
}

TEST(QueuesViewTest, AgesAndRatesAreShortInTheTable) {
    EXPECT_EQ(cli::format_wait(0), "-");
    EXPECT_EQ(cli::format_wait(400), "0.4s");
    EXPECT_EQ(cli::format_wait(3210), "3.2s");
    EXPECT_EQ(cli::format_wait(12 * 60'000), "12m");
    EXPECT_EQ(cli::format_wait(2 * 3'600'000), "2h");
    EXPECT_EQ(cli::format_wait(3 * 86'400'000LL), "3d");
    EXPECT_EQ(cli::format_rate(std::nullopt), "-");
    EXPECT_EQ(cli::format_rate(0.0), "0");
    EXPECT_EQ(cli::format_rate(12.34), "12.3");
    EXPECT_EQ(cli::format_rate(4521.4), "4521");
}

// ---------------------------------------------------------------------------------------------
// A real cluster

// A producer of "jobs" and "slow"; a consumer of "jobs" that rejects what says "bad", so that
// one message is dead-lettered on the producer; and a consumer of "slow" whose handler stalls on
// its first message until the test ends, with prefetch 2: of the 10 sent, 2 in flight and 8
// waiting.
class CliQueuesTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(jobs_worker
                        .consume("jobs",
                                 [](Delivery& delivery) {
                                     if (delivery.as<std::string>() == "bad")
                                         delivery.reject("bad");
                                 })
                        .ok());
        ASSERT_TRUE(slow_worker
                        .consume("slow", [released = released](Delivery&) { released.wait(); },
                                 {.prefetch = 2})
                        .ok());
        ASSERT_TRUE(wait_until([&] { return sees(producer, {"jobs-worker"}, "jobs"); }, 15s))
            << peermq::testing::describe(producer.peers());
        ASSERT_TRUE(wait_until([&] { return sees(producer, {"slow-worker"}, "slow"); }, 15s))
            << peermq::testing::describe(producer.peers());

        auto jobs = producer.queue("jobs", {.max_attempts = 1}).value();
        for (int i = 0; i < 3; ++i) ASSERT_TRUE(jobs.send(std::string("ok")).ok());
        ASSERT_TRUE(jobs.send(std::string("bad")).ok());
        // No retry of the stalled messages while the test runs.
        auto slow = producer.queue("slow", {.ack_timeout = std::chrono::minutes(10)}).value();
        for (int i = 0; i < 10; ++i) ASSERT_TRUE(slow.send(i).ok());

        ASSERT_TRUE(wait_until(
            [&] {
                auto letters = producer.dead_letters().list();
                return letters.ok() && letters->size() == 1 &&
                       queue_stats(producer, "jobs").acked == 3;
            },
            15s))
            << peermq::testing::describe(queue_stats(producer, "jobs"));
        ASSERT_TRUE(wait_until(
            [&] {
                const auto s = queue_stats(producer, "slow");
                return s.in_flight == 2 && s.depth == 8;
            },
            15s))
            << peermq::testing::describe(queue_stats(producer, "slow"));
    }

    // The stalled handler returns before the nodes close (members are destroyed after this).
    ~CliQueuesTest() override { release.set_value(); }

    // The tool's node reaches the three nodes as static peers, and waits until it sees them.
    Args cluster_args() const {
        return Args{"--wait", "3"} +
               on_lo({producer.address(), jobs_worker.address(), slow_worker.address()});
    }

    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    Node producer = make_node({.name = "producer", .interface = "lo"});
    Node jobs_worker =
        make_node({.name = "jobs-worker", .interface = "lo", .peers = {producer.address()}});
    Node slow_worker =
        make_node({.name = "slow-worker", .interface = "lo", .peers = {producer.address()}});
};

const Json* queue_in(const Json& view, const std::string& name) {
    for (const auto& row : view.at("queues")) {
        if (row.at("queue") == name) return &row;
    }
    return nullptr;
}

// What both `queues --json` and `top --once --json` say of the cluster above.
void expect_cluster(const CliResult& result) {
    ASSERT_EQ(result.exit_code, 0) << result;
    const Json view = Json::parse(result.out, nullptr, false);
    ASSERT_TRUE(view.is_object()) << result;
    EXPECT_GE(view.at("interval_ms").get<std::int64_t>(), 900) << result.out;

    ASSERT_EQ(view.at("nodes").size(), 3u) << "the tool's own node is left out\n" << result.out;
    for (const auto& node : view.at("nodes")) {
        EXPECT_EQ(node.at("answered"), true) << node.dump();
        EXPECT_TRUE(node.at("error").is_null()) << node.dump();
    }
    ASSERT_EQ(view.at("queues").size(), 2u) << result.out;
    EXPECT_EQ(view.at("queues").at(0).at("queue"), "jobs") << "sorted by name";

    const Json* jobs = queue_in(view, "jobs");
    ASSERT_NE(jobs, nullptr) << result.out;
    EXPECT_EQ(jobs->at("producers"), Json::array({"producer"})) << jobs->dump();
    EXPECT_EQ(jobs->at("consumers"), Json::array({"jobs-worker"})) << jobs->dump();
    EXPECT_EQ(jobs->at("waiting"), 0) << jobs->dump();
    EXPECT_EQ(jobs->at("in_flight"), 0) << jobs->dump();
    EXPECT_EQ(jobs->at("dead_letters"), 1) << jobs->dump();
    EXPECT_EQ(jobs->at("oldest_waiting_ms"), 0) << jobs->dump();
    EXPECT_EQ(jobs->at("acked_per_second"), 0.0) << "every ack came before the first sample";
    ASSERT_EQ(jobs->at("nodes").size(), 2u) << jobs->dump();
    for (const auto& node : jobs->at("nodes")) {
        if (node.at("name") == "producer") {
            EXPECT_EQ(node.at("acked"), 3) << node.dump();
            EXPECT_EQ(node.at("dead_lettered"), 1) << node.dump();
        } else {
            EXPECT_EQ(node.at("name"), "jobs-worker");
            EXPECT_EQ(node.at("consumer"), true) << node.dump();
            EXPECT_EQ(node.at("delivered"), 4) << node.dump();
        }
    }

    const Json* slow = queue_in(view, "slow");
    ASSERT_NE(slow, nullptr) << result.out;
    EXPECT_EQ(slow->at("producers"), Json::array({"producer"})) << slow->dump();
    EXPECT_EQ(slow->at("consumers"), Json::array({"slow-worker"})) << slow->dump();
    EXPECT_EQ(slow->at("in_flight"), 2) << slow->dump();
    EXPECT_EQ(slow->at("waiting"), 8) << slow->dump();
    EXPECT_GT(slow->at("oldest_waiting_ms").get<std::int64_t>(), 0) << slow->dump();
    EXPECT_EQ(slow->at("acked_per_second"), 0.0) << slow->dump();
    EXPECT_EQ(slow->at("dead_letters"), 0) << slow->dump();
}

TEST_F(CliQueuesTest, QueuesJsonGathersEveryQueueFromTheNodes) {
    expect_cluster(run_cli(Args{"queues", "--json"} + cluster_args()));
}

TEST_F(CliQueuesTest, TopOnceJsonPrintsTheSameView) {
    expect_cluster(run_cli(Args{"top", "--once", "--json"} + cluster_args()));
}

TEST_F(CliQueuesTest, TheTableHasARowPerQueue) {
    const CliResult result = run_cli(Args{"queues"} + cluster_args());
    ASSERT_EQ(result.exit_code, 0) << result;
    EXPECT_EQ(result.err, "") << result;
    const auto lines = result.out_lines();
    ASSERT_EQ(lines.size(), 3u) << result;
    EXPECT_EQ(lines[0].rfind("QUEUE  PRODUCERS  CONSUMERS  WAITING  IN FLIGHT  ACKED/S  DEAD "
                             "LETTERS  OLDEST",
                             0),
              0u)
        << result;
    auto cells = [](const std::string& line) {
        std::istringstream in(line);
        std::vector<std::string> out;
        for (std::string cell; in >> cell;) out.push_back(cell);
        return out;
    };
    const auto jobs = cells(lines[1]);
    const auto slow = cells(lines[2]);
    EXPECT_EQ(jobs, (std::vector<std::string>{"jobs", "1", "1", "0", "0", "0", "1", "-"}))
        << result;
    ASSERT_EQ(slow.size(), 8u) << result;
    EXPECT_EQ(std::vector<std::string>(slow.begin(), slow.begin() + 7),
              (std::vector<std::string>{"slow", "1", "1", "8", "2", "0", "0"}))
        << result;
    EXPECT_NE(slow[7], "-") << "something waits, so it has an age";
}

TEST_F(CliQueuesTest, TopPrintsATablePerIntervalUntilSigint) {
    // Not a terminal: a table after a time line every interval, the screen never cleared.
    CliProcess top(Args{"top", "--interval", "500ms"} + cluster_args());
    for (int redraw = 0; redraw < 2; ++redraw) {
        ASSERT_TRUE(top.wait_out("# ", 20s)) << "no table, redraw " << redraw;
        ASSERT_TRUE(top.wait_out("QUEUE ", 5s));
        ASSERT_TRUE(top.wait_out("jobs ", 5s));
        ASSERT_TRUE(top.wait_out("slow ", 5s));
    }
    top.signal(SIGINT);
    const CliResult result = top.finish(10s);
    EXPECT_EQ(result.exit_code, 0) << result;
    EXPECT_EQ(result.err, "") << result;
    EXPECT_EQ(result.out.find("\033["), std::string::npos) << result;
}

TEST_F(CliQueuesTest, TopJsonPrintsOneViewPerLine) {
    CliProcess top(Args{"top", "--json", "--interval", "500ms"} + cluster_args());
    for (int redraw = 0; redraw < 2; ++redraw) {
        const auto line = top.wait_out("{", 20s);
        ASSERT_TRUE(line) << "no view, redraw " << redraw;
        const Json view = Json::parse(*line, nullptr, false);
        ASSERT_TRUE(view.is_object()) << *line;
        EXPECT_EQ(view.at("queues").size(), 2u) << *line;
        EXPECT_GE(view.at("interval_ms").get<std::int64_t>(), 400) << *line;
    }
    top.signal(SIGINT);
    EXPECT_EQ(top.finish(10s).exit_code, 0);
}

// A peer spoken by hand that says HELLO to the tool's node every 100 ms and never answers its
// question for the queues; `reports` is whether its HELLO says it would.
class MutePeer {
public:
    MutePeer(std::string name, bool reports, std::uint16_t tool_port, const std::string& tool_key)
        : sockets_("tcp://127.0.0.1:" + std::to_string(tool_port), tool_key),
          hello_(sockets_.hello(std::move(name))) {
        hello_.queue_reports = reports;
        // Its heartbeat: the tool's node asks only the peers it sees alive.
        speaker_ = std::jthread([this](std::stop_token stop) {
            while (!stop.stop_requested()) {
                say_hello();
                std::this_thread::sleep_for(100ms);
            }
        });
    }

    // What the tool's --peer takes.
    std::string address() const {
        return "127.0.0.1:" + std::to_string(hello_.inbox_port) + "#" +
               sockets_.identity.keys.public_key;
    }

private:
    // Without waiting: the tool's node may not listen yet, or any more.
    void say_hello() {
        const std::string header =
            peermq::testing::header_frame(sockets_.identity.id, peermq::detail::Kind::hello);
        const std::string body = peermq::testing::hello_frame(hello_);
        zmq::message_t first(header.data(), header.size());
        if (!sockets_.to_node.send(first, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            return;
        }
        zmq::message_t second(body.data(), body.size());
        (void)sockets_.to_node.send(second, zmq::send_flags::dontwait);
    }

    peermq::testing::HandSockets sockets_;
    peermq::detail::Hello hello_;
    std::jthread speaker_;  // last: stopped before the sockets close
};

TEST(CliQueuesAnswersTest, NodesThatDoNotAnswerAreNamedUnderTheTableAndTheExitIsZero) {
    Node alpha = make_node({.name = "alpha", .interface = "lo"});
    ASSERT_TRUE(alpha.consume("work", [](Delivery&) {}).ok());
    // The tool's node has a known key and port, so that the hand-spoken peers can reach it.
    const KeyPair tool_key = generate_key_pair().value();
    const std::uint16_t tool_port = peermq::testing::free_port();
    MutePeer silent("silent", true, tool_port, tool_key.public_key);
    MutePeer old("old", false, tool_port, tool_key.public_key);

    const Args cluster =
        Args{"--wait", "3", "--reply-timeout", "300ms", "--port", std::to_string(tool_port)} +
        on_lo({alpha.address(), silent.address(), old.address()});
    auto run = [&](Args args) {
        CliProcess process(std::move(args) + cluster, {"PEERMQ_SECRET_KEY=" + tool_key.secret_key});
        process.close_stdin();
        return process.finish();
    };

    const CliResult table = run({"queues"});
    ASSERT_EQ(table.exit_code, 0) << table;
    const auto lines = table.out_lines();
    ASSERT_EQ(lines.size(), 3u) << table;
    EXPECT_EQ(lines[1].rfind("work ", 0), 0u) << table;
    EXPECT_EQ(lines[2],
              "2 nodes did not answer: old (its version does not report queues), silent (no "
              "answer in time)")
        << table;

    const CliResult json = run({"queues", "--json"});
    ASSERT_EQ(json.exit_code, 0) << json;
    const Json view = Json::parse(json.out, nullptr, false);
    ASSERT_TRUE(view.is_object()) << json;
    ASSERT_EQ(view.at("nodes").size(), 3u) << json.out;
    std::map<std::string, Json> nodes;
    for (const auto& node : view.at("nodes")) nodes[node.at("name")] = node;
    EXPECT_EQ(nodes["alpha"].at("answered"), true) << json.out;
    EXPECT_EQ(nodes["old"].at("answered"), false) << json.out;
    EXPECT_EQ(nodes["old"].at("error"), "its version does not report queues") << json.out;
    EXPECT_EQ(nodes["silent"].at("answered"), false) << json.out;
    EXPECT_EQ(nodes["silent"].at("error"), "no answer in time") << json.out;
    ASSERT_EQ(view.at("queues").size(), 1u) << json.out;
    EXPECT_EQ(view.at("queues").at(0).at("consumers"), Json::array({"alpha"})) << json.out;
}

TEST(CliQueuesUsageTest, AnIntervalTooShortForTheNodesIsAUsageError) {
    expect_one_error_line(run_cli(Args{"top", "--interval", "100ms"} + on_lo(), 10s), 2,
                          "--interval");
    expect_one_error_line(run_cli(Args{"queues", "--interval", "bogus"} + on_lo(), 10s), 2,
                          "--interval");
}

}  // namespace
}  // namespace peermq::cli_test
