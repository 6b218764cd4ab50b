// The DNS-SD record of a node (docs/spec/discovery.md §3-§5): TXT validation, and how resolved
// instances become found / updated / lost events (PeerTable). Pure logic, no network.
#include <gtest/gtest.h>

#include <variant>

#include "../../discovery/src/peer_table.hpp"
#include "../../discovery/src/txt_record.hpp"
#include "peermq/keys.hpp"

namespace peermq::detail {
namespace {

const std::string kId = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";

std::vector<std::string> good_txt() { return {"v=1", "id=" + kId, "pub=5556", "cluster=shop"}; }

std::vector<std::string> replaced(std::vector<std::string> txt, const std::string& key,
                                  const std::string& entry) {
    for (auto& e : txt) {
        if (e.rfind(key + "=", 0) == 0) e = entry;
    }
    return txt;
}

std::vector<std::string> without(std::vector<std::string> txt, const std::string& key) {
    std::erase_if(txt, [&](const std::string& e) { return e.rfind(key + "=", 0) == 0; });
    return txt;
}

TxtProblem problem_of(const std::vector<std::string>& txt) {
    const auto result = parse_txt(txt);
    EXPECT_TRUE(std::holds_alternative<TxtProblem>(result)) << "accepted a malformed TXT";
    return std::holds_alternative<TxtProblem>(result) ? std::get<TxtProblem>(result)
                                                      : TxtProblem::bad_version;
}

TEST(TxtRecord, ValidRecordParses) {
    const auto result = parse_txt(good_txt());
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(result));
    const auto& record = std::get<TxtRecord>(result);
    EXPECT_EQ(record.version, 1u);
    EXPECT_EQ(record.id.to_string(), kId);
    EXPECT_EQ(record.pub_port, 5556);
    EXPECT_EQ(record.cluster, "shop");
}

TEST(TxtRecord, OrderUnknownKeysAndKeyCaseDoNotMatter) {
    const auto result =
        parse_txt({"cluster=shop", "key=abc", "future", "PUB=5556", "ID=" + kId, "V=1"});
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(result));
    EXPECT_EQ(std::get<TxtRecord>(result).pub_port, 5556);
}

TEST(TxtRecord, FirstOccurrenceOfAKeyWins) {
    auto txt = good_txt();
    txt.push_back("pub=1");
    txt.push_back("cluster=other");
    const auto result = parse_txt(txt);
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(result));
    EXPECT_EQ(std::get<TxtRecord>(result).pub_port, 5556);
    EXPECT_EQ(std::get<TxtRecord>(result).cluster, "shop");
    // ... and a bad first value is not rescued by a good second one.
    auto bad_first = replaced(good_txt(), "pub", "pub=0");
    bad_first.push_back("pub=5556");
    EXPECT_EQ(problem_of(bad_first), TxtProblem::bad_port);
}

TEST(TxtRecord, ClusterValueMayContainEqualsSigns) {
    const auto result = parse_txt(replaced(good_txt(), "cluster", "cluster=a=b"));
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(result));
    EXPECT_EQ(std::get<TxtRecord>(result).cluster, "a=b");
}

TEST(TxtRecord, VersionMissingUnknownOrMalformedIsBadVersion) {
    EXPECT_EQ(problem_of(without(good_txt(), "v")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=2")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=0")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=one")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=1.0")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=-1")), TxtProblem::bad_version);
    EXPECT_EQ(problem_of(replaced(good_txt(), "v", "v=99999999999999999999")),
              TxtProblem::bad_version);
}

TEST(TxtRecord, VersionIsCheckedBeforeAnythingElse) {
    EXPECT_EQ(problem_of({"v=2"}), TxtProblem::bad_version);
    EXPECT_EQ(problem_of({}), TxtProblem::bad_version);
}

TEST(TxtRecord, IdMissingOrEmptyIsMissingId) {
    EXPECT_EQ(problem_of(without(good_txt(), "id")), TxtProblem::missing_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=")), TxtProblem::missing_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id")), TxtProblem::missing_id);
}

TEST(TxtRecord, IdNotAUuidOrNilIsBadId) {
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=not-a-uuid")), TxtProblem::bad_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=" + kId.substr(1))), TxtProblem::bad_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=" + kId + "0")), TxtProblem::bad_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=0190a3c4x5e6f-7a8b-9c0d-1e2f3a4b5c6d")),
              TxtProblem::bad_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6g")),
              TxtProblem::bad_id);
    EXPECT_EQ(problem_of(replaced(good_txt(), "id", "id=00000000-0000-0000-0000-000000000000")),
              TxtProblem::bad_id);
}

