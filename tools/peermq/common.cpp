#include "common.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <locale>
#include <sstream>

#include <msgpack.hpp>

#include "observability/stats_fields.hpp"

namespace peermq::cli {

// ---------------------------------------------------------------------------------------------
// Cluster options

void add_cluster_options(CLI::App& command, ClusterOptions& options, bool with_data_dir) {
    command
        .add_option("--name", options.name, "Name of the tool's node (default peermq-cli-<pid>)")
        ->type_name("NAME");
    command.add_option("--cluster", options.cluster, "Cluster to join")
        ->type_name("NAME")
        ->envname("PEERMQ_CLUSTER")
        ->capture_default_str();
    command
        .add_option("--interface", options.interface,
                    "Interface to bind and discover on (a name such as lo or eth0, or * for all)")
        ->type_name("IFACE")
        ->envname("PEERMQ_INTERFACE")
        ->capture_default_str();
    command
        .add_option("--discovery", options.discovery,
                    "Peer discovery: auto (the avahi-daemon if it answers, else the embedded "
                    "stack), avahi, embedded, or static (only --peer and PEERMQ_PEERS)")
        ->check(CLI::IsMember({"auto", "avahi", "embedded", "static"}))
        ->capture_default_str();
    command
        .add_option("--peer", options.peers,
                    "Static peer HOST:PORT (its inbox); repeatable; PEERMQ_PEERS adds more")
        ->check(CLI::Validator(
            [](std::string& value) -> std::string {
                auto parsed = parse_endpoint(value);
                return parsed ? std::string() : parsed.status().message();
            },
            ""))
        ->type_name("HOST:PORT");
    command.add_option("--port", options.port, "Inbox port of the tool's node (default ephemeral)")
        ->check(count_validator())
        ->type_name("PORT");
    if (with_data_dir) {
        command
            .add_option("--data-dir", options.data_dir,
                        "Journal directory of the tool's node (messages not yet acked survive "
                        "it and are sent on the next run with the same directory)")
            ->type_name("DIR");
    }
}

Node open_node(const ClusterOptions& cluster) {
    NodeOptions options;
    options.name = cluster.name.empty() ? "peermq-cli-" + std::to_string(::getpid()) : cluster.name;
    options.cluster = cluster.cluster;
    options.interface = cluster.interface;
    options.inbox_port = cluster.port;
    options.peers = cluster.peers;
    options.data_dir = cluster.data_dir;
    // mDNS only where the user pointed the node: never every interface behind their back.
    discovery::AvahiOptions avahi;
    const bool every_interface = cluster.interface == "*";
    if (!every_interface) avahi.interfaces = {cluster.interface};
    if (cluster.discovery == "embedded" && every_interface) {
        throw CliError(
            "--discovery embedded needs --interface IFACE (e.g. --interface lo): the embedded "
            "mDNS stack never runs on every interface",
            2);
    }
    if (cluster.discovery == "auto" && every_interface) {
        // The embedded stack needs an interface: without one, `auto` is the daemon or nothing,
        // and the error says which options would do.
        options.discovery = [avahi]() -> Result<std::unique_ptr<Discovery>> {
            auto daemon = discovery::avahi_daemon(avahi)();
            if (daemon) return daemon;
            return make_error(daemon.status().code(),
                              daemon.status().message() +
                                  "; without it, give --interface IFACE (e.g. --interface lo "
                                  "or eth0) for mDNS through the embedded stack, or "
                                  "--discovery static with --peer HOST:PORT");
        };
    } else if (cluster.discovery == "auto") {
        options.discovery = discovery::automatic(avahi);
    } else if (cluster.discovery == "avahi") {
        options.discovery = discovery::avahi_daemon(avahi);
    } else if (cluster.discovery == "embedded") {
        options.discovery = discovery::embedded(avahi);
    }
    auto node = Node::create(std::move(options));
    if (!node) throw CliError("cannot start a node: " + node.status().to_string());
    return std::move(node).value();
}

// ---------------------------------------------------------------------------------------------
// Control endpoint

void add_target_options(CLI::App& command, NodeTarget& target) {
    command
        .add_option("--data-dir", target.data_dir,
                    "Data directory of the node (running: through its control endpoint; "
                    "stopped: its journal file, where the command allows it)")
        ->type_name("DIR");
    command
        .add_option("--control", target.control,
                    "Control endpoint of a running node (ipc://PATH or tcp://127.0.0.1:PORT)")
        ->type_name("ENDPOINT");
}

void check_target(const NodeTarget& target) {
    if (target.data_dir.empty() == target.control.empty())
        throw CliError("give one of --data-dir DIR or --control ENDPOINT", 2);
    if (target.data_dir.empty()) return;
    std::error_code error;
    const auto status = std::filesystem::status(target.data_dir, error);
    if (!std::filesystem::exists(status))
        throw CliError("no such data directory: " + target.data_dir);
    if (!std::filesystem::is_directory(status))
        throw CliError("not a directory: " + target.data_dir);
}

ControlClient connect_control(const NodeTarget& target) {
    check_target(target);
    std::string endpoint = target.control;
    if (endpoint.empty()) {
        if (!data_dir_in_use(target.data_dir))
            throw CliError("no node is running on " + target.data_dir);
        endpoint = control_endpoint_for_data_dir(target.data_dir);
    }
    auto client = ControlClient::connect(endpoint);
    if (!client) {
        throw CliError("cannot reach the control endpoint " + endpoint + ": " +
                       client.status().to_string());
    }
    return std::move(client).value();
}

std::string control_hint(const NodeTarget& target) {
    if (!target.control.empty()) return {};
    return " (a node holds " + target.data_dir +
           " but does not answer on its default control endpoint; if the node set another "
           "one, give it with --control)";
}

// ---------------------------------------------------------------------------------------------
// Durations and times

namespace {

// Parses a non-negative decimal number at the front of `text`, advancing it.
std::optional<double> take_number(std::string_view& text) {
    std::size_t end = 0;
    bool dot = false;
    while (end < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[end])) || (text[end] == '.' && !dot))) {
        dot = dot || text[end] == '.';
        ++end;
    }
    if (end == 0 || (end == 1 && dot)) return std::nullopt;
    double value = 0;
    std::istringstream in{std::string(text.substr(0, end))};
    in.imbue(std::locale::classic());
    if (!(in >> value)) return std::nullopt;
    text.remove_prefix(end);
    return value;
}

