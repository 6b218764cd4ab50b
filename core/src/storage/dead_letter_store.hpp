// DeadLetterStore: where a node keeps its dead letters, the journal's table or, without a journal
// (NodeOptions::durability memory and no data directory), a bounded list in memory, behind one
// interface: put, list, get, purge and take (for replay). Reads of the journal first wait for the
// commit in flight, so they see every letter put before them. Owned by the actor's thread.
//
// It also counts the letters it holds, by queue and by reason (NodeStats::dead_letters): a put
// adds one (and the memory store's dropped oldest letter is taken off), a take removes one, a
// purge counts again; with a journal, the letters already in it are counted when the store is
// made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "peermq/dead_letters.hpp"
#include "storage/journal_pipeline.hpp"

namespace peermq::detail {

class DeadLetterStore {
public:
    using Steady = Clock::Steady;
    static constexpr std::size_t kMemoryLimit = 100'000;

    // `journal` null: in memory, at most `memory_limit` letters (the oldest go first).
    explicit DeadLetterStore(JournalPipeline* journal, std::size_t memory_limit = kMemoryLimit);

    // False when the memory store was full and dropped its oldest letter to take this one
    // (count dlq.memory_full).
    bool put(DeadLetter letter, Steady now);

    Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter, Steady now);
    Result<DeadLetter> get(const MessageId& id, Steady now);
    Result<std::size_t> purge(const DeadLetterFilter& filter, Steady now);
    // Removes the letter and returns it (replay); not_found when there is none.
    Result<DeadLetter> take(const MessageId& id, Steady now);

    // The letters stored now, by queue, then by reason (NodeStats::dead_letters); no entry is 0.
    // With a journal this includes the outbox rows Journal::outbox_load() moved to the dead
    // letters (reason `corrupt`): the node loads its outbox after making the store.
    using Counts = DeadLetterCounts;
    const Counts& counts() const;

    // Counts the letters again from what is stored (the journal's table: after the commit in
    // flight and what is buffered). A read of the journal that fails keeps the counts as they
    // were, and is logged.
    void recount(Steady now);

private:
    static void add(Counts& counts, const std::string& queue, const std::string& reason);
    void remove(const std::string& queue, const std::string& reason);
    // The journal's counts replace counts_; false (logged) when they could not be read.
    bool read_journal_counts();

    JournalPipeline* journal_;
    std::size_t memory_limit_;
    std::deque<DeadLetter> memory_;
    // Mutable for counts(), which takes in the journal's quarantined rows it has not counted.
    mutable Counts counts_;
    mutable std::size_t quarantined_counted_ = 0;  // of Journal::quarantined()
};

}  // namespace peermq::detail
