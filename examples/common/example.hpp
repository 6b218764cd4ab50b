// What the example programs share, kept out of their way: flags for where a node runs and how it
// finds its peers, a stop signal that main() can wait for, and printing whole lines.
// Not part of peermq's API; copy what you need.
//
// Flags every example takes (an environment variable, when named, is used when the flag is not):
//   --name NAME              the node's name (each program has a default)
//   --cluster NAME           nodes only talk to nodes of their cluster (PEERMQ_CLUSTER)
//   --interface IFACE        where to bind and announce (PEERMQ_INTERFACE; default lo, so that
//                            trying the examples on one machine stays on it; "*" = everywhere)
//   --discovery MODE         auto (default: the avahi-daemon if it answers, else Avahi's embedded
//                            mDNS stack), avahi, embedded, or static (no mDNS at all)
//   --peer HOST:PORT         a static peer, repeatable (also PEERMQ_PEERS=host:port,...)
//   --data-dir DIR           the node's journal: unacked messages and dead letters
#pragma once

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <optional>

#include <peermq/discovery/avahi.hpp>
#include <peermq/metrics.hpp>
#include <peermq/peermq.hpp>

namespace examples {

// Prints one line to stdout at once (stdout may be a pipe; someone may be waiting for the line).
[[gnu::format(printf, 1, 2)]] inline void say(const char* format, ...) {
    std::va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::putchar('\n');
    std::fflush(stdout);
}

// "--flag value" and "--flag=value" arguments. Each program asks for the flags it knows, then
// calls done(), which rejects any other flag with a one-line error (exit 2).
class Args {
public:
    static constexpr const char* kCommonFlags =
        "[--name NAME] [--cluster NAME] [--interface IFACE] "
        "[--discovery auto|avahi|embedded|static] [--peer HOST:PORT]... [--data-dir DIR]";

    Args(int argc, char** argv, const std::string& usage)
        : program_(argc > 0 ? argv[0] : "example"),
          usage_(usage + (usage.empty() ? "" : " ") + kCommonFlags) {
        program_.erase(0, program_.rfind('/') + 1);
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "-h" || arg == "--help") {
                std::printf("usage: %s %s\n", program_.c_str(), usage_.c_str());
                std::exit(0);
            }
            if (arg.rfind("--", 0) != 0) fail("unexpected argument '" + arg + "'");
            const auto eq = arg.find('=');
            if (eq != std::string::npos) {
                flags_.emplace_back(arg.substr(2, eq - 2), arg.substr(eq + 1));
            } else if (i + 1 < argc) {
                flags_.emplace_back(arg.substr(2), argv[++i]);
            } else {
                fail(arg + " needs a value");
            }
        }
    }

    // The last value of --flag, else the environment variable `env` (if given), else `fallback`.
    std::string get(const std::string& flag, const std::string& fallback,
                    const char* env = nullptr) {
        used_.insert(flag);
        for (auto it = flags_.rbegin(); it != flags_.rend(); ++it) {
            if (it->first == flag) return it->second;
        }
        if (env != nullptr) {
            if (const char* value = std::getenv(env); value != nullptr && *value != '\0') {
                return value;
            }
        }
        return fallback;
    }

    long get_int(const std::string& flag, long fallback) {
        const std::string text = get(flag, std::to_string(fallback));
        char* end = nullptr;
        const long value = std::strtol(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || value < 0) {
            fail("--" + flag + " takes a whole number >= 0, not '" + text + "'");
        }
        return value;
    }

    // Every value of a repeatable flag; "a,b" counts as two values.
    std::vector<std::string> get_list(const std::string& flag, const std::string& fallback = {}) {
        used_.insert(flag);
        std::string joined;
        for (const auto& [name, value] : flags_) {
            if (name == flag) joined += (joined.empty() ? "" : ",") + value;
        }
        if (joined.empty()) joined = fallback;
        std::vector<std::string> values;
        std::istringstream items(joined);
        for (std::string item; std::getline(items, item, ',');) {
            if (!item.empty()) values.push_back(item);
        }
        return values;
    }

    void done() const {
        for (const auto& [name, value] : flags_) {
            if (!used_.contains(name)) fail("unknown option --" + name);
        }
    }

    [[noreturn]] void fail(const std::string& problem) const {
        std::fprintf(stderr, "%s: %s\nusage: %s %s\n", program_.c_str(), problem.c_str(),
                     program_.c_str(), usage_.c_str());
        std::exit(2);
    }

