// `peermq peers`: the table and the JSON of the nodes the tool's observer node sees
// (docs/cli.md, "peers").
#include <nlohmann/json.hpp>

#include "cli_support.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;

struct ThreeNodes {
    TestNode a{{"--name", "alpha", "--interface", "lo", "--consume", "orders"}};
    TestNode b{{"--name", "bravo", "--interface", "lo", "--consume", "payments"}};
    TestNode c{{"--name", "charlie", "--interface", "lo"}};

    bool ready() const { return a.ready() && b.ready() && c.ready(); }
    std::vector<std::string> endpoints() const {
        return {a.endpoint(), b.endpoint(), c.endpoint()};
    }
};

TEST(CliPeersTest, SeesThreeNodesAsATableAndAsJson) {
    ThreeNodes nodes;
    ASSERT_TRUE(nodes.ready());

    const CliResult table = run_cli(Args{"peers", "--wait", "3"} + on_lo(nodes.endpoints()));
    ASSERT_EQ(table.exit_code, 0) << table;
    const auto lines = table.out_lines();
    ASSERT_EQ(lines.size(), 4u) << table;
    EXPECT_EQ(lines[0].substr(0, 4), "NAME");
    for (const std::string name : {"alpha", "bravo", "charlie"}) {
        bool listed = false;
        for (const auto& line : lines) {
            if (line.rfind(name + " ", 0) != 0) continue;
            listed = true;
            EXPECT_NE(line.find(" alive "), std::string::npos) << line;
        }
        EXPECT_TRUE(listed) << name << " missing:\n" << table;
    }
    EXPECT_NE(table.out.find("orders"), std::string::npos);

    const CliResult json =
        run_cli(Args{"peers", "--wait", "3", "--json"} + on_lo(nodes.endpoints()));
    ASSERT_EQ(json.exit_code, 0) << json;
    const Json peers = Json::parse(json.out);
    ASSERT_TRUE(peers.is_array());
    ASSERT_EQ(peers.size(), 3u) << json;
    std::set<std::string> names;
    for (const auto& peer : peers) {
        names.insert(peer.at("name").get<std::string>());
        EXPECT_EQ(peer.at("state"), "alive");
        EXPECT_EQ(peer.at("id").get<std::string>().size(), 36u);
        EXPECT_EQ(peer.at("inbox").get<std::string>().rfind("tcp://127.0.0.1:", 0), 0u);
        if (peer.at("name") == "bravo") {
            EXPECT_EQ(peer.at("queues"), Json::array({"payments"}));
        }
    }
    EXPECT_EQ(names, (std::set<std::string>{"alpha", "bravo", "charlie"}));
}

TEST(CliPeersTest, WithoutWaitListsThePeersOnceTheyAnswered) {
    ThreeNodes nodes;
    ASSERT_TRUE(nodes.ready());
    const CliResult result = run_cli(Args{"peers", "--json"} + on_lo(nodes.endpoints()));
    ASSERT_EQ(result.exit_code, 0) << result;
    const Json peers = Json::parse(result.out);
    ASSERT_EQ(peers.size(), 3u) << result;
    for (const auto& peer : peers) EXPECT_EQ(peer.at("state"), "alive") << result;
}

TEST(CliPeersTest, WaitGivesUpAtTheTimeoutWithExitOne) {
    TestNode alone({"--name", "alone", "--interface", "lo"});
    ASSERT_TRUE(alone.ready());
    const auto start = Clock::now();
    const CliResult result =
        run_cli(Args{"peers", "--wait", "2", "--timeout", "500ms"} + on_lo({alone.endpoint()}));
    EXPECT_EQ(result.exit_code, 1) << result;
    EXPECT_LT(Clock::now() - start, 10s);
    ASSERT_EQ(result.err_lines().size(), 1u) << result;
    EXPECT_EQ(result.err_lines()[0], "peermq: 1 of 2 peers alive after 500ms");
    // The table of what was seen is printed all the same.
    EXPECT_NE(result.out.find("alone"), std::string::npos) << result;
}

TEST(CliPeersTest, WatchRedrawsUntilSigint) {
    TestNode node({"--name", "watched", "--interface", "lo"});
    ASSERT_TRUE(node.ready());
    CliProcess watch(Args{"peers", "--watch", "--json"} + on_lo({node.endpoint()}));
    // One JSON array a second: wait for one that shows the node alive, then a second redraw.
    std::optional<std::string> alive;
    const auto deadline = Clock::now() + 15s;
    while (!alive && Clock::now() < deadline) {
        auto line = watch.wait_out("[", 5s);
        ASSERT_TRUE(line) << "no redraw";
        if (line->find("\"state\":\"alive\"") != std::string::npos) alive = line;
    }
    ASSERT_TRUE(alive);
    EXPECT_EQ(Json::parse(*alive).at(0).at("name"), "watched");
    ASSERT_TRUE(watch.wait_out("watched", 5s));
    watch.signal(SIGINT);
    const CliResult result = watch.finish(10s);
    EXPECT_EQ(result.exit_code, 0) << result;
    EXPECT_EQ(result.err, "") << result;
}

}  // namespace
}  // namespace peermq::cli_test
