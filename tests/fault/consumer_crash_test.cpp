// A consumer process SIGKILLed in the middle of a stream of messages (guarantees.md, "receiver
// crash"; reliability.md §6 redirect): nothing is lost, and the only duplicates are messages the
// dead consumer had handled without its ACK reaching the sender.
#include "fault_support.hpp"

namespace peermq::fault {
namespace {

constexpr long long kMessages = 20'000;
constexpr std::uint32_t kPrefetch = 256;
const std::string kQueue = "crash";

struct GuaranteeCase {
    const char* name;
    Guarantee guarantee;
};
void PrintTo(const GuaranteeCase& c, std::ostream* out) { *out << c.name; }

class ConsumerCrashTest : public ::testing::TestWithParam<GuaranteeCase> {};

TEST_P(ConsumerCrashTest, KilledConsumerLosesNothingAndDuplicatesOnlyWhatItHadTaken) {
    TempDir dir;
    auto producer = make_node(node_options("producer"));
    std::mutex events_mutex;
    std::vector<std::string> downs;  // every consumer the producer saw go down
    producer.on_peer_event([&](const PeerEvent& e) {
        if (e.peer.state != PeerState::down) return;
        std::lock_guard lock(events_mutex);
        downs.push_back(e.peer.name);
    });

    const std::vector<std::string> names = {"victim", "survivor1", "survivor2"};
    std::vector<std::unique_ptr<TestNode>> consumers;
    for (const auto& name : names) {
        // ~200 µs of work per message: the stream takes seconds, so the kill lands mid-way.
        consumers.push_back(std::make_unique<TestNode>(
            consumer_args(name, kQueue, dir.file(name + ".log"), producer.address()) +
            std::vector<std::string>{"--prefetch", std::to_string(kPrefetch), "--handle-delay-us",
                                     "200"}));
        ASSERT_TRUE(consumers.back()->ready()) << name << " did not start";
    }
    ASSERT_TRUE(wait_until([&] { return sees(producer, names, kQueue); }, 15s));

    auto queue = producer.queue(kQueue, {.guarantee = GetParam().guarantee}).value();
    for (long long i = 0; i < kMessages; ++i) ASSERT_TRUE(queue.send(i).ok());

    // Kill the victim once it has really worked on the stream, well before the stream ends.
    const std::string victim_log = dir.file("victim.log");
    ASSERT_TRUE(wait_until([&] { return read_log(victim_log).size() >= 1500; }, 60s))
        << describe(queue_stats(producer, kQueue));
    consumers[0]->kill(SIGKILL);
    consumers[0]->process().wait();
    const auto at_kill = queue_stats(producer, kQueue);
    ASSERT_LT(at_kill.acked, static_cast<std::uint64_t>(kMessages))
        << "the stream was over before the kill; the test proves nothing";

    // Every message is settled as acked exactly once, none dead-lettered, nothing left behind.
    EXPECT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, kQueue);
            return s.acked == static_cast<std::uint64_t>(kMessages) && s.in_flight == 0 &&
                   s.depth == 0;
        },
        90s))
        << describe(queue_stats(producer, kQueue));
    const auto final_stats = queue_stats(producer, kQueue);
    EXPECT_EQ(final_stats.dead_lettered, 0u);
    // The victim held unacked messages when it died: they were moved on, not waited out.
    EXPECT_GT(final_stats.redelivered, 0u) << describe(final_stats);

    // Survivors are idle once each DATA frame they got was handled (or dropped as a duplicate):
    // only then are their logs complete.
    for (std::size_t i = 1; i < consumers.size(); ++i) {
        EXPECT_TRUE(wait_until(
            [&] {
                auto s = consumers[i]->stats();
                if (!s) return false;
                const auto received = (*s)[kQueue + ".received"];
                return received > 0 &&
                       received == (*s)[kQueue + ".delivered"] + (*s)[kQueue + ".duplicates"] +
                                       (*s)[kQueue + ".expired"] &&
                       read_log(dir.file(names[i] + ".log")).size() ==
                           (*s)[kQueue + ".delivered"] - (*s)[kQueue + ".handler_errors"];
            },
            30s))
            << names[i] << " did not settle";
    }

    std::map<std::string, std::map<long long, int>> per_log;
    std::map<long long, int> all;
    for (const auto& name : names) {
        per_log[name] = counts(read_log(dir.file(name + ".log")));
        for (const auto& [v, n] : per_log[name]) all[v] += n;
    }
    // At least once: the union of the logs is exactly 0..kMessages-1.
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kMessages));
    EXPECT_EQ(all.begin()->first, 0);
    EXPECT_EQ(all.rbegin()->first, kMessages - 1);

    // No survivor handled a message twice.
    for (const auto& name : {names[1], names[2]}) {
        for (const auto& [v, n] : per_log[name]) {
            EXPECT_EQ(n, 1) << name << " handled " << v << " " << n << " times";
        }
    }
    // Across consumers, a message was handled twice only if the victim had handled it (and its
    // ACK died with it); at most its credit's worth of them.
    std::size_t duplicates = 0;
    for (const auto& [v, n] : all) {
        if (n == 1) continue;
        ++duplicates;
        EXPECT_TRUE(per_log["victim"].contains(v))
            << v << " handled " << n << " times but never by the killed consumer";
        EXPECT_EQ(per_log["victim"][v], 1) << v;
    }
    EXPECT_LE(duplicates, kPrefetch);
    std::lock_guard lock(events_mutex);
    EXPECT_EQ(std::count(downs.begin(), downs.end(), "survivor1") +
                  std::count(downs.begin(), downs.end(), "survivor2"),
              0)
        << "a live consumer was marked down: the duplicate checks above do not hold then";
    RecordProperty("victim_handled", static_cast<int>(per_log["victim"].size()));
    RecordProperty("duplicates", static_cast<int>(duplicates));
}

