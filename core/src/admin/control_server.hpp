// ControlServer: a running node's control endpoint (docs/spec/control.md, peermq/control.hpp).
//
// Owns a ZeroMQ ROUTER socket, on a context of its own, served by a thread of its own; requests
// are answered through NodeCore::call, so only the actor touches the node's state, and the
// actor's poll loop knows nothing of this socket. Requests are handled one at a time. Created
// at the end of NodeCore::start and stopped first by NodeCore::close; the NodeCore owns it and
// outlives it. stop(), add_dropped() and add_thread_errors() are thread-safe.
//
// A tcp endpoint is a CurveZMQ server with the node's key pair, and a ZAP handler in the server's
// context admits the node's own key and the keys of the control_keys file (read at every
// handshake): anyone else who reaches the loopback port is refused before a request is read,
// and counted (`control.unauthorized`). An ipc endpoint's socket file is 0600 instead.
//
// No exception ends the server's thread: one thrown while answering a request (of any type) is
// answered with an `internal` error reply, logged at error and counted ("control" in
// NodeStats::thread_errors); one that escapes the receive loop itself is logged and counted,
// and the server stops serving (clients then get `unavailable`), the node carrying on.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <zmq.hpp>

#include "admin/control_codec.hpp"
#include "observability/drop_reasons.hpp"
#include "peermq/options.hpp"
#include "peermq/status.hpp"
#include "security/zap_handler.hpp"

namespace peermq::detail {

class NodeCore;

// Checks a control endpoint: "ipc://PATH" or "tcp://<IPv4 loopback>:PORT"; with
// `allow_none`, also "" and "off" (NodeOptions::control_endpoint). invalid_argument otherwise.
Status validate_control_endpoint(const std::string& endpoint, bool allow_none);

// The endpoint a node with these (valid) options serves; "" = none.
std::string control_endpoint_of(const NodeOptions& options);
// The file of the keys a tcp control endpoint admits besides the node's own; "" = none.
std::string control_keys_of(const NodeOptions& options);
inline constexpr const char* kControlKeysFileName = "control_keys";

class ControlServer {
public:
    // Binds `endpoint` and starts serving. A taken tcp port is address_in_use; an ipc path too
    // long for a unix socket, or in a missing directory, is an error naming the endpoint.
    static Result<std::unique_ptr<ControlServer>> start(NodeCore& core, std::string endpoint);

    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;
    ~ControlServer();

    const std::string& endpoint() const noexcept { return endpoint_; }

    // Stops the thread, closes the socket and removes the ipc socket file. Idempotent.
    void stop();

    // Adds the requests this server refused, by reason ("control.garbage", ...), to `dropped`.
    void add_dropped(std::map<std::string, std::uint64_t>& dropped) const;
    // Adds the exceptions this server's thread caught, as "control", to `out`.
    void add_thread_errors(std::map<std::string, std::uint64_t>& out) const;

private:
    ControlServer(NodeCore& core, std::string endpoint);

    void run();
    void receive();
    void serve(std::vector<zmq::message_t>& frames);
    // Counts and logs an exception caught in the server's thread.
    void caught(std::string_view where, std::exception_ptr error) noexcept;
    Result<ControlReplyBody> answer(const ControlRequest& request);
    void count(Drop reason);
    void count(std::string_view reason);  // a drop reason by name (the codec's errors)
    // The ZAP policy of a tcp endpoint: the node's key, or one control_keys lists.
    bool admits(const CurveKey& key);

    NodeCore& core_;
    const std::string endpoint_;
    zmq::context_t context_;
    zmq::socket_t socket_;             // the server thread's alone once it runs
    std::unique_ptr<ZapHandler> zap_;  // tcp only; bound before socket_, then the thread's
    std::string control_keys_;         // the file admits() reads; "" = none
    int wake_fd_ = -1;                 // eventfd: stop() wakes the thread with it
    std::thread thread_;
    std::atomic<bool> stopped_{false};
    std::array<std::atomic<std::uint64_t>, kDropCount> dropped_{};  // by Drop (control.*)
    std::atomic<std::uint64_t> thread_errors_{0};
};

// Adds to a snapshot of the actor's stats what is counted outside the actor: the discovery
// records ignored, the control requests refused, and the exceptions the dispatcher's and the
// control server's threads caught (NodeStats::thread_errors). Node::stats() and the control
// endpoint's `stats` both use it.
void add_outside_counts(NodeCore& core, NodeStats& stats);

}  // namespace peermq::detail
