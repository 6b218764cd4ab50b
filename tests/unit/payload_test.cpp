// Payload: small payloads live inline (no owner, independent copies), large ones are shared;
// both keep their bytes through copies, moves and assignments between the two kinds. (The
// MessagePack codec: msgpack_codec_test.cpp.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "peermq/payload.hpp"

namespace peermq {
namespace {

std::string bytes(std::size_t n, char c) { return std::string(n, c); }

TEST(Payload, SmallPayloadsAreInlineAndLargeOnesShared) {
    const std::string small = bytes(Payload::kInlineCapacity, 's');
    const std::string large = bytes(Payload::kInlineCapacity + 1, 'l');
    Payload a = Payload::copy_of(small.data(), small.size());
    Payload b = Payload::copy_of(large.data(), large.size());
    EXPECT_EQ(a.view(), small);
    EXPECT_EQ(b.view(), large);
    EXPECT_EQ(a.owner(), nullptr);
    EXPECT_NE(b.owner(), nullptr);

    Payload a2 = a;  // inline: its own bytes
    Payload b2 = b;  // shared: the same bytes
    EXPECT_NE(a2.data(), a.data());
    EXPECT_EQ(a2.view(), small);
    EXPECT_EQ(b2.data(), b.data());
    EXPECT_EQ(b.owner().use_count(), 2);
}

TEST(Payload, KeepsItsBytesThroughMovesAndAssignmentsOfEitherKind) {
    const std::string small = "reading:21.5C";
    const std::string large = bytes(1000, 'x');
    Payload s = Payload::from_string(small);
    Payload l = Payload::from_string(large);

    Payload moved_s = std::move(s);
    Payload moved_l = std::move(l);
    EXPECT_EQ(moved_s.view(), small);
    EXPECT_EQ(moved_l.view(), large);
    EXPECT_TRUE(s.empty());  // NOLINT(bugprone-use-after-move): a moved-from payload is empty
    EXPECT_TRUE(l.empty());  // NOLINT(bugprone-use-after-move)

    Payload x = moved_l;
    x = moved_s;  // shared -> inline
    EXPECT_EQ(x.view(), small);
    EXPECT_EQ(moved_l.owner().use_count(), 1);  // x let go of the shared bytes
    x = moved_l;                                // inline -> shared
    EXPECT_EQ(x.view(), large);
    x = std::move(moved_s);
    EXPECT_EQ(x.view(), small);
    const Payload& same = x;  // through a reference: clang warns on a literal `x = x`
    x = same;                 // self-assignment keeps the bytes
    EXPECT_EQ(x.view(), small);

    std::vector<Payload> many;
    for (int i = 0; i < 100; ++i) many.push_back(Payload::from_string(std::to_string(i)));
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(many[static_cast<std::size_t>(i)].view(), std::to_string(i));
}

}  // namespace
}  // namespace peermq
