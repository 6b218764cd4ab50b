// A payload whose MessagePack length fields lie (a few bytes claiming 2^32-1 elements) reaches a
// handler that decodes it with as<T>(): the decode fails within its limits, the message is
// nacked with that error and dead-lettered by its sender, and the node keeps serving.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "peermq/peermq.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::testing::wait_until;

namespace {

bool consumes(const peermq::Node& node, const std::string& name, const std::string& queue) {
    for (const auto& p : node.peers()) {
        if (p.name == name && p.state == peermq::PeerState::alive &&
            std::find(p.queues.begin(), p.queues.end(), queue) != p.queues.end()) {
            return true;
        }
    }
    return false;
}

// The outcome of a confirmed send, or an error when none comes within 20 s.
peermq::Result<peermq::Receipt> outcome(std::future<peermq::Result<peermq::Receipt>> receipt) {
    if (receipt.wait_for(20s) != std::future_status::ready) {
        return peermq::Status(peermq::ErrorCode::timed_out, "no outcome within 20 s");
    }
    return receipt.get();
}

}  // namespace

TEST(DecodeLimits, AForgedLengthIsNackedWithTheLimitAndTheConsumerKeepsServing) {
    auto consumer = peermq::Node::create({.name = "consumer", .interface = "lo"}).value();
    auto producer =
        peermq::Node::create({.name = "producer", .interface = "lo", .peers = {consumer.address()}})
            .value();
    std::mutex mutex;
    std::vector<std::vector<int>> decoded;
    ASSERT_TRUE(consumer
                    .consume("numbers",
                             [&](peermq::Delivery& delivery) {
                                 auto value = delivery.as<std::vector<int>>();
                                 std::lock_guard lock(mutex);
                                 decoded.push_back(std::move(value));
                             })
                    .ok());
    ASSERT_TRUE(wait_until([&] { return consumes(producer, "consumer", "numbers"); }));
    peermq::QueueOptions options;
    options.max_attempts = 2;
    options.retry_initial = 10ms;
    auto numbers = producer.queue("numbers", options).value();

    // array32 of 2^32-1 elements, and a map whose value is an array of 2^31-1.
    const unsigned char forged_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const unsigned char forged_in_map[] = {0x81, 0xa1, 0x6b, 0xdd, 0x7f, 0xff, 0xff, 0xff};
    for (const auto& [bytes, size] : {std::pair{forged_array, sizeof forged_array},
                                      std::pair{forged_in_map, sizeof forged_in_map}}) {
        auto receipt =
            outcome(numbers.send_payload_confirmed(peermq::Payload::copy_of(bytes, size)));
        ASSERT_TRUE(receipt.ok()) << receipt.status().to_string();
        EXPECT_EQ(receipt->outcome, peermq::Receipt::Outcome::dead_lettered);
        EXPECT_EQ(receipt->reason, "max_attempts");
        EXPECT_NE(receipt->last_error.find("exceeds the decode limits"), std::string::npos)
            << receipt->last_error;
    }

    auto good = outcome(numbers.send_confirmed(std::vector<int>{1, 2, 3}));
    ASSERT_TRUE(good.ok()) << good.status().to_string();
    EXPECT_EQ(good->outcome, peermq::Receipt::Outcome::acked);
    {
        std::lock_guard lock(mutex);
        ASSERT_EQ(decoded.size(), 1u);
        EXPECT_EQ(decoded[0], (std::vector<int>{1, 2, 3}));
    }
    EXPECT_EQ(consumer.stats().queues["numbers"].handler_errors, 4u);
    const auto letters = producer.dead_letters().list().value();
    ASSERT_EQ(letters.size(), 2u);
    for (const auto& letter : letters) {
        EXPECT_NE(letter.last_error.find("exceeds the decode limits"), std::string::npos)
            << letter.last_error;
    }
}
