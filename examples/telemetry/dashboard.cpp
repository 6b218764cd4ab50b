// Telemetry, the subscriber: a dashboard prints every reading whose topic starts with a prefix
// ("sensors." = every site; "sensors.berlin." = one site; "sensors.berlin.temperature" = one
// sensor), from every sensor it finds, and on exit a line per sensor.
//
//   peermq_telemetry_dashboard [--prefix sensors.] [--count N] [common flags]
//
// Start one late, while the sensors run: it gets only what is published after it joined. Topics
// are live streams; nothing is kept for later subscribers (use a queue when every message counts).
// Runs until Ctrl-C, or until it has N readings.
#include <atomic>
#include <map>
#include <mutex>

#include "example.hpp"
#include "reading.hpp"

namespace {

struct Seen {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    std::uint64_t readings = 0;
};

}  // namespace

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv, "[--prefix sensors.] [--count N]");
    const std::string prefix = args.get("prefix", "sensors.");
    const long count = args.get_int("count", 0);  // 0 = until Ctrl-C
    peermq::NodeOptions options = examples::node_options(args, "dashboard", "telemetry");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    const std::string name = node.name();

    std::mutex mutex;
    std::map<std::string, Seen> topics;  // per sensor topic
    long received = 0;
    auto on_reading = [&](const peermq::Message& message) {
        telemetry::Reading reading;
        try {
            reading = message.as<telemetry::Reading>();
        } catch (const peermq::DecodeError&) {
            // Anyone may publish on these topics (`peermq publish sensors.x hi`, say).
            examples::say("%s: %s: not a reading; ignored", name.c_str(), message.channel.c_str());
            return;
        }
        std::lock_guard lock(mutex);
        Seen& seen = topics[message.channel];
        if (seen.readings++ == 0) seen.first = reading.seq;
        seen.last = reading.seq;
        examples::say("%s: %s #%llu = %.1f %s", name.c_str(), message.channel.c_str(),
                      static_cast<unsigned long long>(reading.seq), reading.value,
                      reading.unit.c_str());
        if (++received == count) stop.request();
    };
    examples::check(node.subscribe(prefix, on_reading), "subscribe");
    examples::say("%s: up at %s; subscribed to \"%s*\": readings published from now on will show",
                  name.c_str(), node.address().c_str(), prefix.c_str());

    stop.wait();
    node.close();  // no handler runs after this
    for (const auto& [topic, seen] : topics) {
        examples::say(
            "%s: %s: #%llu to #%llu (%llu reading%s)", name.c_str(), topic.c_str(),
            static_cast<unsigned long long>(seen.first), static_cast<unsigned long long>(seen.last),
            static_cast<unsigned long long>(seen.readings), seen.readings == 1 ? "" : "s");
    }
}
