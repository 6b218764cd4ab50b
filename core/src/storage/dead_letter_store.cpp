#include "storage/dead_letter_store.hpp"

#include <algorithm>

namespace peermq::detail {
namespace {

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

bool DeadLetterStore::put(DeadLetter letter, Steady now) {
    if (journal_) {
        journal_->dead_letter_put(std::move(letter), now);
        return true;
    }
    const bool room = memory_.size() < memory_limit_;
    if (!room) memory_.pop_front();
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
        return journal_->journal().dead_letter_purge(filter);
    }
    const std::size_t before = memory_.size();
    std::erase_if(memory_, [&](const DeadLetter& d) { return matches(d, filter); });
    return before - memory_.size();
}

Result<DeadLetter> DeadLetterStore::take(const MessageId& id, Steady now) {
    if (journal_) {
        journal_->settle(now);
        return journal_->journal().dead_letter_take(id);
    }
    auto it = std::find_if(memory_.begin(), memory_.end(),
                           [&](const DeadLetter& d) { return d.id == id; });
    if (it == memory_.end()) return not_found(id);
    DeadLetter letter = std::move(*it);
    memory_.erase(it);
    return letter;
}

}  // namespace peermq::detail
