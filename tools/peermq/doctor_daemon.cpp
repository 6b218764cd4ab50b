// peermq doctor's D-Bus and avahi-daemon checks: whether the system bus answers, whether the
// avahi-daemon answers on it and runs, and on which interfaces some mDNS stack of this host
// listens (with the daemon's allow-interfaces / deny-interfaces as the hint for the fix).
#include "doctor.hpp"

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
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"

namespace peermq::cli::doctor {
namespace {

using namespace std::chrono_literals;

constexpr auto kBusTimeout = 1s;
constexpr const char* kDefaultBusSocket = "/run/dbus/system_bus_socket";
constexpr const char* kDefaultAvahiConfig = "/etc/avahi/avahi-daemon.conf";

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

}  // namespace

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

namespace {

void ignore_client_state(AvahiClient*, AvahiClientState, void*) {}

}  // namespace

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

namespace {

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

}  // namespace

DaemonInterfaces check_daemon_interfaces(Report& report, const std::string& interface) {
    DaemonInterfaces result{detail::mdns_joined_devices(), read_daemon_config()};
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

}  // namespace peermq::cli::doctor
