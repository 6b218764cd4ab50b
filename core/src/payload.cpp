#include "peermq/payload.hpp"

#include <cstdlib>
#include <cstring>

namespace peermq {

Payload Payload::copy_of(const void* data, std::size_t size) {
    if (size == 0) return {};
    void* copy = std::malloc(size);
    if (copy == nullptr) throw std::bad_alloc();
    std::memcpy(copy, data, size);
    return adopt_malloc(copy, size);
}

Payload Payload::from_string(std::string text) { return copy_of(text.data(), text.size()); }

Payload Payload::adopt_malloc(void* data, std::size_t size) {
    Payload p;
    p.owner_ = std::shared_ptr<const void>(data, [](const void* ptr) {
        std::free(const_cast<void*>(ptr));
    });
    p.data_ = static_cast<const std::byte*>(data);
    p.size_ = size;
    return p;
}

Payload Payload::adopt(std::shared_ptr<const void> owner, const std::byte* data,
                       std::size_t size) {
    Payload p;
    p.owner_ = std::move(owner);
    p.data_ = data;
    p.size_ = size;
    return p;
}

}  // namespace peermq
