// examples/hello: the producer and the consumer find each other with mDNS on lo (the
// avahi-daemon of the avahi_lo fixture); every greeting sent is printed once and acked.
#include <csignal>
#include <regex>
#include <set>

#include "examples_support.hpp"

namespace peermq::examples_test {
namespace {

TEST(HelloExample, ConsumerPrintsEveryGreetingTheProducerSends) {
    const Args common = on_lo(new_cluster("hello"), /*static_peers=*/false);
    auto consumer = start("peermq_hello_consumer", common + Args{"--count", "5"});
    ASSERT_FALSE(endpoint_of(*consumer).empty()) << consumer->output();

    auto producer = start("peermq_hello_producer", common + Args{"--count", "5"});
    ASSERT_EQ(producer->wait(30s), 0) << producer->output();
    ASSERT_EQ(consumer->wait(10s), 0) << consumer->output();

    const std::set<std::string> sent = {"hello #1", "bonjour #2", "hallo #3", "hola #4", "ciao #5"};
    std::set<std::string> acked;
    std::multiset<std::string> got;
    static const std::regex kAcked(R"re(^hello-producer: "(.*)" acked$)re");
    static const std::regex kGot(R"re(^hello-consumer: got "(.*)"$)re");
    for (const auto& line : producer->lines()) {
        if (std::smatch m; std::regex_match(line, m, kAcked)) acked.insert(m[1].str());
    }
    for (const auto& line : consumer->lines()) {
        if (std::smatch m; std::regex_match(line, m, kGot)) got.insert(m[1].str());
    }
    EXPECT_EQ(acked, sent) << producer->output();
    EXPECT_EQ(got, std::multiset<std::string>(sent.begin(), sent.end())) << consumer->output();
}

// Metrics without code: every example serves its node's metrics where PEERMQ_METRICS says
// (examples::MetricsFromEnv), scraped here with curl as Prometheus would.
TEST(HelloExample, AnExampleServesItsNodesMetricsWherePeermqMetricsSays) {
    const Args common = on_lo(new_cluster("hello-metrics"), /*static_peers=*/false);
    auto consumer = start("peermq_hello_consumer", common, Args{"PEERMQ_METRICS=127.0.0.1:0"});
    const auto line = consumer->wait_for_line_containing("serving metrics at ", 20s);
    ASSERT_TRUE(line) << consumer->output();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*line, m, std::regex(R"((http://127\.0\.0\.1:\d+/metrics))")))
        << *line;
    const auto scraped =
        peermq::testing::run_process({"curl", "-sS", "--max-time", "10", m[1].str()}, 15s);
    EXPECT_EQ(scraped.exit_code, 0) << scraped.output;
    EXPECT_NE(scraped.output.find(R"(peermq_node_info{node="hello-consumer")"), std::string::npos)
        << scraped.output;
    EXPECT_NE(scraped.output.find(R"(process_open_fds{node="hello-consumer"})"), std::string::npos)
        << scraped.output;
    consumer->signal(SIGTERM);
    EXPECT_EQ(consumer->wait(10s), 0) << consumer->output();
}

}  // namespace
}  // namespace peermq::examples_test