TEST(TxtRecord, PubMissingOrOutOfRangeIsBadPort) {
    EXPECT_EQ(problem_of(without(good_txt(), "pub")), TxtProblem::bad_port);
    for (const char* bad : {"pub=", "pub", "pub=0", "pub=65536", "pub=70000", "pub=-1", "pub=+80",
                            "pub= 80", "pub=80 ", "pub=8o", "pub=0x50", "pub=99999999999"}) {
        EXPECT_EQ(problem_of(replaced(good_txt(), "pub", bad)), TxtProblem::bad_port) << bad;
    }
    const auto max = parse_txt(replaced(good_txt(), "pub", "pub=65535"));
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(max));
    EXPECT_EQ(std::get<TxtRecord>(max).pub_port, 65535);
}

TEST(TxtRecord, ClusterMissingOrEmptyIsMissingCluster) {
    EXPECT_EQ(problem_of(without(good_txt(), "cluster")), TxtProblem::missing_cluster);
    EXPECT_EQ(problem_of(replaced(good_txt(), "cluster", "cluster=")), TxtProblem::missing_cluster);
    EXPECT_EQ(problem_of(replaced(good_txt(), "cluster", "cluster")), TxtProblem::missing_cluster);
}

TEST(TxtRecord, GarbageNeverCrashes) {
    EXPECT_EQ(problem_of({"", "=", "==", "=1", std::string("\0\xff", 2), std::string(300, 'x')}),
              TxtProblem::bad_version);
    EXPECT_EQ(problem_of({"v=1", std::string("id=\0", 4)}), TxtProblem::bad_id);
}

TEST(TxtRecord, ReasonsAreTheCounterNames) {
    EXPECT_EQ(reason(TxtProblem::bad_version), "txt.bad_version");
    EXPECT_EQ(reason(TxtProblem::missing_id), "txt.missing_id");
    EXPECT_EQ(reason(TxtProblem::bad_id), "txt.bad_id");
    EXPECT_EQ(reason(TxtProblem::bad_port), "txt.bad_port");
    EXPECT_EQ(reason(TxtProblem::missing_cluster), "txt.missing_cluster");
    EXPECT_EQ(reason(TxtProblem::bad_key), "txt.bad_key");
}

// pk1 carries the key the id derives from: a record whose key gives another id is a forgery
// (or garbage) and leads nowhere; a record without one parses (a plain node has none).
TEST(TxtRecord, AKeyMustGiveTheRecordsId) {
    const auto pair = generate_key_pair().value();
    const std::string id = "id=" + node_id_of(pair.public_key).value().to_string();
    const auto parsed =
        parse_txt({"v=1", id, "pub=5556", "cluster=shop", "pk1=" + pair.public_key});
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(parsed));
    EXPECT_EQ(std::get<TxtRecord>(parsed).public_key, pair.public_key);

    EXPECT_EQ(
        problem_of({"v=1", "id=" + kId, "pub=5556", "cluster=shop", "pk1=" + pair.public_key}),
        TxtProblem::bad_key);
    EXPECT_EQ(problem_of({"v=1", id, "pub=5556", "cluster=shop", "pk1=short"}),
              TxtProblem::bad_key);
    EXPECT_EQ(problem_of({"v=1", id, "pub=5556", "cluster=shop", "pk1"}), TxtProblem::bad_key);
    const auto keyless = parse_txt(good_txt());
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(keyless));
    EXPECT_TRUE(std::get<TxtRecord>(keyless).public_key.empty());
}

ServiceRecord node(const std::string& name, std::uint16_t inbox, std::uint16_t pub,
                   const std::string& cluster = "shop") {
    ServiceRecord self;
    self.id = *Uuid::parse(kId);
    self.name = name;
    self.cluster = cluster;
    self.inbox_port = inbox;
    self.pub_port = pub;
    return self;
}

