// MessagePack typed payloads: the opt-in codec behind Payload::encode(value), as<T>(),
// Queue::send(value), Queue::send_confirmed(value) and Node::publish(topic, value).
//
// Including this header defines PayloadCodec<T> for every T that msgpack-c can pack and convert
// (MSGPACK_DEFINE, the std types, ...) as MsgpackCodec: a MessagePack encoding on the way out,
// and on the way in a decode within MsgpackCodec::decode_limits(), so that a few bytes with
// lying length fields cannot make the decoder allocate more than a small multiple of the payload.
// <peermq/peermq.hpp> includes it; <peermq/node.hpp> does not, so a file that sends and receives
// bytes only compiles without msgpack-c (a third fewer lines: docs/design/public-headers.md).
// A type with a PayloadCodec specialization of its own keeps it, and can still be encoded as
// MessagePack explicitly with MsgpackCodec::encode(value).
//
// Stateless: every function may be called from any thread. msgpack-c is used header-only and
// without Boost (MSGPACK_NO_BOOST, which the peermq package sets for its users).
#pragma once

#include <cstddef>
#include <cstring>
#include <exception>
#include <optional>
#include <string>

#include <msgpack.hpp>

#include "peermq/payload.hpp"

namespace peermq {

class MsgpackCodec {
public:
    // Containers nested deeper than this are refused by decode().
    static constexpr std::size_t kMaxDecodeDepth = 256;

    // The limits decode() reads `size` bytes with: no array, map, string, bin or ext may claim
    // more elements or bytes than `size` (each element takes at least one byte to encode, each
    // map pair two), and containers nest at most kMaxDecodeDepth deep. So the decoded objects
    // of a payload take at most a small multiple of its size, whatever its length fields say.
    static msgpack::unpack_limit decode_limits(std::size_t size) noexcept {
        return msgpack::unpack_limit(size, size / 2, size, size, size, kMaxDecodeDepth);
    }

    // The MessagePack encoding of `value`, inline when it fits Payload::kInlineCapacity.
    template <typename T>
    static Payload encode(const T& value) {
        Stream stream;
        msgpack::pack(stream, value);
        return stream.finish();
    }

    // Decodes MessagePack into T, within decode_limits(payload.size()). Throws DecodeError when
    // the bytes are not a T, or not a MessagePack value within the limits (its text says which).
    template <typename T>
    static T decode(const Payload& payload) {
        const std::size_t size = payload.size();
        try {
            msgpack::object_handle handle =
                msgpack::unpack(reinterpret_cast<const char*>(payload.data()), size, nullptr,
                                nullptr, decode_limits(size));
            return handle.get().as<T>();
        } catch (const msgpack::size_overflow& e) {
            throw DecodeError("payload of " + std::to_string(size) +
                              " bytes exceeds the decode limits: " + e.what());
        } catch (const std::exception& e) {
            throw DecodeError(std::string("payload is not the requested type: ") + e.what());
        }
    }

private:
    // msgpack's output stream for encode(): fills inline bytes, and moves to a heap buffer only
    // when the encoding outgrows them (the Payload then adopts that buffer, uncopied).
    class Stream {
    public:
        void write(const char* data, std::size_t size) {
            if (!heap_ && used_ + size <= Payload::kInlineCapacity) {
                std::memcpy(small_ + used_, data, size);
                used_ += size;
                return;
            }
            if (!heap_) {
                heap_.emplace(kInitialHeapBuffer);
                heap_->write(reinterpret_cast<const char*>(small_), used_);
            }
            heap_->write(data, size);
        }
        Payload finish() {
            if (!heap_) return Payload::copy_of(small_, used_);
            const std::size_t size = heap_->size();
            return Payload::adopt_malloc(heap_->release(), size);
        }

    private:
        static constexpr std::size_t kInitialHeapBuffer = 256;

        std::byte small_[Payload::kInlineCapacity];
        std::size_t used_ = 0;
        std::optional<msgpack::sbuffer> heap_;
    };
};

// MessagePack for every type without a PayloadCodec specialization of its own.
template <typename T>
struct PayloadCodec {
    static Payload encode(const T& value) { return MsgpackCodec::encode(value); }
    static T decode(const Payload& payload) { return MsgpackCodec::decode<T>(payload); }
};

}  // namespace peermq
