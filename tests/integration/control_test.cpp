// A running node's control endpoint (docs/spec/control.md) through ControlClient: stats, peers
// and dead letters as the node itself reports them; a dead endpoint; garbage from raw sockets;
// and the data-directory lock, in process and across a SIGKILLed process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "peermq/control.hpp"
#include "peermq/peermq.hpp"
#include "support/driver.hpp"
#include "support/free_port.hpp"
#include "support/nodes.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using peermq::ErrorCode;
using peermq::testing::find_peer;
using peermq::testing::free_port;
using peermq::testing::make_node;
using peermq::testing::queue_stats;
using peermq::testing::sees;
using peermq::testing::TempDir;
using peermq::testing::TestNode;
using peermq::testing::wait_until;
namespace fs = std::filesystem;

namespace {

peermq::NodeOptions options(const std::string& name, std::string data_dir = {}) {
    return {.name = name,
            .interface = "lo",
            .heartbeat_interval = 200ms,
            .peer_timeout = 1000ms,
            .data_dir = std::move(data_dir)};
}

// The key an admin proves on a tcp control endpoint: the node's own in these tests (a test
// gives its node this key and connects with it).
const peermq::KeyPair& admin_key() {
    static const peermq::KeyPair pair = peermq::generate_key_pair().value();
    return pair;
}

peermq::ControlClient client_for(const std::string& endpoint,
                                 std::chrono::milliseconds timeout = 5s,
                                 std::string secret_key = admin_key().secret_key) {
    auto client = peermq::ControlClient::connect(endpoint, timeout, std::move(secret_key));
    if (!client) throw std::runtime_error(client.status().to_string());
    return std::move(client).value();
}

// A unix socket file nobody accepts on (what a SIGKILLed node leaves behind).
void make_stale_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        throw std::runtime_error("cannot bind " + path);
    }
    ::close(fd);
}

std::string socket_path(const std::string& endpoint) { return endpoint.substr(6); }

// One request or reply written as MessagePack by `write`.
std::string msgpack_of(const std::function<void(msgpack::packer<msgpack::sbuffer>&)>& write) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> pk(buffer);
    write(pk);
    return {buffer.data(), buffer.size()};
}

// The [version, "error", code, message] a raw socket got back, or nullopt at the deadline.
struct RawReply {
    std::string status;
    std::string code;
};
std::optional<RawReply> read_reply(zmq::socket_t& socket, bool delimited,
                                   std::chrono::milliseconds timeout = 5s) {
    zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, static_cast<long>(timeout.count())) <= 0) return std::nullopt;
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket, std::back_inserter(frames))) return std::nullopt;
    if (delimited) {
        if (frames.size() != 2 || frames[0].size() != 0) return RawReply{"bad envelope", ""};
        frames.erase(frames.begin());
    }
    if (frames.size() != 1) return RawReply{"bad envelope", ""};
    auto handle = msgpack::unpack(static_cast<const char*>(frames[0].data()), frames[0].size());
    const auto& root = handle.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size < 2) return RawReply{"?", ""};
    RawReply reply;
    reply.status = root.via.array.ptr[1].as<std::string>();
    if (root.via.array.size >= 3 && root.via.array.ptr[2].type == msgpack::type::STR) {
        reply.code = root.via.array.ptr[2].as<std::string>();
    }
    return reply;
}

}  // namespace

