// The liveness rules of the peer liveness (actor/peer_liveness.hpp) alone, with time given by the
// test: suspect after 1.5 heartbeat intervals of silence, down after peer_timeout, back alive
// when heard, HELLOs until a peer answers, heartbeats to a quiet link, forgetting (wire.md §7).
#include "actor/peer_liveness.hpp"

#include <algorithm>

#include <gtest/gtest.h>

namespace peermq::detail {
namespace {

using namespace std::chrono_literals;

class PeerLivenessTest : public ::testing::Test {
protected:
    PeerLivenessTest() { table.report_events(true); }

    // A peer whose HELLO was read at `t0`: alive.
    Peer& alive_peer(bool configured = false) {
        auto peer = std::make_unique<Peer>();
        peer->id = NodeId::generate();
        peer->hello_seen = true;
        peer->confirmed = true;
        peer->configured = configured;
        peer->last_sent = t0;
        Peer& added = table.directory().add(std::move(peer));
        table.heard(added, t0, 0, fx);
        fx.clear();
        return added;
    }
    static bool has(const std::vector<Peer*>& list, const Peer& peer) {
        return std::find(list.begin(), list.end(), &peer) != list.end();
    }
    PeerLiveness::Effects tick(Clock::Steady now) {
        fx.clear();
        table.tick(now, fx);
        return fx;
    }

