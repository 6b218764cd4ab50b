// The journal's mark file (docs/spec/journal.md §2.1): its encoding, reading and writing, the
// check of a journal against it when it opens, and accepting a loss it found
// (`peermq doctor --accept-journal-loss`).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>

#include "platform/data_dir_lock.hpp"
#include "storage/journal.hpp"
#include "storage/journal_rows.hpp"

namespace peermq::detail {

namespace fs = std::filesystem;

namespace journal_rows {

namespace {

// Flushes what any process wrote to `path` (nothing when it does not exist).
void sync_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

// --- The mark file (spec §2.1) -----------------------------------------------------------------

// Fixed size, so that an update is one pwrite over the same bytes; text, so that a person can
// read it; checked, so that a torn or damaged mark is told apart from a real one.
constexpr std::size_t kMarkBodySize = 77;
constexpr std::size_t kMarkSize = kMarkBodySize + 23;
using MarkText = std::array<char, kMarkSize + 1>;  // with snprintf's terminating NUL

MarkText encode_mark(const JournalCounts& counts) {
    MarkText text{};
    std::snprintf(text.data(), kMarkBodySize + 1,
                  "peermq journal mark 1\ncommits %020llu\nrows %020llu\n",
                  static_cast<unsigned long long>(counts.commits),
                  static_cast<unsigned long long>(counts.rows));
    std::snprintf(text.data() + kMarkBodySize, kMarkSize - kMarkBodySize + 1, "check %016llx\n",
                  static_cast<unsigned long long>(XXH3_64bits(text.data(), kMarkBodySize)));
    return text;
}

std::optional<JournalCounts> decode_mark(std::string_view text) {
    if (text.size() != kMarkSize) return std::nullopt;
    unsigned long long commits = 0;
    unsigned long long rows = 0;
    unsigned long long check = 0;
    char tail = 0;
    const std::string copy(text);
    if (std::sscanf(copy.c_str(),
                    "peermq journal mark 1\ncommits %20llu\nrows %20llu\ncheck %16llx%c", &commits,
                    &rows, &check, &tail) != 4 ||
        tail != '\n') {
        return std::nullopt;
    }
    if (check != XXH3_64bits(copy.data(), kMarkBodySize)) return std::nullopt;
    const JournalCounts counts{commits, rows};
    // Only the exact encoding is a mark (sscanf would also take other spacing).
    if (std::string_view(encode_mark(counts).data(), kMarkSize) != text) return std::nullopt;
    return counts;
}

std::string mark_path_of(const fs::path& data_dir) {
    return (data_dir / Journal::kMarkFileName).string();
}

// Writes the mark to a new file and renames it into place: the mark is then either the old one
// or the new one, never a torn one, also after a power cut.
Status write_mark_atomically(const std::string& path, const JournalCounts& counts) {
    const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Status(ErrorCode::io_error,
                      "journal: cannot create " + temporary + ": " + std::strerror(errno));
    }
    const MarkText text = encode_mark(counts);
    const bool written =
        ::write(fd, text.data(), kMarkSize) == static_cast<ssize_t>(kMarkSize) && ::fsync(fd) == 0;
    const int error = errno;
    ::close(fd);
    if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int cause = written ? errno : error;
        ::unlink(temporary.c_str());
        return Status(ErrorCode::io_error,
                      "journal: cannot write " + path + ": " + std::strerror(cause));
    }
    sync_directory(fs::path(path).parent_path());
    return {};
}

std::string describe(const JournalCounts& counts) {
    return std::to_string(counts.commits) + " commit" + (counts.commits == 1 ? "" : "s") + " (" +
           std::to_string(counts.rows) + " row write" + (counts.rows == 1 ? "" : "s") + ")";
}

std::string salvage_advice(const std::string& path) {
    const std::string dir = fs::path(path).parent_path().string();
    return "Nothing was changed. Salvage what is left first (copy " + dir +
           " aside; `peermq dlq list --data-dir " + dir + "`, `sqlite3 -readonly " + path +
           "`), then accept the loss and go on with `peermq doctor --data-dir " + dir +
           " --accept-journal-loss` (docs/spec/journal.md §8)";
}

}  // namespace

// corrupt_journal for a journal that holds less than its mark records.
Status lost_commits(const std::string& path, const JournalMark& mark, const JournalCounts& held,
                    const std::string& why) {
    const JournalCounts& recorded = mark.counts;
    const std::uint64_t commits = recorded.commits - std::min(recorded.commits, held.commits);
    const std::uint64_t rows = recorded.rows - std::min(recorded.rows, held.rows);
    return Status(ErrorCode::corrupt_journal,
                  "journal " + path + " has lost committed data: " + why + ". Its mark " +
                      mark.path + " records " + describe(recorded) + ", the journal holds " +
                      describe(held) + ": " + std::to_string(commits) + " commit" +
                      (commits == 1 ? " is" : "s are") + " missing, with " + std::to_string(rows) +
                      " row writes (messages journaled, acks, dead letters). " +
                      salvage_advice(path));
}

