// ZeroMQ frames for payloads, both ways, without copying what is large: a payload handed to
// ZeroMQ is lent (its owner kept alive until ZeroMQ's I/O thread has sent it), and a received
// frame becomes a payload that keeps the frame.
#pragma once

#include <cstddef>
#include <memory>

#include <zmq.hpp>

#include "peermq/payload.hpp"

namespace peermq::detail {

inline constexpr std::size_t kCopyBelow = 1024;  // smaller payloads are copied into sent frames

namespace frames_detail {
inline void free_lent_payload(void* /*data*/, void* hint) {
    delete static_cast<std::shared_ptr<const void>*>(hint);
}
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
