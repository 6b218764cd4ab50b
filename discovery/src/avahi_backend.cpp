#include "avahi_backend.hpp"

namespace peermq::detail {

AvahiBackend::AvahiBackend(discovery::AvahiOptions options)
    : options_(std::move(options)),
      protocol_(options_.ipv6 ? AVAHI_PROTO_UNSPEC : AVAHI_PROTO_INET) {}

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
