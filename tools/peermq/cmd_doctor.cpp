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
//
// The checks live in doctor_daemon.cpp, doctor_network.cpp and doctor_journal.cpp, the output in
// doctor_report.cpp (doctor.hpp between them); this file holds the command line and the order
// of the checks.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "doctor.hpp"

namespace peermq::cli {
namespace doctor {
namespace {

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
        check_keys(report, options.data_dir);
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

}  // namespace
}  // namespace doctor

void add_doctor_command(CLI::App& app, Runner& selected) {
    auto [command, options] = add_command(
        app, selected, "doctor",
        "Why discovery might fail here: D-Bus, avahi-daemon, interfaces, peers", doctor::run);
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
