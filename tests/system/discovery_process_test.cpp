// Discovery across processes and across failures: probe processes find each other and notice a
// SIGKILLed one; the daemon client survives an avahi-daemon restart; bad options and a missing
// daemon give clear errors. Spec: docs/spec/discovery.md.
#include <signal.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

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

// automatic() says which backend it chose at info (peermq/log.hpp); the default level is warn.
const std::string kLogInfo = "PEERMQ_LOG=info";

std::unique_ptr<ChildProcess> serve(Backend backend, const std::string& name,
                                    const std::string& cluster, const NodeId& id,
                                    std::uint16_t inbox, std::uint16_t pub) {
    auto child = std::make_unique<ChildProcess>(
        driver_argv("discovery") + Args{"serve", "--discovery", discovery_name(backend),
                                        "--interface", "lo", "--name", name, "--cluster", cluster,
                                        "--id", id.to_string(), "--inbox", std::to_string(inbox),
                                        "--pub", std::to_string(pub)});
    EXPECT_TRUE(child->wait_for_line_containing("started backend=", 15s)) << child->output();
    return child;
}

TEST(DiscoveryProcesses, ProbesFindEachOtherAndASigkilledOneIsLost) {
    const std::string token = unique_token();
    const std::string cluster = "p-" + token;
    const NodeId id1 = Uuid::generate();
    const NodeId id2 = Uuid::generate();
    const NodeId id3 = Uuid::generate();
    EventLog log;
    auto observer = make_backend(Backend::daemon);
    ASSERT_NE(observer, nullptr);
    ASSERT_TRUE(observer->start(make_self("obs-" + token, cluster, 41301, 42301), log.sink()).ok());

    auto p1 = serve(Backend::daemon, "p1-" + token, cluster, id1, 43301, 44301);
    auto p2 = serve(Backend::daemon, "p2-" + token, cluster, id2, 43302, 44302);
    auto p3 = serve(Backend::embedded, "p3-" + token, cluster, id3, 43303, 44303);
    for (const auto& id : {id1, id2, id3}) {
        ASSERT_TRUE(log.wait_found(id, kFindTimeout)) << log.dump();
    }
    ASSERT_TRUE(p1->wait_for_line_containing("found id=" + id2.to_string(), kFindTimeout))
        << p1->output();
    ASSERT_TRUE(p1->wait_for_line_containing("found id=" + id3.to_string(), kFindTimeout))
        << p1->output();
    ASSERT_TRUE(p3->wait_for_line_containing("found id=" + id1.to_string(), kFindTimeout))
        << p3->output();
    const auto found_line =
        p3->wait_for_line_containing("found id=" + id2.to_string(), kFindTimeout);
    ASSERT_TRUE(found_line) << p3->output();
    EXPECT_NE(found_line->find("host=127.0.0.1 inbox=43302 pub=44302 iface=lo"), std::string::npos)
        << *found_line;

    // SIGKILL: the daemon notices its D-Bus client is gone and withdraws the record (goodbye).
    const auto killed_at = SteadyClock::now();
    p2->signal(SIGKILL);
    const auto lost = log.wait_lost(id2, kFindTimeout);
    ASSERT_TRUE(lost) << log.dump();
    ASSERT_TRUE(p3->wait_for_line_containing("lost id=" + id2.to_string(), kFindTimeout))
        << p3->output();
    std::printf(
        "[timing] daemon-backend process SIGKILLed -> lost: %.0f ms (in-process observer)\n",
        ms_between(killed_at, lost->at));

    // A clean exit of the embedded probe (stdin closed) withdraws its record too.
    const auto closed_at = SteadyClock::now();
    p3->close_stdin();
    ASSERT_TRUE(p3->wait_for_line_containing("stopped", 15s)) << p3->output();
    const auto lost3 = log.wait_lost(id3, kFindTimeout);
    ASSERT_TRUE(lost3) << log.dump();
    std::printf("[timing] embedded-backend process stopped -> lost: %.0f ms\n",
                ms_between(closed_at, lost3->at));
    EXPECT_EQ(p3->wait(10s), 0);
    p1->close_stdin();
    EXPECT_EQ(p1->wait(10s), 0) << p1->output();
    observer->stop();
}