std::optional<int> take_digits(std::string_view& text, std::size_t count) {
    if (text.size() < count) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    text.remove_prefix(count);
    return value;
}

bool take_char(std::string_view& text, char c) {
    if (text.empty() || text.front() != c) return false;
    text.remove_prefix(1);
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
    auto year = take_digits(text, 4);
    if (!year || !take_char(text, '-')) return std::nullopt;
    auto month = take_digits(text, 2);
    if (!month || !take_char(text, '-')) return std::nullopt;
    auto day = take_digits(text, 2);
    if (!day || *month < 1 || *month > 12 || *day < 1 || *day > 31) return std::nullopt;
    int hour = 0, minute = 0, second = 0, millis = 0;
    if (!text.empty() && (text.front() == 'T' || text.front() == 't' || text.front() == ' ')) {
        text.remove_prefix(1);
        auto h = take_digits(text, 2);
        if (!h || !take_char(text, ':')) return std::nullopt;
        auto m = take_digits(text, 2);
        if (!m) return std::nullopt;
        hour = *h;
        minute = *m;
        if (take_char(text, ':')) {
            auto s = take_digits(text, 2);
            if (!s) return std::nullopt;
            second = *s;
            if (take_char(text, '.') || take_char(text, ',')) {
                int digits = 0, fraction = 0;
                while (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front()))) {
                    if (digits < 3) fraction = fraction * 10 + (text.front() - '0');
                    ++digits;
                    text.remove_prefix(1);
                }
                if (digits == 0) return std::nullopt;
                for (int i = digits; i < 3; ++i) fraction *= 10;
                millis = fraction;
            }
        }
        if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    }
    std::int64_t offset_minutes = 0;
    if (take_char(text, 'Z') || take_char(text, 'z')) {
    } else if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
        const int sign = text.front() == '-' ? -1 : 1;
        text.remove_prefix(1);
        auto h = take_digits(text, 2);
        if (!h) return std::nullopt;
        take_char(text, ':');
        auto m = text.empty() ? std::optional<int>(0) : take_digits(text, 2);
        if (!m || *h > 23 || *m > 59) return std::nullopt;
        offset_minutes = sign * (*h * 60 + *m);
    }
    if (!text.empty()) return std::nullopt;
    const std::int64_t days =
        days_from_civil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
    const std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second;
    return (seconds - offset_minutes * 60) * 1000 + millis;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text == "0") return std::chrono::milliseconds(0);
    if (text.empty()) return std::nullopt;
    double total_ms = 0;
    while (!text.empty()) {
        auto number = take_number(text);
        if (!number) return std::nullopt;
        double unit = 0;
        if (text.starts_with("ms")) {
            unit = 1;
            text.remove_prefix(2);
        } else if (text.starts_with("s")) {
            unit = 1000;
            text.remove_prefix(1);
        } else if (text.starts_with("m")) {
            unit = 60'000;
            text.remove_prefix(1);
        } else if (text.starts_with("h")) {
            unit = 3'600'000;
            text.remove_prefix(1);
        } else if (text.starts_with("d")) {
            unit = 86'400'000;
            text.remove_prefix(1);
        } else {
            return std::nullopt;
        }
        total_ms += *number * unit;
    }
    if (!std::isfinite(total_ms) || total_ms > 1e15) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now) {
    if (auto iso = parse_iso8601(text)) return iso;
    if (auto ago = parse_duration(text)) return now - ago->count();
    return std::nullopt;
}

