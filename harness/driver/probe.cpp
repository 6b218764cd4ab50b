// `peermq_driver probe`: one node commanded line by line, that reports what it sees. The
// node-level system tests run it where an in-process node cannot be (a private network
// namespace, a lab host) or where they must watch a node from outside (peer states with
// timestamps, the messages it handled). `node` runs plain workers; this one also waits for peers,
// sends on command and reports peer events.
//
//   peermq_driver probe [node flags (flags.hpp)] [--commands FIFO]
//                       [--reliable PREFIX [--history N]] [--topic-history N]
//
// --guarantee and the other queue flags apply to `send` and `stream`; --consume QUEUE makes it
// print a GOT line per message handled; --reliable PREFIX subscribes reliably (with N messages
// of history) and prints a TOPIC line per message and a LOST line per range reported lost;
// --topic-history N is NodeOptions::topic_history.
// Output, one flushed line each:
//   READY id=<uuid> inbox=<endpoint> pub=<endpoint> discovery=<backend>
//   PEER t_ns=<CLOCK_MONOTONIC ns> name=<n> id=<uuid> state=<s> previous=<s> queues=<a,b>
//   GOT <payload>                      one per message handled by the --consume handler (the
//                                      integer, or the id a `stream` payload carries)
//   TOPIC <topic> <seq> <value> <h|l>  one per message of the --reliable subscription: its
//                                      number, its integer payload, from history or live
//   LOST <topic> <first> <last> <reason>  one per range the --reliable subscription lost
// Commands, one per line, from stdin and from --commands (a FIFO the test writes to, because its
// process helper keeps the child's stdin only to close it). Each is answered by one line that
// starts with the command in capitals, then "ok" or "failed":
//   wait-alive QUEUE K TIMEOUT_MS      "WAIT-ALIVE ok <k>" once >= K peers are alive and consume
//                                      QUEUE, else "WAIT-ALIVE failed <peers>"
//   send QUEUE COUNT START             sends the integers START..START+COUNT-1 (--guarantee,
//                                      default at_least_once) and flush(); "SEND ok <count>" or
//                                      "SEND failed <status>"
//   stream QUEUE COUNT START RATE      starts sending ids START..START+COUNT-1 at RATE a second
//                                      in the background, as 64-byte payloads; answers "STREAM ok
//                                      started" at once, and "STREAMED ok <count> t_ns=<ns>" (or
//                                      "STREAMED failed <status>") once all are sent and flushed
//   publish TOPIC COUNT RATE           publishes the integers 1..COUNT on TOPIC at RATE a second
//                                      in the background; "PUBLISH ok started" at once, then
//                                      "PUBLISHED ok <count> t_ns=<ns>" (or "PUBLISHED failed")
//   topic-stats TOPIC                  "TOPIC-STATS ok received= delivered= repaired= lost=
//                                      resent= history_served=" (Node::stats() of TOPIC)
//   stats QUEUE                        "STATS ok t_ns=<ns> streamed=<ids handed to send() by the
//                                      stream, read just before the stats> sent= acked=
//                                      in_flight= depth= redelivered= retried= duplicates="
//                                      (Node::stats() of QUEUE)
//   wait-acked QUEUE TOTAL TIMEOUT_MS  "WAIT-ACKED ok <n>" once the queue counts >= TOTAL acks,
//                                      else "WAIT-ACKED failed <n>"
//   peers                              "PEERS ok <name>:<state>:<id>:queues=<a,b> ..."
//   ignored                            "IGNORED ok <reason>=<count> ..." (discovery)
//   dropped                            "DROPPED ok <reason>=<count> ..." (NodeStats::dropped)
//   quit, or stdin closing             closes the node (BYE to its peers); "CLOSED", exit 0
// SIGKILL and SIGTERM end it without a BYE, which is what the liveness tests want.
// Exit codes: 0 after quit/EOF, 1 when the node cannot be created ("ERROR <status>"), 2 for bad
// arguments.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "driver.hpp"
#include "flags.hpp"
#include "peermq/peermq.hpp"

namespace peermq::driver {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
    return out.empty() ? "-" : out;
}

