// A real Prometheus (Debian's prometheus package) scrapes two nodes over loopback (issue #17 item
// 4): a `peermq consume` that serves its metrics only because PEERMQ_METRICS says so, and a
// producer in this process with a MetricsServer. PromQL over Prometheus' HTTP API must find the
// traffic the test sent, counted on both sides; and promtool lints what the tool's node served
// after that traffic (process families and filled histograms included). Prometheus listens on
// 127.0.0.1 only, keeps its database in a temporary directory, and is stopped by its PID
// (ChildProcess).
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

#include "cli_support.hpp"
#include "peermq/metrics.hpp"
#include "peermq/peermq.hpp"
#include "support/free_port.hpp"
#include "support/nodes.hpp"

#if !defined(PEERMQ_PROMETHEUS) || !defined(PEERMQ_PROMTOOL)
#error "PEERMQ_PROMETHEUS and PEERMQ_PROMTOOL must be defined by the build"
#endif

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;

// One Prometheus server scraping `targets` ("127.0.0.1:PORT") every second.
class Prometheus {
public:
    explicit Prometheus(const std::vector<std::string>& targets) : port_(testing::free_port()) {
        const std::string config = dir_.path() + "/prometheus.yml";
        std::ofstream out(config);
        out << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            << "scrape_configs:\n  - job_name: peermq\n    static_configs:\n      - targets: [";
        for (std::size_t i = 0; i < targets.size(); ++i) {
            out << (i ? ", " : "") << "'" << targets[i] << "'";
        }
        out << "]\n";
        out.close();
        process_.emplace(Args{PEERMQ_PROMETHEUS, "--config.file=" + config,
                              "--storage.tsdb.path=" + dir_.path() + "/data",
                              "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                              "--log.level=warn"});
        client_.emplace("127.0.0.1", port_);
        client_->set_connection_timeout(2s);
        client_->set_read_timeout(5s);
    }

    // Whether it answers /-/ready within the deadline.
    bool ready(std::chrono::milliseconds timeout) {
        return wait_until(
            [&] {
                const auto response = client_->Get("/-/ready");
                return response && response->status == 200;
            },
            timeout);
    }

    // The result vector of an instant query (empty when the query failed: see last_error()).
    Json query(const std::string& promql) {
        const auto response =
            client_->Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
        if (!response) {
            last_error_ = "no answer: " + httplib::to_string(response.error());
            return Json::array();
        }
        const Json body = Json::parse(response->body, nullptr, false);
        if (response->status != 200 || !body.is_object() || body.value("status", "") != "success") {
            last_error_ = std::to_string(response->status) + " " + response->body;
            return Json::array();
        }
        last_error_.clear();
        return body.at("data").at("result");
    }

    // The value of a query that yields exactly one sample, else nullopt.
    std::optional<double> value(const std::string& promql) {
        const Json result = query(promql);
        if (result.size() != 1) return std::nullopt;
        return std::stod(result.at(0).at("value").at(1).get<std::string>());
    }

    // Waits until `promql` yields one sample equal to `expected`; on failure, says what it
    // yielded last.
    ::testing::AssertionResult settles_at(const std::string& promql, double expected,
                                          std::chrono::milliseconds timeout = 30s) {
        std::optional<double> last;
        if (wait_until([&] { return (last = value(promql)) == expected; }, timeout)) {
            return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure()
               << promql << " = " << (last ? std::to_string(*last) : "no single sample")
               << ", expected " << expected << "; last error: " << last_error_
               << "; result: " << query(promql).dump();
    }

    std::string log() const { return process_->output(); }

private:
    TempDir dir_;
    std::uint16_t port_;
    std::optional<ChildProcess> process_;
    std::optional<httplib::Client> client_;
    std::string last_error_;
};

// The "host:port" of a `serving metrics at http://host:port/metrics` line.
std::string metrics_target(CliProcess& process) {
    const auto line = process.wait_err("serving metrics at ", 20s);
    std::smatch m;
    if (!line || !std::regex_search(*line, m, std::regex(R"(http://([0-9.]+:\d+)/metrics)"))) {
        return {};
    }
    return m[1].str();
}

TEST(PrometheusTest, ScrapesTwoNodesAndItsQueriesMatchTheTrafficSent) {
    constexpr int kOrders = 200;
    constexpr int kExpired = 3;
    if (std::string(PEERMQ_PROMETHEUS).empty())
        GTEST_SKIP() << "prometheus not found (Debian: prometheus)";

    CliProcess worker(Args{"consume", "orders", "--name", "worker"} + on_lo(),
                      Args{"PEERMQ_METRICS=127.0.0.1:0"});
    // It says where it listens, then where it serves its metrics.
    const std::string worker_inbox = listening_endpoint(worker);
    ASSERT_FALSE(worker_inbox.empty()) << worker.finish(5s);
    const std::string worker_target = metrics_target(worker);
    ASSERT_FALSE(worker_target.empty()) << worker.finish(5s);

    Node shop = testing::make_node({.name = "shop", .interface = "lo", .peers = {worker_inbox}});
    auto server = MetricsServer::start(shop);
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    const std::string shop_target = "127.0.0.1:" + std::to_string(server->port());

    Prometheus prometheus({shop_target, worker_target});
    ASSERT_TRUE(prometheus.ready(60s)) << prometheus.log();

    // The traffic: orders that the worker takes and acks, and refunds that nobody consumes,
    // whose TTL runs out on the producer (dead letters, reason "expired").
    ASSERT_TRUE(wait_until(
        [&] {
            for (const auto& peer : shop.peers()) {
                if (peer.name == "worker" && peer.state == PeerState::alive &&
                    !peer.queues.empty()) {
                    return true;
                }
            }
            return false;
        },
        20s));
    auto orders = shop.queue("orders").value();
    for (int i = 0; i < kOrders; ++i) ASSERT_TRUE(orders.send(i).ok());
    auto refunds = shop.queue("refunds", {.ttl = 100ms}).value();
    for (int i = 0; i < kExpired; ++i) ASSERT_TRUE(refunds.send(i).ok());

    // Both targets are up, and each is one node, labelled with its name.
    EXPECT_TRUE(prometheus.settles_at(R"(count(up{job="peermq"} == 1))", 2));
    EXPECT_TRUE(prometheus.settles_at(R"(count(peermq_node_info{node=~"shop|worker"}))", 2));
    // The producer's view and the consumer's view of the same traffic.
    EXPECT_TRUE(prometheus.settles_at(
        R"(peermq_queue_acked_total{job="peermq",node="shop",queue="orders"})", kOrders));
    EXPECT_TRUE(prometheus.settles_at(
        R"(peermq_queue_delivered_total{job="peermq",node="worker",queue="orders"})", kOrders));
    EXPECT_TRUE(prometheus.settles_at(R"(sum(peermq_queue_acked_total{queue="orders"}))"
                                      R"( - sum(peermq_queue_received_total{queue="orders"}))",
                                      0));
    EXPECT_TRUE(prometheus.settles_at(R"(peermq_queue_in_flight{node="shop",queue="orders"})", 0));
    EXPECT_TRUE(prometheus.settles_at(
        R"(peermq_dead_letters{node="shop",queue="refunds",reason="expired"})", kExpired));
    EXPECT_TRUE(prometheus.settles_at(
        R"(sum by (node) (peermq_queue_dead_lettered_total{node="shop"}))", kExpired));
    // Process metrics of the tool's process, under its node's name.
    EXPECT_TRUE(
        prometheus.settles_at(R"(count(process_resident_memory_bytes{node="worker"} > 0))", 1));

    // What the tool's node serves after the traffic passes promtool's checks and lints.
    if (!std::string(PEERMQ_PROMTOOL).empty()) {
        httplib::Client scraper("http://" + worker_target);
        const auto scrape = scraper.Get("/metrics");  // no Accept: Prometheus text 0.0.4
        ASSERT_TRUE(scrape && scrape->status == 200);
        const auto checked =
            testing::run_process({PEERMQ_PROMTOOL, "check", "metrics"}, 30s, {}, scrape->body);
        EXPECT_EQ(checked.exit_code, 0) << checked.output;
        EXPECT_EQ(checked.output, "") << checked.output;
    }

    worker.signal(SIGINT);
    const CliResult result = worker.finish(20s);
    EXPECT_EQ(result.exit_code, 0) << result;
}

}  // namespace
}  // namespace peermq::cli_test