CLI::Validator duration_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (parse_duration(value)) return {};
            return "'" + value + "' is not a duration (examples: 500ms, 30s, 10m, 2h, 1d, 1h30m)";
        },
        "");
}

CLI::Option* add_duration_option(CLI::App& command, const std::string& name, std::string& value,
                                 const std::string& description) {
    return command.add_option(name, value, description)
        ->check(duration_validator())
        ->type_name("DUR")
        ->capture_default_str();
}

CLI::Validator count_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            std::uint64_t number = 0;
            const char* end = value.data() + value.size();
            const auto [at, error] = std::from_chars(value.data(), end, number);
            const bool digits =
                !value.empty() && std::isdigit(static_cast<unsigned char>(value[0]));
            if (digits && error == std::errc() && at == end) return {};
            if (digits && error == std::errc::result_out_of_range) {
                return "'" + value + "' is too large";
            }
            return "'" + value + "' is not a whole number from 0";
        },
        "");
}

CLI::Validator time_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (parse_time(value, 0)) return {};
            return "'" + value +
                   "' is not a time (ISO-8601 such as 2024-05-01T12:00:00Z, or a duration "
                   "before now such as 10m or 2h)";
        },
        "");
}

std::chrono::milliseconds duration_or_throw(const std::string& text) {
    auto value = parse_duration(text);
    if (!value) throw CliError("'" + text + "' is not a duration", 2);
    return *value;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string format_time(std::int64_t unix_ms) {
    if (unix_ms == 0) return "-";
    std::int64_t seconds = unix_ms / 1000;
    std::int64_t millis = unix_ms % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    if (!::gmtime_r(&t, &tm)) return std::to_string(unix_ms);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(millis));
    return text;
}

