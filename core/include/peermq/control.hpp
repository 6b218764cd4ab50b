// Control: a running node's local administration endpoint, and the client that reaches it.
//
// A node serves requests on its control endpoint (NodeOptions::control_endpoint; by default
// ipc://<data_dir>/control.sock when it has a data directory, none otherwise). Requests are
// answered by the node from the same state Node::stats(), Node::peers() and
// Node::dead_letters() give in process. The endpoint is for this host's operators: an ipc socket
// is made 0600, and a tcp endpoint must be on a loopback address and speaks CurveZMQ, admitting
// only the node's own key and its control keys (NodeOptions::control_keys).
//
// The `peermq` tool uses ControlClient for `stats` and for `dlq` against a running node; a
// stopped node's dead letters are reached with DeadLetterJournal (dead_letters.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "peermq/dead_letters.hpp"
#include "peermq/stats.hpp"
#include "peermq/status.hpp"

namespace peermq {

// The default control endpoint of a node whose data directory is `data_dir`:
// "ipc://<absolute data_dir>/control.sock".
std::string control_endpoint_for_data_dir(const std::string& data_dir);

// True when a running node holds the lock on `data_dir` (<data_dir>/LOCK; a second node on the
// directory fails with `in_use`). Tests the lock without taking it; a node killed with SIGKILL
// holds it no more.
bool data_dir_in_use(const std::string& data_dir);

class ControlClient {
public:
    // Prepares a client for `endpoint` ("ipc://PATH", or "tcp://127.0.0.1:PORT#KEY" with the
    // node's public key, as Node::control_endpoint() gives it); nothing is sent yet. Each
    // request waits at most `timeout`, then fails with `unavailable` (no node answers).
    //
    // A tcp endpoint speaks CurveZMQ: the client proves `secret_key` (Z85; empty: the
    // PEERMQ_SECRET_KEY environment variable), whose public half must be the node's own or be
    // listed in its control_keys (NodeOptions::control_keys); a node that refuses it makes
    // every request fail with `permission_denied`. A tcp endpoint without a key, or without a
    // secret key to prove, is invalid_argument.
    static Result<ControlClient> connect(
        std::string endpoint, std::chrono::milliseconds timeout = std::chrono::seconds(2),
        std::string secret_key = {});

    ControlClient(ControlClient&&) noexcept;
    ControlClient& operator=(ControlClient&&) noexcept;
    ~ControlClient();

    const std::string& endpoint() const noexcept;

    // A stats or peers reply lists the first peers, channels and names up to fixed bounds and
    // counts the rest in the *_omitted fields (docs/spec/control.md §5.4).
    Result<NodeStats> stats();
    Result<std::vector<PeerInfo>> peers();
    Result<std::vector<DeadLetter>> dead_letter_list(const DeadLetterFilter& filter = {});
    Result<DeadLetter> dead_letter_get(const MessageId& id);
    Result<std::size_t> dead_letter_purge(const DeadLetterFilter& filter);
    // As DeadLetters::replay on the node: sent at once, with fresh attempts.
    Result<MessageId> dead_letter_replay(const MessageId& id, const std::string& queue = {});

private:
    struct Impl;
    explicit ControlClient(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace peermq
