// The trust modes past `open` (docs/security.md): `authorized`, where only the keys of the node's
// authorized_keys file may connect, each with what it may do, and the file is read again while
// the node runs; and `tofu`, where the first key seen under a node name is pinned. Real nodes on
// loopback, each with a key made for the test; only the node under test runs the mode, its
// peers run `open` (they would have to list the node's key too otherwise, which adds nothing).
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/peermq.hpp"
#include "support/nodes.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace peermq::testing {
namespace {

using namespace std::chrono_literals;

struct Member {
    std::string name;
    KeyPair keys = generate_key_pair().value();
};

NodeOptions options(const std::string& cluster, const Member& member,
                    std::vector<std::string> peers = {}) {
    NodeOptions o;
    o.name = member.name;
    o.cluster = cluster;
    o.interface = "lo";
    o.secret_key = member.keys.secret_key;
    o.peers = std::move(peers);
    o.heartbeat_interval = 200ms;
    o.peer_timeout = 1000ms;
    return o;
}

std::uint64_t dropped(const Node& node, const std::string& reason) {
    const auto stats = node.stats();
    const auto it = stats.dropped.find(reason);
    return it == stats.dropped.end() ? 0 : it->second;
}

// Writes the file whole under another name and renames it into place, as `peermq trust` and
// careful editors do: the node never reads half of it.
void write_keys(const std::string& path, const std::vector<std::string>& lines) {
    const std::string temporary = path + ".new";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << "# written by the test\n";
        for (const auto& line : lines) out << line << "\n";
    }
    ::chmod(temporary.c_str(), 0600);
    std::filesystem::rename(temporary, path);
}

std::string line(const Member& member, const std::string& permissions = {}) {
    return member.keys.public_key + " " + member.name + (permissions.empty() ? "" : " ") +
           permissions;
}

// A consumer of `queue` that counts what it handles.
struct Consumer {
    std::atomic<int> handled{0};
    Node node;
    Consumer(NodeOptions o, const std::string& queue) : node(make_node(std::move(o))) {
        if (!node.consume(queue, [this](Delivery&) { ++handled; }).ok())
            throw std::runtime_error("consume failed");
    }
};

class TrustModes : public ::testing::Test {
protected:
    TempDir dir;
    std::string cluster = "trust-" + unique_token();
    std::string keys_file = dir.file("authorized_keys");

    NodeOptions authorized(const Member& member, std::vector<std::string> peers = {}) {
        NodeOptions o = options(cluster, member, std::move(peers));
        o.trust = TrustMode::authorized;
        o.authorized_keys = keys_file;
        return o;
    }
};

// A node whose key is not listed cannot connect (its handshake is refused and counted), so it
// gets none of the work; a record naming it is not linked to either.
TEST_F(TrustModes, AnUnlistedKeyGetsNoWorkAndIsCounted) {
    Member producer_member{"producer"}, listed{"listed"}, stranger{"stranger"};
    write_keys(keys_file, {line(listed)});
    Node producer = make_node(authorized(producer_member));
    Consumer good(options(cluster, listed, {producer.address()}), "work");
    Consumer bad(options(cluster, stranger, {producer.address()}), "work");
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"listed"}, "work"); }, 10s))
        << describe(producer.peers());
    ASSERT_TRUE(wait_until([&] { return dropped(producer, "auth.unauthorized") > 0; }, 10s))
        << describe_drops(producer.stats());

    // Told where the stranger is, the producer still makes no link to it.
    ASSERT_TRUE(producer.add_peer(bad.node.address()).ok());
    ASSERT_TRUE(wait_until([&] { return dropped(producer, "discovery.unauthorized") > 0; }, 10s));

    auto queue = producer.queue("work").value();
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return good.handled.load() == 200; }, 20s))
        << describe(queue_stats(producer, "work"));
    EXPECT_EQ(bad.handled.load(), 0);
    EXPECT_EQ(find_peer(producer.peers(), "stranger"), nullptr) << describe(producer.peers());
}

// Both consumers are listed; only one may consume "work": the other never gets any of it, and
// the queue it asked for is counted as refused.
TEST_F(TrustModes, AListedKeyWithoutConsumePermissionGetsNoneOfTheQueue) {
    Member producer_member{"producer"}, worker{"worker"}, other{"other"};
    write_keys(keys_file, {line(worker, "consume=work"), line(other, "consume=reports")});
    Node producer = make_node(authorized(producer_member));
    Consumer allowed(options(cluster, worker, {producer.address()}), "work");
    Consumer denied(options(cluster, other, {producer.address()}), "work");
    ASSERT_TRUE(wait_until(
        [&] {
            return sees(producer, {"worker", "other"});
        },
        10s))
        << describe(producer.peers());
    ASSERT_TRUE(wait_until([&] { return dropped(producer, "auth.consume_denied") > 0; }, 10s));
    EXPECT_FALSE(consumes(*find_peer(producer.peers(), "other"), "work"));

    auto queue = producer.queue("work").value();
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return allowed.handled.load() == 300; }, 20s))
        << describe(queue_stats(producer, "work"));
    EXPECT_EQ(denied.handled.load(), 0);
}

