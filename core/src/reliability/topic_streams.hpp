// TopicStreams: a subscriber's side of reliable topics (docs/spec/wire.md §14). For each
// publisher that numbers its topics, and each of its topics that a reliable subscription
// matches, a stream: the next number to deliver, the messages that came ahead of it, and the gap
// between, which it asks the publisher to send again (RESEND) until it closes, or reports lost.
// It starts a publisher with a starting RESEND (the reliable prefixes, with the history each
// wants) and takes the answer, a starting SYNC, as where each topic's stream begins. Messages
// leave it in order per stream, interleaved with the reports of what was lost.
//
// Pure: it takes `now` and returns what to do as Effects; no socket, no clock. Owned by the
// actor's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "peermq/message.hpp"
#include "wire/topic_sync.hpp"

namespace peermq::detail {

class TopicStreams {
public:
    using Steady = std::chrono::steady_clock::time_point;

    struct Config {
        std::size_t max_held = 16384;  // messages held ahead of a gap, per stream
        std::chrono::milliseconds retry{400};
        unsigned attempts = 8;  // RESENDs for one gap, sent while the publisher is alive
        // Ranges asked in one RESEND, and only until they hold what one answer can: a subscriber
        // that lost every other message asks for thousands of one-number ranges.
        std::size_t max_ranges = kMaxSyncEntries;
        // The REPAIRs a publisher sends for one RESEND at most (wire.md §14.7): when the last
        // of them has come and the gap is still open, the rest is asked at once.
        std::size_t repairs_per_resend = kMaxRepairsPerResend;
        // Streams per publisher: past it, a new topic's messages are not streamed (delivered as
        // they come, as best effort) so that a publisher of endless topics costs bounded memory.
        std::size_t max_streams = 16384;
        // How long a topic's live stream goes without a message before it counts as paused. A
        // SYNC's `last` above what came is believed only then (it can count messages still on
        // their way on the PUB connection); and a gap whose last answer came while live
        // messages did is asked again then, not at its retry.
        std::chrono::milliseconds quiet{30};
    };

    struct Effects {
        struct Resend {
            NodeId publisher;
            std::uint64_t epoch = 0;
            std::vector<TopicRange> ranges;
        };
        // A gap closed by the messages sent again: its topic, and how long it was open (from
        // the first RESEND for it to the message that closed it).
        struct Repaired {
            std::string topic;
            std::chrono::steady_clock::duration took{};
        };
        std::vector<NodeId> start;  // send these publishers a starting RESEND
        std::vector<Resend> resend;
        std::vector<Repaired> repaired;
        std::size_t duplicates = 0;
        std::size_t stale = 0;
        std::size_t held_full = 0;
        void clear() { *this = Effects{}; }
    };

    // What leaves a stream, in order: a message to deliver, or a range that will never come.
    struct Out {
        Message* message = nullptr;
        const SampleLost* lost = nullptr;
    };

    explicit TopicStreams(Config config) : config_(config) {}

    // Whether this node follows any prefix reliably (and so starts every numbering publisher).
    void set_prefixes(std::vector<ReliablePrefix> prefixes, Steady now, Effects& fx);
    const std::vector<ReliablePrefix>& prefixes() const { return prefixes_; }
    bool follows(const std::string& topic) const;

    // A publisher's HELLO says it numbers its topics; `incarnation` tells a restart.
    void publisher_seen(const NodeId& id, const std::string& name, std::uint64_t incarnation,
                        Steady now, Effects& fx);
    // The publisher is forgotten: what it still owed is lost.
    void publisher_gone(const NodeId& id);
    bool numbered(const NodeId& id) const;

    // A numbered message of a followed topic from a numbering publisher, live or a REPAIR
    // (`repair`).
    // False (not taken, `message` left as it was) when it is not streamed: its publisher is not
    // known as numbering, or has max_streams streams and this topic none.
    bool on_message(Message& message, std::uint64_t epoch, Steady now, Effects& fx,
                    bool repair = false);
    // `more`: a starting SYNC that is not whole yet (its next part follows).
    void on_sync(const NodeId& publisher, std::uint64_t epoch, bool start,
                 const std::vector<TopicRange>& ranges, Steady now, Effects& fx, bool more = false);
    // Asks again what is overdue; gives up (lost, "unanswered") after Config::attempts. Checks
    // the paused streams too.
    void tick(Steady now, const std::function<bool(const NodeId&)>& alive, Effects& fx);
    // Streams whose live stream paused (Config::quiet): a claimed tail is believed and asked
    // for, a gap whose last answer came is asked again; and gaps that waited for room in their
    // stream, once its handler made some (deliver). Due at next_due(), which is never later
    // than the first pause awaited and may be earlier (live messages since pushed it back): it
    // is cheap, asked on every loop turn; check_pauses makes it exact.
    void check_pauses(Steady now, Effects& fx);
    std::optional<Steady> next_due() const { return pause_due_; }

    // Hands what is ready, in order per stream, to `take`, which returns false when the
    // message cannot be taken now (no room): that stream then waits for the next call.
    void deliver(const std::function<bool(const Out&)>& take);
    bool has_ready() const { return !ready_.empty(); }
    // Something to ask again later: a start or a gap not answered yet.
    bool waiting() const;

