// Node keys: where a node's key comes from, the id it gives, the key file on disk (its mode
// whatever the umask, a damaged or exposed one refused), static peers named with their key, and
// a node that keeps its key keeping its id across a SIGKILL and a restart.
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "peermq/peermq.hpp"
#include "security/node_key.hpp"
#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/scoped_env.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace peermq::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

NodeOptions options(const std::string& name) {
    NodeOptions o;
    o.name = name;
    o.interface = "lo";
    o.control_endpoint = "off";
    return o;
}

mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class UmaskGuard {
public:
    explicit UmaskGuard(mode_t mask) : old_(::umask(mask)) {}
    ~UmaskGuard() { ::umask(old_); }

private:
    mode_t old_;
};

TEST(Keys, AnIdIsTheFirstBytesOfItsKeyAsAUuidVersion8) {
    const auto pair = generate_key_pair().value();
    const NodeId id = node_id_of(pair.public_key).value();
    EXPECT_EQ(id, node_id_of(pair.public_key).value());
    EXPECT_EQ(id.bytes()[6] >> 4, 8) << id.to_string();
    EXPECT_EQ(id.bytes()[8] & 0xC0, 0x80) << id.to_string();
    const auto raw = detail::decode_key(pair.public_key).value();
    EXPECT_EQ(id.bytes()[0], raw[0]);
    EXPECT_EQ(id.bytes()[15], raw[15]);
    EXPECT_NE(id, node_id_of(generate_key_pair()->public_key).value());
    EXPECT_EQ(public_key_of(pair.secret_key).value(), pair.public_key);
    EXPECT_FALSE(node_id_of("too short"));
    EXPECT_FALSE(node_id_of(std::string(40, ' ')));  // not Z85
    EXPECT_FALSE(public_key_of(pair.secret_key.substr(1)));
}

TEST(Keys, ANodesIdDerivesFromTheKeyItIsGivenByOptionOrEnvironment) {
    const auto pair = generate_key_pair().value();
    NodeOptions o = options("given");
    o.secret_key = pair.secret_key;
    Node by_option = make_node(o);
    EXPECT_EQ(by_option.public_key(), pair.public_key);
    EXPECT_EQ(by_option.id(), node_id_of(pair.public_key).value());
    EXPECT_EQ(by_option.address(), by_option.inbox_endpoint() + "#" + pair.public_key);
    by_option.close();

    const auto other = generate_key_pair().value();
    ScopedEnv env("PEERMQ_SECRET_KEY", other.secret_key.c_str());
    Node by_env = make_node(options("env"));
    EXPECT_EQ(by_env.id(), node_id_of(other.public_key).value());
    by_env.close();

    NodeOptions bad = options("bad");
    bad.secret_key = "not a key";
    auto refused = Node::create(bad);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(refused.status().message().find("secret_key"), std::string::npos);
}

TEST(Keys, WithoutADataDirEveryStartIsANewKey) {
    Node a = make_node(options("a"));
    const NodeId first = a.id();
    a.close();
    Node b = make_node(options("a"));
    EXPECT_NE(b.id(), first);
}

// Under umask 000 as under any other: the key file is 0600 and holds the key the node uses.
TEST(Keys, TheDataDirKeepsTheKeyPrivateAndTheIdAcrossRestarts) {
    TempDir dir;
    const fs::path data = fs::path(dir.path()) / "node";
    NodeId id;
    {
        UmaskGuard open_umask(0);
        NodeOptions o = options("keeper");
        o.data_dir = data;
        Node node = make_node(o);
        id = node.id();
        EXPECT_EQ(mode_of(data / "node.key"), 0600u);
        EXPECT_NE(read_file(data / "node.key").find(node.public_key()), std::string::npos);
    }
    const std::string first_incarnation = read_file(data / "incarnation");
    NodeOptions o = options("keeper");
    o.data_dir = data;
    Node again = make_node(o);
    EXPECT_EQ(again.id(), id);
    EXPECT_GT(std::stoull(read_file(data / "incarnation")), std::stoull(first_incarnation));
}

// What a node writes is its user's alone under umask 000: the data directory, the key, the
// journal (payloads) and the control socket (which can purge and replay dead letters).
TEST(Exposure, UnderUmask000TheDataDirJournalKeyAndControlSocketAreTheOwnersOnly) {
    TempDir dir;
    const fs::path data = fs::path(dir.path()) / "exposed";
    UmaskGuard open_umask(0);
    NodeOptions o = options("exposed");
    o.data_dir = data;
    o.control_endpoint = "";  // ipc://<data_dir>/control.sock
    Node node = make_node(o);
    auto queue = node.queue("q").value();
    ASSERT_TRUE(queue.send(1).ok());
    ASSERT_TRUE(queue.flush().ok());
    EXPECT_EQ(mode_of(data), 0700u);
    EXPECT_EQ(mode_of(data / "node.key"), 0600u);
    EXPECT_EQ(mode_of(data / "control.sock") & 0077, 0u);
    for (const auto& entry : fs::directory_iterator(data)) {
        if (entry.path().filename().string().starts_with("peermq.db")) {
            EXPECT_EQ(mode_of(entry.path()) & 0077, 0u) << entry.path();
        }
    }
    EXPECT_TRUE(fs::exists(data / "peermq.db-wal")) << "no WAL written: nothing was checked there";
}