// A producer not allowed to send to a queue has each message rejected, not retried: it lands
// in its own dead letters saying why, and the consumer's handler never sees it.
TEST_F(TrustModes, ASendToAQueueTheKeyMayNotSendToIsRejectedAndDeadLettered) {
    Member consumer_member{"consumer"}, may{"may-send"}, may_not{"may-not-send"};
    write_keys(keys_file, {line(may, "send=work"), line(may_not, "send=reports")});
    Consumer consumer(authorized(consumer_member), "work");
    Node good = make_node(options(cluster, may, {consumer.node.address()}));
    Node bad = make_node(options(cluster, may_not, {consumer.node.address()}));
    for (Node* producer : {&good, &bad}) {
        ASSERT_TRUE(wait_until([&] { return sees(*producer, {"consumer"}, "work"); }, 10s))
            << describe(producer->peers());
    }
    auto good_queue = good.queue("work").value();
    auto bad_queue = bad.queue("work").value();
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(good_queue.send(i).ok());
        ASSERT_TRUE(bad_queue.send(i).ok());
    }
    ASSERT_TRUE(wait_until([&] { return bad.dead_letters().list().value().size() == 50; }, 20s))
        << describe(queue_stats(bad, "work"));
    ASSERT_TRUE(wait_until([&] { return queue_stats(good, "work").acked == 50; }, 20s));
    EXPECT_EQ(consumer.handled.load(), 50);
    const auto letter = bad.dead_letters().list().value().front();
    EXPECT_EQ(letter.reason, "rejected");
    EXPECT_NE(letter.last_error.find("not authorized"), std::string::npos) << letter.last_error;
    EXPECT_GE(dropped(consumer.node, "auth.send_denied"), 50u);
}

// Topics: a listed subscriber whose key may subscribe under "sensors." gets the readings, one
// whose key may only subscribe under "logs." asks for "sensors." too and gets none.
TEST_F(TrustModes, ASubscriberOutsideItsPrefixesIsNotSentTheTopic) {
    Member publisher_member{"publisher"}, reader{"reader"}, outsider{"outsider"};
    write_keys(keys_file, {line(reader, "subscribe=sensors."), line(outsider, "subscribe=logs.")});
    Node publisher = make_node(authorized(publisher_member));
    std::atomic<int> read{0};
    std::atomic<int> leaked{0};
    Node reader_node = make_node(options(cluster, reader, {publisher.address()}));
    Node outsider_node = make_node(options(cluster, outsider, {publisher.address()}));
    ASSERT_TRUE(reader_node.subscribe("sensors.", [&](const Message&) { ++read; }).ok());
    ASSERT_TRUE(outsider_node.subscribe("sensors.", [&](const Message&) { ++leaked; }).ok());
    ASSERT_TRUE(wait_until([&] { return sees(publisher, {"reader", "outsider"}); }, 10s));
    ASSERT_TRUE(wait_until([&] { return dropped(publisher, "auth.subscribe_denied") > 0; }, 10s))
        << describe_drops(publisher.stats());
    // Topics are best effort: publish until the reader's subscription has taken effect, then
    // a counted run the reader must get whole.
    ASSERT_TRUE(wait_until(
        [&] {
            (void)publisher.publish("sensors.temperature", 1);
            return read.load() > 0;
        },
        10s, 20ms));
    const int before = read.load();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(publisher.publish("sensors.temperature", i).ok());
    ASSERT_TRUE(wait_until([&] { return read.load() >= before + 100; }, 10s));
    EXPECT_EQ(leaked.load(), 0);
}