TEST(ControlTest, ClientStatsAndPeersAreTheNodes) {
    TempDir dir;
    const std::string data_dir = dir.file("producer");
    auto consumer = make_node(options("consumer"));
    auto producer_options = options("producer", data_dir);
    producer_options.peers = {consumer.address()};
    auto producer = make_node(producer_options);
    std::atomic<int> handled{0};
    ASSERT_TRUE(consumer.consume("orders", [&](peermq::Delivery&) { ++handled; }).ok());
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"consumer"}, "orders"); }));
    auto orders = producer.queue("orders").value();
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(orders.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, "orders").acked == 50; }));

    const std::string endpoint = peermq::control_endpoint_for_data_dir(data_dir);
    EXPECT_EQ(endpoint, "ipc://" + fs::absolute(data_dir).string() + "/control.sock");
    EXPECT_TRUE(fs::is_socket(socket_path(endpoint)));
    auto client = client_for(endpoint);
    EXPECT_EQ(client.endpoint(), endpoint);

    auto remote = client.stats();
    ASSERT_TRUE(remote.ok()) << remote.status().to_string();
    const auto local = producer.stats();
    EXPECT_EQ(remote->id, producer.id());
    EXPECT_EQ(remote->name, "producer");
    ASSERT_EQ(remote->queues.count("orders"), 1u);
    const auto& r = remote->queues.at("orders");
    const auto& l = local.queues.at("orders");
    EXPECT_EQ(r.sent, 50u);
    EXPECT_EQ(r.acked, 50u);
    EXPECT_EQ(r.sent, l.sent);
    EXPECT_EQ(r.acked, l.acked);
    EXPECT_EQ(r.nacked, l.nacked);
    EXPECT_EQ(r.retried, l.retried);
    EXPECT_EQ(r.dead_lettered, l.dead_lettered);
    EXPECT_EQ(r.in_flight, 0u);
    EXPECT_EQ(r.depth, 0u);
    EXPECT_EQ(r.ack_latency.count, l.ack_latency.count);
    EXPECT_EQ(r.ack_latency.buckets, l.ack_latency.buckets);
    EXPECT_EQ(remote->dropped, local.dropped);
    EXPECT_EQ(remote->bad_frames, local.bad_frames);
    ASSERT_EQ(remote->peers.size(), local.peers.size());
    const auto* seen = find_peer(remote->peers, "consumer");
    ASSERT_NE(seen, nullptr);
    EXPECT_EQ(seen->id, consumer.id());
    EXPECT_EQ(seen->state, peermq::PeerState::alive);

    auto peers = client.peers();
    ASSERT_TRUE(peers.ok()) << peers.status().to_string();
    const auto* peer = find_peer(peers.value(), "consumer");
    ASSERT_NE(peer, nullptr);
    EXPECT_EQ(peer->id, consumer.id());
    EXPECT_EQ(peer->inbox_endpoint, consumer.inbox_endpoint());
    EXPECT_EQ(peer->queues, std::vector<std::string>{"orders"});
    EXPECT_GT(peer->last_heard_ms, 0);
    EXPECT_GT(peer->frames_received, 0u);

    // The socket file goes with the node; the client then finds nobody.
    producer.close();
    EXPECT_FALSE(fs::exists(socket_path(endpoint)));
    auto after = client.stats();
    EXPECT_EQ(after.status().code(), ErrorCode::unavailable);
}

