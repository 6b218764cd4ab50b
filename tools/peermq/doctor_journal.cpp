// peermq doctor's journal checks (docs/spec/journal.md §8), with --data-dir: the journal opens,
// holds as many commits as its mark records, passes SQLite's quick_check, and every stored record
// matches its checksum. With --accept-journal-loss it first settles what is left and rewrites the
// mark (the node must be stopped).
#include "doctor.hpp"

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>

#include "storage/journal.hpp"

namespace peermq::cli::doctor {
namespace {

std::string plural(std::size_t n, const std::string& word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string accept_command(const std::string& data_dir) {
    return "peermq doctor --data-dir " + data_dir + " --accept-journal-loss";
}

// --accept-journal-loss: settles the journal and rewrites its mark.
void accept_journal_loss(Report& report, const std::string& data_dir) {
    auto accepted = detail::Journal::accept_loss(data_dir);
    if (!accepted) {
        report.problem("accept-loss", "the loss was not accepted: " + accepted.status().message(),
                       accepted.status().code() == ErrorCode::in_use
                           ? "stop the node first"
                           : "the journal cannot be opened at all: move it aside as "
                             "docs/spec/journal.md §8 shows, and start the node on a fresh one");
        return;
    }
    const auto& before = accepted->before;
    const auto& held = accepted->held;
    std::string detail;
    if (before.state == detail::JournalMark::State::damaged) {
        detail = "the damaged mark was replaced";
    } else if (accepted->lost) {
        const auto commits = before.counts.commits - std::min(before.counts.commits, held.commits);
        const auto rows = before.counts.rows - std::min(before.counts.rows, held.rows);
        detail = "accepted the loss of " + plural(commits, "commit") + " (" +
                 plural(rows, "row write") + ")";
    } else {
        detail = "nothing was missing";
    }
    report.ok("accept-loss", detail + "; the mark now records " + plural(held.commits, "commit") +
                                 ", what the journal holds");
}

}  // namespace

void check_journal(Report& report, const DoctorOptions& options) {
    const std::string& dir = options.data_dir;
    std::error_code error;
    if (!std::filesystem::is_directory(dir, error)) {
        report.problem("journal", "no data directory " + dir, "give a node's --data-dir");
        return;
    }
    if (options.accept_journal_loss) accept_journal_loss(report, dir);
    const auto mark = detail::Journal::read_mark(dir);
    auto opened =
        detail::Journal::open(dir, Durability::group_commit, detail::JournalOpenMode::existing);
    if (!opened) {
        const Status& status = opened.status();
        if (status.code() == ErrorCode::not_found) {
            report.warn("journal", status.message(),
                        "a node creates its journal when it first starts with this --data-dir");
        } else {
            report.problem(
                "journal", status.message(),
                mark.state == detail::JournalMark::State::absent
                    ? "move the journal aside and salvage it as docs/spec/journal.md "
                      "§8 shows"
                    : "salvage what is left first (see above), then " + accept_command(dir));
        }
        return;
    }
    detail::Journal& journal = **opened;
    const std::string counts = plural(journal.held().commits, "commit") + " (" +
                               plural(journal.held().rows, "row write") + ")";
    if (!journal.loss().ok()) {
        report.problem("journal", journal.loss().message(),
                       "salvage what is left first (`peermq dlq list --data-dir " + dir +
                           "`; the outbox with `sqlite3 -readonly " + journal.path() +
                           " 'SELECT * FROM outbox'`), then " + accept_command(dir));
    } else {
        const std::string agreement =
            mark.state == detail::JournalMark::State::ok
                ? "its mark records " + std::to_string(mark.counts.commits) + ", none missing"
                : "it has no mark yet (the node writes one when it starts)";
        report.ok("journal", journal.path() + ": format " +
                                 std::to_string(detail::Journal::kFormatVersion) + ", " + counts +
                                 "; " + agreement);
    }
    if (Status integrity = journal.verify(); integrity.ok()) {
        report.ok("integrity", "PRAGMA quick_check: ok");
    } else {
        report.problem("integrity", integrity.message(),
                       "stop the node, move the journal aside and salvage it as "
                       "docs/spec/journal.md §8 shows");
    }
    auto records = journal.check_records();
    if (!records) {
        report.problem("records", records.status().message(),
                       "salvage the journal as docs/spec/journal.md §8 shows");
        return;
    }
    const std::string seen =
        plural(records->outbox, "outbox message") + ", " +
        plural(records->dead_letters, "dead letter") +
        (records->unverified > 0 ? " (" + std::to_string(records->unverified) +
                                       " of format 1, without a checksum: not verified)"
                                 : std::string());
    if (records->outbox_corrupt == 0 && records->dead_letters_corrupt == 0) {
        report.ok("records", seen + "; every checksum matches");
        return;
    }
    std::string damaged;
    if (records->outbox_corrupt > 0) {
        damaged = plural(records->outbox_corrupt, "outbox message") +
                  " damaged on disk (the node moves them to the dead letters with reason "
                  "corrupt when it starts; they are never sent)";
    }
    if (records->dead_letters_corrupt > 0) {
        damaged += (damaged.empty() ? "" : "; ") +
                   plural(records->dead_letters_corrupt, "dead letter") +
                   " damaged on disk or quarantined (reason corrupt; never replayed)";
    }
    report.warn("records", seen + ": " + damaged,
                "check the disk (dmesg, smartctl); look at them with `peermq dlq list --data-dir " +
                    dir + " --reason corrupt` and resend what is still needed");
}

}  // namespace peermq::cli::doctor
