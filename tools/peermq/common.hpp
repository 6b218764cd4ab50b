// Shared by the subcommands: node options from the command line, durations and times, payload
// rendering, JSON of the library's values, tables, signals and progress output. Defined in
// common_node.cpp (the tool's node, a node's control endpoint), common_time.cpp (durations and
// times), common_json.cpp (payloads, JSON) and common.cpp (output, signals, progress).
//
// Everything here runs on the tool's main thread except Wakeup::notify(), which handlers call
// from the node's dispatcher threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "peermq/control.hpp"
#include "peermq/peermq.hpp"

namespace peermq::cli {

using Json = nlohmann::json;

// --- Subcommands ----------------------------------------------------------------------------

// A subcommand and the options its flags fill.
template <typename Options>
struct Command {
    CLI::App* app;
    std::shared_ptr<Options> options;
};

// Adds subcommand `name` to `parent`: when the command line selects it, `selected` becomes a
// call of `run` with its options.
template <typename Options>
Command<Options> add_command(CLI::App& parent, Runner& selected, const std::string& name,
                             const std::string& description, int (*run)(const Options&)) {
    auto options = std::make_shared<Options>();
    CLI::App* app = parent.add_subcommand(name, description);
    app->callback(
        [options, run, &selected] { selected = [options, run] { return run(*options); }; });
    return {app, options};
}

// --- Cluster membership of the tool's own node ----------------------------------------------

struct ClusterOptions {
    std::string name;  // empty = peermq-cli-<pid>
    std::string cluster = "default";
    std::string interface;           // "": where the avahi-daemon runs; "*": every interface
    std::string discovery = "auto";  // auto | avahi | embedded | static
    std::vector<std::string> peers;
    std::string data_dir;
    std::uint16_t port = 0;
    std::string trust = "open";   // open | authorized | tofu
    std::string authorized_keys;  // authorized: empty = <data_dir>/authorized_keys
};

// --name, --cluster, --interface, --discovery, --peer, --port, --trust, --authorized-keys and
// (when `with_data_dir`) --data-dir, with their environment variables.
void add_cluster_options(CLI::App& command, ClusterOptions& options, bool with_data_dir);

// The tool's node, or a CliError naming the problem. It consumes and subscribes to nothing
// until the subcommand asks. --discovery embedded without --interface is a usage error; with
// `auto` and no interface only the avahi-daemon is tried, and its absence is told in terms of
// the options that would do.
Node open_node(const ClusterOptions& options);

// The peers the node sees alive.
std::size_t alive_peers(const std::vector<PeerInfo>& peers);

// --- A running node's control endpoint ----------------------------------------------------

// --data-dir DIR and --control ENDPOINT: which node an administrative command talks to.
struct NodeTarget {
    std::string data_dir;
    std::string control;
    // A tcp endpoint's admin key: a file holding the secret key (a node.key, or the Z85 key
    // alone); empty: PEERMQ_SECRET_KEY.
    std::string key_file;
};
void add_target_options(CLI::App& command, NodeTarget& target);
// Checks that exactly one of the two was given (a usage error otherwise) and that a data
// directory exists.
void check_target(const NodeTarget& target);
// A client of the running node `target` names, or a CliError: no node runs on the data
// directory, or nothing answers on the endpoint.
ControlClient connect_control(const NodeTarget& target);
// What to add to an `unavailable` error of a control request: the likely causes.
std::string control_hint(const NodeTarget& target);

// --- Durations and times --------------------------------------------------------------------

// "250ms", "30s", "10m", "2h", "1d", "1h30m", "1.5s"; "0" alone. nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// ISO-8601 ("2024-05-01T12:00:00Z", "...T12:00:00.250+02:00", "2024-05-01"; no zone = UTC) or a
// duration meaning that long before `now_ms`. nullopt when malformed.
std::optional<std::int64_t> parse_time(std::string_view text, std::int64_t now_ms);

// CLI11 checks for the two forms, so that a bad value is a usage error naming the option.
CLI::Validator duration_validator();
CLI::Validator time_validator();
// A whole number from 0 that fits 64 bits. For every count, size and port option: CLI11 alone
// reads "-1" into an unsigned option as 2^64-1. (A narrower option's type range is checked by
// CLI11's conversion, also as a usage error.)
CLI::Validator count_validator();
std::chrono::milliseconds duration_or_throw(const std::string& text);
// An option of `command` taking a duration (checked by duration_validator), shown as DUR with
// its default.
CLI::Option* add_duration_option(CLI::App& command, const std::string& name, std::string& value,
                                 const std::string& description);

std::int64_t now_ms();
// "2024-05-01T12:00:00.250Z"; "-" for 0.
std::string format_time(std::int64_t unix_ms);
// "0.4s ago", "12m ago", "never".
std::string format_age(std::int64_t unix_ms, std::int64_t now);
std::string format_seconds(double seconds);

// --- Payloads -------------------------------------------------------------------------------

enum class PayloadKind { msgpack, text, binary };

// A payload as a person reads it: the JSON of the one MessagePack value it holds when it is
// exactly one valid MessagePack value; else its text when it is printable UTF-8; else hex.
// MessagePack comes first because that is what peermq payloads are (a printable text of two or
// more ASCII characters is never one MessagePack value).
struct DecodedPayload {
    PayloadKind kind = PayloadKind::binary;
    Json value;  // the JSON value, the text, or the hex string
};

DecodedPayload decode_payload(const Payload& payload);
std::string_view to_string(PayloadKind kind) noexcept;
// One line for plain output: a MessagePack string as itself, other MessagePack values as
// compact JSON, text as is, binary as hex.
std::string payload_line(const Payload& payload);
std::string hex(std::string_view bytes);
bool is_printable_utf8(std::string_view bytes);
// Compact JSON that never throws on odd strings (invalid UTF-8 is replaced).
std::string dump(const Json& value, int indent = -1);

// --- JSON of library values -----------------------------------------------------------------

Json to_json(const Headers& headers);
Json to_json(const PeerInfo& peer);
Json to_json(const ChannelStats& stats);
Json to_json(const NodeStats& stats);

// --- Output ---------------------------------------------------------------------------------

// A plain-text table with left-aligned columns, two spaces apart.
class Table {
public:
    explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    bool empty() const noexcept { return rows_.empty(); }
    std::string render() const;

private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

std::string join(const std::vector<std::string>& items, std::string_view separator = ",",
                 std::string_view empty = "-");
// A table cell of names (a peer's queues or topics): the first `shown` joined with ',', then
// " +N more" for the rest and the `omitted` ones its snapshot left out; "-" for none.
inline constexpr std::size_t kNamesShown = 8;
std::string join_names(const std::vector<std::string>& names, std::uint64_t omitted,
                       std::size_t shown = kNamesShown);
std::string truncate(std::string text, std::size_t width);

// SIGINT and SIGTERM, taken synchronously: constructing one blocks both signals in this thread
// (construct it before the node, whose threads inherit the mask) and reads them from a
// signalfd. Not copyable; one per process.
class Interrupts {
public:
    Interrupts();
    ~Interrupts();
    Interrupts(const Interrupts&) = delete;
    Interrupts& operator=(const Interrupts&) = delete;