TEST(ControlTest, DeadLettersAreListedReplayedAndPurgedThroughTheClient) {
    TempDir dir;
    const std::string data_dir = dir.file("producer");
    const std::string q = "poison";
    auto consumer = make_node(options("consumer"));
    std::atomic<bool> fixed{false};
    std::mutex mutex;
    std::multiset<long long> received;
    ASSERT_TRUE(consumer
                    .consume(q,
                             [&](peermq::Delivery& d) {
                                 const auto value = d.as<long long>();
                                 if (value == 13 && !fixed) {
                                     throw std::runtime_error("poison payload 13");
                                 }
                                 std::lock_guard lock(mutex);
                                 received.insert(value);
                             })
                    .ok());
    auto producer_options = options("producer", data_dir);
    producer_options.peers = {consumer.address()};
    auto producer = make_node(producer_options);
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"consumer"}, q); }));
    const peermq::QueueOptions fast = {.max_attempts = 2, .retry_initial = 10ms, .retry_max = 40ms};
    auto queue = producer.queue(q, fast).value();
    peermq::MessageId poison;
    for (long long i = 0; i < 20; ++i) {
        auto id = queue.send(i);
        ASSERT_TRUE(id.ok());
        if (i == 13) poison = id.value();
    }
    ASSERT_TRUE(wait_until([&] {
        const auto s = queue_stats(producer, q);
        return s.acked == 19 && s.dead_lettered == 1;
    }));

    auto client = client_for(peermq::control_endpoint_for_data_dir(data_dir));
    auto letters = client.dead_letter_list();
    ASSERT_TRUE(letters.ok()) << letters.status().to_string();
    ASSERT_EQ(letters->size(), 1u);
    const peermq::DeadLetter& letter = letters->front();
    EXPECT_EQ(letter.id, poison);
    EXPECT_EQ(letter.queue, q);
    EXPECT_EQ(letter.reason, "max_attempts");
    EXPECT_EQ(letter.attempts, 2u);
    EXPECT_EQ(letter.last_error, "poison payload 13");
    EXPECT_EQ(letter.payload.as<long long>(), 13);
    EXPECT_GT(letter.last_failure_ms, 0);

    // Filters reach the node.
    EXPECT_EQ(client.dead_letter_list({.queue = "other"})->size(), 0u);
    EXPECT_EQ(client.dead_letter_list({.reason = "max_attempts"})->size(), 1u);
    EXPECT_EQ(client.dead_letter_list({.until_ms = letter.last_failure_ms})->size(), 0u);

    auto got = client.dead_letter_get(poison);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(got->last_error, "poison payload 13");
    EXPECT_EQ(got->payload.as<long long>(), 13);
    EXPECT_EQ(client.dead_letter_get(peermq::MessageId::generate()).status().code(),
              ErrorCode::not_found);

    // Replayed once the handler is fixed: delivered, and gone from the dead letters.
    fixed = true;
    auto replayed = client.dead_letter_replay(poison);
    ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
    EXPECT_NE(replayed.value(), poison);
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return received.count(13) == 1;
    }));
    EXPECT_EQ(client.dead_letter_list()->size(), 0u);
    EXPECT_EQ(client.dead_letter_replay(poison).status().code(), ErrorCode::not_found);

    // Another poison message, purged by queue. The replay left the queue's options as they
    // were: dead-lettered after max_attempts = 2, not the default 5.
    fixed = false;
    ASSERT_TRUE(queue.send(13LL).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, q).dead_lettered == 2; }));
    ASSERT_EQ(client.dead_letter_list()->size(), 1u);
    EXPECT_EQ(client.dead_letter_list()->front().attempts, 2u);
    auto purged = client.dead_letter_purge({.queue = q});
    ASSERT_TRUE(purged.ok()) << purged.status().to_string();
    EXPECT_EQ(purged.value(), 1u);
    EXPECT_EQ(client.dead_letter_list()->size(), 0u);
    EXPECT_EQ(producer.dead_letters().list()->size(), 0u);
    EXPECT_EQ(client.dead_letter_purge({}).value(), 0u);
}

TEST(ControlTest, NobodyAnsweringIsUnavailableWithinTheTimeout) {
    TempDir dir;
    // No socket file at all: said at once.
    const std::string missing = "ipc://" + dir.file("control.sock");
    auto client = client_for(missing, 2s);
    auto start = std::chrono::steady_clock::now();
    auto stats = client.stats();
    EXPECT_EQ(stats.status().code(), ErrorCode::unavailable);
    EXPECT_NE(stats.status().message().find("no node answers on " + missing), std::string::npos)
        << stats.status().message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);

    // A socket file left by a killed node, a tcp port nobody listens on, and a server that
    // takes requests and never answers: each request gives up at its timeout, and the next
    // request is not confused by anything left of the last.
    const std::string stale = dir.file("stale.sock");
    make_stale_socket(stale);
    zmq::context_t context;
    zmq::socket_t silent(context, zmq::socket_type::router);
    silent.set(zmq::sockopt::linger, 0);
    const std::string silent_endpoint = "ipc://" + dir.file("silent.sock");
    silent.bind(silent_endpoint);
    for (const std::string& endpoint :
         {"ipc://" + stale,
          "tcp://127.0.0.1:" + std::to_string(free_port()) + "#" + admin_key().public_key,
          silent_endpoint}) {
        auto dead = client_for(endpoint, 300ms);
        for (int attempt = 0; attempt < 2; ++attempt) {
            start = std::chrono::steady_clock::now();
            auto peers = dead.peers();
            const auto took = std::chrono::steady_clock::now() - start;
            EXPECT_EQ(peers.status().code(), ErrorCode::unavailable) << endpoint;
            EXPECT_NE(peers.status().message().find(endpoint), std::string::npos);
            EXPECT_GE(took, 250ms) << endpoint;
            EXPECT_LT(took, 2s) << endpoint;
        }
    }
    // The silent server did get the requests: the client did send them.
    zmq_pollitem_t item{silent.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq_poll(&item, 1, 0), 1);
}

