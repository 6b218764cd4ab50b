// `peermq stats` on a node that knows hundreds of peers announcing hundreds of names: it answers
// at once, lists what the control reply carries and says how much more there is (docs/cli.md,
// "stats"; docs/spec/control.md §5.4). Its JSON has every field of the stats table.
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "observability/stats_fields.hpp"
#include "support/free_port.hpp"
#include "support/nodes.hpp"
#include "support/raw_frames.hpp"
#include "support/temp_dir.hpp"
#include "wire/envelope.hpp"

namespace peermq::cli_test {
namespace {

using Json = nlohmann::json;
namespace detail = peermq::detail;

constexpr int kPeers = 300;
constexpr int kNames = 100;  // queues, and topics, of each fake peer

// A fake peer: a CURVE peer of its own key (one connection per key, since a frame may speak
// only for its connection's key), with an inbox and a pub bound as CURVE servers of that key, so
// the node's links to it come up. Its PUSH queues only on a connection whose handshake is done
// (ZMQ_IMMEDIATE): a HELLO waits for it, and the fakes connect one after another rather than in a
// burst past the node's listen backlog.
struct FakePeer {
    FakePeer(zmq::context_t& context, const std::string& node_inbox, const std::string& node_key,
             std::string name)
        : push(context, zmq::socket_type::push),
          inbox(context, zmq::socket_type::pull),
          pub(context, zmq::socket_type::pub) {
        peermq::testing::curve_server(inbox, identity);
        peermq::testing::curve_server(pub, identity);
        hello.name = std::move(name);
        hello.cluster = "default";
        hello.host = "127.0.0.1";
        hello.inbox_port = peermq::testing::bind_loopback(inbox);
        hello.pub_port = peermq::testing::bind_loopback(pub);
        for (int i = 0; i < kNames; ++i) {
            hello.queues.push_back(detail::QueueAd{"queue-" + std::to_string(i), 1});
            hello.topics.push_back("topic-" + std::to_string(i) + ".");
        }
        push.set(zmq::sockopt::linger, 0);
        push.set(zmq::sockopt::immediate, 1);
        peermq::testing::curve_client(push, node_key, identity);
        push.connect(node_inbox);
    }

    // Its HELLO, once its link to the node is up (false: not within `timeout`).
    bool say_hello(std::chrono::milliseconds timeout) {
        zmq::pollitem_t item{push.handle(), 0, ZMQ_POLLOUT, 0};
        zmq::poll(&item, 1, timeout);
        if (!(item.revents & ZMQ_POLLOUT)) return false;
        peermq::testing::send_hello(push, hello, identity.id);
        return true;
    }