INSTANTIATE_TEST_SUITE_P(Guarantees, ConsumerCrashTest,
                         ::testing::Values(GuaranteeCase{"at_least_once", Guarantee::at_least_once},
                                           GuaranteeCase{"effectively_once",
                                                         Guarantee::effectively_once}),
                         [](const auto& info) { return std::string(info.param.name); });

// The killed consumer comes back at once on the same endpoint, as a new node (reliability.md §6:
// "replaced by a new node on the same endpoint"): what the dead one held is redirected, the new
// one takes part, nothing is lost and the stream completes.
TEST(ConsumerRestartTest, ConsumerRestartedOnTheSameEndpointLosesNothing) {
    TempDir dir;
    const std::string q = "restart";
    constexpr long long kCount = 5000;
    auto producer = make_node(node_options("producer"));
    const std::vector<std::string> work = {"--handle-delay-us", "300"};
    auto first = std::make_unique<TestNode>(
        consumer_args("worker", q, dir.file("first.log"), producer.address()) + work);
    ASSERT_TRUE(first->ready());
    const std::string port = std::to_string(port_of(first->endpoint()));
    ASSERT_TRUE(wait_until([&] { return sees(producer, {"worker"}, q); }, 15s));
    auto queue = producer.queue(q).value();
    for (long long i = 0; i < kCount; ++i) ASSERT_TRUE(queue.send(i).ok());
    ASSERT_TRUE(wait_until([&] { return read_log(dir.file("first.log")).size() >= 500; }, 30s));
    first->kill(SIGKILL);
    first->process().wait();
    ASSERT_LT(queue_stats(producer, q).acked, static_cast<std::uint64_t>(kCount));

    TestNode second(consumer_args("worker", q, dir.file("second.log"), producer.address()) + work +
                    std::vector<std::string>{"--port", port});
    ASSERT_TRUE(second.ready()) << "could not bind port " << port << " again";
    EXPECT_TRUE(wait_until(
        [&] {
            const auto s = queue_stats(producer, q);
            return s.acked == static_cast<std::uint64_t>(kCount) && s.in_flight == 0 &&
                   s.depth == 0;
        },
        60s))
        << describe(queue_stats(producer, q)) << " drops: " << describe_drops(producer.stats());
    std::map<long long, int> all = counts(read_log(dir.file("first.log")));
    for (const auto& [v, n] : counts(read_log(dir.file("second.log")))) all[v] += n;
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kCount));
    EXPECT_GT(queue_stats(producer, q).redelivered, 0u) << "the dead node's messages stayed put";
    std::size_t twice = 0;
    for (const auto& [v, n] : all) twice += n > 1 ? 1 : 0;
    RecordProperty("duplicates", static_cast<int>(twice));
    RecordProperty("drops", describe_drops(producer.stats()));
}

}  // namespace
}  // namespace peermq::fault
