// `peermq send`, `consume`, `publish` and `tap` between processes, over static peers on lo
// (docs/cli.md).
#include <regex>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "support/nodes.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;

// A `consume` run, listening once constructed.
struct Consumer {
    explicit Consumer(std::vector<std::string> args)
        : process(Args{"consume"} + std::move(args) + on_lo()),
          endpoint(listening_endpoint(process)) {}
    CliProcess process;
    std::string endpoint;
};

TEST(CliMessagesTest, SendNThenConsumeCountNGetsAllOfThemWithASummary) {
    constexpr int kCount = 300;
    Consumer consumer({"jobs", "--count", std::to_string(kCount)});
    ASSERT_FALSE(consumer.endpoint.empty());

    const CliResult sent = run_cli(Args{"send", "jobs", "--count", std::to_string(kCount)} +
                                   on_lo({consumer.endpoint}));
    ASSERT_EQ(sent.exit_code, 0) << sent;
    EXPECT_EQ(sent.out, "");
    ASSERT_EQ(sent.err_lines().size(), 1u) << sent;
    EXPECT_TRUE(std::regex_match(
        sent.err_lines()[0],
        std::regex("sent to 'jobs': 300 messages in [0-9.]+ s \\([0-9]+ msg/s\\); 300 acked, 0 "
                   "dead-lettered, 0 unconfirmed")))
        << sent;

    const CliResult consumed = consumer.process.finish(20s);
    ASSERT_EQ(consumed.exit_code, 0) << consumed;
    const auto lines = consumed.out_lines();
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(kCount)) << consumed;
    std::set<std::string> values(lines.begin(), lines.end());
    EXPECT_EQ(values.size(), static_cast<std::size_t>(kCount));
    for (int i = 0; i < kCount; ++i) EXPECT_TRUE(values.contains(std::to_string(i))) << i;
    const auto err = consumed.err_lines();
    ASSERT_FALSE(err.empty());
    EXPECT_TRUE(std::regex_match(
        err.back(),
        std::regex("consumed from 'jobs': 300 messages in [0-9.]+ s \\([0-9]+ msg/s\\)")))
        << consumed;
}

TEST(CliMessagesTest, SendEncodesJsonLinesFromStdinAndConsumePrintsThemAsJson) {
    Consumer consumer({"orders", "--count", "2", "--json"});
    ASSERT_FALSE(consumer.endpoint.empty());

    CliProcess send(Args{"send", "orders", "-", "--json", "--header", "source=test"} +
                    on_lo({consumer.endpoint}));
    send.write_stdin("{\"id\":44,\"amount\":1.5}\n\n[1,\"two\",null]\n");
    send.close_stdin();
    const CliResult sent = send.finish(20s);
    ASSERT_EQ(sent.exit_code, 0) << sent;

    const CliResult consumed = consumer.process.finish(20s);
    ASSERT_EQ(consumed.exit_code, 0) << consumed;
    const auto lines = consumed.out_lines();
    ASSERT_EQ(lines.size(), 2u) << consumed;
    std::vector<Json> payloads;
    for (const auto& line : lines) {
        const Json message = Json::parse(line);
        EXPECT_EQ(message.at("queue"), "orders");
        EXPECT_EQ(message.at("payload_encoding"), "msgpack");
        EXPECT_EQ(message.at("headers"), (Json{{"source", "test"}}));
        EXPECT_EQ(message.at("id").get<std::string>().size(), 36u);
        payloads.push_back(message.at("payload"));
    }
    const Json order = {{"id", 44}, {"amount", 1.5}};
    const Json list = Json::array({1, "two", nullptr});
    EXPECT_TRUE((payloads == std::vector<Json>{order, list}) ||
                (payloads == std::vector<Json>{list, order}))
        << consumed;
}

TEST(CliMessagesTest, ConsumeRejectSendsTheMessageToTheSendersDeadLetters) {
    Consumer consumer({"jobs", "--count", "1", "--on-message", "reject"});
    ASSERT_FALSE(consumer.endpoint.empty());
    const CliResult sent =
        run_cli(Args{"send", "jobs", "bad", "--confirm"} + on_lo({consumer.endpoint}));
    EXPECT_EQ(sent.exit_code, 1) << sent;
    ASSERT_EQ(sent.out_lines().size(), 1u) << sent;
    EXPECT_TRUE(std::regex_match(
        sent.out_lines()[0],
        std::regex("[0-9a-f-]{36} dead_lettered rejected: rejected by peermq consume")))
        << sent;
    EXPECT_NE(sent.err.find("0 acked, 1 dead-lettered"), std::string::npos) << sent;
    const CliResult consumed = consumer.process.finish(20s);
    EXPECT_EQ(consumed.exit_code, 0) << consumed;
    EXPECT_EQ(consumed.out, "bad\n");
}

TEST(CliMessagesTest, ConsumeNackMakesTheSenderRetryUntilMaxAttempts) {
    Consumer consumer({"jobs", "--on-message", "nack"});
    ASSERT_FALSE(consumer.endpoint.empty());
    const CliResult sent = run_cli(Args{"send", "jobs", "bad", "--confirm", "--max-attempts", "2"} +
                                   on_lo({consumer.endpoint}));
    EXPECT_EQ(sent.exit_code, 1) << sent;
    ASSERT_EQ(sent.out_lines().size(), 1u) << sent;
    EXPECT_TRUE(std::regex_match(
        sent.out_lines()[0],
        std::regex("[0-9a-f-]{36} dead_lettered max_attempts: nacked by peermq consume")))
        << sent;
    consumer.process.signal(SIGINT);
    const CliResult consumed = consumer.process.finish(20s);
    EXPECT_EQ(consumed.exit_code, 0) << consumed;
    EXPECT_EQ(consumed.out, "bad\nbad\n");  // two attempts
}