TEST(TxtRecord, FormatThenParseRoundTrips) {
    const ServiceRecord self = node("billing-1", 5555, 5556);
    const auto txt = format_txt(self);
    EXPECT_EQ(txt, (std::vector<std::string>{"v=1", "id=" + kId, "pub=5556", "cluster=shop"}));
    const auto parsed = parse_txt(txt);
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(parsed));
    EXPECT_EQ(std::get<TxtRecord>(parsed).id, self.id);

    ServiceRecord keyed = self;
    keyed.public_key = generate_key_pair()->public_key;
    keyed.id = node_id_of(keyed.public_key).value();
    const auto with_key = parse_txt(format_txt(keyed));
    ASSERT_TRUE(std::holds_alternative<TxtRecord>(with_key));
    EXPECT_EQ(std::get<TxtRecord>(with_key).public_key, keyed.public_key);
}

TEST(TxtRecord, InstanceNameIsNameDashShortIdWithinOneLabel) {
    EXPECT_EQ(instance_name(node("billing-1", 1, 2)), "billing-1-3a4b5c6d");
    const std::string long_name(80, 'n');
    const std::string instance = instance_name(node(long_name, 1, 2));
    EXPECT_EQ(instance.size(), kMaxInstanceNameBytes);
    EXPECT_TRUE(instance.ends_with("-3a4b5c6d"));
}

TEST(TxtRecord, NodeNameComesBackFromTheInstanceName) {
    const NodeId id = *Uuid::parse(kId);
    EXPECT_EQ(node_name_from_instance("billing-1-3a4b5c6d", id), "billing-1");
    EXPECT_EQ(node_name_from_instance("billing-1-3a4b5c6d #2", id), "billing-1");
    EXPECT_EQ(node_name_from_instance("printer", id), "printer");
    EXPECT_EQ(node_name_from_instance("-3a4b5c6d", id), "-3a4b5c6d");
}

TEST(TxtRecord, TheShortIdComesBackFromTheInstanceName) {
    EXPECT_EQ(short_id_of_instance("billing-1-3a4b5c6d"), "3a4b5c6d");
    EXPECT_EQ(short_id_of_instance("billing-1-3a4b5c6d #2"), "3a4b5c6d");
    EXPECT_EQ(short_id_of_instance("-3a4b5c6d"), "3a4b5c6d");
    EXPECT_EQ(short_id_of_instance("printer"), "");
    EXPECT_EQ(short_id_of_instance("billing-3A4B5C6D"), "");  // not as instance_name() writes it
    EXPECT_EQ(short_id_of_instance("billing_3a4b5c6d"), "");
    EXPECT_EQ(short_id_of_instance("billing-3a4b5c6"), "");
    EXPECT_EQ(short_id_of_instance("3a4b5c6d"), "");
}

// docs/spec/discovery.md §6.1: of two nodes, the one whose id ends higher resolves the other.
TEST(TxtRecord, ARecordWhoseIdEndsAboveOursIsItsNodesToResolve) {
    EXPECT_TRUE(peer_resolves_first("worker-3a4b5c6e", "3a4b5c6d"));
    EXPECT_TRUE(peer_resolves_first("worker-ffffffff #3", "00000000"));
    EXPECT_FALSE(peer_resolves_first("worker-3a4b5c6c", "3a4b5c6d"));
    EXPECT_FALSE(peer_resolves_first("worker-3a4b5c6d", "3a4b5c6d"));  // two ids, one ending
    EXPECT_FALSE(peer_resolves_first("printer", "00000000"));          // named by hand
    EXPECT_FALSE(peer_resolves_first("worker-3a4b5c6e", ""));
    // Every pair has exactly one node that resolves.
    const NodeId a = Uuid::generate();
    const NodeId b = Uuid::generate();
    ServiceRecord ra;
    ra.id = a;
    ServiceRecord rb;
    rb.id = b;
    if (a.short_string() != b.short_string()) {
        EXPECT_NE(peer_resolves_first(instance_name(rb), a.short_string()),
                  peer_resolves_first(instance_name(ra), b.short_string()));
    }
}

TEST(TxtRecord, LoopbackLiterals) {
    EXPECT_TRUE(is_loopback_literal("127.0.0.1"));
    EXPECT_TRUE(is_loopback_literal("127.1.2.3"));
    EXPECT_TRUE(is_loopback_literal("::1"));
    EXPECT_TRUE(is_loopback_literal("::ffff:127.0.0.1"));
    EXPECT_FALSE(is_loopback_literal("10.77.0.1"));
    EXPECT_FALSE(is_loopback_literal("fe80::1%eth0"));
    EXPECT_FALSE(is_loopback_literal("1127.0.0.1"));
}

// --- PeerTable ------------------------------------------------------------------------------

