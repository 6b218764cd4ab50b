#include "avahi_backend.hpp"

#include "platform/interfaces.hpp"

namespace peermq::detail {

AvahiBackend::AvahiBackend(discovery::AvahiOptions options)
    : options_(std::move(options)),
      protocol_(options_.ipv6 ? AVAHI_PROTO_UNSPEC : AVAHI_PROTO_INET) {}

std::vector<std::string> AvahiBackend::interfaces() const {
    if (!options_.interfaces.empty()) return options_.interfaces;
    return mdns_joined_devices();
}

void AvahiBackend::stop() {
    if (!started_ || stopping_) return;
    poll_.stop([&] {
        stopping_ = true;
        teardown();
    });
}

Result<std::vector<int>> AvahiBackend::begin(const ServiceRecord& self, DiscoverySink sink) {
    auto indexes = interface_indexes(options_.interfaces);
    if (!indexes) return indexes.status();
    if (Status valid = announcement_.set(self); !valid.ok()) return valid;
    relay_.reset(PeerTable(self.id, self.cluster), std::move(sink));
    return indexes;
}

}  // namespace peermq::detail
