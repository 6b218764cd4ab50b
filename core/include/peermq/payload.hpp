// Payload: immutable message bytes, and the MessagePack typed codec.
//
// Small payloads (at most Payload::kInlineCapacity bytes: telemetry readings, commands, ids) are
// held inside the Payload object, like ZeroMQ's very small messages: making, copying and
// freeing one never touches the heap, and a queue of them is one contiguous run of memory.
// Larger payloads are shared, never copied on their way through peermq: encoding hands the
// MessagePack buffer over, and a received payload keeps the ZeroMQ frame it arrived in alive
// (for a batched message, that frame holds the batch: up to 64 KiB; copy_of() a received
// payload you keep for long). Copies of a large Payload share the bytes. Safe to read from any
// thread; data() belongs to the object, so it changes when a small Payload is moved or copied.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <msgpack.hpp>

namespace peermq {

class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

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
    // Takes ownership of a buffer allocated with malloc (msgpack::sbuffer::release()).
    static Payload adopt_malloc(void* data, std::size_t size);
    // Keeps `owner` alive for as long as any copy of the payload exists.
    static Payload adopt(std::shared_ptr<const void> owner, const std::byte* data,
                         std::size_t size);

    // MessagePack encoding of any type with a msgpack adaptor (MSGPACK_DEFINE, std types, ...).
    template <typename T>
    static Payload encode(const T& value) {
        Encoder encoder;
        msgpack::pack(encoder, value);
        return encoder.finish();
    }

    // Containers nested deeper than this are refused by as<T>().
    static constexpr std::size_t kMaxDecodeDepth = 256;

    // The limits as<T>() decodes `size` bytes with: no array, map, string, bin or ext may claim
    // more elements or bytes than `size` (each element takes at least one byte to encode, each
    // map pair two), and containers nest at most kMaxDecodeDepth deep. So the decoded objects
    // of a payload take at most a small multiple of its size, whatever its length fields say.
    static msgpack::unpack_limit decode_limits(std::size_t size) noexcept {
        return msgpack::unpack_limit(size, size / 2, size, size, size, kMaxDecodeDepth);
    }

    // Decodes MessagePack into T, within decode_limits(size()). Throws DecodeError when the
    // bytes are not a T, or not a MessagePack value within the limits (its text says which).
    template <typename T>
    T as() const {
        try {
            msgpack::object_handle handle =
                msgpack::unpack(reinterpret_cast<const char*>(data()), size_, nullptr, nullptr,
                                decode_limits(size_));
            return handle.get().as<T>();
        } catch (const msgpack::size_overflow& e) {
            throw DecodeError("payload of " + std::to_string(size_) +
                              " bytes exceeds the decode limits: " + e.what());
        } catch (const std::exception& e) {
            throw DecodeError(std::string("payload is not the requested type: ") + e.what());
        }
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

    // msgpack's output stream for encode(): fills the inline bytes, and moves to a heap buffer
    // only when the encoding outgrows them.
    class Encoder {
    public:
        void write(const char* data, std::size_t size) {
            if (!heap_ && used_ + size <= kInlineCapacity) {
                std::memcpy(small_ + used_, data, size);
                used_ += size;
                return;
            }
            if (!heap_) {
                heap_.emplace(kInitialEncodeBuffer);
                heap_->write(reinterpret_cast<const char*>(small_), used_);
            }
            heap_->write(data, size);
        }
        Payload finish() {
            if (!heap_) return copy_of(small_, used_);
            const std::size_t size = heap_->size();
            return adopt_malloc(heap_->release(), size);
        }

    private:
        std::byte small_[kInlineCapacity];
        std::size_t used_ = 0;
        std::optional<msgpack::sbuffer> heap_;
    };

    static constexpr std::size_t kInitialEncodeBuffer = 256;

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