// A publisher whose key may publish only under "sensors." is read on a SUB socket of its own:
// its other topics are dropped and counted, its sensors are delivered. Given `publish=*` while
// the node runs, its topics move to the shared SUB and all of them arrive.
TEST_F(TrustModes, APublisherOutsideItsPrefixesIsNotDelivered) {
    Member subscriber_member{"subscriber"}, publisher_member{"publisher"};
    write_keys(keys_file, {line(publisher_member, "publish=sensors.")});
    std::atomic<int> sensors{0};
    std::atomic<int> secrets{0};
    Node subscriber = make_node(authorized(subscriber_member));
    ASSERT_TRUE(subscriber
                    .subscribe("",
                               [&](const Message& message) {
                                   ++(message.channel.rfind("sensors.", 0) == 0 ? sensors
                                                                                : secrets);
                               })
                    .ok());
    Node publisher = make_node(options(cluster, publisher_member, {subscriber.address()}));
    ASSERT_TRUE(wait_until([&] { return sees(subscriber, {"publisher"}); }, 10s));
    ASSERT_TRUE(wait_until(
        [&] {
            (void)publisher.publish("sensors.temperature", 1);
            return sensors.load() > 0;
        },
        10s, 20ms));
    // One connection keeps order: once the last sensor reading is in, every secret before it
    // has been read and dropped.
    const int before = sensors.load();
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(publisher.publish("secrets.plan", i).ok());
        ASSERT_TRUE(publisher.publish("sensors.temperature", i).ok());
    }
    ASSERT_TRUE(wait_until([&] { return sensors.load() >= before + 100; }, 10s));
    EXPECT_EQ(secrets.load(), 0);
    EXPECT_GE(dropped(subscriber, "auth.publish_denied"), 100u)
        << describe_drops(subscriber.stats());

    write_keys(keys_file, {line(publisher_member, "publish=*")});
    ASSERT_TRUE(wait_until(
        [&] {
            (void)publisher.publish("secrets.plan", 1);
            return secrets.load() > 0;
        },
        10s, 20ms))
        << describe_drops(subscriber.stats());
}

// In a running cluster: a key taken out of the file loses its links at once and gets no more
// work; put back, the same node is let in again.
TEST_F(TrustModes, RevokingAndAddingAKeyInARunningCluster) {
    Member producer_member{"producer"}, stays{"stays"}, goes{"goes"};
    write_keys(keys_file, {line(stays), line(goes)});
    // Before the node: its handler may still run while the node closes.
    std::mutex events_mutex;
    std::vector<PeerEvent> events;
    Node producer = make_node(authorized(producer_member));
    producer.on_peer_event([&](const PeerEvent& event) {
        std::lock_guard lock(events_mutex);
        events.push_back(event);
    });
    auto stayer = std::make_unique<Consumer>(options(cluster, stays, {producer.address()}), "work");
    Consumer goer(options(cluster, goes, {producer.address()}), "work");
    ASSERT_TRUE(wait_until(
        [&] {
            return sees(producer, {"stays", "goes"}, "work");
        },
        10s))
        << describe(producer.peers());

    write_keys(keys_file, {line(stays)});
    ASSERT_TRUE(wait_until([&] { return find_peer(producer.peers(), "goes") == nullptr; }, 10s))
        << describe(producer.peers());
    // The event comes on a dispatcher thread, after the actor has removed the peer.
    EXPECT_TRUE(wait_until([&] {
        std::lock_guard lock(events_mutex);
        return std::any_of(events.begin(), events.end(), [](const PeerEvent& e) {
            return e.peer.name == "goes" && e.refused == "revoked";
        });
    })) << "no peer event said the key was revoked";
    // Its link comes back (libzmq reconnects) and is refused at the handshake.
    ASSERT_TRUE(wait_until([&] { return dropped(producer, "auth.unauthorized") > 0; }, 10s))
        << describe_drops(producer.stats());
    auto queue = producer.queue("work").value();
    const int goer_before = goer.handled.load();
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, "work").acked == 200; }, 20s))
        << describe(queue_stats(producer, "work"));
    EXPECT_EQ(goer.handled.load(), goer_before) << "a revoked key was sent work";

    // Put back: the same node is heard again, and with the other consumer gone it gets the work.
    write_keys(keys_file, {line(stays), line(goes)});
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"goes"}, "work"); }, 15s))
        << describe(producer.peers());
    stayer.reset();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, "work").acked == 300; }, 20s))
        << describe(queue_stats(producer, "work"));
    EXPECT_GE(goer.handled.load(), goer_before + 100);
}

// Queue reports (Node::cluster_queues) in authorized mode: a node tells a peer about the queues
// that peer's key may send to or consume, no others — `peermq queues` run with a narrow key sees
// only what that key may touch; with an unrestricted key, everything.
TEST_F(TrustModes, AQueueReportNamesOnlyTheQueuesTheAskersKeyMayUse) {
    Member serving{"serving"}, narrow{"narrow"}, admin{"admin"};
    write_keys(keys_file, {line(serving), line(narrow, "send=work consume=work"), line(admin)});
    Node node = make_node(authorized(serving));
    for (const std::string queue : {"work", "payroll"}) {
        ASSERT_TRUE(node.consume(queue, [](Delivery&) {}).ok());
    }
    NodeOptions narrow_options = authorized(narrow, {node.address()});
    Node narrow_node = make_node(narrow_options);
    Node admin_node = make_node(authorized(admin, {node.address()}));
    ASSERT_TRUE(wait_until(
        [&] { return sees(narrow_node, {"serving"}) && sees(admin_node, {"serving"}); }, 10s));

    auto names = [&](const Node& asker) {
        std::vector<std::string> out;
        auto nodes = asker.cluster_queues(5s);
        if (!nodes.ok()) return out;
        for (const auto& report : *nodes) {
            if (report.name != "serving") continue;
            if (!report.answered) out.push_back("no answer: " + report.error);
            for (const auto& q : report.queues) out.push_back(q.queue);
        }
        return out;
    };
    EXPECT_EQ(names(narrow_node), std::vector<std::string>{"work"});
    EXPECT_EQ(names(admin_node), (std::vector<std::string>{"payroll", "work"}));
}

