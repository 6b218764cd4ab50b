// Signals and the threads the library runs its sockets on.
//
// A signal handler interrupts whatever system call the thread it lands on is in, and libzmq then
// fails a send, a receive, a poll, a connect, a bind, a disconnect or a getsockopt(ZMQ_EVENTS)
// with EINTR — a non-blocking one too: each of them first looks for commands from libzmq's own
// threads with a poll() of zero timeout, and Linux returns EINTR from that when a signal is
// pending. An application's signals (a profiler's SIGPROF, a timer's SIGALRM, SIGCHLD, a SIGUSR1
// that reopens its logs) would then fail the node's sockets at random points, between the parts
// of a message. So the threads the library starts for its sockets and its journal block every
// asynchronous signal, as libzmq's I/O threads and Avahi's threaded poll do; the application's
// signals go to its own threads and to the dispatcher's, which run its handlers.
#pragma once

namespace peermq::detail {

// Blocks, in the calling thread, every signal but those a fault of the thread itself raises
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) and SIGABRT. Called first thing by the actor,
// the control server and the journal writer.
void block_async_signals() noexcept;

}  // namespace peermq::detail
