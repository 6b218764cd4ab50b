// MsgpackCodec (<peermq/msgpack.hpp>): round-trips values on both sides of the inline limit,
// decodes within its limits (a payload's length fields cannot make it allocate more than a
// small multiple of the payload), and is the PayloadCodec of every type without one of its own.
#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "peermq/message.hpp"
#include "peermq/msgpack.hpp"

namespace peermq {
namespace {

// A type msgpack-c cannot pack, with a codec of its own: its text.
struct Label {
    std::string text;
};

}  // namespace

template <>
struct PayloadCodec<Label> {
    static Payload encode(const Label& label) { return Payload::from_string(label.text); }
    static Label decode(const Payload& payload) { return Label{std::string(payload.view())}; }
};

namespace {

TEST(MsgpackCodec, IsThePayloadCodecOfTypesWithoutOneOfTheirOwn) {
    const Payload number = Payload::encode(42);
    EXPECT_EQ(number.view(), MsgpackCodec::encode(42).view());
    EXPECT_EQ(number.view(), "\x2a");  // a positive fixint
    EXPECT_EQ(MsgpackCodec::decode<int>(number), 42);

    // A specialization wins over MessagePack, in both directions.
    EXPECT_EQ(Payload::encode(Label{"door-3"}).view(), "door-3");
    EXPECT_EQ(Payload::from_string("door-4").as<Label>().text, "door-4");
    Message message;
    message.payload = Payload::encode(Label{"door-5"});
    EXPECT_EQ(message.as<Label>().text, "door-5");
}

TEST(MsgpackCodec, EncodesInlineUntilTheEncodingOutgrowsIt) {
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
TEST(MsgpackCodec, ContainerLengthsLargerThanThePayloadAreRefusedBeforeAnyAllocation) {
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

TEST(MsgpackCodec, NestingDeeperThanTheLimitIsRefused) {
    std::string deep(MsgpackCodec::kMaxDecodeDepth + 1, '\x91');  // [[[...]]]
    deep += '\x90';
    const std::string error = decode_error<std::vector<int>>(Payload::from_string(deep));
    EXPECT_NE(error.find("depth"), std::string::npos) << error;

    std::string deepest(MsgpackCodec::kMaxDecodeDepth - 1, '\x91');
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