TEST(AvahiDaemonRestart, DaemonClientAnnouncesAndBrowsesAgainAfterARestart) {
    if (!our_avahi_daemon_pid()) {
        GTEST_SKIP() << "the running avahi-daemon was not started by scripts/avahi-lo.sh (state "
                     << avahi_state_dir() << "): not restarting someone else's daemon";
    }
    const std::string token = unique_token();
    const std::string cluster = "r-" + token;
    const ServiceRecord x_self = make_self("x-" + token, cluster, 41401, 42401);
    const ServiceRecord w_self = make_self("w-" + token, cluster, 41402, 42402);
    const ServiceRecord o_self = make_self("o-" + token, cluster, 41403, 42403);
    auto x = make_backend(Backend::daemon);
    auto w = make_backend(Backend::daemon);
    auto o = make_backend(Backend::embedded);  // independent of the daemon: it watches the wire
    ASSERT_TRUE(x && w && o);
    EventLog x_log, w_log, o_log;
    ASSERT_TRUE(x->start(x_self, x_log.sink()).ok());
    ASSERT_TRUE(w->start(w_self, w_log.sink()).ok());
    ASSERT_TRUE(o->start(o_self, o_log.sink()).ok());
    ASSERT_TRUE(o_log.wait_found(x_self.id, kFindTimeout)) << o_log.dump();
    ASSERT_TRUE(w_log.wait_found(x_self.id, kFindTimeout)) << w_log.dump();

    const auto restart_at = SteadyClock::now();
    const auto restarted = run_process({avahi_lo_script(), "restart", avahi_state_dir()}, 60s);
    ASSERT_EQ(restarted.exit_code, 0) << restarted.output;
    const auto up_at = SteadyClock::now();

    // The old daemon said goodbye for x on its way out; x must announce itself again.
    const auto gone =
        o_log.wait_event(x_self.id, DiscoveryEvent::Kind::lost, restart_at, kFindTimeout);
    EXPECT_TRUE(gone) << o_log.dump();
    const auto back = o_log.wait_event(x_self.id, DiscoveryEvent::Kind::found, restart_at, 30s);
    ASSERT_TRUE(back) << "x was not announced again after the restart:\n" << o_log.dump();
    const std::string instance = x_self.name + "-" + x_self.id.short_string();
    EXPECT_TRUE(wait_until(
        [&] {
            for (const auto& e : avahi_browse("_peermq._tcp")) {
                if (e.name == instance) return true;
            }
            return false;
        },
        kFindTimeout))
        << "avahi-browse does not list " << instance << " after the restart";
    std::printf(
        "[timing] avahi-daemon restart took %.0f ms; back up -> x announced again: %.0f ms\n",
        ms_between(restart_at, up_at), ms_between(up_at, back->at));

    // Both daemon clients browse again: a node that appears after the restart is found.
    auto z = make_backend(Backend::daemon);
    ASSERT_NE(z, nullptr);
    EventLog z_log;
    const ServiceRecord z_self = make_self("z-" + token, cluster, 41404, 42404);
    ASSERT_TRUE(z->start(z_self, z_log.sink()).ok());
    EXPECT_TRUE(w_log.wait_found(z_self.id, kFindTimeout)) << w_log.dump();
    EXPECT_TRUE(x_log.wait_found(z_self.id, kFindTimeout)) << x_log.dump();
    // w kept x through the restart: re-finding it with the same record is not news.
    for (const auto& e : w_log.events()) {
        if (e.event.record.id == x_self.id) {
            EXPECT_EQ(e.event.kind, DiscoveryEvent::Kind::found) << describe(e.event);
        }
    }
    z->stop();
    x->stop();
    w->stop();
    o->stop();
}

