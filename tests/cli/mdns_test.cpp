// `peermq peers` and `peermq queues` finding nodes through real mDNS: `peermq_driver node`
// processes (and a producer in this process) announce themselves through the avahi-daemon
// restricted to lo (fixture avahi_lo, scripts/avahi-lo.sh), and the tool's node browses for them
// there, as a user's would with the README's `peermq queues --interface lo`. Labels cli and
// system; holds RESOURCE_LOCK mdns.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "peermq/peermq.hpp"
#include "support/nodes.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;

TEST(CliMdnsTest, PeersSeesThreeNodesThroughTheAvahiDaemonOnLo) {
    // A cluster of this run only: other nodes on lo are none of this test's business.
    const std::string cluster = "cli-mdns-" + std::to_string(::getpid());
    auto node = [&](const std::string& name, const std::string& queue) {
        return std::make_unique<TestNode>(Args{"--name", name, "--interface", "lo", "--cluster",
                                               cluster, "--discovery", "avahi", "--consume",
                                               queue});
    };
    auto a = node("mdns-alpha", "a");
    auto b = node("mdns-bravo", "b");
    auto c = node("mdns-charlie", "c");
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());

    const CliResult result =
        run_cli(Args{"peers", "--interface", "lo", "--discovery", "avahi", "--cluster", cluster,
                     "--wait", "3", "--timeout", "30s", "--json"},
                60s);
    ASSERT_EQ(result.exit_code, 0) << result;
    const Json peers = Json::parse(result.out);
    ASSERT_EQ(peers.size(), 3u) << result;
    std::set<std::string> names;
    for (const auto& peer : peers) {
        names.insert(peer.at("name").get<std::string>());
        EXPECT_EQ(peer.at("state"), "alive") << result;
        EXPECT_EQ(peer.at("cluster"), cluster) << result;
    }
    EXPECT_EQ(names, (std::set<std::string>{"mdns-alpha", "mdns-bravo", "mdns-charlie"}));
}

TEST(CliMdnsTest, QueuesShowsAClusterFoundThroughTheAvahiDaemonOnLo) {
    const std::string cluster = "cli-mdns-q-" + std::to_string(::getpid());
    TestNode worker(Args{"--name", "mdns-worker", "--interface", "lo", "--cluster", cluster,
                         "--discovery", "avahi", "--consume", "jobs"});
    ASSERT_TRUE(worker.ready()) << worker.output();
    NodeOptions options;
    options.name = "mdns-shop";
    options.cluster = cluster;
    options.interface = "lo";
    options.discovery = discovery::avahi_daemon({.interfaces = {"lo"}});
    Node shop = testing::make_node(std::move(options));
    ASSERT_TRUE(wait_until([&] { return testing::sees(shop, {"mdns-worker"}, "jobs"); }, 30s))
        << testing::describe(shop.peers());
    auto jobs = shop.queue("jobs").value();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(jobs.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return testing::queue_stats(shop, "jobs").acked == 20; }))
        << testing::describe(testing::queue_stats(shop, "jobs"));

    // What the README tells a user to type, with this run's cluster.
    const CliResult result = run_cli(Args{"queues", "--interface", "lo", "--cluster", cluster,
                                          "--wait", "2", "--timeout", "30s", "--json"},
                                     60s);
    ASSERT_EQ(result.exit_code, 0) << result;
    const Json view = Json::parse(result.out, nullptr, false);
    ASSERT_TRUE(view.is_object()) << result;
    ASSERT_EQ(view.at("queues").size(), 1u) << result.out;
    const Json& row = view.at("queues").at(0);
    EXPECT_EQ(row.at("queue"), "jobs");
    EXPECT_EQ(row.at("producers"), Json::array({"mdns-shop"})) << row.dump();
    EXPECT_EQ(row.at("consumers"), Json::array({"mdns-worker"})) << row.dump();
    EXPECT_EQ(row.at("waiting"), 0) << row.dump();
    EXPECT_EQ(row.at("in_flight"), 0) << row.dump();
    std::set<std::string> named;
    for (const auto& node : row.at("nodes")) {
        named.insert(node.at("name").get<std::string>());
        if (node.at("name") == "mdns-shop") {
            EXPECT_EQ(node.at("acked"), 20) << node.dump();
        } else {
            EXPECT_EQ(node.at("delivered"), 20) << node.dump();
        }
    }
    EXPECT_EQ(named, (std::set<std::string>{"mdns-shop", "mdns-worker"})) << row.dump();
}

}  // namespace
}  // namespace peermq::cli_test