    // True once a signal arrived (consumes pending ones).
    bool received();
    // Waits up to `timeout` for a signal or for `wakeup` (an eventfd, -1 for none) to be
    // notified; true when a signal arrived.
    bool wait(std::chrono::milliseconds timeout, int wakeup_fd = -1);

private:
    int fd_ = -1;
    bool received_ = false;
};

enum class Joined { settled, short_of_wait, interrupted };

// How the tool's node waits for the cluster before it reports on it: with `wait` > 0, until that
// many peers are alive (short_of_wait after `timeout`); else until the set of peers has settled
// (every peer past `connecting`, nothing changed for a while), at most 2 s or `timeout`.
// interrupted: a signal came first.
Joined join_cluster(const Node& node, const ClusterOptions& cluster, std::size_t wait,
                    std::chrono::milliseconds timeout, Interrupts& interrupts);

// An eventfd that handler threads notify and the main thread waits on (with Interrupts::wait).
class Wakeup {
public:
    Wakeup();
    ~Wakeup();
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;

    void notify() noexcept;
    void drain() noexcept;
    int fd() const noexcept { return fd_; }

private:
    int fd_ = -1;
};

// A progress bar on stderr when stderr is a terminal; nothing otherwise (the closing summary
// line is printed either way by the caller).
class Progress {
public:
    Progress(std::string label, std::uint64_t total);
    // Redraws at most ten times a second.
    void update(std::uint64_t done, bool force = false);
    // Erases the bar.
    void finish();

private:
    std::string label_;
    std::uint64_t total_ = 0;
    bool enabled_ = false;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_{};
};

// "1000 messages in 0.412 s (2427 msg/s)".
std::string count_and_rate(std::uint64_t count, std::chrono::steady_clock::duration elapsed);

// Writes `text` to stdout as it is and flushes it (what a script reads comes as it is printed).
void print_text(const std::string& text);
// print_text of `line` and a newline.
void print_line(const std::string& line);

// Writes one line to stderr ("peermq: " + text when `prefixed`).
void note(const std::string& text, bool prefixed = false);

// systemd readiness (sd_notify(3)), for the commands that run until stopped (consume, tap):
// "READY=1" with `status` once the node listens, "STOPPING=1" when it closes. Nothing when the
// tool does not run under a Type=notify unit (no NOTIFY_SOCKET).
void notify_ready(const std::string& status);
void notify_stopping();

}  // namespace peermq::cli
