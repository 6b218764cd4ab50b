// The classic pair, half one: print every greeting that arrives on the "greetings" work queue.
//
//   peermq_hello_consumer [--count N] [common flags: see ../common/example.hpp]
//
// Runs until Ctrl-C, or until it has printed N greetings. Start peermq_hello_producer anywhere
// on the same network (here: the same machine, interface lo) and the two find each other.
#include <atomic>

#include "example.hpp"

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "[--count N]");
    const long count = args.get_int("count", 0);  // 0 = until Ctrl-C
    peermq::NodeOptions options = examples::node_options(args, "hello-consumer", "hello");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
    const std::string name = node.name();

    // The handler runs on the node's dispatcher threads. Returning acknowledges the greeting;
    // a handler that threw would have it sent again (to this consumer or another one).
    std::atomic<long> received{0};
    auto on_greeting = [&](peermq::Delivery& delivery) {
        examples::say("%s: got \"%s\"", name.c_str(), delivery.as<std::string>().c_str());
        if (++received == count) stop.request();
    };
    examples::check(node.consume("greetings", on_greeting), "consume");
    examples::say("%s: consuming \"greetings\" at %s; Ctrl-C to stop", name.c_str(),
                  node.address().c_str());
    stop.wait();
    examples::say("%s: got %ld greetings, bye", name.c_str(), received.load());
}  // ~Node says BYE to the producer
