// peermq doctor's output: a check's text lines as it is added to the report, and at the end the
// summary line or the one JSON object of every check and node seen, and the exit code.
#include "doctor.hpp"

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace peermq::cli::doctor {
namespace {

const char* to_string(Verdict verdict) {
    switch (verdict) {
        case Verdict::ok: return "ok";
        case Verdict::warn: return "warn";
        case Verdict::problem: return "problem";
    }
    return "?";
}

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
    print_line(dump(out));
}

}  // namespace

void Report::print(const Check& check) {
    const char* word = check.verdict == Verdict::ok     ? "ok"
                       : check.verdict == Verdict::warn ? "warn"
                                                        : "PROBLEM";
    std::printf("%-8s %-13s %s\n", word, check.name.c_str(), check.detail.c_str());
    if (!check.fix.empty()) std::printf("%-8s %-13s fix: %s\n", "", "", check.fix.c_str());
    std::fflush(stdout);
}

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

}  // namespace peermq::cli::doctor