std::string format_age(std::int64_t unix_ms, std::int64_t now) {
    if (unix_ms == 0) return "never";
    const double seconds = static_cast<double>(std::max<std::int64_t>(0, now - unix_ms)) / 1000.0;
    char text[32];
    if (seconds < 60) {
        std::snprintf(text, sizeof text, "%.1fs ago", seconds);
    } else if (seconds < 3600) {
        std::snprintf(text, sizeof text, "%.0fm ago", seconds / 60);
    } else if (seconds < 86400) {
        std::snprintf(text, sizeof text, "%.0fh ago", seconds / 3600);
    } else {
        std::snprintf(text, sizeof text, "%.0fd ago", seconds / 86400);
    }
    return text;
}

std::string format_seconds(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", seconds);
    return text;
}

// ---------------------------------------------------------------------------------------------
// Payloads

namespace {

constexpr std::size_t kMaxDepth = 64;

Json msgpack_to_json(const msgpack::object& object, std::size_t depth);

std::string map_key(const msgpack::object& key, std::size_t depth) {
    if (key.type == msgpack::type::STR) return std::string(key.via.str.ptr, key.via.str.size);
    return dump(msgpack_to_json(key, depth));
}

Json msgpack_to_json(const msgpack::object& object, std::size_t depth) {
    if (depth > kMaxDepth) throw std::runtime_error("too deep");
    switch (object.type) {
        case msgpack::type::NIL: return nullptr;
        case msgpack::type::BOOLEAN: return object.via.boolean;
        case msgpack::type::POSITIVE_INTEGER: return object.via.u64;
        case msgpack::type::NEGATIVE_INTEGER: return object.via.i64;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: return object.via.f64;
        case msgpack::type::STR: return std::string(object.via.str.ptr, object.via.str.size);
        case msgpack::type::BIN:
            return Json{{"$bin", hex({object.via.bin.ptr, object.via.bin.size})}};
        case msgpack::type::EXT:
            return Json{{"$ext", object.via.ext.type()},
                        {"data", hex({object.via.ext.data(), object.via.ext.size})}};
        case msgpack::type::ARRAY: {
            Json array = Json::array();
            for (std::uint32_t i = 0; i < object.via.array.size; ++i)
                array.push_back(msgpack_to_json(object.via.array.ptr[i], depth + 1));
            return array;
        }
        case msgpack::type::MAP: {
            Json map = Json::object();
            for (std::uint32_t i = 0; i < object.via.map.size; ++i) {
                const auto& kv = object.via.map.ptr[i];
                map[map_key(kv.key, depth + 1)] = msgpack_to_json(kv.val, depth + 1);
            }
            return map;
        }
    }
    throw std::runtime_error("unknown MessagePack type");
}

// The JSON of the one MessagePack value `bytes` holds, or nullopt.
std::optional<Json> decode_msgpack(std::string_view bytes) {
    if (bytes.empty()) return std::nullopt;
    try {
        // No container can hold more elements than there are bytes left: this bound keeps a
        // forged length from allocating gigabytes.
        const std::size_t n = bytes.size();
        const msgpack::unpack_limit limit(n, n, n, n, n, kMaxDepth);
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
        if (offset != bytes.size()) return std::nullopt;
        return msgpack_to_json(handle.get(), 0);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

bool is_printable_utf8(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
            ++i;
            continue;
        }
        std::size_t length = 0;
        std::uint32_t code = 0;
        if (c >= 0xc2 && c <= 0xdf) {
            length = 2;
            code = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            length = 3;
            code = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            length = 4;
            code = c & 0x07;
        } else {
            return false;
        }
        if (i + length > n) return false;
        for (std::size_t k = 1; k < length; ++k) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            code = (code << 6) | (p[i + k] & 0x3f);
        }
        const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
        if (overlong || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
        if (code >= 0x80 && code <= 0x9f) return false;  // C1 controls
        i += length;
    }
    return true;
}

std::string hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 0xf]);
    }
    return out;
}

