// The static discovery backend: a fixed list of inbox endpoints.
#include <charconv>

#include "peermq/discovery.hpp"
#include "peermq/keys.hpp"
#include "security/node_key.hpp"

namespace peermq {
namespace {

class StaticDiscovery final : public Discovery {
public:
    explicit StaticDiscovery(std::vector<ServiceRecord> records) : records_(std::move(records)) {}

    std::string_view backend() const override { return "static"; }

    // Reports every endpoint at once, on the caller's thread.
    Status start(const ServiceRecord& /*self*/, DiscoverySink sink) override {
        for (const auto& record : records_)
            sink(DiscoveryEvent{DiscoveryEvent::Kind::found, record});
        return {};
    }
    void stop() override {}

private:
    std::vector<ServiceRecord> records_;
};

}  // namespace

Result<ServiceRecord> parse_endpoint(std::string_view endpoint) {
    const std::string original(endpoint);
    if (endpoint.starts_with("tcp://")) endpoint.remove_prefix(6);
    const auto [address, key] = detail::split_key_suffix(endpoint);
    endpoint = address;
    if (key.empty() && endpoint.find('#') != std::string_view::npos) {
        return make_error(ErrorCode::invalid_argument,
                          "peer endpoint '" + original +
                              "' has a bad key: host:port#KEY takes a 40-character Z85 key");
    }
    NodeId id;
    if (!key.empty()) {
        auto derived = node_id_of(key);
        if (!derived) {
            return make_error(
                ErrorCode::invalid_argument,
                "peer endpoint '" + original + "' has a bad key: " + derived.status().message());
        }
        id = derived.value();
    }
    const auto colon = endpoint.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == endpoint.size()) {
        return make_error(ErrorCode::invalid_argument,
                          "peer endpoint '" + original + "' is not host:port");
    }
    std::string_view host = endpoint.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string_view port_text = endpoint.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
        return make_error(ErrorCode::invalid_argument,
                          "peer endpoint '" + original + "' has a bad port");
    }
    ServiceRecord record;
    record.host = std::string(host);
    record.inbox_port = static_cast<std::uint16_t>(port);
    record.id = id;
    record.public_key = std::string(key);
    return record;
}

Result<std::unique_ptr<Discovery>> make_static_discovery(std::vector<std::string> endpoints) {
    std::vector<ServiceRecord> records;
    for (const auto& endpoint : endpoints) {
        auto record = parse_endpoint(endpoint);
        if (!record) return record.status();
        records.push_back(std::move(record).value());
    }
    return std::unique_ptr<Discovery>(std::make_unique<StaticDiscovery>(std::move(records)));
}

}  // namespace peermq
