// Rows of the journal's tables, for the journal's own sources (journal.cpp, journal_commit.cpp,
// journal_reads.cpp, journal_mark.cpp): column lists, binding and reading a row, headers as
// MessagePack, the records' checksums (docs/spec/journal.md §4.4) and the dead-letter filters. Not
// for use elsewhere: the Journal class (journal.hpp) is the interface.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>
// Header-only (inlined): nothing to link, so the installed static library needs no new
// dependency.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "platform/private_file.hpp"
#include "storage/journal.hpp"

namespace peermq::detail::journal_rows {

inline constexpr const char* kOutboxColumns =
    "id, seq, queue, attempts, created_ms, deadline_ms, guarantee, headers, payload, checksum";
inline constexpr const char* kDeadLetterColumns =
    "id, queue, reason, attempts, last_error, created_ms, first_failure_ms, last_failure_ms, "
    "headers, payload, checksum";

inline constexpr const char* kCorruptReason = "corrupt";

// The WAL is truncated back to this after a checkpoint, so a burst does not leave a huge file.
inline constexpr std::int64_t kWalSizeLimit = 64ll << 20;

enum FilterBits : unsigned {
    kByQueue = 1,
    kByReason = 2,
    kSince = 4,
    kUntil = 8,
    kById = 16,
    kFilterShapes = 32,
};

inline ErrorCode code_for(int rc) {
    switch (rc & 0xff) {
        case SQLITE_FULL: return ErrorCode::disk_full;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return ErrorCode::corrupt_journal;
        default: return ErrorCode::io_error;
    }
}

// Resets a statement when leaving scope, which also ends a read statement's snapshot.
class StatementUse {
public:
    explicit StatementUse(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;
    ~StatementUse() { sqlite3_reset(stmt_); }

private:
    sqlite3_stmt* stmt_;
};

// Collects the first failing bind code of a row.
class Binder {
public:
    explicit Binder(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}

    void blob(int index, const void* data, std::size_t size) {
        // A null pointer would bind SQL NULL; an empty payload is an empty blob.
        note(size == 0 ? sqlite3_bind_zeroblob(stmt_, index, 0)
                       : sqlite3_bind_blob64(stmt_, index, data, size, SQLITE_STATIC));
    }
    void text(int index, std::string_view value) {
        note(sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                                 SQLITE_STATIC, SQLITE_UTF8));
    }
    void integer(int index, std::int64_t value) { note(sqlite3_bind_int64(stmt_, index, value)); }
    void id(int index, const MessageId& id) { blob(index, id.data(), MessageId::kSize); }

    int rc() const noexcept { return rc_; }

private:
    void note(int rc) {
        if (rc_ == SQLITE_OK) rc_ = rc;
    }
    sqlite3_stmt* stmt_;
    int rc_ = SQLITE_OK;
};

inline std::string column_text(sqlite3_stmt* stmt, int index) {
    const auto* text = sqlite3_column_text(stmt, index);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt, index)));
}

inline Payload column_payload(sqlite3_stmt* stmt, int index) {
    const void* data = sqlite3_column_blob(stmt, index);
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, index));
    if (data == nullptr || size == 0) return {};
    return Payload::copy_of(data, size);
}

inline std::optional<MessageId> column_id(sqlite3_stmt* stmt, int index) {
    const void* data = sqlite3_column_blob(stmt, index);
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, index));
    if (data == nullptr) return std::nullopt;
    return Uuid::from_bytes(data, size);
}

// Headers are a MessagePack map of str -> str (bin accepted on read), as on the wire.
inline void encode_headers(const Headers& headers, msgpack::sbuffer& out) {
    out.clear();
    msgpack::packer<msgpack::sbuffer> packer(out);
    packer.pack_map(static_cast<std::uint32_t>(headers.size()));
    for (const auto& [key, value] : headers) {
        packer.pack_str(static_cast<std::uint32_t>(key.size()));
        packer.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
        packer.pack_str(static_cast<std::uint32_t>(value.size()));
        packer.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
    }
}

inline bool string_of(const msgpack::object& object, std::string& out) {
    if (object.type == msgpack::type::STR) {
        out.assign(object.via.str.ptr, object.via.str.size);
        return true;
    }
    if (object.type == msgpack::type::BIN) {
        out.assign(object.via.bin.ptr, object.via.bin.size);
        return true;
    }
    return false;
}

inline std::optional<Headers> decode_headers(const void* data, std::size_t size) {
    if (data == nullptr || size == 0) return Headers{};
    try {
        // Every element takes at least one byte, so these limits reject a forged count before
        // msgpack-c allocates for it.
        const msgpack::unpack_limit limit(0, size / 2, size, size, 0, 2);
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr, limit);
        const msgpack::object& map = handle.get();
        if (offset != size || map.type != msgpack::type::MAP) return std::nullopt;
        Headers headers;
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
            std::string key;
            std::string value;
            if (!string_of(map.via.map.ptr[i].key, key) ||
                !string_of(map.via.map.ptr[i].val, value)) {
                return std::nullopt;
            }
            headers.insert_or_assign(std::move(key), std::move(value));
        }
        return headers;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// The outbox row `stmt` is on, with its id and headers already read.