TEST_F(TrustModes, AuthorizedWithoutAReadableFileDoesNotStart) {
    Member member{"lonely"};
    NodeOptions missing = authorized(member);
    auto node = Node::create(missing);
    ASSERT_FALSE(node.ok());
    EXPECT_EQ(node.status().code(), ErrorCode::not_found) << node.status().to_string();
    EXPECT_NE(node.status().message().find("peermq trust add"), std::string::npos)
        << node.status().message();

    NodeOptions nowhere = authorized(member);
    nowhere.authorized_keys.clear();  // and no data directory to find one in
    node = Node::create(nowhere);
    ASSERT_FALSE(node.ok());
    EXPECT_EQ(node.status().code(), ErrorCode::invalid_argument) << node.status().to_string();

    // Writable by others: anyone could add a key to it.
    write_keys(keys_file, {line(member)});
    ::chmod(keys_file.c_str(), 0666);
    node = Node::create(authorized(member));
    ASSERT_FALSE(node.ok());
    EXPECT_EQ(node.status().code(), ErrorCode::invalid_argument) << node.status().to_string();
}

// tofu: the first key seen under a name is pinned, on disk; a node that later presents another
// key under that name is refused, loudly, also after the pinning node restarts.
TEST_F(TrustModes, TofuRefusesAnotherKeyUnderAPinnedName) {
    Member producer_member{"producer"}, first{"worker"}, impostor{"worker"}, honest{"honest"};
    NodeOptions tofu = options(cluster, producer_member);
    tofu.trust = TrustMode::tofu;
    tofu.data_dir = dir.file("producer");
    // Before the node: its handler may still run while the node closes.
    std::mutex events_mutex;
    std::vector<PeerEvent> events;
    auto producer = std::make_unique<Node>(make_node(tofu));
    {
        Consumer original(options(cluster, first, {producer->address()}), "work");
        ASSERT_TRUE(wait_until([&] { return sees(*producer, {"worker"}, "work"); }, 10s));
    }
    std::ifstream pins(dir.file("producer") + "/known_keys");
    std::stringstream text;
    text << pins.rdbuf();
    EXPECT_NE(text.str().find(first.keys.public_key + " worker"), std::string::npos) << text.str();

    for (int life = 0; life < 2; ++life) {
        if (life == 1) {  // the pin outlives the node that made it
            producer.reset();
            producer = std::make_unique<Node>(make_node(tofu));
        }
        {
            std::lock_guard lock(events_mutex);
            events.clear();
        }
        producer->on_peer_event([&](const PeerEvent& event) {
            std::lock_guard lock(events_mutex);
            events.push_back(event);
        });
        const std::uint64_t refused_before = dropped(*producer, "auth.key_changed");
        Consumer fake(options(cluster, impostor, {producer->address()}), "work");
        Consumer real(options(cluster, honest, {producer->address()}), "work");
        ASSERT_TRUE(wait_until([&] { return sees(*producer, {"honest"}, "work"); }, 10s));
        ASSERT_TRUE(wait_until(
            [&] { return dropped(*producer, "auth.key_changed") > refused_before; }, 10s))
            << "life " << life << ": " << describe_drops(producer->stats());
        // The event comes on a dispatcher thread, after the actor has counted the refusal.
        EXPECT_TRUE(wait_until([&] {
            std::lock_guard lock(events_mutex);
            return std::any_of(events.begin(), events.end(), [&](const PeerEvent& e) {
                return e.refused == "key_changed" && e.peer.name == "worker";
            });
        })) << "life "
            << life;
        auto queue = producer->queue("work").value();
        for (int i = 0; i < 100; ++i) ASSERT_TRUE(queue.send(i).ok());
        ASSERT_TRUE(wait_until([&] { return real.handled.load() == 100; }, 20s))
            << describe(queue_stats(*producer, "work"));
        EXPECT_EQ(fake.handled.load(), 0) << "life " << life;
    }
}

}  // namespace
}  // namespace peermq::testing