    Logger log{"peer-test", LogLevel::off, LogFormat::logfmt, [](const LogRecord&) {}};
    PeerLiveness table{PeerLiveness::Timing{1000ms, 3000ms}, log};
    PeerLiveness::Effects fx;
    const Clock::Steady t0 = Clock::Steady(std::chrono::hours(1));
};

TEST_F(PeerLivenessTest, APeerBecomesAliveWhenItsHelloIsKnownAndItIsHeard) {
    auto raw = std::make_unique<Peer>();
    raw->id = NodeId::generate();
    Peer& peer = table.directory().add(std::move(raw));
    table.heard(peer, t0, 0, fx);
    EXPECT_EQ(peer.state, PeerState::connecting) << "heard, but its HELLO is not known yet";
    peer.hello_seen = true;
    table.heard(peer, t0, 0, fx);
    EXPECT_EQ(peer.state, PeerState::alive);
    ASSERT_EQ(fx.events.size(), 1u);
    EXPECT_EQ(fx.events[0].previous, PeerState::connecting);
    EXPECT_EQ(fx.events[0].peer.state, PeerState::alive);
    EXPECT_TRUE(fx.consumers_changed);
    EXPECT_TRUE(fx.hello.empty()) << "a peer that was never down is not greeted again";
}

TEST_F(PeerLivenessTest, SilenceMakesAPeerSuspectThenDownAndHearingItBringsItBack) {
    Peer& peer = alive_peer();
    EXPECT_EQ(table.next_check(t0), t0 + 250ms) << "a quarter heartbeat at most";
    EXPECT_EQ(table.next_check(t0 + 1400ms), t0 + 1500ms) << "exactly when it turns suspect";

    tick(t0 + 1500ms);
    EXPECT_EQ(peer.state, PeerState::alive) << "1.5 intervals is not yet more than 1.5";
    auto fx1 = tick(t0 + 1501ms);
    EXPECT_EQ(peer.state, PeerState::suspect);
    EXPECT_TRUE(fx1.down.empty()) << "a suspect keeps its work in flight";
    EXPECT_EQ(table.next_check(t0 + 2900ms), t0 + 3000ms) << "exactly when it goes down";

    auto fx2 = tick(t0 + 3000ms);
    EXPECT_EQ(peer.state, PeerState::down);
    EXPECT_TRUE(has(fx2.down, peer)) << "its work in flight goes elsewhere";
    EXPECT_TRUE(has(fx2.reset, peer)) << "its link is made anew";
    EXPECT_TRUE(fx2.consumers_changed);
    EXPECT_TRUE(fx2.forget.empty()) << "a confirmed peer is kept a while";
    ASSERT_FALSE(fx2.events.empty());
    EXPECT_EQ(fx2.events.back().previous, PeerState::suspect);

    auto fx3 = tick(t0 + 3100ms);
    EXPECT_TRUE(has(fx3.hello, peer)) << "a down peer is sent HELLOs until it answers";

    fx.clear();
    table.heard(peer, t0 + 4000ms, 0, fx);
    EXPECT_EQ(peer.state, PeerState::alive) << "healed";
    EXPECT_TRUE(has(fx.hello, peer)) << "greeted again: it may have forgotten us";
    EXPECT_TRUE(fx.consumers_changed);
}

// libzmq gives a link up for good when the other end refuses its handshake (a key it no longer
// admits): a down peer that is kept gets fresh links every kRelinkDownPeer, not only once.
TEST_F(PeerLivenessTest, ADownPeerThatIsKeptHasItsLinksOpenedAnewNowAndThen) {
    Peer& peer = alive_peer(true);
    auto down = tick(t0 + 3000ms);
    ASSERT_EQ(peer.state, PeerState::down);
    EXPECT_TRUE(has(down.reset, peer));
    EXPECT_FALSE(has(tick(t0 + 3000ms + PeerLiveness::kRelinkDownPeer - 1ms).reset, peer));
    EXPECT_TRUE(has(tick(t0 + 3000ms + PeerLiveness::kRelinkDownPeer).reset, peer));
    EXPECT_FALSE(has(tick(t0 + 3000ms + PeerLiveness::kRelinkDownPeer + 1ms).reset, peer));
    EXPECT_TRUE(has(tick(t0 + 3000ms + 2 * PeerLiveness::kRelinkDownPeer).reset, peer));
}

TEST_F(PeerLivenessTest, AQuietLinkGetsAHeartbeatEveryInterval) {
    Peer& peer = alive_peer();
    table.heard(peer, t0 + 900ms, 0, fx);
    EXPECT_TRUE(tick(t0 + 999ms).heartbeat.empty());
    EXPECT_TRUE(has(tick(t0 + 1000ms).heartbeat, peer));
    peer.last_sent = t0 + 1000ms;  // it was sent
    EXPECT_TRUE(tick(t0 + 1500ms).heartbeat.empty());
}

TEST_F(PeerLivenessTest, ByeIsDownAtOnceWithoutReopeningTheLink) {
    Peer& peer = alive_peer();
    table.said_bye(peer, t0 + 10ms, fx);
    EXPECT_EQ(peer.state, PeerState::down);
    EXPECT_TRUE(has(fx.down, peer));
    EXPECT_TRUE(fx.reset.empty());
    fx.clear();
    table.said_bye(peer, t0 + 20ms, fx);
    EXPECT_TRUE(fx.empty()) << "a second BYE changes nothing";
}

TEST_F(PeerLivenessTest, DownPeersAreForgottenUnlessConfigured) {
    Peer& learnt = alive_peer();
    Peer& configured = alive_peer(/*configured=*/true);
    auto unconfirmed_owned = std::make_unique<Peer>();
    unconfirmed_owned->id = NodeId::generate();
    unconfirmed_owned->hello_seen = true;
    Peer& unconfirmed = table.directory().add(std::move(unconfirmed_owned));
    table.heard(unconfirmed, t0, 0, fx);

    auto at_down = tick(t0 + 3000ms);
    EXPECT_TRUE(has(at_down.forget, unconfirmed)) << "its link never came up: forgotten at once";
    EXPECT_FALSE(has(at_down.forget, learnt));
    auto later = tick(t0 + 3000ms + PeerLiveness::kForgetDownPeer);
    EXPECT_TRUE(has(later.forget, learnt));
    EXPECT_FALSE(has(later.forget, configured)) << "configured peers are kept while down";
}

TEST_F(PeerLivenessTest, AConnectingPeerIsSentHellosButNeverTimesOut) {
    auto raw = std::make_unique<Peer>();
    raw->configured = true;
    raw->last_sent = t0;
    Peer& peer = table.directory().add(std::move(raw));
    EXPECT_TRUE(tick(t0 + 500ms).hello.empty());
    EXPECT_TRUE(has(tick(t0 + 1000ms).hello, peer));
    tick(t0 + 1h);
    EXPECT_EQ(peer.state, PeerState::connecting);
    peer.hello_owed = true;  // its link refused our HELLO
    EXPECT_TRUE(has(tick(t0 + 1h + 1ms).hello, peer)) << "owed: sent at the next tick";
}

}  // namespace
}  // namespace peermq::detail
