#include <utility>

#include "storage/journal.hpp"
#include "peermq/clock.hpp"
#include "peermq/dead_letters.hpp"

namespace peermq {
namespace {

// A tool may wait longer than the actor for the node's write lock: nobody else waits on it.
constexpr std::chrono::milliseconds kToolBusyTimeout{5000};

Status moved_from() { return Status(ErrorCode::closed, "DeadLetterJournal was moved from"); }

}  // namespace

DeadLetterJournal::DeadLetterJournal(std::unique_ptr<detail::Journal> journal)
    : journal_(std::move(journal)) {}

DeadLetterJournal::DeadLetterJournal(DeadLetterJournal&&) noexcept = default;
DeadLetterJournal& DeadLetterJournal::operator=(DeadLetterJournal&&) noexcept = default;
DeadLetterJournal::~DeadLetterJournal() = default;

Result<DeadLetterJournal> DeadLetterJournal::open(const std::string& data_dir) {
    // A tool never creates a journal: a mistyped data_dir is an error, not a new empty file.
    auto journal = detail::Journal::open(data_dir, Durability::group_commit,
                                         detail::JournalOpenMode::existing);
    if (!journal.ok()) return journal.status();
    (*journal)->set_busy_timeout(kToolBusyTimeout);
    return DeadLetterJournal(std::move(journal).value());
}

Result<std::vector<DeadLetter>> DeadLetterJournal::list(const DeadLetterFilter& filter) const {
    if (!journal_) return moved_from();
    return journal_->dead_letter_list(filter);
}

Result<DeadLetter> DeadLetterJournal::get(const MessageId& id) const {
    if (!journal_) return moved_from();
    return journal_->dead_letter_get(id);
}

Result<std::size_t> DeadLetterJournal::purge(const DeadLetterFilter& filter) {
    if (!journal_) return moved_from();
    return journal_->dead_letter_purge(filter);
}

Result<MessageId> DeadLetterJournal::replay(const MessageId& id, const std::string& queue) {
    if (!journal_) return moved_from();
    return journal_->dead_letter_replay(id, queue, system_clock()->unix_ms());
}

}  // namespace peermq
