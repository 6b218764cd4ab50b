// Actor: the single thread that owns a node's sockets, peer table, queues, in-flight table,
// dedupe window and journal. Nothing else touches them; other threads reach it through the
// NodeCore mailbox (commands) and it answers through promises and the dispatcher.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "actor/peer.hpp"
#include "actor/peer_links.hpp"
#include "actor/peer_liveness.hpp"
#include "actor/queue_query.hpp"
#include "node/node_core.hpp"
#include "observability/drops.hpp"
#include "peermq/log.hpp"
#include "platform/inbound_connections.hpp"
#include "reliability/ack_batcher.hpp"
#include "reliability/backoff.hpp"
#include "reliability/receiver.hpp"
#include "reliability/sender.hpp"
#include "reliability/timer_wheel.hpp"
#include "reliability/topic_streams.hpp"
#include "reliability/topics.hpp"
#include "security/trust_policy.hpp"
#include "security/zap_handler.hpp"
#include "storage/dead_letter_store.hpp"
#include "storage/journal_pipeline.hpp"
#include "util/ring.hpp"
#include "util/uuid_table.hpp"
#include "wire/envelope.hpp"

namespace peermq::detail {

class Actor final : private SenderPort, private ReceiverPort {
public:
    // `zap`: the node's ZAP handler (null in plain mode), served by the loop.
    Actor(NodeCore& core, zmq::socket_t inbox, zmq::socket_t pub, zmq::socket_t sub,
          std::unique_ptr<ZapHandler> zap, std::unique_ptr<Journal> journal);
    ~Actor();
    Actor(const Actor&) = delete;
    Actor& operator=(const Actor&) = delete;

    // Takes the journal's outbox (unacked messages of a previous run) into the queues. Called
    // once, before run(), on the creating thread.
    Status load_outbox();
    // The loop; returns after a StopCmd.
    void run();

    // Operations run on the actor through CallCmd.
    NodeStats stats();
    std::vector<PeerInfo> peers() const;
    void set_peer_handler(std::function<void(const PeerEvent&)> handler);
    bool consumes(const std::string& queue) const { return receiver_.consumes(queue); }
    Result<std::vector<DeadLetter>> dead_letter_list(const DeadLetterFilter& filter);
    Result<DeadLetter> dead_letter_get(const MessageId& id);
    Result<std::size_t> dead_letter_purge(const DeadLetterFilter& filter);
    // Node::cluster_queues (actor_queues.cpp): this node's report goes into `query`, and a
    // QUEUE_QUERY to each alive peer, whose QUEUE_REPORTs fill it in as they come; the caller
    // waits on it, then ends it.
    void start_queue_query(const std::shared_ptr<QueueQuery>& query);
    void end_queue_query(std::uint64_t seq);

private:
    using Steady = Clock::Steady;

    // Commands.
    void handle(Command& command);
    void on_send(SendCmd& cmd);
    // A replay's send: takes its dead letter out and says so; false (and the send's room given
    // back) when the letter is no longer there.
    bool take_replayed(SendCmd& cmd);
    void on_declare(DeclareQueueCmd& cmd);
    void on_consume(ConsumeCmd& cmd);
    void on_subscribe(SubscribeCmd& cmd);
    void on_publish(PublishCmd& cmd);
    void on_discovery(DiscoveryCmd& cmd);
    void on_outcomes(OutcomesCmd& cmd);
    void on_flush(FlushCmd& cmd);

    // One turn of the loop: wait, then frames, commands, timers, acks, commits.
    void turn();
    // An exception escaped a turn: the node fails cleanly (NodeCore::fail) and answers every
    // later command with the failure until it is stopped.
    void fail(std::string_view what);
    void run_failed();

    // Frames.
    void read_inbox();
    // Topic messages from the shared SUB (`from` null: any publisher) or a peer's own SUB
    // (`from`: every message is that peer's, checked as such).
    void read_sub(zmq::socket_t& socket, Peer* from);
    void on_topic_frame(zmq::message_t& topic, zmq::message_t& header, zmq::message_t& payload,
                        Peer* from);

