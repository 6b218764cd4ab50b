// Fuzz target: a node under attack (docs/spec/wire.md §9, §13). Where envelope_fuzz.cpp checks
// the decoders alone, this target drives a whole node, T, through real sockets, with frames from
// three fake peers, while a legitimate producer L and consumer C use it; state carries over from
// one input to the next, as on a node under a long attack.
//
// The harness (created by the first input, kept for the process):
//   T  consumes queue "in", subscribes to "t.", sends on queue "work" (at_least_once, TTL 2 s,
//      ack timeout 200 ms, 3 attempts); heartbeat 100 ms, peer timeout 300 ms, max_peers 32,
//      max_payload_bytes 2048: liveness, retries, expiry and eviction all happen while fuzzing.
//   C  consumes "work" and records the ids it handles.   L  sends on "in" (effectively_once).
//   All three in TrustMode::plain (no CurveZMQ, any sender id accepted on any connection). On
//   purpose: a node in its default trust mode drops every inbox frame whose sender is not the
//   id of its connection's key (auth.sender_mismatch) before anything else reads it, so there
//   the spoofed, repeated and random sender ids below (C's, L's, T's own, 64 attacker ids from
//   one connection) would all end at that one check, and the paths they were made to reach (a
//   forged ACK, BYE or HELLO for a real peer, the peer table under many ids, batch entries of
//   another sender) would go untested. Those paths are what a plain node exposes, and what the
//   corpus (tests/fuzz/corpus/node) was built to explore. C and L are plain because a plain
//   node cannot talk to CURVE nodes. The sender check itself is covered by the hostile tests
//   (tests/hostile) and the integration tests.
//   Three attacker PUSH sockets connected to T's inbox; a PUB socket T subscribes to; PULL
//   sockets and plain TCP ports that attacker HELLOs may name as their address (below).
//
// An input is a small bytecode: a sequence of at most 48 ops, each an opcode byte (op kind =
// byte % 13, attacker socket = byte / 13 % 3) and its arguments, one byte per choice (bytes past
// the end read as 0):
//   DATA, BATCH (entries well-formed or not: another sender, another kind, a garbage header;
//   entry count right or wrong; body cut, extended or flipped), ACK / NACK / REJECT (id lists
//   of 0-8 or 2049 ids, error texts incl. "expired" and over the limit), HELLO (name, cluster,
//   host valid or not, ports, up to 3 or 1100 queues with prefetch 0 to 2^32-1, topics, batch,
//   batch_max; body missing, garbage or cut), HEARTBEAT, BYE, RAW frames, a MUTATED valid
//   header, LEGIT (T and L send more), ODD headers (minimal, extra elements, other versions and
//   kinds, negative numbers, short ids) and TOPIC messages on the PUB socket T subscribes to.
//   Sender ids are one of 64 fixed attacker ids, repeated from earlier in the input, spoofed
//   (C's, L's or T's own id), nil or 16 input bytes. Message ids are one of 256 fixed ids (so
//   inputs repeat them, also across inputs), repeated, nil, 16 input bytes, or one of the ids
//   T's queue "work" delivered to the attacker's own consumer socket (below). Channels: "work",
//   "in", "other", empty, 255 and 256 bytes, input bytes. Deadlines: none, past, soon, far,
//   negative. Payloads: empty, input bytes, a MessagePack number, "reject" / "throw" (T's
//   handler rejects / throws), at and over T's limit, over the transport's limit.
//   Attacker HELLOs name only loopback addresses and ports this harness holds (T's, C's and L's
//   own, a PULL that drains, a listener that never accepts, a bound port that refuses), so T
//   never connects to anything but this process, whatever the input.
//   T's real message ids are never put in attack frames except those delivered to an attacker
//   HELLO's address (its consumer legitimately knows them): an attacker acking ids it cannot
//   see is the key-based identity issue (#14), outside what a node without CurveZMQ can refuse.
//   Every input also makes T send one message on "work" and L one on "in".
//
// After each input, a barrier: on each attacker socket, after its frames, a HELLO from a barrier
// id of this process (never one an input can name; the HELLO's name carries the input's number)
// and a DATA asking for an answer, for a queue T does not consume: T's NACK of it, at the
// barrier's inbox, proves that T handled every frame before it (one connection is read in
// order). When no NACK comes (the HELLO refused by a full table, T's answer not sendable), T's
// peers() showing the three names of this input proves the same. Frames past the inbox's
// message size limit go on a fourth socket: libzmq drops that connection and what was queued on
// it, which never reaches the node. Then, on that settled node, these invariants (a failure
// aborts with a message, so that libFuzzer keeps the input):
//   - T answers stats() and peers() (a watchdog aborts if a step takes over 60 s) and has not
//     failed: a node must survive any input;
//   - every internal.* drop count of T is 0 and no library thread caught an exception (C's and
//     L's too, every 64 inputs): an exception inside the actor is a defect even when caught;
//   - T holds at most max_peers (32) peers: the bound is what keeps a flood of HELLOs from
//     taking memory and descriptors (no allowance: the table refuses past it);
//   - T's queue "work": messages sent == acked + dead-lettered + in flight + waiting (the
//     accounting of NodeStats): nothing vanishes, nothing is counted twice;
//   - every receipt of T's sends on "work" and of L's on "in" completes within 30 s (TTL 2 s:
//     everything ends acked or dead-lettered "expired" long before), acked only if the
//     consumer's handler saw it (C, or the attacker's consumer socket that it was delivered to;
//     for L's, T's handler), dead-lettered only with a known reason: every message of the
//     legitimate producers is handled or dead-lettered, none lost;
//   - RSS (every 256 inputs) under a bound: the node's state is bounded (peer table, dedupe
//     window 10 000, topic statistics) whatever the attack. The dead letters, whose receipts
//     were checked, are purged every 4096 inputs (in memory a node keeps up to 100 000).
// The deterministic replay (fuzz_driver.cpp) also waits, at the end, for every receipt to
// complete and closes the three nodes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "fuzz_driver.hpp"
#include "peermq/msgpack.hpp"
#include "peermq/node.hpp"
#include "wire/envelope.hpp"

