// peermq queues and top: every queue of the cluster, as the nodes that produce and consume it
// count it. The tool's node joins as a pure observer, as for `peermq peers`, and asks each peer
// for its report over the peer's link (Node::cluster_queues): there is no central server to ask.
// `queues` prints one view; `top` redraws it every interval until Ctrl-C.
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "commands.hpp"
#include "common.hpp"
#include "queues_view.hpp"

namespace peermq::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kMinInterval{500};

struct QueuesOptions {
    ClusterOptions cluster;
    std::size_t wait = 0;
    std::string timeout = "5s";
    std::string interval = "1s";
    std::string reply_timeout = "2s";
    bool json = false;
    bool once = false;  // top only
};

// The durations of the options, checked once.
struct Timing {
    std::chrono::milliseconds timeout;
    std::chrono::milliseconds interval;
    std::chrono::milliseconds reply_timeout;
};

Timing timing(const QueuesOptions& options) {
    const Timing t{duration_or_throw(options.timeout), duration_or_throw(options.interval),
                   duration_or_throw(options.reply_timeout)};
    // A node answers each peer's question at most four times a second (docs/spec/wire.md §15):
    // asked more often, it would seem not to answer.
    if (t.interval < kMinInterval) {
        throw CliError("--interval must be at least " + std::to_string(kMinInterval.count()) +
                           "ms (a node answers each peer at most four times a second)",
                       2);
    }
    if (t.reply_timeout.count() <= 0) throw CliError("--reply-timeout must be longer than 0", 2);
    return t;
}

// --- Joining --------------------------------------------------------------------------------

// --- Sampling -------------------------------------------------------------------------------

// The reports of the other nodes, and when they were asked for.
struct Sample {
    std::vector<NodeQueues> reports;
    Clock::time_point at;
};

Sample sample(const Node& node, std::chrono::milliseconds reply_timeout) {
    Sample out{{}, Clock::now()};
    auto reports = node.cluster_queues(reply_timeout);
    if (!reports) throw CliError("cannot ask for the queues: " + reports.status().message());
    out.reports = std::move(reports).value();
    // The tool's own node has no queues: it is an observer, not part of what is shown.
    std::erase_if(out.reports, [&](const NodeQueues& r) { return r.id == node.id(); });
    return out;
}

QueuesView view_between(const Sample& previous, const Sample& current) {
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(current.at - previous.at);
    return make_view(current.reports, &previous.reports, elapsed);
}

// Waits until `interval` after `since`; true when interrupted meanwhile.
bool wait_interval(Clock::time_point since, std::chrono::milliseconds interval,
                   Interrupts& interrupts) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(since + interval - Clock::now());
    return interrupts.wait(std::max(left, 0ms));
}

// --- Output ---------------------------------------------------------------------------------

