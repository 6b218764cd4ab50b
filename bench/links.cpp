#include "links.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "peer_process.hpp"
#include "peermq/node.hpp"
#include "roles.hpp"

namespace peermq::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kReplyTimeout = milliseconds(10'000);  // "ready", "armed"
constexpr auto kRunTimeout = milliseconds(90'000);    // "done": a run is meant to take ~1 s
constexpr auto kStopTimeout = milliseconds(10'000);
constexpr auto kConfirmTimeout = milliseconds(30'000);
constexpr std::uint32_t kPrefetch = 1024;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Starts a peer process in `role` and returns it with the port it reported.
Result<std::pair<PeerProcess, std::uint16_t>> start_peer(const BenchContext& context,
                                                         const std::vector<std::string>& args) {
    auto process = PeerProcess::spawn(context.executable, args);
    if (!process) return process.status();
    auto ready = process->expect("ready", kReplyTimeout);
    if (!ready) return ready.status();
    if (ready->size() != 2) return make_error(ErrorCode::protocol_error, "bad 'ready' line");
    const auto port = static_cast<std::uint16_t>(std::stoi(ready.value()[1]));
    return std::pair<PeerProcess, std::uint16_t>(std::move(process).value(), port);
}

// Parses "done <count> <ns>" and checks the count.
Result<std::int64_t> parse_done(const std::vector<std::string>& words, std::size_t expected) {
    if (words.size() != 3) return make_error(ErrorCode::protocol_error, "bad 'done' line");
    const auto count = std::stoull(words[1]);
    if (count != expected) {
        return make_error(ErrorCode::internal, "the peer received " + std::to_string(count) +
                                                   " of " + std::to_string(expected) + " messages");
    }
    return static_cast<std::int64_t>(std::stoll(words[2]));
}

// Reads the reply to a run: "done" with the first-to-last time, or the peer's "timeout".
Result<std::int64_t> await_done(PeerProcess& peer, std::size_t expected) {
    auto line = peer.read_line(kRunTimeout);
    if (!line) return line.status();
    const auto words = split_words(line.value());
    if (!words.empty() && words[0] == "timeout") {
        return make_error(ErrorCode::timed_out, "the peer timed out: " + line.value());
    }
    if (words.empty() || words[0] != "done") {
        return make_error(ErrorCode::protocol_error, "unexpected reply '" + line.value() + "'");
    }
    return parse_done(words, expected);
}

Status arm(PeerProcess& peer, std::size_t n) {
    if (Status sent = peer.send_line("run " + std::to_string(n)); !sent.ok()) return sent;
    auto armed = peer.expect("armed", kReplyTimeout);
    return armed ? Status{} : armed.status();
}

// Rate from the receiver's first-to-last arrival time: n - 1 intervals.
Result<double> receiver_rate(std::size_t n, std::int64_t ns) {
    if (n < 2 || ns <= 0) return make_error(ErrorCode::internal, "run too short to time");
    return static_cast<double>(n - 1) * 1e9 / static_cast<double>(ns);
}

// Waits until `condition` holds, checking every `every`; false past the deadline.
template <typename Condition>
bool wait_until(Condition condition, Clock::duration timeout,
                Clock::duration every = milliseconds(1)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(every);
    }
}

// A directory under the system's temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir() = default;
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        if (path_.empty()) return;
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    Status create() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "peermq-bench-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            return make_error(ErrorCode::io_error, "mkdtemp failed for " + pattern);
        }
        path_ = pattern;
        return {};
    }
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

NodeOptions producer_options(const BenchContext& context, std::uint16_t consumer_port) {
    NodeOptions options;
    options.name = "bench-producer";
    options.cluster = context.cluster;
    options.interface = "lo";
    options.peers = {"127.0.0.1:" + std::to_string(consumer_port)};
    options.durability = Durability::memory;
    return options;
}

// Waits until the producer sees the consumer alive and consuming "bench".
Status await_consumer(const Node& producer) {
    const bool seen = wait_until(
        [&] {
            for (const auto& peer : producer.peers()) {
                if (peer.state == PeerState::alive &&
                    std::find(peer.queues.begin(), peer.queues.end(), "bench") !=
                        peer.queues.end()) {
                    return true;
                }
            }
            return false;
        },
        kReplyTimeout);
    return seen ? Status{}
                : make_error(ErrorCode::timed_out, "the consumer did not appear as alive");
}

std::vector<std::string> consumer_args(const BenchContext& context,
                                       std::chrono::microseconds ack_interval) {
    return {"--role",
            kRolePeermqConsumer,
            "--cluster",
            context.cluster,
            "--prefetch",
            std::to_string(kPrefetch),
            "--ack-interval-us",
            std::to_string(ack_interval.count())};
}

// ---------------------------------------------------------------------------------------------

class RawPush final : public ThroughputLink {
public:
    RawPush(PeerProcess peer, std::uint16_t port, std::size_t size)
        : peer_(std::move(peer)), push_(context_, zmq::socket_type::push), payload_(size, 'x') {
        push_.set(zmq::sockopt::linger, 0);
        push_.connect("tcp://127.0.0.1:" + std::to_string(port));
    }

    Result<double> run(std::size_t n) override {
        if (Status armed = arm(peer_, n); !armed.ok()) return armed;
        for (std::size_t i = 0; i < n; ++i) {
            zmq::message_t message(payload_.data(), payload_.size());
            (void)push_.send(message, zmq::send_flags::none);
        }
        auto ns = await_done(peer_, n);
        if (!ns) return ns.status();
        return receiver_rate(n, ns.value());
    }

    Status stop() override {
        push_.close();
        return peer_.stop(kStopTimeout);
    }

private:
    PeerProcess peer_;
    zmq::context_t context_;
    zmq::socket_t push_;
    std::string payload_;
};

class PeermqQueue final : public ThroughputLink {
public:
    PeermqQueue(PeerProcess peer, std::unique_ptr<TempDir> dir, Node producer, Queue queue,
                PeermqMode mode, std::size_t size)
        : dir_(std::move(dir)),
          peer_(std::move(peer)),
          producer_(std::move(producer)),
          queue_(std::move(queue)),
          mode_(mode),
          payload_(size, 'x') {}

    Result<double> run(std::size_t n) override {
        if (n < 2) return make_error(ErrorCode::invalid_argument, "a run needs 2 messages");
        if (Status armed = arm(peer_, n); !armed.ok()) return armed;
        if (mode_ == PeermqMode::best_effort) {
            if (Status sent = send(n); !sent.ok()) return sent;
            auto ns = await_done(peer_, n);
            if (!ns) return ns.status();
            return receiver_rate(n, ns.value());
        }
        const std::uint64_t base = acked();
        const auto start = Clock::now();
        if (Status sent = send(n - 1); !sent.ok()) return sent;
        // The last message's receipt says when the run is through: acks come back in order
        // from the single consumer. The count is then checked in the stats.
        auto receipt =
            queue_.send_payload_confirmed(Payload::copy_of(payload_.data(), payload_.size()));
        if (receipt.wait_for(kConfirmTimeout) != std::future_status::ready) {
            return make_error(ErrorCode::timed_out, "the last message was not acked in time");
        }
        if (auto result = receipt.get(); !result) return result.status();
        auto end = Clock::now();
        if (acked() < base + n) {
            if (!wait_until([&] { return acked() >= base + n; }, kConfirmTimeout)) {
                return make_error(ErrorCode::timed_out, "only " + std::to_string(acked() - base) +
                                                            " of " + std::to_string(n) +
                                                            " messages were acked");
            }
            end = Clock::now();
        }
        auto ns = await_done(peer_, n);
        if (!ns) return ns.status();
        return static_cast<double>(n) / seconds(end - start);
    }

    Status stop() override {
        producer_.close();
        return peer_.stop(kStopTimeout);
    }

private:
    Status send(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            auto id = queue_.send_payload(Payload::copy_of(payload_.data(), payload_.size()));
            if (!id) return id.status();
        }
        return {};
    }

    std::uint64_t acked() const {
        const auto stats = producer_.stats();
        const auto it = stats.queues.find("bench");
        return it == stats.queues.end() ? 0 : it->second.acked;
    }

    std::unique_ptr<TempDir> dir_;  // first member: removed after the node closed
    PeerProcess peer_;
    Node producer_;
    Queue queue_;
    PeermqMode mode_;
    std::string payload_;
};

