// Uuid: 16-byte identifiers for messages (UUIDv7, time-ordered) and nodes.
//
// A value type; generate() is thread-safe, lock-free and monotonic within a process: two ids
// generated one after the other compare in generation order (the 12-bit rand_a field is a
// sub-millisecond counter, RFC 9562 §6.2 method 1).
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace peermq {

class Uuid {
public:
    static constexpr std::size_t kSize = 16;

    Uuid() = default;  // the nil id
    explicit Uuid(const std::array<std::uint8_t, kSize>& bytes) : bytes_(bytes) {}

    // A new UUIDv7 from the system clock and a CSPRNG-seeded generator.
    static Uuid generate();
    // From 16 raw bytes; nullopt when the size is wrong.
    static std::optional<Uuid> from_bytes(const void* data, std::size_t size);
    // From the canonical 36-character text form.
    static std::optional<Uuid> parse(std::string_view text);

    const std::array<std::uint8_t, kSize>& bytes() const noexcept { return bytes_; }
    const std::uint8_t* data() const noexcept { return bytes_.data(); }
    bool is_nil() const noexcept {
        std::uint64_t lo, hi;
        std::memcpy(&lo, bytes_.data(), 8);
        std::memcpy(&hi, bytes_.data() + 8, 8);
        return (lo | hi) == 0;
    }
    // Unix milliseconds stored in a UUIDv7.
    std::int64_t unix_ms() const noexcept;
    // "0190a3c4-...." canonical form.
    std::string to_string() const;
    // The last 8 hex digits: enough to tell nodes apart in logs and DNS-SD instance names.
    std::string short_string() const;

    friend auto operator<=>(const Uuid&, const Uuid&) = default;
    // Two 64-bit compares instead of a call to memcmp: ids are compared on every hash lookup.
    friend bool operator==(const Uuid& a, const Uuid& b) noexcept {
        std::uint64_t a0, a1, b0, b1;
        std::memcpy(&a0, a.bytes_.data(), 8);
        std::memcpy(&a1, a.bytes_.data() + 8, 8);
        std::memcpy(&b0, b.bytes_.data(), 8);
        std::memcpy(&b1, b.bytes_.data() + 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }

private:
    std::array<std::uint8_t, kSize> bytes_{};
};

using MessageId = Uuid;
using NodeId = Uuid;

struct UuidHash {
    std::size_t operator()(const Uuid& id) const noexcept {
        // Mixed, not just folded: tables that mask the hash (the id tables of the hot path)
        // need random low bits, and a UUIDv7's low bytes are not (byte 8 holds the variant;
        // the first 8 bytes, read little-endian, start with the slow-moving timestamp).
        std::uint64_t a;
        std::uint64_t b;
        std::memcpy(&a, id.data(), sizeof a);
        std::memcpy(&b, id.data() + 8, sizeof b);
        std::uint64_t x = b ^ (a * 0x9E3779B97F4A7C15ull);
        x ^= x >> 32;
        x *= 0xD6E8FEB86659FD93ull;
        x ^= x >> 32;
        return static_cast<std::size_t>(x);
    }
};

}  // namespace peermq
