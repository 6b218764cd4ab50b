// The stats field table (core/src/observability/stats_fields.hpp) is well formed, and the
// control protocol follows it: a stats reply carries every field under the table's name, in the
// table's order, and the client reads every one back (the metrics renderer and the CLI's JSON
// are held to the same table by tests/metrics and tests/cli).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "admin/control_codec.hpp"
#include "observability/stats_fields.hpp"
#include "support/stats_values.hpp"

namespace detail = peermq::detail;
using detail::StatsKind;

namespace {

template <typename Owner>
std::vector<std::string> names_of() {
    std::vector<std::string> names;
    detail::for_each_stats_field<Owner>([&](const auto& field) { names.emplace_back(field.name); });
    return names;
}

std::vector<std::string> keys_of(const msgpack::object& map) {
    std::vector<std::string> keys;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        keys.push_back(map.via.map.ptr[i].key.as<std::string>());
    }
    return keys;
}

const msgpack::object& value_at(const msgpack::object& map, std::string_view key) {
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        if (map.via.map.ptr[i].key.as<std::string>() == key) return map.via.map.ptr[i].val;
    }
    throw std::out_of_range("no key " + std::string(key));
}

TEST(StatsFieldsTest, TheTablesAreWellFormed) {
    std::set<std::string> names;
    std::set<std::string> omitted_fields;
    detail::for_each_stats_field<peermq::NodeStats>([&](const auto& field) {
        const std::string name(field.name);
        EXPECT_TRUE(names.insert(name).second) << "twice: " << name;
        switch (field.kind) {
            case StatsKind::counter:
            case StatsKind::gauge:
                EXPECT_FALSE(field.metric.empty()) << name;
                EXPECT_FALSE(field.help.empty()) << name;
                break;
            case StatsKind::by_reason:
                EXPECT_FALSE(field.metric.empty()) << name;
                EXPECT_FALSE(field.help.empty()) << name;
                EXPECT_FALSE(field.label.empty()) << name;
                break;
            case StatsKind::channels:
            case StatsKind::peers:
                EXPECT_FALSE(field.metric.empty()) << name;
                EXPECT_NE(field.omitted_in, nullptr) << name << " is bounded in a control reply";
                break;
            case StatsKind::identity:
            case StatsKind::omitted: EXPECT_TRUE(field.metric.empty()) << name; break;
            case StatsKind::histogram: ADD_FAILURE() << name << ": a histogram is per channel";
        }
        if (field.kind == StatsKind::omitted) omitted_fields.insert(name);
    });
    // Each bounded list counts what a reply leaves out in an `omitted` field written after it
    // (the encoder adds what the list left out when it writes that field).
    std::size_t list_at = 0;
    detail::for_each_stats_field<peermq::NodeStats>([&](const auto& list) {
        ++list_at;
        if (list.omitted_in == nullptr) return;
        std::size_t field_at = 0;
        bool found = false;
        detail::for_each_stats_field<peermq::NodeStats>([&](const auto& field) {
            ++field_at;
            if constexpr (std::is_same_v<typename std::decay_t<decltype(field)>::value_type,
                                         std::uint64_t>) {
                if (field.member != list.omitted_in) return;
                found = true;
                EXPECT_EQ(field.kind, StatsKind::omitted) << field.name;
                EXPECT_EQ(field.name, std::string(list.name) + "_omitted");
                EXPECT_GT(field_at, list_at) << field.name << " is written after " << list.name;
            }
        });
        EXPECT_TRUE(found) << list.name;
    });
    EXPECT_EQ(omitted_fields.size(), 3u);

    std::set<std::string> channel_names;
    detail::for_each_stats_field<peermq::ChannelStats>([&](const auto& field) {
        EXPECT_TRUE(channel_names.insert(std::string(field.name)).second) << field.name;
        EXPECT_FALSE(field.metric.empty()) << field.name;
        EXPECT_FALSE(field.help.empty()) << field.name;
    });
}

TEST(StatsFieldsTest, AStatsReplyCarriesEveryFieldUnderItsNameInTableOrder) {
    const peermq::NodeStats stats = peermq::testing::distinct_node_stats();
    msgpack::sbuffer buffer;
    detail::encode_ok_reply(stats, buffer);
    const msgpack::object_handle handle = msgpack::unpack(buffer.data(), buffer.size());
    const msgpack::object& body = handle.get().via.array.ptr[2];
    ASSERT_EQ(body.type, msgpack::type::MAP);
    // Then `dead_letters`, a map of maps the table has no kind for (admin/control_messages.hpp
    // writes it after every field of the table).
    std::vector<std::string> want = names_of<peermq::NodeStats>();
    want.emplace_back("dead_letters");
    EXPECT_EQ(keys_of(body), want);

    detail::for_each_stats_field<peermq::NodeStats>([&](const auto& field) {
        const auto& value = stats.*field.member;
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::uint64_t>) {
            EXPECT_EQ(value_at(body, field.name).template as<std::uint64_t>(), value) << field.name;
        }
    });
    const msgpack::object& queues = value_at(body, "queues");
    ASSERT_EQ(queues.via.map.size, 1u);
    const msgpack::object& channel = queues.via.map.ptr[0].val;
    EXPECT_EQ(keys_of(channel), names_of<peermq::ChannelStats>());
    const peermq::ChannelStats& sent = stats.queues.begin()->second;
    detail::for_each_stats_field<peermq::ChannelStats>([&](const auto& field) {
        const auto& value = sent.*field.member;
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::uint64_t>) {
            EXPECT_EQ(value_at(channel, field.name).template as<std::uint64_t>(), value)
                << field.name;
        }
    });
}

// The client reads back every field the table has: what is compared is found by walking it.
TEST(StatsFieldsTest, EveryFieldOfTheTableRoundTrips) {
    const peermq::NodeStats stats = peermq::testing::distinct_node_stats();
    msgpack::sbuffer buffer;
    detail::encode_ok_reply(stats, buffer);
    auto decoded = detail::decode_stats_reply(buffer.data(), buffer.size());
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();

    auto expect_channel_eq = [](const peermq::ChannelStats& got, const peermq::ChannelStats& want) {
        detail::for_each_stats_field<peermq::ChannelStats>([&](const auto& field) {
            const auto& a = got.*field.member;
            const auto& b = want.*field.member;
            if constexpr (std::is_same_v<std::decay_t<decltype(a)>, peermq::LatencyHistogram>) {
                EXPECT_EQ(a.buckets, b.buckets) << field.name;
                EXPECT_EQ(a.count, b.count) << field.name;
                EXPECT_EQ(a.sum_us, b.sum_us) << field.name;
            } else {
                EXPECT_EQ(a, b) << field.name;
            }
        });
    };
    detail::for_each_stats_field<peermq::NodeStats>([&](const auto& field) {
        const auto& got = decoded.value().*field.member;
        const auto& want = stats.*field.member;
        using Value = std::decay_t<decltype(got)>;
        if constexpr (std::is_same_v<Value, std::map<std::string, peermq::ChannelStats>>) {
            ASSERT_EQ(got.size(), want.size()) << field.name;
            for (const auto& [name, channel] : want) expect_channel_eq(got.at(name), channel);
        } else if constexpr (std::is_same_v<Value, std::vector<peermq::PeerInfo>>) {
            ASSERT_EQ(got.size(), want.size()) << field.name;
            for (std::size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ(got[i].id, want[i].id);
                EXPECT_EQ(got[i].name, want[i].name);
                EXPECT_EQ(got[i].frames_sent, want[i].frames_sent);
            }
        } else {
            EXPECT_EQ(got, want) << field.name;
        }
    });
}

}  // namespace
