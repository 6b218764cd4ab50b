// Payload: immutable message bytes, and PayloadCodec<T>, the hook typed payloads go through.
//
// Small payloads (at most Payload::kInlineCapacity bytes: telemetry readings, commands, ids) are
// held inside the Payload object, like ZeroMQ's very small messages: making, copying and
// freeing one never touches the heap, and a queue of them is one contiguous run of memory.
// Larger payloads are shared, never copied on their way through peermq: encoding hands the
// encoder's buffer over, and a received payload keeps the ZeroMQ frame it arrived in alive
// (for a batched message, that frame holds the batch: up to 64 KiB; copy_of() a received
// payload you keep for long). Copies of a large Payload share the bytes. Safe to read from any
// thread; data() belongs to the object, so it changes when a small Payload is moved or copied.
//
// This header holds bytes only. The typed calls (Payload::encode, as<T>(), Queue::send(value),
// Node::publish(topic, value), ...) go through PayloadCodec<T>, which a codec header defines:
// <peermq/msgpack.hpp> for MessagePack (<peermq/peermq.hpp> includes it).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace peermq {

class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Payload;

// How a T becomes payload bytes and back: `static Payload encode(const T&)` and
// `static T decode(const Payload&)` (throwing DecodeError on bytes that are not a T). Declared
// here, defined by a codec header: <peermq/msgpack.hpp> defines it for every type MessagePack can
// pack. An application may specialize it for its own types (another encoding); the
// specialization must be visible wherever the type is sent or decoded.
template <typename T>
struct PayloadCodec;

namespace detail {
template <typename T>
concept CanEncodePayload = requires(const T& value) {
    { PayloadCodec<T>::encode(value) } -> std::convertible_to<Payload>;
};
template <typename T>
concept CanDecodePayload = requires(const Payload& payload) {
    { PayloadCodec<T>::decode(payload) } -> std::convertible_to<T>;
};
}  // namespace detail

class Payload {
public:
    // Payloads up to this size are stored inline.
    static constexpr std::size_t kInlineCapacity = 64;

    Payload() noexcept {}
    Payload(const Payload& other) { copy_from(other); }
    Payload(Payload&& other) noexcept { move_from(std::move(other)); }
    Payload& operator=(const Payload& other) {
        if (this != &other) {
            reset();
            copy_from(other);
        }
        return *this;
    }
    Payload& operator=(Payload&& other) noexcept {
        if (this != &other) {
            reset();
            move_from(std::move(other));
        }
        return *this;
    }
    ~Payload() {
        if (!inline_) shared_.~Shared();
    }

    static Payload copy_of(const void* data, std::size_t size);
    static Payload from_string(std::string text);
    // Takes ownership of a buffer allocated with malloc (such as msgpack::sbuffer::release()).
    static Payload adopt_malloc(void* data, std::size_t size);
    // Keeps `owner` alive for as long as any copy of the payload exists.
    static Payload adopt(std::shared_ptr<const void> owner, const std::byte* data,
                         std::size_t size);

    // PayloadCodec<T>::encode(value): MessagePack once <peermq/msgpack.hpp> is included.
    template <typename T>
    static Payload encode(const T& value) {
        static_assert(detail::CanEncodePayload<T>,
                      "peermq: no PayloadCodec for this type: include <peermq/msgpack.hpp> "
                      "(MessagePack) or specialize peermq::PayloadCodec");
        return PayloadCodec<T>::encode(value);
    }

    // PayloadCodec<T>::decode(*this): throws DecodeError when the bytes are not a T (for
    // MessagePack: or not a value within MsgpackCodec::decode_limits(size())).
    template <typename T>
    T as() const {
        static_assert(detail::CanDecodePayload<T>,
                      "peermq: no PayloadCodec for this type: include <peermq/msgpack.hpp> "
                      "(MessagePack) or specialize peermq::PayloadCodec");
        return PayloadCodec<T>::decode(*this);
    }

    const std::byte* data() const noexcept { return inline_ ? bytes_ : shared_.data; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(data()), size_};
    }
    // The owner of shared bytes, for zero-copy hand-over to a transport; null for an inline (or
    // empty) payload.
    const std::shared_ptr<const void>& owner() const noexcept {
        static const std::shared_ptr<const void> none;
        return inline_ ? none : shared_.owner;
    }

private:
    struct Shared {
        std::shared_ptr<const void> owner;
        const std::byte* data = nullptr;
    };

    void reset() noexcept {
        if (!inline_) shared_.~Shared();
        ::new (static_cast<void*>(&shared_)) Shared();
        inline_ = false;
        size_ = 0;
    }
    // The whole inline buffer, whatever the size: a fixed-size copy is a few vector moves the
    // compiler inlines, a variable one a call into libc on every move of a message. (copy_of
    // zeroes the bytes past size_, so they are defined.)
    void copy_inline(const Payload& other) noexcept {
        std::memcpy(bytes_, other.bytes_, kInlineCapacity);
    }
    // Both expect *this empty (shared_ constructed, null).
    void copy_from(const Payload& other) {
        if (other.inline_) {
            shared_.~Shared();
            copy_inline(other);
            inline_ = true;
        } else {
            shared_ = other.shared_;
        }
        size_ = other.size_;
    }
    void move_from(Payload&& other) noexcept {
        if (other.inline_) {
            shared_.~Shared();
            copy_inline(other);
            inline_ = true;
        } else {
            shared_ = std::move(other.shared_);
            other.shared_.data = nullptr;
        }
        size_ = std::exchange(other.size_, 0);
    }

    union {
        Shared shared_{};
        std::byte bytes_[kInlineCapacity];
    };
    std::size_t size_ = 0;
    bool inline_ = false;
};

}  // namespace peermq
