// The tool's own node and a running node's control endpoint (common.hpp): the cluster options and
// open_node(), the --data-dir / --control options and connect_control().
#include "common.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

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
                    "Interface to bind and discover on (a name such as lo or eth0; default: "
                    "where the avahi-daemon runs; * for every interface)")
        ->type_name("IFACE")
        ->envname("PEERMQ_INTERFACE");
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
    command
        .add_option("--trust", options.trust,
                    "Trust mode of the tool's node: open (any key), authorized (only the keys of "
                    "--authorized-keys) or tofu (the first key seen for a name is pinned)")
        ->check(CLI::IsMember({"open", "authorized", "tofu"}))
        ->capture_default_str();
    command
        .add_option("--authorized-keys", options.authorized_keys,
                    "With --trust authorized: the authorized_keys file (default: the data "
                    "directory's)")
        ->type_name("FILE");
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
    options.trust = cluster.trust == "authorized" ? TrustMode::authorized
                    : cluster.trust == "tofu"     ? TrustMode::tofu
                                                  : TrustMode::open;
    options.authorized_keys = cluster.authorized_keys;
    // mDNS only where the user pointed the node: never every interface behind their back.
    discovery::AvahiOptions avahi;
    const bool every_interface = cluster.interface.empty() || cluster.interface == "*";
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

std::size_t alive_peers(const std::vector<PeerInfo>& peers) {
    return static_cast<std::size_t>(std::count_if(
        peers.begin(), peers.end(), [](const PeerInfo& p) { return p.state == PeerState::alive; }));
}

Joined join_cluster(const Node& node, const ClusterOptions& cluster, std::size_t wait,
                    std::chrono::milliseconds timeout, Interrupts& interrupts) {
    using Clock = std::chrono::steady_clock;
    using namespace std::chrono_literals;
    const auto start = Clock::now();
    if (wait > 0) {
        const auto deadline = start + timeout;
        while (alive_peers(node.peers()) < wait) {
            if (Clock::now() >= deadline) return Joined::short_of_wait;
            if (interrupts.wait(20ms)) return Joined::interrupted;
        }
        return Joined::settled;
    }
    // mDNS answers trickle in over a second; static peers only need their HELLO.
    const auto quiet = cluster.discovery == "static" ? 300ms : 1500ms;
    const auto settle_deadline = start + std::min<Clock::duration>(timeout, 2s);
    std::string last;
    auto stable_since = start;
    for (;;) {
        const auto peers = node.peers();
        const auto now = Clock::now();
        // What the set of peers looks like, to tell when it stopped changing.
        std::string current;
        for (const auto& peer : peers) {
            current += peer.inbox_endpoint + "/" + std::string(to_string(peer.state)) + ";";
        }
        if (current != last) {
            last = std::move(current);
            stable_since = now;
        }
        const bool resolved = std::none_of(peers.begin(), peers.end(), [](const PeerInfo& p) {
            return p.state == PeerState::connecting;
        });
        if (!peers.empty() && resolved && now - stable_since >= quiet) return Joined::settled;
        if (now >= settle_deadline) return Joined::settled;
        if (interrupts.wait(20ms)) return Joined::interrupted;
    }
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
                    "Control endpoint of a running node (ipc://PATH, or tcp://127.0.0.1:PORT#KEY "
                    "with the node's public key)")
        ->type_name("ENDPOINT");
    command
        .add_option("--key-file", target.key_file,
                    "With a tcp --control: the file of the admin key to prove (a node.key, or a "
                    "Z85 secret key alone; mode 0600); default PEERMQ_SECRET_KEY")
        ->type_name("FILE");
}

namespace {

// The secret key of a --key-file: its "secret KEY" line, or its only word.
std::string read_admin_key(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) throw CliError("cannot read the key file " + path);
    if ((info.st_mode & 0077) != 0) {
        throw CliError("the key file " + path + " may be read by others: chmod 600 it");
    }
    std::ifstream in(path);
    std::string line;
    std::string key;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.starts_with("secret ")) return line.substr(7);
        if (!line.empty() && !line.starts_with("#") && key.empty()) key = line;
    }
    if (key.empty()) throw CliError("no secret key in " + path);
    return key;
}

}  // namespace

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
    if (!target.key_file.empty() && !endpoint.starts_with("tcp://")) {
        throw CliError("--key-file is for a tcp --control endpoint", 2);
    }
    const std::string key = target.key_file.empty() ? "" : read_admin_key(target.key_file);
    auto client = ControlClient::connect(endpoint, std::chrono::seconds(2), key);
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

}  // namespace peermq::cli
