// The DNS-SD record on the wire (docs/spec/discovery.md), checked with Avahi's own tools: what a
// backend announces is what avahi-browse lists; what avahi-publish announces by hand is found,
// or ignored and counted when its TXT is malformed, or left to its node while that is heard
// from; other clusters are not reported; a name collision renames the instance. Each test runs
// with the daemon client and the embedded stack.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "support/driver.hpp"
#include "support/nodes.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"
#include "system/support/backends.hpp"
#include "system/support/event_log.hpp"
#include "system/support/system_env.hpp"

namespace peermq::test {
namespace {

using namespace std::chrono_literals;
using namespace peermq::testing;

const std::string kType = "_peermq._tcp";

std::vector<std::string> valid_txt(const NodeId& id, std::uint16_t pub,
                                   const std::string& cluster) {
    return {"v=1", "id=" + id.to_string(), "pub=" + std::to_string(pub), "cluster=" + cluster};
}

class AvahiRecords : public ::testing::TestWithParam<Backend> {};

INSTANTIATE_TEST_SUITE_P(Backends, AvahiRecords,
                         ::testing::Values(Backend::daemon, Backend::embedded), BackendName());

TEST_P(AvahiRecords, AnnouncedRecordIsListedByAvahiBrowseWithItsTxt) {
    const std::string token = unique_token();
    const ServiceRecord self = make_self("browse-" + token, "c-" + token, 41201, 42201);
    auto discovery = make_backend(GetParam());
    ASSERT_NE(discovery, nullptr);
    EventLog log;
    const auto started = SteadyClock::now();
    ASSERT_TRUE(discovery->start(self, log.sink()).ok());

    const std::string instance = self.name + "-" + self.id.short_string();
    std::optional<BrowseEntry> entry;
    ASSERT_TRUE(wait_until(
        [&] {
            for (auto& e : avahi_browse(kType)) {
                if (e.name == instance && e.protocol == "IPv4") entry = e;
            }
            return entry.has_value();
        },
        kFindTimeout))
        << "avahi-browse -rpt " << kType << " does not list '" << instance << "'";
    std::printf("[timing] %s: start -> listed by avahi-browse: %.0f ms\n",
                backend_name(GetParam()).c_str(), ms_between(started, SteadyClock::now()));
    EXPECT_EQ(entry->interface, "lo");
    EXPECT_EQ(entry->address, "127.0.0.1");
    EXPECT_EQ(entry->port, self.inbox_port);
    auto has = [&](const std::string& kv) {
        return std::find(entry->txt.begin(), entry->txt.end(), kv) != entry->txt.end();
    };
    EXPECT_TRUE(has("v=1"));
    EXPECT_TRUE(has("id=" + self.id.to_string()));
    EXPECT_TRUE(has("pub=" + std::to_string(self.pub_port)));
    EXPECT_TRUE(has("cluster=" + self.cluster));
    EXPECT_EQ(entry->txt.size(), 4u);
    discovery->stop();
}

TEST_P(AvahiRecords, HandPublishedRecordIsFoundAndLostWhenWithdrawn) {
    const std::string token = unique_token();
    const std::string cluster = "c-" + token;
    const NodeId id = Uuid::generate();
    const std::string instance = "manual-" + token + "-" + id.short_string();

    auto discovery = make_backend(GetParam());
    ASSERT_NE(discovery, nullptr);
    EventLog log;
    ASSERT_TRUE(
        discovery->start(make_self("observer-" + token, cluster, 41202, 42202), log.sink()).ok());

    const auto published_at = SteadyClock::now();
    auto publisher = publish_by_hand(instance, 43210, valid_txt(id, 43211, cluster));
    const auto found = log.wait_found(id, kFindTimeout);
    ASSERT_TRUE(found) << log.dump();
    EXPECT_EQ(found->event.record.host, "127.0.0.1");
    EXPECT_EQ(found->event.record.interface, "lo");
    EXPECT_EQ(found->event.record.inbox_port, 43210);
    EXPECT_EQ(found->event.record.pub_port, 43211);
    EXPECT_EQ(found->event.record.name, "manual-" + token);
    EXPECT_EQ(found->event.record.instance, instance);

    const auto withdrawn_at = SteadyClock::now();
    publisher->signal(SIGTERM);
    const auto lost = log.wait_lost(id, kFindTimeout);
    ASSERT_TRUE(lost) << log.dump();
    std::printf("[timing] %s observer: avahi-publish -> found %.0f ms; withdrawn -> lost %.0f ms\n",
                backend_name(GetParam()).c_str(), ms_between(published_at, found->at),
                ms_between(withdrawn_at, lost->at));
    discovery->stop();
}

// docs/spec/discovery.md §6.1: of two nodes, the one whose id ends higher resolves the other's
// record and greets it; a node leaves a record whose id ends above its own to that record's node,
// and resolves it only if it does not hear from that node 5 s after finding it.
TEST_P(AvahiRecords, ARecordWhoseIdEndsAboveOursIsResolvedOnlyIfItsNodeIsNotHeardFrom) {
    const std::string token = unique_token();
    const std::string cluster = "c-" + token;
    const ServiceRecord self = make_self("pairs-" + token, cluster, 41204, 42204);
    const auto id_ending = [&](bool above) {
        for (;;) {
            const NodeId id = Uuid::generate();
            if (id.short_string() == self.id.short_string()) continue;
            if ((id.short_string() > self.id.short_string()) == above) return id;
        }
    };
    const NodeId lower = id_ending(false);
    const NodeId greeted = id_ending(true);  // its node is heard from
    const NodeId silent = id_ending(true);

    auto discovery = make_backend(GetParam());
    ASSERT_NE(discovery, nullptr);
    std::atomic<int> asked{0};
    discovery->set_heard_from([&, greeted_short = greeted.short_string()](std::string_view id) {
        ++asked;
        return id == greeted_short;
    });
    EventLog log;
    ASSERT_TRUE(discovery->start(self, log.sink()).ok());

    const auto published_at = SteadyClock::now();
    std::vector<std::unique_ptr<ChildProcess>> publishers;
    std::uint16_t port = 43220;
    for (const NodeId& id : {lower, greeted, silent}) {
        publishers.push_back(publish_by_hand("peer-" + token + "-" + id.short_string(), port,
                                             valid_txt(id, port + 1, cluster)));
        port += 2;
    }
    const auto found_lower = log.wait_found(lower, kFindTimeout);
    ASSERT_TRUE(found_lower) << log.dump();
    const auto found_silent = log.wait_found(silent, kFindTimeout + 5s);
    ASSERT_TRUE(found_silent) << log.dump();
    // Found by the browser at the earliest when published; then left to its node for 5 s.
    EXPECT_GE(ms_between(published_at, found_silent->at), 5000.0);
    // The greeted one was asked about with the silent one, and is never resolved.
    EXPECT_FALSE(log.wait_found(greeted, 2s)) << log.dump();
    EXPECT_GE(asked.load(), 2);
    std::printf(
        "[timing] %s: published -> found: id ending below ours %.0f ms, above ours and "
        "not heard from %.0f ms\n",
        backend_name(GetParam()).c_str(), ms_between(published_at, found_lower->at),
        ms_between(published_at, found_silent->at));
    discovery->stop();
}

TEST_P(AvahiRecords, MalformedTxtIsIgnoredWithACountedReason) {
    const std::string token = unique_token();
    const std::string cluster = "c-" + token;
    const std::string id = "id=" + Uuid::generate().to_string();
    struct Case {
        std::string reason;
        std::vector<std::string> txt;
    };
    const std::vector<Case> cases = {
        {"txt.missing_id", {"v=1", "pub=9", "cluster=" + cluster}},
        {"txt.bad_id", {"v=1", "id=not-a-uuid", "pub=9", "cluster=" + cluster}},
        {"txt.bad_port", {"v=1", id, "pub=70000", "cluster=" + cluster}},
        {"txt.bad_version", {"v=2", id, "pub=9", "cluster=" + cluster}},
        {"txt.missing_cluster", {"v=1", id, "pub=9"}},
        {"txt.other_cluster", {"v=1", id, "pub=9", "cluster=elsewhere-" + token}},
    };

    auto discovery = make_backend(GetParam());
    ASSERT_NE(discovery, nullptr);
    EventLog log;
    ASSERT_TRUE(
        discovery->start(make_self("judge-" + token, cluster, 41203, 42203), log.sink()).ok());

    std::vector<std::unique_ptr<ChildProcess>> publishers;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        publishers.push_back(
            publish_by_hand("bad" + std::to_string(i) + "-" + token, 9, cases[i].txt));
    }
    // And one good record, so that "nothing reported" cannot pass just because nothing ran.
    const NodeId good = Uuid::generate();
    publishers.push_back(publish_by_hand("good-" + token, 9, valid_txt(good, 9, cluster)));
    ASSERT_TRUE(log.wait_found(good, kFindTimeout)) << log.dump();

