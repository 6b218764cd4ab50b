// Payload: immutable message bytes with shared ownership, and the MessagePack typed codec.
//
// A Payload never copies on its way through peermq: encoding hands the MessagePack buffer over,
// and a received payload keeps the ZeroMQ frame it arrived in alive. Copies of a Payload share
// the bytes. Safe to read from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <msgpack.hpp>

namespace peermq {

class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Payload {
public:
    Payload() = default;

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
        msgpack::sbuffer buffer(kInitialEncodeBuffer);
        msgpack::pack(buffer, value);
        const std::size_t size = buffer.size();
        return adopt_malloc(buffer.release(), size);
    }

    // Decodes MessagePack into T; throws DecodeError when the bytes are not a T.
    template <typename T>
    T as() const {
        try {
            msgpack::object_handle handle =
                msgpack::unpack(reinterpret_cast<const char*>(data_), size_);
            return handle.get().as<T>();
        } catch (const std::exception& e) {
            throw DecodeError(std::string("payload is not the requested type: ") + e.what());
        }
    }

    const std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }
    // The owner, for zero-copy hand-over to a transport.
    const std::shared_ptr<const void>& owner() const noexcept { return owner_; }

private:
    static constexpr std::size_t kInitialEncodeBuffer = 256;

    std::shared_ptr<const void> owner_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace peermq
