// `peermq doctor`'s parts shared by its sources: the options, the report every check writes its
// lines to, and the checks each source owns. cmd_doctor.cpp runs them in order;
// doctor_daemon.cpp owns the D-Bus and avahi-daemon checks, doctor_network.cpp the interfaces,
// the browse and the reachability of the nodes seen, doctor_journal.cpp the journal checks and
// doctor_report.cpp the report's text and JSON.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "platform/interfaces.hpp"

namespace peermq::cli::doctor {

struct DoctorOptions {
    std::string interface;  // empty = passive checks and a browse through the daemon only
    std::string cluster = "default";
    std::string data_dir;  // non-empty: check this node's journal instead of discovery
    bool accept_journal_loss = false;
    bool json = false;
};

enum class Verdict { ok, warn, problem };

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
    // Prints one check and its fix (doctor_report.cpp).
    static void print(const Check& check);

    bool json_;
    std::vector<Check> checks_;
};

inline std::string quoted(const std::string& text) { return "'" + text + "'"; }

// --- D-Bus and the avahi-daemon (doctor_daemon.cpp) -------------------------------------------

// allow-interfaces and deny-interfaces of an avahi-daemon.conf.
struct DaemonConfig {
    std::string path;
    std::vector<std::string> allow;  // empty = every interface
    std::vector<std::string> deny;

    std::string describe() const {
        std::string text = path + " allows " +
                           (allow.empty() ? std::string("every interface") : join(allow, ", "));
        if (!deny.empty()) text += " but " + join(deny, ", ");
        return text;
    }
};

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

// True when the bus answers, i.e. when asking the avahi-daemon cannot hang.
bool check_dbus(Report& report);
// Asks the daemon over D-Bus; true when it answers and runs.
bool check_daemon(Report& report, bool bus_ok);
// Where the daemon talks mDNS; a problem when `interface` (empty: none chosen) is not among them.
DaemonInterfaces check_daemon_interfaces(Report& report, const std::string& interface);

// --- Interfaces, browse and reachability (doctor_network.cpp) ---------------------------------

using detail::NetworkInterface;

// Every interface, with its link flags and addresses.
std::vector<NetworkInterface> list_interfaces();
void check_interface_list(Report& report, const std::vector<NetworkInterface>& interfaces);
// True when the browse may run on `name`.
bool check_chosen_interface(Report& report, const std::vector<NetworkInterface>& interfaces,
                            const std::string& name);
// The browse: through the daemon when it serves the interface, else the embedded stack on the
// interface; without an interface, through the daemon only.
std::vector<PeerReport> browse_and_connect(Report& report, const DoctorOptions& options,
                                           bool daemon_ok,
                                           const std::optional<DaemonInterfaces>& daemon_interfaces,
                                           Interrupts& interrupts);

// --- Journal (doctor_journal.cpp) -------------------------------------------------------------

// The journal checks; with --accept-journal-loss, the acceptance first.
void check_journal(Report& report, const DoctorOptions& options);

// --- Keys (doctor_keys.cpp) -------------------------------------------------------------------

// The data directory's mode, its node.key, authorized_keys and known_keys.
void check_keys(Report& report, const std::string& dir);

// --- Output (doctor_report.cpp) ---------------------------------------------------------------

// Prints the summary (or the JSON); the exit code.
int finish(const DoctorOptions& options, const Report& report,
           const std::vector<PeerReport>& peers);

}  // namespace peermq::cli::doctor
