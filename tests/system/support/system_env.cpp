#include "system/support/system_env.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#ifndef PEERMQ_SOURCE_DIR
#error "PEERMQ_SOURCE_DIR must be defined by the build"
#endif

namespace peermq::testing {

std::string source_dir() { return PEERMQ_SOURCE_DIR; }
std::string avahi_lo_script() { return source_dir() + "/scripts/avahi-lo.sh"; }
std::string lab_script() { return source_dir() + "/scripts/lab.sh"; }

bool lab_is_up(int hosts) {
    const auto status = run_process({lab_script(), "status"}, std::chrono::seconds(20));
    return status.exit_code == 0 &&
           status.output.find("pmq" + std::to_string(hosts) + ": 10.77.0.") != std::string::npos;
}

std::string avahi_state_dir() {
    const char* state = std::getenv("PEERMQ_AVAHI_STATE");
    return state != nullptr && *state != '\0' ? state : "/tmp/peermq-avahi";
}

std::optional<int> our_avahi_daemon_pid() {
    std::ifstream pid_file(avahi_state_dir() + "/avahi.pid");
    int pid = 0;
    if (!(pid_file >> pid) || pid <= 0) return std::nullopt;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    if (!std::getline(comm, name) || name != "avahi-daemon") return std::nullopt;
    return pid;
}

std::vector<std::string> mdns_group_interfaces() {
    // "1\tlo        :     2      V3" starts an interface; "\t\t\t\tFB0000E0 ..." is a group.
    std::ifstream igmp("/proc/net/igmp");
    std::vector<std::string> interfaces;
    std::string line;
    std::string device;
    while (std::getline(igmp, line)) {
        if (!line.empty() && line[0] >= '0' && line[0] <= '9') {
            std::istringstream fields(line);
            std::string index;
            fields >> index >> device;
        } else if (line.find("FB0000E0") != std::string::npos) {
            interfaces.push_back(device);
        }
    }
    return interfaces;
}

ServiceRecord make_self(const std::string& name, const std::string& cluster,
                        std::uint16_t inbox_port, std::uint16_t pub_port) {
    ServiceRecord self;
    self.id = Uuid::generate();
    self.name = name;
    self.cluster = cluster;
    self.inbox_port = inbox_port;
    self.pub_port = pub_port;
    return self;
}

std::string unescape_browse_field(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size() &&
            std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 2])) &&
            std::isdigit(static_cast<unsigned char>(text[i + 3]))) {
            out.push_back(static_cast<char>(std::stoi(text.substr(i + 1, 3))));
            i += 3;
        } else if (text[i] == '\\' && i + 1 < text.size()) {
            out.push_back(text[++i]);
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

namespace {

// The TXT field: "\"a=1\" \"b=2\"" (quotes inside values are not expected in tests).
std::vector<std::string> split_txt(const std::string& field) {
    std::vector<std::string> txt;
    std::size_t pos = 0;
    while ((pos = field.find('"', pos)) != std::string::npos) {
        const auto end = field.find('"', pos + 1);
        if (end == std::string::npos) break;
        txt.push_back(field.substr(pos + 1, end - pos - 1));
        pos = end + 1;
    }
    return txt;
}

}  // namespace

std::unique_ptr<ChildProcess> publish_by_hand(const std::string& name, std::uint16_t port,
                                              const std::vector<std::string>& txt) {
    std::vector<std::string> argv = {"avahi-publish", "-s", name, "_peermq._tcp",
                                     std::to_string(port)};
    argv.insert(argv.end(), txt.begin(), txt.end());
    auto child = std::make_unique<ChildProcess>(argv);
    EXPECT_TRUE(child->wait_for_line_containing("Established under name", std::chrono::seconds(15)))
        << "avahi-publish did not establish '" << name << "':\n"
        << child->output();
    return child;
}

std::vector<BrowseEntry> avahi_browse(const std::string& type) {
    const auto result = run_process({"avahi-browse", "-rpt", type}, std::chrono::seconds(15));
    std::vector<BrowseEntry> entries;
    std::istringstream lines(result.output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] != '=') continue;
        // =;lo;IPv4;name;_peermq._tcp;local;host.local;127.0.0.1;5555;"k=v" "k=v"
        std::vector<std::string> fields;
        std::size_t start = 0;
        for (int i = 0; i < 9; ++i) {
            const auto semicolon = line.find(';', start);
            if (semicolon == std::string::npos) break;
            fields.push_back(line.substr(start, semicolon - start));
            start = semicolon + 1;
        }
        if (fields.size() != 9) continue;
        BrowseEntry entry;
        entry.interface = fields[1];
        entry.protocol = fields[2];
        entry.name = unescape_browse_field(fields[3]);
        entry.type = fields[4];
        entry.host = fields[6];
        entry.address = fields[7];
        entry.port = static_cast<std::uint16_t>(std::atoi(fields[8].c_str()));
        entry.txt = split_txt(line.substr(start));
        entries.push_back(std::move(entry));
    }
    return entries;
}

}  // namespace peermq::testing
