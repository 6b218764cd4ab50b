// Telemetry, the publisher: an edge sensor box at one site publishes a reading of each of its
// kinds on "sensors.<site>.<kind>" every interval.
//
//   peermq_telemetry_sensor --site NAME [--kinds temperature,humidity] [--interval-ms 200]
//                           [--count N] [common flags]
//
// Topics are best effort: publish() does not wait for anyone, and a reading reaches only the
// subscribers connected at that moment. Runs until Ctrl-C, or for N rounds.
#include <cmath>
#include <string>
#include <vector>

#include "example.hpp"
#include "reading.hpp"

namespace {

// A plausible, slowly changing value for a kind of sensor.
telemetry::Reading measure(const std::string& site, const std::string& kind, std::uint64_t seq) {
    const double wave = std::sin(static_cast<double>(seq) / 5.0);
    if (kind == "temperature") return {site, kind, seq, 21.0 + 2.0 * wave, "C"};
    if (kind == "humidity") return {site, kind, seq, 45.0 + 5.0 * wave, "%"};
    if (kind == "pressure") return {site, kind, seq, 1013.0 + 3.0 * wave, "hPa"};
    return {site, kind, seq, wave, ""};
}

}  // namespace

int main(int argc, char** argv) {
    examples::StopSignal stop;  // first: the node's threads must not take SIGINT/SIGTERM
    examples::Args args(argc, argv,
                        "--site NAME [--kinds temperature,humidity] [--interval-ms MS] "
                        "[--count N]");
    const std::string site = args.get("site", "");
    if (site.empty()) args.fail("--site is required");
    const std::vector<std::string> kinds = args.get_list("kinds", "temperature,humidity");
    const auto interval = std::chrono::milliseconds(args.get_int("interval-ms", 200));
    const long count = args.get_int("count", 0);  // 0 = until Ctrl-C
    peermq::NodeOptions options = examples::node_options(args, "sensor-" + site, "telemetry");
    args.done();
    peermq::Node node = examples::create_node(std::move(options));
    examples::MetricsFromEnv metrics(node);  // PEERMQ_METRICS
    examples::say("sensor %s: up at %s; publishing on sensors.%s.*", site.c_str(),
                  node.address().c_str(), site.c_str());

    // The interval is a wait for the stop signal: Ctrl-C ends it at once.
    for (std::uint64_t seq = 1; count == 0 || seq <= static_cast<std::uint64_t>(count); ++seq) {
        std::string line;
        for (const std::string& kind : kinds) {
            const telemetry::Reading reading = measure(site, kind, seq);
            examples::check(node.publish("sensors." + site + "." + kind, reading), "publish");
            char value[64];
            std::snprintf(value, sizeof value, " %s=%.1f%s", kind.c_str(), reading.value,
                          reading.unit.c_str());
            line += value;
        }
        examples::say("sensor %s: #%llu%s", site.c_str(), static_cast<unsigned long long>(seq),
                      line.c_str());
        if (stop.wait_for(interval)) break;
    }
    examples::say("sensor %s: stopping", site.c_str());
}