TEST(Keys, AKeyFileOthersCanReadOrThatIsDamagedIsRefusedNotReplaced) {
    TempDir dir;
    const fs::path data = fs::path(dir.path()) / "node";
    {
        NodeOptions o = options("k");
        o.data_dir = data;
        Node node = make_node(o);
    }
    const std::string original = read_file(data / "node.key");
    NodeOptions o = options("k");
    o.data_dir = data;

    fs::permissions(data / "node.key", fs::perms::owner_read | fs::perms::owner_write |
                                           fs::perms::group_read | fs::perms::others_read);
    auto exposed = Node::create(o);
    ASSERT_FALSE(exposed);
    EXPECT_NE(exposed.status().message().find("chmod 600"), std::string::npos)
        << exposed.status().to_string();

    fs::permissions(data / "node.key", fs::perms::owner_read | fs::perms::owner_write);
    {
        std::string damaged = original;
        damaged[damaged.find("\nsecret ") + 10] ^=
            0x01;  // another key, no longer the public line's
        std::ofstream(data / "node.key", std::ios::trunc) << damaged;
    }
    auto refused = Node::create(o);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.status().message().find("damaged"), std::string::npos)
        << refused.status().to_string();
    // Refusing is all it did: the file is the one it found.
    EXPECT_NE(read_file(data / "node.key"), original);
    EXPECT_EQ(mode_of(data / "node.key"), 0600u);
}

TEST(Keys, AStaticPeerIsNamedWithItsKeyAndAWrongKeyIsAnError) {
    auto no_key = [] {
        NodeOptions o = options("p");
        o.peers = {"127.0.0.1:4000"};
        return Node::create(o);
    }();
    ASSERT_FALSE(no_key);
    EXPECT_EQ(no_key.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(no_key.status().message().find("#KEY"), std::string::npos);

    NodeOptions o = options("p");
    o.peers = {"127.0.0.1:4000#short"};
    auto bad_key = Node::create(o);
    ASSERT_FALSE(bad_key);
    EXPECT_NE(bad_key.status().message().find("bad key"), std::string::npos);

    const auto pair = generate_key_pair().value();
    const auto record = parse_endpoint("tcp://127.0.0.1:4000#" + pair.public_key).value();
    EXPECT_EQ(record.inbox_port, 4000);
    EXPECT_EQ(record.host, "127.0.0.1");
    EXPECT_EQ(record.public_key, pair.public_key);
    EXPECT_EQ(record.id, node_id_of(pair.public_key).value());

    NodeOptions plain = options("plain");
    plain.trust = TrustMode::plain;
    plain.peers = {"127.0.0.1:4000"};
    EXPECT_TRUE(Node::create(plain)) << "plain nodes name their peers by endpoint alone";
}

// A consumer with a data directory is SIGKILLed mid-stream and started again on the same
// directory: the same id (its key), a higher incarnation. The producer takes it as a restart,
// redirects what the dead process held, and the stream completes.
TEST(Keys, AConsumerKilledAndRestartedOnItsDataDirKeepsItsIdAndLosesNothing) {
    TempDir dir;
    constexpr long long kCount = 3000;
    NodeOptions po = options("producer");
    po.heartbeat_interval = 200ms;
    po.peer_timeout = 1000ms;
    po.cluster = "restart-" + unique_token();
    Node producer = make_node(po);
    const std::string data = (fs::path(dir.path()) / "consumer").string();
    auto args = [&](const std::string& log) {
        Args a = {"--name",
                  "worker",
                  "--cluster",
                  po.cluster,
                  "--interface",
                  "lo",
                  "--consume",
                  "work",
                  "--log",
                  log,
                  "--data-dir",
                  data,
                  "--peer",
                  producer.address(),
                  "--handle-delay-us",
                  "200"};
        for (auto& flag : liveness_args()) a.push_back(flag);
        return a;
    };
    auto first = std::make_unique<TestNode>(args(dir.file("first.log")));
    ASSERT_TRUE(first->ready()) << first->output();
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"worker"}, "work"); }, 15s));
    const NodeId id_before = find_peer(producer.peers(), "worker")->id;
    auto queue = producer.queue("work").value();
    for (long long i = 0; i < kCount; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return read_log(dir.file("first.log")).size() >= 300; }, 30s));
    first->kill(SIGKILL);
    first->process().wait();

    TestNode second(args(dir.file("second.log")));
    ASSERT_TRUE(second.ready()) << second.output();
    EXPECT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, "work");
            return s.acked == static_cast<std::uint64_t>(kCount) && s.in_flight == 0;
        },
        60s))
        << describe(queue_stats(producer, "work")) << " " << describe_drops(producer.stats());
    const auto peers = producer.peers();
    const auto* worker = find_peer(peers, "worker");
    ASSERT_NE(worker, nullptr);
    EXPECT_EQ(worker->id, id_before) << "a restart on its data dir is the same node";
    std::map<long long, int> all = counts(read_log(dir.file("first.log")));
    for (const auto& [v, n] : counts(read_log(dir.file("second.log")))) all[v] += n;
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kCount));
}

}  // namespace
}  // namespace peermq::testing