    // Streams, for stats and tests.
    std::size_t streams() const;
    std::size_t held() const;

private:
    struct Entry {
        Message message;                 // a message to deliver
        std::optional<SampleLost> lost;  // or: a range lost, up to lost->last
    };
    struct Publisher;
    struct Stream {
        Publisher* publisher = nullptr;
        std::uint64_t order = 0;  // made after every stream of a lower order
        std::string topic;
        std::uint64_t epoch = 0;
        std::uint64_t next = 1;          // the next number to leave the stream
        std::uint64_t known_last = 0;    // the highest number known to exist
        std::uint64_t history_last = 0;  // numbers up to it are the history served at the start
        std::map<std::uint64_t, Entry> held;
        std::uint64_t covered = 0;  // numbers the held entries stand for (a lost range: many)
        bool asked = false;
        Steady asked_at{};
        unsigned attempts = 0;
        std::uint64_t asked_next = 0;  // `next` when last asked: progress since resets attempts
        // The last number the publisher's answer to the last RESEND can hold (the
        // repairs_per_resend-th number asked): when it comes, the next part is asked at once.
        std::uint64_t answer_last = 0;
        // A live message (not a REPAIR) came since the last RESEND: the rest of a long gap
        // then waits until the live stream pauses, or for the retry.
        bool live_since_ask = false;
        // The gap under way: when it was first asked for, and whether part of it was reported
        // lost (then its closing is no repair).
        std::optional<Steady> gap_since;
        bool gap_lost = false;
        // A tail a SYNC claimed (its `last`, above known_last), from `claimed_since` on; and
        // when the last live message came: the claim is believed once the live stream paused.
        std::uint64_t claimed = 0;
        std::optional<Steady> claimed_since;
        Steady live_at{};
    };
    struct Publisher {
        NodeId id;
        std::string name;
        std::uint64_t incarnation = 0;
        std::uint64_t epoch = 0;  // the epoch it started us in; 0: not started
        bool starting = false;
        Steady start_sent{};
        std::vector<std::pair<std::uint64_t, Message>> before_start;  // epoch, message
        std::map<std::string, std::unique_ptr<Stream>> streams;
    };

    void start(Publisher& p, Steady now, Effects& fx);
    // Ends every stream of `p` (the epoch is over): what it still lacked is lost for `reason`.
    void end_epoch(Publisher& p, const char* reason);
    Stream& stream_of(Publisher& p, const std::string& topic);
    void put(Stream& s, std::uint64_t seq, Entry entry, Effects& fx);
    // Marks every missing number in [s.next, up_to] lost for `reason`.
    void lose_until(Stream& s, std::uint64_t up_to, const char* reason);
    void ask(Stream& s, Steady now, Effects& fx);
    void update_ready(Stream& s);
    // The last number the held entries stand for (next - 1 when none is held); how many more
    // entries the stream may hold; and whether that is room enough to ask for a gap that waited
    // for it (a quarter of max_held: a handler that takes one message at a time is not asked
    // for one message at a time).
    std::uint64_t top_of(const Stream& s) const;
    std::uint64_t room_of(const Stream& s) const;
    bool has_room(const Stream& s) const;
    // A gap the stream has no room for: asked once its handler made some (check_pauses).
    void wait_for_room(Stream& s);
    // Whether a held entry stands for `seq`: the message, or a lost range over it.
    bool held_covers(const Stream& s, std::uint64_t seq) const;
    bool has_gap(const Stream& s) const;
    // Once a stream has no gap: how long the one it had took to close, when messages closed
    // it; and the stream is ready to ask for its next gap at once.
    void settle_gap(Stream& s, Steady now, Effects& fx);
    // A SYNC says `last` exists: believed at once if the stream already knows it, else once the
    // live stream paused (check_pauses).
    void claim(Stream& s, std::uint64_t last, Steady now);
    // The claim is what the stream now knows (the messages came, or it was believed).
    void settle_claim(Stream& s);
    void note_pause(Steady due);

    const Config config_;
    std::vector<ReliablePrefix> prefixes_;
    std::unordered_map<NodeId, Publisher, UuidHash> publishers_;
    // Streams in the order they were made: an ended epoch's before the next one's.
    struct ByOrder {
        bool operator()(const Stream* a, const Stream* b) const { return a->order < b->order; }
    };
    std::set<Stream*, ByOrder> ready_;     // streams whose next entry is there
    std::set<Stream*, ByOrder> gapped_;    // streams that asked for a gap
    std::set<Stream*, ByOrder> claimed_;   // streams with a tail claimed, not believed yet
    std::set<Stream*, ByOrder> answered_;  // gaps whose last answer came while live ones did
    std::set<Stream*, ByOrder> roomless_;  // gaps that wait for room in their stream
    std::optional<Steady> pause_due_;      // next_due()
    std::uint64_t streams_made_ = 0;
    std::vector<std::unique_ptr<Stream>> ended_;  // streams of an ended epoch, left to drain
};

}  // namespace peermq::detail
