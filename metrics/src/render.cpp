// NodeStats as Prometheus text 0.0.4 or OpenMetrics 1.0.0 text. Every family's samples are
// written together (OpenMetrics forbids interleaving), in a fixed order, so two scrapes of the
// same stats give the same bytes.
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "metrics_internal.hpp"
#include "observability/stats_fields.hpp"
#include "peermq/metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace peermq {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one (overlong
// forms, surrogates and code points past U+10FFFF included).
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    std::size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        length = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + length > text.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < length; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    }
    return length;
}

void append_double(std::string& out, double value) {
    char buffer[64];
    // Shortest round-trip form, switching to an exponent the way Go's 'g' does (as Prometheus
    // prints numbers): 2e-06, 0.000128, 2147.483648.
    const auto [end, ec] =
        std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::general);
    out.append(buffer, ec == std::errc{} ? end : buffer);
}

struct Label {
    std::string_view name;
    std::string_view value;
};

class Writer {
public:
    explicit Writer(MetricsFormat format) : format_(format) {}

    // Metadata of a family. `name` is the family name, without `_total` for counters.
    void family(std::string_view name, std::string_view type, std::string_view help,
                std::string_view unit = {}) {
        const bool counter = type == "counter";
        std::string meta_name(name);
        if (counter && format_ == MetricsFormat::prometheus) meta_name += "_total";
        out_ += "# HELP ";
        out_ += meta_name;
        out_ += ' ';
        append_help(help);
        out_ += "\n# TYPE ";
        out_ += meta_name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
        if (!unit.empty() && format_ == MetricsFormat::openmetrics) {
            out_ += "# UNIT ";
            out_ += meta_name;
            out_ += ' ';
            out_ += unit;
            out_ += '\n';
        }
    }

    void sample(std::string_view name, std::string_view suffix, std::initializer_list<Label> labels,
                std::uint64_t value, const Label* extra = nullptr) {
        begin_sample(name, suffix, labels, extra);
        out_ += std::to_string(value);
        out_ += '\n';
    }

    void sample_double(std::string_view name, std::string_view suffix,
                       std::initializer_list<Label> labels, double value,
                       const Label* extra = nullptr) {
        begin_sample(name, suffix, labels, extra);
        append_double(out_, value);
        out_ += '\n';
    }

    std::string finish() {
        if (format_ == MetricsFormat::openmetrics) out_ += "# EOF\n";
        return std::move(out_);
    }

private:
    void begin_sample(std::string_view name, std::string_view suffix,
                      std::initializer_list<Label> labels, const Label* extra) {
        out_ += name;
        out_ += suffix;
        bool first = true;
        const auto label = [&](const Label& l) {
            out_ += first ? '{' : ',';
            first = false;
            out_ += l.name;
            out_ += "=\"";
            append_label_value(l.value);
            out_ += '"';
        };
        for (const auto& l : labels) label(l);
        if (extra != nullptr) label(*extra);
        if (!first) out_ += '}';
        out_ += ' ';
    }

    void append_label_value(std::string_view value) {
        for (std::size_t i = 0; i < value.size();) {
            const std::size_t length = utf8_sequence(value, i);
            if (length == 0) {
                out_ += kReplacement;
                ++i;
                continue;
            }
            if (length == 1) {
                switch (value[i]) {
                    case '\\': out_ += "\\\\"; break;
                    case '"': out_ += "\\\""; break;
                    case '\n': out_ += "\\n"; break;
                    default: out_ += value[i];
                }
            } else {
                out_.append(value.substr(i, length));
            }
            i += length;
        }
    }

    void append_help(std::string_view help) {
        for (const char c : help) {
            if (c == '\\') {
                out_ += "\\\\";
            } else if (c == '\n') {
                out_ += "\\n";
            } else {
                out_ += c;
            }
        }
    }

    MetricsFormat format_;
    std::string out_;
};

