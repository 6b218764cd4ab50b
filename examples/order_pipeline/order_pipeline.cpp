// The order pipeline behind scripts/demo.sh: worker nodes charge orders from an at-least-once
// work queue; a producer sends orders and watches receipts, retries and the dead-letter journal.
// Every node finds the others with mDNS on the loopback interface; nothing is configured.
//
//   peermq_order_pipeline worker NAME
//   peermq_order_pipeline producer COUNT DATA_DIR
//
// Orders whose id ends in 7 are poison: every worker refuses them ("card declined"), so they
// are dead-lettered after 3 attempts. Orders whose id ends in 3 fail once ("bank timeout") and
// succeed when retried.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <peermq/peermq.hpp>

using namespace std::chrono_literals;

namespace {

struct Order {
    int id = 0;
    double amount = 0;
    std::string customer;
    MSGPACK_DEFINE(id, amount, customer)
};

volatile std::sig_atomic_t g_stop = 0;

peermq::NodeOptions options_for(const std::string& name) {
    return {
        .name = name,
        .cluster = "demo-shop",
        .interface = "lo",
        .discovery = peermq::discovery::automatic({.interfaces = {"lo"}}),
    };
}

int fail(const std::string& who, const peermq::Status& status) {
    std::fprintf(stderr, "%s: %s\n", who.c_str(), status.to_string().c_str());
    return 1;
}

int run_worker(const std::string& name) {
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    auto node = peermq::Node::create(options_for(name));
    if (!node) return fail(name, node.status());
    std::atomic<int> charged{0};
    auto status = node->consume("orders", [&](peermq::Delivery& d) {
        const auto order = d.as<Order>();
        const auto attempt = d.message().attempt;
        if (order.id % 10 == 7) {
            std::printf("  [%s] order %2d: card declined (attempt %u)\n", name.c_str(), order.id, attempt);
            std::fflush(stdout);
            throw std::runtime_error("card declined for order " + std::to_string(order.id));
        }
        if (order.id % 10 == 3 && attempt == 1) {
            std::printf("  [%s] order %2d: bank timeout, will be retried\n", name.c_str(), order.id);
            std::fflush(stdout);
            throw std::runtime_error("bank timeout");
        }
        ++charged;
        std::printf("  [%s] order %2d: charged %.2f to %s (attempt %u)\n", name.c_str(), order.id,
                    order.amount, order.customer.c_str(), attempt);
        std::fflush(stdout);
        (void)node->publish("telemetry." + name, charged.load());
    });
    if (!status) return fail(name, status);
    std::printf("  [%s] up, consuming \"orders\"\n", name.c_str());
    std::fflush(stdout);
    while (!g_stop) std::this_thread::sleep_for(50ms);  // idle until told to stop, not a sync
    std::printf("  [%s] charged %d orders, stopping\n", name.c_str(), charged.load());
    return 0;
}

int run_producer(int count, const std::string& data_dir) {
    auto options = options_for("producer");
    options.data_dir = data_dir;
    auto node = peermq::Node::create(options);
    if (!node) return fail("producer", node.status());

    std::mutex mutex;
    std::map<std::string, int> telemetry;  // worker → orders charged, from its topic
    auto subscribed = node->subscribe("telemetry.", [&](const peermq::Message& m) {
        std::lock_guard lock(mutex);
        telemetry[m.channel.substr(10)] = m.as<int>();
    });
    if (!subscribed) return fail("producer", subscribed);

    std::printf("producer: looking for workers with mDNS on lo...\n");
    const auto started = std::chrono::steady_clock::now();
    std::size_t workers = 0;
    while (std::chrono::steady_clock::now() - started < 20s) {
        workers = 0;
        for (const auto& peer : node->peers()) {
            if (peer.state == peermq::PeerState::alive && !peer.queues.empty()) ++workers;
        }
        if (workers >= 3) break;
        std::this_thread::sleep_for(20ms);  // polling a condition under a deadline
    }
    std::printf("producer: %zu workers alive after %.2f s:", workers,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    for (const auto& peer : node->peers()) std::printf(" %s", peer.name.c_str());
    std::printf("\n");
    if (workers == 0) {
        std::fprintf(stderr, "producer: no worker found; is avahi-daemon running on lo?\n");
        return 1;
    }

    auto orders = node->queue("orders", {.max_attempts = 3, .retry_initial = 100ms, .retry_max = 1s,
                                         .ack_timeout = 2s}).value();
    std::vector<std::future<peermq::Result<peermq::Receipt>>> receipts;
    for (int id = 1; id <= count; ++id) {
        receipts.push_back(orders.send_confirmed(Order{id, 10.0 + id, "customer-" + std::to_string(id % 4)}));
        if (id == count / 2) {
            std::printf("producer: HALFWAY (%d orders sent)\n", id);
            std::fflush(stdout);
        }
        std::this_thread::sleep_for(40ms);  // a steady trickle, so the run can be watched
    }
    int acked = 0, dead = 0;
    for (auto& future : receipts) {
        auto receipt = future.get();
        if (!receipt) return fail("producer", receipt.status());
        (receipt->outcome == peermq::Receipt::Outcome::acked ? acked : dead)++;
    }
    const auto stats = node->stats().queues.at("orders");
    std::printf("\nproducer: %d orders: %d acked, %d dead-lettered; %llu retried, %llu redelivered "
                "from a lost worker; ack latency p50 <= %llu us\n",
                count, acked, dead, static_cast<unsigned long long>(stats.retried),
                static_cast<unsigned long long>(stats.redelivered),
                static_cast<unsigned long long>(stats.ack_latency.quantile_us(0.5)));
    {
        std::lock_guard lock(mutex);
        std::printf("producer: telemetry topic says:");
        for (const auto& [worker, charged] : telemetry) std::printf(" %s=%d", worker.c_str(), charged);
        std::printf("\n");
    }
    auto letters = node->dead_letters().list({.queue = "orders"});
    if (!letters) return fail("producer", letters.status());
    std::printf("producer: dead-letter journal %s/peermq.db holds %zu orders:\n", data_dir.c_str(),
                letters->size());
    for (const auto& letter : letters.value()) {
        std::printf("  order %2d  reason=%s attempts=%u last_error=\"%s\"\n",
                    letter.payload.as<Order>().id, letter.reason.c_str(), letter.attempts,
                    letter.last_error.c_str());
    }
    if (!letters->empty()) {
        auto replayed = node->dead_letters().replay(letters->front().id, "orders-review");
        if (!replayed) return fail("producer", replayed.status());
        std::printf("producer: replayed order %d to queue \"orders-review\" as %s\n",
                    letters->front().payload.as<Order>().id, replayed->to_string().c_str());
    }
    const bool consistent = acked + dead == count && dead == static_cast<int>(letters->size());
    std::printf("producer: %s\n", consistent ? "every order is accounted for" : "ORDERS MISSING");
    return consistent ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string role = argc > 1 ? argv[1] : "";
    if (role == "worker" && argc == 3) return run_worker(argv[2]);
    if (role == "producer" && argc == 4) return run_producer(std::atoi(argv[2]), argv[3]);
    std::fprintf(stderr, "usage: %s worker NAME | producer COUNT DATA_DIR\n", argv[0]);
    return 2;
}
