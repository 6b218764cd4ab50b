// examples/hello: the producer and the consumer find each other with mDNS on lo (the
// avahi-daemon of the avahi_lo fixture); every greeting sent is printed once and acked.
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

}  // namespace
}  // namespace peermq::examples_test
