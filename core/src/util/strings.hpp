// Small string helpers shared by the core, the discovery backends and their logs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace peermq::detail {

// "a,b,c" from {"a", "b", "c"} and ",".
inline std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string text;
    for (const auto& item : items) {
        if (!text.empty()) text += separator;
        text += item;
    }
    return text;
}

}  // namespace peermq::detail
