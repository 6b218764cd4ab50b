// The public factories of peermq::discovery (peermq/discovery/avahi.hpp).
#include "avahi_common.hpp"
#include "backends.hpp"

namespace peermq {
namespace detail {

Status validate_service_type(const std::string& type) {
    // "_name._tcp" / "_name._udp" (RFC 6763 §7); Avahi checks the details again.
    const bool plausible = type.size() > 6 && type.front() == '_' &&
                           (type.ends_with("._tcp") || type.ends_with("._udp"));
    if (!plausible) {
        return make_error(ErrorCode::invalid_argument,
                          "DNS-SD service type '" + type + "' is not of the form _name._tcp");
    }
    return {};
}

}  // namespace detail

namespace discovery {

DiscoveryFactory avahi_daemon(AvahiOptions options) {
    return [options = std::move(options)] { return detail::make_avahi_daemon_discovery(options); };
}

DiscoveryFactory embedded(AvahiOptions options) {
    return [options = std::move(options)] { return detail::make_embedded_discovery(options); };
}

DiscoveryFactory automatic(AvahiOptions options) {
    return [options = std::move(options)]() -> Result<std::unique_ptr<Discovery>> {
        const std::string interfaces = options.interfaces.empty()
                                           ? std::string("all interfaces")
                                           : "interfaces " + detail::join(options.interfaces, ",");
        auto daemon = detail::make_avahi_daemon_discovery(options);
        if (daemon) {
            detail::log_line("using avahi-daemon over D-Bus (it answers; " + interfaces + ")",
                             LogLevel::info);
            return daemon;
        }
        auto embedded = detail::make_embedded_discovery(options);
        if (embedded) {
            detail::log_line("using the embedded Avahi stack on " + interfaces + " because " +
                                 daemon.status().message(),
                             LogLevel::info);
            return embedded;
        }
        detail::log_line(
            "no discovery: " + daemon.status().message() +
            "; and the embedded Avahi stack cannot run: " + embedded.status().message());
        return make_error(
            embedded.status().code(),
            daemon.status().message() +
                "; and the embedded Avahi stack cannot run: " + embedded.status().message());
    };
}

}  // namespace discovery
}  // namespace peermq
