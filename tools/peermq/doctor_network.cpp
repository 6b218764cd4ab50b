// peermq doctor's network checks: the interfaces up with IPv4 and multicast, the one chosen with
// --interface, a short browse for _peermq._tcp through the public discovery API, and a TCP
// connect test to the inbox and pub ports of every node seen.
#include "doctor.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "peermq/discovery/avahi.hpp"
#include "util/mutex.hpp"

namespace peermq::cli::doctor {
namespace {

using namespace std::chrono_literals;

constexpr auto kBrowseTime = 2s;
constexpr auto kConnectTimeout = 1s;

// --- Interfaces -------------------------------------------------------------------------------

// Avahi takes a loopback interface without the MULTICAST flag (the kernel routes multicast on
// it); any other needs the flag.
bool mdns_capable(const NetworkInterface& info) { return info.multicast() || info.loopback(); }

std::string describe(const NetworkInterface& info) {
    std::string text = info.name + " " + (info.ipv4().empty() ? "no IPv4" : info.ipv4());
    if (info.loopback()) text += " (loopback)";
    return text;
}

// The usable interfaces: up, IPv4, multicast.
std::vector<std::string> usable_names(const std::vector<NetworkInterface>& interfaces) {
    std::vector<std::string> names;
    for (const auto& info : interfaces) {
        if (info.up() && !info.ipv4().empty() && mdns_capable(info)) names.push_back(info.name);
    }
    return names;
}

}  // namespace

std::vector<NetworkInterface> list_interfaces() {
    auto interfaces = detail::network_interfaces();
    if (!interfaces) throw CliError(interfaces.status().message());
    return std::move(interfaces).value();
}

void check_interface_list(Report& report, const std::vector<NetworkInterface>& interfaces) {
    std::vector<std::string> usable;
    std::vector<std::string> without_multicast;
    for (const auto& info : interfaces) {
        if (!info.up() || info.ipv4().empty()) continue;
        (mdns_capable(info) ? usable : without_multicast).push_back(describe(info));
    }
    if (usable.empty()) {
        report.problem("interfaces", "no interface is up with IPv4 and multicast",
                       "bring one up with an IPv4 address: `sudo ip link set IFACE up multicast "
                       "on`");
        return;
    }
    std::string detail = "up with IPv4 and multicast: " + join(usable, ", ");
    if (!without_multicast.empty()) {
        detail += "; without MULTICAST (no mDNS there): " + join(without_multicast, ", ");
    }
    report.ok("interfaces", detail);
}

bool check_chosen_interface(Report& report, const std::vector<NetworkInterface>& interfaces,
                            const std::string& name) {
    const auto usable = usable_names(interfaces);
    const std::string choose = usable.empty() ? std::string("bring an interface up first")
                                              : "pass one of " + join(usable, ", ") +
                                                    " with --interface (or set "
                                                    "PEERMQ_INTERFACE)";
    const auto it = std::find_if(interfaces.begin(), interfaces.end(),
                                 [&](const NetworkInterface& i) { return i.name == name; });
    if (it == interfaces.end()) {
        report.problem("interface", "there is no interface named " + quoted(name), choose);
        return false;
    }
    if (!it->up()) {
        report.problem("interface", name + " is down",
                       "bring it up: `sudo ip link set " + name + " up`; or " + choose);
        return false;
    }
    if (it->ipv4().empty()) {
        report.problem(
            "interface", name + " has no IPv4 address (peermq binds and announces IPv4)",
            "give it one (`sudo ip addr add ADDRESS/PREFIX dev " + name + "`), or " + choose);
        return false;
    }
    if (!mdns_capable(*it)) {
        report.problem("interface",
                       name + " " + it->ipv4() +
                           " has no MULTICAST flag: mDNS cannot "
                           "work there",
                       "`sudo ip link set " + name + " multicast on`, or " + choose);
        return false;
    }
    report.ok("interface", name + ": up, IPv4 " + it->ipv4() +
                               (it->loopback() ? ", loopback (mDNS needs no MULTICAST flag there)"
                                               : ", multicast"));
    return true;
}

// --- Browse and reachability -------------------------------------------------------------------

namespace {

struct BrowseResult {
    std::vector<ServiceRecord> peers;
    std::map<std::string, std::uint64_t> ignored;
};

// What the backend's thread found so far.
struct Browsed {
    detail::Mutex mutex;
    std::map<NodeId, ServiceRecord> seen PEERMQ_GUARDED_BY(mutex);
};

// Starts `factory`'s backend without announcing anything and collects what it finds for
// kBrowseTime.
Result<BrowseResult> browse(const DiscoveryFactory& factory, const std::string& cluster,
                            Interrupts& interrupts) {
    auto discovery = factory();
    if (!discovery) return discovery.status();
    Browsed browsed;
    ServiceRecord self;
    self.cluster = cluster;  // inbox_port 0: nothing is announced
    Status started = discovery.value()->start(self, [&](DiscoveryEvent event) {
        detail::MutexLock lock(browsed.mutex);
        if (event.kind == DiscoveryEvent::Kind::lost) {
            browsed.seen.erase(event.record.id);
        } else {
            browsed.seen[event.record.id] = std::move(event.record);
        }
    });
    if (!started.ok()) return started;
    const bool interrupted =
        interrupts.wait(std::chrono::duration_cast<std::chrono::milliseconds>(kBrowseTime));
    discovery.value()->stop();
    if (interrupted) throw CliError("interrupted", 130);
    BrowseResult result;
    result.ignored = discovery.value()->ignored();
    detail::MutexLock lock(browsed.mutex);
    for (auto& [id, record] : browsed.seen) result.peers.push_back(record);
    return result;
}

// Connects to host:port within kConnectTimeout; nullopt when it accepted, else why not.
std::optional<ConnectFailure> tcp_connect(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        return ConnectFailure{std::string("cannot resolve ") + host + ": " + ::gai_strerror(rc)};
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
    const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            found->ai_protocol);
    if (fd < 0) return ConnectFailure{std::strerror(errno)};
    std::optional<ConnectFailure> error;
    if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            error = ConnectFailure{std::strerror(errno), errno == ECONNREFUSED};
        } else {
            pollfd item{fd, POLLOUT, 0};
            const int ready =
                ::poll(&item, 1,
                       static_cast<int>(
                           std::chrono::duration_cast<std::chrono::milliseconds>(kConnectTimeout)
                               .count()));
            int status = 0;
            socklen_t length = sizeof status;
            if (ready <= 0) {
                error = ConnectFailure{"no answer within " +
                                       std::to_string(kConnectTimeout.count()) + " s"};
            } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &status, &length) != 0 ||
                       status != 0) {
                const int code = status != 0 ? status : errno;
                error = ConnectFailure{std::strerror(code), code == ECONNREFUSED};
            }
        }
    }
    ::close(fd);
    return error;
}

