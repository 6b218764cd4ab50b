// The dead-letter store (storage/dead_letter_store.hpp) without a journal: bounded, oldest out
// first, filtered like the journal's table, and take() for replay. The journal side is the
// journal's own (journal_test.cpp) behind the same calls.
#include "storage/dead_letter_store.hpp"

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

DeadLetter letter(std::string queue, std::string reason, std::int64_t failed_ms) {
    DeadLetter out;
    out.id = MessageId::generate();
    out.queue = std::move(queue);
    out.reason = std::move(reason);
    out.last_failure_ms = failed_ms;
    return out;
}

TEST(DeadLetterStore, InMemoryKeepsTheNewestUpToItsBoundAndSaysWhenItDropped) {
    DeadLetterStore store(nullptr, 2);
    const Clock::Steady now{};
    const DeadLetter first = letter("a", "expired", 1);
    EXPECT_TRUE(store.put(first, now));
    EXPECT_TRUE(store.put(letter("a", "expired", 2), now));
    EXPECT_FALSE(store.put(letter("b", "rejected", 3), now)) << "full: the oldest made room";
    auto all = store.list({}, now);
    ASSERT_TRUE(all);
    ASSERT_EQ(all.value().size(), 2u);
    EXPECT_EQ(all.value()[0].last_failure_ms, 2);
    EXPECT_EQ(store.get(first.id, now).status().code(), ErrorCode::not_found);
}

TEST(DeadLetterStore, InMemoryFiltersPurgesAndTakes) {
    DeadLetterStore store(nullptr);
    const Clock::Steady now{};
    const DeadLetter keep = letter("orders", "max_attempts", 10);
    store.put(keep, now);
    store.put(letter("orders", "expired", 20), now);
    store.put(letter("mail", "expired", 30), now);

    DeadLetterFilter expired;
    expired.reason = "expired";
    EXPECT_EQ(store.list(expired, now).value().size(), 2u);
    DeadLetterFilter window;
    window.since_ms = 15;
    window.until_ms = 30;  // exclusive
    ASSERT_EQ(store.list(window, now).value().size(), 1u);
    EXPECT_EQ(store.list(window, now).value()[0].last_failure_ms, 20);
    DeadLetterFilter one;
    one.limit = 1;
    EXPECT_EQ(store.list(one, now).value().size(), 1u);

    EXPECT_EQ(store.purge(expired, now).value(), 2u);
    auto taken = store.take(keep.id, now);
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken.value().queue, "orders");
    EXPECT_EQ(store.take(keep.id, now).status().code(), ErrorCode::not_found) << "taken once";
    EXPECT_TRUE(store.list({}, now).value().empty());
}

}  // namespace
}  // namespace peermq::detail