TEST(ControlTest, GarbageIsRefusedAndCountedAndTheNodeKeepsServing) {
    TempDir dir;
    const std::string data_dir = dir.file("node");
    auto node = make_node(options("target", data_dir));
    const std::string endpoint = peermq::control_endpoint_for_data_dir(data_dir);

    zmq::context_t context;
    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    auto send = [&](std::vector<std::string> frames) {
        for (std::size_t i = 0; i < frames.size(); ++i) {
            const auto flags =
                i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
            ASSERT_TRUE(dealer.send(zmq::buffer(frames[i]), flags));
        }
    };
    auto expect_error = [&](const std::string& code, bool delimited, const char* what) {
        auto reply = read_reply(dealer, delimited);
        ASSERT_TRUE(reply.has_value()) << what << ": no reply";
        EXPECT_EQ(reply->status, "error") << what;
        EXPECT_EQ(reply->code, code) << what;
    };
    // Not MessagePack, with and without a REQ delimiter.
    send({"hello, node"});
    expect_error("protocol_error", false, "garbage");
    send({"", std::string("\xc1\xc1\xc1", 3)});
    expect_error("protocol_error", true, "delimited garbage");
    // An empty delimiter and nothing after it: not even a frame; dropped without a reply.
    send({""});
    // Two request frames.
    send({"a", "b"});
    expect_error("protocol_error", false, "two frames");
    // A later version, an unknown verb, a malformed body.
    send({msgpack_of([](auto& pk) {
        pk.pack_array(2);
        pk.pack_uint32(9);
        pk.pack(std::string("stats"));
    })});
    expect_error("protocol_error", false, "version 9");
    send({msgpack_of([](auto& pk) {
        pk.pack_array(2);
        pk.pack_uint32(1);
        pk.pack(std::string("shutdown"));
    })});
    expect_error("protocol_error", false, "unknown verb");
    send({msgpack_of([](auto& pk) {
        pk.pack_array(3);
        pk.pack_uint32(1);
        pk.pack(std::string("dlq.get"));
        pk.pack(std::string("not an id"));
    })});
    expect_error("protocol_error", false, "bad id");
    // A request over the size limit: libzmq drops the connection, the node carries on.
    {
        zmq::socket_t big(context, zmq::socket_type::dealer);
        big.set(zmq::sockopt::linger, 0);
        big.connect(endpoint);
        const std::string huge(200'000, 'x');
        ASSERT_TRUE(big.send(zmq::buffer(huge), zmq::send_flags::none));
        EXPECT_FALSE(read_reply(big, false, 300ms).has_value());
    }
    // Raw bytes that are not ZMTP at all, straight on the unix socket.
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s",
                      socket_path(endpoint).c_str());
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        const std::string noise(4096, '\xff');
        EXPECT_GT(::write(fd, noise.data(), noise.size()), 0);
        ::close(fd);
    }
    // A real client is still answered, and sees what was refused.
    auto client = client_for(endpoint);
    auto stats = client.stats();
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->name, "target");
    EXPECT_EQ(stats->dropped["control.garbage"], 2u);
    EXPECT_EQ(stats->dropped["control.bad_version"], 1u);
    EXPECT_EQ(stats->dropped["control.unknown_verb"], 1u);
    EXPECT_EQ(stats->dropped["control.bad_request"], 1u);
    EXPECT_EQ(stats->dropped["control.bad_envelope"], 2u);
    EXPECT_EQ(node.stats().dropped, stats->dropped);
    EXPECT_EQ(stats->bad_frames, 0u);  // control requests are not peer frames
}

