// peermq_node_probe: one peermq Node in its own process, driven line by line over stdin, that
// reports what the node sees. The node-level system tests run it where an in-process node cannot
// be (a private network namespace, a lab host) or where they must watch a node from outside
// (peer states with timestamps, the messages it handled). peermq_test_node runs plain workers;
// this one also waits for peers, sends on command and reports peer events.
//
//   peermq_node_probe --name N [--cluster C] [--interface IF]
//                     [--discovery avahi|embedded|auto|none] (default avahi)
//                     [--consume QUEUE] [--prefetch P] [--control FIFO]
//
// Output, one flushed line each:
//   READY id=<uuid> inbox=<endpoint> pub=<endpoint> discovery=<backend>
//   PEER t_ns=<CLOCK_MONOTONIC ns> name=<n> id=<uuid> state=<s> previous=<s> queues=<a,b>
//   GOT <payload>                      one per message handled by the --consume handler
// Commands, one per line, from stdin and from --control (a FIFO the test writes to, because its
// process helper keeps the child's stdin only to close it). Each is answered by one line that
// starts with the command in capitals, then "ok" or "failed":
//   wait-alive QUEUE K TIMEOUT_MS      "WAIT-ALIVE ok <k>" once >= K peers are alive and consume
//                                      QUEUE, else "WAIT-ALIVE failed <peers>"
//   send QUEUE COUNT START             sends the integers START..START+COUNT-1 (at_least_once)
//                                      and flush(); "SEND ok <count>" or "SEND failed <status>"
//   wait-acked QUEUE TOTAL TIMEOUT_MS  "WAIT-ACKED ok <n>" once the queue counts >= TOTAL acks,
//                                      else "WAIT-ACKED failed <n>"
//   peers                              "PEERS ok <name>:<state>:<id>:queues=<a,b> ..."
//   ignored                            "IGNORED ok <reason>=<count> ..." (discovery)
//   quit, or stdin closing             closes the node (BYE to its peers); "CLOSED", exit 0
// SIGKILL and SIGTERM end it without a BYE, which is what the liveness tests want.
// Exit codes: 0 after quit/EOF, 1 when the node cannot be created, 2 for bad arguments.
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "peermq/discovery/avahi.hpp"
#include "peermq/peermq.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::mutex output_mutex;

void say(const std::string& line) {
    std::lock_guard lock(output_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(stderr, "peermq_node_probe: %s\n", problem.c_str());
    std::exit(2);
}

// The test process reads the same clock (steady_clock is CLOCK_MONOTONIC on Linux, shared by all
// network namespaces), so it can time an event against its own actions.
std::int64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
    return out.empty() ? "-" : out;
}

std::string describe_peers(const std::vector<peermq::PeerInfo>& peers) {
    std::string out;
    for (const auto& peer : peers) {
        out += " " + (peer.name.empty() ? std::string("?") : peer.name) + ":" +
               std::string(peermq::to_string(peer.state)) + ":" + peer.id.to_string() +
               ":queues=" + join(peer.queues);
    }
    return out;
}

std::size_t alive_consumers(const peermq::Node& node, const std::string& queue) {
    std::size_t count = 0;
    for (const auto& peer : node.peers()) {
        if (peer.state != peermq::PeerState::alive) continue;
        for (const auto& q : peer.queues) count += q == queue ? 1 : 0;
    }
    return count;
}

std::uint64_t acked(const peermq::Node& node, const std::string& queue) {
    const auto stats = node.stats();
    const auto it = stats.queues.find(queue);
    return it == stats.queues.end() ? 0 : it->second.acked;
}

// Polls `condition` until it holds or `timeout` passes: a deadline, not a sleep to sync.
template <typename F>
bool poll_until(F condition, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
}

// Splits what arrives on one descriptor into lines.
class LineReader {
public:
    explicit LineReader(int fd) : fd_(fd) {}
    // Appends the complete lines read; false at end of file or on an error.
    bool read(std::vector<std::string>& lines) {
        char buffer[4096];
        const ssize_t n = ::read(fd_, buffer, sizeof buffer);
        if (n < 0) return errno == EINTR || errno == EAGAIN;
        if (n == 0) return false;
        partial_.append(buffer, static_cast<std::size_t>(n));
        std::size_t newline;
        while ((newline = partial_.find('\n')) != std::string::npos) {
            lines.push_back(partial_.substr(0, newline));
            partial_.erase(0, newline + 1);
        }
        return true;
    }

private:
    int fd_;
    std::string partial_;
};

