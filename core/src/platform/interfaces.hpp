// Network interface lookup for binding and announcing.
#pragma once

#include <string>

#include "peermq/status.hpp"

namespace peermq::detail {

// The IPv4 address of interface `name` ("lo" → "127.0.0.1"); unknown_interface if it does not
// exist or has no IPv4 address.
Result<std::string> interface_ipv4(const std::string& name);

// Resolves a host name or literal to an IPv4 literal ("localhost" → "127.0.0.1").
Result<std::string> resolve_ipv4(const std::string& host);

}  // namespace peermq::detail
