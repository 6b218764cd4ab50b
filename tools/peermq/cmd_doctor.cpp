// peermq doctor: why discovery might fail on this host, or (with --data-dir) whether a node's
// journal holds what it committed. One line per check, "ok", "warn" (works, but not as one would
// expect) or "PROBLEM" followed by a line saying how to fix it; exit 1 when any problem was found.
//
// The journal checks (docs/spec/journal.md §8): the journal opens, holds as many commits as its
// mark records, passes SQLite's quick_check, and every stored record matches its checksum.
// --accept-journal-loss is the explicit way on after a loss: it settles what is left and
// rewrites the mark (the node must be stopped).
//
// Passive checks: the D-Bus system bus, the avahi-daemon (through avahi-client) and where it
// listens, the interfaces up with IPv4 and multicast. Then a short browse for
// _peermq._tcp through the public discovery API and a TCP connect test to every node seen. The
// browse only ever runs on the interface given with --interface (the daemon if it serves that
// interface, else the embedded stack); without --interface only through a running avahi-daemon,
// whose own configuration says where it talks.
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <avahi-client/client.h>
#include <avahi-common/error.h>
#include <avahi-common/simple-watch.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "peermq/discovery/avahi.hpp"
#include "platform/interfaces.hpp"
#include "storage/journal.hpp"
#include "util/mutex.hpp"

namespace peermq::cli {
namespace {

using namespace std::chrono_literals;

constexpr auto kBrowseTime = 2s;
constexpr auto kBusTimeout = 1s;
constexpr auto kConnectTimeout = 1s;
constexpr const char* kDefaultBusSocket = "/run/dbus/system_bus_socket";
constexpr const char* kDefaultAvahiConfig = "/etc/avahi/avahi-daemon.conf";

struct DoctorOptions {
    std::string interface;  // empty = passive checks and a browse through the daemon only
    std::string cluster = "default";
    std::string data_dir;  // non-empty: check this node's journal instead of discovery
    bool accept_journal_loss = false;
    bool json = false;
};

enum class Verdict { ok, warn, problem };

const char* to_string(Verdict verdict) {
    switch (verdict) {
        case Verdict::ok: return "ok";
        case Verdict::warn: return "warn";
        case Verdict::problem: return "problem";
    }
    return "?";
}

struct Check {
    std::string name;
    Verdict verdict = Verdict::ok;
    std::string detail;
    std::string fix;  // empty for ok
};

// Why a TCP connect failed.
struct ConnectFailure {
    std::string text;
    bool refused = false;  // ECONNREFUSED: the host answered, nothing accepted
};

// A peer seen by the browse and what its ports answered.
struct PeerReport {
    ServiceRecord record;
    std::optional<ConnectFailure> inbox_error;  // nullopt = reachable
    std::optional<ConnectFailure> pub_error;    // nullopt = reachable or unknown port
};

// The report being written: checks in order, printed at once in text mode.
class Report {
public:
    explicit Report(bool json) : json_(json) {}

    void add(Check check) {
        if (!json_) print(check);
        checks_.push_back(std::move(check));
    }
    void ok(std::string name, std::string detail) {
        add({std::move(name), Verdict::ok, std::move(detail), {}});
    }
    void warn(std::string name, std::string detail, std::string fix) {
        add({std::move(name), Verdict::warn, std::move(detail), std::move(fix)});
    }
    void problem(std::string name, std::string detail, std::string fix) {
        add({std::move(name), Verdict::problem, std::move(detail), std::move(fix)});
    }

    int count(Verdict verdict) const {
        return static_cast<int>(std::count_if(
            checks_.begin(), checks_.end(), [&](const Check& c) { return c.verdict == verdict; }));
    }
    const std::vector<Check>& checks() const noexcept { return checks_; }

private:
    static void print(const Check& check) {
        const char* word = check.verdict == Verdict::ok     ? "ok"
                           : check.verdict == Verdict::warn ? "warn"
                                                            : "PROBLEM";
        std::printf("%-8s %-13s %s\n", word, check.name.c_str(), check.detail.c_str());
        if (!check.fix.empty()) std::printf("%-8s %-13s fix: %s\n", "", "", check.fix.c_str());
        std::fflush(stdout);
    }

