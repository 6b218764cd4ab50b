#include "actor/peer_links.hpp"

#include <algorithm>

namespace peermq::detail {
namespace {

constexpr int kPeerSendHwm = 20'000;
constexpr auto kReconnect = std::chrono::milliseconds(100);
constexpr auto kReconnectMax = std::chrono::milliseconds(250);
constexpr auto kConnectTimeout = std::chrono::milliseconds(250);
constexpr int kOwnSubHwm = 10'000;  // one publisher's messages waiting to be read

}  // namespace

PeerLinks::PeerLinks(zmq::context_t& context, zmq::socket_t& sub,
                     std::chrono::milliseconds unacked_data_timeout, Logger& log,
                     const NodeIdentity* identity)
    : context_(context),
      sub_(sub),
      unacked_data_timeout_(unacked_data_timeout),
      log_(log),
      identity_(identity) {}

std::string PeerLinks::endpoint_of(const std::string& host, std::uint16_t port) {
    if (host.find(':') != std::string::npos) return "tcp://[" + host + "]:" + std::to_string(port);
    return "tcp://" + host + ":" + std::to_string(port);
}

zmq::socket_t PeerLinks::make_push(const Peer& peer) {
    zmq::socket_t push(context_, zmq::socket_type::push);
    if (identity_) {
        // A CurveZMQ client: the handshake fails unless the other end holds the peer's secret
        // key, so frames go to the node the key names or nowhere.
        if (!peer.key) throw zmq::error_t();
        push.set(zmq::sockopt::curve_serverkey,
                 zmq::const_buffer(peer.key->data(), peer.key->size()));
        push.set(zmq::sockopt::curve_publickey, identity_->public_key);
        push.set(zmq::sockopt::curve_secretkey, identity_->secret_key);
    }
    // The node picks the destination of each message itself: queue only to live connections,
    // keep the per-peer buffer bounded, and never block the actor.
    push.set(zmq::sockopt::immediate, 1);
    push.set(zmq::sockopt::sndhwm, kPeerSendHwm);
    push.set(zmq::sockopt::linger, 0);
    // A peer that is not there is tried a few times a second, and a connection attempt that
    // gets no answer (a cut link drops SYNs) is given up and made anew: when the link heals,
    // the next attempt is at most kReconnectMax + kConnectTimeout away, not a SYN backoff.
    push.set(zmq::sockopt::reconnect_ivl, static_cast<int>(kReconnect.count()));
    push.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(kReconnectMax.count()));
    push.set(zmq::sockopt::connect_timeout, static_cast<int>(kConnectTimeout.count()));
    // Data the peer's kernel has not acknowledged for this long ends the connection and goes
    // with it (TCP_USER_TIMEOUT): before the peer is down and its messages are redirected, so a
    // cut link cannot deliver them late, after the heal, as second copies. Closing the socket
    // would not do it: the kernel keeps retransmitting what a closed socket left behind.
    push.set(zmq::sockopt::tcp_maxrt, static_cast<int>(unacked_data_timeout_.count()));
    push.connect(peer.inbox_endpoint);
    return push;
}

bool PeerLinks::open(Peer& peer) {
    try {
        peer.push = make_push(peer);
        return true;
    } catch (const zmq::error_t& e) {
        // Out of sockets or descriptors despite the peer table's bound (another part of the
        // process holds them).
        PEERMQ_LOG(log_, LogLevel::warn, "peer", "cannot open a link to a peer",
                   {"endpoint", peer.inbox_endpoint}, {"error", e.what()});
        return false;
    }
}

void PeerLinks::reset(Peer& peer) {
    try {
        zmq::socket_t fresh = make_push(peer);
        peer.push = std::move(fresh);  // the old socket closes with linger 0
    } catch (const zmq::error_t& e) {
        PEERMQ_LOG(log_, LogLevel::warn, "peer", "cannot reopen the link to a peer",
                   {"peer", peer.name}, {"endpoint", peer.inbox_endpoint}, {"error", e.what()});
    }
    peer.blocked = false;
    peer.hello_owed = true;
    resubscribe(peer);
}

void PeerLinks::subscribe_to(Peer& peer, const std::string& endpoint) {
    if (peer.pub_endpoint != endpoint) {
        leave_pub(peer);
        peer.pub_endpoint = endpoint;
    }
    link_pub(peer);  // nothing when connected or no topic is wanted; else tries (again)
}

void PeerLinks::link_pub(Peer& peer) {
    // No topic wanted: no connection, so no CurveZMQ handshake and no descriptor. A worker pool
    // of N nodes that only use queues forms its mesh with half the connections.
    if (prefixes_.empty() || peer.pub_endpoint.empty() || peer.pub_linked) return;
    try {
        connect_sub(peer, peer.pub_endpoint);
        peer.pub_linked = true;
    } catch (const zmq::error_t& e) {
        // Out of descriptors: its topics stay unheard until its next HELLO tries again.
        PEERMQ_LOG(log_, LogLevel::warn, "peer", "cannot subscribe to a peer",
                   {"endpoint", peer.pub_endpoint}, {"error", e.what()});
    }
}