    // Reliable topics (actor_topics.cpp; docs/spec/wire.md §14).
    // A topic message (live from a SUB, or a REPAIR) to the best-effort subscriptions and the
    // streams of the reliable ones.
    void take_topic_message(TopicMessage topic, std::uint64_t epoch, bool repair);
    // A REPAIR alone (`frame` holds `payload`) or a BATCH's entry (`owner` keeps it), as on_data.
    void on_repair(Peer* peer, std::string_view payload, zmq::message_t* frame,
                   const std::shared_ptr<const void>* owner = nullptr);
    // Queue reports (actor_queues.cpp; docs/spec/wire.md §15). This node's queues as it counts
    // them, those `allowed` names only (null: all).
    NodeQueues queue_report(const Permissions* allowed);
    void on_queue_query(Peer* peer);
    void on_queue_report(Peer* peer, zmq::message_t& body);
    void send_queue_query(Peer& peer);
    void send_queue_report(Peer& peer);
    void on_sync(Peer* peer, zmq::message_t& body);
    void on_resend(Peer* peer, zmq::message_t& body);
    // A follower's starting RESEND: where each topic it follows stands, then its history.
    void answer_start(Peer& peer);
    // `epoch`: a SYNC's is this node's; a RESEND's, the epoch it asks about.
    void send_ranges(Peer& peer, Kind kind, bool start, std::uint64_t epoch,
                     const std::vector<TopicRange>& ranges);
    // A SYNC or RESEND frame: the header, then `body`. False when the link refused it.
    bool send_body(Peer& peer, Kind kind, std::uint32_t flags, std::uint64_t epoch,
                   const msgpack::sbuffer& body);
    void send_start(Peer& peer);
    // A REPAIR for `peer`: put in repair_batch_ when the peer reads REPAIRs in a BATCH and the
    // payload is small, else sent alone (after what the batch holds). `counter` counts it once
    // it is sent. False when the link refused a frame: what was not sent is asked again.
    bool send_repair(Peer& peer, const Message& message, std::uint64_t& counter);
    bool flush_repairs(Peer& peer);
    void topic_tick(Steady now);
    void apply_stream_effects();
    void deliver_streams();
    void report_lost(const SampleLost& lost);
    static constexpr std::chrono::milliseconds kTopicTick{100};
    void on_frame(zmq::message_t& header_frame, zmq::message_t& payload_frame, bool has_payload);
    // `frame`, when given, holds exactly `payload` and may be adopted instead of copied;
    // `owner`, when given, keeps `payload` alive (a BATCH frame's entry) and is shared.
    void on_data(Peer* peer, std::string_view payload, zmq::message_t* frame,
                 const std::shared_ptr<const void>* owner = nullptr);
    static Payload payload_from(std::string_view payload, zmq::message_t* frame,
                                const std::shared_ptr<const void>* owner);
    void on_batch(Peer* peer, zmq::message_t& body_frame);
    void on_hello(zmq::message_t& header_frame, zmq::message_t& payload_frame);
    void on_ack_frame(Peer* peer);

    // Peers.
    Peer* find_peer(const NodeId& id) const;
    // A new peer record and its link, within the peer table's bound: makes room by forgetting
    // an unconfirmed peer, else counts `refused` and returns null (also when no socket could
    // be made).
    Peer* add_peer(const NodeId& id, const std::optional<CurveKey>& key, const std::string& host,
                   std::uint16_t inbox_port, Drop refused);
    // Secure modes: whether the frame came over a connection whose key gives `sender` (its
    // User-Id, set by the ZAP handler); connection_key_ is then that key.
    bool sent_by_connection(zmq::message_t& frame, const NodeId& sender);
    // authorized: whether connection_key_ is (still) listed; connection_entry_ is its line.
    bool connection_authorized();
    // What connection_key_ may do; null: everything.
    const Permissions* connection_permissions() {
        return connection_authorized() && connection_entry_ &&
                       !connection_entry_->permissions.unrestricted()
                   ? &connection_entry_->permissions
                   : nullptr;
    }
    bool make_room();
    // `replaced`: the same node comes back in a new record (a restart): its topic streams wait
    // for its new epoch instead of ending as gone.
    void remove_peer(Peer* peer, bool replaced = false);
    // A frame from the peer: the table's liveness rules (PeerLiveness::heard), carried out.
    void heard(Peer* peer) {
        liveness_.heard(*peer, now_, now_unix_ms_, peer_effects_);
        if (!peer_effects_.empty()) apply_peer_effects();
    }
    // Carries out what the peer table decided (peer_effects_), and clears it.
    void apply_peer_effects();
    // To the application's on_peer_event handler, on the dispatcher (none set: dropped).
    void post_peer_event(PeerEvent event);
    bool pump_owed_ = false;  // the consumers changed: the turn ends with a pump
    void send_hello(Peer* peer);
    // A control frame (ACK, NACK, REJECT, HEARTBEAT, BYE); false when the link took nothing
    // (counted, but for heartbeats and for acks, which wait in their batch).
    bool send_control(Peer* peer, Kind kind, std::vector<MessageId> ids = {},
                      std::string error = {});
    void broadcast_hello();

