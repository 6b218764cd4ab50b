// The id tables of the hot path: UuidHash spreads UUIDv7s over masked tables, IdMap keeps
// its values in place while other entries come and go, and matches a std::map model.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "util/uuid_table.hpp"

namespace peermq::detail {
namespace {

TEST(UuidHash, LowBitsOfIdsMadeInOneBurstCoverAMaskedTable) {
    // Open-addressing tables use hash & mask: ids generated back to back (same timestamp, a
    // counter, the variant bits) must still land on every home slot.
    std::set<std::size_t> homes;
    for (int i = 0; i < 4096; ++i) homes.insert(UuidHash{}(Uuid::generate()) & 255);
    EXPECT_EQ(homes.size(), 256u);
}

TEST(IdMap, MatchesAMapAndKeepsValueAddressesStable) {
    IdMap<std::uint64_t> map;
    std::map<Uuid, std::uint64_t> model;
    std::map<Uuid, const std::uint64_t*> where;
    std::vector<Uuid> ids;
    std::mt19937 random(3);
    for (std::uint64_t step = 0; step < 50'000; ++step) {
        if (ids.empty() || random() % 3 != 0) {
            const Uuid id = Uuid::generate();
            auto [value, inserted] = map.try_emplace(id);
            ASSERT_TRUE(inserted);
            *value = step;
            model[id] = step;
            where[id] = value;
            ids.push_back(id);
        } else {
            const std::size_t i = random() % ids.size();
            map.erase(ids[i]);
            model.erase(ids[i]);
            where.erase(ids[i]);
            ids[i] = ids.back();
            ids.pop_back();
        }
    }
    ASSERT_EQ(map.size(), model.size());
    for (const auto& [id, value] : model) {
        const std::uint64_t* found = map.find(id);
        ASSERT_NE(found, nullptr);
        EXPECT_EQ(*found, value);
        EXPECT_EQ(found, where[id]);  // never moved by the inserts and erases around it
    }
    auto [again, inserted] = map.try_emplace(model.begin()->first);
    EXPECT_FALSE(inserted);
    EXPECT_EQ(*again, model.begin()->second);
    EXPECT_EQ(map.find(Uuid::generate()), nullptr);
    EXPECT_THROW((void)map.at(Uuid::generate()), std::out_of_range);
    std::size_t seen = 0;
    map.for_each([&](const Uuid& id, std::uint64_t& value) {
        EXPECT_EQ(model.at(id), value);
        ++seen;
    });
    EXPECT_EQ(seen, model.size());
}

}  // namespace
}  // namespace peermq::detail