void PeerLinks::connect_sub(Peer& peer, const std::string& endpoint) {
    if (peer.own_sub && identity_ && peer.key) {
        zmq::socket_t sub(context_, zmq::socket_type::sub);
        sub.set(zmq::sockopt::curve_serverkey,
                zmq::const_buffer(peer.key->data(), peer.key->size()));
        sub.set(zmq::sockopt::curve_publickey, identity_->public_key);
        sub.set(zmq::sockopt::curve_secretkey, identity_->secret_key);
        sub.set(zmq::sockopt::rcvhwm, kOwnSubHwm);
        sub.set(zmq::sockopt::maxmsgsize, sub_.get(zmq::sockopt::maxmsgsize));
        sub.set(zmq::sockopt::linger, 0);
        for (const auto& prefix : prefixes_) sub.set(zmq::sockopt::subscribe, prefix);
        sub.connect(endpoint);
        peer.sub = std::move(sub);
        return;
    }
    if (identity_) {
        if (!peer.key) throw zmq::error_t();
        // Read by libzmq at connect(): each connection of the one SUB has its own server key.
        sub_.set(zmq::sockopt::curve_serverkey,
                 zmq::const_buffer(peer.key->data(), peer.key->size()));
    }
    sub_.connect(endpoint);
}

void PeerLinks::leave_pub(Peer& peer) {
    if (!peer.pub_linked) return;
    peer.pub_linked = false;
    if (peer.sub.handle() != nullptr) {
        peer.sub.close();
        return;
    }
    try {
        sub_.disconnect(peer.pub_endpoint);
    } catch (const zmq::error_t&) {
    }
}

void PeerLinks::resubscribe(Peer& peer) {
    if (!peer.pub_linked) return;
    leave_pub(peer);
    link_pub(peer);
}

void PeerLinks::subscribe(const std::string& prefix, const PeerDirectory& peers) {
    const bool first = prefixes_.empty();
    prefixes_.push_back(prefix);
    sub_.set(zmq::sockopt::subscribe, prefix);
    for (const auto& peer : peers.all()) {
        if (first) {
            link_pub(*peer);  // subscribed to every prefix, this one included
        } else if (peer->sub.handle() != nullptr) {
            peer->sub.set(zmq::sockopt::subscribe, prefix);
        }
    }
}

void PeerLinks::add_sub_items(const PeerDirectory& peers, std::vector<zmq::pollitem_t>& items) {
    sub_polled_.clear();
    first_sub_item_ = items.size();
    for (const auto& peer : peers.all()) {
        if (peer->sub.handle() == nullptr) continue;
        items.push_back({peer->sub.handle(), 0, ZMQ_POLLIN, 0});
        sub_polled_.push_back(peer->id);
    }
}

void PeerLinks::readable_subs(const std::vector<zmq::pollitem_t>& items,
                              std::vector<NodeId>& out) const {
    out.clear();
    for (std::size_t i = 0; i < sub_polled_.size(); ++i) {
        if (items[first_sub_item_ + i].revents & ZMQ_POLLIN) out.push_back(sub_polled_[i]);
    }
}

void PeerLinks::close(Peer& peer) {
    leave_pub(peer);
    // The turn that closes it may still hold it among the peers it polled for POLLOUT.
    std::replace(polled_.begin(), polled_.end(), &peer, static_cast<Peer*>(nullptr));
}

void PeerLinks::set_linger(PeerDirectory& peers, std::chrono::milliseconds linger) {
    for (const auto& peer : peers.all()) {
        peer->push.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    }
}

bool PeerLinks::send(Peer& peer, zmq::message_t& header, zmq::message_t* payload, Steady now) {
    try {
        auto sent =
            peer.push.send(header, payload ? zmq::send_flags::dontwait | zmq::send_flags::sndmore
                                           : zmq::send_flags::dontwait);
        if (!sent) {
            peer.blocked = true;
            return false;
        }
        if (payload) (void)peer.push.send(*payload, zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
        peer.blocked = true;
        return false;
    }
    ++peer.frames_sent;
    peer.last_sent = now;
    peer.confirmed = true;  // immediate=1: a frame is queued only on a completed connection
    return true;
}

void PeerLinks::add_poll_items(const PeerDirectory& peers, std::vector<zmq::pollitem_t>& items) {
    polled_.clear();
    first_item_ = items.size();
    for (const auto& peer : peers.all()) {
        if (!peer->blocked) continue;
        items.push_back({peer->push.handle(), 0, ZMQ_POLLOUT, 0});
        polled_.push_back(peer.get());
    }
}

}  // namespace peermq::detail