    bool json_;
    std::vector<Check> checks_;
};

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// --- D-Bus ------------------------------------------------------------------------------------

// The path of the system bus socket: DBUS_SYSTEM_BUS_ADDRESS's first unix:path=, else the
// default. nullopt for an address of another kind (abstract socket, tcp).
std::optional<std::string> system_bus_path() {
    const char* address = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    if (address == nullptr || *address == '\0') return kDefaultBusSocket;
    std::stringstream entries(address);
    std::string entry;
    while (std::getline(entries, entry, ';')) {
        if (!entry.starts_with("unix:")) continue;
        std::stringstream keys(entry.substr(5));
        std::string key;
        while (std::getline(keys, key, ',')) {
            if (key.starts_with("path=")) return key.substr(5);
        }
    }
    return std::nullopt;
}

// Reads up to "\r\n" within the deadline; the line without it, or an error text.
std::optional<std::string> read_auth_line(int fd, std::chrono::steady_clock::time_point deadline,
                                          std::string& error) {
    std::string line;
    for (;;) {
        if (line.size() >= 2 && line.ends_with("\r\n")) return line.substr(0, line.size() - 2);
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd item{fd, POLLIN, 0};
        const int ready = left.count() > 0 ? ::poll(&item, 1, static_cast<int>(left.count())) : 0;
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            error = "no answer within " + std::to_string(kBusTimeout.count()) + " s";
            return std::nullopt;
        }
        char c = 0;
        const ssize_t n = ::read(fd, &c, 1);
        if (n <= 0) {
            error = n == 0 ? "it closed the connection" : std::strerror(errno);
            return std::nullopt;
        }
        line.push_back(c);
        if (line.size() > 4096) {
            error = "it answered garbage";
            return std::nullopt;
        }
    }
}

// Connects to the bus and runs the first step of its authentication (SASL EXTERNAL): a bus
// that answers "OK <guid>" is up. Empty on success, else what went wrong.
std::string bus_answers(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) return "socket path too long";
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::strerror(errno);
    std::string error;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        error = std::string("connect: ") + std::strerror(errno);
    } else {
        char uid_hex[32];
        const std::string uid = std::to_string(::getuid());
        std::string hex_uid;
        for (char c : uid) {
            std::snprintf(uid_hex, sizeof uid_hex, "%02x", static_cast<unsigned char>(c));
            hex_uid += uid_hex;
        }
        const std::string hello = std::string(1, '\0') + "AUTH EXTERNAL " + hex_uid + "\r\n";
        if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(hello.size())) {
            error = std::string("write: ") + std::strerror(errno);
        } else {
            const auto line =
                read_auth_line(fd, std::chrono::steady_clock::now() + kBusTimeout, error);
            if (line && !line->starts_with("OK ")) error = "it refused us: " + *line;
        }
    }
    ::close(fd);
    return error;
}

// True when the bus answers, i.e. when asking the avahi-daemon cannot hang.
bool check_dbus(Report& report) {
    const auto path = system_bus_path();
    if (!path) {
        report.warn("dbus", "DBUS_SYSTEM_BUS_ADDRESS is not a unix:path= address; not checked",
                    "unset DBUS_SYSTEM_BUS_ADDRESS unless the system bus really lives there");
        return true;
    }
    struct stat info {};
    if (::stat(path->c_str(), &info) != 0 || !S_ISSOCK(info.st_mode)) {
        report.warn("dbus",
                    "no system bus socket at " + *path +
                        ": the avahi-daemon cannot be reached; peermq falls back to "
                        "its embedded mDNS stack",
                    "start the system bus (`sudo systemctl start dbus`, or "
                    "`sudo dbus-daemon --system --fork`) if the avahi-daemon should be used");
        return false;
    }
    if (const std::string error = bus_answers(*path); !error.empty()) {
        report.problem("dbus", "the system bus at " + *path + " does not answer: " + error,
                       "restart it: `sudo systemctl restart dbus`");
        return false;
    }
    report.ok("dbus", "system bus at " + *path + " answers");
    return true;
}

// --- avahi-daemon -----------------------------------------------------------------------------

void ignore_client_state(AvahiClient*, AvahiClientState, void*) {}

