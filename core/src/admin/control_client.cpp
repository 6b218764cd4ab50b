// ControlClient (peermq/control.hpp): one fresh DEALER socket per request, so that a reply that
// comes after its timeout can never be taken for the answer to a later request, and a node
// that never answers can never wedge the client (ZMQ_LINGER 0 drops what is unsent at close).
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "admin/control_codec.hpp"
#include "admin/control_server.hpp"
#include "peermq/control.hpp"
#include "peermq/keys.hpp"
#include "security/node_key.hpp"

namespace peermq {

namespace {

// The handshake events a tcp client watches: a refusal says so at once instead of timing out.
constexpr int kHandshakeEvents = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

// The event number of a monitor message (its first frame: u16 event, u32 value).
int monitor_event(const zmq::message_t& frame) {
    std::uint16_t event = 0;
    if (frame.size() >= sizeof event) std::memcpy(&event, frame.data(), sizeof event);
    return event;
}

}  // namespace

struct ControlClient::Impl {
    std::string endpoint;    // as given, with its key
    std::string address;     // what the socket connects to: the endpoint without "#KEY"
    std::string server_key;  // tcp: the node's public key (Z85); empty for ipc
    std::string public_key;
    std::string secret_key;
    std::chrono::milliseconds timeout;
    zmq::context_t context{1};

    Status no_answer(const std::string& why) const {
        return make_error(ErrorCode::unavailable,
                          "no node answers on " + endpoint + " (" + why + ")");
    }

    // Sends one request and returns the reply frame.
    Result<zmq::message_t> exchange(const detail::ControlRequest& request) {
        // An ipc endpoint without its socket file has no node behind it: say so at once.
        if (address.starts_with("ipc://") && address.size() > 6 && address[6] != '@') {
            std::error_code ec;
            const auto status = std::filesystem::symlink_status(address.substr(6), ec);
            if (!std::filesystem::is_socket(status)) return no_answer("no socket file");
        }
        msgpack::sbuffer buffer;
        detail::encode_request(request, buffer);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        try {
            zmq::socket_t socket(context, zmq::socket_type::dealer);
            socket.set(zmq::sockopt::linger, 0);
            zmq::socket_t monitor;
            if (!server_key.empty()) {
                socket.set(zmq::sockopt::curve_serverkey, server_key);
                socket.set(zmq::sockopt::curve_publickey, public_key);
                socket.set(zmq::sockopt::curve_secretkey, secret_key);
                static std::atomic<std::uint64_t> monitors{0};
                const std::string watch =
                    "inproc://peermq.control-client." + std::to_string(++monitors);
                if (zmq_socket_monitor(socket.handle(), watch.c_str(), kHandshakeEvents) == 0) {
                    monitor = zmq::socket_t(context, zmq::socket_type::pair);
                    monitor.set(zmq::sockopt::linger, 0);
                    monitor.connect(watch);
                }
            }
            socket.connect(address);
            // The empty delimiter makes the envelope a REQ socket's, which the server answers
            // in kind. A DEALER with a pipe queues the message even before it connects.
            if (!socket.send(zmq::message_t(),
                             zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
                !socket.send(zmq::message_t(buffer.data(), buffer.size()),
                             zmq::send_flags::dontwait)) {
                return no_answer("cannot queue the request");
            }
            std::vector<zmq::message_t> frames;
            bool handshake_failed = false;
            for (;;) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) {
                    return no_answer("no reply within " + std::to_string(timeout.count()) + " ms" +
                                     (handshake_failed ? "; the CurveZMQ handshake failed: is " +
                                                             server_key + " the node's public key?"
                                                       : ""));
                }
                zmq_pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                          {monitor.handle(), 0, ZMQ_POLLIN, 0}};
                const int ready =
                    ::zmq_poll(items, monitor ? 2 : 1, static_cast<long>(left.count()));
                if (ready < 0 && zmq_errno() != EINTR) {
                    return make_error(ErrorCode::io_error,
                                      std::string("control client: ") + zmq_strerror(zmq_errno()));
                }
                if (ready <= 0) continue;
                if (monitor && items[1].revents != 0) {
                    std::vector<zmq::message_t> event;
                    if (zmq::recv_multipart(monitor, std::back_inserter(event),
                                            zmq::recv_flags::dontwait) &&
                        !event.empty()) {
                        if (monitor_event(event[0]) == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                            return make_error(
                                ErrorCode::permission_denied,
                                "the node on " + address + " refused this client's key " +
                                    public_key +
                                    ": it admits its own key and those of its control_keys "
                                    "(peermq trust add --file <data_dir>/control_keys KEY NAME)");
                        }
                        handshake_failed = true;
                    }
                }
                if (items[0].revents == 0) continue;
                frames.clear();
                if (!zmq::recv_multipart(socket, std::back_inserter(frames),
                                         zmq::recv_flags::dontwait)) {
                    continue;
                }
                if (frames.size() == 2 && frames[0].size() == 0) return std::move(frames[1]);
                return make_error(ErrorCode::protocol_error,
                                  "malformed control reply from " + endpoint + ": " +
                                      std::to_string(frames.size()) + " frames");
            }
        } catch (const zmq::error_t& e) {
            return make_error(ErrorCode::io_error,
                              "control client on " + endpoint + ": " + e.what());
        }
    }

    template <typename T, typename Decode>
    Result<T> ask(const detail::ControlRequest& request, Decode decode) {
        auto reply = exchange(request);
        if (!reply) return reply.status();
        return decode(reply.value().data(), reply.value().size());
    }
};

