// `peermq peers` finding nodes through real mDNS: three `peermq_driver node` processes announce
// themselves through the avahi-daemon restricted to lo (fixture avahi_lo, scripts/avahi-lo.sh),
// and the tool's node browses for them there. Labels cli and system; holds RESOURCE_LOCK mdns.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"

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

}  // namespace
}  // namespace peermq::cli_test