// Asks the daemon over D-Bus; true when it answers and runs.
bool check_daemon(Report& report, bool bus_ok) {
    const std::string embedded_note =
        "peermq nodes (--discovery auto) will use the embedded mDNS stack instead";
    const std::string start_fix =
        "start it (`sudo systemctl start avahi-daemon`; for the loopback interface only: "
        "scripts/avahi-lo.sh start), or keep the embedded stack (--discovery embedded)";
    if (!bus_ok) {
        report.warn("avahi-daemon", "not asked (no system bus): " + embedded_note, start_fix);
        return false;
    }
    std::unique_ptr<AvahiSimplePoll, decltype(&avahi_simple_poll_free)> poll(
        avahi_simple_poll_new(), &avahi_simple_poll_free);
    if (!poll) throw CliError("avahi_simple_poll_new failed");
    int error = 0;
    std::unique_ptr<AvahiClient, decltype(&avahi_client_free)> client(
        avahi_client_new(avahi_simple_poll_get(poll.get()), static_cast<AvahiClientFlags>(0),
                         &ignore_client_state, nullptr, &error),
        &avahi_client_free);
    if (!client) {
        report.warn("avahi-daemon",
                    std::string("does not answer on D-Bus (") + avahi_strerror(error) +
                        "): " + embedded_note,
                    start_fix);
        return false;
    }
    const char* version = avahi_client_get_version_string(client.get());
    const char* host = avahi_client_get_host_name_fqdn(client.get());
    const std::string who = std::string(version != nullptr ? version : "avahi") +
                            " answers on D-Bus" +
                            (host != nullptr ? std::string(" (host name ") + host + ")" : "");
    switch (avahi_client_get_state(client.get())) {
        case AVAHI_CLIENT_S_RUNNING: report.ok("avahi-daemon", who); return true;
        case AVAHI_CLIENT_S_REGISTERING:
        case AVAHI_CLIENT_S_COLLISION:
            report.warn("avahi-daemon", who + ", but it is still registering its host name",
                        "wait a few seconds; if it stays so, another host uses the same name: "
                        "change host-name in avahi-daemon.conf");
            return true;
        default:
            report.problem("avahi-daemon", who + ", but its server failed",
                           "look at its log (`journalctl -u avahi-daemon`) and restart it");
            return false;
    }
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) items.push_back(item);
    }
    return items;
}

// The configuration file of the running daemon: its -f/--file argument when its command line
// still shows it (avahi-daemon usually rewrites it into its process title), else the default.
std::string daemon_config_path() {
    for (const char* pid_file : {"/run/avahi-daemon/pid", "/var/run/avahi-daemon/pid"}) {
        std::ifstream in(pid_file);
        long pid = 0;
        if (!(in >> pid) || pid <= 0) continue;
        std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
        std::vector<std::string> args;
        for (std::string arg; std::getline(cmdline, arg, '\0');) args.push_back(arg);
        for (std::size_t i = 0; i < args.size(); ++i) {
            if ((args[i] == "-f" || args[i] == "--file") && i + 1 < args.size()) return args[i + 1];
            if (args[i].starts_with("--file=")) return args[i].substr(7);
        }
        break;
    }
    return kDefaultAvahiConfig;
}

// allow-interfaces and deny-interfaces of an avahi-daemon.conf.
struct DaemonConfig {
    std::string path;
    std::vector<std::string> allow;  // empty = every interface
    std::vector<std::string> deny;

    bool allows(const std::string& name) const {
        if (std::find(deny.begin(), deny.end(), name) != deny.end()) return false;
        return allow.empty() || std::find(allow.begin(), allow.end(), name) != allow.end();
    }
    std::string describe() const {
        std::string text = path + " allows " +
                           (allow.empty() ? std::string("every interface") : join(allow, ", "));
        if (!deny.empty()) text += " but " + join(deny, ", ");
        return text;
    }
};

std::optional<DaemonConfig> read_daemon_config() {
    DaemonConfig result;
    result.path = daemon_config_path();
    std::ifstream in(result.path);
    if (!in) return std::nullopt;
    std::string section;
    for (std::string line; std::getline(in, line);) {
        line.erase(0, line.find_first_not_of(" \t"));
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '[') {
            section = line.substr(1, line.find(']') - 1);
            continue;
        }
        const auto equals = line.find('=');
        if (section != "server" || equals == std::string::npos) continue;
        std::string key = line.substr(0, equals);
        key.erase(key.find_last_not_of(" \t") + 1);
        const std::string value = line.substr(equals + 1);
        if (key == "allow-interfaces") result.allow = split_list(value);
        if (key == "deny-interfaces") result.deny = split_list(value);
    }
    return result;
}

