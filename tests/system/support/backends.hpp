// The Avahi backends as the system tests build them: always restricted to lo.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>

#include "peermq/discovery.hpp"
#include "peermq/discovery/avahi.hpp"

namespace peermq::testing {

enum class Backend { daemon, embedded };

inline std::string backend_name(Backend backend) {
    return backend == Backend::daemon ? "daemon" : "embedded";
}

// Its name for --discovery (peermq_driver, the peermq tool): avahi for the daemon.
inline std::string discovery_name(Backend backend) {
    return backend == Backend::daemon ? "avahi" : "embedded";
}

// GoogleTest prints parameters with this (test names read ".../daemon  # GetParam() = daemon").
inline void PrintTo(Backend backend, std::ostream* out) { *out << backend_name(backend); }

inline discovery::AvahiOptions loopback_options() {
    discovery::AvahiOptions options;
    options.interfaces = {"lo"};
    return options;
}

inline DiscoveryFactory factory_for(Backend backend) {
    return backend == Backend::daemon ? discovery::avahi_daemon(loopback_options())
                                      : discovery::embedded(loopback_options());
}

// A backend object, or nullptr with a test failure saying why.
inline std::unique_ptr<Discovery> make_backend(Backend backend) {
    auto made = factory_for(backend)();
    EXPECT_TRUE(made.ok()) << backend_name(backend) << ": " << made.status().to_string()
                           << " (is scripts/avahi-lo.sh start done? ctest runs it as a fixture)";
    if (!made) return nullptr;
    return std::move(made).value();
}

struct BackendName {
    std::string operator()(const ::testing::TestParamInfo<Backend>& info) const {
        return backend_name(info.param);
    }
};

}  // namespace peermq::testing