namespace {

using namespace std::chrono_literals;
namespace detail = peermq::detail;
using peermq::MessageId;
using peermq::NodeId;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxPeers = 32;
constexpr std::size_t kMaxPayload = 2048;
constexpr auto kTtl = 2000ms;
constexpr int kAttackers = 3;
constexpr std::size_t kMaxOps = 48;
constexpr std::size_t kAttackerIds = 64;
constexpr auto kSettleLimit = 30s;    // a receipt still open this long after its send is lost
constexpr auto kBarrierLimit = 30s;   // T handles an input's frames within this
constexpr auto kStepLimit = 60s;      // the watchdog's limit for any step
constexpr auto kForgetSeen = 120s;    // ids seen by handlers are kept this long
constexpr std::size_t kSinkIds = 64;  // ids delivered to the attacker's consumer, kept
constexpr std::uint64_t kCheckOthersEvery = 64;
constexpr std::uint64_t kCheckRssEvery = 256;
constexpr std::uint64_t kForgetEvery = 4096;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif
// ASan's shadow memory and quarantine (256 MiB) come on top of the process's own memory.
constexpr std::size_t kRssLimitMb = kAsan ? 1536 : 512;

enum Op : std::uint8_t {
    kOpData,
    kOpBatch,
    kOpAck,
    kOpNack,
    kOpReject,
    kOpHello,
    kOpHeartbeat,
    kOpBye,
    kOpRaw,
    kOpMutated,
    kOpLegit,
    kOpOddHeader,
    kOpTopic,
    kOpCount,
};

std::atomic<const char*> g_phase{"starting"};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "node_fuzz: invariant failed (%s): %s\n", g_phase.load(), what.c_str());
    std::fflush(stderr);
    std::abort();
}

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Reads an input one choice at a time; past the end, every choice is 0.
class Reader {
public:
    Reader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
    bool empty() const { return p_ == end_; }
    std::uint8_t u8() { return p_ == end_ ? 0 : *p_++; }
    std::uint16_t u16() {
        const std::uint16_t high = u8();
        return static_cast<std::uint16_t>(high << 8 | u8());
    }
    std::string bytes(std::size_t n) {
        n = std::min<std::size_t>(n, static_cast<std::size_t>(end_ - p_));
        std::string out(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return out;
    }

private:
    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

// An id of 16 bytes: a tag, then the given bytes.
peermq::Uuid fixed_id(std::uint8_t tag, std::uint8_t n) {
    std::array<std::uint8_t, 16> bytes{};
    bytes[0] = tag;
    bytes[1] = n;
    bytes[15] = 0x5a;
    return peermq::Uuid(bytes);
}

peermq::Uuid input_id(Reader& r) {
    std::array<std::uint8_t, 16> bytes{};
    for (auto& byte : bytes) byte = r.u8();
    return peermq::Uuid(bytes);
}

// Ids seen by a handler (or by the attacker's consumer socket), with when.
class SeenIds {
public:
    void add(const MessageId& id) {
        std::lock_guard lock(mutex_);
        ids_[id] = SteadyClock::now();
    }
    bool contains(const MessageId& id) const {
        std::lock_guard lock(mutex_);
        return ids_.contains(id);
    }
    void forget_older_than(SteadyClock::duration age) {
        const auto limit = SteadyClock::now() - age;
        std::lock_guard lock(mutex_);
        std::erase_if(ids_, [&](const auto& entry) { return entry.second < limit; });
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<MessageId, SteadyClock::time_point, peermq::UuidHash> ids_;
};

// Every thread's stack, from gdb when there is one: where a node hangs.
void dump_threads() {
    if (std::system("command -v gdb >/dev/null 2>&1") != 0) return;
    const std::string command = "gdb -p " + std::to_string(::getpid()) +
                                " -batch -ex 'thread apply all bt' 1>&2 2>/dev/null";
    (void)std::system(command.c_str());
}

// Aborts the process when one step of the harness (named by g_phase) takes longer than its
// limit: a node that stops answering is a failure, not a hang of the fuzzer.
class Watchdog {
public:
    Watchdog() {
        std::thread([this] { run(); }).detach();  // lives as long as the process
    }
    void arm(const char* phase, SteadyClock::duration limit) {
        std::lock_guard lock(mutex_);
        g_phase = phase;
        deadline_ = SteadyClock::now() + limit;
    }

private:
    void run() {
        for (;;) {
            std::this_thread::sleep_for(1s);
            std::lock_guard lock(mutex_);
            if (SteadyClock::now() > deadline_) {
                dump_threads();
                fail("no progress for " +
                     std::to_string(
                         std::chrono::duration_cast<std::chrono::seconds>(kStepLimit).count()) +
                     " s: a node stopped answering");
            }
        }
    }

    std::mutex mutex_;
    SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
};

// A TCP port on 127.0.0.1 held by this process: listening but never accepting (connections
// complete, no ZMTP greeting ever comes back), or bound only (connections are refused).
class RawPort {
public:
    explicit RawPort(bool listening) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
            (listening && ::listen(fd_, 4) != 0) ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
            fail(std::string("cannot hold a loopback port: ") + std::strerror(errno));
        }
        port_ = ntohs(address.sin_port);
    }
    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

std::size_t rss_mb() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6)) / 1024;
    }
    return 0;
}

