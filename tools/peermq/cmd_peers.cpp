// peermq peers: the tool's node joins the cluster as a pure observer (it consumes and subscribes
// to nothing) and prints the peers it sees.
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "commands.hpp"
#include "common.hpp"

namespace peermq::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct PeersOptions {
    ClusterOptions cluster;
    std::size_t wait = 0;
    std::string timeout = "5s";
    bool watch = false;
    bool json = false;
};

std::vector<PeerInfo> sorted(std::vector<PeerInfo> peers) {
    std::sort(peers.begin(), peers.end(), [](const PeerInfo& a, const PeerInfo& b) {
        return std::tie(a.name, a.inbox_endpoint) < std::tie(b.name, b.inbox_endpoint);
    });
    return peers;
}

std::string address(const std::string& endpoint) {
    constexpr std::string_view kTcp = "tcp://";
    return endpoint.starts_with(kTcp) ? endpoint.substr(kTcp.size()) : endpoint;
}

std::string render_table(const std::vector<PeerInfo>& peers) {
    Table table(
        {"NAME", "ID", "KEY", "TRUST", "ADDRESS", "STATE", "QUEUES", "TOPICS", "LAST HEARD"});
    const std::int64_t now = now_ms();
    for (const auto& peer : peers) {
        table.add(
            {peer.name.empty() ? "?" : peer.name, peer.id.is_nil() ? "-" : peer.id.short_string(),
             peer.public_key.empty() ? "-" : peer.public_key.substr(0, 8),
             peer.trust.empty() ? "-" : peer.trust, address(peer.inbox_endpoint),
             std::string(to_string(peer.state)), join_names(peer.queues, peer.queues_omitted),
             join_names(peer.topics, peer.topics_omitted), format_age(peer.last_heard_ms, now)});
    }
    return table.render();
}

Json render_json(const std::vector<PeerInfo>& peers) {
    Json out = Json::array();
    for (const auto& peer : peers) out.push_back(to_json(peer));
    return out;
}

void print(const std::vector<PeerInfo>& peers, bool json) {
    const std::string text = json ? dump(render_json(peers)) + "\n" : render_table(peers);
    print_text(text);
}

int watch(Node& node, const PeersOptions& options, Interrupts& interrupts) {
    const bool terminal = ::isatty(STDOUT_FILENO) == 1 && !options.json;
    do {
        const auto peers = sorted(node.peers());
        if (terminal) {
            std::printf("\033[H\033[2J%s  cluster %s  %zu peers, %zu alive  (Ctrl-C to stop)\n\n",
                        format_time(now_ms()).c_str(), options.cluster.cluster.c_str(),
                        peers.size(), alive_peers(peers));
            print(peers, false);
        } else if (options.json) {
            print(peers, true);
        } else {
            std::printf("# %s\n", format_time(now_ms()).c_str());
            print(peers, false);
            std::printf("\n");
            std::fflush(stdout);
        }
    } while (!interrupts.wait(1s));
    return 0;
}

int run(const PeersOptions& options) {
    const auto timeout = duration_or_throw(options.timeout);
    Interrupts interrupts;
    Node node = open_node(options.cluster);
    if (options.watch) {
        const int code = watch(node, options, interrupts);
        node.close();
        return code;
    }
    const Joined joined = join_cluster(node, options.cluster, options.wait, timeout, interrupts);
    if (joined == Joined::interrupted) {
        node.close();
        return 130;
    }
    const bool reached = joined == Joined::settled;
    const auto peers = sorted(node.peers());
    node.close();
    print(peers, options.json);
    if (!reached) {
        throw CliError(std::to_string(alive_peers(peers)) + " of " + std::to_string(options.wait) +
                       " peers alive after " + options.timeout);
    }
    return 0;
}

}  // namespace

void add_peers_command(CLI::App& app, Runner& selected) {
    auto [command, options] =
        add_command(app, selected, "peers", "List the peers of the cluster", run);
    add_cluster_options(*command, options->cluster, false);
    command
        ->add_option("--wait", options->wait,
                     "Wait until at least N peers are alive (exit 1 if not within --timeout)")
        ->check(count_validator());
    add_duration_option(*command, "--timeout", options->timeout, "How long --wait waits");
    command->add_flag("--watch", options->watch, "Redraw every second until Ctrl-C");
    command->add_flag("--json", options->json, "Print a JSON array (one per line with --watch)");
}

}  // namespace peermq::cli
