// The child-process side of the benchmark: the receiving peer, run as
// `peermq_driver bench --role ...` (for peermq_bench) or `peermq bench-peer --role ...` (for
// `peermq bench`).
//
// Every role prints "ready <port>" on stdout once its socket is bound ("ready <port> <key>" with
// the Z85 public key for the peermq roles and for zmq-pull --curve), then serves commands read
// from stdin, one per line:
//   run N  -> "armed" at once, then "done N <ns>" once N messages arrived (ns = first to last
//             arrival) or "timeout <got> <ns>". The topic roles also end a run at the end marker
//             of that run and then answer "done <got> <ns>" with got <= N: topics may drop.
//   sync   -> (topic roles) "synced" once any message arrived, "timeout 0 0" after 10 s: the
//             sender publishes sync markers until then, so that no run starts before the
//             subscription reached the publisher.
//   run N all -> (peermq-subscriber) as "run N", but the run ends at its N-th message only
//             (its end marker does not end it): for runs whose gaps must be repaired first
//   stats  -> (peermq-subscriber) "stats <gaps> <p50_us> <p99_us> <repaired> <lost>
//             <duplicates> <held_full>": the gaps of topic "bench" closed by repair so far, the
//             p50 and p99 of how long they stayed open (the power-of-two bucket bounds of
//             ChannelStats::repair_time), the messages received as REPAIR and those reported
//             lost; and the node's drops topic.duplicate and topic.held_full
//   quit   -> exits with status 0 (so does end of input)
// Nothing else is ever written to stdout.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peermq/options.hpp"

namespace peermq::bench {

// The roles, by name:
// Raw PULL receiver; flag --curve: a CURVE server with a key pair made at its start.
inline constexpr const char* kRoleZmqPull = "zmq-pull";
inline constexpr const char* kRoleZmqSub = "zmq-sub";  // raw SUB receiver (binds)
inline constexpr const char* kRoleZmqRep = "zmq-rep";  // raw REP echo; N = round trips
// A peermq node consuming queue "bench"; flags --cluster C --prefetch N --ack-interval-us U
// --trust open|plain (NodeOptions::trust; default open).
inline constexpr const char* kRolePeermqConsumer = "peermq-consumer";
// A peermq node subscribed to topic prefix "bench"; flags --cluster C --trust open|plain
// --reliable (TopicReliability::reliable).
inline constexpr const char* kRolePeermqSubscriber = "peermq-subscriber";

// Topic senders mark their control messages so that receivers tell them from data. Raw ZeroMQ:
// a frame starting with kControlByte (data frames are filled with 'x'). peermq: topic
// kControlTopic (data goes to kBenchTopic). The body is "s" (sync) or "e<run>" (end of run
// number <run>, counted from 1 by both sides).
inline constexpr char kControlByte = '!';
inline constexpr const char* kBenchTopic = "bench";
inline constexpr const char* kControlTopic = "bench!";
std::string end_marker(std::uint64_t run);
bool is_end_marker(std::string_view body, std::uint64_t run);

// Sets options.trust. A node in trust mode plain warns at its start that its links are open: the
// benchmark asks for that, so for plain the node gets a log sink that drops that one record and
// writes every other one to stderr as the default sink would.
void set_trust(NodeOptions& options, TrustMode trust);

// Runs the role named in args[0] with the flags that follow; returns the exit status.
int run_role(const std::vector<std::string>& args);

}  // namespace peermq::bench