std::string describe_peers(const std::vector<PeerInfo>& peers) {
    std::string out;
    for (const auto& peer : peers) {
        out += " " + (peer.name.empty() ? std::string("?") : peer.name) + ":" +
               std::string(to_string(peer.state)) + ":" + peer.id.to_string() +
               ":queues=" + join(peer.queues);
    }
    return out;
}

std::size_t alive_consumers(const Node& node, const std::string& queue) {
    std::size_t count = 0;
    for (const auto& peer : node.peers()) {
        if (peer.state != PeerState::alive) continue;
        for (const auto& q : peer.queues) count += q == queue ? 1 : 0;
    }
    return count;
}

std::uint64_t acked(const Node& node, const std::string& queue) {
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

// A stream payload: a MessagePack string of 62 characters (64 bytes with its header) that starts
// with the id in 20 digits.
constexpr std::size_t kStreamTextBytes = 62;

Payload stream_payload(long long id) {
    std::string text = std::to_string(id);
    text.insert(0, 20 - std::min<std::size_t>(20, text.size()), '0');
    text.resize(kStreamTextBytes, '.');
    return Payload::encode(text);
}

// The id a handled message carries: its integer payload (`send`), or a stream payload's digits.
long long message_id(const Delivery& delivery) {
    const Payload& payload = delivery.message().payload;
    const msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(payload.data()), payload.size());
    const msgpack::object& object = handle.get();
    if (object.type == msgpack::type::STR) {
        return std::stoll(std::string(object.via.str.ptr, object.via.str.size));
    }
    return object.as<long long>();
}

// Calls send(i) for i = 0, 1, ... count - 1, about `rate` a second, until one returns false or
// `stopping` is set; returns how many were sent.
template <typename Send>
long long paced(long long count, double rate, const std::atomic<bool>& stopping, Send&& send) {
    const auto began = Clock::now();
    long long i = 0;
    while (i < count && !stopping) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
        const long long due = std::min(count, static_cast<long long>(elapsed * rate) + 1);
        if (i >= due) {
            std::this_thread::sleep_for(200us);  // pacing: the next one is not due yet
            continue;
        }
        for (; i < due; ++i) {
            if (!send(i)) return i;
        }
    }
    return i;
}

// Sends a paced run of ids in the background (`stream`), so that the node can be asked for its
// stats and watched while it sends. One run at a time.
class Streamer {
public:
    ~Streamer() { stop(); }

    bool start(Queue queue, long long count, long long first, double rate) {
        if (thread_.joinable()) {
            if (!finished_) return false;
            thread_.join();
        }
        finished_ = false;
        streamed_ = 0;
        thread_ = std::thread([this, queue, count, first, rate]() mutable {
            run(queue, count, first, rate);
            finished_ = true;
        });
        return true;
    }
    void stop() {
        stopping_ = true;
        if (thread_.joinable()) thread_.join();
    }
    long long streamed() const { return streamed_; }

private:
    void run(Queue& queue, long long count, long long first, double rate) {
        std::string failure;
        const long long sent = paced(count, rate, stopping_, [&](long long i) {
            auto sent = queue.send_payload(stream_payload(first + i));
            if (!sent) {
                failure = sent.status().to_string();
                return false;
            }
            streamed_ = i + 1;
            return true;
        });
        if (!failure.empty() || sent < count) {
            say("STREAMED failed " +
                (failure.empty() ? "stopped after " + std::to_string(sent) : failure));
            return;
        }
        const Status flushed = queue.flush();
        say(flushed.ok()
                ? "STREAMED ok " + std::to_string(count) + " t_ns=" + std::to_string(monotonic_ns())
                : "STREAMED failed " + flushed.to_string());
    }

    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> finished_{false};
    std::atomic<long long> streamed_{0};
};

// Publishes a paced run of integers on a topic in the background (`publish`). One at a time.
class Publisher {
public:
    ~Publisher() { stop(); }

