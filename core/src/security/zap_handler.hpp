// ZapHandler: the node's ZeroMQ authentication handler (ZAP, ZeroMQ RFC 27). libzmq asks it, for
// every CurveZMQ handshake on the node's own sockets (inbox, pub), whether the client's key may
// connect, and takes from its answer the User-Id that every frame of that connection carries:
// the client's public key in Z85. The actor checks each frame's claimed sender against it.
// A REP socket on inproc://zeromq.zap.01 in the node's own ZeroMQ context, bound before the
// node's sockets and served by the actor's poll loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "security/node_key.hpp"

namespace peermq::detail {

class ZapHandler {
public:
    // Decides for one client key; true lets it connect. Empty: every key may (TrustMode::open).
    using Policy = std::function<bool(const CurveKey& client_key)>;

    explicit ZapHandler(zmq::context_t& context);

    zmq::socket_t& socket() { return socket_; }
    void set_policy(Policy policy) { policy_ = std::move(policy); }

    // Answers every request waiting, without blocking.
    void serve();

    std::uint64_t accepted() const { return accepted_; }
    std::uint64_t refused() const { return refused_; }
    std::uint64_t malformed() const { return malformed_; }

private:
    void reply(const std::string& request_id, std::string_view code, std::string_view text,
               const std::string& user_id);

    zmq::socket_t socket_;
    Policy policy_;
    std::uint64_t accepted_ = 0;
    std::uint64_t refused_ = 0;
    std::uint64_t malformed_ = 0;
};

}  // namespace peermq::detail
