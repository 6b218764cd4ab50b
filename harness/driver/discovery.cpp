// `peermq_driver discovery`: peermq's Avahi discovery backends outside the test process, for
// multi-process and network-namespace system tests (and by hand, e.g. in scripts/lab.sh hosts).
//
//   peermq_driver discovery check [options]
//       builds the backend only; "ok backend=<name>" (exit 0) or "error <status>" (exit 3)
//   peermq_driver discovery serve [options] [--name N] [--id UUID] [--inbox P] [--pub P]
//       announces one node and prints one line per event until stdin closes or SIGTERM/SIGINT:
//       "found|updated|lost id=... name=... cluster=... host=... inbox=... pub=... iface=...
//        instance='...' t_ms=<since start>"; at exit "ignored <reason>=<count>" and "stopped"
//   peermq_driver discovery mesh [options] [--count K] [--timeout-ms T]
//       K nodes in this process; checks that every node finds every other one with the right
//       ports, stops the last and checks the others lose it; "mesh ok ..." (exit 0) or
//       "mesh FAILED: ..." (exit 1), with timings
// options: --discovery avahi|embedded|auto (default auto; the names of the node flags)
//          --interface IF (repeatable)  --cluster C (default "probe")  --ipv6
//          --until-signal (ignore stdin)
// Exit status 2 for bad arguments.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "driver.hpp"
#include "flags.hpp"
#include "peermq/discovery.hpp"
#include "peermq/discovery/avahi.hpp"

