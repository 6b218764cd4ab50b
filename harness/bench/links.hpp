// Links: the sending side of each benchmark, in this process, paired with a receiving peer
// process (roles.hpp). A link is set up once per figure and then run several times, so the
// connection, the peer table and the allocator are warm for every measured run.
//
// A link is used by one thread; destroying it stops its node and kills its peer process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peermq/options.hpp"
#include "peermq/status.hpp"

namespace peermq::bench {

struct BenchContext {
    std::string executable;  // the program started for each peer process
    // Arguments placed before "--role ..." when starting a peer process: {"bench"} for
    // peermq_driver (peermq_bench), {"bench-peer"} for the peermq tool (itself).
    std::vector<std::string> role_prefix;
    std::string cluster;  // unique per benchmark run: no other node can join
    std::size_t max_length = QueueOptions{}.max_length;  // of the throughput queues
    // ConsumeOptions::prefetch of the consuming peer: its credit, so with acks the most messages
    // in flight. The window has to cover the round trip under load (rate x RTT).
    std::uint32_t prefetch = 1024;
    // NodeOptions::trust of both peermq nodes of a link (the sender here and the peer process):
    // open (CurveZMQ, the library's default) or plain.
    TrustMode trust = NodeOptions{}.trust;
    // Topic links: the subscriber's subscription is TopicReliability::reliable; and a second
    // reliable subscriber is started, followed by the publisher, then SIGKILLed before the runs
    // (what a dead follower costs the publisher).
    bool reliable_topic = false;
    bool dead_follower = false;
    // Topic links: the publisher's NodeOptions::topic_history (0: the library's), with room for
    // as many 1 KiB messages in topic_history_bytes.
    std::size_t topic_history = 0;
    // Reliable topic links: a run ends at its N-th message, not at its end marker (with a
    // history that holds a run, nothing is lost: what the PUB drops is repaired).
    bool whole_runs = false;
};

// One run of a topic link whose subscriber process was stopped (SIGSTOP) while the messages were
// published, and continued (SIGCONT) after: whatever its publisher's high-water mark dropped
// meanwhile is a gap the subscriber has to have repaired.
struct PausedRun {
    std::size_t got = 0;    // messages of the run the subscriber received
    double recovery_s = 0;  // from SIGCONT to the subscriber's answer
};

// "open" or "plain": the word the roles take after --trust.
const char* trust_name(TrustMode trust) noexcept;

// Whether a raw ZeroMQ link runs CurveZMQ: the receiver a CURVE server with a key pair made at
// its start, the sender a CURVE client with one of its own (no ZAP handler: any client key may
// connect, as with peermq's open trust mode).
enum class RawSecurity { plain, curve };

// A reliable topic subscriber's repairs (the `stats` answer of its role, roles.hpp).
struct RepairFigures {
    std::uint64_t gaps = 0;  // gaps closed by repair
    std::uint64_t p50_us = 0;
    std::uint64_t p99_us = 0;
    std::uint64_t repaired = 0;    // messages received as REPAIR
    std::uint64_t lost = 0;        // messages reported lost
    std::uint64_t duplicates = 0;  // the subscriber's drops topic.duplicate (repaired twice)
    std::uint64_t held_full = 0;   // and topic.held_full (asked again later)
};

// Moves messages of one size to the peer process and measures the rate.
class ThroughputLink {
public:
    virtual ~ThroughputLink() = default;
    // Sends n messages; returns messages per second as the link defines it (see the factories).
    virtual Result<double> run(std::size_t n) = 0;
    // Stops the sender and the peer process; reports a peer that did not exit cleanly.
    virtual Status stop() = 0;
    // Messages sent and never received over every run so far: only topics may drop.
    virtual std::uint64_t lost() const { return 0; }
    // Topic links: a run with the subscriber stopped while the messages are published. With
    // `all`, the subscriber answers once it has all n (a reliable subscription, whose gaps are
    // repaired); else at the run's end marker, like run().
    virtual Result<PausedRun> run_paused(std::size_t n, bool all) {
        (void)n;
        (void)all;
        return make_error(ErrorCode::invalid_argument, "only a topic link runs paused");
    }
    // A peermq topic link's subscriber's repairs so far; nullopt for other links.
    virtual Result<std::optional<RepairFigures>> repairs() {
        return std::optional<RepairFigures>();
    }
};

// Round trips, one at a time.
class LatencyLink {
public:
    virtual ~LatencyLink() = default;
    // Makes m round trips; returns each one's duration in microseconds.
    virtual Result<std::vector<double>> run(std::size_t m) = 0;
    virtual Status stop() = 0;
};

// How a peermq queue link sends.
struct QueueFlow {
    Guarantee guarantee = Guarantee::at_least_once;
    // group_commit: the producer's journal lives in a fresh temporary data_dir, removed after.
    Durability durability = Durability::memory;
};

// The three queue figures of peermq_bench.
enum class PeermqMode {
    best_effort,   // rate = messages handled by the consumer, first to last arrival
    memory,        // at_least_once, Durability::memory: rate = messages acked at the producer
    group_commit,  // at_least_once, Durability::group_commit in a temporary data_dir: same
};

const char* to_string(PeermqMode mode) noexcept;
QueueFlow flow_of(PeermqMode mode) noexcept;

// Raw cppzmq PUSH (here) -> PULL (peer); rate = messages received, first to last arrival.
Result<std::unique_ptr<ThroughputLink>> start_raw_push(const BenchContext& context,
                                                       std::size_t payload_size,
                                                       RawSecurity security = RawSecurity::plain);
// A peermq producer node (here) sending on queue "bench" to a consumer node (peer), both in
// context.trust (so for the topic and latency links below). Rate: for
// best_effort, messages handled by the consumer, first to last arrival; for the acked
// guarantees, messages acked at the producer, from before the first send() until the last ack.
Result<std::unique_ptr<ThroughputLink>> start_peermq_queue(const BenchContext& context,
                                                           QueueFlow flow,
                                                           std::size_t payload_size);

// Raw cppzmq PUB (here) -> SUB (peer), high-water marks as peermq's; rate = messages received,
// first to last arrival (a run ends at its end marker when some were dropped).
Result<std::unique_ptr<ThroughputLink>> start_raw_pub(const BenchContext& context,
                                                      std::size_t payload_size);
// A peermq node (here) publishing on topic "bench" to a subscriber node (peer); rate as raw.
Result<std::unique_ptr<ThroughputLink>> start_peermq_topic(const BenchContext& context,
                                                           std::size_t payload_size);

// Raw cppzmq REQ (here) -> REP echo (peer).
Result<std::unique_ptr<LatencyLink>> start_raw_reqrep(const BenchContext& context,
                                                      std::size_t payload_size);
// peermq send_confirmed -> consumer -> ack, with the flow's guarantee (acked ones only) and
// durability; the consumer acks after `ack_batch_interval` (0 = at the end of the actor's loop
// turn).
Result<std::unique_ptr<LatencyLink>> start_peermq_confirmed(
    const BenchContext& context, QueueFlow flow, std::size_t payload_size,
    std::chrono::microseconds ack_batch_interval);

}  // namespace peermq::bench
