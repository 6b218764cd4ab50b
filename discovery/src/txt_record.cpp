#include "txt_record.hpp"

#include "peermq/keys.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace peermq::detail {
namespace {

struct Entry {
    std::string_view key;
    std::optional<std::string_view> value;  // nullopt: a key without '=' (a boolean attribute)
};

Entry split(std::string_view text) {
    const auto equals = text.find('=');
    if (equals == std::string_view::npos) return {text, std::nullopt};
    return {text.substr(0, equals), text.substr(equals + 1)};
}

bool same_key(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// RFC 6763 §6.4: a key that appears more than once counts only the first time. An empty key (a
// string starting with '=') is not a key at all.
std::optional<Entry> find_key(const std::vector<std::string>& entries, std::string_view key) {
    for (const auto& text : entries) {
        const Entry entry = split(text);
        if (!entry.key.empty() && same_key(entry.key, key)) return entry;
    }
    return std::nullopt;
}

// Decimal only: no sign, no spaces, no leading '+', at most 10 digits.
std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 10) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

std::string_view reason(TxtProblem problem) noexcept {
    switch (problem) {
        case TxtProblem::bad_version: return "txt.bad_version";
        case TxtProblem::missing_id: return "txt.missing_id";
        case TxtProblem::bad_id: return "txt.bad_id";
        case TxtProblem::bad_port: return "txt.bad_port";
        case TxtProblem::bad_key: return "txt.bad_key";
        case TxtProblem::missing_cluster: return "txt.missing_cluster";
    }
    return "txt.unknown";
}

TxtParseResult parse_txt(const std::vector<std::string>& entries) {
    TxtRecord record;

    // The version comes first: a record of another version may use other keys.
    const auto v = find_key(entries, "v");
    if (!v || !v->value) return TxtProblem::bad_version;
    const auto version = parse_decimal(*v->value);
    if (!version || *version != kDiscoveryRecordVersion) return TxtProblem::bad_version;
    record.version = static_cast<std::uint32_t>(*version);

    const auto id = find_key(entries, "id");
    if (!id || !id->value || id->value->empty()) return TxtProblem::missing_id;
    const auto uuid = Uuid::parse(*id->value);
    if (!uuid || uuid->is_nil()) return TxtProblem::bad_id;
    record.id = *uuid;

    const auto pub = find_key(entries, "pub");
    if (!pub || !pub->value) return TxtProblem::bad_port;
    const auto port = parse_decimal(*pub->value);
    if (!port || *port == 0 || *port > 65535) return TxtProblem::bad_port;
    record.pub_port = static_cast<std::uint16_t>(*port);

    // The key is optional here (a plain node has none); when given it must give the id.
    if (const auto key = find_key(entries, "pk1")) {
        const auto derived = key->value ? node_id_of(*key->value) : Result<NodeId>(NodeId{});
        if (!derived || derived.value() != record.id) return TxtProblem::bad_key;
        record.public_key = std::string(*key->value);
    }

    const auto cluster = find_key(entries, "cluster");
    if (!cluster || !cluster->value || cluster->value->empty()) {
        return TxtProblem::missing_cluster;
    }
    record.cluster = std::string(*cluster->value);
    return record;
}

std::vector<std::string> format_txt(const ServiceRecord& self) {
    std::vector<std::string> entries = {
        "v=" + std::to_string(kDiscoveryRecordVersion),
        "id=" + self.id.to_string(),
        "pub=" + std::to_string(self.pub_port),
        "cluster=" + self.cluster,
    };
    if (!self.public_key.empty()) entries.push_back("pk1=" + self.public_key);
    return entries;
}

std::string instance_name(const ServiceRecord& self) {
    const std::string suffix = "-" + self.id.short_string();
    std::string name = self.name.empty() ? std::string("peermq") : self.name;
    if (name.size() + suffix.size() > kMaxInstanceNameBytes) {
        name.resize(kMaxInstanceNameBytes - suffix.size());
    }
    return name + suffix;
}

namespace {

// The instance without the " #2", " #3", ... that avahi_alternative_service_name() appends.
std::string_view without_collision_suffix(std::string_view instance) noexcept {
    const auto hash = instance.rfind(" #");
    if (hash != std::string_view::npos && hash + 2 < instance.size() &&
        std::all_of(instance.begin() + static_cast<std::ptrdiff_t>(hash) + 2, instance.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
        return instance.substr(0, hash);
    }
    return instance;
}

}  // namespace

std::string_view short_id_of_instance(std::string_view instance) noexcept {
    constexpr std::size_t kShort = 8;
    const std::string_view rest = without_collision_suffix(instance);
    if (rest.size() < kShort + 1 || rest[rest.size() - kShort - 1] != '-') return {};
    const std::string_view digits = rest.substr(rest.size() - kShort);
    const bool hex = std::all_of(digits.begin(), digits.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    return hex ? digits : std::string_view{};
}

bool peer_resolves_first(std::string_view instance, std::string_view self_short) noexcept {
    const std::string_view peer = short_id_of_instance(instance);
    // Both lower-case hex of the same length: the order of the strings is that of the numbers.
    return !peer.empty() && peer.size() == self_short.size() && peer > self_short;
}

std::string node_name_from_instance(std::string_view instance, const NodeId& id) {
    const std::string_view rest = without_collision_suffix(instance);
    const std::string suffix = "-" + id.short_string();
    if (rest.size() > suffix.size() && rest.ends_with(suffix)) {
        return std::string(rest.substr(0, rest.size() - suffix.size()));
    }
    return std::string(instance);
}

bool is_loopback_literal(std::string_view host) noexcept {
    if (host.starts_with("::ffff:")) host.remove_prefix(7);
    if (host == "::1") return true;
    return host.starts_with("127.");
}

}  // namespace peermq::detail
