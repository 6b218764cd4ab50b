// The order pipeline, service one: the order service takes N orders and sends each one to
// payment on the "payments" work queue, then reports what became of it.
//
//   peermq_orders_service --data-dir DIR [--orders N] [common flags]
//
// The "payments" queue is at least once: an order waits in this service's journal (DIR) until a
// payment service acknowledges it, is retried when payment fails, and lands in the dead-letter
// journal in DIR when payment rejects it or fails too often. `peermq dlq list --data-dir DIR`
// shows those; `peermq dlq replay --data-dir DIR --all` sends them again through this service
// (it keeps running, and its control endpoint in DIR answers the tool).
//
// Orders whose id ends in 7 come from the new Swiss shop and are in CHF.
#include <future>
#include <string>
#include <vector>

#include "example.hpp"
#include "order.hpp"

using namespace std::chrono_literals;
using order_pipeline::Order;

namespace {

Order make_order(int id) {
    const char* customers[] = {"ada", "grace", "linus", "barbara"};
    const char* skus[] = {"widget", "gadget", "gizmo"};
    Order order{
        .id = id, .customer = customers[id % 4], .sku = skus[id % 3], .quantity = 1 + id % 3};
    order.amount = 9.90 * order.quantity;
    order.currency = id % 10 == 7 ? "CHF" : id % 2 == 0 ? "USD" : "EUR";
    return order;
}

}  // namespace

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "--data-dir DIR [--orders N]");
    const int count = static_cast<int>(args.get_int("orders", 10));
    peermq::NodeOptions options = examples::node_options(args, "orders", "shop");
    if (options.data_dir.empty()) args.fail("--data-dir is required: the dead letters live there");
    const std::string data_dir = options.data_dir;
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
    examples::say("orders: up at %s, journal in %s", node.address().c_str(), data_dir.c_str());

    // Three attempts, 100 ms apart at first: a payment that failed twice is not coming back.
    peermq::Queue payments = node.queue("payments", {.guarantee = peermq::Guarantee::at_least_once,
                                                     .max_attempts = 3,
                                                     .retry_initial = 100ms})
                                 .value();
    std::vector<std::future<peermq::Result<peermq::Receipt>>> receipts;
    for (int id = 1; id <= count; ++id) receipts.push_back(payments.send_confirmed(make_order(id)));
    examples::say("orders: placed %d orders; waiting for payment", count);

    int paid = 0;
    int dead = 0;
    for (int id = 1; id <= count; ++id) {
        auto& pending = receipts[id - 1];
        while (pending.wait_for(100ms) != std::future_status::ready) {
            if (stop.requested()) {
                // Nothing is lost: unacknowledged orders are in the journal, and are sent again
                // when the service starts on the same --data-dir.
                examples::say("orders: stopping; unanswered orders stay in %s", data_dir.c_str());
                return 0;
            }
        }
        const auto receipt = pending.get();
        if (!receipt) {
            examples::say("orders: order %d: %s", id, receipt.status().to_string().c_str());
        } else if (receipt->outcome == peermq::Receipt::Outcome::acked) {
            ++paid;
            examples::say("orders: order %d taken by payment", id);
        } else {
            ++dead;
            examples::say("orders: order %d dead-lettered (%s: %s)", id, receipt->reason.c_str(),
                          receipt->last_error.c_str());
        }
    }
    examples::say("orders: %d orders: %d taken by payment, %d dead-lettered in %s/peermq.db", count,
                  paid, dead, data_dir.c_str());
    examples::say("orders: running; see `peermq dlq list --data-dir %s`; Ctrl-C to stop",
                  data_dir.c_str());
    stop.wait();
    examples::say("orders: stopping");
}