// One histogram bucket per LatencyHistogram bucket except the open-ended last one, which only the
// +Inf bucket covers. Bucket i holds [2^i, 2^(i+1)) µs, so le = 2^(i+1) µs bounds it from above.
void write_histogram(Writer& w, std::string_view name, std::initializer_list<Label> labels,
                     const LatencyHistogram& h) {
    std::uint64_t cumulative = 0;
    std::string le;
    for (std::size_t i = 0; i + 1 < h.buckets.size(); ++i) {
        cumulative += h.buckets[i];
        le.clear();
        append_double(le, static_cast<double>(std::uint64_t{2} << i) / 1e6);
        const Label bound{"le", le};
        w.sample(name, "_bucket", labels, cumulative, &bound);
    }
    const Label inf{"le", "+Inf"};
    w.sample(name, "_bucket", labels, h.count, &inf);
    w.sample(name, "_count", labels, h.count);
    w.sample_double(name, "_sum", labels, static_cast<double>(h.sum_us) / 1e6);
}

// The families of the channel fields (detail::kChannelStatsFields), each with a sample per queue
// or topic: `prefix` is peermq_queue or peermq_topic, `label` names the channel. A histogram
// goes only to the channels it is for (its only_for).
void write_channels(Writer& w, std::string_view node, std::string_view prefix,
                    std::string_view label, const std::map<std::string, ChannelStats>& channels) {
    if (channels.empty()) return;
    detail::for_each_stats_field<ChannelStats>([&](const auto& field) {
        const std::string name = std::string(prefix) + "_" + std::string(field.metric);
        using Value = typename std::decay_t<decltype(field)>::value_type;
        if constexpr (std::is_same_v<Value, LatencyHistogram>) {
            if (field.only_for != label) return;
            w.family(name, "histogram", field.help, "seconds");
            for (const auto& [channel, stats] : channels) {
                write_histogram(w, name, {{"node", node}, {label, channel}}, stats.*field.member);
            }
        } else {
            const bool counter = field.kind == detail::StatsKind::counter;
            w.family(name, counter ? "counter" : "gauge", field.help);
            for (const auto& [channel, stats] : channels) {
                w.sample(name, counter ? "_total" : "", {{"node", node}, {label, channel}},
                         stats.*field.member);
            }
        }
    });
}

constexpr PeerState kPeerStates[] = {PeerState::connecting, PeerState::alive, PeerState::suspect,
                                     PeerState::down};

struct PeerLabels {
    std::string peer;
    std::string peer_id;
    const PeerInfo* info;
};

// A peer is named by its name, or its endpoint while it has none; two entries with the same
// labels would be one series twice (invalid), so only the first is kept.
std::vector<PeerLabels> peer_labels(const std::vector<PeerInfo>& peers) {
    std::vector<PeerLabels> out;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& p : peers) {
        PeerLabels labels{p.name.empty() ? p.inbox_endpoint : p.name,
                          p.id.is_nil() ? std::string() : p.id.to_string(), &p};
        if (!seen.emplace(labels.peer, labels.peer_id).second) continue;
        out.push_back(std::move(labels));
    }
    return out;
}

// `name` and `help`: the family counting the peers in each state.
void write_peers(Writer& w, std::string_view node, std::string_view name, std::string_view help,
                 const std::vector<PeerInfo>& peers) {
    w.family(name, "gauge", help);
    for (const PeerState state : kPeerStates) {
        std::uint64_t n = 0;
        for (const auto& p : peers) n += p.state == state ? 1 : 0;
        w.sample(name, "", {{"node", node}, {"state", to_string(state)}}, n);
    }
    const auto labelled = peer_labels(peers);
    if (labelled.empty()) return;
    w.family("peermq_peer_up", "gauge", "1 while the peer is alive, else 0.");
    for (const auto& p : labelled) {
        w.sample("peermq_peer_up", "", {{"node", node}, {"peer", p.peer}, {"peer_id", p.peer_id}},
                 p.info->state == PeerState::alive ? 1 : 0);
    }
    w.family("peermq_peer_state", "gauge", "1 for the peer's current state, 0 for the others.");
    for (const auto& p : labelled) {
        for (const PeerState state : kPeerStates) {
            const Label state_label{"state", to_string(state)};
            w.sample("peermq_peer_state", "",
                     {{"node", node}, {"peer", p.peer}, {"peer_id", p.peer_id}},
                     p.info->state == state ? 1 : 0, &state_label);
        }
    }
    w.family("peermq_peer_frames_sent", "counter", "Frames sent to the peer.");
    for (const auto& p : labelled) {
        w.sample("peermq_peer_frames_sent", "_total",
                 {{"node", node}, {"peer", p.peer}, {"peer_id", p.peer_id}}, p.info->frames_sent);
    }
    w.family("peermq_peer_frames_received", "counter", "Frames received from the peer.");
    for (const auto& p : labelled) {
        w.sample("peermq_peer_frames_received", "_total",
                 {{"node", node}, {"peer", p.peer}, {"peer_id", p.peer_id}},
                 p.info->frames_received);
    }
    bool heard = false;
    for (const auto& p : labelled) heard = heard || p.info->last_heard_ms > 0;
    if (!heard) return;
    w.family("peermq_peer_last_heard_timestamp_seconds", "gauge",
             "Unix time of the last frame from the peer (no sample until one arrives).", "seconds");
    for (const auto& p : labelled) {
        if (p.info->last_heard_ms <= 0) continue;
        w.sample_double("peermq_peer_last_heard_timestamp_seconds", "",
                        {{"node", node}, {"peer", p.peer}, {"peer_id", p.peer_id}},
                        static_cast<double>(p.info->last_heard_ms) / 1e3);
    }
}

