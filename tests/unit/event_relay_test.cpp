// EventRelay: what the Avahi backends run inside Avahi's C callbacks. No exception may unwind
// through those C frames (undefined behaviour): whatever a table change or the node's sink
// throws, of any type, is caught, logged at error and counted as "callback.exception" in the
// backend's ignored(), and the relay keeps delivering.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "../../discovery/src/avahi_common.hpp"
#include "support/log_capture.hpp"

namespace peermq::detail {
namespace {

const std::string kId = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";

Resolution resolution(std::uint16_t port) {
    Resolution r;
    r.interface_name = "lo";
    r.host = "127.0.0.1";
    r.port = port;
    r.txt = {"v=1", "id=" + kId, "pub=5556", "cluster=shop"};
    return r;
}

// Routes process_logger() to a capture for the test's lifetime.
struct CapturedProcessLog {
    testing::LogCapture capture;
    CapturedProcessLog() { process_logger().set_sink(capture.sink()); }
    ~CapturedProcessLog() { process_logger().set_sink({}); }
};

TEST(EventRelay, AChangeOrASinkThatThrowsIsCaughtCountedAndLogged) {
    CapturedProcessLog log;
    EventRelay relay;
    std::vector<DiscoveryEvent> delivered;
    int calls = 0;
    relay.reset(PeerTable(NodeId::generate(), "shop"), [&](DiscoveryEvent event) {
        if (++calls == 1) throw 42;
        delivered.push_back(std::move(event));
    });
    const InstanceKey key{1, 0, "peer-a"};

    relay.apply([](PeerTable&) -> std::vector<DiscoveryEvent> { throw 42; });
    relay.apply([&](PeerTable& table) { return table.resolved(key, resolution(4000)); });
    relay.apply([&](PeerTable& table) { return table.resolved(key, resolution(4001)); });

    ASSERT_EQ(delivered.size(), 1u);  // the found event went to the throwing call
    EXPECT_EQ(delivered[0].kind, DiscoveryEvent::Kind::updated);
    EXPECT_EQ(delivered[0].record.inbox_port, 4001);
    EXPECT_EQ(relay.ignored().at("callback.exception"), 2u);
    EXPECT_EQ(log.capture.count("exception caught in a discovery callback"), 2u);
    const auto record = log.capture.find("exception caught in a discovery callback");
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->level, LogLevel::error);
    EXPECT_EQ(record->component, "discovery");
}

TEST(EventRelay, GuardRunsACallbackBodyAndCatchesWhatItThrows) {
    CapturedProcessLog log;
    EventRelay relay;
    int ran = 0;
    relay.guard("browse", [&] { ++ran; });
    relay.guard("resolve", [] { throw std::runtime_error("out of instances"); });
    relay.guard("client", [] { throw 42; });
    EXPECT_EQ(ran, 1);
    EXPECT_EQ(relay.ignored().at("callback.exception"), 2u);
    EXPECT_TRUE(log.capture.find("exception caught in a discovery callback",
                                 {{"callback", "resolve"}, {"error", "out of instances"}}));
    EXPECT_TRUE(
        log.capture.find("exception caught in a discovery callback", {{"callback", "client"}}));
}

}  // namespace
}  // namespace peermq::detail
