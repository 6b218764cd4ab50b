// Descriptors: a node under systemd's default open-file limit (`ulimit -n 1024`) keeps
// delivering while a stranger holds 1 200 idle TCP connections to its inbox. Each accepted
// connection costs the node a descriptor before anyone knows who is on the other end, so the
// node caps its inbound connections and, past the cap, cuts those that never sent a byte
// (docs/security.md, "Denial of service"). The consumer runs as a process of its own under the
// limit; the flood comes from this test's process, which raises its own limit to open it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "peermq/peermq.hpp"
#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace peermq::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kIdleConnections = 1200;
constexpr long long kMessages = 500;

// "tcp://127.0.0.1:4000#KEY" -> 4000 (a Z85 key may hold ':').
std::uint16_t port_of(const std::string& address) {
    const std::string endpoint = address.substr(0, address.find('#'));
    return static_cast<std::uint16_t>(std::stoul(endpoint.substr(endpoint.rfind(':') + 1)));
}

// TCP connections to 127.0.0.1:port that never send a byte, opened as an attacker would: in
// waves of 50, each wave waiting (poll, 2 s at most) for its connections to be established
// before the next, so that a node that accepts them all ends up holding them all rather than
// leaving most in its listen backlog.
class IdleConnections {
public:
    IdleConnections(std::uint16_t port, int count) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        constexpr int kWave = 50;
        for (int opened = 0; opened < count && error_ == 0; opened += kWave) {
            std::vector<pollfd> wave;
            for (int i = 0; i < kWave && opened + i < count; ++i) {
                const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                    error_ = errno;
                    break;
                }
                fds_.push_back(fd);
                const int rc =
                    ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
                if (rc != 0 && errno != EINPROGRESS) {
                    error_ = errno;
                    break;
                }
                wave.push_back({fd, POLLOUT, 0});
            }
            const auto deadline = std::chrono::steady_clock::now() + 2s;
            std::size_t done = 0;
            while (done < wave.size() && std::chrono::steady_clock::now() < deadline) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (::poll(wave.data(), wave.size(), static_cast<int>(left.count())) <= 0) break;
                for (auto& entry : wave) {
                    if (entry.fd >= 0 && entry.revents != 0) {
                        ++done;
                        entry.fd = -entry.fd - 1;  // poll ignores it from now on
                    }
                }
            }
            established_ += done;
        }
    }
    ~IdleConnections() {
        for (const int fd : fds_) ::close(fd);
    }
    IdleConnections(const IdleConnections&) = delete;
    IdleConnections& operator=(const IdleConnections&) = delete;

    std::size_t opened() const { return fds_.size(); }
    // Connected (or refused) within their wave's time.
    std::size_t established() const { return established_; }
    int error() const { return error_; }

private:
    std::vector<int> fds_;
    std::size_t established_ = 0;
    int error_ = 0;
};

// How many descriptors a process holds.
std::size_t open_descriptors(pid_t pid) {
    std::error_code error;
    std::size_t count = 0;
    for (auto it =
             std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error);
         !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
        ++count;
    }
    return count;
}

// This process opens more descriptors than systemd's default allows; the node under test gets
// that default.
bool raise_own_fd_limit(rlim_t wanted) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
    if (limit.rlim_cur >= wanted) return true;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted) return false;
    limit.rlim_cur = wanted;
    return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

