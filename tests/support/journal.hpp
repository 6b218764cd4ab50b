// Test helpers for the journal (core/src/storage/journal.hpp) on real files, shared by the unit
// and fault tests: a fixture with a data directory of its own, records to store, a second raw
// SQLite connection (as the sqlite3 shell or a tool opens the journal), the outbox of a dead
// node's journal, and damage done to the files the way a disk or an operator would (a byte
// flipped in the WAL or in a stored payload).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/dead_letters.hpp"
#include "peermq/msgpack.hpp"
#include "storage/journal.hpp"
#include "support/temp_dir.hpp"

namespace peermq::testing {

// --- records -----------------------------------------------------------------------------------

// An outbox row of `queue` numbered `seq`, with a header and a time that depends on `seq`.
inline detail::OutboxRecord outbox_record(std::uint64_t seq, std::string queue = "orders",
                                          std::string payload = "payload") {
    detail::OutboxRecord r;
    r.id = Uuid::generate();
    r.queue = std::move(queue);
    r.headers = {{"tenant", "acme"}};
    r.payload = Payload::from_string(std::move(payload));
    r.seq = seq;
    r.created_ms = 1'700'000'000'000 + static_cast<std::int64_t>(seq);
    return r;
}

// A dead letter of `queue` that failed for `reason`, last at `failed_ms`: 5 attempts, the last
// error "handler threw", the payload the string "dead <queue>" (MessagePack).
inline DeadLetter dead_letter(std::string queue, std::string reason, std::int64_t failed_ms) {
    DeadLetter l;
    l.id = Uuid::generate();
    l.queue = std::move(queue);
    l.reason = std::move(reason);
    l.headers = {{"traceparent", "00-abc-def-01"}, {"tenant", "acme"}};
    l.payload = Payload::encode("dead " + l.queue);
    l.attempts = 5;
    l.last_error = "handler threw";
    l.created_ms = failed_ms - 100;
    l.first_failure_ms = failed_ms - 50;
    l.last_failure_ms = failed_ms;
    return l;
}

// A DeadLetterFilter by position: designated initialisers that skip members trip GCC 12's
// -Wmissing-field-initializers.
inline DeadLetterFilter filter(std::optional<std::string> queue = {},
                               std::optional<std::string> reason = {},
                               std::optional<std::int64_t> since_ms = {},
                               std::optional<std::int64_t> until_ms = {}, std::size_t limit = 0) {
    DeadLetterFilter f;
    f.queue = std::move(queue);
    f.reason = std::move(reason);
    f.since_ms = since_ms;
    f.until_ms = until_ms;
    f.limit = limit;
    return f;
}

// --- the journal from outside ------------------------------------------------------------------

// A second, raw connection to a journal's database. Not copyable.
class RawDb {
public:
    explicit RawDb(const std::string& path) {
        EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    int exec(const std::string& sql) {
        return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    }
    // The first column of the first row, or -1.
    std::int64_t scalar(const std::string& sql) {
        sqlite3_stmt* stmt = nullptr;
        std::int64_t value = -1;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            value = sqlite3_column_int64(stmt, 0);
        }
        sqlite3_finalize(stmt);
        return value;
    }

private:
    sqlite3* db_ = nullptr;
};

// The outbox of the journal in `data_dir`, read as a tool would while its node is down
// (JournalOpenMode::existing). Throws when it cannot be read.
inline std::vector<detail::OutboxRecord> outbox_of(const std::string& data_dir) {
    auto journal = detail::Journal::open(data_dir, Durability::group_commit,
                                         detail::JournalOpenMode::existing);
    if (!journal) throw std::runtime_error(journal.status().to_string());
    auto records = journal.value()->outbox_load();
    if (!records) throw std::runtime_error(records.status().to_string());
    return std::move(records).value();
}

// A data directory of its own for each test: dir_ (not created: Journal::open creates it), its
// database and WAL. Everything is removed after the test, also what a test made read-only.
class JournalFixture : public ::testing::Test {
protected:
    ~JournalFixture() override {
        std::error_code ignored;
        for (const auto& path : {root_.path(), dir_}) {
            std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                                         std::filesystem::perm_options::add, ignored);
        }
    }

    std::unique_ptr<detail::Journal> open_journal(
        detail::JournalOpenMode mode = detail::JournalOpenMode::create) {
        auto journal = detail::Journal::open(dir_, Durability::group_commit, mode);
        EXPECT_TRUE(journal.ok()) << journal.status().to_string();
        return journal.ok() ? std::move(journal).value() : nullptr;
    }

    TempDir root_{"peermq-journal"};
    const std::string dir_ = root_.file("data");
    const std::string db_ = dir_ + "/peermq.db";
    const std::string wal_ = db_ + "-wal";
};

// --- damage ------------------------------------------------------------------------------------

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