const NodeId kSelf = *Uuid::parse("0190a3c4-0000-7000-8000-000000000001");
const NodeId kPeer = *Uuid::parse("0190a3c4-0000-7000-8000-000000000002");
const NodeId kOther = *Uuid::parse("0190a3c4-0000-7000-8000-000000000003");

InstanceKey key(const std::string& name, int interface = 1) { return {interface, 0, name}; }

Resolution resolution(const NodeId& id, const std::string& host, std::uint16_t port,
                      std::uint16_t pub, const std::string& cluster = "shop",
                      const std::string& interface = "lo") {
    return {interface,
            host,
            port,
            {"v=1", "id=" + id.to_string(), "pub=" + std::to_string(pub), "cluster=" + cluster}};
}

using Kind = DiscoveryEvent::Kind;

TEST(PeerTable, FirstResolutionIsFoundWithTheFullRecord) {
    PeerTable table(kSelf, "shop");
    const auto events =
        table.resolved(key("a-00000002"), resolution(kPeer, "127.0.0.1", 5555, 5556));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::found);
    const auto& r = events[0].record;
    EXPECT_EQ(r.id, kPeer);
    EXPECT_EQ(r.name, "a");
    EXPECT_EQ(r.cluster, "shop");
    EXPECT_EQ(r.protocol_version, 1u);
    EXPECT_EQ(r.host, "127.0.0.1");
    EXPECT_EQ(r.inbox_port, 5555);
    EXPECT_EQ(r.pub_port, 5556);
    EXPECT_EQ(r.interface, "lo");
    EXPECT_EQ(r.instance, "a-00000002");
}

TEST(PeerTable, SameDataAgainIsNotNewsAndAChangedPortIsAnUpdate) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556));
    EXPECT_TRUE(table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556)).empty());
    auto events = table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 6000, 5556));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::updated);
    EXPECT_EQ(events[0].record.inbox_port, 6000);
    events = table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 6000, 7000));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].record.pub_port, 7000);
    events = table.resolved(key("a", 2), resolution(kPeer, "10.0.0.2", 6000, 7000, "shop", "eth0"));
    EXPECT_TRUE(events.empty()) << "a second instance of a known peer is not reported";
}

TEST(PeerTable, LostOnlyWhenTheLastInstanceIsGoneWithUpdateOnTakeover) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556));
    (void)table.resolved(key("b"), resolution(kPeer, "127.0.0.1", 6666, 6667));
    auto events = table.removed(key("b"));  // not the reported one: nothing changes
    EXPECT_TRUE(events.empty());
    (void)table.resolved(key("b"), resolution(kPeer, "127.0.0.1", 6666, 6667));
    events = table.removed(key("a"));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::updated);
    EXPECT_EQ(events[0].record.inbox_port, 6666);
    EXPECT_EQ(events[0].record.instance, "b");
    events = table.removed(key("b"));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::lost);
    EXPECT_EQ(events[0].record.id, kPeer);
    EXPECT_EQ(events[0].record.inbox_port, 6666);
    EXPECT_TRUE(table.removed(key("b")).empty());
    EXPECT_TRUE(table.removed(key("never-seen")).empty());
    EXPECT_EQ(table.peer_count(), 0u);
}

TEST(PeerTable, TakeoverWithTheSameEndpointsIsSilent) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a", 1), resolution(kPeer, "127.0.0.1", 5555, 5556));
    (void)table.resolved(key("a", 3), resolution(kPeer, "127.0.0.1", 5555, 5556));
    EXPECT_TRUE(table.removed(key("a", 1)).empty());
    EXPECT_EQ(table.peer_count(), 1u);
}

TEST(PeerTable, SelfIsSkippedSilently) {
    PeerTable table(kSelf, "shop");
    EXPECT_TRUE(table.resolved(key("me"), resolution(kSelf, "127.0.0.1", 5555, 5556)).empty());
    EXPECT_TRUE(table.ignored().empty());
}

TEST(PeerTable, OtherClusterIsCountedNotReported) {
    PeerTable table(kSelf, "shop");
    EXPECT_TRUE(
        table.resolved(key("x"), resolution(kPeer, "127.0.0.1", 5555, 5556, "lab")).empty());
    EXPECT_EQ(table.ignored().at("txt.other_cluster"), 1u);
}

