// DeadLetterStore: where a node keeps its dead letters, the journal's table or, without a journal
// (NodeOptions::durability memory and no data directory), a bounded list in memory, behind one
// interface: put, list, get, purge and take (for replay). Reads of the journal first wait for the
// commit in flight, so they see every letter put before them. Owned by the actor's thread.
#pragma once

#include <cstddef>
#include <deque>

#include "peermq/dead_letters.hpp"
#include "storage/journal_pipeline.hpp"

namespace peermq::detail {

class DeadLetterStore {
public:
    using Steady = Clock::Steady;
    static constexpr std::size_t kMemoryLimit = 100'000;

    // `journal` null: in memory, at most `memory_limit` letters (the oldest go first).
    explicit DeadLetterStore(JournalPipeline* journal, std::size_t memory_limit = kMemoryLimit)
        : journal_(journal), memory_limit_(memory_limit) {}

    // False when the memory store was full and dropped its oldest letter to take this one
    // (count dlq.memory_full).
    bool put(DeadLetter letter, Steady now);

    Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter, Steady now);
    Result<DeadLetter> get(const MessageId& id, Steady now);
    Result<std::size_t> purge(const DeadLetterFilter& filter, Steady now);
    // Removes the letter and returns it (replay); not_found when there is none.
    Result<DeadLetter> take(const MessageId& id, Steady now);

private:
    JournalPipeline* journal_;
    std::size_t memory_limit_;
    std::deque<DeadLetter> memory_;
};

}  // namespace peermq::detail