private:
    std::string program_;
    std::string usage_;
    std::vector<std::pair<std::string, std::string>> flags_;
    std::set<std::string> used_;
};

// The NodeOptions every example starts from: the flags described at the top of this file.
inline peermq::NodeOptions node_options(Args& args, const std::string& default_name,
                                        const std::string& default_cluster) {
    peermq::NodeOptions options;
    options.name = args.get("name", default_name);
    options.cluster = args.get("cluster", default_cluster, "PEERMQ_CLUSTER");
    options.interface = args.get("interface", "lo", "PEERMQ_INTERFACE");
    options.peers = args.get_list("peer");
    options.data_dir = args.get("data-dir", "");

    // mDNS only on the chosen interface; "*" lets the avahi-daemon use all of its interfaces.
    peermq::discovery::AvahiOptions mdns;
    if (!options.interface.empty() && options.interface != "*") {
        mdns.interfaces = {options.interface};
    }
    const std::string mode = args.get("discovery", "auto");
    if (mode == "auto") {
        options.discovery = peermq::discovery::automatic(mdns);
    } else if (mode == "avahi") {
        options.discovery = peermq::discovery::avahi_daemon(mdns);
    } else if (mode == "embedded") {
        options.discovery = peermq::discovery::embedded(mdns);
    } else if (mode != "static") {
        args.fail("--discovery is auto, avahi, embedded or static, not '" + mode + "'");
    }
    return options;
}

// Creates the node or exits with the reason on one line.
inline peermq::Node create_node(peermq::NodeOptions options) {
    const std::string name = options.name;
    auto node = peermq::Node::create(std::move(options));
    if (!node) {
        std::fprintf(stderr, "%s: %s\n", name.c_str(), node.status().to_string().c_str());
        std::exit(1);
    }
    return std::move(node).value();
}

// PEERMQ_METRICS=[address:]port: the node's metrics served for as long as this object lives
// (docs/metrics.md); nothing when unset, exit 1 when malformed. Declare it right after the node:
// it is destroyed, and stops reading the node, first.
class MetricsFromEnv {
public:
    explicit MetricsFromEnv(peermq::Node& node) {
        auto options = peermq::metrics_options_from_env();
        if (!options) {
            std::fprintf(stderr, "%s: %s\n", node.name().c_str(),
                         options.status().to_string().c_str());
            std::exit(1);
        }
        if (!options.value()) return;
        auto server = peermq::MetricsServer::start(node, *options.value());
        if (!server) {
            std::fprintf(stderr, "%s: PEERMQ_METRICS: %s\n", node.name().c_str(),
                         server.status().to_string().c_str());
            std::exit(1);
        }
        server_.emplace(std::move(server).value());
        say("%s: serving metrics at %s", node.name().c_str(), server_->url().c_str());
    }
    ~MetricsFromEnv() {
        if (server_) server_->stop();
    }
    MetricsFromEnv(const MetricsFromEnv&) = delete;
    MetricsFromEnv& operator=(const MetricsFromEnv&) = delete;

private:
    std::optional<peermq::MetricsServer> server_;
};

// Exits with the error on one line unless `status` is ok.
inline void check(const peermq::Status& status, const std::string& what) {
    if (!status) {
        std::fprintf(stderr, "%s: %s\n", what.c_str(), status.to_string().c_str());
        std::exit(1);
    }
}

// SIGINT and SIGTERM as a stop request that main() waits for; the program may also request a
// stop itself (its work is done). Construct it first thing in main(), before any thread starts:
// it blocks both signals in every thread created afterwards (the node's included), so that only
// its own thread receives them. Thread-safe.
class StopSignal {
public:
    StopSignal() {
        sigemptyset(&signals_);
        sigaddset(&signals_, SIGINT);
        sigaddset(&signals_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
        thread_ = std::thread([this] {
            int received = 0;
            sigwait(&signals_, &received);
            request();
        });
    }
    ~StopSignal() {
        // Wakes our thread if no signal came (the signal stays blocked: nothing else sees it).
        pthread_kill(thread_.native_handle(), SIGTERM);
        thread_.join();
    }
    StopSignal(const StopSignal&) = delete;
    StopSignal& operator=(const StopSignal&) = delete;

    void request() {
        std::lock_guard lock(mutex_);
        stop_ = true;
        changed_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return stop_; });
    }
    bool requested() {
        std::lock_guard lock(mutex_);
        return stop_;
    }
    // True when a stop was requested within `timeout`.
    bool wait_for(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [this] { return stop_; });
    }

private:
    sigset_t signals_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool stop_ = false;
};

}  // namespace examples
