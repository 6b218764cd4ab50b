// examples/order_pipeline: orders -> payment -> inventory on static peers (lo). The CHF order is
// rejected by payment and lands in the order service's dead-letter journal, where the `peermq`
// tool finds it; payment restarts with CHF allowed, `peermq dlq replay` sends the order again,
// and it completes the pipeline.
#include <csignal>
#include <map>

#include <nlohmann/json.hpp>

#include "examples_support.hpp"

namespace peermq::examples_test {
namespace {

// `peermq args...` run to its end; stdout and stderr together.
peermq::testing::ProcessResult peermq_cli(Args args) {
    args.insert(args.begin(), PEERMQ_CLI);
    return peermq::testing::run_process(std::move(args), 30s);
}

// The JSON array `peermq dlq list --json` printed (its one line starting with '[').
nlohmann::json dead_letters(const std::string& data_dir) {
    const auto run = peermq_cli({"dlq", "list", "--data-dir", data_dir, "--json"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    std::istringstream lines(run.output);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.front() == '[')
            return nlohmann::json::parse(line, nullptr, false);
    }
    ADD_FAILURE() << "no JSON array in:\n" << run.output;
    return nlohmann::json();
}

TEST(OrderPipelineExample, PoisonOrderIsDeadLetteredThenReplayedAfterTheFix) {
    if (std::string(PEERMQ_CLI).empty()) GTEST_SKIP() << "built without the peermq tool";
    TempDir dir;
    const Args common = on_lo(new_cluster("shop"), /*static_peers=*/true);
    const std::string orders_dir = dir.file("orders");
    const std::string payment_dir = dir.file("payment");

    auto inventory = start("peermq_inventory_service", common);
    auto orders =
        start("peermq_orders_service", common + Args{"--data-dir", orders_dir, "--orders", "10"});
    const std::string inventory_at = endpoint_of(*inventory);
    const std::string orders_at = endpoint_of(*orders);
    ASSERT_FALSE(inventory_at.empty()) << inventory->output();
    ASSERT_FALSE(orders_at.empty()) << orders->output();
    const Args payment_args =
        common + Args{"--data-dir", payment_dir, "--peer", inventory_at, "--peer", orders_at};
    auto payment = start("peermq_payment_service", payment_args);

    // Order 7 is in CHF, which payment does not accept yet; the other nine go through (order 3
    // after a retry).
    ASSERT_TRUE(orders->wait_for_line_containing("dead-lettered in", 30s)) << orders->output();
    EXPECT_TRUE(orders->wait_for_line_containing(
        "order 7 dead-lettered (rejected: unsupported currency CHF)", 0ms))
        << orders->output();
    EXPECT_TRUE(orders->wait_for_line_containing("9 taken by payment, 1 dead-lettered", 0ms))
        << orders->output();
    static const std::regex kComplete(R"(^inventory: order (\d+) complete)");
    ASSERT_TRUE(wait_for_lines(*inventory, kComplete, 9, 20s)) << inventory->output();

    // The tool sees it in the running order service's journal.
    const nlohmann::json letters = dead_letters(orders_dir);
    ASSERT_TRUE(letters.is_array() && letters.size() == 1) << letters.dump();
    EXPECT_EQ(letters[0]["queue"], "payments");
    EXPECT_EQ(letters[0]["reason"], "rejected");
    EXPECT_EQ(letters[0]["last_error"], "unsupported currency CHF");
    EXPECT_EQ(letters[0]["payload"]["id"], 7);
    EXPECT_EQ(letters[0]["payload"]["currency"], "CHF");

    // The fix: payment restarts with a rule set that accepts CHF.
    payment->signal(SIGTERM);
    ASSERT_EQ(payment->wait(15s), 0) << payment->output();
    payment = start("peermq_payment_service", payment_args + Args{"--currencies", "EUR,USD,CHF"});
    ASSERT_TRUE(payment->wait_for_line_containing("accepting EUR, USD, CHF", 20s))
        << payment->output();

    const auto replay = peermq_cli({"dlq", "replay", "--data-dir", orders_dir, "--all"});
    ASSERT_EQ(replay.exit_code, 0) << replay.output;
    EXPECT_NE(replay.output.find("replayed " + letters[0]["id"].get<std::string>()),
              std::string::npos)
        << replay.output;

    ASSERT_TRUE(inventory->wait_for_line_containing("inventory: order 7 complete", 20s))
        << inventory->output() << payment->output();
    // Payment said so before handing on, but its output is read by its own thread.
    EXPECT_TRUE(payment->wait_for_line_containing("order 7 charged 19.80 CHF", 5s))
        << payment->output();
    EXPECT_TRUE(dead_letters(orders_dir).empty());

    // Every order completed, each once.
    std::map<int, int> completed;
    for (int id : captured_ints(*inventory, kComplete)) ++completed[id];
    EXPECT_EQ(completed.size(), 10u) << inventory->output();
    for (const auto& [id, times] : completed) EXPECT_EQ(times, 1) << "order " << id;

    for (auto* service : {payment.get(), orders.get(), inventory.get()}) {
        service->signal(SIGTERM);
        EXPECT_EQ(service->wait(15s), 0) << service->output();
    }
}

}  // namespace
}  // namespace peermq::examples_test