// A ZeroMQ call that a signal interrupts is made again. libzmq fails even a non-blocking send or
// receive with EINTR when a signal is pending (it first looks for its own threads' commands with
// a poll() of zero timeout), and libFuzzer's -timeout=120 is a SIGALRM every 61 s, to whichever
// thread of the process.
template <typename Call>
auto again_on_eintr(Call call) {
    for (;;) {
        try {
            return call();
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
    }
}

// False when the socket could not take the frame in its send timeout.
bool send_frame(zmq::socket_t& socket, zmq::message_t& frame, zmq::send_flags flags) {
    return again_on_eintr([&] { return socket.send(frame, flags).has_value(); });
}

// False when a non-blocking receive finds nothing.
bool recv_frame(zmq::socket_t& socket, zmq::message_t& frame,
                zmq::recv_flags flags = zmq::recv_flags::none) {
    return again_on_eintr([&] { return socket.recv(frame, flags).has_value(); });
}

std::string encode(const detail::Header& header) {
    msgpack::sbuffer buffer;
    detail::encode_header(header, buffer);
    return {buffer.data(), buffer.size()};
}

struct Pending {
    SteadyClock::time_point sent;
    std::future<peermq::Result<peermq::Receipt>> receipt;
};

class Harness;
Harness& harness();

class Harness {
public:
    Harness();

    void run(const std::uint8_t* data, std::size_t size);
    // Waits for every receipt, checks every node once more, closes them.
    void finish();
    void close();

private:
    // What one input has named so far, for its "repeat" choices.
    struct InputState {
        std::vector<NodeId> senders;
        std::vector<MessageId> ids;
    };

    void op(Reader& r, InputState& in);
    NodeId pick_sender(Reader& r, InputState& in);
    MessageId pick_id(Reader& r, InputState& in);
    std::string pick_channel(Reader& r);
    std::uint32_t pick_flags(Reader& r);
    std::uint32_t pick_attempt(Reader& r);
    std::int64_t pick_deadline(Reader& r);
    std::string pick_payload(Reader& r);
    peermq::Headers pick_headers(Reader& r);
    std::string pick_host(Reader& r);
    std::uint16_t pick_port(Reader& r);
    std::string pick_error(Reader& r);
    detail::Header data_header(Reader& r, InputState& in, const NodeId& sender);
    std::string hello_body(Reader& r);
    void send(zmq::socket_t& socket, const std::vector<std::string>& frames);
    // The frames of a message with a second frame, in the shape the input picks: both, the
    // first alone, or one frame too many.
    void send_shaped(zmq::socket_t& socket, std::uint8_t shape, std::string header,
                     std::string body);

    void send_legit(std::size_t work, std::size_t in);
    void send_barrier(int k);
    // The id of barrier k's message for this input; whether T's NACK of it came within the
    // timeout.
    MessageId barrier_id(int k) const;
    bool answered(int k, std::chrono::milliseconds timeout);
    void barrier();
    void drain();
    void check();
    void check_quiet(const peermq::NodeStats& stats, const char* who);
    void settle(bool wait);
    void verify(Pending& pending, bool work);

    Watchdog watchdog_;
    SeenIds c_handled_;   // ids of "work" that C's handler saw
    SeenIds t_handled_;   // ids of "in" from L's id that T's handler saw
    SeenIds sink_taken_;  // ids of "work" delivered to the attacker's consumer socket
    std::optional<peermq::Node> c_;
    std::optional<peermq::Node> l_;
    std::optional<peermq::Node> t_;
    std::optional<peermq::Queue> work_;
    std::optional<peermq::Queue> in_;

    zmq::context_t context_;
    std::vector<zmq::socket_t> attackers_;
    zmq::socket_t oversize_{context_, zmq::socket_type::push};
    std::vector<zmq::socket_t> barrier_inboxes_;
    std::vector<NodeId> barrier_ids_;
    zmq::socket_t sink_{context_, zmq::socket_type::pull};
    zmq::socket_t pub_{context_, zmq::socket_type::pub};
    RawPort blackhole_{true};
    RawPort refused_{false};
    std::uint16_t sink_port_ = 0;
    std::uint16_t pub_port_ = 0;

    std::deque<MessageId> sink_ids_;
    std::deque<Pending> work_pending_;
    std::deque<Pending> in_pending_;
    std::uint64_t inputs_ = 0;
    std::uint64_t work_admitted_ = 0;
    std::uint64_t in_admitted_ = 0;
    std::uint64_t payload_counter_ = 0;
    std::map<std::string, std::uint64_t> outcomes_;  // "work acked", "work expired", ...
};

Harness::Harness() {
    watchdog_.arm("creating the nodes", kStepLimit);
    const auto base = [](const char* name) {
        peermq::NodeOptions o;
        o.name = name;
        o.interface = "lo";
        o.heartbeat_interval = 100ms;
        o.peer_timeout = 300ms;
        o.log_level = peermq::LogLevel::error;
        o.trust = peermq::TrustMode::plain;  // see the top of this file
        return o;
    };
    c_.emplace(peermq::Node::create(base("fuzz-consumer")).value());
    l_.emplace(peermq::Node::create(base("fuzz-producer")).value());
    auto target = base("fuzz-target");
    target.peers = {c_->address(), l_->address()};
    target.max_peers = kMaxPeers;
    target.max_payload_bytes = kMaxPayload;
    target.dedupe_window = 10'000;
    t_.emplace(peermq::Node::create(std::move(target)).value());
    if (!c_->add_peer(t_->address()).ok() || !l_->add_peer(t_->address()).ok()) {
        fail("cannot add the target as a static peer");
    }

    const NodeId l_id = l_->id();
    auto status = t_->consume("in", [this, l_id](peermq::Delivery& delivery) {
        const peermq::Message& m = delivery.message();
        if (m.sender == l_id) t_handled_.add(m.id);
        const std::string_view text(reinterpret_cast<const char*>(m.payload.data()),
                                    m.payload.size());
        if (text == "reject") {
            delivery.reject("the fuzzer asked for it");
            return;
        }
        if (text == "throw") throw std::runtime_error("the fuzzer asked for it");
        (void)delivery.as<std::uint64_t>();  // anything else throws DecodeError: a NACK
    });
    if (!status.ok()) fail("T cannot consume: " + status.to_string());
    status = t_->subscribe("t.", [](const peermq::Message&) {});
    if (!status.ok()) fail("T cannot subscribe: " + status.to_string());
    status = c_->consume(
        "work", [this](peermq::Delivery& delivery) { c_handled_.add(delivery.message().id); });
    if (!status.ok()) fail("C cannot consume: " + status.to_string());
    const peermq::QueueOptions queue{.ttl = kTtl,
                                     .max_attempts = 3,
                                     .retry_initial = 10ms,
                                     .retry_max = 50ms,
                                     .ack_timeout = 200ms,
                                     .max_length = 10'000,
                                     .overflow = peermq::OverflowPolicy::reject,
                                     .max_credit = 64};
    work_.emplace(t_->queue("work", queue).value());
    auto in_options = queue;
    in_options.guarantee = peermq::Guarantee::effectively_once;
    in_.emplace(l_->queue("in", in_options).value());

    for (int k = 0; k < kAttackers; ++k) {
        zmq::socket_t& push = attackers_.emplace_back(context_, zmq::socket_type::push);
        push.set(zmq::sockopt::linger, 0);
        push.set(zmq::sockopt::sndtimeo, 10'000);
        push.connect(t_->inbox_endpoint());
        zmq::socket_t& pull = barrier_inboxes_.emplace_back(context_, zmq::socket_type::pull);
        pull.set(zmq::sockopt::linger, 0);
        pull.bind("tcp://127.0.0.1:*");
        barrier_ids_.push_back(NodeId::generate());
    }
    oversize_.set(zmq::sockopt::linger, 0);
    oversize_.connect(t_->inbox_endpoint());
    sink_.set(zmq::sockopt::linger, 0);
    sink_.bind("tcp://127.0.0.1:*");
    sink_port_ = port_of(sink_.get(zmq::sockopt::last_endpoint));
    pub_.set(zmq::sockopt::linger, 0);
    pub_.bind("tcp://127.0.0.1:*");
    pub_port_ = port_of(pub_.get(zmq::sockopt::last_endpoint));

    // Ready when T sees C consuming "work" and L sees T consuming "in".
    watchdog_.arm("waiting for the legitimate nodes to meet", kStepLimit);
    const auto consumes = [](const peermq::Node& node, const NodeId& id, const char* queue) {
        for (const auto& peer : node.peers()) {
            if (peer.id == id && peer.state == peermq::PeerState::alive &&
                std::find(peer.queues.begin(), peer.queues.end(), queue) != peer.queues.end()) {
                return true;
            }
        }
        return false;
    };
    const auto deadline = SteadyClock::now() + kBarrierLimit;
    while (!consumes(*t_, c_->id(), "work") || !consumes(*l_, t_->id(), "in")) {
        if (SteadyClock::now() > deadline) fail("the legitimate nodes did not meet in 30 s");
        std::this_thread::sleep_for(1ms);
    }
    // Until T's links to the barrier's inboxes are up, its answers cannot reach them.
    watchdog_.arm("the first barrier", kStepLimit);
    barrier();
    // Closed before the process's statics go, so that no node thread outlives them (libFuzzer
    // ends with exit()); close() is idempotent.
    std::atexit([] { harness().close(); });
    std::fprintf(stderr, "node_fuzz: target %s, consumer %s, producer %s; RSS limit %zu MiB\n",
                 t_->inbox_endpoint().c_str(), c_->inbox_endpoint().c_str(),
                 l_->inbox_endpoint().c_str(), kRssLimitMb);
}

NodeId Harness::pick_sender(Reader& r, InputState& in) {
    const std::uint8_t s = r.u8();
    NodeId id;
    switch (s % 8) {
        case 0:
        case 1:
        case 2: id = fixed_id(0xa7, static_cast<std::uint8_t>(r.u8() % kAttackerIds)); break;
        case 3:
            id = in.senders.empty() ? fixed_id(0xa7, 0) : in.senders[r.u8() % in.senders.size()];
            break;
        case 4: id = c_->id(); break;
        case 5: id = l_->id(); break;
        case 6: id = t_->id(); break;
        default:
            if (s & 0x8) id = input_id(r);  // else nil
            break;
    }
    if (in.senders.size() < 16) in.senders.push_back(id);
    return id;
}

MessageId Harness::pick_id(Reader& r, InputState& in) {
    const std::uint8_t s = r.u8();
    MessageId id;
    switch (s % 6) {
        case 0:
        case 1: id = fixed_id(0x4d, r.u8()); break;
        case 2: id = in.ids.empty() ? fixed_id(0x4d, 0) : in.ids[r.u8() % in.ids.size()]; break;
        case 3:
            id = sink_ids_.empty() ? fixed_id(0x4d, 1) : sink_ids_[r.u8() % sink_ids_.size()];
            break;
        case 4: break;  // nil
        default: id = input_id(r); break;
    }
    if (in.ids.size() < 16) in.ids.push_back(id);
    return id;
}

std::string Harness::pick_channel(Reader& r) {
    switch (r.u8() % 8) {
        case 0: return "work";
        case 1: return "in";
        case 2: return "other";
        case 3: return "";
        case 4: return "t.x";
        case 5: return std::string(detail::kMaxChannelBytes, 'q');
        case 6: return std::string(detail::kMaxChannelBytes + 1, 'q');  // frame.bad_field
        default: return r.bytes(r.u8() % 16);
    }
}

std::uint32_t Harness::pick_flags(Reader& r) {
    const std::uint8_t s = r.u8();
    return (s & 3u) | ((s & 0x80u) ? 0xffff0000u : 0u);  // reserved bits set, or not
}

std::uint32_t Harness::pick_attempt(Reader& r) {
    const std::uint8_t s = r.u8();
    return s == 0xff ? std::numeric_limits<std::uint32_t>::max() : s;  // 0: frame.bad_field
}

std::int64_t Harness::pick_deadline(Reader& r) {
    switch (r.u8() % 6) {
        case 0: return 0;
        case 1: return unix_ms() - 1000;
        case 2: return unix_ms() + 60'000;
        case 3: return std::numeric_limits<std::int64_t>::max();
        case 4: return -1;
        default: return unix_ms() + 30;  // expires while it waits
    }
}

std::string Harness::pick_payload(Reader& r) {
    const std::uint8_t s = r.u8();
    switch (s % 8) {
        case 0: return "";
        case 1: return r.bytes(r.u8() % 48);
        case 2: {
            msgpack::sbuffer buffer;
            msgpack::pack(buffer, static_cast<std::uint64_t>(r.u8()));
            return {buffer.data(), buffer.size()};
        }
        case 3: return "reject";
        case 4: return "throw";
        case 5: return std::string(kMaxPayload, 'p');
        case 6: return std::string(kMaxPayload + 1, 'p');  // frame.oversized_payload
        default:
            // Past max_payload_bytes + 64 KiB libzmq drops the connection (wire.md §10).
            if ((s >> 3) == 0x1f) return std::string(kMaxPayload + 70'000, 'x');
            return r.bytes(r.u8());
    }
}

peermq::Headers Harness::pick_headers(Reader& r) {
    const std::uint8_t s = r.u8();
    peermq::Headers headers;
    if (s % 16 == 15) {  // over the 64 entries a header may carry
        for (int i = 0; i <= 64; ++i) headers.emplace("h" + std::to_string(i), "v");
        return headers;
    }
    for (int i = 0; i < s % 4; ++i) headers.emplace(r.bytes(r.u8() % 8), r.bytes(r.u8() % 16));
    if (s & 0x10) headers.emplace("peermq-replayed-from", r.bytes(r.u8() % 16));
    return headers;
}

std::string Harness::pick_host(Reader& r) {
    // Only loopback literals (every port T may be sent to is held by this process), or hosts
    // that are not IP literals at all (hello.bad_host).
    switch (r.u8() % 10) {
        case 0:
        case 1:
        case 2:
        case 3: return "127.0.0.1";
        case 4: return "";  // T uses the address the HELLO came from
        case 5: return "127.0.0.2";
        case 6: return "::1";
        case 7: return "localhost";
        case 8: return "127.0.0.1:80";
        default: return "x" + r.bytes(r.u8() % 16);  // never an IP literal
    }
}

std::uint16_t Harness::pick_port(Reader& r) {
    switch (r.u8() % 12) {
        case 0: return port_of(t_->inbox_endpoint());
        case 1: return port_of(t_->pub_endpoint());
        case 2: return port_of(c_->inbox_endpoint());
        case 3: return port_of(c_->pub_endpoint());
        case 4: return port_of(l_->inbox_endpoint());
        case 5: return port_of(l_->pub_endpoint());
        case 6:
        case 7: return sink_port_;
        case 8: return blackhole_.port();
        case 9: return refused_.port();
        case 10: return pub_port_;
        default: return 0;  // hello.bad
    }
}

std::string Harness::pick_error(Reader& r) {
    switch (r.u8() % 6) {
        case 0: return "";
        case 1: return "expired";
        case 2: return "handler threw";
        case 3: return r.bytes(r.u8() % 32);
        case 4: return std::string(16'385, 'e');  // frame.bad_field
        default: return std::string(200, 'e');
    }
}

detail::Header Harness::data_header(Reader& r, InputState& in, const NodeId& sender) {
    detail::Header h;
    h.kind = detail::Kind::data;
    h.sender = sender;
    h.id = pick_id(r, in);
    h.channel = pick_channel(r);
    h.flags = pick_flags(r);
    h.attempt = pick_attempt(r);
    h.created_ms = unix_ms();
    h.deadline_ms = pick_deadline(r);
    h.seq = r.u8();
    h.headers = pick_headers(r);
    return h;
}

std::string Harness::hello_body(Reader& r) {
    detail::Hello hello;
    const std::uint8_t s = r.u8();
    switch (s % 4) {
        case 0: hello.name = "attacker"; break;
        case 1: hello.name = r.bytes(r.u8() % 16); break;
        case 2: hello.name = std::string(255, 'n'); break;
        default: hello.name = std::string(256, 'n'); break;
    }
    switch ((s >> 2) % 4) {
        case 0:
        case 1: hello.cluster = "default"; break;
        case 2: hello.cluster = "other"; break;
        default: break;  // empty
    }
    hello.host = pick_host(r);
    hello.inbox_port = pick_port(r);
    hello.pub_port = pick_port(r);
    const std::uint8_t q = r.u8();
    const std::size_t queues = q % 32 == 31 ? 1100 : q % 4;  // past kMaxHelloQueues: oversized
    for (std::size_t i = 0; i < queues; ++i) {
        std::uint32_t prefetch = 0;
        switch (r.u8() % 6) {
            case 0: prefetch = 0; break;
            case 1: prefetch = 1; break;
            case 2: prefetch = 16; break;
            case 3: prefetch = 256; break;
            case 4: prefetch = 1'000'000; break;
            default: prefetch = std::numeric_limits<std::uint32_t>::max(); break;
        }
        hello.queues.push_back(
            detail::QueueAd{queues > 4 ? "q" + std::to_string(i) : pick_channel(r), prefetch});
    }
    const std::size_t topics = q % 64 == 63 ? 1100 : (q >> 2) % 4;
    for (std::size_t i = 0; i < topics; ++i) hello.topics.push_back("t." + std::to_string(i));
    hello.heartbeat_ms = r.u8() * 10u;
    const std::uint8_t b = r.u8();
    hello.batch = (b & 1) != 0;
    static constexpr std::uint32_t kBatchMax[] = {0, 1, 2, 64, 256, 100'000};
    hello.batch_max = kBatchMax[(b >> 1) % 6];
    msgpack::sbuffer body;
    detail::encode_hello(hello, body);
    return {body.data(), body.size()};
}

void Harness::send(zmq::socket_t& socket, const std::vector<std::string>& frames) {
    // A frame past the inbox's ZMQ_MAXMSGSIZE never reaches T's actor: libzmq drops the
    // connection, and what was queued behind it. It goes on a connection of its own, so that
    // the barrier's frames are not lost with it; when that one is down, it is not sent.
    const bool oversized = std::any_of(frames.begin(), frames.end(), [](const std::string& f) {
        return f.size() > kMaxPayload + detail::kMaxHeaderBytes;
    });
    zmq::socket_t& out = oversized ? oversize_ : socket;
    const auto flags = oversized ? zmq::send_flags::dontwait : zmq::send_flags::none;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        zmq::message_t frame(frames[i].data(), frames[i].size());
        if (!send_frame(out, frame,
                        i + 1 < frames.size() ? flags | zmq::send_flags::sndmore : flags)) {
            if (oversized) return;  // nothing sent: ZeroMQ queues a message whole or not at all
            fail("an attacker socket could not send for 10 s: T stopped reading its inbox");
        }
    }
}

void Harness::send_shaped(zmq::socket_t& socket, std::uint8_t shape, std::string header,
                          std::string body) {
    switch (shape % 8) {
        case 0: send(socket, {header}); break;
        case 1: send(socket, {header, body, "one frame too many"}); break;
        default: send(socket, {header, body}); break;
    }
}

void Harness::op(Reader& r, InputState& in) {
    const std::uint8_t code = r.u8();
    zmq::socket_t& socket = attackers_[(code / kOpCount) % kAttackers];
    switch (code % kOpCount) {
        case kOpData: {
            const NodeId sender = pick_sender(r, in);
            const detail::Header h = data_header(r, in, sender);
            send_shaped(socket, r.u8(), encode(h), pick_payload(r));
            break;
        }
        case kOpBatch: {
            detail::Header h;
            h.kind = detail::Kind::batch;
            h.sender = pick_sender(r, in);
            const std::size_t n = 1 + r.u8() % 8;
            msgpack::sbuffer body;
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint8_t mode = r.u8();
                NodeId sender = h.sender;
                if (mode % 8 == 1) sender = pick_sender(r, in);  // frame.bad_batch_entry
                detail::Header entry = data_header(r, in, sender);
                if (mode % 8 == 2) entry.kind = static_cast<detail::Kind>(r.u8() % 10);
                std::string header = encode(entry);
                if (mode % 8 == 3) header = r.bytes(r.u8() % 24);  // garbage
                const std::string payload = pick_payload(r);
                detail::append_batch_entry(header, payload, body);
            }
            std::string bytes(body.data(), body.size());
            const std::uint8_t seq = r.u8();
            switch (seq % 8) {
                case 0: h.seq = 0; break;
                case 1: h.seq = n + 1; break;
                case 2: h.seq = detail::kMaxBatchEntries + 1; break;
                case 3: h.seq = n - 1; break;
                default: h.seq = n; break;
            }
            switch (r.u8() % 8) {
                case 0:
                    bytes.resize(bytes.size() -
                                 std::min<std::size_t>(bytes.size(), 1 + r.u8() % 16));
                    break;
                case 1: bytes += r.bytes(1 + r.u8() % 8); break;
                case 2:
                    if (!bytes.empty())
                        bytes[r.u16() % bytes.size()] ^= static_cast<char>(1 + r.u8() % 255);
                    break;
                default: break;
            }
            send_shaped(socket, r.u8(), encode(h), std::move(bytes));
            break;
        }
        case kOpAck:
        case kOpNack:
        case kOpReject: {
            detail::Header h;
            h.kind = code % kOpCount == kOpAck    ? detail::Kind::ack
                     : code % kOpCount == kOpNack ? detail::Kind::nack
                                                  : detail::Kind::reject;
            h.sender = pick_sender(r, in);
            const std::uint8_t n = r.u8();
            if (n == 0xff) {
                for (int i = 0; i < 2049; ++i)
                    h.ids.push_back(fixed_id(0x4e, static_cast<std::uint8_t>(i)));
            } else {
                for (int i = 0; i < n % 9; ++i) h.ids.push_back(pick_id(r, in));
            }
            if (h.kind != detail::Kind::ack) h.error = pick_error(r);
            if (r.u8() % 8 == 0) {
                send(socket, {encode(h), "ignored"});
            } else {
                send(socket, {encode(h)});
            }
            break;
        }
        case kOpHello: {
            detail::Header h;
            h.kind = detail::Kind::hello;
            h.sender = pick_sender(r, in);
            std::string body = hello_body(r);
            const std::uint8_t shape = r.u8();
            switch (shape % 16) {
                case 0: send(socket, {encode(h)}); break;  // hello.missing_field
                case 1: send(socket, {encode(h), r.bytes(r.u8() % 32)}); break;
                case 2: body.resize(body.size() / 2); [[fallthrough]];
                default:
                    send_shaped(socket, (shape >> 4) == 0xf ? 1 : 2, encode(h), std::move(body));
                    break;
            }
            break;
        }
        case kOpHeartbeat: {
            detail::Header h;
            h.kind = detail::Kind::heartbeat;
            h.sender = pick_sender(r, in);
            if (r.u8() % 8 == 0) {
                send(socket, {encode(h), "ignored"});
            } else {
                send(socket, {encode(h)});
            }
            break;
        }
        case kOpBye: {
            detail::Header h;
            h.kind = detail::Kind::bye;
            h.sender = pick_sender(r, in);
            send(socket, {encode(h)});
            break;
        }
        case kOpRaw: {
            std::vector<std::string> frames(1 + r.u8() % 3);
            for (auto& frame : frames) frame = r.bytes(r.u8());
            send(socket, frames);
            break;
        }
        case kOpMutated: {
            const NodeId sender = pick_sender(r, in);
            detail::Header h = data_header(r, in, sender);
            h.kind = static_cast<detail::Kind>(1 + r.u8() % 8);
            if (h.kind == detail::Kind::ack) h.ids.push_back(pick_id(r, in));
            std::string header = encode(h);
            for (int i = 0, n = 1 + r.u8() % 4; i < n; ++i) {
                header[r.u16() % header.size()] = static_cast<char>(r.u8());
            }
            send_shaped(socket, r.u8(), std::move(header), pick_payload(r));
            break;
        }
        case kOpLegit: {
            const std::uint8_t n = r.u8();
            send_legit(1 + n % 4, (n >> 2) % 4);
            break;
        }
        case kOpOddHeader: {
            msgpack::sbuffer buffer;
            msgpack::packer<msgpack::sbuffer> pk(buffer);
            const NodeId sender = pick_sender(r, in);
            const MessageId id = pick_id(r, in);
            const std::uint8_t variant = r.u8();
            const std::uint8_t kind = r.u8();
            const auto pack_id = [&](const peermq::Uuid& uuid, std::size_t size) {
                pk.pack_bin(static_cast<std::uint32_t>(size));
                pk.pack_bin_body(reinterpret_cast<const char*>(uuid.data()),
                                 static_cast<std::uint32_t>(size));
            };
            switch (variant % 6) {
                case 0:  // the five required elements only: every other one at its default
                    pk.pack_array(5);
                    pk.pack(1u);
                    pk.pack(1u + kind % 8);
                    pack_id(sender, 16);
                    pack_id(id, 16);
                    pk.pack(pick_channel(r));
                    break;
                case 1:  // elements a later revision may add
                    pk.pack_array(16);
                    pk.pack(1u);
                    pk.pack(1u + kind % 8);
                    pack_id(sender, 16);
                    pack_id(id, 16);
                    pk.pack(pick_channel(r));
                    pk.pack(pick_flags(r));
                    pk.pack(1u);
                    pk.pack(unix_ms());
                    pk.pack(0);
                    pk.pack(0u);
                    pk.pack_map(0);
                    pk.pack_array(0);
                    pk.pack(std::string());
                    pk.pack(std::string("future"));
                    pk.pack(r.u8());
                    pk.pack_nil();
                    break;
                case 2:  // another version
                    pk.pack_array(5);
                    pk.pack(r.u8() % 2 == 0 ? 0u : 2u);
                    pk.pack(1u);
                    pack_id(sender, 16);
                    pack_id(id, 16);
                    pk.pack(std::string("work"));
                    break;
                case 3:  // kinds outside 1-8
                    pk.pack_array(5);
                    pk.pack(1u);
                    pk.pack(kind % 2 == 0 ? 0u : 9u + kind);
                    pack_id(sender, 16);
                    pack_id(id, 16);
                    pk.pack(std::string());
                    break;
                case 4:  // negative numbers where uints belong
                    pk.pack_array(9);
                    pk.pack(1u);
                    pk.pack(1u + kind % 8);
                    pack_id(sender, 16);
                    pack_id(id, 16);
                    pk.pack(std::string("in"));
                    pk.pack(-1);
                    pk.pack(-static_cast<int>(kind));
                    pk.pack(-1);
                    pk.pack(-1);
                    break;
                default:  // ids of another size
                    pk.pack_array(5);
                    pk.pack(1u);
                    pk.pack(1u + kind % 8);
                    pack_id(sender, kind % 16);
                    pack_id(id, 16);
                    pk.pack(std::string("in"));
                    break;
            }
            send_shaped(socket, r.u8(), std::string(buffer.data(), buffer.size()), pick_payload(r));
            break;
        }
        case kOpTopic: {
            // To T's SUB (connected to this PUB by the barrier's HELLOs): not ordered with the
            // inbox, so only the invariants that hold at any time cover it.
            const NodeId sender = pick_sender(r, in);
            detail::Header h = data_header(r, in, sender);
            const std::uint8_t s = r.u8();
            h.channel = "t." + r.bytes(r.u8() % 8);
            std::string topic = h.channel;
            if (s % 4 == 1) topic = "t.other";                                   // mismatch
            if (s % 4 == 2) h.kind = static_cast<detail::Kind>(2 + r.u8() % 7);  // not DATA
            std::vector<std::string> frames{topic, encode(h), pick_payload(r)};
            if ((s >> 2) % 8 == 0) frames.pop_back();
            if ((s >> 2) % 8 == 1) frames.push_back("extra");
            for (std::size_t i = 0; i < frames.size(); ++i) {
                zmq::message_t frame(frames[i].data(), frames[i].size());
                (void)send_frame(
                    pub_, frame,
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
            }
            break;
        }
        default: break;
    }
}

void Harness::send_legit(std::size_t work, std::size_t in) {
    for (std::size_t i = 0; i < work + in; ++i) {
        const bool is_work = i < work;
        peermq::Queue& queue = is_work ? *work_ : *in_;
        auto receipt = queue.send_confirmed(++payload_counter_);
        if (receipt.wait_for(0s) == std::future_status::ready) {
            // Not admitted (a receipt that is an error at once), or already settled: a
            // descheduled thread can find its message acked when send_confirmed returns.
            auto result = receipt.get();
            if (!result.ok() && result.status().code() == peermq::ErrorCode::queue_full) continue;
            if (!result.ok()) {
                fail(std::string("a legitimate send failed: ") + result.status().to_string());
            }
            std::promise<peermq::Result<peermq::Receipt>> settled;
            settled.set_value(std::move(result));
            receipt = settled.get_future();
        }
        (is_work ? work_admitted_ : in_admitted_) += 1;
        (is_work ? work_pending_ : in_pending_)
            .push_back(Pending{SteadyClock::now(), std::move(receipt)});
    }
}

MessageId Harness::barrier_id(int k) const {
    std::array<std::uint8_t, 16> bytes{};
    bytes[0] = 0xba;
    bytes[1] = static_cast<std::uint8_t>(k);
    std::memcpy(bytes.data() + 8, &inputs_, sizeof inputs_);
    return MessageId(bytes);
}

void Harness::send_barrier(int k) {
    detail::Header h;
    h.kind = detail::Kind::hello;
    h.sender = barrier_ids_[k];
    detail::Hello hello;
    hello.name = "barrier-" + std::to_string(k) + "-" + std::to_string(inputs_);
    hello.cluster = "default";
    hello.host = "127.0.0.1";
    hello.inbox_port = port_of(barrier_inboxes_[k].get(zmq::sockopt::last_endpoint));
    hello.pub_port = pub_port_;
    msgpack::sbuffer body;
    detail::encode_hello(hello, body);
    send(attackers_[k], {encode(h), std::string(body.data(), body.size())});
    // A message for a queue T does not consume, asking for an answer: T's NACK of this id
    // comes back at once and says that T read this far.
    h.kind = detail::Kind::data;
    h.id = barrier_id(k);
    h.channel = "fuzz.barrier";
    h.flags = detail::kFlagAckRequested;
    send(attackers_[k], {encode(h), ""});
}

bool Harness::answered(int k, std::chrono::milliseconds timeout) {
    zmq::socket_t& inbox = barrier_inboxes_[k];
    const MessageId expected = barrier_id(k);
    zmq::message_t frame;
    detail::Header header;
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
        while (recv_frame(inbox, frame, zmq::recv_flags::dontwait)) {
            const bool echo = !detail::decode_header(frame.data(), frame.size(), header) &&
                              header.kind == detail::Kind::nack && header.sender == t_->id() &&
                              header.ids.size() == 1 && header.ids[0] == expected;
            while (frame.more()) (void)recv_frame(inbox, frame);  // the rest of the message
            if (echo) return true;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
        if (left.count() <= 0) return false;
        zmq::pollitem_t item{inbox.handle(), 0, ZMQ_POLLIN, 0};
        try {
            zmq::poll(&item, 1, left);
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
    }
}

void Harness::barrier() {
    for (int k = 0; k < kAttackers; ++k) send_barrier(k);
    auto last_sent = SteadyClock::now();
    const auto deadline = last_sent + kBarrierLimit;
    int echoed = 0;
    while (echoed < kAttackers && answered(echoed, 50ms)) ++echoed;
    if (echoed == kAttackers) return;
    // No echo: the barrier's HELLO was refused (the table is full of live peers) or lost with
    // a connection libzmq dropped for an oversized frame, or T's answer could not be sent.
    // Then T's peer table says when it read the barrier's HELLOs; they are sent again.
    for (;;) {
        int seen = 0;
        const auto peers = t_->peers();
        for (int k = 0; k < kAttackers; ++k) {
            const std::string name = "barrier-" + std::to_string(k) + "-" + std::to_string(inputs_);
            for (const auto& peer : peers) {
                if (peer.id == barrier_ids_[k] && peer.name == name) ++seen;
            }
        }
        if (seen == kAttackers) return;
        const auto now = SteadyClock::now();
        if (now > deadline) {
            const auto stats = t_->stats();
            fail("T did not handle input " + std::to_string(inputs_) + " within 30 s (" +
                 std::to_string(seen) + " of 3 barrier HELLOs seen, " +
                 std::to_string(peers.size()) + " peers, node " +
                 (stats.id == t_->id() ? "answering" : "not answering") + ")");
        }
        if (now - last_sent > 100ms) {
            for (int k = 0; k < kAttackers; ++k) send_barrier(k);
            last_sent = now;
        }
        std::this_thread::sleep_for(200us);
    }
}

void Harness::drain() {
    zmq::message_t frame;
    for (auto& inbox : barrier_inboxes_) {
        while (recv_frame(inbox, frame, zmq::recv_flags::dontwait)) {
        }
    }
    // What T delivered to the attacker's consumer: those ids an attacker may answer.
    zmq::message_t header;
    zmq::message_t body;
    detail::Header decoded;
    std::vector<detail::BatchEntry> entries;
    const auto taken = [&](const MessageId& id) {
        sink_taken_.add(id);
        sink_ids_.push_back(id);
        if (sink_ids_.size() > kSinkIds) sink_ids_.pop_front();
    };
    while (recv_frame(sink_, header, zmq::recv_flags::dontwait)) {
        bool more = header.more();
        body.rebuild();
        if (more) {
            (void)recv_frame(sink_, body);
            more = body.more();
        }
        while (more) {
            (void)recv_frame(sink_, frame);
            more = frame.more();
        }
        if (detail::decode_header(header.data(), header.size(), decoded)) continue;
        if (decoded.kind == detail::Kind::data) taken(decoded.id);
        if (decoded.kind != detail::Kind::batch) continue;
        if (detail::split_batch(body.data(), body.size(), decoded.seq, entries)) continue;
        for (const auto& entry : entries) {
            detail::Header e;
            if (!detail::decode_header(entry.header.data(), entry.header.size(), e)) taken(e.id);
        }
    }
}

void Harness::check_quiet(const peermq::NodeStats& stats, const char* who) {
    for (const auto& [reason, count] : stats.dropped) {
        if (reason.starts_with("internal.") && count > 0) {
            fail(std::string(who) + " counted " + std::to_string(count) + " " + reason +
                 " (an exception inside its actor; its log says which)");
        }
    }
    for (const auto& [where, count] : stats.thread_errors) {
        if (count > 0) {
            fail(std::string(who) + " caught " + std::to_string(count) +
                 " exceptions on a library thread: " + where);
        }
    }
}

void Harness::check() {
    watchdog_.arm("checking T's stats", kStepLimit);
    peermq::NodeStats stats = t_->stats();
    if (stats.id != t_->id()) fail("T does not answer stats(): the node failed");
    check_quiet(stats, "T");
    if (stats.peers.size() > kMaxPeers) {
        fail("T holds " + std::to_string(stats.peers.size()) + " peers, over max_peers " +
             std::to_string(kMaxPeers));
    }
    const peermq::ChannelStats& work = stats.queues["work"];
    const std::uint64_t accounted = work.acked + work.dead_lettered + work.in_flight + work.depth;
    if (accounted != work_admitted_) {
        fail("T's queue 'work' accounts for " + std::to_string(accounted) + " messages (acked " +
             std::to_string(work.acked) + ", dead-lettered " + std::to_string(work.dead_lettered) +
             ", in flight " + std::to_string(work.in_flight) + ", waiting " +
             std::to_string(work.depth) + ") of the " + std::to_string(work_admitted_) + " sent");
    }
    if (inputs_ % kCheckOthersEvery == 0) {
        watchdog_.arm("checking C's and L's stats", kStepLimit);
        const peermq::NodeStats c = c_->stats();
        const peermq::NodeStats l = l_->stats();
        if (c.id != c_->id() || l.id != l_->id()) fail("C or L does not answer: a node failed");
        check_quiet(c, "C");
        check_quiet(l, "L");
        const peermq::ChannelStats& in = l.queues.at("in");
        if (in.acked + in.dead_lettered + in.in_flight + in.depth != in_admitted_) {
            fail("L's queue 'in' does not account for the " + std::to_string(in_admitted_) +
                 " messages sent");
        }
    }
    if (inputs_ % kCheckRssEvery == 0) {
        const std::size_t rss = rss_mb();
        if (rss > kRssLimitMb) {
            fail("RSS " + std::to_string(rss) + " MiB, over the bound of " +
                 std::to_string(kRssLimitMb) + " MiB");
        }
    }
    if (inputs_ % kForgetEvery == 0) {
        // Dead letters stay in memory up to 100 000 a node; their receipts were checked.
        watchdog_.arm("purging dead letters", kStepLimit);
        for (peermq::Node* node : {&*t_, &*l_}) {
            if (auto purged = node->dead_letters().purge({}); !purged.ok()) {
                fail("a dead-letter purge failed: " + purged.status().to_string());
            }
        }
        c_handled_.forget_older_than(kForgetSeen);
        t_handled_.forget_older_than(kForgetSeen);
        sink_taken_.forget_older_than(kForgetSeen);
    }
}

void Harness::verify(Pending& pending, bool work) {
    const char* queue = work ? "work" : "in";
    auto result = pending.receipt.get();
    if (!result.ok()) {
        fail(std::string("a receipt of queue '") + queue +
             "' ended with an error: " + result.status().to_string());
    }
    const peermq::Receipt& receipt = result.value();
    if (receipt.outcome == peermq::Receipt::Outcome::acked) {
        const bool handled =
            work ? c_handled_.contains(receipt.id) || sink_taken_.contains(receipt.id)
                 : t_handled_.contains(receipt.id);
        if (!handled) {
            fail(std::string("message ") + receipt.id.to_string() + " of queue '" + queue +
                 "' was acked, but no consumer's handler saw it");
        }
        ++outcomes_[std::string(queue) + " acked"];
        return;
    }
    static const std::set<std::string> kReasons = {"expired", "max_attempts", "rejected",
                                                   "no_consumer", "dropped_oldest"};
    if (!kReasons.contains(receipt.reason)) {
        fail(std::string("message ") + receipt.id.to_string() + " of queue '" + queue +
             "' was dead-lettered with the reason '" + receipt.reason + "'");
    }
    ++outcomes_[std::string(queue) + " dead-lettered " + receipt.reason];
}

void Harness::settle(bool wait) {
    for (const bool work : {true, false}) {
        auto& pending = work ? work_pending_ : in_pending_;
        while (!pending.empty()) {
            Pending& front = pending.front();
            const auto limit = front.sent + kSettleLimit;
            if (wait) {
                watchdog_.arm("waiting for every receipt", kStepLimit);
                (void)front.receipt.wait_until(limit);
            }
            if (front.receipt.wait_for(0s) != std::future_status::ready) {
                if (SteadyClock::now() < limit) break;
                const auto stats = t_->stats();
                const auto& w = stats.queues.at("work");
                fail(std::string("a message of queue '") + (work ? "work" : "in") +
                     "' neither acked nor dead-lettered 30 s after its send (T's 'work': " +
                     std::to_string(w.in_flight) + " in flight, " + std::to_string(w.depth) +
                     " waiting)");
            }
            verify(front, work);
            pending.pop_front();
        }
    }
}

void Harness::run(const std::uint8_t* data, std::size_t size) {
    ++inputs_;
    watchdog_.arm("sending an input", kStepLimit);
    Reader r(data, size);
    InputState in;
    for (std::size_t n = 0; n < kMaxOps && !r.empty(); ++n) op(r, in);
    send_legit(1, 1);
    watchdog_.arm("waiting for the barrier", kStepLimit);
    barrier();
    drain();
    check();
    watchdog_.arm("settling receipts", kStepLimit);
    settle(false);
    watchdog_.arm("between inputs", kStepLimit);
}

void Harness::finish() {
    settle(true);
    g_phase = "final checks";
    check();
    const peermq::NodeStats stats = t_->stats();
    std::fprintf(stderr,
                 "node_fuzz: %llu inputs; outcomes:", static_cast<unsigned long long>(inputs_));
    for (const auto& [what, count] : outcomes_) {
        std::fprintf(stderr, " %s %llu,", what.c_str(), static_cast<unsigned long long>(count));
    }
    std::fprintf(stderr, "\nnode_fuzz: T's drops:");
    for (const auto& [reason, count] : stats.dropped) {
        std::fprintf(stderr, " %s %llu,", reason.c_str(), static_cast<unsigned long long>(count));
    }
    std::fprintf(stderr, "\n");
    close();
}

void Harness::close() {
    watchdog_.arm("closing the nodes", kStepLimit);
    t_->close();
    c_->close();
    l_->close();
    watchdog_.arm("closed", std::chrono::hours(24 * 365));
}

Harness& harness() {
    static Harness* instance = new Harness();  // never destroyed: the process ends with it
    return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        harness().run(data, size);
    } catch (const std::exception& e) {
        fail(std::string("an exception escaped: ") + e.what());
    }
    return 0;
}

// One input per op kind, on each attacker socket, with choices from a fixed generator: every
// kind of frame is replayed even without the corpus.
std::vector<peermq::fuzz::Bytes> peermq::fuzz::seed_inputs() {
    std::vector<Bytes> out;
    std::uint32_t state = 20261128;
    for (std::uint8_t code = 0; code < kOpCount * kAttackers; ++code) {
        Bytes input{code};
        for (int i = 0; i < 40; ++i) {
            state = state * 1664525u + 1013904223u;
            input.push_back(static_cast<std::uint8_t>(state >> 24));
        }
        out.push_back(std::move(input));
    }
    return out;
}

void peermq::fuzz::after_replay() {
    try {
        harness().finish();
    } catch (const std::exception& e) {
        fail(std::string("an exception escaped: ") + e.what());
    }
}