    bool start(Node& node, std::string topic, long long count, double rate) {
        if (thread_.joinable()) {
            if (!finished_) return false;
            thread_.join();
        }
        finished_ = false;
        thread_ = std::thread([this, &node, topic = std::move(topic), count, rate] {
            std::string failure;
            const long long sent = paced(count, rate, stopping_, [&](long long i) {
                const Status status = node.publish(topic, i + 1);
                if (!status.ok()) failure = status.to_string();
                return status.ok();
            });
            say(failure.empty() && sent == count
                    ? "PUBLISHED ok " + std::to_string(count) +
                          " t_ns=" + std::to_string(monotonic_ns())
                    : "PUBLISHED failed " +
                          (failure.empty() ? "stopped after " + std::to_string(sent) : failure));
            finished_ = true;
        });
        return true;
    }
    void stop() {
        stopping_ = true;
        if (thread_.joinable()) thread_.join();
    }

private:
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> finished_{false};
};

// What the commands share: the options of the queues this probe sends to, its stream.
struct Probe {
    Node& node;
    QueueOptions queue_options;
    Streamer streamer;
    Publisher publisher;
};

std::string stats_answer(const Probe& probe, const std::string& queue) {
    // Read before the stats: every id counted here was handed to the actor before the stats call,
    // so it is in sent, in_flight or depth (or done) there.
    const long long streamed = probe.streamer.streamed();
    const auto stats = probe.node.stats();
    const auto it = stats.queues.find(queue);
    const ChannelStats q = it == stats.queues.end() ? ChannelStats{} : it->second;
    std::ostringstream out;
    out << "STATS ok t_ns=" << monotonic_ns() << " streamed=" << streamed << " sent=" << q.sent
        << " acked=" << q.acked << " in_flight=" << q.in_flight << " depth=" << q.depth
        << " redelivered=" << q.redelivered << " retried=" << q.retried
        << " duplicates=" << q.duplicates;
    return out.str();
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
bool run_command(Probe& probe, const std::string& line) {
    Node& node = probe.node;
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
        auto handle = node.queue(queue, probe.queue_options);
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
        const Status flushed = handle->flush();
        say(flushed.ok() ? "SEND ok " + std::to_string(count)
                         : "SEND failed " + flushed.to_string());
    } else if (command == "stream") {
        std::string queue;
        long long count = 0;
        long long start = 0;
        double rate = 0;
        words >> queue >> count >> start >> rate;
        auto handle = node.queue(queue, probe.queue_options);
        if (!handle) {
            say("STREAM failed " + handle.status().to_string());
        } else if (count <= 0 || rate <= 0) {
            say("STREAM failed needs COUNT > 0 and RATE > 0");
        } else if (!probe.streamer.start(*handle, count, start, rate)) {
            say("STREAM failed a stream is still running");
        } else {
            say("STREAM ok started");
        }
    } else if (command == "publish") {
        std::string topic;
        long long count = 0;
        double rate = 0;
        words >> topic >> count >> rate;
        if (count <= 0 || rate <= 0) {
            say("PUBLISH failed needs COUNT > 0 and RATE > 0");
        } else if (!probe.publisher.start(node, topic, count, rate)) {
            say("PUBLISH failed a run is still going");
        } else {
            say("PUBLISH ok started");
        }
    } else if (command == "topic-stats") {
        std::string topic;
        words >> topic;
        const auto stats = node.stats();
        const auto it = stats.topics.find(topic);
        const ChannelStats t = it == stats.topics.end() ? ChannelStats{} : it->second;
        say("TOPIC-STATS ok received=" + std::to_string(t.received) + " delivered=" +
            std::to_string(t.delivered) + " repaired=" + std::to_string(t.repaired) +
            " lost=" + std::to_string(t.lost) + " resent=" + std::to_string(t.resent) +
            " history_served=" + std::to_string(t.history_served));
    } else if (command == "stats") {
        std::string queue;
        words >> queue;
        say(stats_answer(probe, queue));
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
    } else if (command == "dropped") {
        std::string out = "DROPPED ok";
        for (const auto& [reason, count] : node.stats().dropped) {
            out += " " + reason + "=" + std::to_string(count);
        }
        say(out);
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

int run_probe(const std::vector<std::string>& args) {
    Flags flags("probe", args);
    NodeFlags node_flags;
    std::string commands_path;
    std::string reliable_prefix;
    bool reliable = false;
    std::uint32_t history = 0;
    std::optional<std::size_t> topic_history;
    while (flags.next()) {
        if (node_flags.take(flags)) continue;
        if (flags.is("--commands")) {
            commands_path = flags.value();
        } else if (flags.is("--reliable")) {
            reliable_prefix = flags.value();
            reliable = true;
        } else if (flags.is("--history")) {
            history = static_cast<std::uint32_t>(flags.number());
        } else if (flags.is("--topic-history")) {
            topic_history = static_cast<std::size_t>(flags.number());
        } else {
            flags.unknown();
        }
    }
    NodeOptions options = node_flags.node_options(flags);
    if (topic_history) options.topic_history = *topic_history;
    auto created = Node::create(std::move(options));
    if (!created) {
        say("ERROR " + created.status().to_string());
        return 1;
    }
    Node node = std::move(created).value();
    node.on_peer_event([](const PeerEvent& event) {
        say("PEER t_ns=" + std::to_string(monotonic_ns()) + " name=" + event.peer.name + " id=" +
            event.peer.id.to_string() + " state=" + std::string(to_string(event.peer.state)) +
            " previous=" + std::string(to_string(event.previous)) +
            " queues=" + join(event.peer.queues));
    });
    // Peers known before the handler was in place (one already running greets this node as soon as
    // its inbox is bound): their state now, as a line like an event's. peers() is answered after
    // the handler is set, so nothing falls between the two.
    for (const PeerInfo& peer : node.peers()) {
        if (peer.state == PeerState::connecting) continue;
        say("PEER t_ns=" + std::to_string(monotonic_ns()) + " name=" + peer.name +
            " id=" + peer.id.to_string() + " state=" + std::string(to_string(peer.state)) +
            " previous=connecting queues=" + join(peer.queues));
    }
    if (!node_flags.consume.empty()) {
        const Status status = node.consume(
            node_flags.consume,
            [](Delivery& delivery) { say("GOT " + std::to_string(message_id(delivery))); },
            node_flags.consume_options);
        if (!status.ok()) flags.fail(status.to_string());
    }
    if (reliable) {
        SubscribeOptions subscribe;
        subscribe.reliability = TopicReliability::reliable;
        subscribe.history = history;
        subscribe.on_lost = [](const SampleLost& lost) {
            say("LOST " + lost.topic + " " + std::to_string(lost.first) + " " +
                std::to_string(lost.last) + " " + lost.reason);
        };
        const Status status = node.subscribe(
            reliable_prefix,
            [](const Message& message) {
                say("TOPIC " + message.channel + " " + std::to_string(message.seq) + " " +
                    std::to_string(message.as<long long>()) + (message.history ? " h" : " l"));
            },
            std::move(subscribe));
        if (!status.ok()) flags.fail(status.to_string());
    }
    int commands_fd = -1;
    if (!commands_path.empty()) {
        // O_RDWR: opening never blocks, and the FIFO never reports EOF while we hold it.
        commands_fd = open(commands_path.c_str(), O_RDWR | O_CLOEXEC);
        if (commands_fd < 0) flags.fail("cannot open --commands " + commands_path);
    }
    say("READY id=" + node.id().to_string() + " inbox=" + node.address() +
        " pub=" + node.pub_endpoint() + " discovery=" + node_flags.discovery);

    Probe probe{node, node_flags.queue_options, {}};
    LineReader from_stdin(STDIN_FILENO);
    LineReader from_commands(commands_fd);
    bool running = true;
    while (running) {
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {commands_fd, POLLIN, 0}};
        const int ready = poll(fds, commands_fd >= 0 ? 2 : 1, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            break;
        }
        std::vector<std::string> commands;
        if (fds[0].revents != 0 && !from_stdin.read(commands)) running = false;
        if (commands_fd >= 0 && fds[1].revents != 0) (void)from_commands.read(commands);
        for (const auto& command : commands) {
            if (!run_command(probe, command)) running = false;
        }
    }
    probe.streamer.stop();
    probe.publisher.stop();
    node.close();
    if (commands_fd >= 0) close(commands_fd);
    say("CLOSED");
    return 0;
}

}  // namespace peermq::driver