TEST(ControlTest, TwoNodesNeverShareADataDirectory) {
    TempDir dir;
    const std::string data_dir = dir.file("shared");
    EXPECT_FALSE(peermq::data_dir_in_use(data_dir));  // not even created yet
    auto first = make_node(options("first", data_dir));
    EXPECT_TRUE(peermq::data_dir_in_use(data_dir));
    EXPECT_TRUE(peermq::data_dir_in_use(data_dir));  // testing does not take the lock

    auto second = peermq::Node::create(options("second", data_dir));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), ErrorCode::in_use);
    EXPECT_NE(second.status().message().find(data_dir), std::string::npos)
        << second.status().message();
    EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())),
              std::string::npos)
        << second.status().message();
    // The refused node touched nothing: the first still serves its control endpoint.
    auto client = client_for(peermq::control_endpoint_for_data_dir(data_dir));
    EXPECT_EQ(client.stats()->name, "first");

    first.close();
    EXPECT_FALSE(peermq::data_dir_in_use(data_dir));
    EXPECT_TRUE(fs::exists(dir.file("shared/LOCK")));
    auto third = peermq::Node::create(options("third", data_dir));
    ASSERT_TRUE(third.ok()) << third.status().to_string();
    EXPECT_TRUE(peermq::data_dir_in_use(data_dir));
    EXPECT_EQ(client.stats()->name, "third");
}

TEST(ControlTest, ControlEndpointOptionsAreValidated) {
    TempDir dir;
    for (const std::string bad :
         {"tcp://0.0.0.0:5000", "tcp://192.168.1.1:5000", "tcp://*:5000", "tcp://localhost:5000",
          "tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://127.0.0.1:70000", "tcp://127.0.0.1:x",
          "http://127.0.0.1:80", "inproc://control", "ipc://", "on"}) {
        auto o = options("node");
        o.control_endpoint = bad;
        auto node = peermq::Node::create(o);
        ASSERT_FALSE(node.ok()) << bad;
        EXPECT_EQ(node.status().code(), ErrorCode::invalid_argument) << bad;
        EXPECT_NE(node.status().message().find(bad), std::string::npos) << node.status().message();
        EXPECT_EQ(peermq::ControlClient::connect(bad).status().code(), ErrorCode::invalid_argument)
            << bad;
    }
    auto remote = peermq::Node::create([&] {
        auto o = options("node");
        o.control_endpoint = "tcp://10.1.2.3:7000";
        return o;
    }());
    EXPECT_NE(remote.status().message().find("loopback"), std::string::npos);

    // "off": no endpoint even with a data directory.
    {
        auto o = options("quiet", dir.file("quiet"));
        o.control_endpoint = "off";
        auto node = make_node(o);
        EXPECT_FALSE(fs::exists(dir.file("quiet/control.sock")));
        EXPECT_TRUE(peermq::data_dir_in_use(dir.file("quiet")));
    }
    // No data directory: no endpoint unless one is given; explicit ipc and loopback tcp serve.
    {
        auto o = options("ipc");
        o.control_endpoint = "ipc://" + dir.file("admin.sock");
        auto node = make_node(o);
        EXPECT_EQ(client_for(o.control_endpoint).stats()->name, "ipc");
    }
    EXPECT_FALSE(fs::exists(dir.file("admin.sock")));
    {
        auto o = options("tcp");
        o.control_endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
        o.secret_key = admin_key().secret_key;
        auto node = make_node(o);
        EXPECT_EQ(node.control_endpoint(), o.control_endpoint + "#" + admin_key().public_key);
        EXPECT_EQ(client_for(node.control_endpoint()).stats()->name, "tcp");
        // The port is taken while it runs.
        auto again = options("tcp-again");
        again.control_endpoint = o.control_endpoint;
        EXPECT_EQ(peermq::Node::create(again).status().code(), ErrorCode::address_in_use);
    }
    // An ipc path that is someone's file is never replaced by a socket.
    {
        std::ofstream(dir.file("notes.txt")) << "keep me";
        auto o = options("careful");
        o.control_endpoint = "ipc://" + dir.file("notes.txt");
        auto node = peermq::Node::create(o);
        EXPECT_EQ(node.status().code(), ErrorCode::invalid_argument);
        EXPECT_NE(node.status().message().find("not a socket"), std::string::npos);
        std::ifstream in(dir.file("notes.txt"));
        std::string text;
        std::getline(in, text);
        EXPECT_EQ(text, "keep me");
    }
    // Another node's live ipc endpoint is not stolen.
    {
        auto o = options("owner");
        o.control_endpoint = "ipc://" + dir.file("owned.sock");
        auto owner = make_node(o);
        auto thief = options("thief");
        thief.control_endpoint = o.control_endpoint;
        EXPECT_EQ(peermq::Node::create(thief).status().code(), ErrorCode::address_in_use);
        EXPECT_EQ(client_for(o.control_endpoint).stats()->name, "owner");
    }
    // A data directory too deep for a unix socket path: a clear error, not a silent no-endpoint.
    {
        const std::string deep = dir.file(std::string(110, 'd'));
        auto node = peermq::Node::create(options("deep", deep));
        ASSERT_FALSE(node.ok());
        EXPECT_EQ(node.status().code(), ErrorCode::invalid_argument);
        EXPECT_NE(node.status().message().find("control_endpoint"), std::string::npos)
            << node.status().message();
        EXPECT_FALSE(peermq::data_dir_in_use(deep));  // the failed node let go of it
        auto o = options("deep", deep);
        o.control_endpoint = "off";
        EXPECT_TRUE(peermq::Node::create(o).ok());
    }
    EXPECT_EQ(peermq::ControlClient::connect("ipc://" + dir.file("x.sock"), 0ms).status().code(),
              ErrorCode::invalid_argument);
}

