// The node's ZAP handler (zap_handler.hpp). A request is, after the REP envelope: version
// "1.0", request id, domain, address, routing id, mechanism, then the mechanism's credentials
// (CURVE: the client's 32-byte public key). The reply: version, request id, status code,
// status text, user id, metadata (empty).
#include "security/zap_handler.hpp"

#include <cstring>
#include <vector>

namespace peermq::detail {
namespace {

constexpr std::size_t kMaxRequestFrames = 16;
constexpr std::size_t kServeBatch = 256;

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context) : socket_(context, zmq::socket_type::rep) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("inproc://zeromq.zap.01");
}

void ZapHandler::serve() {
    std::vector<zmq::message_t> frames;
    for (std::size_t n = 0; n < kServeBatch; ++n) {
        frames.clear();
        zmq::message_t frame;
        if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return;
        bool more = frame.more();
        frames.push_back(std::move(frame));
        while (more) {
            zmq::message_t next;
            (void)socket_.recv(next);
            more = next.more();
            if (frames.size() < kMaxRequestFrames) frames.push_back(std::move(next));
        }
        // libzmq writes these requests itself; anything else is answered (a REP must) and
        // counted, never trusted.
        if (frames.size() < 6 || frames[0].to_string_view() != "1.0") {
            ++malformed_;
            reply(frames.size() > 1 ? frames[1].to_string() : std::string(), "500",
                  "malformed request", {});
            continue;
        }
        const std::string request_id = frames[1].to_string();
        if (frames[5].to_string_view() != "CURVE" || frames.size() != 7 ||
            frames[6].size() != sizeof(CurveKey)) {
            ++malformed_;
            reply(request_id, "400", "CURVE only", {});
            continue;
        }
        CurveKey key{};
        std::memcpy(key.data(), frames[6].data(), key.size());
        if (policy_ && !policy_(key)) {
            ++refused_;
            reply(request_id, "400", "key not authorized", {});
            continue;
        }
        ++accepted_;
        reply(request_id, "200", "OK", encode_key(key));
    }
}

void ZapHandler::reply(const std::string& request_id, std::string_view code, std::string_view text,
                       const std::string& user_id) {
    const std::string_view parts[] = {"1.0", request_id, code, text, user_id, {}};
    for (std::size_t i = 0; i < std::size(parts); ++i) {
        zmq::message_t frame(parts[i].data(), parts[i].size());
        (void)socket_.send(
            frame, i + 1 < std::size(parts) ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

}  // namespace peermq::detail
