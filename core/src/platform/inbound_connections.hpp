// The TCP connections a node's bound sockets (inbox, pub) have accepted, by descriptor. libzmq
// owns them and offers no call to close one inbound connection of a bound socket, nor a bound on
// how many it accepts; its socket monitor tells each one accepted and closed, with its
// descriptor. This table keeps them, so that the node can
//   * cap them: past the cap, the connections that never sent a byte (no ZMTP greeting: idle or
//     half-open, a descriptor held for nothing) are cut first; then, where the socket's peers
//     are owed traffic (the inbox: every live peer heartbeats), those that sent nothing for
//     `quiet_after` (sampled at each sample() call): a handshake done and nothing since, or a
//     peer that went silent and is down by now; and then the newest one;
//   * cut them all (a key revoked: every connection passes the ZAP handler again).
// Cutting is shutdown(2): libzmq sees the connection end and closes it itself. A descriptor is
// touched only while it still is a TCP socket on the bound port: libzmq may have closed it and
// the number been reused before its CLOSED event is read.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace peermq::detail {

class InboundConnections {
public:
    using Time = std::chrono::steady_clock::time_point;
    // A connection accepted this long ago that has not sent a byte is idle: a ZeroMQ peer sends
    // its greeting as soon as it is connected.
    static constexpr std::chrono::milliseconds kIdleAfter{500};

    struct Admitted {
        std::size_t idle_cut = 0;   // idle connections cut to make room
        std::size_t quiet_cut = 0;  // connections silent for quiet_after, cut to make room
        bool refused = false;       // the new one cut: every other one is in use
    };

    // The connections of the socket bound on `port`, at most `limit` at once. `quiet_after`:
    // how long a connection may send nothing before it may be cut to make room; zero: never
    // (a socket whose peers may rightly stay silent, as subscribers to a pub do).
    InboundConnections(std::uint16_t port, std::size_t limit,
                       std::chrono::milliseconds quiet_after = {})
        : port_(port), limit_(limit), quiet_after_(quiet_after) {}

    std::size_t size() const { return accepted_.size(); }

    // A connection accepted at `now`. Over the limit, cuts idle ones, then quiet ones, or this
    // one.
    Admitted accepted(int fd, Time now);
    void closed(int fd) { accepted_.erase(fd); }
    // Reads how much each connection has received so far: one that received more since the last
    // call was heard at `now`. Called about once a heartbeat interval; nothing without
    // quiet_after.
    void sample(Time now);
    // Cuts every connection; how many were cut.
    std::size_t cut_all();

private:
    struct Connection {
        Time accepted;
        Time heard;                  // when its received bytes last grew (sample())
        std::uint64_t received = 0;  // tcpi_bytes_received at the last sample
    };

    const std::uint16_t port_;
    const std::size_t limit_;
    const std::chrono::milliseconds quiet_after_;
    std::unordered_map<int, Connection> accepted_;  // by descriptor
};

}  // namespace peermq::detail