    // SenderPort: what the sender (reliability/sender.hpp) asks of the node.
    bool send_to(Peer& peer, zmq::message_t& header, zmq::message_t* payload) override {
        return links_.send(peer, header, payload, now_);
    }
    bool has_local_consumer(const std::string& queue) override { return receiver_.consumes(queue); }
    bool local_room(const std::string& queue) override { return receiver_.local_room(queue); }
    void deliver_local(const OutQueue& q, const Outgoing& message) override;
    bool journal_put(const OutQueue& q, const Outgoing& message) override;
    void journal_remove(const MessageId& id) override {
        if (journal_) journal_->outbox_remove(id, now_);
    }
    void store_dead_letter(DeadLetter letter) override {
        if (!dead_letters_->put(std::move(letter), now_)) drop(Drop::dlq_memory_full);
    }
    void count_drop(Drop reason) override { drop(reason); }
    QueueShared* queue_shared(std::uint32_t index) override { return core_.queue_shared(index); }
    // The time of this turn, read again (commands and frames take time).
    Now fresh_now() {
        read_clock();
        return Now{now_, now_unix_ms_};
    }
    Now turn_now() const { return Now{now_, now_unix_ms_}; }

    // ReceiverPort: what the receiver (reliability/receiver.hpp) asks of the node.
    void answer(const NodeId& sender, Kind kind, const MessageId& id, std::string error) override {
        if (Peer* peer = peers_.find(sender)) send_control(peer, kind, {id}, std::move(error));
    }
    void flush_acks_now() override { flush_acks(now_, false); }
    // Sends the batched acks that are due (all when `force`).
    void flush_acks(Steady now, bool force);

    void drop(Drop reason, std::uint64_t n = 1) { drops_.count(reason, n, now_); }
    ChannelStats* queue_stats(const std::string& name) override;
    std::chrono::milliseconds poll_timeout(Steady now) const;
    void flush_jobs();
    void on_stop(const StopCmd& cmd);
    // close(): commits what is buffered, retrying for up to the StopCmd's flush_timeout; what is
    // still not on disk then is logged at error and becomes close()'s error.
    void commit_for_close();
    // close(): carries out every command left in the mailbox and waits, until `deadline`, for
    // the handler calls queued so far, taking their outcomes. Sends nothing new to peers.
    void drain_handlers(Steady deadline);
    // Sleeps until a command is in the mailbox, or `timeout` (-1: none) has passed.
    void wait_for_mailbox(std::chrono::milliseconds timeout);
    void shutdown();

    NodeCore& core_;
    const NodeOptions& options_;
    Clock& clock_;
    Logger& log_;
    zmq::socket_t inbox_;
    zmq::socket_t pub_;
    zmq::socket_t sub_;
    std::unique_ptr<ZapHandler> zap_;
    // The inbox's and pub's connection events: each connection accepted and closed (capped,
    // and cut on a revocation), and failed handshakes (libzmq refuses a failed CurveZMQ
    // handshake silently; these count it, `auth.handshake_failed`).
    zmq::socket_t inbox_monitor_;
    zmq::socket_t pub_monitor_;
    void watch_connections(zmq::socket_t& socket, zmq::socket_t& monitor, const char* name);
    void read_monitor(zmq::socket_t& monitor, InboundConnections& connections);
    // Once a tick: frees what the PUB socket holds of subscriber connections that ended.
    void release_ended_subscribers();
    InboundConnections inbox_connections_;
    InboundConnections pub_connections_;

