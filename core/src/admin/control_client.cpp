// ControlClient (peermq/control.hpp): one fresh DEALER socket per request, so that a reply that
// comes after its timeout can never be taken for the answer to a later request, and a node
// that never answers can never wedge the client (ZMQ_LINGER 0 drops what is unsent at close).
#include <sys/stat.h>

#include <filesystem>
#include <utility>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "admin/control_codec.hpp"
#include "admin/control_server.hpp"
#include "peermq/control.hpp"

namespace peermq {

struct ControlClient::Impl {
    std::string endpoint;
    std::chrono::milliseconds timeout;
    zmq::context_t context{1};

    Status no_answer(const std::string& why) const {
        return make_error(ErrorCode::unavailable,
                          "no node answers on " + endpoint + " (" + why + ")");
    }

    // Sends one request and returns the reply frame.
    Result<zmq::message_t> exchange(const detail::ControlRequest& request) {
        // An ipc endpoint without its socket file has no node behind it: say so at once.
        if (endpoint.starts_with("ipc://") && endpoint.size() > 6 && endpoint[6] != '@') {
            std::error_code ec;
            const auto status = std::filesystem::symlink_status(endpoint.substr(6), ec);
            if (!std::filesystem::is_socket(status)) return no_answer("no socket file");
        }
        msgpack::sbuffer buffer;
        detail::encode_request(request, buffer);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        try {
            zmq::socket_t socket(context, zmq::socket_type::dealer);
            socket.set(zmq::sockopt::linger, 0);
            socket.connect(endpoint);
            // The empty delimiter makes the envelope a REQ socket's, which the server answers
            // in kind. A DEALER with a pipe queues the message even before it connects.
            if (!socket.send(zmq::message_t(),
                             zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
                !socket.send(zmq::message_t(buffer.data(), buffer.size()),
                             zmq::send_flags::dontwait)) {
                return no_answer("cannot queue the request");
            }
            std::vector<zmq::message_t> frames;
            for (;;) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) {
                    return no_answer("no reply within " + std::to_string(timeout.count()) + " ms");
                }
                zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
                const int ready = ::zmq_poll(&item, 1, static_cast<long>(left.count()));
                if (ready < 0 && zmq_errno() != EINTR) {
                    return make_error(ErrorCode::io_error,
                                      std::string("control client: ") + zmq_strerror(zmq_errno()));
                }
                if (ready <= 0) continue;
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
                                             std::chrono::milliseconds timeout) {
    if (Status valid = detail::validate_control_endpoint(endpoint, false); !valid.ok()) {
        return valid;
    }
    if (timeout.count() <= 0) {
        return make_error(ErrorCode::invalid_argument, "control client timeout must be positive");
    }
    auto impl = std::make_unique<Impl>();
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