TEST(PeerTable, EveryMalformedReasonIsCounted) {
    PeerTable table(kSelf, "shop");
    auto bad = resolution(kPeer, "127.0.0.1", 5555, 5556);
    bad.txt = {"v=1", "pub=1", "cluster=shop"};
    EXPECT_TRUE(table.resolved(key("1"), bad).empty());
    bad.txt = {"v=1", "id=zzz", "pub=1", "cluster=shop"};
    EXPECT_TRUE(table.resolved(key("2"), bad).empty());
    bad.txt = {"v=1", "id=" + kPeer.to_string(), "pub=0", "cluster=shop"};
    EXPECT_TRUE(table.resolved(key("3"), bad).empty());
    bad.txt = {"v=7", "id=" + kPeer.to_string(), "pub=1", "cluster=shop"};
    EXPECT_TRUE(table.resolved(key("4"), bad).empty());
    bad.txt = {"v=1", "id=" + kPeer.to_string(), "pub=1"};
    EXPECT_TRUE(table.resolved(key("5"), bad).empty());
    // The SRV port is the inbox port: 0 is as bad as a bad `pub`.
    EXPECT_TRUE(table.resolved(key("6"), resolution(kPeer, "127.0.0.1", 0, 5556)).empty());
    const auto& ignored = table.ignored();
    EXPECT_EQ(ignored.at("txt.missing_id"), 1u);
    EXPECT_EQ(ignored.at("txt.bad_id"), 1u);
    EXPECT_EQ(ignored.at("txt.bad_port"), 2u);
    EXPECT_EQ(ignored.at("txt.bad_version"), 1u);
    EXPECT_EQ(ignored.at("txt.missing_cluster"), 1u);
    EXPECT_EQ(table.peer_count(), 0u);
}

TEST(PeerTable, LoopbackAddressIsOnlyUsedOnLo) {
    PeerTable table(kSelf, "shop");
    EXPECT_TRUE(
        table.resolved(key("a", 2), resolution(kPeer, "127.0.0.1", 5555, 5556, "shop", "eth0"))
            .empty());
    EXPECT_EQ(table.ignored().at("addr.loopback_not_on_lo"), 1u);
    EXPECT_EQ(table.resolved(key("a", 1), resolution(kPeer, "127.0.0.1", 5555, 5556)).size(), 1u);
}

TEST(PeerTable, AnInstanceTurningMalformedIsDropped) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556));
    auto bad = resolution(kPeer, "127.0.0.1", 5555, 5556);
    bad.txt.back() = "cluster=";
    const auto events = table.resolved(key("a"), bad);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::lost);
    EXPECT_EQ(table.ignored().at("txt.missing_cluster"), 1u);
}

TEST(PeerTable, AnInstanceNameTakenOverByAnotherNode) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556));
    const auto events = table.resolved(key("a"), resolution(kOther, "127.0.0.1", 7777, 7778));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, Kind::lost);
    EXPECT_EQ(events[0].record.id, kPeer);
    EXPECT_EQ(events[1].kind, Kind::found);
    EXPECT_EQ(events[1].record.id, kOther);
}

TEST(PeerTable, ResyncKeepsWhatComesBackAndLosesTheRest) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556));
    (void)table.resolved(key("b"), resolution(kOther, "127.0.0.1", 7777, 7778));
    table.begin_resync();
    EXPECT_TRUE(table.resolved(key("a"), resolution(kPeer, "127.0.0.1", 5555, 5556)).empty());
    const auto events = table.end_resync();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::lost);
    EXPECT_EQ(events[0].record.id, kOther);
    EXPECT_EQ(table.peer_count(), 1u);
    EXPECT_TRUE(table.end_resync().empty());
}

TEST(PeerTable, ResyncPrefersAFreshInstanceOverAStaleOne) {
    PeerTable table(kSelf, "shop");
    (void)table.resolved(key("a", 1), resolution(kPeer, "127.0.0.1", 5555, 5556));
    (void)table.resolved(key("a", 2), resolution(kPeer, "10.0.0.2", 5555, 5556, "shop", "eth0"));
    table.begin_resync();
    // Only the eth0 instance is seen again; the reported (lo) one is dropped at the end.
    (void)table.resolved(key("a", 2), resolution(kPeer, "10.0.0.2", 5555, 5556, "shop", "eth0"));
    const auto events = table.end_resync();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::updated);
    EXPECT_EQ(events[0].record.host, "10.0.0.2");
}

}  // namespace
}  // namespace peermq::detail