    // Trust (trust_policy.hpp). The file is looked at every tick.
    TrustPolicy& trust_;
    void check_trust();
    void on_trust_change(const TrustPolicy::Change& change);
    // tofu: false (counted, logged, told) when `name` is pinned to another key.
    bool pin_holds(const std::string& name, const CurveKey& key, const std::string& endpoint);
    // PeerInfo::trust of a peer.
    std::string trust_state(const Peer& peer) const;
    // The queues a peer advertised that its key may consume, with their credit.
    void set_queue_links(Peer& peer);
    // authorized: the subscriptions the pub socket (an XPUB) was asked for, each admitted only
    // if its connection's key may subscribe to it.
    void read_subscriptions();
    // Whether the peer's topics are read from a SUB socket of its own, where each message's
    // sender and topic can be checked against the peer's key: every keyed peer in the secure
    // modes; none in plain mode (the shared SUB).
    bool wants_own_sub(const Peer& peer) const;
    std::vector<NodeId> readable_subs_;        // scratch: peers' own SUBs with messages this turn
    std::uint64_t connection_generation_ = 0;  // trust_.generation() when connection_entry_ was
    const AuthorizedKey* connection_entry_ = nullptr;
    // The last connection key checked, and the id it gives: frames come in runs from one peer.
    std::string connection_user_;
    CurveKey connection_key_{};
    NodeId connection_id_;
    std::unique_ptr<JournalPipeline> journal_;  // null: no journal
    std::unique_ptr<DeadLetterStore> dead_letters_;
    bool stopping_ = false;
    bool draining_ = false;  // closing: pump() sends nothing more
    std::chrono::milliseconds close_flush_timeout_{0};

    PeerLinks links_;
    PeerLiveness liveness_;
    PeerDirectory& peers_;                // liveness_'s records
    PeerLiveness::Effects peer_effects_;  // scratch: what the table decided, until carried out
    std::function<void(const PeerEvent&)> peer_handler_;
    bool hello_dirty_ = false;
    bool trim_memory_ = false;  // peers were forgotten: give their memory back at the next tick
    msgpack::sbuffer hello_body_;

    Sender sender_;

    Receiver receiver_;

    Topics topics_;
    TopicStreams streams_;
    TopicStreams::Effects stream_fx_;
    std::vector<TopicRange> sync_ranges_;  // decode scratch
    Steady next_topic_tick_{};

    std::unordered_map<std::string, ChannelStats> queue_stats_;
    std::unordered_map<std::uint64_t, std::shared_ptr<QueueQuery>> queue_queries_;
    std::uint64_t queue_query_seq_ = 0;
    Drops drops_;

    Steady next_tick_{};
    // The steady time of this loop turn (read after each wait and each batch): per-frame and
    // per-message bookkeeping uses it instead of reading the clock again.
    Steady now_{};
    std::int64_t now_unix_ms_ = 0;
    void read_clock() {
        now_ = clock_.steady_now();
        now_unix_ms_ = clock_.unix_ms();
    }
    Header header_;  // decode scratch
    msgpack::sbuffer encode_buffer_;
    // The REPAIRs of one answer waiting to leave in one BATCH (send_repair), each entry's
    // counter beside it. Empty between answers: every answer ends with flush_repairs, and a
    // refused frame empties it.
    struct RepairBatch {
        msgpack::sbuffer body{kMaxBatchBytes};
        msgpack::sbuffer header;  // encoded at flush_repairs (encode_buffer_ holds an entry's)
        std::vector<std::uint64_t*> counters;
    } repair_batch_;
    std::vector<BatchEntry> batch_entries_;  // decode scratch
    std::vector<HandlerOutcome> outcomes_;   // scratch for on_outcomes
    std::vector<Command> commands_;
    std::vector<zmq::pollitem_t> poll_items_;
};

}  // namespace peermq::detail
