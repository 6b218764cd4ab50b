// Message and Delivery: what handlers receive.
//
// A Message is a value (copying it shares the payload bytes). A Delivery is handed to a queue
// consumer's handler by reference and is valid only during that call; it is not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "peermq/payload.hpp"
#include "peermq/uuid.hpp"

namespace peermq {

using Headers = std::map<std::string, std::string, std::less<>>;

struct Message {
    MessageId id;
    NodeId sender;
    std::string channel;           // queue name or topic
    std::uint32_t attempt = 1;     // 1 on first delivery
    std::int64_t created_ms = 0;   // Unix ms at the sender
    std::int64_t deadline_ms = 0;  // Unix ms after which the message is expired; 0 = never
    Headers headers;
    Payload payload;
    // Topics: the publisher's sequence number of this message on its topic (1, 2, ... per
    // publisher, topic and epoch); 0 for queues and for publishers that do not number theirs.
    std::uint64_t seq = 0;
    // Topics, reliable subscriptions: the message is from the publisher's history (it was
    // published before this subscription joined), not from the live stream.
    bool history = false;

    // payload.as<T>(): throws DecodeError when the payload is not a T (for MessagePack, from
    // <peermq/msgpack.hpp>: or exceeds MsgpackCodec::decode_limits).
    template <typename T>
    T as() const {
        return payload.as<T>();
    }
};

// A queue message being handled. Returning from the handler acks it; throwing nacks it (the
// exception text travels with the nack and the sender retries); reject() sends it straight to the
// sender's dead-letter journal with the given reason text.
class Delivery {
public:
    explicit Delivery(Message message) : message_(std::move(message)) {}

    const Message& message() const noexcept { return message_; }
    // Message::as<T>(); a DecodeError it throws out of the handler nacks with its text.
    template <typename T>
    T as() const {
        return message_.as<T>();
    }

    void reject(std::string reason) {
        rejected_ = true;
        reject_reason_ = std::move(reason);
    }
    bool rejected() const noexcept { return rejected_; }
    const std::string& reject_reason() const noexcept { return reject_reason_; }

private:
    Message message_;
    bool rejected_ = false;
    std::string reject_reason_;
};

using ConsumeHandler = std::function<void(Delivery&)>;
using SubscribeHandler = std::function<void(const Message&)>;

// A reliable subscription's report of topic messages it will never receive: the publisher no
// longer held them when they were asked for again (its history is bounded), or it restarted,
// or it did not answer. Messages first..last (inclusive) of `topic` from `publisher`.
struct SampleLost {
    NodeId publisher;
    std::string publisher_name;
    std::string topic;
    std::uint64_t epoch = 0;  // the publisher's epoch (its incarnation) they belonged to
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    // "not_held" (past the publisher's history), "publisher_restarted", "publisher_gone"
    // (forgotten: down for a minute), "unanswered" (asked again and again with no answer).
    std::string reason;
};
using SampleLostHandler = std::function<void(const SampleLost&)>;

}  // namespace peermq