TEST(ControlTest, AKilledNodesLockFileStaysButItsLockGoes) {
    TempDir dir;
    const std::string data_dir = dir.file("child");
    const std::string endpoint = peermq::control_endpoint_for_data_dir(data_dir);
    {
        TestNode child({"--name", "child", "--interface", "lo", "--data-dir", data_dir});
        ASSERT_TRUE(child.ready()) << child.output();
        EXPECT_TRUE(peermq::data_dir_in_use(data_dir));
        // Its control endpoint answers from the other process.
        auto stats = client_for(endpoint).stats();
        ASSERT_TRUE(stats.ok()) << stats.status().to_string();
        EXPECT_EQ(stats->name, "child");
        // And this process cannot take its directory.
        auto rival = peermq::Node::create(options("rival", data_dir));
        ASSERT_FALSE(rival.ok());
        EXPECT_EQ(rival.status().code(), ErrorCode::in_use);
        EXPECT_NE(rival.status().message().find("pid " + std::to_string(child.pid())),
                  std::string::npos)
            << rival.status().message();

        child.kill(SIGKILL);
        ASSERT_EQ(child.process().wait(), 128 + SIGKILL);
    }
    // What a SIGKILL leaves: the LOCK file (unlocked) and a socket file nobody serves.
    EXPECT_TRUE(fs::exists(data_dir + "/LOCK"));
    EXPECT_FALSE(peermq::data_dir_in_use(data_dir));
    EXPECT_TRUE(fs::is_socket(socket_path(endpoint)));
    EXPECT_EQ(client_for(endpoint, 300ms).stats().status().code(), ErrorCode::unavailable);

    auto successor = peermq::Node::create(options("successor", data_dir));
    ASSERT_TRUE(successor.ok()) << successor.status().to_string();
    EXPECT_TRUE(peermq::data_dir_in_use(data_dir));
    auto stats = client_for(endpoint).stats();
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->name, "successor");
}

TEST(ControlTest, AChildNodeServesAnExplicitLoopbackTcpEndpoint) {
    const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
    TestNode child({"--name", "tcp-child", "--interface", "lo", "--control", endpoint},
                   {"PEERMQ_SECRET_KEY=" + admin_key().secret_key});
    ASSERT_TRUE(child.ready()) << child.output();
    auto client = client_for(endpoint + "#" + admin_key().public_key);
    auto stats = client.stats();
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->name, "tcp-child");
    auto peers = client.peers();
    ASSERT_TRUE(peers.ok()) << peers.status().to_string();
    EXPECT_TRUE(peers->empty());
    // Without a data directory its dead letters are kept in memory, and reachable.
    auto letters = client.dead_letter_list();
    ASSERT_TRUE(letters.ok()) << letters.status().to_string();
    EXPECT_TRUE(letters->empty());
}
