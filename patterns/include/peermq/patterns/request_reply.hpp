// Request/reply on top of work queues: a Responder serves a named service from a work queue
// (load-balanced over every node serving it); a Requester sends a request with a reply-to queue
// and a correlation id, and waits for the matching reply with a deadline.
//
// Both are thread-safe handles. They keep a reference to their Node, which must outlive them;
// handlers run on the node's dispatcher pool. Built only from the Node's public API.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "peermq/node.hpp"

namespace peermq::patterns {

// Reply headers a Responder sets.
inline constexpr const char* kReplyToHeader = "peermq-reply-to";
inline constexpr const char* kCorrelationHeader = "peermq-correlation-id";
inline constexpr const char* kErrorHeader = "peermq-error";

class Responder {
public:
    // Returns the reply payload; an exception becomes an error reply carrying its text.
    using Handler = std::function<Payload(const Message& request)>;

    // Serves `service` on `node` until the node closes.
    static Status serve(Node& node, std::string service, Handler handler,
                        ConsumeOptions options = {});

    // Typed convenience: Req and Rep go through PayloadCodec (MessagePack: <peermq/msgpack.hpp>).
    template <typename Req, typename Rep>
    static Status serve_typed(Node& node, std::string service,
                              std::function<Rep(const Req&)> handler, ConsumeOptions options = {}) {
        return serve(
            node, std::move(service),
            [handler = std::move(handler)](const Message& m) {
                return Payload::encode(handler(m.as<Req>()));
            },
            options);
    }
};

class Requester {
public:
    // Consumes this node's private reply queue ("peermq.reply.<node id>").
    static Result<Requester> create(Node& node);

    // Sends `payload` to `service` and waits up to `timeout` for the reply. timed_out when none
    // came; internal with the responder's error text when its handler threw.
    Result<Payload> call(const std::string& service, Payload payload,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

    template <typename Rep, typename Req>
    Result<Rep> call_typed(const std::string& service, const Req& request,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto reply = call(service, Payload::encode(request), timeout);
        if (!reply) return reply.status();
        try {
            return reply->template as<Rep>();
        } catch (const DecodeError& e) {
            return make_error(ErrorCode::protocol_error, e.what());
        }
    }

    const std::string& reply_queue() const noexcept;

private:
    struct State;
    Requester(Node& node, std::shared_ptr<State> state) : node_(&node), state_(std::move(state)) {}
    Node* node_;
    std::shared_ptr<State> state_;
};

}  // namespace peermq::patterns