class RawReqRep final : public LatencyLink {
public:
    RawReqRep(PeerProcess peer, std::uint16_t port, std::size_t size)
        : peer_(std::move(peer)), req_(context_, zmq::socket_type::req), payload_(size, 'x') {
        req_.set(zmq::sockopt::linger, 0);
        req_.set(zmq::sockopt::rcvtimeo, static_cast<int>(kConfirmTimeout.count()));
        req_.connect("tcp://127.0.0.1:" + std::to_string(port));
    }

    Result<std::vector<double>> run(std::size_t m) override {
        if (Status armed = arm(peer_, m); !armed.ok()) return armed;
        std::vector<double> micros;
        micros.reserve(m);
        zmq::message_t answer;
        for (std::size_t i = 0; i < m; ++i) {
            const auto start = Clock::now();
            zmq::message_t message(payload_.data(), payload_.size());
            (void)req_.send(message, zmq::send_flags::none);
            if (!req_.recv(answer)) {
                return make_error(ErrorCode::timed_out, "no REP answer in time");
            }
            micros.push_back(seconds(Clock::now() - start) * 1e6);
        }
        if (auto ns = await_done(peer_, m); !ns) return ns.status();
        return micros;
    }

    Status stop() override {
        req_.close();
        return peer_.stop(kStopTimeout);
    }

private:
    PeerProcess peer_;
    zmq::context_t context_;
    zmq::socket_t req_;
    std::string payload_;
};

