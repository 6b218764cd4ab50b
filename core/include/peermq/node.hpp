// Node: one peer of a peermq cluster.
//
// A Node owns an actor thread that owns every socket, the peer table, the in-flight table and the
// journal; every public method is thread-safe and talks to that actor through a command pipe.
// Handlers run on the node's dispatcher pool, never on the actor thread, and must not call
// close() on their own node. Moving a Node moves the handle; destroying it (or close()) stops the
// actor, says BYE to peers, and commits the journal. Queue handles outliving their node return
// `closed`.
//
// The typed calls (send(value), send_confirmed(value), publish(topic, value)) encode with
// PayloadCodec<T>: include <peermq/msgpack.hpp> for MessagePack. This header alone is the byte
// API (send_payload, publish_payload, Payload) and pulls in no MessagePack.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "peermq/dead_letters.hpp"
#include "peermq/message.hpp"
#include "peermq/options.hpp"
#include "peermq/stats.hpp"
#include "peermq/status.hpp"

namespace peermq {

namespace detail {
class NodeCore;
}

// What became of a message sent with send_confirmed().
struct Receipt {
    enum class Outcome { acked, dead_lettered };
    MessageId id;
    Outcome outcome = Outcome::acked;
    std::string reason;      // dead-letter reason, when dead-lettered
    std::string last_error;  // the last handler error text, if any
};

// A handle for sending to one work queue; cheap to copy, thread-safe.
class Queue {
public:
    const std::string& name() const noexcept { return name_; }

    template <typename T>
    Result<MessageId> send(const T& value, Headers headers = {}) {
        return send_payload(Payload::encode(value), std::move(headers));
    }
    // Hands the message to the actor and returns its id at once (waits only under the `block`
    // overflow policy while the queue is full).
    Result<MessageId> send_payload(Payload payload, Headers headers = {});

    template <typename T>
    std::future<Result<Receipt>> send_confirmed(const T& value, Headers headers = {}) {
        return send_payload_confirmed(Payload::encode(value), std::move(headers));
    }
    std::future<Result<Receipt>> send_payload_confirmed(Payload payload, Headers headers = {});

    // Waits until every message sent so far on this node is durable as the node's durability
    // option defines it (for `memory`: accepted by the actor).
    Status flush(std::chrono::milliseconds timeout = std::chrono::seconds(30));

private:
    friend class Node;
    Queue(std::shared_ptr<detail::NodeCore> core, std::string name, std::uint32_t index)
        : core_(std::move(core)), name_(std::move(name)), index_(index) {}

    std::shared_ptr<detail::NodeCore> core_;
    std::string name_;
    std::uint32_t index_ = 0;
};

// Dead letters of a running node; operations run on its actor.
class DeadLetters {
public:
    Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter = {}) const;
    Result<DeadLetter> get(const MessageId& id) const;
    Result<std::size_t> purge(const DeadLetterFilter& filter);
    // Sends the dead letter again on `queue` (empty = its own), with fresh attempts, and removes
    // it from the dead letters. Returns the new message id. The send is admitted like any
    // send() on that queue (its max_length and overflow policy, max_payload_bytes, the
    // journal's backlog; `block` waits up to block_timeout): when it is refused, the error is
    // send()'s (queue_full, timed_out, ...) and the letter stays. not_found when the letter is
    // gone (purged, or replayed meanwhile).
    Result<MessageId> replay(const MessageId& id, const std::string& queue = {});

private:
    friend class Node;
    explicit DeadLetters(std::shared_ptr<detail::NodeCore> core) : core_(std::move(core)) {}
    std::shared_ptr<detail::NodeCore> core_;
};

class Node {
public:
    // Binds the sockets, opens the journal, starts the actor and discovery. Bad options, a port
    // in use, an unknown interface or a corrupt journal give an error naming the problem.
    static Result<Node> create(NodeOptions options);

    Node(Node&&) noexcept;
    Node& operator=(Node&&) noexcept;
    ~Node();

    const NodeId& id() const noexcept;
    const std::string& name() const noexcept;
    // Endpoints as peers connect to them ("tcp://127.0.0.1:40123").
    const std::string& inbox_endpoint() const noexcept;
    const std::string& pub_endpoint() const noexcept;
    // The node's CURVE public key (Z85), from which its id derives.
    const std::string& public_key() const noexcept;
    // What another node takes as a static peer to reach this one: "tcp://host:port#KEY".
    std::string address() const;
    // What ControlClient::connect takes to reach this node's control endpoint: "ipc://PATH",
    // "tcp://127.0.0.1:PORT#KEY" (the node's public key), or "" when it serves none.
    std::string control_endpoint() const;

    // Work queues: load-balanced over every node consuming `queue` (this one included).
    Status consume(std::string queue, ConsumeHandler handler, ConsumeOptions options = {});
    Result<Queue> queue(std::string name, QueueOptions options = {});

    // Topics: every subscriber whose prefix matches the topic gets the message (this node's
    // subscribers included). A best_effort subscription (the default) gets what arrives: a
    // subscriber not yet connected misses it. A reliable one gets every publisher's messages in
    // order, repaired from the publisher's history, or reported lost (SubscribeOptions).
    template <typename T>
    Status publish(std::string_view topic, const T& value, Headers headers = {}) {
        return publish_payload(topic, Payload::encode(value), std::move(headers));
    }
    Status publish_payload(std::string_view topic, Payload payload, Headers headers = {});
    Status subscribe(std::string prefix, SubscribeHandler handler, SubscribeOptions options = {});

    // Adds a peer by address ("host:port#KEY" or "tcp://host:port#KEY"; no key in plain mode).
    Status add_peer(std::string endpoint);
    std::vector<PeerInfo> peers() const;
    // Called on a dispatcher thread at every peer state change from now on. Peers can become known
    // before it is set (a running peer greets a node as soon as its inbox is bound): peers() read
    // after this call gives their state, and every later change comes as an event.
    void on_peer_event(std::function<void(const PeerEvent&)> handler);

    NodeStats stats() const;

    // Every queue of the cluster as its nodes count it: this node's own report first, then one
    // per peer that is alive, asked over its link (docs/spec/wire.md §15) and waited for at most
    // `timeout`. A peer that does not answer in time, or whose version does not report queues,
    // is listed with answered = false. No central server: each node reports for itself.
    Result<std::vector<NodeQueues>> cluster_queues(
        std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;
    DeadLetters dead_letters();

    // Stops the node. First it carries out what was asked before: the sends and publishes still
    // on their way to the node's thread, and the handler calls already queued (local deliveries
    // included), for up to 2 s. Then it says BYE, commits the journal, joins every thread.
    // Messages still waiting for a consumer stay in the journal for the next start. Idempotent.
    // A journal that cannot take the last commit (disk full) is logged at error with how many
    // messages were lost; flush_and_close() returns it.
    void close();
    // close(), retrying the last commit for up to `timeout` while the journal fails (a full
    // disk being cleared). Ok when every message handed to send() on a journaled queue is on
    // disk (or there is no journal); else the storage error (`disk_full`, `io_error`, ...) with
    // how many were not written: lost, as in a crash. Later calls return the same.
    [[nodiscard]] Status flush_and_close(std::chrono::milliseconds timeout);

private:
    explicit Node(std::shared_ptr<detail::NodeCore> core);
    std::shared_ptr<detail::NodeCore> core_;
};

}  // namespace peermq
