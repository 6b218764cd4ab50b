// Where a node listens (NodeOptions::interface): by default only on the interfaces its discovery
// runs on, never every interface behind the user's back; "*" and a named interface as told. Read
// from the kernel's own table of listening sockets (/proc/net/tcp), not from what the node says.
#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/peermq.hpp"

namespace peermq::testing {
namespace {

// The IPv4 addresses listening on `port` ("127.0.0.1", "0.0.0.0"), from /proc/net/tcp.
std::set<std::string> listeners(std::uint16_t port) {
    std::set<std::string> out;
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string slot, local, remote, state;
        words >> slot >> local >> remote >> state;
        if (state != "0A") continue;  // TCP_LISTEN
        const auto colon = local.find(':');
        if (colon == std::string::npos) continue;
        if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
        const unsigned long address = std::stoul(local.substr(0, colon), nullptr, 16);
        // The kernel prints the address as a host-order word of network-order bytes.
        out.insert(std::to_string(address & 0xff) + "." + std::to_string((address >> 8) & 0xff) +
                   "." + std::to_string((address >> 16) & 0xff) + "." +
                   std::to_string((address >> 24) & 0xff));
    }
    return out;
}

std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoul(endpoint.substr(endpoint.rfind(':') + 1)));
}

// A discovery backend that runs on the interfaces it is given and finds no one.
class PinnedDiscovery final : public Discovery {
public:
    explicit PinnedDiscovery(std::vector<std::string> interfaces)
        : interfaces_(std::move(interfaces)) {}
    std::string_view backend() const override { return "pinned"; }
    Status start(const ServiceRecord&, DiscoverySink) override { return {}; }
    void stop() override {}
    std::vector<std::string> interfaces() const override { return interfaces_; }

private:
    std::vector<std::string> interfaces_;
};

DiscoveryFactory pinned(std::vector<std::string> interfaces) {
    return [interfaces]() -> Result<std::unique_ptr<Discovery>> {
        return std::unique_ptr<Discovery>(std::make_unique<PinnedDiscovery>(interfaces));
    };
}

// The `listens` field of the node's `node started` log line, and every message it logged.
struct StartLog {
    std::mutex mutex;  // the sink may run on the node's threads too
    std::string listens;
    std::vector<std::string> messages;

    bool said(const std::string& message) {
        std::lock_guard lock(mutex);
        return std::find(messages.begin(), messages.end(), message) != messages.end();
    }
};

Node start_logged(NodeOptions options, std::shared_ptr<StartLog> log) {
    options.log_level = LogLevel::info;
    options.log_sink = [log](const LogRecord& record) {
        std::lock_guard lock(log->mutex);
        log->messages.push_back(record.message);
        if (record.message != "node started") return;
        if (const LogField* field = record.find("listens")) log->listens = field->value;
    };
    return Node::create(std::move(options)).value();
}

TEST(Listen, ByDefaultANodeListensOnlyWhereItsDiscoveryRuns) {
    NodeOptions options;
    options.name = "pinned";
    options.discovery = pinned({"lo"});
    auto log = std::make_shared<StartLog>();
    auto node = start_logged(options, log);
    EXPECT_EQ(log->listens, "127.0.0.1");
    EXPECT_EQ(node.inbox_endpoint().substr(0, 16), "tcp://127.0.0.1:") << node.inbox_endpoint();
    EXPECT_EQ(listeners(port_of(node.inbox_endpoint())), std::set<std::string>{"127.0.0.1"});
    EXPECT_EQ(listeners(port_of(node.pub_endpoint())), std::set<std::string>{"127.0.0.1"});
}

TEST(Listen, EveryInterfaceOnlyWhenToldOrWhenNothingSaysWhere) {
    {
        NodeOptions options;
        options.name = "everywhere";
        options.interface = "*";
        options.discovery = pinned({"lo"});
        auto node = Node::create(options).value();
        EXPECT_EQ(listeners(port_of(node.inbox_endpoint())), std::set<std::string>{"0.0.0.0"});
    }
    {
        // Static peers only: no discovery to follow.
        NodeOptions options;
        options.name = "static";
        auto log = std::make_shared<StartLog>();
        auto node = start_logged(options, log);
        EXPECT_EQ(log->listens, "every interface");
        EXPECT_EQ(listeners(port_of(node.inbox_endpoint())), std::set<std::string>{"0.0.0.0"});
    }
    {
        NodeOptions options;
        options.name = "named";
        options.interface = "lo";
        auto node = Node::create(options).value();
        EXPECT_EQ(listeners(port_of(node.inbox_endpoint())), std::set<std::string>{"127.0.0.1"});
    }
}

TEST(Listen, AnInterfaceWithoutIPv4IsLeftOutAndSaid) {
    NodeOptions options;
    options.name = "partial";
    options.discovery = pinned({"lo", "no-such-interface0"});
    auto log = std::make_shared<StartLog>();
    auto node = start_logged(options, log);
    EXPECT_EQ(listeners(port_of(node.inbox_endpoint())), std::set<std::string>{"127.0.0.1"});
    EXPECT_TRUE(
        log->said("discovery runs on interfaces without an IPv4 address: not listening there"));
}

}  // namespace
}  // namespace peermq::testing