std::string peer_label(const ServiceRecord& record) {
    return (record.name.empty() ? std::string("?") : record.name) + " (" +
           record.id.short_string() + ") at " + record.host;
}

std::string port_state(const std::optional<ConnectFailure>& failure) {
    return failure ? " unreachable (" + failure->text + ")" : " reachable";
}

void check_peer(Report& report, PeerReport& peer) {
    const ServiceRecord& r = peer.record;
    peer.inbox_error = tcp_connect(r.host, r.inbox_port);
    if (r.pub_port != 0) peer.pub_error = tcp_connect(r.host, r.pub_port);
    std::string detail =
        peer_label(r) + ": inbox " + std::to_string(r.inbox_port) + port_state(peer.inbox_error);
    if (r.pub_port != 0)
        detail += ", pub " + std::to_string(r.pub_port) + port_state(peer.pub_error);
    std::vector<std::string> closed;
    bool all_refused = true;
    for (const auto& [port, failure] :
         {std::pair{r.inbox_port, &peer.inbox_error}, std::pair{r.pub_port, &peer.pub_error}}) {
        if (!*failure) continue;
        closed.push_back(std::to_string(port));
        all_refused = all_refused && (*failure)->refused;
    }
    if (closed.empty()) {
        report.ok("peer", detail);
        return;
    }
    const std::string host = r.name.empty() ? r.host : r.name + "'s host (" + r.host + ")";
    const std::string ports =
        "TCP port" + std::string(closed.size() > 1 ? "s " : " ") + join(closed, " and ");
    std::string rules;
    for (const auto& port : closed) {
        rules += (rules.empty() ? "`sudo ufw allow " : ", `sudo ufw allow ") + port + "/tcp`";
    }
    const std::string open = "let " + ports + " in on " + host + " (" + rules +
                             ", or `sudo iptables -I INPUT -p tcp --dport PORT -j ACCEPT`); "
                             "to keep the rule valid, pin the node's ports "
                             "(NodeOptions::inbox_port / pub_port)";
    report.problem("peer", detail,
                   all_refused ? "nothing accepts there: if the node still runs, it listens on "
                                 "another address than it announces, or a firewall rejects the "
                                 "connection: " +
                                     open +
                                     "; a node killed without withdrawing its record is "
                                     "forgotten when the record expires"
                               : "a firewall drops the connection: " + open);
}

