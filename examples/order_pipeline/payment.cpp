// The order pipeline, service two: payment charges each order from the "payments" queue and
// hands it on to inventory on the "inventory" queue.
//
//   peermq_payment_service --data-dir DIR [--currencies EUR,USD] [common flags]
//
// Its rules are a flag: it accepts only the listed currencies and rejects other orders, which
// sends them straight to the order service's dead-letter journal (retrying would not help).
// Restarting it with a newer rule set (--currencies EUR,USD,CHF) is the fix; then
// `peermq dlq replay` on the order service sends the rejected orders again.
//
// The bank times out on the first attempt of every order whose id ends in 3: the handler throws,
// the order service retries it, and the second attempt goes through.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "example.hpp"
#include "order.hpp"

using order_pipeline::Order;

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "--data-dir DIR [--currencies EUR,USD]");
    const std::vector<std::string> currencies = args.get_list("currencies", "EUR,USD");
    peermq::NodeOptions options = examples::node_options(args, "payment", "shop");
    if (options.data_dir.empty()) args.fail("--data-dir is required: the outbox lives there");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS

    std::string accepted;
    for (const auto& currency : currencies) accepted += (accepted.empty() ? "" : ", ") + currency;
    peermq::Queue inventory = node.queue("inventory").value();

    auto on_order = [&](peermq::Delivery& delivery) {
        const auto order = delivery.as<Order>();
        const unsigned attempt = delivery.message().attempt;
        if (std::find(currencies.begin(), currencies.end(), order.currency) == currencies.end()) {
            examples::say("payment: order %d rejected: unsupported currency %s", order.id,
                          order.currency.c_str());
            delivery.reject("unsupported currency " + order.currency);
            return;
        }
        if (order.id % 10 == 3 && attempt == 1) {
            examples::say("payment: order %d: bank timeout; it will be retried", order.id);
            throw std::runtime_error("bank timeout");  // a nack: the order service retries
        }
        const std::string reference = "pay-" + std::to_string(order.id) + "-" + order.currency;
        examples::say("payment: order %d charged %.2f %s to %s (attempt %u)", order.id,
                      order.amount, order.currency.c_str(), order.customer.c_str(), attempt);

        // Hand the order on, and make sure the hand-off is in this service's journal before the
        // order is acked (when this handler returns): a crash now loses nothing, the journal
        // sends it when the service restarts.
        if (auto sent = inventory.send(order_pipeline::PaidOrder{order, reference}); !sent) {
            throw std::runtime_error("cannot hand on: " + sent.status().to_string());
        }
        if (auto flushed = inventory.flush(); !flushed) {
            throw std::runtime_error("cannot hand on: " + flushed.to_string());
        }
    };
    examples::check(node.consume("payments", on_order), "consume");
    examples::say("payment: up at %s; accepting %s", node.address().c_str(), accepted.c_str());
    stop.wait();
    examples::say("payment: stopping");
}
