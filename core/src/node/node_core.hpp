// NodeCore: the state a Node shares between the application's threads and its actor.
//
// Everything here is either immutable after create(), atomic, or guarded by the named mutex.
// Sockets, peers, in-flight messages and the journal belong to the Actor (actor.hpp) alone.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "dispatch/dispatcher.hpp"
#include "dispatch/mailbox.hpp"
#include "peermq/node.hpp"
#include "security/node_key.hpp"
#include "security/trust_policy.hpp"
#include "util/mutex.hpp"

namespace peermq::detail {

// NodeOptions::max_peers at most; what one peer costs in file descriptors (its PUSH socket's
// signaler and connection, its connections to our inbox and pub, and from our SUB; in the
// secure modes that SUB is its own, with a signaler of its own: one more); what a node
// needs besides its peers (its own sockets, the journal, the control and metrics servers,
// discovery). The inbox and pub each accept at most a connection per peer and
// kSpareConnections more (tools, peers restarting): past that, idle connections are cut.
inline constexpr std::size_t kMaxPeersLimit = 65536;
inline constexpr std::size_t kFdsPerPeer = 5;
inline constexpr std::size_t kFdsPerSecurePeer = 6;
inline constexpr std::size_t kSpareConnections = 16;
inline constexpr std::size_t kReservedFds = 64;
inline constexpr std::size_t kReservedSockets = 32;

// The peers a node hears from (alive or suspect), kept by the actor for its discovery backends
// (Discovery::set_heard_from), which ask on threads of their own.
class HeardPeers {
public:
    void set(const NodeId& id, bool heard) PEERMQ_EXCLUDES(mutex_) {
        MutexLock lock(mutex_);
        if (heard) {
            ids_.insert(id);
        } else {
            ids_.erase(id);
        }
    }
    // Whether one of them has an id ending in `short_id` (Uuid::short_string()).
    bool heard(std::string_view short_id) const PEERMQ_EXCLUDES(mutex_) {
        MutexLock lock(mutex_);
        return std::any_of(ids_.begin(), ids_.end(),
                           [&](const NodeId& id) { return id.short_string() == short_id; });
    }

private:
    mutable Mutex mutex_;
    std::set<NodeId> ids_ PEERMQ_GUARDED_BY(mutex_);
};

class Actor;
class ControlServer;
class DataDirLock;
class Journal;

// Sender-side state of a queue shared with send(): its options and how many of its messages
// the node holds (waiting + in flight), which the overflow policy compares with max_length.
struct QueueShared {
    std::string name;
    std::atomic<std::size_t> max_length{0};
    std::atomic<OverflowPolicy> overflow{OverflowPolicy::block};
    std::atomic<std::int64_t> block_timeout_ms{0};
    std::atomic<bool> journaled_each{false};  // fsync_each: send() waits for the commit
    std::atomic<bool> reliable{true};         // acks, so send_confirmed can tell the outcome
    std::atomic<bool> journaled{false};       // reliable, with a journal that is not `memory`
    std::atomic<std::size_t> outstanding{0};
    // With room: lets a blocked send() sleep until the actor frees space. Guards no data (the
    // counts are atomic): notifying under it means a send() that found the queue full is either
    // already waiting or sees the new count.
    Mutex mutex;
    CondVar room;

    // Called by the actor when `n` messages leave the queue (acked, sent best-effort, dead).
    void release(std::size_t n) {
        const std::size_t before = outstanding.fetch_sub(n, std::memory_order_acq_rel);
        if (before >= max_length.load(std::memory_order_relaxed)) {
            MutexLock lock(mutex);
            room.notify_all();
        }
    }
};

// What the journal holds accepted but not yet committed, as send() sees it
// (NodeOptions::max_uncommitted, max_commit_lag). send() counts what it admits into `queued`; the
// actor takes it out when it journals the message and publishes, each loop turn, the records
// buffered or being committed and whether the oldest is too old. Past the bound, send() waits
// on `room`, which the actor signals when the backlog falls back under it.
struct JournalBacklog {
    // Sequentially consistent (the defaults): a send() that counts itself in `waiting` and then
    // reads the backlog, and the actor that publishes the backlog and then reads `waiting`,
    // cannot both miss the other.
    std::atomic<std::size_t> queued{0};
    std::atomic<std::size_t> records{0};
    std::atomic<bool> too_old{false};
    std::atomic<std::size_t> waiting{0};
    Mutex mutex;  // with room, like QueueShared's: guards no data
    CondVar room;

