#include <gtest/gtest.h>

#include <atomic>

#include "peermq/peermq.hpp"
#include "wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::wait_until;

TEST(Smoke, TwoNodesWorkQueue) {
    auto a = peermq::Node::create({.name = "a", .interface = "lo"});
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    auto b = peermq::Node::create({.name = "b", .interface = "lo", .peers = {a->inbox_endpoint()}});
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    std::atomic<int> got{0};
    ASSERT_TRUE(a->consume("orders", [&](peermq::Delivery& d) {
        EXPECT_EQ(d.as<int>(), 42);
        ++got;
    }).ok());
    ASSERT_TRUE(wait_until([&] {
        for (auto& p : b->peers()) if (p.state == peermq::PeerState::alive && !p.queues.empty()) return true;
        return false;
    }));
    auto q = b->queue("orders");
    ASSERT_TRUE(q.ok());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(q->send(42).ok());
    EXPECT_TRUE(wait_until([&] { return got == 100; }));
    EXPECT_TRUE(wait_until([&] { return b->stats().queues["orders"].acked == 100; }));
}
