// Constructors of the two Avahi backends, used by the public factories (avahi_factories.cpp).
#pragma once

#include <memory>

#include "peermq/discovery.hpp"
#include "peermq/discovery/avahi.hpp"

namespace peermq::detail {

// Connects to avahi-daemon at once: unavailable when it does not answer on D-Bus.
Result<std::unique_ptr<Discovery>> make_avahi_daemon_discovery(
    const discovery::AvahiOptions& options);

// Validates the options; the mDNS stack itself starts in start().
Result<std::unique_ptr<Discovery>> make_embedded_discovery(const discovery::AvahiOptions& options);

// Checks what both backends need: a plausible DNS-SD service type.
Status validate_service_type(const std::string& type);

}  // namespace peermq::detail
