// Metrics a person can watch: a node's stats() as Prometheus / OpenMetrics text, served over HTTP.
//
// Off by default. An application turns it on in code (MetricsServer::start) or from the
// environment (PEERMQ_METRICS, read by metrics_options_from_env()); the server binds to 127.0.0.1
// unless another address is given explicitly. Include <peermq/metrics.hpp> and link
// peermq::metrics (part of peermq::peermq). The metric families are listed in docs/metrics.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "peermq/node.hpp"
#include "peermq/stats.hpp"
#include "peermq/status.hpp"

namespace peermq {

enum class MetricsFormat {
    openmetrics,  // OpenMetrics 1.0.0 text: counter families without `_total`, ends with `# EOF`
    prometheus,   // Prometheus text exposition format 0.0.4
};

// The HTTP Content-Type of `format`, e.g. "application/openmetrics-text; version=1.0.0;
// charset=utf-8".
std::string_view metrics_content_type(MetricsFormat format) noexcept;

// The process a node runs in, as Prometheus' process collector names it (process_*): read from
// /proc/self and getrlimit by read_process_stats(); nullopt where /proc is not readable.
struct ProcessStats {
    double cpu_seconds = 0;            // user + system
    std::uint64_t resident_bytes = 0;  // resident set
    std::uint64_t virtual_bytes = 0;
    std::uint64_t open_fds = 0;
    std::uint64_t max_fds = 0;      // RLIMIT_NOFILE, soft
    double start_time_seconds = 0;  // Unix time the process started
};
std::optional<ProcessStats> read_process_stats();

// Renders a stats snapshot, and with `process` the process_* families too (labelled with the
// node's name like every other series). Pure: the same stats give the same text. Label values
// are escaped and invalid UTF-8 in them (a topic name from the wire) is replaced by U+FFFD.
std::string render_metrics(const NodeStats& stats,
                           MetricsFormat format = MetricsFormat::openmetrics,
                           const ProcessStats* process = nullptr);

struct MetricsOptions {
    // Where to listen. Loopback by default; any other address (or "0.0.0.0") exposes the node's
    // queue and peer names to the network: only when configured on purpose.
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  // 0 = an ephemeral port (read it back with MetricsServer::port())
    std::string path = "/metrics";
};

// Parses "[address:]port" ("9464", "127.0.0.1:9464", "0.0.0.0:9464", "[::1]:9464"); without an
// address the server stays on 127.0.0.1.
Result<MetricsOptions> parse_metrics_listen(std::string_view text);

// PEERMQ_METRICS=[address:]port: nullopt when unset or empty (metrics off), an error when
// malformed.
Result<std::optional<MetricsOptions>> metrics_options_from_env();

// An HTTP server answering GET <path> with the current stats of one source: OpenMetrics when the
// scraper's Accept header asks for application/openmetrics-text, Prometheus text 0.0.4 otherwise;
// 404 for any other path. It runs on its own two threads and calls the source on them, one scrape
// at a time per thread; the Node overload keeps a reference, so the node must outlive the server
// and stay where it is (not be moved from) while it runs. Movable, not copyable; destroying it
// stops it. stop() is idempotent and thread-safe.
class MetricsServer {
public:
    // Binds and starts serving. A port already taken gives address_in_use; an address that does
    // not resolve or is not one of this host's gives invalid_argument.
    static Result<MetricsServer> start(Node& node, MetricsOptions options = {});
    static Result<MetricsServer> start(std::function<NodeStats()> source,
                                       MetricsOptions options = {});

    MetricsServer(MetricsServer&&) noexcept;
    MetricsServer& operator=(MetricsServer&&) noexcept;
    ~MetricsServer();

    // The bound port (the ephemeral one chosen when options.port was 0).
    std::uint16_t port() const noexcept;
    const std::string& address() const noexcept;
    // "http://127.0.0.1:40123/metrics" ("http://[::1]:40123/metrics" for IPv6).
    std::string url() const;
    // Stops accepting, finishes the scrapes in progress and joins the threads.
    void stop();

    // Scrapes answered with a 500 because the source or the rendering threw (each is logged at
    // error through process_logger(), component "metrics"); the server serves on.
    std::uint64_t failed_scrapes() const noexcept;
    // ok while the server serves (and after stop()); the error that ended its listening thread
    // when that thread died on its own.
    Status status() const;

private:
    struct State;
    explicit MetricsServer(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace peermq
