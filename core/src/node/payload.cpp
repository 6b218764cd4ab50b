#include "peermq/payload.hpp"

#include <cstdlib>
#include <cstring>

namespace peermq {

Payload Payload::copy_of(const void* data, std::size_t size) {
    if (size == 0) return {};
    if (size <= kInlineCapacity) {
        Payload p;
        p.shared_.~Shared();
        std::memset(p.bytes_, 0, kInlineCapacity);  // so that moves may copy the whole buffer
        std::memcpy(p.bytes_, data, size);
        p.inline_ = true;
        p.size_ = size;
        return p;
    }
    // One allocation holds the control block and the bytes.
    auto block = std::make_shared_for_overwrite<std::byte[]>(size);
    std::memcpy(block.get(), data, size);
    const std::byte* bytes = block.get();
    return adopt(std::shared_ptr<const void>(std::move(block), bytes), bytes, size);
}

Payload Payload::from_string(std::string text) { return copy_of(text.data(), text.size()); }

Payload Payload::adopt_malloc(void* data, std::size_t size) {
    Payload p;
    p.shared_.owner = std::shared_ptr<const void>(
        data, [](const void* ptr) { std::free(const_cast<void*>(ptr)); });
    p.shared_.data = static_cast<const std::byte*>(data);
    p.size_ = size;
    return p;
}

Payload Payload::adopt(std::shared_ptr<const void> owner, const std::byte* data, std::size_t size) {
    Payload p;
    p.shared_.owner = std::move(owner);
    p.shared_.data = data;
    p.size_ = size;
    return p;
}

}  // namespace peermq