// Runs one command line; false for quit.
bool run_command(peermq::Node& node, const std::string& line) {
    std::istringstream words(line);
    std::string command;
    words >> command;
    if (command == "wait-alive") {
        std::string queue;
        std::size_t want = 0;
        long timeout_ms = 0;
        words >> queue >> want >> timeout_ms;
        const bool ok = poll_until([&] { return alive_consumers(node, queue) >= want; },
                                   std::chrono::milliseconds(timeout_ms));
        say(ok ? "WAIT-ALIVE ok " + std::to_string(alive_consumers(node, queue))
               : "WAIT-ALIVE failed" + describe_peers(node.peers()));
    } else if (command == "send") {
        std::string queue;
        long long count = 0;
        long long start = 0;
        words >> queue >> count >> start;
        auto handle = node.queue(queue);
        if (!handle) {
            say("SEND failed " + handle.status().to_string());
            return true;
        }
        for (long long i = 0; i < count; ++i) {
            auto sent = handle->send(start + i);
            if (!sent) {
                say("SEND failed " + sent.status().to_string());
                return true;
            }
        }
        const peermq::Status flushed = handle->flush();
        say(flushed.ok() ? "SEND ok " + std::to_string(count)
                         : "SEND failed " + flushed.to_string());
    } else if (command == "wait-acked") {
        std::string queue;
        std::uint64_t total = 0;
        long timeout_ms = 0;
        words >> queue >> total >> timeout_ms;
        const bool ok = poll_until([&] { return acked(node, queue) >= total; },
                                   std::chrono::milliseconds(timeout_ms));
        say(std::string(ok ? "WAIT-ACKED ok " : "WAIT-ACKED failed ") +
            std::to_string(acked(node, queue)));
    } else if (command == "peers") {
        say("PEERS ok" + describe_peers(node.peers()));
    } else if (command == "ignored") {
        std::string out = "IGNORED ok";
        for (const auto& [reason, count] : node.stats().discovery_ignored) {
            out += " " + reason + "=" + std::to_string(count);
        }
        say(out);
    } else if (command == "quit") {
        return false;
    } else if (!command.empty()) {
        say("UNKNOWN failed " + command);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    peermq::NodeOptions options;
    options.interface = "lo";
    std::string discovery = "avahi";
    std::string consume;
    std::uint32_t prefetch = 256;
    std::string control_path;
    int control_fd = -1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--name")
            options.name = next();
        else if (arg == "--cluster")
            options.cluster = next();
        else if (arg == "--interface")
            options.interface = next();
        else if (arg == "--discovery")
            discovery = next();
        else if (arg == "--consume")
            consume = next();
        else if (arg == "--prefetch")
            prefetch = static_cast<std::uint32_t>(std::stoul(next()));
        else if (arg == "--control")
            control_path = next();
        else
            usage("unknown argument " + arg);
    }
    // Discovery is pinned to the node's interface: mDNS never goes further than the tests allow.
    const peermq::discovery::AvahiOptions avahi{.interfaces = {options.interface}};
    if (discovery == "avahi")
        options.discovery = peermq::discovery::avahi_daemon(avahi);
    else if (discovery == "embedded")
        options.discovery = peermq::discovery::embedded(avahi);
    else if (discovery == "auto")
        options.discovery = peermq::discovery::automatic(avahi);
    else if (discovery != "none")
        usage("unknown discovery backend " + discovery);

    auto created = peermq::Node::create(options);
    if (!created) {
        say("ERROR " + created.status().to_string());
        return 1;
    }
    peermq::Node node = std::move(created).value();
    node.on_peer_event([](const peermq::PeerEvent& event) {
        say("PEER t_ns=" + std::to_string(monotonic_ns()) + " name=" + event.peer.name +
            " id=" + event.peer.id.to_string() +
            " state=" + std::string(peermq::to_string(event.peer.state)) + " previous=" +
            std::string(peermq::to_string(event.previous)) + " queues=" + join(event.peer.queues));
    });
    if (!consume.empty()) {
        const peermq::Status status =
            node.consume(consume,
                         [](peermq::Delivery& delivery) {
                             say("GOT " + std::to_string(delivery.as<long long>()));
                         },
                         {.prefetch = prefetch});
        if (!status.ok()) usage(status.to_string());
    }
    if (!control_path.empty()) {
        // O_RDWR: opening never blocks, and the FIFO never reports EOF while we hold it.
        control_fd = open(control_path.c_str(), O_RDWR | O_CLOEXEC);
        if (control_fd < 0) usage("cannot open --control " + control_path);
    }
    say("READY id=" + node.id().to_string() + " inbox=" + node.inbox_endpoint() +
        " pub=" + node.pub_endpoint() + " discovery=" + discovery);

    LineReader from_stdin(STDIN_FILENO);
    LineReader from_control(control_fd);
    bool running = true;
    while (running) {
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {control_fd, POLLIN, 0}};
        const int ready = poll(fds, control_fd >= 0 ? 2 : 1, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            break;
        }
        std::vector<std::string> commands;
        if (fds[0].revents != 0 && !from_stdin.read(commands)) running = false;
        if (control_fd >= 0 && fds[1].revents != 0) (void)from_control.read(commands);
        for (const auto& command : commands) {
            if (!run_command(node, command)) running = false;
        }
    }
    node.close();
    say("CLOSED");
    return 0;
}
