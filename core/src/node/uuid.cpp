#include "peermq/uuid.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>

#include "platform/coarse_clock.hpp"

namespace peermq {
namespace {

// UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 12-bit counter (rand_a, method 1: monotonic
// within a millisecond), variant 0b10, 62 random bits.
//
// The (ms, counter) pair is one process-wide atomic word advanced by compare-and-swap, so ids
// stay unique and monotonic across threads without a lock; the random bits come from a
// generator per thread (each seeded from the CSPRNG), which needs no synchronization at all.
// On a cache line of its own: every send() updates it.
alignas(64) std::atomic<std::uint64_t> g_last{0};  // ms << 12 | counter

// xoshiro256** (Blackman and Vigna): 62 random bits per id at a nanosecond, where
// std::mt19937_64 costs several times that on every send(). Seeded per thread from the OS
// CSPRNG (std::random_device), so the random bits of different processes and threads are
// independent. (Ids are unique, not secret: nothing relies on them being unpredictable.)
class Xoshiro256 {
public:
    Xoshiro256() {
        std::random_device device;
        for (auto& word : s_) {
            word = static_cast<std::uint64_t>(device()) << 32 | device();
        }
        if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the one state it cannot leave
    }
    std::uint64_t operator()() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept {
        return (x << k) | (x >> (64 - k));
    }
    std::uint64_t s_[4];
};

Xoshiro256& thread_random() {
    thread_local Xoshiro256 random;
    return random;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

Uuid Uuid::generate() {
    auto& random = thread_random();
    // The coarse clock ticks every few ms: the counter below keeps the ids of one tick, or of
    // several, in order.
    const auto now_ms = static_cast<std::uint64_t>(detail::coarse_unix_ms());
    const auto fresh_counter = random() & 0x01FF;  // leaves headroom
    std::uint64_t last = g_last.load(std::memory_order_relaxed);
    std::uint64_t next;
    do {
        const std::uint64_t last_ms = last >> 12;
        if (now_ms <= last_ms) {
            std::uint64_t counter = (last & 0x0FFF) + 1;
            std::uint64_t ms = last_ms;
            if (counter > 0x0FFF) {  // counter exhausted: borrow the next millisecond
                ++ms;
                counter = 0;
            }
            next = ms << 12 | counter;
        } else {
            next = now_ms << 12 | fresh_counter;
        }
    } while (!g_last.compare_exchange_weak(last, next, std::memory_order_relaxed));
    const std::uint64_t ms = next >> 12;
    const auto counter = static_cast<std::uint16_t>(next & 0x0FFF);
    const std::uint64_t random_bits = random();
    std::array<std::uint8_t, kSize> b{};
    for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
    b[6] = static_cast<std::uint8_t>(0x70 | ((counter >> 8) & 0x0F));
    b[7] = static_cast<std::uint8_t>(counter & 0xFF);
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(random_bits >> (8 * i));
    b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));
    return Uuid(b);
}

std::optional<Uuid> Uuid::from_bytes(const void* data, std::size_t size) {
    if (size != kSize || data == nullptr) return std::nullopt;
    std::array<std::uint8_t, kSize> b{};
    std::memcpy(b.data(), data, kSize);
    return Uuid(b);
}

std::optional<Uuid> Uuid::parse(std::string_view text) {
    if (text.size() != 36) return std::nullopt;
    std::array<std::uint8_t, kSize> b{};
    std::size_t out = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return std::nullopt;
            ++i;
            continue;
        }
        const int hi = hex_value(text[i]);
        const int lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        b[out++] = static_cast<std::uint8_t>(hi << 4 | lo);
        i += 2;
    }
    return Uuid(b);
}

std::int64_t Uuid::unix_ms() const noexcept {
    std::int64_t ms = 0;
    for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes_[i];
    return ms;
}

std::string Uuid::to_string() const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text;
    text.reserve(36);
    for (std::size_t i = 0; i < kSize; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
        text.push_back(kHex[bytes_[i] >> 4]);
        text.push_back(kHex[bytes_[i] & 0x0F]);
    }
    return text;
}

std::string Uuid::short_string() const { return to_string().substr(28); }

}  // namespace peermq
