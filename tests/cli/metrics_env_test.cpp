// Metrics without code (issue #17 item 4): `peermq consume` serves its node's metrics when
// PEERMQ_METRICS says where, scraped here with curl (a separate process, as Prometheus would).
#include <regex>

#include "cli_support.hpp"
#include "support/process.hpp"

namespace peermq::cli_test {
namespace {

TEST(CliMetricsTest, ConsumeServesItsNodesMetricsWherePeermqMetricsSays) {
    CliProcess consumer(Args{"consume", "jobs", "--name", "metrics-consumer"} + on_lo(),
                        Args{"PEERMQ_METRICS=127.0.0.1:0"});
    const auto line = consumer.wait_err("serving metrics at ", 20s);
    ASSERT_TRUE(line) << "no metrics line";
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*line, m, std::regex(R"((http://127\.0\.0\.1:\d+/metrics))")))
        << *line;
    const auto scraped = peermq::testing::run_process(
        {"curl", "-sS", "--max-time", "10", m[1].str()}, std::chrono::seconds(15));
    EXPECT_EQ(scraped.exit_code, 0) << scraped.output;
    EXPECT_NE(scraped.output.find("peermq_node_info{"), std::string::npos) << scraped.output;
    EXPECT_NE(scraped.output.find("node=\"metrics-consumer\""), std::string::npos)
        << scraped.output;
    consumer.signal(SIGINT);
    const CliResult result = consumer.finish(20s);
    EXPECT_EQ(result.exit_code, 0) << result;
}

TEST(CliMetricsTest, AMalformedPeermqMetricsIsAClearError) {
    CliProcess consumer(Args{"consume", "jobs"} + on_lo(), Args{"PEERMQ_METRICS=nonsense"});
    const CliResult result = consumer.finish(20s);
    EXPECT_EQ(result.exit_code, 1) << result;
    EXPECT_NE(result.err.find("PEERMQ_METRICS"), std::string::npos) << result;
}

}  // namespace
}  // namespace peermq::cli_test
