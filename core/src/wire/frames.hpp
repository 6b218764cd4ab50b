// ZeroMQ frames for payloads, both ways, without copying what is large: a payload handed to
// ZeroMQ is lent (its owner kept alive until ZeroMQ's I/O thread has sent it), and a received
// frame becomes a payload that keeps the frame.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

#include <msgpack.hpp>
#include <zmq.hpp>

#include "peermq/payload.hpp"
#include "wire/envelope.hpp"

namespace peermq::detail {

inline constexpr std::size_t kCopyBelow = 1024;  // smaller payloads are copied into sent frames

namespace frames_detail {
inline void free_lent_payload(void* /*data*/, void* hint) {
    delete static_cast<std::shared_ptr<const void>*>(hint);
}
// A BATCH body handed to ZeroMQ: msgpack::sbuffer::release() memory.
inline void free_batch_body(void* data, void* /*hint*/) { std::free(data); }
}  // namespace frames_detail

// A frame for a payload: small ones are copied; large ones are lent to ZeroMQ, which releases
// them from its I/O thread once sent.
inline zmq::message_t payload_frame(const Payload& payload) {
    if (payload.size() < kCopyBelow || !payload.owner()) {
        return zmq::message_t(payload.data(), payload.size());
    }
    auto* hold = new std::shared_ptr<const void>(payload.owner());
    return zmq::message_t(const_cast<std::byte*>(payload.data()), payload.size(),
                          &frames_detail::free_lent_payload, hold);
}

// The two frames of a BATCH (docs/spec/wire.md §4.3) of `sender` with `entries` entries, which
// append_batch_entry wrote into `body`: its header, encoded in `scratch`; its body, handed to
// ZeroMQ as it is, not copied (freed by its I/O thread once written). `body` was made with
// kMaxBatchBytes, so it never grew (each growth is a copy); it leaves at its own size (shrunk in
// place: the rest goes back to the heap at once), and `body` starts anew.
struct BatchFrames {
    zmq::message_t header;
    zmq::message_t body;
};
inline BatchFrames take_batch(const NodeId& sender, std::size_t entries, msgpack::sbuffer& body,
                              msgpack::sbuffer& scratch) {
    Header h;
    h.kind = Kind::batch;
    h.sender = sender;
    h.seq = entries;
    scratch.clear();
    encode_header(h, scratch);
    const std::size_t body_size = body.size();
    void* body_bytes = body.release();
    if (void* fitted = std::realloc(body_bytes, body_size)) body_bytes = fitted;
    BatchFrames frames{
        zmq::message_t(scratch.data(), scratch.size()),
        zmq::message_t(body_bytes, body_size, &frames_detail::free_batch_body, nullptr)};
    body = msgpack::sbuffer(kMaxBatchBytes);
    return frames;
}

// A received frame's bytes as a payload: inline when small (no allocation), else the payload
// keeps the frame (one allocation, no copy). The same rule as for a batch's entries.
inline Payload payload_of(zmq::message_t& frame) {
    if (frame.size() <= Payload::kInlineCapacity) {
        return Payload::copy_of(frame.data(), frame.size());
    }
    auto holder = std::make_shared<zmq::message_t>(std::move(frame));
    return Payload::adopt(holder, static_cast<const std::byte*>(holder->data()), holder->size());
}

}  // namespace peermq::detail