Status damaged_mark(const std::string& path, const JournalMark& mark) {
    const std::string dir = fs::path(path).parent_path().string();
    return Status(ErrorCode::corrupt_journal,
                  "journal " + path + ": its mark " + mark.path +
                      " is damaged, so whether committed data was lost cannot be told. If the "
                      "journal is complete, `peermq doctor --data-dir " +
                      dir + " --accept-journal-loss` writes a new mark (docs/spec/journal.md §8)");
}

}  // namespace journal_rows

using namespace journal_rows;

JournalMark Journal::read_mark(const std::string& data_dir) {
    JournalMark mark;
    mark.path = mark_path_of(data_dir);
    const int fd = ::open(mark.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mark.state = errno == ENOENT ? JournalMark::State::absent : JournalMark::State::damaged;
        return mark;
    }
    mark.state = JournalMark::State::damaged;
    // A read that overlaps a writer's pwrite may see half of each: read again.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::array<char, kMarkSize + 1> buffer{};
        const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), 0);
        if (n < 0) break;
        if (auto counts =
                decode_mark(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
            mark.state = JournalMark::State::ok;
            mark.counts = *counts;
            break;
        }
    }
    ::close(fd);
    return mark;
}

Status Journal::check_mark(JournalOpenMode mode, bool accepting) {
    Status found;
    if (mark_.state == JournalMark::State::damaged) {
        found = damaged_mark(path_, mark_);
    } else if (mark_.state == JournalMark::State::ok && mark_.counts.commits > held_.commits) {
        found = lost_commits(path_, mark_, held_,
                             "it holds fewer commits than it made (SQLite drops the part of a WAL "
                             "after a damaged frame without an error; or an older copy of the "
                             "file was put in its place)");
    }
    if (accepting) return {};  // accept_loss settles the journal and writes the mark itself
    if (!found.ok()) {
        if (mode == JournalOpenMode::create) return found;
        loss_ = std::move(found);  // a tool may still read what is left, to salvage it
        return {};
    }
    if (mode == JournalOpenMode::create &&
        (mark_.state == JournalMark::State::absent || mark_.counts.commits < held_.commits)) {
        if (Status s = raise_mark(); !s.ok()) return s;
    }
    if (mark_.state == JournalMark::State::ok) {
        // A tool that may not write the mark leaves it behind, which is harmless.
        mark_fd_ = ::open(mark_.path.c_str(), O_RDWR | O_CLOEXEC);
        if (mark_fd_ < 0 && mode == JournalOpenMode::create) {
            return Status(ErrorCode::io_error,
                          "journal: cannot open " + mark_.path + ": " + std::strerror(errno));
        }
        mark_synced_ = std::chrono::steady_clock::now();
    }
    return {};
}

Status Journal::raise_mark() {
    // What the database holds may be only in the page cache (written by a process killed before
    // its fsync): on disk first, or a power cut could leave the mark ahead of the database.
    sync_file(path_ + "-wal");
    sync_file(path_);
    if (Status s = write_mark_atomically(mark_.path, held_); !s.ok()) return s;
    mark_.state = JournalMark::State::ok;
    mark_.counts = held_;
    return {};
}

void Journal::note_committed(const JournalCounts& counts) {
    held_ = counts;
    if (mark_fd_ < 0) return;
    // Not synced each time: a mark behind the database only weakens the check, and SQLite
    // has synced the commit it records. A failed write leaves it behind too.
    const MarkText text = encode_mark(counts);
    if (::pwrite(mark_fd_, text.data(), kMarkSize, 0) != static_cast<ssize_t>(kMarkSize)) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - mark_synced_ >= kMarkSyncInterval) {
        (void)::fdatasync(mark_fd_);
        mark_synced_ = now;
    }
}

Result<JournalLossAccepted> Journal::accept_loss(const std::string& data_dir) {
    std::error_code ec;
    if (data_dir.empty() || !fs::is_directory(data_dir, ec)) {
        return Status(ErrorCode::not_found, "journal: no data directory " + data_dir);
    }
    // Never under a running node; held until the mark is written.
    auto lock = DataDirLock::acquire(data_dir);
    if (!lock) return lock.status();
    JournalLossAccepted result;
    result.before = read_mark(data_dir);
    auto opened = open_checked(data_dir, Durability::group_commit, JournalOpenMode::create, true);
    if (!opened) return opened.status();
    Journal& journal = **opened;
    result.lost = result.before.state == JournalMark::State::damaged ||
                  (result.before.state == JournalMark::State::ok &&
                   result.before.counts.commits > journal.held_.commits);
    // What SQLite replayed moves into the database and the WAL is emptied: its damaged tail is
    // gone, and with it the chance that a later recovery reads it differently.
    if (Status s = journal.exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing"); !s.ok()) {
        return s;
    }
    if (Status s = journal.raise_mark(); !s.ok()) return s;
    result.held = journal.held_;
    return result;
}

}  // namespace peermq::detail
