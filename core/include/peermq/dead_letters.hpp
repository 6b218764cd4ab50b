// Dead letters: messages that could not be delivered, kept in the node's journal on disk.
//
// DeadLetterJournal opens a node's data directory directly (for tools, and while the node is
// stopped). Node::dead_letters() gives the same operations on a running node, executed by its
// actor. Each object is used from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peermq/message.hpp"
#include "peermq/status.hpp"

namespace peermq {

struct DeadLetter {
    MessageId id;
    std::string queue;
    Headers headers;
    Payload payload;
    // "max_attempts", "expired", "rejected", "no_consumer", "dropped_oldest", or "corrupt" (its
    // bytes changed on disk: never delivered or replayed; docs/spec/journal.md §4.4).
    std::string reason;
    std::uint32_t attempts = 0;
    std::string last_error;
    std::int64_t created_ms = 0;
    std::int64_t first_failure_ms = 0;
    std::int64_t last_failure_ms = 0;
};

struct DeadLetterFilter {
    std::optional<MessageId> id;  // exactly this dead letter
    std::optional<std::string> queue;
    std::optional<std::string> reason;
    std::optional<std::int64_t> since_ms;  // last_failure_ms >= since_ms
    std::optional<std::int64_t> until_ms;  // last_failure_ms <  until_ms
    std::size_t limit = 0;                 // 0 = no limit
};

namespace detail {
class Journal;
}

class DeadLetterJournal {
public:
    // Opens `<data_dir>/peermq.db`; a corrupt or foreign file is a corrupt_journal error naming it.
    static Result<DeadLetterJournal> open(const std::string& data_dir);

    DeadLetterJournal(DeadLetterJournal&&) noexcept;
    DeadLetterJournal& operator=(DeadLetterJournal&&) noexcept;
    ~DeadLetterJournal();

    Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter = {}) const;
    Result<DeadLetter> get(const MessageId& id) const;
    // Removes the dead letters matching the filter; returns how many.
    Result<std::size_t> purge(const DeadLetterFilter& filter);
    // Moves a dead letter back to the outbox, for `queue` (empty = its own queue), attempts
    // reset; the node sends it when it next runs. Returns the id it will be sent with.
    Result<MessageId> replay(const MessageId& id, const std::string& queue = {});

private:
    explicit DeadLetterJournal(std::unique_ptr<detail::Journal> journal);
    std::unique_ptr<detail::Journal> journal_;
};

}  // namespace peermq
