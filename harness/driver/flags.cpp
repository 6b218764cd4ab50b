#include "flags.hpp"

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace peermq::driver {
namespace {

std::mutex g_output_mutex;

Guarantee guarantee_named(const Flags& flags, const std::string& name) {
    if (name == "best_effort") return Guarantee::best_effort;
    if (name == "at_least_once") return Guarantee::at_least_once;
    if (name == "effectively_once") return Guarantee::effectively_once;
    flags.fail("unknown guarantee " + name);
}

Durability durability_named(const Flags& flags, const std::string& name) {
    if (name == "memory") return Durability::memory;
    if (name == "group_commit") return Durability::group_commit;
    if (name == "fsync_each") return Durability::fsync_each;
    flags.fail("unknown durability " + name);
}

// --trust open|authorized|tofu|plain: NodeOptions::trust (with --authorized-keys FILE for
// authorized). `plain` turns CurveZMQ and the sender check off, for
// the tests that need what only a plain node allows (any sender id on one connection).
TrustMode trust_named(const Flags& flags, const std::string& name) {
    if (name == "open") return TrustMode::open;
    if (name == "plain") return TrustMode::plain;
    if (name == "authorized") return TrustMode::authorized;
    if (name == "tofu") return TrustMode::tofu;
    flags.fail("unknown trust mode " + name);
}

}  // namespace

void say(const std::string& line) {
    std::lock_guard lock(g_output_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

std::int64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

Flags::Flags(std::string role, std::vector<std::string> args)
    : role_(std::move(role)), args_(std::move(args)) {}

bool Flags::next() {
    if (index_ >= args_.size()) return false;
    flag_ = args_[index_++];
    return true;
}

std::string Flags::value() {
    if (index_ >= args_.size()) fail(flag_ + " needs a value");
    return args_[index_++];
}

std::uint64_t Flags::number() {
    const std::string text = value();
    char* end = nullptr;
    const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text[0] == '-' || *end != '\0')
        fail(flag_ + " takes a number, not " + text);
    return n;
}

void Flags::fail(const std::string& problem) const {
    std::fprintf(stderr, "peermq_driver %s: %s\n", role_.c_str(), problem.c_str());
    std::exit(2);
}

bool discovery_by_name(const std::string& name, const discovery::AvahiOptions& avahi,
                       DiscoveryFactory& factory) {
    if (name == "static") {
        factory = {};
    } else if (name == "avahi") {
        factory = discovery::avahi_daemon(avahi);
    } else if (name == "embedded") {
        factory = discovery::embedded(avahi);
    } else if (name == "auto") {
        factory = discovery::automatic(avahi);
    } else {
        return false;
    }
    return true;
}

NodeFlags::NodeFlags() { options.interface = "lo"; }

bool NodeFlags::take(Flags& flags) {
    // clang-format off
    if (flags.is("--name")) options.name = flags.value();
    else if (flags.is("--cluster")) options.cluster = flags.value();
    else if (flags.is("--trust")) options.trust = trust_named(flags, flags.value());
    else if (flags.is("--authorized-keys")) options.authorized_keys = flags.value();
    else if (flags.is("--interface")) options.interface = flags.value();
    else if (flags.is("--port")) options.inbox_port = static_cast<std::uint16_t>(flags.number());
    else if (flags.is("--pub-port")) options.pub_port = static_cast<std::uint16_t>(flags.number());
    else if (flags.is("--peer")) options.peers.push_back(flags.value());
    else if (flags.is("--discovery")) discovery = flags.value();
    else if (flags.is("--data-dir")) options.data_dir = flags.value();
    else if (flags.is("--durability")) options.durability = durability_named(flags, flags.value());
    else if (flags.is("--heartbeat-ms")) options.heartbeat_interval = flags.millis();
    else if (flags.is("--peer-timeout-ms")) options.peer_timeout = flags.millis();
    else if (flags.is("--control")) options.control_endpoint = flags.value();
    else if (flags.is("--consume")) consume = flags.value();
    else if (flags.is("--prefetch")) consume_options.prefetch = static_cast<std::uint32_t>(flags.number());
    else if (flags.is("--concurrency")) consume_options.concurrency = static_cast<std::uint32_t>(flags.number());
    else if (flags.is("--guarantee")) queue_options.guarantee = guarantee_named(flags, flags.value());
    else if (flags.is("--ttl-ms")) queue_options.ttl = flags.millis();
    else if (flags.is("--max-attempts")) queue_options.max_attempts = static_cast<std::uint32_t>(flags.number());
    else if (flags.is("--retry-initial-ms")) queue_options.retry_initial = flags.millis();
    else if (flags.is("--retry-max-ms")) queue_options.retry_max = flags.millis();
    else if (flags.is("--ack-timeout-ms")) queue_options.ack_timeout = flags.millis();
    else if (flags.is("--max-length")) queue_options.max_length = flags.number();
    else if (flags.is("--ordered")) queue_options.ordered = true;
    else return false;
    // clang-format on
    return true;
}

NodeOptions NodeFlags::node_options(const Flags& flags) const {
    NodeOptions out = options;
    // Discovery is pinned to the node's interface: mDNS never goes further than a test allows.
    const discovery::AvahiOptions avahi{.interfaces = {out.interface}};
    if (!discovery_by_name(discovery, avahi, out.discovery)) {
        flags.fail("unknown discovery backend " + discovery);
    }
    return out;
}

}  // namespace peermq::driver
