// Test helper: a log sink that keeps every record.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "peermq/log.hpp"

namespace peermq::testing {

// Keeps every record logged through sink(). Thread-safe; must outlive the sinks it hands out.
class LogCapture {
public:
    LogSink sink() {
        return [this](const LogRecord& r) {
            std::lock_guard lock(mutex_);
            records_.push_back(r);
        };
    }
    std::vector<LogRecord> records() const {
        std::lock_guard lock(mutex_);
        return records_;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return records_.size();
    }
    // The first record with this message whose fields include every given key=value.
    std::optional<LogRecord> find(
        std::string_view message,
        std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {}) const {
        std::lock_guard lock(mutex_);
        for (const auto& r : records_) {
            if (r.message != message) continue;
            bool all = true;
            for (const auto& [key, value] : fields) {
                const auto* field = r.find(key);
                if (!field || field->value != value) all = false;
            }
            if (all) return r;
        }
        return std::nullopt;
    }
    std::size_t count(std::string_view message) const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (const auto& r : records_) n += r.message == message ? 1 : 0;
        return n;
    }

private:
    mutable std::mutex mutex_;
    std::vector<LogRecord> records_;
};

}  // namespace peermq::testing