TEST(DiscoveryOptions, EmbeddedRefusesToStartWithoutAnInterfaceAllowList) {
    auto made = discovery::embedded(discovery::AvahiOptions{})();
    ASSERT_FALSE(made.ok());
    EXPECT_EQ(made.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(made.status().message().find("interface allow-list"), std::string::npos)
        << made.status().message();
}

TEST(DiscoveryOptions, UnknownInterfaceAndBadServiceTypeAreClearErrors) {
    discovery::AvahiOptions missing;
    missing.interfaces = {"peermq-no-such0"};
    for (auto factory : {discovery::embedded(missing), discovery::avahi_daemon(missing)}) {
        auto made = factory();
        ASSERT_FALSE(made.ok());
        EXPECT_EQ(made.status().code(), ErrorCode::unknown_interface);
        EXPECT_NE(made.status().message().find("peermq-no-such0"), std::string::npos);
    }

    discovery::AvahiOptions bad_type = loopback_options();
    bad_type.service_type = "peermq";
    for (auto factory : {discovery::embedded(bad_type), discovery::avahi_daemon(bad_type)}) {
        auto result = factory();
        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.status().code(), ErrorCode::invalid_argument);
    }
}

TEST(DiscoveryOptions, StartingTwiceIsAnErrorNotACrash) {
    for (Backend backend : {Backend::daemon, Backend::embedded}) {
        auto discovery = make_backend(backend);
        ASSERT_NE(discovery, nullptr);
        EventLog log;
        const ServiceRecord self = make_self("twice-" + unique_token(), "twice", 41501, 42501);
        ASSERT_TRUE(discovery->start(self, log.sink()).ok());
        EXPECT_FALSE(discovery->start(self, log.sink()).ok());
        discovery->stop();
        discovery->stop();  // idempotent
    }
}

TEST(DiscoveryOptions, MissingDaemonIsUnavailableAndAutomaticSaysItFallsBack) {
    // libdbus reads the bus address once per process: ask in child processes.
    const auto daemon = run_process(
        driver_argv("discovery") + Args{"check", "--discovery", "avahi", "--interface", "lo"}, 30s,
        {kNoBus});
    EXPECT_EQ(daemon.exit_code, 3) << daemon.output;
    EXPECT_NE(daemon.output.find("error unavailable: avahi-daemon does not answer on D-Bus: "),
              std::string::npos)
        << daemon.output;

    const auto fallback = run_process(
        driver_argv("discovery") + Args{"check", "--discovery", "auto", "--interface", "lo"}, 30s,
        {kNoBus, kLogInfo});
    EXPECT_EQ(fallback.exit_code, 0) << fallback.output;
    EXPECT_NE(fallback.output.find("ok backend=embedded"), std::string::npos) << fallback.output;
    EXPECT_NE(fallback.output.find("level=info component=discovery msg=\"using the embedded Avahi "
                                   "stack on interfaces lo because avahi-daemon does not answer on "
                                   "D-Bus"),
              std::string::npos)
        << fallback.output;

    // No daemon and no allow-list: neither backend may run, and the error says why.
    const auto neither =
        run_process(driver_argv("discovery") + Args{"check", "--discovery", "auto"}, 30s, {kNoBus});
    EXPECT_EQ(neither.exit_code, 3) << neither.output;
    EXPECT_NE(neither.output.find("error invalid_argument:"), std::string::npos) << neither.output;

    // With the daemon there, automatic() takes it and says so.
    const auto normal = run_process(
        driver_argv("discovery") + Args{"check", "--discovery", "auto", "--interface", "lo"}, 30s,
        {kLogInfo});
    EXPECT_EQ(normal.exit_code, 0) << normal.output;
    EXPECT_NE(normal.output.find("ok backend=avahi"), std::string::npos) << normal.output;
    EXPECT_NE(
        normal.output.find("level=info component=discovery msg=\"using avahi-daemon over D-Bus"),
        std::string::npos)
        << normal.output;
}

}  // namespace
}  // namespace peermq::test
