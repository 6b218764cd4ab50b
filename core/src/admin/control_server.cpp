#include "admin/control_server.hpp"

#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <type_traits>
#include <utility>

#include <zmq_addon.hpp>

#include "actor/actor.hpp"
#include "node/node_core.hpp"
#include "peermq/control.hpp"
#include "platform/signals.hpp"
#include "security/authorized_keys.hpp"

namespace peermq {
namespace detail {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kIpc = "ipc://";
constexpr std::string_view kTcp = "tcp://";

// The file of an ipc endpoint; empty for the abstract namespace ("ipc://@name").
std::string ipc_path(std::string_view endpoint) {
    if (!endpoint.starts_with(kIpc)) return {};
    std::string_view path = endpoint.substr(kIpc.size());
    if (path.starts_with('@')) return {};
    return std::string(path);
}

// Whether a process accepts connections on the unix socket at `path` (a live node's control
// socket, which binding would silently steal: libzmq unlinks the path before it binds).
bool unix_socket_answers(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) return false;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const bool answers =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return answers;
}

// Checks what lies at an ipc path before binding: nothing, or a socket nobody serves.
Status check_ipc_path(const std::string& endpoint, const std::string& path) {
    constexpr std::size_t kMaxPath = sizeof(sockaddr_un{}.sun_path) - 1;
    if (path.size() > kMaxPath) {
        return make_error(ErrorCode::invalid_argument,
                          "control endpoint " + endpoint + ": the socket path is " +
                              std::to_string(path.size()) + " bytes, over the " +
                              std::to_string(kMaxPath) +
                              " of a unix socket; use a shorter data_dir or set "
                              "NodeOptions::control_endpoint (\"off\" for none)");
    }
    std::error_code ec;
    const auto status = fs::symlink_status(path, ec);
    if (!fs::exists(status)) return {};
    if (!fs::is_socket(status)) {
        return make_error(ErrorCode::invalid_argument, "control endpoint " + endpoint + ": " +
                                                           path + " exists and is not a socket");
    }
    if (unix_socket_answers(path)) {
        return make_error(ErrorCode::address_in_use,
                          "control endpoint " + endpoint + " is served by another process");
    }
    return {};
}

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

Status validate_control_endpoint(const std::string& endpoint, bool allow_none) {
    if (allow_none && (endpoint.empty() || endpoint == "off")) return {};
    const std::string usage = "control endpoint '" + endpoint + "' must be " +
                              (allow_none ? std::string("\"\", \"off\", ") : std::string()) +
                              "\"ipc://PATH\" or \"tcp://127.0.0.1:PORT\"";
    auto bad = [](std::string text) {
        return make_error(ErrorCode::invalid_argument, std::move(text));
    };
    const std::string_view view(endpoint);
    if (view.starts_with(kIpc)) {
        if (view.size() == kIpc.size()) return bad(usage + ": the ipc path is empty");
        if (view.substr(kIpc.size()) == "*")
            return bad(usage + ": a wildcard ipc path is not found by clients");
        return {};
    }
    if (!view.starts_with(kTcp)) return bad(usage);
    const std::string_view rest = view.substr(kTcp.size());
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad(usage + ": no port");
    const std::string host(rest.substr(0, colon));
    const std::string_view port = rest.substr(colon + 1);
    in_addr address{};
    if (::inet_pton(AF_INET, host.c_str(), &address) != 1) {
        return bad("control endpoint '" + endpoint +
                   "' must be on an IPv4 loopback address (127.0.0.1): it is for this host only");
    }
    if ((ntohl(address.s_addr) >> 24) != 127) {
        return bad("control endpoint '" + endpoint +
                   "' is not on a loopback address (127.0.0.0/8)"
                   ": the control endpoint is for this host only");
    }
    unsigned long number = 0;
    bool digits = !port.empty() && port.size() <= 5;
    for (char c : port) {
        digits = digits && c >= '0' && c <= '9';
        if (digits) number = number * 10 + static_cast<unsigned long>(c - '0');
    }
    if (!digits || number == 0 || number > 65535) {
        return bad("control endpoint '" + endpoint + "' needs a port between 1 and 65535");
    }
    return {};
}

std::string control_keys_of(const NodeOptions& options) {
    if (!options.control_keys.empty()) return options.control_keys;
    if (options.data_dir.empty()) return {};
    return (fs::path(options.data_dir) / kControlKeysFileName).string();
}

std::string control_endpoint_of(const NodeOptions& options) {
    if (options.control_endpoint == "off") return {};
    if (!options.control_endpoint.empty()) return options.control_endpoint;
    if (options.data_dir.empty()) return {};
    return control_endpoint_for_data_dir(options.data_dir);
}

Result<std::unique_ptr<ControlServer>> ControlServer::start(NodeCore& core, std::string endpoint) {
    if (Status valid = validate_control_endpoint(endpoint, false); !valid.ok()) return valid;
    const std::string path = ipc_path(endpoint);
    if (!path.empty()) {
        if (Status free = check_ipc_path(endpoint, path); !free.ok()) return free;
    }
    std::unique_ptr<ControlServer> server(new ControlServer(core, std::move(endpoint)));
    server->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (server->wake_fd_ < 0) {
        return make_error(ErrorCode::io_error,
                          std::string("control endpoint: eventfd: ") + std::strerror(errno));
    }
    const bool tcp = path.empty() && std::string_view(server->endpoint_).starts_with(kTcp);
    try {
        if (tcp) {
            // Bound before the ROUTER: a handshake that finds no handler is let through.
            server->control_keys_ = control_keys_of(core.options);
            server->zap_ = std::make_unique<ZapHandler>(server->context_);
            server->zap_->set_policy(
                [s = server.get()](const CurveKey& key) { return s->admits(key); });
        }
        server->socket_ = zmq::socket_t(server->context_, zmq::socket_type::router);
        server->socket_.set(zmq::sockopt::linger, 0);
        server->socket_.set(zmq::sockopt::maxmsgsize,
                            static_cast<std::int64_t>(kMaxControlRequestBytes));
        if (tcp) {
            server->socket_.set(zmq::sockopt::curve_server, true);
            server->socket_.set(zmq::sockopt::curve_secretkey, core.identity.secret_key);
        }
        server->socket_.bind(server->endpoint_);
        // Whoever can connect can purge and replay dead letters: the node's user only, whatever
        // the umask (libzmq creates the socket file with the process's).
        if (!path.empty() && ::chmod(path.c_str(), 0600) != 0) {
            return make_error(ErrorCode::io_error, "cannot restrict the control socket " + path +
                                                       " to its owner: " + std::strerror(errno));
        }
    } catch (const zmq::error_t& e) {
        const ErrorCode code =
            e.num() == EADDRINUSE ? ErrorCode::address_in_use : ErrorCode::io_error;
        return make_error(code,
                          "cannot bind control endpoint " + server->endpoint_ + ": " + e.what());
    }
    server->thread_ = std::thread([s = server.get()] {
        block_async_signals();
        s->run();
    });
    return server;
}

ControlServer::ControlServer(NodeCore& core, std::string endpoint)
    : core_(core), endpoint_(std::move(endpoint)), context_(1) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::stop() {
    if (stopped_.exchange(true)) return;
    if (thread_.joinable()) {
        const std::uint64_t one = 1;
        (void)!::write(wake_fd_, &one, sizeof one);
        thread_.join();
    }
    socket_.close();
    zap_.reset();
    // Waits for libzmq's I/O thread to finish with the listener, which unlinks the ipc file:
    // after this, nothing of ours touches the path again.
    context_.close();
    if (wake_fd_ >= 0) ::close(std::exchange(wake_fd_, -1));
    if (const std::string path = ipc_path(endpoint_); !path.empty()) {
        std::error_code ec;
        if (fs::is_socket(fs::symlink_status(path, ec))) fs::remove(path, ec);
    }
}

void ControlServer::add_dropped(std::map<std::string, std::uint64_t>& dropped) const {
    for (std::size_t i = 0; i < kDropCount; ++i) {
        const std::uint64_t n = dropped_[i].load(std::memory_order_relaxed);
        if (n != 0) dropped[std::string(kDropReasons[i].name)] += n;
    }
}

void ControlServer::add_thread_errors(std::map<std::string, std::uint64_t>& out) const {
    if (const std::uint64_t n = thread_errors_.load(std::memory_order_relaxed); n != 0) {
        out["control"] += n;
    }
}

void ControlServer::caught(std::string_view where, std::exception_ptr error) noexcept {
    thread_errors_.fetch_add(1, std::memory_order_relaxed);
    try {
        PEERMQ_LOG(core_.log, LogLevel::error, "control",
                   "exception caught in the control endpoint's thread", {"where", where},
                   {"endpoint", endpoint_}, {"error", exception_text(error)});
    } catch (...) {
        // Nothing left to tell it with; the count stands.
    }
}

void ControlServer::count(Drop reason) {
    dropped_[index(reason)].fetch_add(1, std::memory_order_relaxed);
}

void ControlServer::count(std::string_view reason) {
    if (auto known = drop_named(reason)) count(*known);
}

bool ControlServer::admits(const CurveKey& key) {
    const std::string text = encode_key(key);
    if (text == core_.identity.public_key) return true;
    if (!control_keys_.empty()) {
        auto keys = read_authorized_keys(control_keys_);
        if (keys) {
            if (keys->find(key) != nullptr) return true;
        } else if (keys.status().code() != ErrorCode::not_found) {
            PEERMQ_LOG(core_.log, LogLevel::error, "control",
                       "cannot read the control keys: only the node's own key is admitted",
                       {"file", control_keys_}, {"error", keys.status().message()});
        }
    }
    const std::uint64_t refused =
        dropped_[index(Drop::control_unauthorized)].fetch_add(1, std::memory_order_relaxed) + 1;
    // Told at the first refusal and at every power of ten after it: libzmq retries a refused
    // client's handshake, and a client in a loop must not flood the log.
    std::uint64_t told = 1;
    while (told < refused) told *= 10;
    if (told == refused) {
        PEERMQ_LOG(core_.log, LogLevel::warn, "control",
                   "control client refused: its key is not the node's and not in the control keys",
                   {"key", text}, {"refused", refused},
                   {"control_keys", control_keys_.empty() ? "none" : control_keys_});
    }
    return false;
}

void ControlServer::run() {
    try {
        receive();
    } catch (...) {
        caught("the receive loop; the endpoint serves no more", std::current_exception());
    }
}

void ControlServer::receive() {
    zmq_pollitem_t items[] = {
        {socket_.handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, wake_fd_, ZMQ_POLLIN, 0},
        {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0},
    };
    const int polled = zap_ ? 3 : 2;
    std::vector<zmq::message_t> frames;
    for (;;) {
        if (::zmq_poll(items, polled, -1) < 0) {
            if (zmq_errno() == EINTR) continue;
            return;  // ETERM or EFAULT: nothing more can be served
        }
        if (items[1].revents != 0) return;
        if (zap_ && items[2].revents != 0) zap_->serve();
        // Drain what is readable, then poll again (and see a stop request between requests).
        for (;;) {
            frames.clear();
            try {
                if (!zmq::recv_multipart(socket_, std::back_inserter(frames),
                                         zmq::recv_flags::dontwait)) {
                    break;
                }
            } catch (const zmq::error_t&) {
                break;
            }
            try {
                serve(frames);
            } catch (...) {
                caught("a request", std::current_exception());
            }
        }
    }
}

// frames: [identity, (empty delimiter, as from a REQ socket), request]. The reply goes back
// with the same envelope.
void ControlServer::serve(std::vector<zmq::message_t>& frames) {
    if (frames.size() < 2) {
        count(Drop::control_bad_envelope);
        return;
    }
    const bool delimited = frames[1].size() == 0;
    const std::size_t first = delimited ? 2 : 1;
    if (frames.size() == first) {
        count(Drop::control_bad_envelope);  // not even a frame to answer
        return;
    }
    msgpack::sbuffer reply;
    if (frames.size() > first + 1) {
        count(Drop::control_bad_envelope);
        encode_error_reply(
            Status(ErrorCode::protocol_error,
                   "a control request is one frame, not " + std::to_string(frames.size() - first)),
            reply);
    } else {
        ControlRequest request;
        if (auto error = decode_request(frames[first].data(), frames[first].size(), request)) {
            count(error->reason);
            encode_error_reply(Status(ErrorCode::protocol_error, std::move(error->message)), reply);
        } else {
            Result<ControlReplyBody> answered =
                make_error(ErrorCode::internal, "the request was not answered");
            try {
                answered = answer(request);
            } catch (...) {
                caught("answering a request", std::current_exception());
                answered =
                    make_error(ErrorCode::internal, "answering the request failed: " +
                                                        exception_text(std::current_exception()));
            }
            if (answered) {
                encode_ok_reply(answered.value(), reply);
            } else {
                encode_error_reply(answered.status(), reply);
            }
        }
    }
    try {
        (void)socket_.send(frames[0], zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        if (delimited) {
            (void)socket_.send(zmq::message_t(),
                               zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        }
        (void)socket_.send(zmq::message_t(reply.data(), reply.size()), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
        // The client is gone: nobody to answer.
    }
}

Result<ControlReplyBody> ControlServer::answer(const ControlRequest& request) {
    auto wrap = []<typename T>(Result<T> result) -> Result<ControlReplyBody> {
        if (!result) return result.status();
        return ControlReplyBody(std::move(result).value());
    };
    return std::visit(
        Overloaded{
            [&](const StatsRequest&) -> Result<ControlReplyBody> {
                auto stats = core_.call<NodeStats>(
                    [](Actor& actor) -> Result<NodeStats> { return actor.stats(); });
                if (!stats) return stats.status();
                NodeStats out = std::move(stats).value();
                add_outside_counts(core_, out);
                return ControlReplyBody(std::move(out));
            },
            [&](const PeersRequest&) {
                return wrap(core_.call<std::vector<PeerInfo>>(
                    [](Actor& actor) -> Result<std::vector<PeerInfo>> { return actor.peers(); }));
            },
            [&](const DeadLetterListRequest& r) {
                return wrap(core_.call<std::vector<DeadLetter>>(
                    [filter = r.filter](Actor& actor) { return actor.dead_letter_list(filter); }));
            },
            [&](const DeadLetterGetRequest& r) {
                return wrap(core_.call<DeadLetter>(
                    [id = r.id](Actor& actor) { return actor.dead_letter_get(id); }));
            },
            [&](const DeadLetterPurgeRequest& r) -> Result<ControlReplyBody> {
                auto purged = core_.call<std::size_t>(
                    [filter = r.filter](Actor& actor) { return actor.dead_letter_purge(filter); });
                if (!purged) return purged.status();
                return ControlReplyBody(static_cast<std::uint64_t>(purged.value()));
            },
            [&](const DeadLetterReplayRequest& r) {
                return wrap(replay_dead_letter(core_, r.id, r.queue));
            },
        },
        request);
}

void add_outside_counts(NodeCore& core, NodeStats& stats) {
    for (const auto& [reason, count] : core.discovery_ignored()) {
        stats.discovery_ignored[reason] += count;
    }
    if (core.dispatcher) core.dispatcher->add_thread_errors(stats.thread_errors);
    // The actor's loop ended on an exception: the node failed (NodeCore::failure names it).
    if (core.failed()) stats.thread_errors["actor"] += 1;
    if (core.control) {
        core.control->add_dropped(stats.dropped);
        core.control->add_thread_errors(stats.thread_errors);
    }
}

}  // namespace detail

std::string control_endpoint_for_data_dir(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::absolute(data_dir, ec);
    if (ec) dir = data_dir;
    dir = dir.lexically_normal();
    return "ipc://" + (dir / "control.sock").string();
}

}  // namespace peermq