// The devices on which the mDNS group 224.0.0.251 is joined (/proc/net/igmp, where the group
// shows as FB0000E0): where some mDNS stack of this host listens.
std::vector<std::string> mdns_joined_devices() {
    std::vector<std::string> devices;
    std::ifstream in("/proc/net/igmp");
    std::string device;
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string first;
        if (!(words >> first)) continue;
        if (std::isdigit(static_cast<unsigned char>(line[0]))) {
            words >> device;
        } else if (first == "FB0000E0" && !device.empty() &&
                   std::find(devices.begin(), devices.end(), device) == devices.end()) {
            devices.push_back(device);
        }
    }
    return devices;
}

// Where the running daemon talks mDNS. The joined groups are the fact (a peermq node with the
// embedded stack joins too); the configuration file is a hint for the fix, since the file the
// daemon really read is not always known.
struct DaemonInterfaces {
    std::vector<std::string> joined;
    std::optional<DaemonConfig> config;

    bool serves(const std::string& name) const {
        return std::find(joined.begin(), joined.end(), name) != joined.end();
    }
};

DaemonInterfaces check_daemon_interfaces(Report& report, const std::string& interface) {
    DaemonInterfaces result{mdns_joined_devices(), read_daemon_config()};
    std::string detail = result.joined.empty()
                             ? std::string("the mDNS group 224.0.0.251 is joined on no interface")
                             : "the mDNS group 224.0.0.251 is joined on " +
                                   join(result.joined, ", ") +
                                   " (by the avahi-daemon or another mDNS stack)";
    detail += result.config ? "; " + result.config->describe()
                            : "; " + daemon_config_path() + " is not readable";
    if (interface.empty() || result.serves(interface)) {
        report.ok("avahi-ifaces", detail);
        return result;
    }
    const std::string file = result.config ? result.config->path : std::string(kDefaultAvahiConfig);
    report.problem("avahi-ifaces",
                   "the avahi-daemon does not listen for mDNS on " + interface + ": " + detail +
                       "; nodes using the daemon are neither announced nor found there",
                   "let the daemon use " + interface + " (allow-interfaces / deny-interfaces in " +
                       file +
                       ", or in the file given to avahi-daemon -f) and restart it; or run "
                       "the nodes with --discovery embedded");
    return result;
}

// --- Interfaces -------------------------------------------------------------------------------

using detail::NetworkInterface;

// Avahi takes a loopback interface without the MULTICAST flag (the kernel routes multicast on
// it); any other needs the flag.
bool mdns_capable(const NetworkInterface& info) { return info.multicast() || info.loopback(); }

// Every interface, with its link flags and addresses.
std::vector<NetworkInterface> list_interfaces() {
    auto interfaces = detail::network_interfaces();
    if (!interfaces) throw CliError(interfaces.status().message());
    return std::move(interfaces).value();
}

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

// True when the browse may run on `name`.
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

// The browse: through the daemon when it serves the interface, else the embedded stack on the
// interface; without an interface, through the daemon only.
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
    std::vector<PeerReport> peers;
    for (auto& record : result->peers) {
        PeerReport peer{std::move(record), std::nullopt, std::nullopt};
        check_peer(report, peer);
        peers.push_back(std::move(peer));
    }
    return peers;
}

// --- Journal ----------------------------------------------------------------------------------

