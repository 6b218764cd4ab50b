#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>

#include "actor/actor.hpp"
#include "admin/control_server.hpp"
#include "node/node_core.hpp"
#include "peermq/keys.hpp"
#include "platform/data_dir_lock.hpp"
#include "platform/interfaces.hpp"
#include "platform/signals.hpp"
#include "security/trust_policy.hpp"
#include "security/zap_handler.hpp"
#include "storage/journal.hpp"
#include "util/strings.hpp"

namespace peermq {
namespace detail {
namespace {

bool valid_name(std::string_view name, std::size_t max) {
    if (name.empty() || name.size() > max) return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

Status validate(const NodeOptions& o) {
    auto bad = [](std::string text) {
        return make_error(ErrorCode::invalid_argument, std::move(text));
    };
    if (o.name.empty()) return bad("name must not be empty");
    if (!valid_name(o.name, 48)) {
        return bad("name '" + o.name + "' must be 1-48 characters of [A-Za-z0-9._-]");
    }
    if (!valid_name(o.cluster, 64)) {
        return bad("cluster '" + o.cluster + "' must be 1-64 characters of [A-Za-z0-9._-]");
    }
    if (o.heartbeat_interval.count() <= 0) return bad("heartbeat_interval must be positive");
    if (o.peer_timeout <= o.heartbeat_interval) {
        return bad("peer_timeout must be longer than heartbeat_interval");
    }
    if (o.dispatcher_threads == 0 || o.dispatcher_threads > 256) {
        return bad("dispatcher_threads must be between 1 and 256");
    }
    if (o.max_payload_bytes == 0) return bad("max_payload_bytes must be positive");
    if (o.max_peers == 0 || o.max_peers > kMaxPeersLimit) {
        return bad("max_peers must be between 1 and " + std::to_string(kMaxPeersLimit));
    }
    if (o.ack_batch_size == 0 || o.ack_batch_size > kMaxIdsPerAck) {
        return bad("ack_batch_size must be between 1 and " + std::to_string(kMaxIdsPerAck));
    }
    if (o.ack_batch_interval.count() < 0) return bad("ack_batch_interval must not be negative");
    if (o.dedupe_window == 0) return bad("dedupe_window must be positive");
    if (o.max_uncommitted == 0) return bad("max_uncommitted must be at least 1");
    if (o.max_commit_lag.count() <= 0) return bad("max_commit_lag must be positive");
    if (o.max_handler_queue == 0) return bad("max_handler_queue must be at least 1");
    if (o.max_handler_queue_bytes == 0) return bad("max_handler_queue_bytes must be positive");
    if (o.topic_history_age.count() <= 0) return bad("topic_history_age must be positive");
    if (o.trust > TrustMode::plain) return bad("trust is not a TrustMode");
    if (o.log_level > LogLevel::off && o.log_level != LogLevel::unset) {
        return bad("log_level is not a LogLevel");
    }
    if (o.log_format > LogFormat::json) return bad("log_format is not a LogFormat");
    if (Status control = validate_control_endpoint(o.control_endpoint, true); !control.ok()) {
        return control;
    }
    return {};
}

Status validate(const QueueOptions& o, std::string_view name) {
    auto bad = [](std::string text) {
        return make_error(ErrorCode::invalid_argument, std::move(text));
    };
    if (name.empty() || name.size() > kMaxChannelBytes)
        return bad("queue name must be 1-255 bytes");
    if (o.max_attempts == 0) return bad("max_attempts must be at least 1");
    if (o.max_length == 0) return bad("max_length must be at least 1");
    if (o.ttl.count() < 0) return bad("ttl must not be negative");
    if (o.retry_initial.count() <= 0 || o.retry_max < o.retry_initial) {
        return bad("retry_initial must be positive and at most retry_max");
    }
    if (o.ack_timeout.count() <= 0) return bad("ack_timeout must be positive");
    if (o.block_timeout.count() < 0) return bad("block_timeout must not be negative");
    if (o.max_credit == 0) return bad("max_credit must be at least 1");
    return {};
}

std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

// Binds `socket` on every host (IPv4 literals, or "*" alone) at one port: `port`, or the one the
// first bind chose. The first endpoint bound.
Result<std::string> bind_socket(zmq::socket_t& socket, const std::vector<std::string>& hosts,
                                std::uint16_t port, const char* what) {
    std::string first;
    for (const auto& host : hosts) {
        const std::string endpoint =
            "tcp://" + host + ":" + (port == 0 ? std::string("*") : std::to_string(port));
        try {
            socket.bind(endpoint);
        } catch (const zmq::error_t& e) {
            if (e.num() == EADDRINUSE) {
                return make_error(ErrorCode::address_in_use, std::string(what) + " port " +
                                                                 std::to_string(port) + " on " +
                                                                 host + " is in use");
            }
            return make_error(ErrorCode::io_error, std::string("cannot bind ") + what + " on " +
                                                       endpoint + ": " + e.what());
        }
        if (first.empty()) {
            first = socket.get(zmq::sockopt::last_endpoint);
            port = port_of(first);
        }
    }
    return first;
}

}  // namespace

// Where the node listens (NodeOptions::interface): the IPv4 address of the interface named; "*"
// for every interface; by default those of the interfaces `discovery` runs on, or every
// interface when it cannot tell (static peers only, a daemon whose interfaces are unknown).
Result<std::vector<std::string>> NodeCore::listen_hosts(const Discovery* discovery) {
    if (options.interface == "*") return std::vector<std::string>{"*"};
    if (!options.interface.empty()) {
        auto address = interface_ipv4(options.interface);
        if (!address) return address.status();
        return std::vector<std::string>{address.value()};
    }
    const std::vector<std::string> names =
        discovery != nullptr ? discovery->interfaces() : std::vector<std::string>{};
    std::vector<std::string> hosts;
    std::vector<std::string> without_ipv4;
    for (const auto& name : names) {
        auto address = interface_ipv4(name);
        if (!address) {
            without_ipv4.push_back(name);
        } else if (std::find(hosts.begin(), hosts.end(), address.value()) == hosts.end()) {
            hosts.push_back(address.value());
        }
    }
    if (!without_ipv4.empty()) {
        PEERMQ_LOG(log, LogLevel::warn, "node",
                   "discovery runs on interfaces without an IPv4 address: not listening there",
                   {"interfaces", join(without_ipv4, ",")});
    }
    if (hosts.empty()) {
        PEERMQ_LOG(log, LogLevel::info, "node",
                   discovery != nullptr
                       ? "listening on every interface: the discovery backend does not say "
                         "where it runs (set NodeOptions::interface to choose)"
                       : "listening on every interface: no mDNS discovery to follow (set "
                         "NodeOptions::interface to choose)");
        return std::vector<std::string>{"*"};
    }
    return hosts;
}

NodeCore::NodeCore(NodeOptions opts, NodeId node_id)
    : options(std::move(opts)),
      id(node_id),
      clock(options.clock ? options.clock : system_clock()),
      log(options.name, options.log_level, options.log_format, options.log_sink, clock) {}

NodeCore::~NodeCore() { close(); }

Status NodeCore::start() {
    // Before anything else: a second node on this directory must touch nothing of the first's.
    if (!options.data_dir.empty()) {
        auto locked = DataDirLock::acquire(options.data_dir);
        if (!locked) return locked.status();
        data_dir_lock_ = std::make_unique<DataDirLock>(std::move(locked).value());
    }
    // The key, under the data directory's lock: two starts never make two keys.
    auto resolved = resolve_identity(options.secret_key, options.data_dir, clock->unix_ms());
    if (!resolved) return resolved.status();
    identity = std::move(resolved).value();
    id = identity.id;
    {
        namespace fs = std::filesystem;
        TrustPolicy::Settings trust_settings;
        trust_settings.mode = options.trust;
        trust_settings.authorized_keys = options.authorized_keys;
        if (trust_settings.authorized_keys.empty() && !options.data_dir.empty()) {
            trust_settings.authorized_keys = fs::path(options.data_dir) / kAuthorizedKeysFileName;
        }
        if (!options.data_dir.empty()) {
            trust_settings.known_keys = fs::path(options.data_dir) / kKnownKeysFileName;
        }
        auto loaded = TrustPolicy::load(std::move(trust_settings));
        if (!loaded) return loaded.status();
        trust = std::make_unique<TrustPolicy>(std::move(loaded).value());
        if (options.trust == TrustMode::authorized) {
            PEERMQ_LOG(log, LogLevel::info, "node", "trust mode authorized",
                       {"authorized_keys", trust->settings().authorized_keys},
                       {"keys", trust->authorized().keys.size()});
            for (const auto& problem : trust->authorized().problems) {
                PEERMQ_LOG(log, LogLevel::warn, "node", "authorized_keys: a line is skipped",
                           {"file", trust->settings().authorized_keys}, {"line", problem.line},
                           {"reason", problem.reason});
            }
        }
        if (options.trust == TrustMode::tofu && options.data_dir.empty()) {
            PEERMQ_LOG(log, LogLevel::warn, "node",
                       "trust mode tofu without a data directory: keys are pinned for this run "
                       "only");
        }
    }
    if (!secure()) {
        PEERMQ_LOG(log, LogLevel::warn, "node",
                   "trust mode plain: links are not encrypted and any host that reaches this "
                   "node can speak as any node",
                   {"id", id});
    }
    // Discovery is made before the sockets (started after them): by default the node listens
    // where its discovery runs.
    std::unique_ptr<Discovery> discovery;
    if (options.discovery) {
        auto created = options.discovery();
        if (!created) return created.status();
        discovery = std::move(created).value();
    }
    auto hosts = listen_hosts(discovery.get());
    if (!hosts) return hosts.status();
    if (hosts->size() == 1 && hosts->front() != "*") advertised_host = hosts->front();
    const std::string listening =
        hosts->front() == "*" ? std::string("every interface") : join(hosts.value(), ",");
    // Every peer costs sockets and file descriptors: bound both before any socket exists, so
    // that a flood of peers is refused by the peer table, never by a failing socket call.
    peer_limit = options.max_peers;
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
        const std::size_t soft = files.rlim_cur;
        const std::size_t per_peer = secure() ? kFdsPerSecurePeer : kFdsPerPeer;
        const std::size_t allowed = soft > kReservedFds ? (soft - kReservedFds) / per_peer : 1;
        if (allowed < peer_limit) {
            peer_limit = std::max<std::size_t>(allowed, 1);
            PEERMQ_LOG(log, LogLevel::warn, "node",
                       "the open-file limit lowers the peer limit; raise it (ulimit -n) for more",
                       {"max_peers", options.max_peers}, {"peers", peer_limit},
                       {"open_files", soft});
        }
    }
    // A peer costs one PUSH socket; in the secure modes, once this node subscribes to a topic,
    // an own SUB socket too (its topics are read there, so that their sender is known).
    connection_limit = peer_limit + kSpareConnections;
    const std::size_t sockets_per_peer = secure() ? 2 : 1;
    context.set(zmq::ctxopt::max_sockets,
                static_cast<int>(std::min<std::size_t>(
                    peer_limit * sockets_per_peer + kReservedSockets, INT32_MAX)));

