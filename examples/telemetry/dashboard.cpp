// Telemetry, the subscriber: a dashboard prints every reading whose topic starts with a prefix
// ("sensors." = every site; "sensors.berlin." = one site; "sensors.berlin.temperature" = one
// sensor), from every sensor it finds, and on exit a line per sensor.
//
//   peermq_telemetry_dashboard [--prefix sensors.] [--history N] [--count N] [common flags]
//
// By default it subscribes best effort: started late, it gets only what is published after it
// joined, and what the network loses is gone. With --history N it subscribes reliably: first the
// last N readings of each sensor (marked "history"), then every later one in order, a gap
// repaired from the sensor's history or reported ("lost").
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
    examples::Args args(argc, argv, "[--prefix sensors.] [--history N] [--count N]");
    const std::string prefix = args.get("prefix", "sensors.");
    // Given (even 0): a reliable subscription with that much history; not given: best effort.
    const bool reliable = !args.get("history", "").empty();
    const long history = reliable ? args.get_int("history", 0) : 0;
    const long count = args.get_int("count", 0);  // 0 = until Ctrl-C
    peermq::NodeOptions options = examples::node_options(args, "dashboard", "telemetry");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
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
        examples::say("%s: %s #%llu = %.1f %s%s", name.c_str(), message.channel.c_str(),
                      static_cast<unsigned long long>(reading.seq), reading.value,
                      reading.unit.c_str(), message.history ? " (history)" : "");
        if (++received == count) stop.request();
    };
    peermq::SubscribeOptions subscribe;
    if (reliable) {
        subscribe.reliability = peermq::TopicReliability::reliable;
        subscribe.history = static_cast<std::uint32_t>(history);
        subscribe.on_lost = [&](const peermq::SampleLost& lost) {
            examples::say("%s: %s: lost readings %llu..%llu of %s (%s)", name.c_str(),
                          lost.topic.c_str(), static_cast<unsigned long long>(lost.first),
                          static_cast<unsigned long long>(lost.last), lost.publisher_name.c_str(),
                          lost.reason.c_str());
        };
    }
    examples::check(node.subscribe(prefix, on_reading, std::move(subscribe)), "subscribe");
    if (reliable) {
        examples::say(
            "%s: up at %s; subscribed reliably to \"%s*\": the last %ld readings of "
            "each sensor, then every one in order",
            name.c_str(), node.address().c_str(), prefix.c_str(), history);
    } else {
        examples::say(
            "%s: up at %s; subscribed to \"%s*\": readings published from now on will "
            "show",
            name.c_str(), node.address().c_str(), prefix.c_str());
    }

    stop.wait();
    node.close();  // no handler runs after this
    for (const auto& [topic, seen] : topics) {
        examples::say(
            "%s: %s: #%llu to #%llu (%llu reading%s)", name.c_str(), topic.c_str(),
            static_cast<unsigned long long>(seen.first), static_cast<unsigned long long>(seen.last),
            static_cast<unsigned long long>(seen.readings), seen.readings == 1 ? "" : "s");
    }
}
