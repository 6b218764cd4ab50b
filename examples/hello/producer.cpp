// The classic pair, half two: send three greetings and wait until each is acknowledged.
#include <cstdio>

#include <peermq/peermq.hpp>

int main() {
    auto node = peermq::Node::create({
        .name = "hello-producer",
        .interface = "lo",
        .discovery = peermq::discovery::automatic({.interfaces = {"lo"}}),
    });
    if (!node) {
        std::fprintf(stderr, "hello-producer: %s\n", node.status().to_string().c_str());
        return 1;
    }
    // at_least_once: a greeting waits in the producer until a consumer is found, then is acked.
    auto greetings = node->queue("greetings", {.ttl = std::chrono::seconds(30)}).value();
    for (const char* text : {"hello", "bonjour", "hallo"}) {
        auto receipt = greetings.send_confirmed(std::string(text)).get();
        if (!receipt) {
            std::fprintf(stderr, "hello-producer: %s\n", receipt.status().to_string().c_str());
            return 1;
        }
        std::printf("%s: %s\n", text,
                    receipt->outcome == peermq::Receipt::Outcome::acked ? "acked" : receipt->reason.c_str());
    }
}