DecodedPayload decode_payload(const Payload& payload) {
    const std::string_view bytes = payload.view();
    if (auto json = decode_msgpack(bytes)) return {PayloadKind::msgpack, std::move(*json)};
    if (is_printable_utf8(bytes)) return {PayloadKind::text, std::string(bytes)};
    return {PayloadKind::binary, hex(bytes)};
}

std::string_view to_string(PayloadKind kind) noexcept {
    switch (kind) {
        case PayloadKind::msgpack: return "msgpack";
        case PayloadKind::text: return "text";
        case PayloadKind::binary: return "binary";
    }
    return "binary";
}

std::string payload_line(const Payload& payload) {
    DecodedPayload decoded = decode_payload(payload);
    if (decoded.kind == PayloadKind::msgpack && !decoded.value.is_string())
        return dump(decoded.value);
    return decoded.value.get<std::string>();
}

std::string dump(const Json& value, int indent) {
    return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// JSON of library values

Json to_json(const Headers& headers) {
    Json out = Json::object();
    for (const auto& [key, value] : headers) out[key] = value;
    return out;
}

Json to_json(const PeerInfo& peer) {
    return Json{
        {"name", peer.name},
        {"id", peer.id.is_nil() ? Json(nullptr) : Json(peer.id.to_string())},
        {"cluster", peer.cluster},
        {"state", std::string(to_string(peer.state))},
        {"inbox", peer.inbox_endpoint},
        {"pub", peer.pub_endpoint},
        {"queues", peer.queues},
        {"topics", peer.topics},
        {"last_heard",
         peer.last_heard_ms == 0 ? Json(nullptr) : Json(format_time(peer.last_heard_ms))},
        {"last_heard_ms", peer.last_heard_ms},
        {"frames_sent", peer.frames_sent},
        {"frames_received", peer.frames_received},
        {"queues_omitted", peer.queues_omitted},
        {"topics_omitted", peer.topics_omitted},
    };
}

// The counters of a queue or topic, by their names in detail::kChannelStatsFields; a histogram
// is summarised, in µs, under its name with _us.
Json to_json(const ChannelStats& s) {
    Json out = Json::object();
    detail::for_each_stats_field<ChannelStats>([&](const auto& field) {
        const auto& value = s.*field.member;
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, LatencyHistogram>) {
            out[std::string(field.name) + "_us"] = {
                {"count", value.count},
                {"mean", value.count == 0 ? 0 : value.sum_us / value.count},
                {"p50", value.quantile_us(0.5)},
                {"p99", value.quantile_us(0.99)}};
        } else {
            out[std::string(field.name)] = value;
        }
    });
    return out;
}

namespace {

Json stats_json(const NodeId& id) { return id.to_string(); }
Json stats_json(const std::string& text) { return text; }
Json stats_json(std::uint64_t count) { return count; }
Json stats_json(const std::map<std::string, std::uint64_t>& counts) { return counts; }

Json stats_json(const std::map<std::string, ChannelStats>& channels) {
    Json out = Json::object();
    for (const auto& [name, s] : channels) out[name] = to_json(s);
    return out;
}

Json stats_json(const std::vector<PeerInfo>& peers) {
    Json out = Json::array();
    for (const auto& peer : peers) out.push_back(to_json(peer));
    return out;
}

}  // namespace

// Every field of detail::kNodeStatsFields, under its name.
Json to_json(const NodeStats& stats) {
    Json out = Json::object();
    detail::for_each_stats_field<NodeStats>(
        [&](const auto& field) { out[std::string(field.name)] = stats_json(stats.*field.member); });
    return out;
}

// ---------------------------------------------------------------------------------------------
// Output