    const auto max_frame = static_cast<std::int64_t>(std::min<std::size_t>(
        options.max_payload_bytes + kMaxHeaderBytes, static_cast<std::size_t>(INT32_MAX)));

    // Bound before the sockets it guards: no handshake may find it missing (libzmq would
    // then let the client in unauthenticated, and the frame check would drop all it sends).
    std::unique_ptr<ZapHandler> zap;
    if (secure()) zap = std::make_unique<ZapHandler>(context);
    // The node's own sockets are CurveZMQ servers; its SUB a client (server keys per peer).
    auto serve_curve = [this](zmq::socket_t& socket) {
        if (!secure()) return;
        socket.set(zmq::sockopt::curve_server, true);
        socket.set(zmq::sockopt::curve_secretkey, identity.secret_key);
        socket.set(zmq::sockopt::zap_domain, "peermq");
    };

    zmq::socket_t inbox(context, zmq::socket_type::pull);
    serve_curve(inbox);
    inbox.set(zmq::sockopt::rcvhwm, 100'000);
    inbox.set(zmq::sockopt::maxmsgsize, max_frame);
    inbox.set(zmq::sockopt::linger, 0);
    auto inbox_bound = bind_socket(inbox, hosts.value(), options.inbox_port, "inbox");
    if (!inbox_bound) return inbox_bound.status();
    inbox_endpoint = inbox_bound.value();
    inbox_port = port_of(inbox_endpoint);

    // authorized: an XPUB whose subscriptions the actor admits one by one (each checked against
    // its connection's key's permissions) instead of a PUB that takes them all.
    const bool manual_pub = options.trust == TrustMode::authorized;
    zmq::socket_t pub(context, manual_pub ? zmq::socket_type::xpub : zmq::socket_type::pub);
    if (manual_pub) pub.set(zmq::sockopt::xpub_manual, true);
    serve_curve(pub);
    pub.set(zmq::sockopt::sndhwm, 100'000);
    pub.set(zmq::sockopt::linger, 0);
    auto pub_bound = bind_socket(pub, hosts.value(), options.pub_port, "pub");
    if (!pub_bound) return pub_bound.status();
    pub_endpoint = pub_bound.value();
    pub_port = port_of(pub_endpoint);

    zmq::socket_t sub(context, zmq::socket_type::sub);
    if (secure()) {
        sub.set(zmq::sockopt::curve_publickey, identity.public_key);
        sub.set(zmq::sockopt::curve_secretkey, identity.secret_key);
    }
    sub.set(zmq::sockopt::rcvhwm, 100'000);
    sub.set(zmq::sockopt::maxmsgsize, max_frame);
    sub.set(zmq::sockopt::linger, 0);

    std::unique_ptr<Journal> journal;
    if (!options.data_dir.empty()) {
        auto opened = Journal::open(options.data_dir, options.durability);
        if (!opened) return opened.status();
        journal = std::move(opened).value();
    }

    dispatcher = std::make_unique<Dispatcher>(
        options.dispatcher_threads, [this] { post(OutcomesCmd{}); }, &log);
    actor_ = std::make_unique<Actor>(*this, std::move(inbox), std::move(pub), std::move(sub),
                                     std::move(zap), std::move(journal));
    if (Status loaded = actor_->load_outbox(); !loaded.ok()) {
        dispatcher->stop();
        actor_.reset();
        return loaded;
    }
    actor_thread_ = std::thread([this] {
        block_async_signals();
        actor_->run();
    });

    // Static peers from the options and PEERMQ_PEERS, then the configured discovery.
    std::vector<std::string> endpoints = options.peers;
    if (const char* env = std::getenv("PEERMQ_PEERS"); env != nullptr && *env != '\0') {
        std::string_view list(env);
        while (!list.empty()) {
            const auto comma = list.find(',');
            std::string_view item = list.substr(0, comma);
            while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
            while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
            if (!item.empty()) endpoints.emplace_back(item);
            list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        }
    }
    std::vector<ServiceRecord> records;
    for (const auto& endpoint : endpoints) {
        auto record = parse_endpoint(endpoint);
        if (!record) {
            close();
            return record.status();
        }
        if (secure() && record->public_key.empty()) {
            close();
            return make_error(ErrorCode::invalid_argument,
                              "static peer '" + endpoint +
                                  "' has no key: give it as host:port#KEY (the peer's "
                                  "Node::address(), or `peermq keys show` in its data "
                                  "directory), or use trust mode plain");
        }
        auto resolved = resolve_ipv4(record->host);
        if (!resolved) {
            close();
            return resolved.status();
        }
        record->host = resolved.value();
        records.push_back(std::move(record).value());
    }
    for (auto& record : records)
        post(DiscoveryCmd{DiscoveryEvent{DiscoveryEvent::Kind::found, record}, true});

    if (discovery) {
        ServiceRecord self;
        self.id = id;
        self.name = options.name;
        self.cluster = options.cluster;
        self.host = advertised_host;
        self.inbox_port = port_of(inbox_endpoint);
        self.pub_port = port_of(pub_endpoint);
        self.interface = options.interface == "*" ? std::string() : options.interface;
        if (secure()) self.public_key = identity.public_key;
        const bool configured = discovery->backend() == "static";
        discovery->set_heard_from(
            [this](std::string_view short_id) { return heard_peers.heard(short_id); });
        Status started = discovery->start(self, [this, configured](DiscoveryEvent event) {
            post(DiscoveryCmd{std::move(event), configured});
        });
        if (!started.ok()) {
            close();
            return started;
        }
        MutexLock lock(discovery_mutex_);
        discoveries_.push_back(std::move(discovery));
    }
    if (const std::string endpoint = control_endpoint_of(options); !endpoint.empty()) {
        auto server = ControlServer::start(*this, endpoint);
        if (!server) return server.status();
        control = std::move(server).value();
    }
    if (log.enabled(LogLevel::info)) {
        std::string backends = records.empty() ? "" : "static";
        {
            MutexLock lock(discovery_mutex_);
            for (const auto& discovery : discoveries_) {
                if (!backends.empty()) backends += ',';
                backends += discovery->backend();
            }
        }
        log.write(LogLevel::info, "node", "node started",
                  {{"id", id},
                   {"cluster", options.cluster},
                   {"inbox", inbox_endpoint},
                   {"pub", pub_endpoint},
                   {"listens", listening},
                   {"discovery", backends.empty() ? std::string("none") : backends},
                   {"data_dir", options.data_dir},
                   {"control", control_address()},
                   {"max_peers", peer_limit},
                   {"max_connections", connection_limit}});
    }
    return {};
}

std::string NodeCore::control_address() const {
    if (!control) return {};
    const std::string& endpoint = control->endpoint();
    if (!endpoint.starts_with("tcp://")) return endpoint;
    return peer_address(endpoint, identity.public_key);  // a tcp client needs the server's key
}

Status NodeCore::close_flushing(std::chrono::milliseconds flush_timeout) {
    MutexLock lock(close_mutex_);
    if (closed_.exchange(true)) return close_status_;
    if (control) control->stop();
    {
        MutexLock discovery_lock(discovery_mutex_);
        for (auto& discovery : discoveries_) discovery->stop();
    }
    // The actor carries out what is still in its mailbox and waits for the handler calls already
    // queued (Actor::drain_handlers); the dispatcher stops after it.
    const bool ran = actor_thread_.joinable();
    if (ran) {
        post(StopCmd{flush_timeout});
        actor_thread_.join();
    }
    if (dispatcher) dispatcher->stop();
    actor_.reset();
    if (ran) PEERMQ_LOG(log, LogLevel::info, "node", "node stopped", {"id", id});
    data_dir_lock_.reset();  // the journal is closed
    wake_senders();
    {
        MutexLock discovery_lock(discovery_mutex_);
        discoveries_.clear();
    }
    return close_status_;
}

QueueShared* NodeCore::queue_shared(std::uint32_t index) {
    if (index >= kQueueChunks * kQueueChunkSize) return nullptr;
    std::atomic<QueueShared*>* chunk =
        queue_chunks_[index / kQueueChunkSize].load(std::memory_order_acquire);
    return chunk ? chunk[index % kQueueChunkSize].load(std::memory_order_acquire) : nullptr;
}

Result<std::uint32_t> NodeCore::declare_queue(const std::string& name, const QueueOptions& opts) {
    if (Status valid = validate(opts, name); !valid.ok()) return valid;
    std::uint32_t index;
    {
        MutexLock lock(queues_mutex_);
        auto it = queue_index_.find(name);
        if (it == queue_index_.end()) {
            if (queues_.size() >= kQueueChunks * kQueueChunkSize) {
                return make_error(ErrorCode::invalid_argument, "too many queues on this node");
            }
            index = static_cast<std::uint32_t>(queues_.size());
            auto shared = std::make_unique<QueueShared>();
            shared->name = name;
            auto& chunk = queue_chunks_[index / kQueueChunkSize];
            if (!chunk.load(std::memory_order_relaxed)) {
                owned_chunks_.push_back(
                    std::make_unique<std::atomic<QueueShared*>[]>(kQueueChunkSize));
                chunk.store(owned_chunks_.back().get(), std::memory_order_release);
            }
            chunk.load(std::memory_order_relaxed)[index % kQueueChunkSize].store(
                shared.get(), std::memory_order_release);
            queues_.push_back(std::move(shared));
            queue_index_.emplace(name, index);
        } else {
            index = it->second;
        }
        QueueShared& q = *queues_[index];
        q.max_length.store(opts.max_length);
        q.overflow.store(opts.overflow);
        q.block_timeout_ms.store(opts.block_timeout.count());
        q.reliable.store(opts.guarantee != Guarantee::best_effort);
        q.journaled_each.store(opts.guarantee != Guarantee::best_effort &&
                               options.durability == Durability::fsync_each &&
                               !options.data_dir.empty());
        q.journaled.store(opts.guarantee != Guarantee::best_effort &&
                          options.durability != Durability::memory && !options.data_dir.empty());
    }
    post(DeclareQueueCmd{index, opts});
    return index;
}

Result<std::uint32_t> NodeCore::find_or_declare_queue(const std::string& name,
                                                      const QueueOptions& defaults) {
    {
        MutexLock lock(queues_mutex_);
        if (auto it = queue_index_.find(name); it != queue_index_.end()) return it->second;
    }
    return declare_queue(name, defaults);
}

std::map<std::string, std::uint64_t> NodeCore::discovery_ignored() const {
    MutexLock lock(discovery_mutex_);
    std::map<std::string, std::uint64_t> out;
    for (const auto& discovery : discoveries_) {
        for (const auto& [reason, count] : discovery->ignored()) out[reason] += count;
    }
    return out;
}

void NodeCore::fail(Status failure) {
    {
        MutexLock lock(failure_mutex_);
        if (failed_.load(std::memory_order_relaxed)) return;
        failure_ = std::move(failure);
        failed_.store(true, std::memory_order_release);
    }
    // A send() blocked on a full queue would wait for room the actor no longer makes. After the
    // lock: that send() reads the failure under its queue's mutex, which wake_senders() takes.
    wake_senders();
}

void NodeCore::wake_senders() {
    {
        MutexLock queues_lock(queues_mutex_);
        for (auto& q : queues_) {
            MutexLock q_lock(q->mutex);
            q->room.notify_all();
        }
    }
    MutexLock backlog_lock(backlog.mutex);
    backlog.room.notify_all();
}

Status NodeCore::failure() const {
    MutexLock lock(failure_mutex_);
    return failure_;
}

Status NodeCore::serving() const {
    if (failed()) return failure();
    if (closed()) return make_error(ErrorCode::closed, "the node is closed");
    return {};
}

void NodeCore::set_storage_error(Status status) {
    if (status.ok() && !storage_failed_.load(std::memory_order_relaxed)) return;
    MutexLock lock(storage_mutex_);
    storage_failed_.store(!status.ok(), std::memory_order_relaxed);
    storage_error_ = std::move(status);
}

Status NodeCore::storage_error() const {
    if (!storage_failed_.load(std::memory_order_relaxed)) return {};
    MutexLock lock(storage_mutex_);
    return storage_error_;
}

Status serving(const std::shared_ptr<NodeCore>& core) {
    if (!core) return make_error(ErrorCode::closed, "the node is closed");
    return core->serving();
}

}  // namespace detail

// -------------------------------------------------------------------------------------------------
// Node

Result<Node> Node::create(NodeOptions options) {
    if (Status valid = detail::validate(options); !valid.ok()) return valid;
    auto core = std::make_shared<detail::NodeCore>(std::move(options), NodeId{});
    if (Status started = core->start(); !started.ok()) {
        core->close();
        return started;
    }
    return Node(std::move(core));
}

Node::Node(std::shared_ptr<detail::NodeCore> core) : core_(std::move(core)) {}
Node::Node(Node&&) noexcept = default;
Node& Node::operator=(Node&& other) noexcept {
    if (this != &other) {
        close();
        core_ = std::move(other.core_);
    }
    return *this;
}
Node::~Node() { close(); }

void Node::close() {
    if (core_) core_->close();
}

Status Node::flush_and_close(std::chrono::milliseconds timeout) {
    if (!core_) return {};
    if (timeout.count() < 0)
        return make_error(ErrorCode::invalid_argument, "timeout must not be negative");
    return core_->close_flushing(timeout);
}

const NodeId& Node::id() const noexcept { return core_->id; }
const std::string& Node::name() const noexcept { return core_->options.name; }
const std::string& Node::inbox_endpoint() const noexcept { return core_->inbox_endpoint; }
const std::string& Node::pub_endpoint() const noexcept { return core_->pub_endpoint; }
const std::string& Node::public_key() const noexcept { return core_->identity.public_key; }
std::string Node::address() const {
    return peer_address(core_->inbox_endpoint, core_->identity.public_key);
}

std::string Node::control_endpoint() const { return core_->control_address(); }

Status Node::consume(std::string queue, ConsumeHandler handler, ConsumeOptions options) {
    if (Status status = detail::serving(core_); !status.ok()) return status;
    if (queue.empty() || queue.size() > detail::kMaxChannelBytes) {
        return make_error(ErrorCode::invalid_argument, "queue name must be 1-255 bytes");
    }
    if (!handler) return make_error(ErrorCode::invalid_argument, "consume needs a handler");
    if (options.prefetch == 0 || options.concurrency == 0) {
        return make_error(ErrorCode::invalid_argument,
                          "prefetch and concurrency must be at least 1");
    }
    auto consuming = core_->call<bool>(
        [queue](detail::Actor& actor) -> Result<bool> { return actor.consumes(queue); });
    if (!consuming) return consuming.status();
    if (consuming.value()) {
        return make_error(ErrorCode::invalid_argument,
                          "this node already consumes '" + queue + "'");
    }
    const std::uint32_t slot =
        core_->dispatcher->add_consumer(std::move(handler), options.concurrency);
    core_->post(detail::ConsumeCmd{std::move(queue), slot, options});
    return {};
}

Result<Queue> Node::queue(std::string name, QueueOptions options) {
    if (Status status = detail::serving(core_); !status.ok()) return status;
    auto index = core_->declare_queue(name, options);
    if (!index) return index.status();
    return Queue(core_, std::move(name), index.value());
}

Status Node::publish_payload(std::string_view topic, Payload payload, Headers headers) {
    if (Status status = detail::serving(core_); !status.ok()) return status;
    if (topic.empty() || topic.size() > detail::kMaxChannelBytes) {
        return make_error(ErrorCode::invalid_argument, "topic must be 1-255 bytes");
    }
    if (Status fits = detail::payload_fits(*core_, payload); !fits.ok()) return fits;
    core_->post(detail::PublishCmd{std::string(topic), std::move(payload), std::move(headers),
                                   MessageId::generate(), core_->clock->unix_ms()});
    return {};
}

Status Node::subscribe(std::string prefix, SubscribeHandler handler, SubscribeOptions options) {
    if (Status status = detail::serving(core_); !status.ok()) return status;
    if (prefix.size() > detail::kMaxChannelBytes) {
        return make_error(ErrorCode::invalid_argument, "topic prefix must be at most 255 bytes");
    }
    if (!handler) return make_error(ErrorCode::invalid_argument, "subscribe needs a handler");
    const bool reliable = options.reliability == TopicReliability::reliable;
    if (!reliable &&
        (options.history != 0 || options.history_age.count() != 0 || options.on_lost)) {
        return make_error(ErrorCode::invalid_argument,
                          "history, history_age and on_lost need reliability reliable");
    }
    if (options.history_age.count() < 0) {
        return make_error(ErrorCode::invalid_argument, "history_age must not be negative");
    }
    if (reliable && core_->reliable_subscriptions.fetch_add(1) >= detail::kMaxReliablePrefixes) {
        core_->reliable_subscriptions.fetch_sub(1);
        return make_error(ErrorCode::invalid_argument,
                          "at most " + std::to_string(detail::kMaxReliablePrefixes) +
                              " reliable subscriptions per node");
    }
    const std::uint32_t slot = core_->dispatcher->add_subscriber(std::move(handler));
    core_->post(detail::SubscribeCmd{std::move(prefix), slot, reliable, options.history,
                                     options.history_age, std::move(options.on_lost)});
    return {};
}

Status Node::add_peer(std::string endpoint) {
    if (Status status = detail::serving(core_); !status.ok()) return status;
    auto record = parse_endpoint(endpoint);
    if (!record) return record.status();
    if (core_->secure() && record->public_key.empty()) {
        return make_error(ErrorCode::invalid_argument,
                          "peer '" + endpoint + "' has no key: give it as host:port#KEY");
    }
    auto resolved = detail::resolve_ipv4(record->host);
    if (!resolved) return resolved.status();
    record->host = resolved.value();
    core_->post(
        detail::DiscoveryCmd{DiscoveryEvent{DiscoveryEvent::Kind::found, record.value()}, true});
    return {};
}

std::vector<PeerInfo> Node::peers() const {
    if (!core_) return {};
    auto result = core_->call<std::vector<PeerInfo>>(
        [](detail::Actor& actor) -> Result<std::vector<PeerInfo>> { return actor.peers(); });
    return result ? std::move(result).value() : std::vector<PeerInfo>{};
}

void Node::on_peer_event(std::function<void(const PeerEvent&)> handler) {
    if (!detail::serving(core_).ok()) return;
    core_->post(detail::CallCmd{[handler = std::move(handler)](detail::Actor& actor) mutable {
        actor.set_peer_handler(std::move(handler));
    }});
}

NodeStats Node::stats() const {
    if (!core_) return {};
    auto result = core_->call<NodeStats>(
        [](detail::Actor& actor) -> Result<NodeStats> { return actor.stats(); });
    NodeStats stats = result ? std::move(result).value() : NodeStats{};
    detail::add_outside_counts(*core_, stats);
    return stats;
}

Result<std::vector<NodeQueues>> Node::cluster_queues(std::chrono::milliseconds timeout) const {
    if (Status serving = detail::serving(core_); !serving.ok()) return serving;
    if (timeout < std::chrono::milliseconds::zero()) {
        return Status(ErrorCode::invalid_argument, "cluster_queues: the timeout is negative");
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto query = std::make_shared<detail::QueueQuery>();
    auto started =
        core_->call<std::uint64_t>([query](detail::Actor& actor) -> Result<std::uint64_t> {
            actor.start_queue_query(query);
            return query->seq();
        });
    if (!started.ok()) return started.status();
    std::vector<NodeQueues> nodes = query->wait(deadline);
    // Answers that come later are counted as unexpected, not kept.
    core_->post(
        detail::CallCmd{[seq = *started](detail::Actor& actor) { actor.end_queue_query(seq); }});
    return nodes;
}

DeadLetters Node::dead_letters() { return DeadLetters(core_); }

}  // namespace peermq