    for (const auto& c : cases) {
        EXPECT_TRUE(wait_until(
            [&] {
                const auto ignored = discovery->ignored();
                const auto it = ignored.find(c.reason);
                return it != ignored.end() && it->second >= 1;
            },
            kFindTimeout))
            << "no record counted as " << c.reason;
    }
    for (const auto& e : log.events()) {
        EXPECT_EQ(e.event.record.id, good)
            << "a malformed record was reported: " << describe(e.event);
    }
    for (const auto& [reason, count] : discovery->ignored()) {
        std::printf("  ignored %s=%llu\n", reason.c_str(), static_cast<unsigned long long>(count));
    }
    discovery->stop();
}

TEST_P(AvahiRecords, RecordsOfAnotherClusterAreNotReported) {
    const std::string token = unique_token();
    auto a1 = make_backend(GetParam());
    auto a2 = make_backend(GetParam());
    auto b1 = make_backend(GetParam());
    ASSERT_TRUE(a1 && a2 && b1);
    const ServiceRecord a1_self = make_self("a1-" + token, "a-" + token, 41204, 42204);
    const ServiceRecord a2_self = make_self("a2-" + token, "a-" + token, 41205, 42205);
    const ServiceRecord b1_self = make_self("b1-" + token, "b-" + token, 41206, 42206);
    EventLog a1_log, a2_log, b1_log;
    ASSERT_TRUE(a1->start(a1_self, a1_log.sink()).ok());
    ASSERT_TRUE(a2->start(a2_self, a2_log.sink()).ok());
    ASSERT_TRUE(b1->start(b1_self, b1_log.sink()).ok());

    ASSERT_TRUE(a1_log.wait_found(a2_self.id, kFindTimeout)) << a1_log.dump();
    ASSERT_TRUE(a2_log.wait_found(a1_self.id, kFindTimeout)) << a2_log.dump();
    // b1 sees both records of cluster a, and counts them instead of reporting them.
    EXPECT_TRUE(wait_until(
        [&] {
            const auto ignored = b1->ignored();
            const auto it = ignored.find("txt.other_cluster");
            return it != ignored.end() && it->second >= 2;
        },
        kFindTimeout));
    EXPECT_TRUE(wait_until(
        [&] {
            const auto ignored = a1->ignored();
            const auto it = ignored.find("txt.other_cluster");
            return it != ignored.end() && it->second >= 1;
        },
        kFindTimeout));
    EXPECT_TRUE(b1_log.events().empty()) << b1_log.dump();
    for (const auto& e : a1_log.events())
        EXPECT_EQ(e.event.record.id, a2_self.id) << describe(e.event);
    for (const auto& e : a2_log.events())
        EXPECT_EQ(e.event.record.id, a1_self.id) << describe(e.event);
    a1->stop();
    a2->stop();
    b1->stop();
}

TEST_P(AvahiRecords, NameCollisionRenamesTheInstanceAndKeepsTheNode) {
    const std::string token = unique_token();
    const std::string cluster = "c-" + token;
    const ServiceRecord self = make_self("twin-" + token, cluster, 41207, 42207);
    const std::string instance = self.name + "-" + self.id.short_string();
    // Someone else (another cluster) already holds the exact instance name.
    auto squatter = publish_by_hand(instance, 9, valid_txt(Uuid::generate(), 9, "other-" + token));

    auto discovery = make_backend(GetParam());
    auto observer = make_backend(Backend::daemon);
    ASSERT_TRUE(discovery && observer);
    EventLog log, observer_log;
    ASSERT_TRUE(
        observer->start(make_self("seer-" + token, cluster, 41208, 42208), observer_log.sink())
            .ok());
    ASSERT_TRUE(discovery->start(self, log.sink()).ok());

    const auto found = observer_log.wait_found(self.id, kFindTimeout);
    ASSERT_TRUE(found) << observer_log.dump();
    EXPECT_NE(found->event.record.instance, instance);
    EXPECT_TRUE(found->event.record.instance.starts_with(instance + " #"))
        << found->event.record.instance;
    EXPECT_EQ(found->event.record.name, self.name);
    EXPECT_EQ(found->event.record.inbox_port, self.inbox_port);
    EXPECT_EQ(found->event.record.pub_port, self.pub_port);
    discovery->stop();
    observer->stop();
}

// A node seen as two instances (e.g. briefly after a restart under a new name) is reported once;
// when the instance it was reported from goes, the other takes over and the node is `updated`.
TEST(AvahiRecordsDaemon, SecondInstanceOfANodeTakesOverWithAnUpdate) {
    const std::string token = unique_token();
    const std::string cluster = "c-" + token;
    const NodeId id = Uuid::generate();
    auto discovery = make_backend(Backend::daemon);
    ASSERT_NE(discovery, nullptr);
    EventLog log;
    ASSERT_TRUE(
        discovery->start(make_self("watch-" + token, cluster, 41209, 42209), log.sink()).ok());

    auto first = publish_by_hand("one-" + token, 43001, valid_txt(id, 44001, cluster));
    const auto found = log.wait_found(id, kFindTimeout);
    ASSERT_TRUE(found) << log.dump();
    EXPECT_EQ(found->event.record.inbox_port, 43001);
    auto second = publish_by_hand("two-" + token, 43002, valid_txt(id, 44002, cluster));
    // The daemon has resolved the second instance before avahi-browse shows it; the backend's
    // own resolver gets it in the same moment. (PeerTable unit tests pin the exact sequence.)
    ASSERT_TRUE(wait_until(
        [&] {
            for (const auto& e : avahi_browse(kType)) {
                if (e.name == "two-" + token) return true;
            }
            return false;
        },
        kFindTimeout));

    const auto withdrawn_at = SteadyClock::now();
    first->signal(SIGTERM);
    ASSERT_TRUE(log.wait(
        [&](const std::vector<TimedEvent>& events) {
            return !events.empty() && events.back().at >= withdrawn_at &&
                   events.back().event.kind != DiscoveryEvent::Kind::lost &&
                   events.back().event.record.inbox_port == 43002;
        },
        kFindTimeout))
        << log.dump();
    const auto events = log.events();
    EXPECT_EQ(events.back().event.kind, DiscoveryEvent::Kind::updated) << log.dump();
    EXPECT_EQ(events.back().event.record.pub_port, 44002);

    second->signal(SIGTERM);
    EXPECT_TRUE(log.wait_event(id, DiscoveryEvent::Kind::lost, withdrawn_at, kFindTimeout))
        << log.dump();
    discovery->stop();
}

}  // namespace
}  // namespace peermq::test