class PeermqConfirmed final : public LatencyLink {
public:
    PeermqConfirmed(PeerProcess peer, Node producer, Queue queue, std::size_t size)
        : peer_(std::move(peer)),
          producer_(std::move(producer)),
          queue_(std::move(queue)),
          payload_(size, 'x') {}

    Result<std::vector<double>> run(std::size_t m) override {
        if (Status armed = arm(peer_, m); !armed.ok()) return armed;
        std::vector<double> micros;
        micros.reserve(m);
        for (std::size_t i = 0; i < m; ++i) {
            const auto start = Clock::now();
            auto receipt =
                queue_.send_payload_confirmed(Payload::copy_of(payload_.data(), payload_.size()));
            if (receipt.wait_for(kConfirmTimeout) != std::future_status::ready) {
                return make_error(ErrorCode::timed_out, "a message was not acked in time");
            }
            auto result = receipt.get();
            if (!result) return result.status();
            if (result->outcome != Receipt::Outcome::acked) {
                return make_error(ErrorCode::internal,
                                  "a message was dead-lettered: " + result->reason);
            }
            micros.push_back(seconds(Clock::now() - start) * 1e6);
        }
        if (auto ns = await_done(peer_, m); !ns) return ns.status();
        return micros;
    }

    Status stop() override {
        producer_.close();
        return peer_.stop(kStopTimeout);
    }

private:
    PeerProcess peer_;
    Node producer_;
    Queue queue_;
    std::string payload_;
};

}  // namespace

const char* to_string(PeermqMode mode) noexcept {
    switch (mode) {
        case PeermqMode::best_effort: return "best_effort";
        case PeermqMode::memory: return "memory";
        case PeermqMode::group_commit: return "group_commit";
    }
    return "?";
}

Result<std::unique_ptr<ThroughputLink>> start_raw_push(const BenchContext& context,
                                                       std::size_t payload_size) {
    auto peer = start_peer(context, {"--role", kRoleZmqPull});
    if (!peer) return peer.status();
    auto& [process, port] = peer.value();
    return std::unique_ptr<ThroughputLink>(
        std::make_unique<RawPush>(std::move(process), port, payload_size));
}

Result<std::unique_ptr<ThroughputLink>> start_peermq_queue(const BenchContext& context,
                                                           PeermqMode mode,
                                                           std::size_t payload_size) {
    auto peer = start_peer(context, consumer_args(context, NodeOptions{}.ack_batch_interval));
    if (!peer) return peer.status();
    auto& [process, port] = peer.value();
    NodeOptions options = producer_options(context, port);
    auto dir = std::make_unique<TempDir>();
    if (mode == PeermqMode::group_commit) {
        if (Status created = dir->create(); !created.ok()) return created;
        options.data_dir = dir->path();
        options.durability = Durability::group_commit;
    }
    auto producer = Node::create(options);
    if (!producer) return producer.status();
    QueueOptions queue_options;
    queue_options.guarantee =
        mode == PeermqMode::best_effort ? Guarantee::best_effort : Guarantee::at_least_once;
    queue_options.max_length = context.max_length;
    auto queue = producer->queue("bench", queue_options);
    if (!queue) return queue.status();
    if (Status seen = await_consumer(producer.value()); !seen.ok()) return seen;
    return std::unique_ptr<ThroughputLink>(std::make_unique<PeermqQueue>(
        std::move(process), std::move(dir), std::move(producer).value(), std::move(queue).value(),
        mode, payload_size));
}

Result<std::unique_ptr<LatencyLink>> start_raw_reqrep(const BenchContext& context,
                                                      std::size_t payload_size) {
    auto peer = start_peer(context, {"--role", kRoleZmqRep});
    if (!peer) return peer.status();
    auto& [process, port] = peer.value();
    return std::unique_ptr<LatencyLink>(
        std::make_unique<RawReqRep>(std::move(process), port, payload_size));
}

Result<std::unique_ptr<LatencyLink>> start_peermq_confirmed(
    const BenchContext& context, std::size_t payload_size,
    std::chrono::microseconds ack_batch_interval) {
    auto peer = start_peer(context, consumer_args(context, ack_batch_interval));
    if (!peer) return peer.status();
    auto& [process, port] = peer.value();
    auto producer = Node::create(producer_options(context, port));
    if (!producer) return producer.status();
    QueueOptions queue_options;
    queue_options.guarantee = Guarantee::at_least_once;
    auto queue = producer->queue("bench", queue_options);
    if (!queue) return queue.status();
    if (Status seen = await_consumer(producer.value()); !seen.ok()) return seen;
    return std::unique_ptr<LatencyLink>(std::make_unique<PeermqConfirmed>(
        std::move(process), std::move(producer).value(), std::move(queue).value(), payload_size));
}

}  // namespace peermq::bench