void report_ignored(Report& report, const std::map<std::string, std::uint64_t>& ignored,
                    const std::string& cluster) {
    for (const auto& [reason, count] : ignored) {
        const std::string n =
            std::to_string(count) + " _peermq._tcp record" + (count == 1 ? "" : "s");
        if (reason == "txt.other_cluster") {
            report.warn("browse", n + " of another cluster than " + quoted(cluster) + " ignored",
                        "pass the nodes' cluster with --cluster (or PEERMQ_CLUSTER)");
        } else if (reason == "addr.loopback_not_on_lo") {
            report.warn("browse", n + " with a loopback address found off lo ignored",
                        "run those nodes with a real --interface, not lo");
        } else {
            report.warn("browse", n + " ignored (" + reason + ")",
                        "the announcing program is not a compatible peermq node; see "
                        "docs/spec/discovery.md");
        }
    }
}

}  // namespace

namespace {

// Nodes that announce no key run trust mode plain (or an older peermq): they and the nodes
// that announce one cannot talk to each other (docs/security.md, "Which modes mix").
void check_trust_modes(Report& report, const std::vector<ServiceRecord>& records) {
    std::vector<std::string> plain;
    std::vector<std::string> keyed;
    for (const auto& record : records)
        (record.public_key.empty() ? plain : keyed).push_back(quoted(record.name));
    if (plain.empty() || keyed.empty()) {
        if (!records.empty()) {
            report.ok("trust", keyed.empty() ? "every node seen runs trust mode plain (no key)"
                                             : "every node seen announces its key");
        }
        return;
    }
    report.problem("trust",
                   std::to_string(plain.size()) + " node(s) announce no key (" + join(plain, ", ") +
                       ": trust mode plain, or an older peermq) beside " +
                       std::to_string(keyed.size()) + " that do (" + join(keyed, ", ") +
                       "): the two groups cannot talk to each other",
                   "run every node of the cluster in a mode with keys (the default, open), or "
                   "every one in plain while older nodes remain");
}

}  // namespace

std::vector<PeerReport> browse_and_connect(Report& report, const DoctorOptions& options,
                                           bool daemon_ok,
                                           const std::optional<DaemonInterfaces>& daemon_interfaces,
                                           Interrupts& interrupts) {
    discovery::AvahiOptions avahi;
    std::string where = "every interface the avahi-daemon serves";
    DiscoveryFactory factory;
    std::string through;
    if (!options.interface.empty()) {
        avahi.interfaces = {options.interface};
        where = options.interface;
        const bool daemon_serves =
            daemon_ok && daemon_interfaces && daemon_interfaces->serves(options.interface);
        factory = daemon_serves ? discovery::avahi_daemon(avahi) : discovery::embedded(avahi);
        through = daemon_serves ? "the avahi-daemon" : "the embedded mDNS stack";
    } else if (daemon_ok) {
        factory = discovery::avahi_daemon(avahi);
        through = "the avahi-daemon";
    } else {
        report.warn("browse",
                    "skipped: no avahi-daemon answers, and without --interface the embedded "
                    "stack is not started",
                    "pass --interface IFACE to browse there with the embedded stack");
        return {};
    }
    auto result = browse(factory, options.cluster, interrupts);
    if (!result) {
        report.problem("browse",
                       "could not browse through " + through + ": " + result.status().message(),
                       "check the lines above; try --interface lo to test this host alone");
        return {};
    }
    const auto seconds = std::chrono::duration<double>(kBrowseTime).count();
    char time_text[32];
    std::snprintf(time_text, sizeof time_text, "%.1f s", seconds);
    const std::size_t n = result->peers.size();
    const std::string nodes = std::to_string(n) + " peermq node" + (n == 1 ? "" : "s") +
                              " of cluster " + quoted(options.cluster) + " on " + where + " in " +
                              time_text + " through " + through;
    if (n == 0) {
        report.warn("browse", nodes,
                    "start a node here (or on the network) with --interface " +
                        (options.interface.empty() ? std::string("IFACE") : options.interface) +
                        " and the same --cluster; on a network, check that multicast "
                        "(224.0.0.251 udp/5353) passes");
    } else {
        report.ok("browse", nodes);
    }
    report_ignored(report, result->ignored, options.cluster);
    check_trust_modes(report, result->peers);
    std::vector<PeerReport> peers;
    for (auto& record : result->peers) {
        PeerReport peer{std::move(record), std::nullopt, std::nullopt};
        check_peer(report, peer);
        peers.push_back(std::move(peer));
    }
    return peers;
}

}  // namespace peermq::cli::doctor
