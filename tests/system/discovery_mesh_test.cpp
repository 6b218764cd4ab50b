// Several discovery backends on one host (lo) announce themselves and find each other; a stopped
// one is lost. Runs against the avahi-daemon of scripts/avahi-lo.sh (the CTest fixture), and
// without any daemon inside a private network namespace. Spec: docs/spec/discovery.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "peermq/discovery.hpp"
#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "system/support/backends.hpp"
#include "system/support/event_log.hpp"
#include "system/support/system_env.hpp"

namespace peermq::test {
namespace {

using namespace std::chrono_literals;
using namespace peermq::testing;

constexpr auto kLoseTimeout = 20s;

struct Node {
    ServiceRecord self;
    std::unique_ptr<Discovery> discovery;
    EventLog log;
    SteadyClock::time_point started;
};

// Starts one node per backend, checks that each finds all the others with the announced record,
// stops the last one and checks that the others lose it. Prints the timings.
void run_mesh(const std::vector<Backend>& backends, const std::string& label) {
    const std::string token = unique_token();
    const std::string cluster = "mesh-" + token;
    std::vector<std::unique_ptr<Node>> nodes;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        auto node = std::make_unique<Node>();
        node->self =
            make_self("n" + std::to_string(i) + "-" + token, cluster,
                      static_cast<std::uint16_t>(41000 + i), static_cast<std::uint16_t>(42000 + i));
        node->discovery = make_backend(backends[i]);
        ASSERT_NE(node->discovery, nullptr);
        nodes.push_back(std::move(node));
    }
    for (auto& node : nodes) {
        node->started = SteadyClock::now();
        const Status started = node->discovery->start(node->self, node->log.sink());
        ASSERT_TRUE(started.ok()) << started.to_string();
    }

    std::vector<double> found_ms;
    for (auto& node : nodes) {
        for (auto& other : nodes) {
            if (other == node) continue;
            const auto found = node->log.wait_found(other->self.id, kFindTimeout);
            ASSERT_TRUE(found) << node->self.name << " (" << node->discovery->backend()
                               << ") did not find " << other->self.name << " ("
                               << other->discovery->backend() << "); events:\n"
                               << node->log.dump();
            const ServiceRecord& r = found->event.record;
            EXPECT_EQ(r.host, "127.0.0.1");
            EXPECT_EQ(r.interface, "lo");
            EXPECT_EQ(r.inbox_port, other->self.inbox_port);
            EXPECT_EQ(r.pub_port, other->self.pub_port);
            EXPECT_EQ(r.cluster, cluster);
            EXPECT_EQ(r.name, other->self.name);
            EXPECT_EQ(r.instance, other->self.name + "-" + other->self.id.short_string());
            EXPECT_EQ(r.protocol_version, 1u);
            found_ms.push_back(ms_between(std::max(other->started, node->started), found->at));
        }
    }

    Node& leaving = *nodes.back();
    const auto stopped_at = SteadyClock::now();
    leaving.discovery->stop();
    std::vector<double> lost_ms;
    for (std::size_t i = 0; i + 1 < nodes.size(); ++i) {
        const auto lost = nodes[i]->log.wait_lost(leaving.self.id, kLoseTimeout);
        ASSERT_TRUE(lost) << nodes[i]->self.name << " did not lose " << leaving.self.name
                          << "; events:\n"
                          << nodes[i]->log.dump();
        lost_ms.push_back(ms_between(stopped_at, lost->at));
    }

    for (auto& node : nodes) {
        // Never itself, never another cluster, and no flapping: exactly one `found` per peer.
        for (const auto& e : node->log.events()) {
            EXPECT_NE(e.event.record.id, node->self.id) << "a node reported itself";
            EXPECT_EQ(e.event.record.cluster, cluster);
            EXPECT_NE(e.event.kind, DiscoveryEvent::Kind::updated) << describe(e.event);
        }
        node->discovery->stop();
    }
    std::printf(
        "[timing] %s: start -> found: min %.0f ms, max %.0f ms over %zu pairs; "
        "stop -> lost: min %.0f ms, max %.0f ms\n",
        label.c_str(), *std::min_element(found_ms.begin(), found_ms.end()),
        *std::max_element(found_ms.begin(), found_ms.end()), found_ms.size(),
        *std::min_element(lost_ms.begin(), lost_ms.end()),
        *std::max_element(lost_ms.begin(), lost_ms.end()));
}

TEST(AvahiDaemonDiscovery, ThreeNodesFindEachOtherAndLoseAStoppedOne) {
    run_mesh({Backend::daemon, Backend::daemon, Backend::daemon}, "daemon x3");
}

TEST(EmbeddedDiscovery, CoexistsWithTheDaemonAndOtherEmbeddedStacks) {
    // Two embedded stacks and a daemon client on one host: all share UDP 5353 on lo.
    run_mesh({Backend::embedded, Backend::daemon, Backend::embedded}, "embedded x2 + daemon");
}

TEST(EmbeddedDiscovery, JoinsTheMdnsGroupOnLoopbackOnly) {
    auto discovery = make_backend(Backend::embedded);
    ASSERT_NE(discovery, nullptr);
    EventLog log;
    ASSERT_TRUE(
        discovery->start(make_self("igmp-" + unique_token(), "igmp", 41100, 42100), log.sink())
            .ok());
    const auto interfaces = mdns_group_interfaces();
    EXPECT_NE(std::find(interfaces.begin(), interfaces.end(), "lo"), interfaces.end());
    for (const auto& name : interfaces) {
        EXPECT_EQ(name, "lo") << "224.0.0.251 joined on " << name << ": mDNS must stay on lo";
    }
    discovery->stop();
}

TEST(EmbeddedDiscovery, WorksWithoutAnyDaemonInAPrivateNetworkNamespace) {
    // A new network namespace with only lo: no avahi-daemon there, and D-Bus pointed nowhere,
    // so automatic() must fall back to the embedded stack, which must find its peers alone.
    const std::string cluster = "netns-" + unique_token();
    ChildProcess child(
        Args{"unshare", "-n", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""} +
            driver_argv("discovery") +
            Args{"mesh", "--discovery", "auto", "--interface", "lo", "--count", "3", "--cluster",
                 cluster, "--timeout-ms", "20000"},
        {kNoBus, "PEERMQ_LOG=info"});
    ASSERT_TRUE(child.started());
    child.close_stdin();
    const auto code = child.wait(60s);
    const std::string output = child.output();
    if (output.find("unshare failed") != std::string::npos ||
        output.find("unshare: ") != std::string::npos) {
        GTEST_SKIP() << "cannot create a network namespace here: " << output;
    }
    ASSERT_TRUE(code) << "the probe did not finish; output:\n" << output;
    EXPECT_EQ(*code, 0) << output;
    EXPECT_NE(output.find("using the embedded Avahi stack"), std::string::npos) << output;
    EXPECT_NE(output.find("avahi-daemon does not answer on D-Bus"), std::string::npos) << output;
    EXPECT_NE(output.find("mesh ok backend=embedded nodes=3"), std::string::npos) << output;
    for (const auto& line : child.lines()) {
        if (line.starts_with("mesh "))
            std::printf("[timing] private netns, no daemon: %s\n", line.c_str());
    }
}

}  // namespace
}  // namespace peermq::test
