// Test helpers that play a peer with raw ZeroMQ frames (core/src/wire/envelope.hpp,
// docs/spec/wire.md): a header or a HELLO body as one frame, a multipart message sent, a HELLO
// from a made-up sender. For the tests that feed a node what only a hostile or broken peer sends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "peermq/keys.hpp"
#include "wire/envelope.hpp"

namespace peermq::testing {

inline std::string header_frame(const detail::Header& header) {
    msgpack::sbuffer buffer;
    detail::encode_header(header, buffer);
    return {buffer.data(), buffer.size()};
}

// A header of `kind` from `sender`, nothing else set.
inline std::string header_frame(const NodeId& sender, detail::Kind kind) {
    detail::Header header;
    header.kind = kind;
    header.sender = sender;
    return header_frame(header);
}

inline std::string hello_frame(const detail::Hello& hello) {
    msgpack::sbuffer buffer;
    detail::encode_hello(hello, buffer);
    return {buffer.data(), buffer.size()};
}

// A fake peer's identity: a key pair and the id it gives, the only sender its frames may claim
// (a node drops the rest as auth.sender_mismatch).
struct FakeIdentity {
    KeyPair keys;
    NodeId id;
};

inline FakeIdentity fake_identity() {
    FakeIdentity identity{generate_key_pair().value(), {}};
    identity.id = node_id_of(identity.keys.public_key).value();
    return identity;
}

// Makes `socket` a CurveZMQ client of the node whose public key is `server_key` (Z85), as
// `identity`, before it connects. An empty `server_key` (a plain node) leaves it plain.
inline void curve_client(zmq::socket_t& socket, const std::string& server_key,
                         const FakeIdentity& identity) {
    if (server_key.empty()) return;
    socket.set(zmq::sockopt::curve_serverkey, server_key);
    socket.set(zmq::sockopt::curve_publickey, identity.keys.public_key);
    socket.set(zmq::sockopt::curve_secretkey, identity.keys.secret_key);
}

// Makes `socket` a CurveZMQ server as `identity` (a fake peer's inbox or pub, which the node
// reaches with the key of the connection its HELLO came on), before it binds. `secure` false:
// left plain, for a plain node.
inline void curve_server(zmq::socket_t& socket, const FakeIdentity& identity, bool secure = true) {
    if (!secure) return;
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, identity.keys.secret_key);
}

// Binds `socket` to an ephemeral port on 127.0.0.1 (no linger); returns the port. Where a fake
// peer says it listens.
inline std::uint16_t bind_loopback(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::linger, 0);
    socket.bind("tcp://127.0.0.1:*");
    const std::string endpoint = socket.get(zmq::sockopt::last_endpoint);
    return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

// One multipart message: every frame but the last with ZMQ_SNDMORE.
inline void send_frames(zmq::socket_t& socket, const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
        zmq::message_t frame(frames[i].data(), frames[i].size());
        socket.send(frame,
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

// `hello` from `sender` (by default one made up for this message).
inline void send_hello(zmq::socket_t& socket, const detail::Hello& hello,
                       const NodeId& sender = NodeId::generate()) {
    send_frames(socket, {header_frame(sender, detail::Kind::hello), hello_frame(hello)});
}

// The sockets of a peer spoken by hand, as a node's links expect them: its inbox (a PULL) and PUB
// bound on loopback as CurveZMQ servers of a key of its own, and a PUSH to the node's inbox as a
// client of the node's key. hello() is its HELLO with those ports, to fill in and send.
struct HandSockets {
    HandSockets(const std::string& node_inbox, const std::string& node_key) {
        curve_server(inbox, identity);
        curve_server(pub, identity);
        inbox_port = bind_loopback(inbox);
        pub_port = bind_loopback(pub);
        to_node.set(zmq::sockopt::linger, 0);
        curve_client(to_node, node_key, identity);
        to_node.connect(node_inbox);
    }

    detail::Hello hello(std::string name) const {
        detail::Hello out;
        out.name = std::move(name);
        out.cluster = "default";
        out.host = "127.0.0.1";
        out.inbox_port = inbox_port;
        out.pub_port = pub_port;
        return out;
    }

    FakeIdentity identity = fake_identity();
    zmq::context_t context;
    zmq::socket_t inbox{context, zmq::socket_type::pull};
    zmq::socket_t pub{context, zmq::socket_type::pub};
    zmq::socket_t to_node{context, zmq::socket_type::push};
    std::uint16_t inbox_port = 0;
    std::uint16_t pub_port = 0;
};

}  // namespace peermq::testing
