#include "links.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "peer_process.hpp"
#include "peermq/keys.hpp"
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
constexpr int kTopicHwm = 100'000;  // as peermq's PUB socket (core/src/node/node.cpp)

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A peer process in its role, with the port it reported and, for a peermq node, its public
// key ("ready PORT [KEY]").
struct StartedPeer {
    PeerProcess process;
    std::uint16_t port = 0;
    std::string key;
};

Result<StartedPeer> start_peer(const BenchContext& context, const std::vector<std::string>& args) {
    std::vector<std::string> argv = context.role_prefix;
    argv.insert(argv.end(), args.begin(), args.end());
    auto process = PeerProcess::spawn(context.executable, argv);
    if (!process) return process.status();
    auto ready = process->expect("ready", kReplyTimeout);
    if (!ready) return ready.status();
    if (ready->size() != 2 && ready->size() != 3) {
        return make_error(ErrorCode::protocol_error, "bad 'ready' line");
    }
    const auto port = static_cast<std::uint16_t>(std::stoi(ready.value()[1]));
    std::string key = ready->size() == 3 ? ready.value()[2] : std::string();
    return StartedPeer{std::move(process).value(), port, std::move(key)};
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

// "run N" (or "run N all": the run ends at its N-th message only, roles.hpp), then "armed".
Status arm(PeerProcess& peer, std::size_t n, bool all = false) {
    const std::string command = "run " + std::to_string(n) + (all ? " all" : "");
    if (Status sent = peer.send_line(command); !sent.ok()) return sent;
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

NodeOptions producer_options(const BenchContext& context, std::uint16_t consumer_port,
                             const std::string& consumer_key) {
    NodeOptions options;
    options.name = "bench-producer";
    options.cluster = context.cluster;
    options.interface = "lo";
    options.peers = {peer_address("127.0.0.1:" + std::to_string(consumer_port), consumer_key)};
    options.durability = Durability::memory;
    set_trust(options, context.trust);
    return options;
}

bool has(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Waits until the producer sees the consumer alive and consuming "bench".
Status await_consumer(const Node& producer) {
    const bool seen = wait_until(
        [&] {
            for (const auto& peer : producer.peers()) {
                if (peer.state == PeerState::alive && has(peer.queues, "bench")) return true;
            }
            return false;
        },
        kReplyTimeout);
    return seen ? Status{}
                : make_error(ErrorCode::timed_out, "the consumer did not appear as alive");
}

// Waits until the publisher sees `count` subscribers alive and subscribed to "bench".
Status await_subscriber(const Node& publisher, std::size_t count = 1) {
    const bool seen = wait_until(
        [&] {
            std::size_t n = 0;
            for (const auto& peer : publisher.peers()) {
                if (peer.state == PeerState::alive && has(peer.topics, kBenchTopic)) ++n;
            }
            return n >= count;
        },
        kReplyTimeout);
    return seen ? Status{}
                : make_error(ErrorCode::timed_out, "the subscriber did not appear as alive");
}

// The producer's node: for a durable flow, with its journal in `dir` (created here).
Result<Node> start_producer(const BenchContext& context, std::uint16_t consumer_port,
                            const std::string& consumer_key, QueueFlow flow, TempDir& dir) {
    NodeOptions options = producer_options(context, consumer_port, consumer_key);
    if (flow.durability != Durability::memory) {
        if (Status created = dir.create(); !created.ok()) return created;
        options.data_dir = dir.path();
        options.durability = flow.durability;
    }
    return Node::create(options);
}

std::vector<std::string> consumer_args(const BenchContext& context,
                                       std::chrono::microseconds ack_interval) {
    return {"--role",
            kRolePeermqConsumer,
            "--cluster",
            context.cluster,
            "--prefetch",
            std::to_string(context.prefetch),
            "--ack-interval-us",
            std::to_string(ack_interval.count()),
            "--trust",
            trust_name(context.trust)};
}

// ---------------------------------------------------------------------------------------------

class RawPush final : public ThroughputLink {
public:
    // `server_key` empty: plain; else a CURVE client of the peer's key with `client`.
    RawPush(PeerProcess peer, std::uint16_t port, const std::string& server_key,
            const KeyPair& client, std::size_t size)
        : peer_(std::move(peer)), push_(context_, zmq::socket_type::push), payload_(size, 'x') {
        push_.set(zmq::sockopt::linger, 0);
        if (!server_key.empty()) {
            push_.set(zmq::sockopt::curve_serverkey, server_key);
            push_.set(zmq::sockopt::curve_publickey, client.public_key);
            push_.set(zmq::sockopt::curve_secretkey, client.secret_key);
        }
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
                Guarantee guarantee, std::size_t size)
        : dir_(std::move(dir)),
          peer_(std::move(peer)),
          producer_(std::move(producer)),
          queue_(std::move(queue)),
          guarantee_(guarantee),
          payload_(size, 'x') {}

    Result<double> run(std::size_t n) override {
        if (n < 2) return make_error(ErrorCode::invalid_argument, "a run needs 2 messages");
        if (Status armed = arm(peer_, n); !armed.ok()) return armed;
        if (guarantee_ == Guarantee::best_effort) {
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
    Guarantee guarantee_;
    std::string payload_;
};

// The sending half shared by the two topic links: runs end with the run's end marker, sent
// after the data on the same connection, so a run whose messages were partly dropped ends too.
class TopicLink : public ThroughputLink {
public:
    Result<double> run(std::size_t n) override {
        if (n < 2) return make_error(ErrorCode::invalid_argument, "a run needs 2 messages");
        ++run_number_;
        if (Status armed = arm(peer_, n, whole_runs_); !armed.ok()) return armed;
        for (std::size_t i = 0; i < n; ++i) {
            if (Status sent = publish_data(); !sent.ok()) return sent;
        }
        auto line = publish_until_answer(end_marker(run_number_), kRunTimeout);
        if (!line) return line.status();
        auto done = take_done(line.value(), n);
        if (!done) return done.status();
        const auto [got, ns] = done.value();
        if (got < 2) {
            return make_error(ErrorCode::internal, "the subscriber received " +
                                                       std::to_string(got) + " of " +
                                                       std::to_string(n) + " messages");
        }
        return receiver_rate(got, ns);
    }

    Result<PausedRun> run_paused(std::size_t n, bool all) override {
        ++run_number_;
        if (Status armed = arm(peer_, n, all); !armed.ok()) return armed;
        if (::kill(peer_.pid(), SIGSTOP) != 0) {
            return make_error(ErrorCode::internal, "SIGSTOP: " + std::string(strerror(errno)));
        }
        for (std::size_t i = 0; i < n; ++i) {
            if (Status sent = publish_data(); !sent.ok()) {
                (void)::kill(peer_.pid(), SIGCONT);
                return sent;
            }
        }
        const auto resumed = Clock::now();
        if (::kill(peer_.pid(), SIGCONT) != 0) {
            return make_error(ErrorCode::internal, "SIGCONT: " + std::string(strerror(errno)));
        }
        // With `all` the subscriber answers once it has all n; otherwise at the end marker.
        auto line = all ? peer_.read_line(kRunTimeout)
                        : publish_until_answer(end_marker(run_number_), kRunTimeout);
        if (!line) return line.status();
        const double recovery = seconds(Clock::now() - resumed);
        auto done = take_done(line.value(), n);
        if (!done) return done.status();
        return PausedRun{done->first, recovery};
    }

    Status stop() override {
        close_sender();
        return peer_.stop(kStopTimeout);
    }

    std::uint64_t lost() const override { return lost_; }

    // Publishes sync markers until the subscriber received one: the subscription has reached
    // the publisher, so that no message of the first run is published into the void.
    Status sync() {
        if (Status sent = peer_.send_line("sync"); !sent.ok()) return sent;
        auto line = publish_until_answer("s", kReplyTimeout);
        if (!line) return line.status();
        if (line.value() != "synced") {
            return make_error(ErrorCode::timed_out, "the subscriber never received a message");
        }
        return {};
    }

protected:
    explicit TopicLink(PeerProcess peer, bool whole_runs = false)
        : peer_(std::move(peer)), whole_runs_(whole_runs) {}
    // Asks the subscriber for its repairs (a peermq subscriber's role answers "stats").
    Result<std::optional<RepairFigures>> ask_repairs() {
        if (Status sent = peer_.send_line("stats"); !sent.ok()) return sent;
        auto line = peer_.read_line(kReplyTimeout);
        if (!line) return line.status();
        const auto words = split_words(line.value());
        if (words.size() != 8 || words[0] != "stats") {
            return make_error(ErrorCode::internal,
                              "the subscriber answered '" + line.value() + "' to stats");
        }
        RepairFigures figures;
        figures.gaps = std::stoull(words[1]);
        figures.p50_us = std::stoull(words[2]);
        figures.p99_us = std::stoull(words[3]);
        figures.repaired = std::stoull(words[4]);
        figures.lost = std::stoull(words[5]);
        figures.duplicates = std::stoull(words[6]);
        figures.held_full = std::stoull(words[7]);
        return std::optional<RepairFigures>(figures);
    }
    virtual Status publish_data() = 0;
    virtual Status publish_control(const std::string& body) = 0;
    virtual void close_sender() = 0;

private:
    // The subscriber's "done <got> <ns>" to a run of n: got (at most n; the rest is counted
    // lost) and ns.
    Result<std::pair<std::size_t, std::int64_t>> take_done(const std::string& line, std::size_t n) {
        const auto words = split_words(line);
        if (words.size() != 3 || words[0] != "done") {
            return make_error(ErrorCode::timed_out, "the subscriber answered '" + line + "'");
        }
        const std::size_t got = std::min<std::size_t>(std::stoull(words[1]), n);
        lost_ += n - got;
        return std::pair<std::size_t, std::int64_t>(got, std::stoll(words[2]));
    }

    // Publishes `body` about every millisecond until the peer answers; returns the answer.
    Result<std::string> publish_until_answer(const std::string& body,
                                             std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            if (Status sent = publish_control(body); !sent.ok()) return sent;
            auto line = peer_.read_line(milliseconds(1));
            if (line || line.status().code() != ErrorCode::timed_out) return line;
            if (Clock::now() >= deadline) {
                return make_error(ErrorCode::timed_out, "the subscriber did not answer in time");
            }
        }
    }

    PeerProcess peer_;
    const bool whole_runs_;  // a run ends at its N-th message (BenchContext::whole_runs)
    std::uint64_t run_number_ = 0;
    std::uint64_t lost_ = 0;
};

class RawPub final : public TopicLink {
public:
    RawPub(PeerProcess peer, std::uint16_t port, std::size_t size)
        : TopicLink(std::move(peer)), pub_(context_, zmq::socket_type::pub), payload_(size, 'x') {
        pub_.set(zmq::sockopt::sndhwm, kTopicHwm);
        pub_.set(zmq::sockopt::linger, 0);
        pub_.connect("tcp://127.0.0.1:" + std::to_string(port));
    }

private:
    Status publish_data() override {
        zmq::message_t message(payload_.data(), payload_.size());
        (void)pub_.send(message, zmq::send_flags::none);  // PUB drops past its high-water mark
        return {};
    }
    Status publish_control(const std::string& body) override {
        const std::string frame = kControlByte + body;
        zmq::message_t message(frame.data(), frame.size());
        (void)pub_.send(message, zmq::send_flags::none);
        return {};
    }
    void close_sender() override { pub_.close(); }

    zmq::context_t context_;
    zmq::socket_t pub_;
    std::string payload_;
};

class PeermqTopic final : public TopicLink {
public:
    PeermqTopic(PeerProcess peer, Node publisher, std::size_t size, bool whole_runs,
                std::optional<PeerProcess> dead = std::nullopt)
        : TopicLink(std::move(peer), whole_runs),
          dead_(std::move(dead)),
          publisher_(std::move(publisher)),
          payload_(size, 'x') {}

    Result<std::optional<RepairFigures>> repairs() override { return ask_repairs(); }

private:
    Status publish_data() override {
        return publisher_.publish_payload(kBenchTopic,
                                          Payload::copy_of(payload_.data(), payload_.size()));
    }
    Status publish_control(const std::string& body) override {
        return publisher_.publish_payload(kControlTopic,
                                          Payload::copy_of(body.data(), body.size()));
    }
    void close_sender() override { publisher_.close(); }

    std::optional<PeerProcess> dead_;  // a follower killed before the runs (reaped at the end)
    Node publisher_;
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
    PeermqConfirmed(PeerProcess peer, std::unique_ptr<TempDir> dir, Node producer, Queue queue,
                    std::size_t size)
        : dir_(std::move(dir)),
          peer_(std::move(peer)),
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
    std::unique_ptr<TempDir> dir_;  // first member: removed after the node closed
    PeerProcess peer_;
    Node producer_;
    Queue queue_;
    std::string payload_;
};

}  // namespace

QueueFlow flow_of(PeermqMode mode) noexcept {
    switch (mode) {
        case PeermqMode::best_effort: return {Guarantee::best_effort, Durability::memory};
        case PeermqMode::memory: return {Guarantee::at_least_once, Durability::memory};
        case PeermqMode::group_commit: return {Guarantee::at_least_once, Durability::group_commit};
    }
    return {};
}

const char* to_string(PeermqMode mode) noexcept {
    switch (mode) {
        case PeermqMode::best_effort: return "best_effort";
        case PeermqMode::memory: return "memory";
        case PeermqMode::group_commit: return "group_commit";
    }
    return "?";
}

const char* trust_name(TrustMode trust) noexcept {
    switch (trust) {
        case TrustMode::open: return "open";
        case TrustMode::plain: return "plain";
        case TrustMode::authorized: return "authorized";
        case TrustMode::tofu: return "tofu";
    }
    return "?";
}

Result<std::unique_ptr<ThroughputLink>> start_raw_push(const BenchContext& context,
                                                       std::size_t payload_size,
                                                       RawSecurity security) {
    const bool curve = security == RawSecurity::curve;
    std::vector<std::string> args = {"--role", kRoleZmqPull};
    if (curve) args.emplace_back("--curve");
    auto peer = start_peer(context, args);
    if (!peer) return peer.status();
    auto& [process, port, key] = peer.value();
    KeyPair client;
    if (curve) {
        if (key.empty()) return make_error(ErrorCode::protocol_error, "no CURVE key in 'ready'");
        auto made = generate_key_pair();
        if (!made) return made.status();
        client = std::move(made).value();
    } else {
        key.clear();  // a plain raw ZeroMQ peer has none
    }
    return std::unique_ptr<ThroughputLink>(
        std::make_unique<RawPush>(std::move(process), port, key, client, payload_size));
}

// What a queue link is made of: the consumer peer process, the producer node (with its journal
// in `dir` for a durable flow) and its queue "bench", once the producer sees the consumer.
struct QueueEnds {
    PeerProcess consumer;
    std::unique_ptr<TempDir> dir;
    Node producer;
    Queue queue;
};

Result<QueueEnds> start_queue_ends(const BenchContext& context, QueueFlow flow,
                                   std::size_t max_length, std::chrono::microseconds ack_interval) {
    auto peer = start_peer(context, consumer_args(context, ack_interval));
    if (!peer) return peer.status();
    auto& [process, port, key] = peer.value();
    auto dir = std::make_unique<TempDir>();
    auto producer = start_producer(context, port, key, flow, *dir);
    if (!producer) return producer.status();
    QueueOptions queue_options;
    queue_options.guarantee = flow.guarantee;
    queue_options.max_length = max_length;
    auto queue = producer->queue("bench", queue_options);
    if (!queue) return queue.status();
    if (Status seen = await_consumer(producer.value()); !seen.ok()) return seen;
    return QueueEnds{std::move(process), std::move(dir), std::move(producer).value(),
                     std::move(queue).value()};
}

Result<std::unique_ptr<ThroughputLink>> start_peermq_queue(const BenchContext& context,
                                                           QueueFlow flow,
                                                           std::size_t payload_size) {
    auto ends =
        start_queue_ends(context, flow, context.max_length, NodeOptions{}.ack_batch_interval);
    if (!ends) return ends.status();
    return std::unique_ptr<ThroughputLink>(std::make_unique<PeermqQueue>(
        std::move(ends->consumer), std::move(ends->dir), std::move(ends->producer),
        std::move(ends->queue), flow.guarantee, payload_size));
}

Result<std::unique_ptr<ThroughputLink>> start_raw_pub(const BenchContext& context,
                                                      std::size_t payload_size) {
    auto peer = start_peer(context, {"--role", kRoleZmqSub});
    if (!peer) return peer.status();
    auto& [process, port, key] = peer.value();
    (void)key;  // a raw ZeroMQ peer has none
    auto link = std::make_unique<RawPub>(std::move(process), port, payload_size);
    if (Status synced = link->sync(); !synced.ok()) return synced;
    return std::unique_ptr<ThroughputLink>(std::move(link));
}

Result<std::unique_ptr<ThroughputLink>> start_peermq_topic(const BenchContext& context,
                                                           std::size_t payload_size) {
    std::vector<std::string> role = {"--role",    kRolePeermqSubscriber,
                                     "--cluster", context.cluster,
                                     "--trust",   trust_name(context.trust)};
    if (context.reliable_topic || context.dead_follower) role.push_back("--reliable");
    auto peer = start_peer(context, role);
    if (!peer) return peer.status();
    auto& [process, port, key] = peer.value();
    NodeOptions options = producer_options(context, port, key);
    if (context.topic_history > 0) {
        options.topic_history = context.topic_history;
        options.topic_history_bytes = context.topic_history * 1024;
    }
    std::optional<PeerProcess> dead;
    if (context.dead_follower) {
        auto follower = start_peer(context, role);
        if (!follower) return follower.status();
        auto& [dead_process, dead_port, dead_key] = follower.value();
        options.peers.push_back(peer_address("127.0.0.1:" + std::to_string(dead_port), dead_key));
        dead = std::move(dead_process);
    }
    auto publisher = Node::create(options);
    if (!publisher) return publisher.status();
    if (Status seen = await_subscriber(publisher.value(), context.dead_follower ? 2 : 1);
        !seen.ok()) {
        return seen;
    }
    if (dead) {
        // It followed the publisher (its subscription and its start reached it): now it dies
        // without a word, and stays a follower until the publisher marks it down.
        ::kill(dead->pid(), SIGKILL);
    }
    auto link = std::make_unique<PeermqTopic>(std::move(process), std::move(publisher).value(),
                                              payload_size, context.whole_runs, std::move(dead));
    if (Status synced = link->sync(); !synced.ok()) return synced;
    return std::unique_ptr<ThroughputLink>(std::move(link));
}

Result<std::unique_ptr<LatencyLink>> start_raw_reqrep(const BenchContext& context,
                                                      std::size_t payload_size) {
    auto peer = start_peer(context, {"--role", kRoleZmqRep});
    if (!peer) return peer.status();
    auto& [process, port, key] = peer.value();
    (void)key;  // a raw ZeroMQ peer has none
    return std::unique_ptr<LatencyLink>(
        std::make_unique<RawReqRep>(std::move(process), port, payload_size));
}

Result<std::unique_ptr<LatencyLink>> start_peermq_confirmed(
    const BenchContext& context, QueueFlow flow, std::size_t payload_size,
    std::chrono::microseconds ack_batch_interval) {
    if (flow.guarantee == Guarantee::best_effort) {
        return make_error(ErrorCode::invalid_argument, "best_effort messages are never acked");
    }
    auto ends = start_queue_ends(context, flow, QueueOptions{}.max_length, ack_batch_interval);
    if (!ends) return ends.status();
    return std::unique_ptr<LatencyLink>(std::make_unique<PeermqConfirmed>(
        std::move(ends->consumer), std::move(ends->dir), std::move(ends->producer),
        std::move(ends->queue), payload_size));
}

}  // namespace peermq::bench
