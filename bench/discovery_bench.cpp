// peermq_discovery_bench: how fast a node finds a peer through discovery, and how fast it notices
// that a peer died, for each Avahi backend. Not run by the tests.
//
//   peermq_discovery_bench [--runs N] [--backend daemon|embedded|both] [--avahi-state DIR]
//
// Per backend and run, on lo, each in a cluster of its own, a peer node runs in a separate
// process (`peermq_driver probe`) and a node is created in this process:
//   join      "start -> peer alive": the peer is announced first, and a browser here waits until
//             its record resolves; the clock runs from before Node::create() until the node's
//             first PeerEvent with state alive (found by discovery, connected, HELLO answered);
//   together  "start -> alive": the peer process is spawned and the node created at once; the
//             clock runs from the spawn (both announce and browse at the same time);
//   after either, "SIGKILL -> down": the peer process is SIGKILLed (no BYE) and the node's
//             PeerEvent with state down is awaited. Heartbeats go out every heartbeat_interval
//             (1 s) and a peer silent for peer_timeout (3 s) is down, so this lies between 2 and
//             3 s depending on when the peer last spoke. To sample that phase fairly, the kill
//             comes a random 0..1 s after the peer became alive (a deliberate delay, not a
//             synchronisation).
// The median of the runs is printed beside the minimum, the maximum and the goal (first peer
// alive <= 1.5 s, down <= 3 s). Exit status 1 when a run failed (nothing found, never down),
// 0 otherwise; a missed goal is printed, not an error.
//
// The daemon backend needs an avahi-daemon restricted to lo: when none answers, the bench runs
// scripts/avahi-lo.sh start (state in --avahi-state, default /tmp/peermq-discovery-bench) and
// stops what it started at the end. Do not run it beside `ctest -L system`: both use mDNS on lo
// and the system tests restart that daemon.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "peer_process.hpp"
#include "peermq/discovery/avahi.hpp"
#include "peermq/peermq.hpp"
#include "sample_stats.hpp"

#ifndef PEERMQ_SOURCE_DIR
#error "PEERMQ_SOURCE_DIR must be defined by the build"
#endif
#ifndef PEERMQ_DRIVER
#error "PEERMQ_DRIVER must be defined by the build"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using peermq::bench::median;

constexpr auto kFindTimeout = 20s;
constexpr auto kDownTimeout = 10s;
constexpr double kAliveGoalMs = 1500;
constexpr double kDownGoalMs = 3000;

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(stderr, "peermq_discovery_bench: %s\n", problem.c_str());
    std::fprintf(stderr,
                 "usage: peermq_discovery_bench [--runs N] [--backend daemon|embedded|both] "
                 "[--avahi-state DIR]\n");
    std::exit(2);
}

peermq::DiscoveryFactory factory_for(const std::string& backend) {
    const peermq::discovery::AvahiOptions lo{.interfaces = {"lo"}};
    return backend == "daemon" ? peermq::discovery::avahi_daemon(lo)
                               : peermq::discovery::embedded(lo);
}

// The name peermq_driver (like the peermq tool) gives the backend: avahi for the daemon.
std::string discovery_flag(const std::string& backend) {
    return backend == "daemon" ? "avahi" : backend;
}

peermq::NodeOptions options_for(const std::string& name, const std::string& cluster,
                                const std::string& backend) {
    peermq::NodeOptions options;
    options.name = name;
    options.cluster = cluster;
    options.interface = "lo";
    options.discovery = factory_for(backend);
    return options;
}

double ms_since(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

// Waits for one node id to resolve, from a browser that announces nothing (inbox port 0).
class Watcher {
public:
    explicit Watcher(const std::string& backend) : backend_(backend) {}
    ~Watcher() {
        if (discovery_) discovery_->stop();
    }

    peermq::Status start(const std::string& cluster) {
        auto made = factory_for(backend_)();
        if (!made) return made.status();
        discovery_ = std::move(made).value();
        peermq::ServiceRecord self;
        self.id = peermq::Uuid::generate();
        self.name = "watcher";
        self.cluster = cluster;
        return discovery_->start(self, [this](peermq::DiscoveryEvent event) {
            std::lock_guard lock(mutex_);
            if (event.kind != peermq::DiscoveryEvent::Kind::lost) found_.push_back(event.record.id);
            changed_.notify_all();
        });
    }

    bool wait_found(const peermq::NodeId& id, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            for (const auto& seen : found_) {
                if (seen == id) return true;
            }
            return false;
        });
    }

