// The child-process side of the benchmark: the receiving peer, run as `peermq_bench --role ...`.
//
// Every role prints "ready <port>" on stdout once its socket is bound, then serves commands read
// from stdin, one per line:
//   run N  -> "armed" at once, then "done N <ns>" once N messages arrived (ns = first to last
//             arrival) or "timeout <got> <ns>"
//   quit   -> exits with status 0 (so does end of input)
// Nothing else is ever written to stdout.
#pragma once

#include <string>
#include <vector>

namespace peermq::bench {

// The roles, by name:
inline constexpr const char* kRoleZmqPull = "zmq-pull";  // raw PULL receiver
inline constexpr const char* kRoleZmqRep = "zmq-rep";    // raw REP echo; N = round trips
// A peermq node consuming queue "bench"; flags --cluster C --prefetch N --ack-interval-us U.
inline constexpr const char* kRolePeermqConsumer = "peermq-consumer";

// Runs the role named in args[0] with the flags that follow; returns the exit status.
int run_role(const std::vector<std::string>& args);

}  // namespace peermq::bench
