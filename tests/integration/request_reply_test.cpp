#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "peermq/patterns/request_reply.hpp"
#include "peermq/peermq.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::wait_until;

namespace {

bool serves(const peermq::Node& node, int count, const std::string& queue) {
    int n = 0;
    for (const auto& p : node.peers()) {
        if (p.state == peermq::PeerState::alive &&
            std::find(p.queues.begin(), p.queues.end(), queue) != p.queues.end()) {
            ++n;
        }
    }
    return n >= count;
}

}  // namespace

TEST(RequestReply, RepliesComeBackToTheCallerFromEveryResponder) {
    auto r1 = peermq::Node::create({.name = "r1", .interface = "lo"}).value();
    auto r2 = peermq::Node::create({.name = "r2", .interface = "lo"}).value();
    auto client = peermq::Node::create(
                      {.name = "client", .interface = "lo", .peers = {r1.address(), r2.address()}})
                      .value();
    std::atomic<int> served1{0}, served2{0};
    auto square = [](std::atomic<int>& counter) {
        return std::function<long(const long&)>([&counter](const long& x) {
            ++counter;
            return x * x;
        });
    };
    ASSERT_TRUE(
        (peermq::patterns::Responder::serve_typed<long, long>(r1, "square", square(served1))).ok());
    ASSERT_TRUE(
        (peermq::patterns::Responder::serve_typed<long, long>(r2, "square", square(served2))).ok());
    auto requester = peermq::patterns::Requester::create(client).value();
    ASSERT_TRUE(wait_until([&] { return serves(client, 2, "square"); }));
    // The responders learn the client's reply queue from its HELLO.
    ASSERT_TRUE(wait_until([&] {
        return serves(r1, 1, requester.reply_queue()) && serves(r2, 1, requester.reply_queue());
    }));

    std::vector<std::thread> callers;
    std::atomic<int> correct{0};
    for (int t = 0; t < 4; ++t) {
        callers.emplace_back([&, t] {
            for (long i = 0; i < 50; ++i) {
                const long x = t * 100 + i;
                auto reply = requester.call_typed<long>("square", x);
                if (reply && reply.value() == x * x) ++correct;
            }
        });
    }
    for (auto& c : callers) c.join();
    EXPECT_EQ(correct.load(), 200);
    EXPECT_GT(served1.load(), 0);
    EXPECT_GT(served2.load(), 0);
}

TEST(RequestReply, HandlerErrorsAndMissingServicesAreErrorsNotHangs) {
    auto server = peermq::Node::create({.name = "server", .interface = "lo"}).value();
    auto client =
        peermq::Node::create({.name = "client", .interface = "lo", .peers = {server.address()}})
            .value();
    ASSERT_TRUE(peermq::patterns::Responder::serve(server, "fail",
                                                   [](const peermq::Message&) -> peermq::Payload {
                                                       throw std::runtime_error("database is down");
                                                   })
                    .ok());
    auto requester = peermq::patterns::Requester::create(client).value();
    ASSERT_TRUE(wait_until(
        [&] { return serves(client, 1, "fail") && serves(server, 1, requester.reply_queue()); }));

    auto failed = requester.call("fail", peermq::Payload::encode(1));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), peermq::ErrorCode::internal);
    EXPECT_NE(failed.status().message().find("database is down"), std::string::npos);

    auto nobody = requester.call("nobody-serves-this", peermq::Payload::encode(1), 200ms);
    ASSERT_FALSE(nobody.ok());
    EXPECT_EQ(nobody.status().code(), peermq::ErrorCode::timed_out);
}