    peermq::testing::FakeIdentity identity = peermq::testing::fake_identity();
    zmq::socket_t push;
    zmq::socket_t inbox;
    zmq::socket_t pub;
    detail::Hello hello;
};

// A node's tcp control endpoint and the key `peermq stats` proves on it: the node's own (the node
// takes it from PEERMQ_SECRET_KEY, the tool from a --key-file).
struct TcpControl {
    TcpControl() {
        std::ofstream(key_file()) << "secret " << key.secret_key << "\n";
        std::filesystem::permissions(
            key_file(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    std::string key_file() const { return dir.file("admin.key"); }
    // `stats` and its target.
    Args stats_args() const {
        return {"stats", "--control", endpoint + "#" + key.public_key, "--key-file", key_file()};
    }
    Args node_env() const { return {"PEERMQ_SECRET_KEY=" + key.secret_key}; }

    peermq::testing::TempDir dir;
    const peermq::KeyPair key = peermq::generate_key_pair().value();
    const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(peermq::testing::free_port());
};

// Runs `peermq stats --control <control> --json` until its object satisfies `done` (30 s at
// most), calling `before_each` (if any) before every run; the last object read, for the failure
// message.
template <typename Done>
bool wait_for_stats(const TcpControl& control, Json& stats, Done&& done,
                    const std::function<void()>& before_each = {}) {
    return wait_until(
        [&] {
            if (before_each) before_each();
            Args args = control.stats_args();
            args.push_back("--json");
            const CliResult json = run_cli(args);
            if (json.exit_code != 0) return false;
            stats = Json::parse(json.out, nullptr, false);
            return stats.is_object() && done(stats);
        },
        30s);
}

TEST(CliStatsTest, ATableOfManyPeersSaysHowManyMoreThereAre) {
    const TcpControl control;
    TestNode node(Args{"--name", "crowded", "--interface", "lo", "--control", control.endpoint},
                  control.node_env());
    ASSERT_TRUE(node.ready());

    // The node's address, "tcp://127.0.0.1:port#KEY": where the fake peers connect, and the key
    // they connect to.
    const std::string inbox = peermq::testing::without_key(node.endpoint());
    ASSERT_NE(inbox, node.endpoint()) << "no key in " << node.endpoint();
    const std::string node_key = node.endpoint().substr(inbox.size() + 1);
    zmq::context_t context;
    context.set(zmq::ctxopt::max_sockets, 3 * kPeers + 64);  // three sockets per fake peer
    std::vector<std::unique_ptr<FakePeer>> fakes;
    for (int i = 0; i < kPeers; ++i) {
        fakes.push_back(
            std::make_unique<FakePeer>(context, inbox, node_key, "fake-" + std::to_string(i)));
        ASSERT_TRUE(fakes.back()->say_hello(10s)) << "fake peer " << i << " never connected";
    }
    // Setting up hundreds of CURVE links takes longer than the node's peer timeout (1.5 s): the
    // fakes keep saying HELLO, as live peers would, until the node lists them all.
    auto speak = [&] {
        for (auto& fake : fakes) (void)fake->say_hello(0ms);
    };

    Json stats;
    ASSERT_TRUE(wait_for_stats(
        control, stats,
        [](const Json& s) { return s.at("peers").size() + s.value("peers_omitted", 0u) >= kPeers; },
        speak))
        << stats.dump().substr(0, 2000);
    const std::size_t listed = stats.at("peers").size();
    EXPECT_LT(listed, std::size_t{kPeers});
    EXPECT_EQ(listed + stats.at("peers_omitted").get<std::size_t>(), std::size_t{kPeers});
    for (const auto& peer : stats.at("peers")) {
        EXPECT_EQ(peer.at("queues").size() + peer.at("queues_omitted").get<std::size_t>(),
                  std::size_t{kNames})
            << peer.dump();
    }

    speak();
    const auto start = Clock::now();
    const CliResult table = run_cli(control.stats_args());
    EXPECT_LT(Clock::now() - start, 5s);
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("and " + std::to_string(kPeers - listed) + " more peers"),
              std::string::npos)
        << table.out.substr(table.out.size() > 3000 ? table.out.size() - 3000 : 0);
    // A peer's names: the first few, then how many more (what the reply left out included).
    EXPECT_NE(table.out.find("queue-0,queue-1,"), std::string::npos);
    EXPECT_NE(table.out.find(" +92 more"), std::string::npos);
    EXPECT_EQ(table.out.find("queue-99"), std::string::npos);
}

// `stats --json` has one key per field of the stats table (core/src/observability/
// stats_fields.hpp), and each queue one per channel field (a histogram summarised as <name>_us):
// a field added to the table reaches the JSON without a change to the tool.
TEST(CliStatsTest, TheJsonHasEveryFieldOfTheStatsTable) {
    const TcpControl control;
    TestNode node(Args{"--name", "fields", "--interface", "lo", "--control", control.endpoint,
                       "--consume", "orders"},
                  control.node_env());
    ASSERT_TRUE(node.ready());

    Json stats;
    ASSERT_TRUE(wait_for_stats(control, stats, [](const Json& s) {
        return s.contains("queues") && s.at("queues").contains("orders");
    })) << stats.dump();

    std::set<std::string> want;
    detail::for_each_stats_field<NodeStats>(
        [&](const auto& field) { want.insert(std::string(field.name)); });
    want.insert("dead_letters");  // a map of maps, which the table has no kind for
    std::set<std::string> got;
    for (const auto& [key, value] : stats.items()) got.insert(key);
    EXPECT_EQ(got, want);

    want.clear();
    detail::for_each_stats_field<ChannelStats>([&](const auto& field) {
        want.insert(std::string(field.name) +
                    (field.kind == detail::StatsKind::histogram ? "_us" : ""));
    });
    got.clear();
    for (const auto& [key, value] : stats.at("queues").at("orders").items()) got.insert(key);
    EXPECT_EQ(got, want);
}

// The letters in a running node's dead-letter store, by queue and reason: in the table (a row
// each) and in the JSON (`dead_letters`), and gone once purged.
TEST(CliStatsTest, TheDeadLettersOfTheNodeAreListedByQueueAndReason) {
    peermq::testing::TempDir dir;
    const std::string data_dir = dir.file("producer-data");
    TestNode broken(Args{"--name", "broken", "--interface", "lo", "--consume", "poison",
                         "--fail-payload", "3"});
    ASSERT_TRUE(broken.ready());
    TestNode producer(Args{"--name", "producer", "--interface", "lo", "--data-dir", data_dir,
                           "--peer", host_port(broken.endpoint()), "--produce", "poison", "--count",
                           "5", "--max-attempts", "2", "--retry-initial-ms", "10", "--retry-max-ms",
                           "40"});
    ASSERT_TRUE(producer.ready());
    ASSERT_TRUE(wait_until([&] { return producer.stat("poison.dead_lettered") == 1u; }, 20s));

    const CliResult json = run_cli(Args{"stats", "--data-dir", data_dir, "--json"});
    ASSERT_EQ(json.exit_code, 0) << json;
    EXPECT_EQ(Json::parse(json.out).at("dead_letters"),
              Json::parse(R"({"poison": {"max_attempts": 1}})"))
        << json;
    const CliResult table = run_cli(Args{"stats", "--data-dir", data_dir});
    ASSERT_EQ(table.exit_code, 0) << table;
    EXPECT_NE(table.out.find("DEAD LETTERS"), std::string::npos) << table;
    EXPECT_TRUE(std::regex_search(table.out, std::regex("\npoison +max_attempts +1 *\n"))) << table;

    const CliResult purged =
        run_cli(Args{"dlq", "purge", "--all", "--queue", "poison", "--data-dir", data_dir});
    ASSERT_EQ(purged.exit_code, 0) << purged;
    const CliResult after = run_cli(Args{"stats", "--data-dir", data_dir, "--json"});
    ASSERT_EQ(after.exit_code, 0) << after;
    EXPECT_EQ(Json::parse(after.out).at("dead_letters"), Json::object()) << after;
    const CliResult table_after = run_cli(Args{"stats", "--data-dir", data_dir});
    EXPECT_EQ(table_after.out.find("DEAD LETTERS"), std::string::npos) << table_after;
}

}  // namespace
}  // namespace peermq::cli_test