// "1 node", "3 nodes".
std::string counted(std::size_t count, const std::string& noun) {
    return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// A node as the notes under the table name it.
std::string label(const NodeQueues& node) {
    return node.name.empty() ? node.id.short_string() : node.name;
}

std::string render_table(const QueuesView& view, const std::string& cluster) {
    std::string out;
    if (view.queues.empty()) {
        out = view.nodes.empty() ? "no queues (no other node of cluster '" + cluster + "' found)\n"
                                 : "no queues\n";
    } else {
        Table table({"QUEUE", "PRODUCERS", "CONSUMERS", "WAITING", "IN FLIGHT", "ACKED/S",
                     "DEAD LETTERS", "OLDEST"});
        for (const auto& row : view.queues) {
            table.add({row.queue, std::to_string(row.producers.size()),
                       std::to_string(row.consumers.size()), std::to_string(row.waiting),
                       std::to_string(row.in_flight), format_rate(row.acked_per_second),
                       std::to_string(row.dead_letters), format_wait(row.oldest_waiting_ms)});
        }
        out = table.render();
    }
    // The totals above leave these nodes out: say so, rather than show a quiet cluster.
    const auto missing = unanswered(view);
    if (!missing.empty()) {
        std::vector<std::string> named;
        for (const NodeQueues* node : missing) {
            named.push_back(label(*node) + " (" + node->error + ")");
        }
        out += counted(missing.size(), "node") + " did not answer: " + join(named, ", ") + "\n";
    }
    for (const auto& node : view.nodes) {
        if (node.answered && node.queues_omitted > 0) {
            out += label(node) + " left " + std::to_string(node.queues_omitted) +
                   " more queues out of its report\n";
        }
    }
    return out;
}

std::string render(const QueuesView& view, const QueuesOptions& options) {
    return options.json ? dump(to_json(view)) + "\n" : render_table(view, options.cluster.cluster);
}

// The first line of a redrawn screen.
std::string screen_header(const QueuesView& view, const QueuesOptions& options) {
    return format_time(now_ms()) + "  cluster " + options.cluster.cluster + "  " +
           counted(view.nodes.size(), "node") + ", " + counted(view.queues.size(), "queue") +
           "  (Ctrl-C to stop)\n\n";
}

// --- Commands -------------------------------------------------------------------------------

// Joins, then prints the view of two samples an interval apart. `queues`, and `top --once`.
int run_once(const QueuesOptions& options) {
    const Timing t = timing(options);
    Interrupts interrupts;
    Node node = open_node(options.cluster);
    const Joined joined = join_cluster(node, options.cluster, options.wait, t.timeout, interrupts);
    if (joined == Joined::interrupted) {
        node.close();
        return 130;
    }
    const Sample first = sample(node, t.reply_timeout);
    if (wait_interval(first.at, t.interval, interrupts)) {
        node.close();
        return 130;
    }
    const Sample second = sample(node, t.reply_timeout);
    const std::size_t seen = alive_peers(node.peers());
    node.close();
    print_text(render(view_between(first, second), options));
    if (joined == Joined::short_of_wait) {
        throw CliError(std::to_string(seen) + " of " + std::to_string(options.wait) +
                       " peers alive after " + options.timeout);
    }
    return 0;
}

// Prints `view` as `top` does: a redrawn screen on a terminal, else one table (after a time
// line) or one JSON line per interval.
void show(const QueuesView& view, const QueuesOptions& options, bool terminal) {
    if (terminal) {
        print_text("\033[H\033[2J" + screen_header(view, options) + render(view, options));
    } else if (options.json) {
        print_text(render(view, options));
    } else {
        print_text("# " + format_time(now_ms()) + "\n" + render(view, options) + "\n");
    }
}

int run_top(const QueuesOptions& options) {
    if (options.once) return run_once(options);
    const Timing t = timing(options);
    const bool terminal = ::isatty(STDOUT_FILENO) == 1 && !options.json;
    Interrupts interrupts;
    Node node = open_node(options.cluster);
    if (join_cluster(node, options.cluster, options.wait, t.timeout, interrupts) ==
        Joined::interrupted) {
        node.close();
        return 0;
    }
    Sample previous = sample(node, t.reply_timeout);
    // On a screen the queues show at once; the rates follow with the next sample.
    if (terminal) show(make_view(previous.reports), options, terminal);
    while (!wait_interval(previous.at, t.interval, interrupts)) {
        Sample current = sample(node, t.reply_timeout);
        show(view_between(previous, current), options, terminal);
        previous = std::move(current);
    }
    node.close();
    return 0;
}

void add_options(CLI::App& command, QueuesOptions& options, const std::string& interval) {
    add_cluster_options(command, options.cluster, false);
    command
        .add_option("--wait", options.wait,
                    "Wait until at least N peers are alive (exit 1 if not within --timeout)")
        ->check(count_validator());
    add_duration_option(command, "--timeout", options.timeout, "How long --wait waits");
    add_duration_option(command, "--interval", options.interval, interval);
    add_duration_option(command, "--reply-timeout", options.reply_timeout,
                        "How long each node's report is waited for");
}

}  // namespace

void add_queues_commands(CLI::App& app, Runner& selected) {
    {
        auto [command, options] =
            add_command(app, selected, "queues",
                        "List every queue of the cluster, as its nodes count it", run_once);
        add_options(*command, *options,
                    "Time between the two samples the acked rate is taken from");
        command->add_flag("--json", options->json, "Print one JSON object");
    }
    {
        auto [command, options] = add_command(
            app, selected, "top", "The queues of the cluster, redrawn every --interval", run_top);
        add_options(*command, *options, "Time between two redraws (and the samples of the rate)");
        command->add_flag("--once", options->once, "Print one view (two samples) and exit");
        command->add_flag("--json", options->json,
                          "Print JSON objects, one per line (one in all with --once)");
    }
}

}  // namespace peermq::cli