private:
    std::string backend_;
    std::unique_ptr<peermq::Discovery> discovery_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<peermq::NodeId> found_;
};

// First times a peer was seen alive and down, from Node::on_peer_event.
struct PeerTimes {
    std::mutex mutex;
    std::condition_variable changed;
    std::optional<Clock::time_point> alive;
    std::optional<Clock::time_point> down;

    void record(peermq::PeerState state, Clock::time_point at) {
        std::lock_guard lock(mutex);
        if (state == peermq::PeerState::alive && !alive) alive = at;
        if (state == peermq::PeerState::down && alive && !down) down = at;
        changed.notify_all();
    }
    template <typename F>
    bool wait(F done, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, timeout, [&] { return done(); });
    }
};

struct RunResult {
    std::optional<double> alive_ms;
    std::optional<double> down_ms;
    std::string error;
};

// How the measured node meets its peer.
enum class Mode {
    join,      // the peer is announced and resolvable before the node starts
    together,  // the peer process and the node start at the same moment
};

const char* mode_name(Mode mode) { return mode == Mode::join ? "join" : "together"; }

RunResult run_once(const std::string& backend, Mode mode, int run, std::mt19937& random) {
    RunResult result;
    const std::string cluster = "dbench-" + std::to_string(::getpid()) + "-" + backend + "-" +
                                mode_name(mode) + "-" + std::to_string(run);
    const auto spawned = Clock::now();
    // The probe announces itself, prints "READY id=<uuid> ..." and lives until stdin closes (the
    // benchmark ended) or SIGKILL.
    auto peer = peermq::bench::PeerProcess::spawn(
        PEERMQ_DRIVER, {"probe", "--name", "peer" + std::to_string(run), "--cluster", cluster,
                        "--interface", "lo", "--discovery", discovery_flag(backend)});
    if (!peer) {
        result.error = peer.status().to_string();
        return result;
    }
    std::optional<peermq::NodeId> peer_id;
    auto read_ready = [&]() -> bool {
        auto ready = peer->expect("READY", 15s);
        if (ready && ready->size() >= 2 && (*ready)[1].starts_with("id=")) {
            peer_id = peermq::Uuid::parse((*ready)[1].substr(3));
        }
        if (!peer_id) {
            result.error = "peer: " + (ready ? "bad ready line" : ready.status().to_string());
        }
        return peer_id.has_value();
    };
    Watcher watcher(backend);
    if (mode == Mode::join) {
        if (!read_ready()) return result;
        if (auto started = watcher.start(cluster); !started.ok()) {
            result.error = "watcher: " + started.to_string();
            return result;
        }
        if (!watcher.wait_found(*peer_id, kFindTimeout)) {
            result.error = "the peer's record never resolved";
            return result;
        }
    }

    auto times = std::make_shared<PeerTimes>();
    // Together: the clock starts when the peer process was spawned, as for two nodes started at
    // once; the node itself is created right away.
    const auto started = mode == Mode::join ? Clock::now() : spawned;
    auto node = peermq::Node::create(options_for("joiner" + std::to_string(run), cluster, backend));
    if (!node) {
        result.error = "node: " + node.status().to_string();
        return result;
    }
    node->on_peer_event(
        [times](const peermq::PeerEvent& event) { times->record(event.peer.state, Clock::now()); });
    // The handler is set just after create(): a peer already alive by then counts from now.
    for (const auto& info : node->peers()) {
        if (info.state == peermq::PeerState::alive) times->record(info.state, Clock::now());
    }
    if (!times->wait([&] { return times->alive.has_value(); }, kFindTimeout)) {
        result.error = "no peer alive within 20 s";
        return result;
    }
    result.alive_ms = ms_since(started, *times->alive);
    if (mode == Mode::together && !read_ready()) return result;

    std::uniform_int_distribution<int> phase_ms(0, 999);
    std::this_thread::sleep_for(std::chrono::milliseconds(phase_ms(random)));
    const auto killed = Clock::now();
    ::kill(peer->pid(), SIGKILL);
    if (!times->wait([&] { return times->down.has_value(); }, kDownTimeout)) {
        result.error = "the killed peer was not marked down within 10 s";
    } else {
        result.down_ms = ms_since(killed, *times->down);
    }
    node->close();
    return result;  // ~PeerProcess reaps the killed peer
}