std::string Table::render() const {
    std::vector<std::size_t> widths(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    };
    measure(header_);
    for (const auto& row : rows_) measure(row);
    std::string out;
    auto line = [&](const std::vector<std::string>& row) {
        std::string text;
        for (std::size_t i = 0; i < widths.size(); ++i) {
            const std::string cell = i < row.size() ? row[i] : "";
            text += cell;
            if (i + 1 < widths.size()) text += std::string(widths[i] - cell.size() + 2, ' ');
        }
        while (!text.empty() && text.back() == ' ') text.pop_back();
        out += text + "\n";
    };
    line(header_);
    for (const auto& row : rows_) line(row);
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator,
                 std::string_view empty) {
    if (items.empty()) return std::string(empty);
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

std::string join_names(const std::vector<std::string>& names, std::uint64_t omitted,
                       std::size_t shown) {
    if (names.empty() && omitted == 0) return "-";
    std::string out;
    const std::size_t listed = std::min(names.size(), shown);
    for (std::size_t i = 0; i < listed; ++i) {
        if (i > 0) out += ",";
        out += names[i];
    }
    const std::uint64_t more = names.size() - listed + omitted;
    if (more > 0) out += (out.empty() ? "+" : " +") + std::to_string(more) + " more";
    return out;
}

std::string truncate(std::string text, std::size_t width) {
    for (auto& c : text) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (text.size() <= width) return text;
    // Cut on a UTF-8 character boundary.
    std::size_t cut = width > 3 ? width - 3 : 0;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
    return text.substr(0, cut) + "...";
}

Interrupts::Interrupts() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) throw CliError(std::string("signalfd failed: ") + std::strerror(errno));
}

Interrupts::~Interrupts() {
    if (fd_ >= 0) ::close(fd_);
}

bool Interrupts::received() {
    signalfd_siginfo info;
    while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) received_ = true;
    return received_;
}

bool Interrupts::wait(std::chrono::milliseconds timeout, int wakeup_fd) {
    if (received()) return true;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wakeup_fd, POLLIN, 0}};
    const int count = wakeup_fd >= 0 ? 2 : 1;
    const int ms = static_cast<int>(std::clamp<std::int64_t>(timeout.count(), 0, 1'000'000));
    (void)::poll(fds, count, ms);
    return received();
}

Wakeup::Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw CliError(std::string("eventfd failed: ") + std::strerror(errno));
}

Wakeup::~Wakeup() {
    if (fd_ >= 0) ::close(fd_);
}

void Wakeup::notify() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
}

void Wakeup::drain() noexcept {
    std::uint64_t value;
    (void)!::read(fd_, &value, sizeof value);
}

Progress::Progress(std::string label, std::uint64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(std::uint64_t done, bool force) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    char text[256];
    if (total_ > 0) {
        constexpr int kWidth = 30;
        const double fraction =
            std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
        const int filled = static_cast<int>(fraction * kWidth);
        std::string bar(static_cast<std::size_t>(filled), '=');
        if (filled < kWidth) bar += '>';
        bar.resize(kWidth, ' ');
        std::snprintf(text, sizeof text, "\r%s [%s] %llu/%llu %3.0f%% %.0f msg/s\033[K",
                      label_.c_str(), bar.c_str(), static_cast<unsigned long long>(done),
                      static_cast<unsigned long long>(total_), fraction * 100, rate);
    } else {
        std::snprintf(text, sizeof text, "\r%s %llu %.0f msg/s\033[K", label_.c_str(),
                      static_cast<unsigned long long>(done), rate);
    }
    std::fputs(text, stderr);
    std::fflush(stderr);
}

void Progress::finish() {
    if (!enabled_ || !drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
}

std::string count_and_rate(std::uint64_t count, std::chrono::steady_clock::duration elapsed) {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    const double rate = seconds > 0 ? static_cast<double>(count) / seconds : 0;
    char text[128];
    std::snprintf(text, sizeof text, "%llu message%s in %.3f s (%.0f msg/s)",
                  static_cast<unsigned long long>(count), count == 1 ? "" : "s", seconds, rate);
    return text;
}

void note(const std::string& text, bool prefixed) {
    std::fprintf(stderr, "%s%s\n", prefixed ? "peermq: " : "", text.c_str());
    std::fflush(stderr);
}

}  // namespace peermq::cli