TEST(CliMessagesTest, SendReportsWhatIsNotAckedAtTheTimeout) {
    // A peer that never answers: nothing can be acked.
    TestNode bystander({"--name", "bystander", "--interface", "lo"});
    ASSERT_TRUE(bystander.ready());
    const CliResult sent = run_cli(Args{"send", "nobody-consumes", "a", "b", "--timeout", "300ms"} +
                                   on_lo({bystander.endpoint()}));
    EXPECT_EQ(sent.exit_code, 1) << sent;
    const auto err = sent.err_lines();
    ASSERT_EQ(err.size(), 2u) << sent;
    EXPECT_NE(err[0].find("0 acked, 0 dead-lettered, 2 unconfirmed"), std::string::npos) << sent;
    EXPECT_EQ(err[1].rfind("peermq: 2 messages not acked within 300ms", 0), 0u) << sent;
}

TEST(CliMessagesTest, PublishThenTapPrintsTheJsonOfAMessagePackMap) {
    CliProcess tap(Args{"tap", "prices.", "--count", "1"} + on_lo());
    const std::string endpoint = listening_endpoint(tap);
    ASSERT_FALSE(endpoint.empty());

    // Topics are best effort: publish again until the tap has printed (each publish waits for
    // the tap to be seen as a subscriber first).
    std::optional<std::string> line;
    for (int attempt = 0; attempt < 5 && !line; ++attempt) {
        const CliResult published = run_cli(
            Args{"publish", "prices.eur", R"({"bid":1.5,"ask":[2,3],"venue":"x"})", "--json"} +
            on_lo({endpoint}));
        ASSERT_EQ(published.exit_code, 0) << published;
        EXPECT_NE(published.err.find("published on 'prices.eur': 1 message in"), std::string::npos)
            << published;
        line = tap.wait_out("{", 2s);
    }
    ASSERT_TRUE(line) << "the tap printed nothing";
    const Json message = Json::parse(*line);
    EXPECT_EQ(message.at("topic"), "prices.eur");
    EXPECT_EQ(message.at("payload_encoding"), "msgpack");
    EXPECT_EQ(message.at("payload"), (Json{{"bid", 1.5}, {"ask", {2, 3}}, {"venue", "x"}}));
    const CliResult tapped = tap.finish(20s);
    EXPECT_EQ(tapped.exit_code, 0) << tapped;
    EXPECT_NE(tapped.err.find("tapped 'prices.': 1 message in"), std::string::npos) << tapped;
}

TEST(CliMessagesTest, PublishWithoutSubscribersFailsAtItsTimeout) {
    TestNode bystander({"--name", "bystander", "--interface", "lo"});
    ASSERT_TRUE(bystander.ready());
    const CliResult result = run_cli(Args{"publish", "prices.eur", "1", "--timeout", "300ms"} +
                                     on_lo({bystander.endpoint()}));
    EXPECT_EQ(result.exit_code, 1) << result;
    ASSERT_EQ(result.err_lines().size(), 1u) << result;
    EXPECT_EQ(result.err_lines()[0].rfind("peermq: 0 of 1 subscribers of 'prices.eur'", 0), 0u);
}

TEST(CliMessagesTest, TapReliableWithHistoryPrintsTheLastMessagesInOrderThenLiveOnes) {
    auto publisher = peermq::testing::make_node({.name = "feed", .interface = "lo"});
    for (int i = 1; i <= 10; ++i) ASSERT_TRUE(publisher.publish("prices.eur", i).ok());
    CliProcess tap(Args{"tap", "prices.", "--reliable", "--history", "3", "--count", "5"} +
                   on_lo({publisher.address()}));
    // The last three, numbered and marked as history, come first and in order.
    for (int expected = 8; expected <= 10; ++expected) {
        const auto line = tap.wait_out("{", 20s);
        ASSERT_TRUE(line) << "the tap printed no history";
        const Json message = Json::parse(*line);
        EXPECT_EQ(message.at("seq"), expected) << *line;
        EXPECT_EQ(message.at("payload"), expected) << *line;
        EXPECT_EQ(message.value("history", false), true) << *line;
    }
    // Then what is published next, not marked.
    ASSERT_TRUE(publisher.publish("prices.eur", 11).ok());
    ASSERT_TRUE(publisher.publish("prices.eur", 12).ok());
    for (int expected = 11; expected <= 12; ++expected) {
        const auto line = tap.wait_out("{", 20s);
        ASSERT_TRUE(line) << "the tap printed no live message";
        const Json message = Json::parse(*line);
        EXPECT_EQ(message.at("seq"), expected) << *line;
        EXPECT_FALSE(message.contains("history")) << *line;
    }
    const CliResult tapped = tap.finish(20s);
    EXPECT_EQ(tapped.exit_code, 0) << tapped;
    EXPECT_NE(tapped.err.find("(reliable, the last 3 of each topic first)"), std::string::npos)
        << tapped;
}

TEST(CliMessagesTest, TapHistoryWithoutReliableIsAUsageError) {
    const CliResult result = run_cli(Args{"tap", "prices.", "--history", "3"} + on_lo());
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_NE(result.err.find("--reliable"), std::string::npos) << result;
}

}  // namespace
}  // namespace peermq::cli_test