void write_reasons(Writer& w, std::string_view node, std::string_view name, std::string_view help,
                   const std::map<std::string, std::uint64_t>& reasons, std::string_view label) {
    if (reasons.empty()) return;
    w.family(name, "counter", help);
    for (const auto& [reason, count] : reasons) {
        w.sample(name, "_total", {{"node", node}, {label, reason}}, count);
    }
}

// The letters in the node's dead-letter store now, a sample per queue and reason. Not in the
// stats field table (a map of maps it has no kind for): written after the table's families.
void write_dead_letters(
    Writer& w, std::string_view node,
    const std::map<std::string, std::map<std::string, std::uint64_t>>& dead_letters) {
    if (dead_letters.empty()) return;
    constexpr std::string_view kName = "peermq_dead_letters";
    w.family(kName, "gauge",
             "Letters in the dead-letter store now, by queue and reason (replay and purge take "
             "them out).");
    for (const auto& [queue, by_reason] : dead_letters) {
        for (const auto& [reason, count] : by_reason) {
            w.sample(kName, "", {{"node", node}, {"queue", queue}, {"reason", reason}}, count);
        }
    }
}

template <typename Field>
void write_node_field(Writer& w, std::string_view node, const Field& field,
                      const typename Field::value_type& value) {
    using Value = typename Field::value_type;
    if constexpr (std::is_same_v<Value, std::map<std::string, ChannelStats>>) {
        write_channels(w, node, field.metric, field.label, value);
    } else if constexpr (std::is_same_v<Value, std::vector<PeerInfo>>) {
        write_peers(w, node, field.metric, field.help, value);
    } else if constexpr (std::is_same_v<Value, std::map<std::string, std::uint64_t>>) {
        write_reasons(w, node, field.metric, field.help, value, field.label);
    } else if constexpr (std::is_same_v<Value, std::uint64_t>) {
        const bool counter = field.kind == detail::StatsKind::counter;
        w.family(field.metric, counter ? "counter" : "gauge", field.help);
        w.sample(field.metric, counter ? "_total" : "", {{"node", node}}, value);
    }
}

}  // namespace

std::string_view metrics_content_type(MetricsFormat format) noexcept {
    switch (format) {
        case MetricsFormat::openmetrics:
            return "application/openmetrics-text; version=1.0.0; charset=utf-8";
        case MetricsFormat::prometheus: return "text/plain; version=0.0.4; charset=utf-8";
    }
    return "text/plain; version=0.0.4; charset=utf-8";
}

