// The order pipeline, service three: inventory reserves the stock of each paid order from the
// "inventory" queue; a reserved order is complete.
//
//   peermq_inventory_service [common flags]
//
// At least once means a paid order can arrive twice (payment crashed after handing it on, before
// its ack). Inventory remembers which orders it reserved and ignores a second delivery.
#include <map>
#include <mutex>
#include <set>

#include "example.hpp"
#include "order.hpp"

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "");
    peermq::NodeOptions options = examples::node_options(args, "inventory", "shop");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS

    std::mutex mutex;
    std::map<std::string, int> stock = {{"widget", 100}, {"gadget", 100}, {"gizmo", 100}};
    std::set<int> reserved;  // order ids
    auto on_paid_order = [&](peermq::Delivery& delivery) {
        const auto paid = delivery.as<order_pipeline::PaidOrder>();
        const auto& order = paid.order;
        std::lock_guard lock(mutex);
        if (!reserved.insert(order.id).second) {
            examples::say("inventory: order %d already reserved; duplicate ignored", order.id);
            return;
        }
        stock[order.sku] -= order.quantity;
        examples::say("inventory: order %d complete: %d x %s reserved (%d left), paid by %s",
                      order.id, order.quantity, order.sku.c_str(), stock[order.sku],
                      paid.payment.c_str());
    };
    examples::check(node.consume("inventory", on_paid_order), "consume");
    examples::say("inventory: up at %s", node.address().c_str());
    stop.wait();
    std::lock_guard lock(mutex);
    examples::say("inventory: stopping; %zu orders complete", reserved.size());
}
