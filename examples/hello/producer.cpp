// The classic pair, half two: send N greetings and wait until each one is acknowledged.
//
//   peermq_hello_producer [--count N] [common flags: see ../common/example.hpp]
//
// It does not need the consumer to be up first: an at-least-once queue keeps each greeting in
// the producer until a consumer is found (for 30 s here; then the greeting is dead-lettered).
// Exits 0 when every greeting was acknowledged.
#include <future>
#include <string>
#include <vector>

#include "example.hpp"

int main(int argc, char** argv) {
    examples::Args args(argc, argv, "[--count N]");
    const long count = args.get_int("count", 3);
    peermq::NodeOptions options = examples::node_options(args, "hello-producer", "hello");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
    const std::string name = node.name();

    peermq::Queue greetings =
        node.queue("greetings",
                   {.guarantee = peermq::Guarantee::at_least_once, .ttl = std::chrono::seconds(30)})
            .value();

    // send_confirmed() returns at once with a future of the receipt: acked by a consumer, or
    // dead-lettered (here: nobody consumed it within its TTL).
    const char* words[] = {"hello", "bonjour", "hallo", "hola", "ciao"};
    std::vector<std::string> texts;
    std::vector<std::future<peermq::Result<peermq::Receipt>>> receipts;
    for (long i = 1; i <= count; ++i) {
        texts.push_back(std::string(words[(i - 1) % 5]) + " #" + std::to_string(i));
        receipts.push_back(greetings.send_confirmed(texts.back()));
    }
    examples::say("%s: sent %ld greetings; waiting for a consumer to ack them", name.c_str(),
                  count);

    int failed = 0;
    for (std::size_t i = 0; i < receipts.size(); ++i) {
        const peermq::Result<peermq::Receipt> receipt = receipts[i].get();
        const char* text = texts[i].c_str();
        if (!receipt) {
            examples::say("%s: \"%s\": %s", name.c_str(), text,
                          receipt.status().to_string().c_str());
            ++failed;
        } else if (receipt->outcome == peermq::Receipt::Outcome::acked) {
            examples::say("%s: \"%s\" acked", name.c_str(), text);
        } else {
            examples::say("%s: \"%s\" dead-lettered (%s)", name.c_str(), text,
                          receipt->reason.c_str());
            ++failed;
        }
    }
    return failed == 0 ? 0 : 1;
}  // ~Node says BYE to the consumer