std::string render_metrics(const NodeStats& stats, MetricsFormat format,
                           const ProcessStats* process) {
    Writer w(format);
    const std::string node_id = stats.id.is_nil() ? std::string() : stats.id.to_string();
    const std::string_view node = stats.name;

    w.family("peermq_node_info", "gauge", "Always 1; names the node and its id.");
    w.sample("peermq_node_info", "", {{"node", node}, {"node_id", node_id}}, 1);

    // The families of the node's fields (detail::kNodeStatsFields), in groups: per channel, per
    // peer, the node's own counters and gauges, then the counts by reason.
    constexpr auto group_of = [](detail::StatsKind kind) {
        switch (kind) {
            case detail::StatsKind::channels: return 0;
            case detail::StatsKind::peers: return 1;
            case detail::StatsKind::counter:
            case detail::StatsKind::gauge: return 2;
            case detail::StatsKind::by_reason: return 3;
            case detail::StatsKind::identity:   // the labels of peermq_node_info
            case detail::StatsKind::histogram:  // per channel only
            case detail::StatsKind::omitted:    // what a control reply left out
                return -1;
        }
        return -1;
    };
    for (int group = 0; group <= 3; ++group) {
        detail::for_each_stats_field<NodeStats>([&](const auto& field) {
            if (group_of(field.kind) != group) return;
            write_node_field(w, node, field, stats.*field.member);
        });
    }
    write_dead_letters(w, node, stats.dead_letters);
    if (process != nullptr) {
        // The names of Prometheus' process collector, so that its dashboards and alerts apply.
        w.family("process_cpu_seconds", "counter", "Total user and system CPU time spent.",
                 "seconds");
        w.sample_double("process_cpu_seconds", "_total", {{"node", node}}, process->cpu_seconds);
        w.family("process_resident_memory_bytes", "gauge", "Resident memory size.", "bytes");
        w.sample("process_resident_memory_bytes", "", {{"node", node}}, process->resident_bytes);
        w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size.", "bytes");
        w.sample("process_virtual_memory_bytes", "", {{"node", node}}, process->virtual_bytes);
        w.family("process_open_fds", "gauge", "Open file descriptors.");
        w.sample("process_open_fds", "", {{"node", node}}, process->open_fds);
        w.family("process_max_fds", "gauge", "The most file descriptors the process may open.");
        w.sample("process_max_fds", "", {{"node", node}}, process->max_fds);
        w.family("process_start_time_seconds", "gauge",
                 "Start time of the process, in seconds since the Unix epoch.", "seconds");
        w.sample_double("process_start_time_seconds", "", {{"node", node}},
                        process->start_time_seconds);
    }
    return w.finish();
}

std::optional<ProcessStats> read_process_stats() {
    ProcessStats out;
    // /proc/self/stat: fields after the command (which may hold spaces and parentheses).
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    for (std::string word; fields >> word;) f.push_back(word);
    // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
    if (f.size() < 22) return std::nullopt;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    out.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
    out.virtual_bytes = std::stoull(f[20]);
    out.resident_bytes = static_cast<std::uint64_t>(std::stod(f[21]) * page);
    // Boot time (/proc/stat btime) + start ticks.
    std::ifstream proc_stat("/proc/stat");
    for (std::string line; std::getline(proc_stat, line);) {
        if (line.rfind("btime ", 0) == 0) {
            out.start_time_seconds = std::stod(line.substr(6)) + std::stod(f[19]) / ticks;
            break;
        }
    }
    std::error_code error;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
         !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
        ++out.open_fds;
    }
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) out.max_fds = limit.rlim_cur;
    return out;
}

namespace detail {

MetricsFormat negotiate_metrics_format(std::string_view accept) {
    // Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1
    while (!accept.empty()) {
        const auto comma = accept.find(',');
        std::string_view range = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
        const auto semicolon = range.find(';');
        std::string_view type = range.substr(0, semicolon);
        while (!type.empty() && (type.front() == ' ' || type.front() == '\t'))
            type.remove_prefix(1);
        while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
        if (type != "application/openmetrics-text") continue;
        // q=0 means "not acceptable".
        bool refused = false;
        std::string_view params =
            semicolon == std::string_view::npos ? std::string_view{} : range.substr(semicolon);
        for (std::size_t at = params.find("q="); at != std::string_view::npos;
             at = params.find("q=", at + 2)) {
            if (at > 0 && params[at - 1] != ';' && params[at - 1] != ' ') continue;
            std::string_view q = params.substr(at + 2);
            q = q.substr(0, q.find(';'));
            while (!q.empty() && q.back() == ' ') q.remove_suffix(1);
            refused = q == "0" || q == "0.0" || q == "0.00" || q == "0.000";
        }
        if (!refused) return MetricsFormat::openmetrics;
    }
    return MetricsFormat::prometheus;
}

}  // namespace detail
}  // namespace peermq