// Runs a command, returns its exit status and output.
std::pair<int, std::string> run(const std::string& command) {
    std::string output;
    std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return {-1, "popen failed"};
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

struct Figure {
    std::vector<double> samples;
    void print(const char* label, double goal) const {
        if (samples.empty()) {
            std::printf("  %-28s no sample\n", label);
            return;
        }
        const auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
        const double mid = median(samples);
        std::printf("  %-28s median %6.0f ms  min %6.0f  max %6.0f  (n=%zu)  goal <= %.0f ms: %s\n",
                    label, mid, *lo, *hi, samples.size(), goal, mid <= goal ? "met" : "MISSED");
    }
};

}  // namespace

int main(int argc, char** argv) {
    int runs = 5;
    std::string backends = "both";
    std::string state = "/tmp/peermq-discovery-bench";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--runs")
            runs = std::stoi(next());
        else if (arg == "--backend")
            backends = next();
        else if (arg == "--avahi-state")
            state = next();
        else if (arg == "--help")
            usage("help");
        else
            usage("unknown argument " + arg);
    }
    if (runs < 1) usage("--runs must be >= 1");
    std::vector<std::string> list;
    if (backends == "both")
        list = {"daemon", "embedded"};
    else if (backends == "daemon" || backends == "embedded")
        list = {backends};
    else
        usage("unknown backend " + backends);

    const std::string script = std::string(PEERMQ_SOURCE_DIR) + "/scripts/avahi-lo.sh";
    // Both backends are measured beside a loopback-only avahi-daemon, the usual host; start one
    // when none runs, and stop it at the end only then.
    const auto [status_code, status] = run(script + " status " + state);
    const bool was_running =
        status_code == 0 && status.find("avahi-daemon: not running") == std::string::npos;
    if (const auto [code, output] = run(script + " start " + state); code != 0) {
        std::fprintf(stderr, "peermq_discovery_bench: %s start failed:\n%s", script.c_str(),
                     output.c_str());
        return 1;
    }
    const bool started_daemon = !was_running;

    std::mt19937 random(std::random_device{}());
    bool failed = false;
    std::printf("peermq discovery: %d runs per backend, lo, heartbeat 1 s, peer_timeout 3 s\n",
                runs);
    for (const auto& backend : list) {
        Figure join, together, down;
        for (int run_index = 0; run_index < runs; ++run_index) {
            for (const Mode mode : {Mode::join, Mode::together}) {
                const RunResult result = run_once(backend, mode, run_index, random);
                Figure& alive = mode == Mode::join ? join : together;
                if (result.alive_ms) alive.samples.push_back(*result.alive_ms);
                if (result.down_ms) down.samples.push_back(*result.down_ms);
                std::fprintf(stderr, "  %s %s run %d: alive %.0f ms, down %.0f ms%s%s\n",
                             backend.c_str(), mode_name(mode), run_index,
                             result.alive_ms.value_or(-1), result.down_ms.value_or(-1),
                             result.error.empty() ? "" : ": ", result.error.c_str());
                if (!result.error.empty()) failed = true;
            }
        }
        std::printf("%s backend\n", backend.c_str());
        join.print("join: start -> peer alive", kAliveGoalMs);
        together.print("together: start -> alive", kAliveGoalMs);
        down.print("SIGKILL -> down", kDownGoalMs);
    }
    if (started_daemon) (void)run(script + " stop " + state);
    return failed ? 1 : 0;
}