    bool full(std::size_t max) const {
        return too_old.load() || queued.load() + records.load() >= max;
    }
};

using ReceiptPromise = std::shared_ptr<std::promise<Result<Receipt>>>;
using StatusPromise = std::shared_ptr<std::promise<Status>>;

struct SendCmd {
    std::uint32_t queue = 0;
    MessageId id;
    Payload payload;
    Headers headers;
    std::int64_t created_ms = 0;
    ReceiptPromise receipt;   // send_confirmed
    StatusPromise durable;    // fsync_each: fulfilled once the message is on disk
    bool backlogged = false;  // counted in JournalBacklog::queued by send()
    // A dead letter's replay: the actor queues the message only if it can take this letter
    // out of the dead letters (another replay or a purge may have been first), and says which.
    std::optional<MessageId> replay_of;
    StatusPromise replayed;
};
struct DeclareQueueCmd {
    std::uint32_t queue = 0;
    QueueOptions options;
};
struct ConsumeCmd {
    std::string queue;
    std::uint32_t slot = 0;
    ConsumeOptions options;
};
struct SubscribeCmd {
    std::string prefix;
    std::uint32_t slot = 0;
    bool reliable = false;
    std::uint32_t history = 0;
    std::chrono::milliseconds history_age{0};
    SampleLostHandler on_lost;
};
struct PublishCmd {
    std::string topic;
    Payload payload;
    Headers headers;
    MessageId id;
    std::int64_t created_ms = 0;
};
struct DiscoveryCmd {
    DiscoveryEvent event;
    bool configured = false;  // a static peer (options, PEERMQ_PEERS, add_peer): kept while down
};
// Handler outcomes are ready in Dispatcher::take_outcomes().
struct OutcomesCmd {};
struct FlushCmd {
    StatusPromise done;
};
// Rare operations (stats, peers, dead letters, settings) run as a function on the actor.
struct CallCmd {
    std::function<void(Actor&)> fn;
};
struct StopCmd {
    // How long the actor keeps retrying the commit of what is still buffered (a full disk).
    std::chrono::milliseconds flush_timeout{0};
};
// The journal writer finished a group commit (see Actor::JournalWriter).
struct CommitDoneCmd {};

using Command = std::variant<SendCmd, DeclareQueueCmd, ConsumeCmd, SubscribeCmd, PublishCmd,
                             DiscoveryCmd, OutcomesCmd, FlushCmd, CallCmd, StopCmd, CommitDoneCmd>;

class NodeCore {
public:
    NodeCore(NodeOptions options, NodeId id);
    ~NodeCore();

    // Reliable subscriptions made (Node::subscribe bounds them: kMaxReliablePrefixes).
    std::atomic<std::size_t> reliable_subscriptions{0};

    // Binds sockets, opens the journal, starts the actor, dispatcher and discovery.
    Status start();
    // Stops everything. Ok, or the storage error saying how many messages handed to send() could
    // not be written to the journal (retried for up to `flush_timeout`); later calls return the
    // first call's result.
    Status close_flushing(std::chrono::milliseconds flush_timeout) PEERMQ_EXCLUDES(close_mutex_);
    void close() { (void)close_flushing({}); }  // a loss is logged at error by the actor
    // Set by the actor as it stops: what close() returns. Without close_mutex_: close() holds
    // it while it joins the actor, and the join orders this write before close() reads it.
    void set_close_status(Status status) PEERMQ_NO_THREAD_SAFETY_ANALYSIS {
        close_status_ = std::move(status);
    }

    bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
    // The actor failed (an exception escaped its loop): the node serves no more, and every
    // operation reports why. close() still stops it.
    void fail(Status failure) PEERMQ_EXCLUDES(failure_mutex_);
    bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
    Status failure() const PEERMQ_EXCLUDES(failure_mutex_);
    // Ok while the node serves; else why not (closed, or its failure).
    Status serving() const;
    // Wakes every send() waiting for room (in a queue or in the journal): it rechecks. Not
    // under failure_mutex_: a waiting send() checks failed() under its queue's mutex.
    void wake_senders() PEERMQ_EXCLUDES(queues_mutex_, failure_mutex_);
    void post(Command command) { mailbox_.push(std::move(command)); }
    // Runs fn on the actor and waits for its result; `closed` if the node stops first.
    template <typename T>
    Result<T> call(std::function<Result<T>(Actor&)> fn);

    QueueShared* queue_shared(std::uint32_t index);
    Result<std::uint32_t> declare_queue(const std::string& name, const QueueOptions& options);
    // The queue's index; declares it with `defaults` only when it does not exist yet (an existing
    // queue keeps the options its owner gave it).
    Result<std::uint32_t> find_or_declare_queue(const std::string& name,
                                                const QueueOptions& defaults);

    // Records the discovery backends ignored, by reason (thread-safe).
    std::map<std::string, std::uint64_t> discovery_ignored() const;

    // A sticky storage error (disk full, I/O): send() reports it until a commit succeeds.
    void set_storage_error(Status status);
    Status storage_error() const;

