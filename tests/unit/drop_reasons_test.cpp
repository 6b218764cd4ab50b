// The drop reasons a node counts (observability/drop_reasons.hpp) are the ones its specs list:
// wire.md §9's table, reliability.md §14's list and control.md §6's table. A reason added to the
// code and not to a spec, or documented and never counted, fails here.
#include "observability/drop_reasons.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

std::string read_spec(const std::string& name) {
    std::ifstream in(std::string(PEERMQ_SOURCE_DIR) + "/docs/spec/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The text from the heading that starts with `from` to the next heading of the same level.
std::string section(const std::string& text, const std::string& from) {
    const auto start = text.find("\n" + from);
    if (start == std::string::npos) return {};
    const auto end = text.find("\n## ", start + 1);
    return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Every `prefix.name` in backquotes, the form the specs give reasons in.
std::set<std::string> reasons_in(const std::string& text) {
    static const std::regex reason(R"(`([a-z]+\.[a-z_]+)`)");
    std::set<std::string> out;
    for (std::sregex_iterator it(text.begin(), text.end(), reason), end; it != end; ++it) {
        out.insert((*it)[1]);
    }
    return out;
}

// A table's first column: rows "| `reason` | ... |".
std::set<std::string> table_reasons(const std::string& text) {
    static const std::regex row(R"(\n\| `([a-z]+\.[a-z_]+)` \|)");
    std::set<std::string> out;
    for (std::sregex_iterator it(text.begin(), text.end(), row), end; it != end; ++it) {
        out.insert((*it)[1]);
    }
    return out;
}

TEST(DropReasons, NamesAreUniqueAndFindTheirReason) {
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < kDropCount; ++i) {
        const auto reason = static_cast<Drop>(i);
        EXPECT_TRUE(seen.insert(name(reason)).second) << name(reason);
        ASSERT_TRUE(drop_named(name(reason)).has_value());
        EXPECT_EQ(*drop_named(name(reason)), reason);
    }
    EXPECT_FALSE(drop_named("frame.nonsense").has_value());
}

TEST(DropReasons, TheSpecsListExactlyTheReasonsTheCodeCounts) {
    const std::string wire = section(read_spec("wire.md"), "## 9.");
    const std::string reliability = section(read_spec("reliability.md"), "## 14.");
    const std::string control = section(read_spec("control.md"), "## 6.");
    ASSERT_FALSE(wire.empty());
    ASSERT_FALSE(reliability.empty());
    ASSERT_FALSE(control.empty());

    std::set<std::string> documented = table_reasons(wire);
    for (const auto& r : table_reasons(control)) documented.insert(r);
    for (const auto& r : reasons_in(reliability)) documented.insert(r);
    std::set<std::string> counted;
    for (const auto& reason : kDropReasons) counted.insert(std::string(reason.name));

    for (const auto& name : counted) {
        EXPECT_TRUE(documented.contains(name)) << name << " is counted but no spec lists it";
    }
    for (const auto& name : documented) {
        EXPECT_TRUE(counted.contains(name)) << name << " is in a spec but never counted";
    }
}

TEST(DropReasons, BadFramesAreTheFrameAndHelloReasons) {
    EXPECT_TRUE(bad_frame(Drop::frame_truncated));
    EXPECT_TRUE(bad_frame(Drop::hello_bad_host));
    EXPECT_FALSE(bad_frame(Drop::ack_unknown_id));
    EXPECT_FALSE(bad_frame(Drop::control_garbage));
}

}  // namespace
}  // namespace peermq::detail