TEST(ConnectionLimit, ANodeAtTheDefaultFdLimitDeliversWhile1200IdleConnectionsAreOpen) {
    if (!raise_own_fd_limit(4096)) GTEST_SKIP() << "this process cannot open 4 096 descriptors";
    TempDir dir;
    NodeOptions o;
    o.name = "producer";
    o.cluster = "fds-" + unique_token();
    o.interface = "lo";
    o.heartbeat_interval = kHeartbeat;
    o.peer_timeout = kPeerTimeout;
    Node producer = make_node(o);
    auto queue = producer.queue("work").value();

    const std::string log = dir.file("worker.log");
    TestNode worker(Args{"--name", "worker", "--cluster", o.cluster, "--interface", "lo",
                         "--consume", "work", "--log", log} +
                        liveness_args(),
                    {"PEERMQ_LOG=info"}, {"sh", "-c", "ulimit -n 1024 && exec \"$0\" \"$@\""});
    ASSERT_TRUE(worker.ready()) << worker.output();

    // The stranger's connections come first, and the links the work needs are made while they
    // are open: the producer's to the worker's inbox, and the worker's back to the producer.
    IdleConnections idle(port_of(worker.endpoint()), kIdleConnections);
    ASSERT_EQ(idle.opened(), static_cast<std::size_t>(kIdleConnections))
        << "errno " << idle.error();
    std::printf(
        "[flood] %zu idle connections opened, %zu established; the worker holds %zu "
        "descriptors\n",
        idle.opened(), idle.established(), open_descriptors(worker.pid()));
    ASSERT_TRUE(producer.add_peer(worker.endpoint()).ok());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"worker"}, "work"); }, 15s))
        << describe(producer.peers()) << "\n"
        << worker.output();

    for (long long i = 0; i < kMessages; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until(
        [&] {
            return queue_stats(producer, "work").acked == static_cast<std::uint64_t>(kMessages);
        },
        20s))
        << describe(queue_stats(producer, "work")) << "\n"
        << worker.output();
    EXPECT_EQ(read_log(log).size(), static_cast<std::size_t>(kMessages));
    // It said at start what its descriptors allow, and counted the connections it cut.
    EXPECT_NE(worker.output().find("max_connections"), std::string::npos) << worker.output();
    const auto cut = worker.stat("dropped.link.idle_cut");
    ASSERT_TRUE(cut.has_value());
    EXPECT_GT(*cut, 0u);
}

// A stranger with keys of its own fills the inbox's connection cap with connections that complete
// the CurveZMQ handshake (so they are not idle: they sent bytes) and then say nothing. Every live
// peer heartbeats on its link, so once such a connection has been silent for the peer timeout it
// is cut when a new one needs room (`link.quiet_cut`), and a new peer gets in.
TEST(ConnectionLimit, ANewPeerGetsInWhileAuthenticatedSilentConnectionsFillTheInbox) {
    constexpr int kSilent = 40;  // over the cap below
    NodeOptions o;
    o.name = "worker";
    o.cluster = "quiet-" + unique_token();
    o.interface = "lo";
    o.heartbeat_interval = 200ms;
    o.peer_timeout = 1000ms;
    o.max_peers = 8;  // 24 inbound connections a socket
    Node worker = make_node(o);
    std::atomic<int> handled{0};
    ASSERT_TRUE(worker.consume("work", [&](Delivery&) { ++handled; }).ok());

    zmq::context_t context;
    std::vector<zmq::socket_t> silent;
    for (int i = 0; i < kSilent; ++i) {
        const FakeIdentity stranger = fake_identity();
        zmq::socket_t& push = silent.emplace_back(context, zmq::socket_type::push);
        push.set(zmq::sockopt::linger, 0);
        curve_client(push, worker.public_key(), stranger);
        push.connect(worker.inbox_endpoint());
    }
    // The cap is reached: connections past it are cut.
    ASSERT_TRUE(wait_until([&] { return worker.stats().dropped["link.connection_limit"] >= 1; }))
        << describe_drops(worker.stats());

    NodeOptions p = o;
    p.name = "producer";
    p.max_peers = 1024;
    p.peers = {worker.address()};
    Node producer = make_node(p);
    auto queue = producer.queue("work").value();
    constexpr int kMessages = 100;
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return handled.load() == kMessages; }, 20s))
        << handled.load() << " of " << kMessages << " handled; " << describe_drops(worker.stats());
    EXPECT_GT(worker.stats().dropped["link.quiet_cut"], 0u) << describe_drops(worker.stats());
}

}  // namespace
}  // namespace peermq::testing