std::string plural(std::size_t n, const std::string& word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string accept_command(const std::string& data_dir) {
    return "peermq doctor --data-dir " + data_dir + " --accept-journal-loss";
}

// --accept-journal-loss: settles the journal and rewrites its mark.
void accept_journal_loss(Report& report, const std::string& data_dir) {
    auto accepted = detail::Journal::accept_loss(data_dir);
    if (!accepted) {
        report.problem("accept-loss", "the loss was not accepted: " + accepted.status().message(),
                       accepted.status().code() == ErrorCode::in_use
                           ? "stop the node first"
                           : "the journal cannot be opened at all: move it aside as "
                             "docs/spec/journal.md §8 shows, and start the node on a fresh one");
        return;
    }
    const auto& before = accepted->before;
    const auto& held = accepted->held;
    std::string detail;
    if (before.state == detail::JournalMark::State::damaged) {
        detail = "the damaged mark was replaced";
    } else if (accepted->lost) {
        const auto commits = before.counts.commits - std::min(before.counts.commits, held.commits);
        const auto rows = before.counts.rows - std::min(before.counts.rows, held.rows);
        detail = "accepted the loss of " + plural(commits, "commit") + " (" +
                 plural(rows, "row write") + ")";
    } else {
        detail = "nothing was missing";
    }
    report.ok("accept-loss", detail + "; the mark now records " + plural(held.commits, "commit") +
                                 ", what the journal holds");
}

void check_journal(Report& report, const DoctorOptions& options) {
    const std::string& dir = options.data_dir;
    std::error_code error;
    if (!std::filesystem::is_directory(dir, error)) {
        report.problem("journal", "no data directory " + dir, "give a node's --data-dir");
        return;
    }
    if (options.accept_journal_loss) accept_journal_loss(report, dir);
    const auto mark = detail::Journal::read_mark(dir);
    auto opened =
        detail::Journal::open(dir, Durability::group_commit, detail::JournalOpenMode::existing);
    if (!opened) {
        const Status& status = opened.status();
        if (status.code() == ErrorCode::not_found) {
            report.warn("journal", status.message(),
                        "a node creates its journal when it first starts with this --data-dir");
        } else {
            report.problem(
                "journal", status.message(),
                mark.state == detail::JournalMark::State::absent
                    ? "move the journal aside and salvage it as docs/spec/journal.md "
                      "§8 shows"
                    : "salvage what is left first (see above), then " + accept_command(dir));
        }
        return;
    }
    detail::Journal& journal = **opened;
    const std::string counts = plural(journal.held().commits, "commit") + " (" +
                               plural(journal.held().rows, "row write") + ")";
    if (!journal.loss().ok()) {
        report.problem("journal", journal.loss().message(),
                       "salvage what is left first (`peermq dlq list --data-dir " + dir +
                           "`; the outbox with `sqlite3 -readonly " + journal.path() +
                           " 'SELECT * FROM outbox'`), then " + accept_command(dir));
    } else {
        const std::string agreement =
            mark.state == detail::JournalMark::State::ok
                ? "its mark records " + std::to_string(mark.counts.commits) + ", none missing"
                : "it has no mark yet (the node writes one when it starts)";
        report.ok("journal", journal.path() + ": format " +
                                 std::to_string(detail::Journal::kFormatVersion) + ", " + counts +
                                 "; " + agreement);
    }
    if (Status integrity = journal.verify(); integrity.ok()) {
        report.ok("integrity", "PRAGMA quick_check: ok");
    } else {
        report.problem("integrity", integrity.message(),
                       "stop the node, move the journal aside and salvage it as "
                       "docs/spec/journal.md §8 shows");
    }
    auto records = journal.check_records();
    if (!records) {
        report.problem("records", records.status().message(),
                       "salvage the journal as docs/spec/journal.md §8 shows");
        return;
    }
    const std::string seen =
        plural(records->outbox, "outbox message") + ", " +
        plural(records->dead_letters, "dead letter") +
        (records->unverified > 0 ? " (" + std::to_string(records->unverified) +
                                       " of format 1, without a checksum: not verified)"
                                 : std::string());
    if (records->outbox_corrupt == 0 && records->dead_letters_corrupt == 0) {
        report.ok("records", seen + "; every checksum matches");
        return;
    }
    std::string damaged;
    if (records->outbox_corrupt > 0) {
        damaged = plural(records->outbox_corrupt, "outbox message") +
                  " damaged on disk (the node moves them to the dead letters with reason "
                  "corrupt when it starts; they are never sent)";
    }
    if (records->dead_letters_corrupt > 0) {
        damaged += (damaged.empty() ? "" : "; ") +
                   plural(records->dead_letters_corrupt, "dead letter") +
                   " damaged on disk or quarantined (reason corrupt; never replayed)";
    }
    report.warn("records", seen + ": " + damaged,
                "check the disk (dmesg, smartctl); look at them with `peermq dlq list --data-dir " +
                    dir + " --reason corrupt` and resend what is still needed");
}

// --- Output -----------------------------------------------------------------------------------

void print_json(const DoctorOptions& options, const Report& report,
                const std::vector<PeerReport>& peers) {
    Json checks = Json::array();
    for (const auto& check : report.checks()) {
        Json item{
            {"check", check.name}, {"status", to_string(check.verdict)}, {"detail", check.detail}};
        if (!check.fix.empty()) item["fix"] = check.fix;
        checks.push_back(std::move(item));
    }
    Json seen = Json::array();
    for (const auto& peer : peers) {
        const ServiceRecord& r = peer.record;
        Json item{{"name", r.name},
                  {"id", r.id.to_string()},
                  {"host", r.host},
                  {"interface", r.interface},
                  {"inbox_port", r.inbox_port},
                  {"pub_port", r.pub_port},
                  {"inbox_reachable", !peer.inbox_error.has_value()}};
        if (peer.inbox_error) item["inbox_error"] = peer.inbox_error->text;
        if (r.pub_port != 0) item["pub_reachable"] = !peer.pub_error.has_value();
        if (peer.pub_error) item["pub_error"] = peer.pub_error->text;
        seen.push_back(std::move(item));
    }
    Json out{{"interface", options.interface.empty() ? Json(nullptr) : Json(options.interface)},
             {"cluster", options.cluster},
             {"data_dir", options.data_dir.empty() ? Json(nullptr) : Json(options.data_dir)},
             {"checks", std::move(checks)},
             {"peers", std::move(seen)},
             {"problems", report.count(Verdict::problem)},
             {"warnings", report.count(Verdict::warn)}};
    const std::string text = dump(out) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

int finish(const DoctorOptions& options, const Report& report,
           const std::vector<PeerReport>& peers);

int run(const DoctorOptions& options) {
    // Before any discovery thread starts, so that they inherit the blocked signals.
    Interrupts interrupts;
    Report report(options.json);
    if (options.accept_journal_loss && options.data_dir.empty()) {
        throw CliError("--accept-journal-loss needs --data-dir", 2);
    }
    if (!options.data_dir.empty()) {
        if (!options.json) std::printf("peermq doctor: journal in %s\n", options.data_dir.c_str());
        check_journal(report, options);
        return finish(options, report, {});
    }
    if (!options.json) {
        std::printf("peermq doctor: discovery %s, cluster %s\n",
                    options.interface.empty()
                        ? "(no --interface: passive checks, browse through the avahi-daemon only)"
                        : ("on interface " + options.interface).c_str(),
                    quoted(options.cluster).c_str());
    }
    const bool bus_ok = check_dbus(report);
    const bool daemon_ok = check_daemon(report, bus_ok);
    const auto interfaces = list_interfaces();
    check_interface_list(report, interfaces);
    bool may_browse = true;
    if (!options.interface.empty()) {
        may_browse = check_chosen_interface(report, interfaces, options.interface);
    }
    // Whether the daemon serves the interface only matters for one that could be used.
    std::optional<DaemonInterfaces> daemon_interfaces;
    if (daemon_ok) {
        daemon_interfaces =
            check_daemon_interfaces(report, may_browse ? options.interface : std::string());
    }
    std::vector<PeerReport> peers;
    if (may_browse) {
        peers = browse_and_connect(report, options, daemon_ok, daemon_interfaces, interrupts);
    }
    return finish(options, report, peers);
}

// Prints the summary (or the JSON); the exit code.
int finish(const DoctorOptions& options, const Report& report,
           const std::vector<PeerReport>& peers) {
    const int problems = report.count(Verdict::problem);
    const int warnings = report.count(Verdict::warn);
    if (options.json) {
        print_json(options, report, peers);
    } else {
        std::printf("%s\n", problems == 0
                                ? ("no problem found" + std::string(warnings > 0 ? ", " : "") +
                                   (warnings > 0 ? std::to_string(warnings) + " warning(s)" : ""))
                                      .c_str()
                                : (std::to_string(problems) + " problem(s), " +
                                   std::to_string(warnings) + " warning(s)")
                                      .c_str());
        std::fflush(stdout);
    }
    return problems == 0 ? 0 : 1;
}

}  // namespace

void add_doctor_command(CLI::App& app, Runner& selected) {
    auto [command, options] =
        add_command(app, selected, "doctor",
                    "Why discovery might fail here: D-Bus, avahi-daemon, interfaces, peers", run);
    command
        ->add_option("--interface", options->interface,
                     "Interface to check and browse on (the only one ever browsed); without it, "
                     "passive checks and a browse through a running avahi-daemon")
        ->envname("PEERMQ_INTERFACE");
    command->add_option("--cluster", options->cluster, "Cluster of the nodes to look for")
        ->envname("PEERMQ_CLUSTER")
        ->capture_default_str();
    command->add_option("--data-dir", options->data_dir,
                        "Check this node's journal (lost commits, integrity, checksums) instead "
                        "of discovery");
    command->add_flag("--accept-journal-loss", options->accept_journal_loss,
                      "With --data-dir, node stopped: accept that the journal lost what its "
                      "mark recorded, keep what is left, and let the node start again");
    command->add_flag("--json", options->json, "Print one JSON object");
}

}  // namespace peermq::cli
