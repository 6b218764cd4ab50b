// Payload: small payloads live inline (no owner, independent copies), large ones are shared;
// both keep their bytes through copies, moves and assignments between the two kinds, and the
// MessagePack codec round-trips values on both sides of the inline limit.
#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
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

TEST(Payload, EncodesInlineUntilTheEncodingOutgrowsIt) {
    const Payload small = Payload::encode(std::map<std::string, int>{{"a", 1}, {"b", 2}});
    EXPECT_LE(small.size(), Payload::kInlineCapacity);
    EXPECT_EQ(small.owner(), nullptr);
    EXPECT_EQ((small.as<std::map<std::string, int>>()),
              (std::map<std::string, int>{{"a", 1}, {"b", 2}}));

    std::vector<std::string> words;
    for (int i = 0; i < 50; ++i) words.push_back("word-" + std::to_string(i));
    const Payload large = Payload::encode(words);
    EXPECT_GT(large.size(), Payload::kInlineCapacity);
    EXPECT_NE(large.owner(), nullptr);
    EXPECT_EQ(large.as<std::vector<std::string>>(), words);

    EXPECT_THROW((void)small.as<std::vector<int>>(), DecodeError);
    EXPECT_TRUE(Payload::copy_of(nullptr, 0).empty());
}

Payload raw(std::initializer_list<unsigned char> bytes) {
    const std::vector<unsigned char> v(bytes);
    return Payload::copy_of(v.data(), v.size());
}

// The DecodeError of decoding `payload` as T; empty when it decoded.
template <typename T>
std::string decode_error(const Payload& payload) {
    try {
        (void)payload.as<T>();
    } catch (const DecodeError& e) {
        return e.what();
    }
    return {};
}

// A few bytes claiming a container of 2^32-1 elements: refused by the limits (no container can
// hold more elements than its payload has bytes), not by a failed allocation of 100 GiB for the
// decoded objects.
TEST(Payload, ContainerLengthsLargerThanThePayloadAreRefusedBeforeAnyAllocation) {
    const std::pair<const char*, Payload> hostile[] = {
        {"array32", raw({0xdd, 0xff, 0xff, 0xff, 0xff})},
        {"map32", raw({0xdf, 0xff, 0xff, 0xff, 0xff})},
        {"array16", raw({0xdc, 0xff, 0xff})},
        {"array in a map", raw({0x81, 0xa1, 0x6b, 0xdd, 0x7f, 0xff, 0xff, 0xff})},
    };
    for (const auto& [what, payload] : hostile) {
        for (const std::string& error :
             {decode_error<std::vector<int>>(payload), decode_error<std::string>(payload),
              decode_error<std::map<std::string, std::vector<int>>>(payload)}) {
            EXPECT_NE(error.find("exceeds the decode limits"), std::string::npos)
                << what << ": " << error;
            EXPECT_EQ(error.find("bad_alloc"), std::string::npos) << what << ": " << error;
        }
    }
    // Strings, bins and exts are read in place: one claiming 4 GiB is only short of its bytes.
    for (const Payload& payload :
         {raw({0xdb, 0xff, 0xff, 0xff, 0xff, 0x61}), raw({0xc6, 0xff, 0xff, 0xff, 0xff, 0x00}),
          raw({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01})}) {
        const std::string error = decode_error<std::string>(payload);
        EXPECT_NE(error, "");
        EXPECT_EQ(error.find("bad_alloc"), std::string::npos) << error;
    }
}

TEST(Payload, NestingDeeperThanTheLimitIsRefused) {
    std::string deep(Payload::kMaxDecodeDepth + 1, '\x91');  // [[[...]]]
    deep += '\x90';
    const std::string error = decode_error<std::vector<int>>(Payload::from_string(deep));
    EXPECT_NE(error.find("depth"), std::string::npos) << error;

    std::string deepest(Payload::kMaxDecodeDepth - 1, '\x91');
    deepest += '\x90';
    EXPECT_NE(decode_error<std::vector<int>>(Payload::from_string(deepest)).find("not the"),
              std::string::npos);  // within the limits: only the wrong type

    // The limits follow the payload's size: a real large value decodes.
    std::vector<std::string> words(10000, "w");
    EXPECT_EQ(Payload::encode(words).as<std::vector<std::string>>(), words);
    const std::map<std::string, int> pairs{{"a", 1}, {"b", 2}};
    EXPECT_EQ((Payload::encode(pairs).as<std::map<std::string, int>>()), pairs);
}

}  // namespace
}  // namespace peermq