namespace peermq::driver {
namespace {

using Clock = std::chrono::steady_clock;

struct Arguments {
    std::string mode;
    std::string backend = "auto";  // --discovery
    discovery::AvahiOptions avahi;
    std::string cluster = "probe";
    std::string name = "probe";
    std::string id;
    unsigned inbox = 0;
    unsigned pub = 0;
    int count = 3;
    int timeout_ms = 20000;
    bool until_signal = false;
    DiscoveryFactory factory;  // of --discovery, with --interface and --ipv6
};

Arguments parse(const std::vector<std::string>& argv) {
    Flags flags("discovery", {argv.begin() + (argv.empty() ? 0 : 1), argv.end()});
    if (argv.empty()) flags.fail("check, serve or mesh?");
    Arguments args;
    args.mode = argv[0];
    while (flags.next()) {
        // clang-format off
        if (flags.is("--discovery")) args.backend = flags.value();
        else if (flags.is("--interface")) args.avahi.interfaces.push_back(flags.value());
        else if (flags.is("--cluster")) args.cluster = flags.value();
        else if (flags.is("--ipv6")) args.avahi.ipv6 = true;
        else if (flags.is("--name")) args.name = flags.value();
        else if (flags.is("--id")) args.id = flags.value();
        else if (flags.is("--inbox")) args.inbox = static_cast<unsigned>(flags.number());
        else if (flags.is("--pub")) args.pub = static_cast<unsigned>(flags.number());
        else if (flags.is("--count")) args.count = static_cast<int>(flags.number());
        else if (flags.is("--timeout-ms")) args.timeout_ms = static_cast<int>(flags.number());
        else if (flags.is("--until-signal")) args.until_signal = true;
        else flags.unknown();
        // clang-format on
    }
    if (args.backend == "static") flags.fail("--discovery static has no backend to run");
    DiscoveryFactory factory;
    if (!discovery_by_name(args.backend, args.avahi, factory)) {
        flags.fail("unknown discovery backend " + args.backend);
    }
    if (args.mode == "serve" && !args.id.empty() && !Uuid::parse(args.id)) flags.fail("bad --id");
    if (args.mode == "mesh" && args.count < 2) flags.fail("--count must be at least 2");
    if (args.mode != "check" && args.mode != "serve" && args.mode != "mesh") {
        flags.fail("unknown mode " + args.mode);
    }
    args.factory = std::move(factory);
    return args;
}

std::string describe(const DiscoveryEvent& event, Clock::time_point start) {
    const char* kind = event.kind == DiscoveryEvent::Kind::found     ? "found"
                       : event.kind == DiscoveryEvent::Kind::updated ? "updated"
                                                                     : "lost";
    const auto& r = event.record;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return std::string(kind) + " id=" + r.id.to_string() + " name=" + r.name +
           " cluster=" + r.cluster + " host=" + r.host + " inbox=" + std::to_string(r.inbox_port) +
           " pub=" + std::to_string(r.pub_port) + " iface=" + r.interface + " instance='" +
           r.instance + "' t_ms=" + std::to_string(ms.count());
}

int run_check(const Arguments& args) {
    auto discovery = args.factory();
    if (!discovery) {
        say("error " + discovery.status().to_string());
        return 3;
    }
    say("ok backend=" + std::string((*discovery)->backend()));
    return 0;
}

int run_serve(const Arguments& args) {
    // Signals are taken by sigwait() below: block them before any thread exists.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    auto discovery = args.factory();
    if (!discovery) {
        say("error " + discovery.status().to_string());
        return 3;
    }
    ServiceRecord self;
    if (!args.id.empty()) {
        self.id = *Uuid::parse(args.id);
    } else {
        self.id = Uuid::generate();
    }
    self.name = args.name;
    self.cluster = args.cluster;
    self.inbox_port = static_cast<std::uint16_t>(args.inbox);
    self.pub_port = static_cast<std::uint16_t>(args.pub);
    const auto start = Clock::now();
    auto status =
        (*discovery)->start(self, [start](DiscoveryEvent event) { say(describe(event, start)); });
    if (!status.ok()) {
        say("error " + status.to_string());
        return 3;
    }
    say("started backend=" + std::string((*discovery)->backend()) + " id=" + self.id.to_string() +
        " name=" + self.name + " cluster=" + self.cluster);

    if (!args.until_signal) {
        // stdin closing (the parent went away or closed the pipe) ends the probe.
        std::thread([] {
            char buffer[256];
            while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
            }
            kill(getpid(), SIGUSR1);
        }).detach();
    }
    int received = 0;
    sigwait(&signals, &received);
    (*discovery)->stop();
    for (const auto& [reason, count] : (*discovery)->ignored()) {
        say("ignored " + reason + "=" + std::to_string(count));
    }
    say("stopped");
    return 0;
}

// --- mesh -----------------------------------------------------------------------------------

struct Member {
    ServiceRecord self;
    std::unique_ptr<Discovery> discovery;
    std::mutex mutex;
    std::condition_variable changed;
    std::map<NodeId, ServiceRecord> peers;
    std::map<NodeId, Clock::time_point> found_at;
    std::map<NodeId, Clock::time_point> lost_at;
};

int run_mesh(const Arguments& args) {
    const int count = args.count;
    const auto timeout = std::chrono::milliseconds(args.timeout_ms);
    std::vector<std::unique_ptr<Member>> members;
    for (int i = 0; i < count; ++i) {
        auto member = std::make_unique<Member>();
        auto discovery = args.factory();
        if (!discovery) {
            say("mesh FAILED: " + discovery.status().to_string());
            return 1;
        }
        member->discovery = std::move(discovery).value();
        member->self.id = Uuid::generate();
        member->self.name = args.name + "-" + std::to_string(i);
        member->self.cluster = args.cluster;
        member->self.inbox_port = static_cast<std::uint16_t>(47000 + i);
        member->self.pub_port = static_cast<std::uint16_t>(48000 + i);
        members.push_back(std::move(member));
    }
    const std::string backend(members[0]->discovery->backend());
    const auto start = Clock::now();
    for (auto& member : members) {
        Member* m = member.get();
        auto status = m->discovery->start(m->self, [m](DiscoveryEvent event) {
            std::lock_guard lock(m->mutex);
            const auto id = event.record.id;
            if (event.kind == DiscoveryEvent::Kind::lost) {
                m->peers.erase(id);
                m->lost_at.emplace(id, Clock::now());
            } else {
                m->peers[id] = event.record;
                m->found_at.emplace(id, Clock::now());
            }
            m->changed.notify_all();
        });
        if (!status.ok()) {
            say("mesh FAILED: start: " + status.to_string());
            return 1;
        }
    }
    // Everyone finds everyone else, with the announced ports.
    double found_all_ms = 0;
    for (auto& member : members) {
        std::unique_lock lock(member->mutex);
        const bool all = member->changed.wait_until(lock, start + timeout, [&] {
            for (auto& other : members) {
                if (other.get() == member.get()) continue;
                auto it = member->peers.find(other->self.id);
                if (it == member->peers.end()) return false;
            }
            return true;
        });
        if (!all) {
            say("mesh FAILED: " + member->self.name + " found only " +
                std::to_string(member->peers.size()) + " of " + std::to_string(count - 1) +
                " peers within " + std::to_string(args.timeout_ms) + " ms");
            return 1;
        }
        for (auto& other : members) {
            if (other.get() == member.get()) continue;
            const auto& record = member->peers.at(other->self.id);
            if (record.inbox_port != other->self.inbox_port ||
                record.pub_port != other->self.pub_port || record.cluster != args.cluster ||
                record.name != other->self.name || record.host.empty()) {
                say("mesh FAILED: " + member->self.name + " has a wrong record for " +
                    other->self.name + ": host=" + record.host + " inbox=" +
                    std::to_string(record.inbox_port) + " pub=" + std::to_string(record.pub_port));
                return 1;
            }
            const double ms = std::chrono::duration<double, std::milli>(
                                  member->found_at.at(other->self.id) - start)
                                  .count();
            found_all_ms = std::max(found_all_ms, ms);
        }
    }
    say("mesh found backend=" + backend + " nodes=" + std::to_string(count) +
        " host=" + members[0]->peers.begin()->second.host +
        " found_all_ms=" + std::to_string(static_cast<int>(found_all_ms)));

    // The last one stops: the others lose it.
    Member& leaving = *members.back();
    const auto stopped_at = Clock::now();
    leaving.discovery->stop();
    double lost_ms = 0;
    for (int i = 0; i + 1 < count; ++i) {
        Member& member = *members[static_cast<std::size_t>(i)];
        std::unique_lock lock(member.mutex);
        if (!member.changed.wait_until(lock, stopped_at + timeout,
                                       [&] { return member.lost_at.contains(leaving.self.id); })) {
            say("mesh FAILED: " + member.self.name + " did not lose " + leaving.self.name);
            return 1;
        }
        lost_ms = std::max(lost_ms, std::chrono::duration<double, std::milli>(
                                        member.lost_at.at(leaving.self.id) - stopped_at)
                                        .count());
    }
    for (auto& member : members) member->discovery->stop();
    say("mesh ok backend=" + backend + " nodes=" + std::to_string(count) +
        " found_all_ms=" + std::to_string(static_cast<int>(found_all_ms)) +
        " lost_ms=" + std::to_string(static_cast<int>(lost_ms)));
    return 0;
}

}  // namespace

int run_discovery(const std::vector<std::string>& argv) {
    const Arguments args = parse(argv);
    if (args.mode == "check") return run_check(args);
    if (args.mode == "serve") return run_serve(args);
    return run_mesh(args);
}

}  // namespace peermq::driver
