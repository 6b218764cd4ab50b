// `peermq stats` on a node that knows hundreds of peers announcing hundreds of names: it answers
// at once, lists what the control reply carries and says how much more there is (docs/cli.md,
// "stats"; docs/spec/control.md §5.4). Its JSON has every field of the stats table.
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <set>
#include <string>

#include "cli_support.hpp"
#include "observability/stats_fields.hpp"
#include "support/free_port.hpp"
#include "support/raw_frames.hpp"
#include "wire/envelope.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;
namespace detail = peermq::detail;

constexpr int kPeers = 300;
constexpr int kNames = 100;  // queues, and topics, of each fake peer

// Runs `peermq stats --control <control> --json` until its object satisfies `done` (30 s at
// most); the last object read, for the failure message.
template <typename Done>
bool wait_for_stats(const std::string& control, Json& stats, Done&& done) {
    return wait_until(
        [&] {
            const CliResult json = run_cli(Args{"stats", "--control", control, "--json"});
            if (json.exit_code != 0) return false;
            stats = Json::parse(json.out, nullptr, false);
            return stats.is_object() && done(stats);
        },
        30s);
}

TEST(CliStatsTest, ATableOfManyPeersSaysHowManyMoreThereAre) {
    const std::string control = "tcp://127.0.0.1:" + std::to_string(peermq::testing::free_port());
    TestNode node(Args{"--name", "crowded", "--interface", "lo", "--control", control});
    ASSERT_TRUE(node.ready());

    zmq::context_t context;
    zmq::socket_t sink(context, zmq::socket_type::pull);  // where the fake peers "listen"
    const std::uint16_t sink_port = peermq::testing::bind_loopback(sink);
    zmq::socket_t push(context, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    push.connect(node.endpoint());
    detail::Hello hello;
    hello.cluster = "default";
    hello.host = "127.0.0.1";
    hello.inbox_port = sink_port;
    hello.pub_port = sink_port;
    for (int i = 0; i < kNames; ++i) {
        hello.queues.push_back(detail::QueueAd{"queue-" + std::to_string(i), 1});
        hello.topics.push_back("topic-" + std::to_string(i) + ".");
    }
    for (int i = 0; i < kPeers; ++i) {
        hello.name = "fake-" + std::to_string(i);
        peermq::testing::send_hello(push, hello);
    }

    Json stats;
    ASSERT_TRUE(wait_for_stats(control, stats, [](const Json& s) {
        return s.at("peers").size() + s.value("peers_omitted", 0u) >= kPeers;
    })) << stats.dump().substr(0, 2000);
    const std::size_t listed = stats.at("peers").size();
    EXPECT_LT(listed, std::size_t{kPeers});
    EXPECT_EQ(listed + stats.at("peers_omitted").get<std::size_t>(), std::size_t{kPeers});
    for (const auto& peer : stats.at("peers")) {
        EXPECT_EQ(peer.at("queues").size() + peer.at("queues_omitted").get<std::size_t>(),
                  std::size_t{kNames})
            << peer.dump();
    }

    const auto start = Clock::now();
    const CliResult table = run_cli(Args{"stats", "--control", control});
    EXPECT_LT(Clock::now() - start, 5s);
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("and " + std::to_string(kPeers - listed) + " more peers"),
              std::string::npos)
        << table.out.substr(table.out.size() > 3000 ? table.out.size() - 3000 : 0);
    // A peer's names: the first few, then how many more (what the reply left out included).
    EXPECT_NE(table.out.find("queue-0,queue-1,"), std::string::npos);
    EXPECT_NE(table.out.find(" +92 more"), std::string::npos);
    EXPECT_EQ(table.out.find("queue-99"), std::string::npos);

    zmq::message_t frame;
    while (sink.recv(frame, zmq::recv_flags::dontwait)) {
    }
}

// `stats --json` has one key per field of the stats table (core/src/observability/
// stats_fields.hpp), and each queue one per channel field (a histogram summarised as <name>_us):
// a field added to the table reaches the JSON without a change to the tool.
TEST(CliStatsTest, TheJsonHasEveryFieldOfTheStatsTable) {
    const std::string control = "tcp://127.0.0.1:" + std::to_string(peermq::testing::free_port());
    TestNode node(
        Args{"--name", "fields", "--interface", "lo", "--control", control, "--consume", "orders"});
    ASSERT_TRUE(node.ready());

    Json stats;
    ASSERT_TRUE(wait_for_stats(control, stats, [](const Json& s) {
        return s.contains("queues") && s.at("queues").contains("orders");
    })) << stats.dump();

    std::set<std::string> want;
    detail::for_each_stats_field<NodeStats>(
        [&](const auto& field) { want.insert(std::string(field.name)); });
    std::set<std::string> got;
    for (const auto& [key, value] : stats.items()) got.insert(key);
    EXPECT_EQ(got, want);

    want.clear();
    detail::for_each_stats_field<ChannelStats>([&](const auto& field) {
        want.insert(std::string(field.name) +
                    (field.kind == detail::StatsKind::histogram ? "_us" : ""));
    });
    got.clear();
    for (const auto& [key, value] : stats.at("queues").at("orders").items()) got.insert(key);
    EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace peermq::cli_test