    const NodeOptions options;
    NodeId id;  // derived from identity's public key, set by start()
    NodeIdentity identity;
    // What the trust mode lets each key do; set by start(), then the actor's.
    std::unique_ptr<TrustPolicy> trust;
    bool secure() const { return options.trust != TrustMode::plain; }
    std::string inbox_endpoint;
    std::string pub_endpoint;
    std::string advertised_host;  // empty when bound to every interface
    // NodeOptions::max_peers, lowered to what the open-file limit allows (set by start()).
    std::size_t peer_limit = 0;
    // Connections the inbox, and the pub socket, keep at once (set by start()).
    std::size_t connection_limit = 0;
    std::uint16_t inbox_port = 0;
    std::uint16_t pub_port = 0;
    JournalBacklog backlog;
    HeardPeers heard_peers;

    zmq::context_t context;
    Mailbox<Command> mailbox_;
    std::unique_ptr<Dispatcher> dispatcher;
    std::shared_ptr<Clock> clock;
    // The node's logger (peermq/log.hpp): settings from the options, then the environment.
    Logger log;
    // The control endpoint's server (control_server.hpp); null when there is none. Stopped by
    // close(), destroyed with the core, so stats() may read its counters at any time.
    std::unique_ptr<ControlServer> control;
    // What ControlClient::connect takes for it (Node::control_endpoint()); "" = none.
    std::string control_address() const;
    // The IPv4 addresses the node binds ("*" alone: every interface), by NodeOptions::interface
    // and, by default, where `discovery` (null: none) runs.
    Result<std::vector<std::string>> listen_hosts(const Discovery* discovery);

private:
    friend class Actor;

    std::atomic<bool> closed_{false};
    Mutex close_mutex_;
    // Also written by the actor thread while close() holds the mutex and joins it.
    Status close_status_ PEERMQ_GUARDED_BY(close_mutex_);
    mutable Mutex discovery_mutex_;  // discoveries_ vs. stats() readers
    // start() and close() run on one thread at a time: start() before the node is shared,
    // close() under close_mutex_.
    std::unique_ptr<Actor> actor_;
    std::thread actor_thread_;
    std::vector<std::unique_ptr<Discovery>> discoveries_ PEERMQ_GUARDED_BY(discovery_mutex_);
    std::unique_ptr<DataDirLock> data_dir_lock_;  // held from start() to the end of close()

    Mutex queues_mutex_;
    std::vector<std::unique_ptr<QueueShared>> queues_ PEERMQ_GUARDED_BY(queues_mutex_);
    std::unordered_map<std::string, std::uint32_t> queue_index_ PEERMQ_GUARDED_BY(queues_mutex_);
    // send() looks its queue up on every call: queue_shared() reads these without the mutex.
    // Chunks of pointers, published with release stores, never moved or freed before the node.
    static constexpr std::size_t kQueueChunkSize = 256;
    static constexpr std::size_t kQueueChunks = 4096;
    std::array<std::atomic<std::atomic<QueueShared*>*>, kQueueChunks> queue_chunks_{};
    std::vector<std::unique_ptr<std::atomic<QueueShared*>[]>> owned_chunks_
        PEERMQ_GUARDED_BY(queues_mutex_);

    std::atomic<bool> failed_{false};
    mutable Mutex failure_mutex_;
    Status failure_ PEERMQ_GUARDED_BY(failure_mutex_);

    mutable Mutex storage_mutex_;
    std::atomic<bool> storage_failed_{false};
    Status storage_error_ PEERMQ_GUARDED_BY(storage_mutex_);
};

// `core`'s serving() or `closed` when the handle has no core (a moved-from Node or Queue).
Status serving(const std::shared_ptr<NodeCore>& core);

// What every message handed to the node is checked against first (sends and publishes alike):
// invalid_argument when the payload is over NodeOptions::max_payload_bytes.
Status payload_fits(const NodeCore& core, const Payload& payload);

// A dead letter sent again (DeadLetters::replay, the control endpoint's replay) to `queue`, or
// to its own queue when `queue` is empty: admitted like any send (the payload limit, the
// queue's bound and overflow policy, the journal's backlog), then the actor takes the letter out
// of the dead letters in the turn that queues the new message. The letter stays when the send
// is refused. Not on the actor's thread: admission may wait for room.
Result<MessageId> replay_dead_letter(NodeCore& core, const MessageId& id, const std::string& queue);

template <typename T>
Result<T> NodeCore::call(std::function<Result<T>(Actor&)> fn) {
    if (Status status = serving(); !status.ok()) return status;
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    post(CallCmd{[promise, fn = std::move(fn)](Actor& actor) { promise->set_value(fn(actor)); }});
    // A stopping actor drops CallCmds it did not run; the promise is then destroyed unfulfilled.
    try {
        return future.get();
    } catch (const std::future_error&) {
        if (failed()) return failure();
        return make_error(ErrorCode::closed, "the node closed before answering");
    }
}

}  // namespace peermq::detail
