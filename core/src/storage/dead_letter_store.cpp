#include "storage/dead_letter_store.hpp"

#include <algorithm>
#include <exception>

namespace peermq::detail {
namespace {

// The reason Journal::outbox_load() gives the damaged outbox rows it moves to the dead letters.
constexpr const char* kQuarantineReason = "corrupt";

bool matches(const DeadLetter& letter, const DeadLetterFilter& filter) {
    if (filter.id && letter.id != *filter.id) return false;
    if (filter.queue && letter.queue != *filter.queue) return false;
    if (filter.reason && letter.reason != *filter.reason) return false;
    if (filter.since_ms && letter.last_failure_ms < *filter.since_ms) return false;
    if (filter.until_ms && letter.last_failure_ms >= *filter.until_ms) return false;
    return true;
}

Status not_found(const MessageId& id) {
    return make_error(ErrorCode::not_found, "no dead letter " + id.to_string());
}

}  // namespace

DeadLetterStore::DeadLetterStore(JournalPipeline* journal, std::size_t memory_limit)
    : journal_(journal), memory_limit_(memory_limit) {
    // The letters an earlier run left. The journal may not be read while a commit runs (a store
    // made then is counted by its first recount()).
    if (journal_ && !journal_->committing()) (void)read_journal_counts();
}

bool DeadLetterStore::put(DeadLetter letter, Steady now) {
    // A message is dead-lettered once (a replay sends it under a new id): every put is a letter
    // more.
    add(counts_, letter.queue, letter.reason);
    if (journal_) {
        journal_->dead_letter_put(std::move(letter), now);
        return true;
    }
    const bool room = memory_.size() < memory_limit_;
    if (!room && !memory_.empty()) {
        remove(memory_.front().queue, memory_.front().reason);
        memory_.pop_front();
    }
    memory_.push_back(std::move(letter));
    return room;
}

Result<std::vector<DeadLetter>> DeadLetterStore::list(const DeadLetterFilter& filter, Steady now) {
    if (journal_) {
        journal_->settle(now);
        return journal_->journal().dead_letter_list(filter);
    }
    std::vector<DeadLetter> out;
    for (const auto& letter : memory_) {
        if (!matches(letter, filter)) continue;
        out.push_back(letter);
        if (filter.limit != 0 && out.size() >= filter.limit) break;
    }
    return out;
}

Result<DeadLetter> DeadLetterStore::get(const MessageId& id, Steady now) {
    if (journal_) {
        journal_->settle(now);
        return journal_->journal().dead_letter_get(id);
    }
    for (const auto& letter : memory_) {
        if (letter.id == id) return letter;
    }
    return not_found(id);
}

Result<std::size_t> DeadLetterStore::purge(const DeadLetterFilter& filter, Steady now) {
    if (journal_) {
        journal_->settle(now);
        auto purged = journal_->journal().dead_letter_purge(filter);
        // Which letters the filter (and its limit) took is the database's to say: counted again.
        if (purged.ok() && purged.value() > 0) (void)read_journal_counts();
        return purged;
    }
    const std::size_t before = memory_.size();
    std::erase_if(memory_, [&](const DeadLetter& d) {
        if (!matches(d, filter)) return false;
        remove(d.queue, d.reason);
        return true;
    });
    return before - memory_.size();
}

Result<DeadLetter> DeadLetterStore::take(const MessageId& id, Steady now) {
    if (journal_) {
        journal_->settle(now);
        auto taken = journal_->journal().dead_letter_take(id);
        if (taken.ok()) {
            remove(taken->queue, taken->reason);
        } else if (taken.status().code() == ErrorCode::corrupt_journal) {
            // A damaged letter is refused and stored again with reason `corrupt`.
            (void)read_journal_counts();
        }
        return taken;
    }
    auto it = std::find_if(memory_.begin(), memory_.end(),
                           [&](const DeadLetter& d) { return d.id == id; });
    if (it == memory_.end()) return not_found(id);
    DeadLetter letter = std::move(*it);
    memory_.erase(it);
    remove(letter.queue, letter.reason);
    return letter;
}

const DeadLetterStore::Counts& DeadLetterStore::counts() const {
    if (journal_) {
        // The node loads its outbox after making the store; the rows that load moved to the dead
        // letters are listed by the journal, and counted here once each. Only this thread
        // touches that list (a commit on the writer thread never does).
        const auto& moved = journal_->journal().quarantined();
        for (; quarantined_counted_ < moved.size(); ++quarantined_counted_) {
            add(counts_, moved[quarantined_counted_].queue, kQuarantineReason);
        }
    }
    return counts_;
}

void DeadLetterStore::recount(Steady now) {
    if (journal_) {
        journal_->settle(now);
        (void)read_journal_counts();
        return;
    }
    Counts counts;
    for (const auto& letter : memory_) add(counts, letter.queue, letter.reason);
    counts_ = std::move(counts);
}

void DeadLetterStore::add(Counts& counts, const std::string& queue, const std::string& reason) {
    ++counts[queue][reason];
}

void DeadLetterStore::remove(const std::string& queue, const std::string& reason) {
    const auto by_queue = counts_.find(queue);
    if (by_queue == counts_.end()) return;
    const auto by_reason = by_queue->second.find(reason);
    if (by_reason == by_queue->second.end()) return;
    if (--by_reason->second == 0) {
        by_queue->second.erase(by_reason);
        if (by_queue->second.empty()) counts_.erase(by_queue);
    }
}

bool DeadLetterStore::read_journal_counts() {
    Status failed;
    try {
        auto counts = journal_->journal().dead_letter_counts();
        if (counts.ok()) {
            counts_ = std::move(counts).value();
            // The table holds every row the outbox load moved so far.
            quarantined_counted_ = journal_->journal().quarantined().size();
            return true;
        }
        failed = counts.status();
    } catch (const std::exception& e) {
        failed = make_error(ErrorCode::internal, e.what());
    }
    PEERMQ_LOG(journal_->log(), LogLevel::warn, "dlq",
               "could not count the dead letters; the counts stay as they were",
               {"error", failed.to_string()});
    return false;
}

}  // namespace peermq::detail
