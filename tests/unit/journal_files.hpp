// Test helpers that damage a journal's files the way a disk or an operator would: a byte flipped
// in the WAL or in a stored payload, a file cut to 0 bytes. Shared by the unit and fault tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace peermq::testing {

inline std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Inverts the byte at `offset` in place (never a no-op, unlike writing a chosen value).
inline void flip_byte(const std::string& path, std::uint64_t offset) {
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    if (!file) throw std::runtime_error("cannot open " + path);
    file.seekg(static_cast<std::streamoff>(offset));
    char byte = 0;
    if (!file.get(byte)) throw std::runtime_error("offset past the end of " + path);
    file.seekp(static_cast<std::streamoff>(offset));
    file.put(static_cast<char>(~byte));
    if (!file.flush()) throw std::runtime_error("cannot write " + path);
}

// Where `needle` first occurs in the file, or nullopt.
inline std::optional<std::uint64_t> find_bytes(const std::string& path, std::string_view needle) {
    const std::string bytes = read_bytes(path);
    const auto at = bytes.find(needle);
    if (at == std::string::npos) return std::nullopt;
    return at;
}

// The live part of an SQLite WAL file (https://sqlite.org/fileformat2.html#walformat): the
// frames, from the start, whose salts match the header's (older frames beyond them are left over
// from before the last checkpoint and are ignored by SQLite anyway), and how far the last commit
// frame among them reaches.
struct WalExtent {
    std::uint32_t page_size = 0;
    std::uint64_t frames = 0;         // live frames
    std::uint64_t commit_frames = 0;  // of which end a transaction
    std::uint64_t committed_end = 0;  // byte offset just past the last commit frame
    std::uint64_t frame_offset(std::uint64_t index) const {
        return 32 + index * (24 + static_cast<std::uint64_t>(page_size));
    }
};

inline WalExtent wal_extent(const std::string& wal_path) {
    const std::string bytes = read_bytes(wal_path);
    auto be32 = [&](std::size_t at) {
        return (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at])) << 24) |
               (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 16) |
               (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 8) |
               static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 3]));
    };
    WalExtent extent;
    if (bytes.size() < 32) return extent;
    extent.page_size = be32(8);
    const std::uint32_t salt1 = be32(16);
    const std::uint32_t salt2 = be32(20);
    for (std::uint64_t i = 0;; ++i) {
        const std::uint64_t at = extent.frame_offset(i);
        if (at + 24 + extent.page_size > bytes.size()) break;
        if (be32(at + 8) != salt1 || be32(at + 12) != salt2) break;
        ++extent.frames;
        if (be32(at + 4) != 0) {  // "database size after commit": set on commit frames only
            ++extent.commit_frames;
            extent.committed_end = at + 24 + extent.page_size;
        }
    }
    return extent;
}

}  // namespace peermq::testing