inline OutboxRecord outbox_record(sqlite3_stmt* stmt, const MessageId& id, Headers headers) {
    OutboxRecord record;
    record.id = id;
    record.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
    record.queue = column_text(stmt, 2);
    record.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 3));
    record.created_ms = sqlite3_column_int64(stmt, 4);
    record.deadline_ms = sqlite3_column_int64(stmt, 5);
    record.guarantee = static_cast<std::uint8_t>(sqlite3_column_int64(stmt, 6));
    record.headers = std::move(headers);
    record.payload = column_payload(stmt, 8);
    return record;
}

// --- Checksums (spec §4.4) ---------------------------------------------------------------------

// XXH3-64 over the id, the queue, the encoded headers and the payload, each hashed with the
// previous result as its seed, so that bytes cannot move between fields unnoticed. Stored as
// SQLite's signed 64-bit integer. XXH3 rather than CRC32C, which no Debian library ships, or
// zlib's CRC32, which is slower and has half the bits.
inline std::int64_t record_checksum(const void* id, std::size_t id_size, std::string_view queue,
                                    const void* headers, std::size_t headers_size,
                                    const void* payload, std::size_t payload_size) {
    XXH64_hash_t hash = XXH3_64bits(id, id_size);
    hash = XXH3_64bits_withSeed(queue.data(), queue.size(), hash);
    hash = XXH3_64bits_withSeed(headers, headers_size, hash);
    hash = XXH3_64bits_withSeed(payload, payload_size, hash);
    return static_cast<std::int64_t>(hash);
}

// Where a row's checksummed columns are in a result row.
struct ChecksumColumns {
    int id, queue, headers, payload, checksum;
};
inline constexpr ChecksumColumns kOutboxChecksummed{0, 2, 7, 8, 9};
inline constexpr ChecksumColumns kDeadLetterChecksummed{0, 1, 8, 9, 10};

// Whether the row's stored checksum matches its bytes; nullopt for a row of format 1, which
// has none.
inline std::optional<bool> checksum_matches(sqlite3_stmt* stmt, const ChecksumColumns& at) {
    if (sqlite3_column_type(stmt, at.checksum) == SQLITE_NULL) return std::nullopt;
    const std::int64_t stored = sqlite3_column_int64(stmt, at.checksum);
    // Each pointer is taken before its size, as SQLite asks.
    const void* id = sqlite3_column_blob(stmt, at.id);
    const auto id_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.id));
    const auto* queue = reinterpret_cast<const char*>(sqlite3_column_text(stmt, at.queue));
    const auto queue_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.queue));
    const void* headers = sqlite3_column_blob(stmt, at.headers);
    const auto headers_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.headers));
    const void* payload = sqlite3_column_blob(stmt, at.payload);
    const auto payload_size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, at.payload));
    return stored == record_checksum(id, id_size,
                                     std::string_view(queue == nullptr ? "" : queue, queue_size),
                                     headers, headers_size, payload, payload_size);
}

inline std::string filter_where(unsigned shape) {
    std::string where = "1";
    if (shape & kByQueue) where += " AND queue = ?1";
    if (shape & kByReason) where += " AND reason = ?2";
    if (shape & kSince) where += " AND last_failure_ms >= ?3";
    if (shape & kUntil) where += " AND last_failure_ms < ?4";
    if (shape & kById) where += " AND id = ?6";
    return where;
}

// --- Shared by journal.cpp and journal_mark.cpp -----------------------------------------------

// Makes a new file's directory entry durable (SQLite syncs the directory only for its journals):
// platform/private_file.hpp's.
using detail::sync_directory;

// corrupt_journal for a journal that holds less than its mark records, saying `why`.
Status lost_commits(const std::string& path, const JournalMark& mark, const JournalCounts& held,
                    const std::string& why);

// corrupt_journal for a damaged mark: whether committed data was lost cannot be told.
Status damaged_mark(const std::string& path, const JournalMark& mark);

}  // namespace peermq::detail::journal_rows

namespace peermq::detail {

// Every statement the journal runs, prepared once; the filtered ones on first use of a shape.
struct Journal::Statements {
    SqlStatement begin;
    SqlStatement commit;
    SqlStatement rollback;
    SqlStatement outbox_put;
    SqlStatement outbox_remove;
    SqlStatement outbox_load;
    SqlStatement outbox_ids;
    SqlStatement outbox_count;
    SqlStatement outbox_max_seq;
    SqlStatement dead_letter_put;
    SqlStatement dead_letter_get;
    SqlStatement dead_letter_remove;
    SqlStatement dead_letter_flag;
    SqlStatement quarantine;
    SqlStatement count_commit;
    SqlStatement held;
    std::array<SqlStatement, journal_rows::kFilterShapes> dead_letter_list;
    std::array<SqlStatement, journal_rows::kFilterShapes> dead_letter_purge;
    msgpack::sbuffer headers;  // reused encoding buffer, bound SQLITE_STATIC for one step
};

}  // namespace peermq::detail
