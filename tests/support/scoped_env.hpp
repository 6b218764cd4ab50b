// Test helper: an environment variable set for one scope.
#pragma once

#include <stdlib.h>

#include <optional>
#include <string>

namespace peermq::testing {

// Sets (or, with a null value, unsets) an environment variable and restores its old value when
// destroyed. Not thread-safe: the environment is the process's.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_, old_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

}  // namespace peermq::testing