Result<ControlClient> ControlClient::connect(std::string endpoint,
                                             std::chrono::milliseconds timeout,
                                             std::string secret_key) {
    auto impl = std::make_unique<Impl>();
    // Only a tcp endpoint carries a key: '#' may be part of an ipc path.
    const bool tcp = endpoint.starts_with("tcp://");
    const auto [address, key] =
        tcp ? detail::split_key_suffix(endpoint) : detail::KeySuffix{endpoint, {}};
    impl->address = std::string(address);
    if (Status valid = detail::validate_control_endpoint(impl->address, false); !valid.ok()) {
        return valid;
    }
    if (timeout.count() <= 0) {
        return make_error(ErrorCode::invalid_argument, "control client timeout must be positive");
    }
    if (tcp) {
        if (!detail::decode_key(key)) {
            return make_error(ErrorCode::invalid_argument,
                              "control endpoint '" + endpoint +
                                  "': a tcp endpoint needs the node's public key, "
                                  "tcp://127.0.0.1:PORT#KEY (Node::control_endpoint() and the "
                                  "node's `node started` log line give it)");
        }
        impl->server_key = std::string(key);
        if (secret_key.empty()) {
            if (const char* env = std::getenv("PEERMQ_SECRET_KEY"); env != nullptr) {
                secret_key = env;
            }
        }
        if (secret_key.empty()) {
            return make_error(ErrorCode::invalid_argument,
                              "control endpoint " + endpoint +
                                  ": a tcp control endpoint needs a key to prove (the node's own, "
                                  "or one in its control_keys): set PEERMQ_SECRET_KEY");
        }
        auto public_key = public_key_of(secret_key);
        if (!public_key) {
            return make_error(ErrorCode::invalid_argument,
                              "the control client's secret key is not a Z85 secret key");
        }
        impl->public_key = std::move(public_key).value();
        impl->secret_key = std::move(secret_key);
    }
    impl->endpoint = std::move(endpoint);
    impl->timeout = timeout;
    return ControlClient(std::move(impl));
}

ControlClient::ControlClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlClient::ControlClient(ControlClient&&) noexcept = default;
ControlClient& ControlClient::operator=(ControlClient&&) noexcept = default;
ControlClient::~ControlClient() = default;

const std::string& ControlClient::endpoint() const noexcept { return impl_->endpoint; }

Result<NodeStats> ControlClient::stats() {
    return impl_->ask<NodeStats>(detail::StatsRequest{}, detail::decode_stats_reply);
}

Result<std::vector<PeerInfo>> ControlClient::peers() {
    return impl_->ask<std::vector<PeerInfo>>(detail::PeersRequest{}, detail::decode_peers_reply);
}

Result<std::vector<DeadLetter>> ControlClient::dead_letter_list(const DeadLetterFilter& filter) {
    return impl_->ask<std::vector<DeadLetter>>(detail::DeadLetterListRequest{filter},
                                               detail::decode_dead_letters_reply);
}

Result<DeadLetter> ControlClient::dead_letter_get(const MessageId& id) {
    return impl_->ask<DeadLetter>(detail::DeadLetterGetRequest{id},
                                  detail::decode_dead_letter_reply);
}

Result<std::size_t> ControlClient::dead_letter_purge(const DeadLetterFilter& filter) {
    auto purged = impl_->ask<std::uint64_t>(detail::DeadLetterPurgeRequest{filter},
                                            detail::decode_count_reply);
    if (!purged) return purged.status();
    return static_cast<std::size_t>(purged.value());
}

Result<MessageId> ControlClient::dead_letter_replay(const MessageId& id, const std::string& queue) {
    return impl_->ask<MessageId>(detail::DeadLetterReplayRequest{id, queue},
                                 detail::decode_id_reply);
}

}  // namespace peermq
