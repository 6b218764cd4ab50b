// peermq doctor's key checks, with --data-dir (docs/security.md): the directory and the files a
// node keeps its identity and trust in. The node refuses to start on a key file others may read,
// and on an authorized_keys others may write; doctor says so before the node does, and also what
// the node would only warn about (a directory others may enter, skipped authorized_keys lines).
#include "doctor.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "security/authorized_keys.hpp"
#include "security/node_key.hpp"
#include "security/trust_policy.hpp"

namespace peermq::cli::doctor {
namespace {

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

void check_directory(Report& report, const std::string& dir) {
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0) return;  // check_journal says it is missing
    if ((info.st_mode & 077) != 0) {
        report.warn("data-dir",
                    dir + " is mode " + octal_mode(info.st_mode) +
                        ": others may list it (its journal and key files are "
                        "private all the same)",
                    "chmod 700 " + dir);
    } else {
        report.ok("data-dir", dir + " is mode " + octal_mode(info.st_mode));
    }
}

void check_key_file(Report& report, const std::string& dir) {
    const std::string path = dir + "/" + detail::kKeyFileName;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
        report.ok("key", "no " + path + ": a node started here makes its key (mode 0600)");
        return;
    }
    auto identity = detail::read_key_file(dir, false);
    if (!identity) {
        report.problem("key", identity.status().message(),
                       "the node will not start on it: fix the file as the message says");
        return;
    }
    report.ok("key", path + " is mode " + octal_mode(info.st_mode) + ", node id " +
                         identity->id.to_string() + ", public key " + identity->public_key);
}

// authorized_keys (mode authorized) and known_keys (tofu): both in the same format.
void check_keys_list(Report& report, const std::string& dir, const char* file, const char* name,
                     const char* used_by) {
    const std::string path = dir + "/" + file;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) return;  // a node of another mode needs none
    auto keys = detail::read_authorized_keys(path);
    if (!keys) {
        report.problem(name, keys.status().message(),
                       std::string("a node in trust mode ") + used_by +
                           (keys.status().code() == ErrorCode::invalid_argument
                                ? " refuses it: chmod 600 " + path
                                : " cannot read it"));
        return;
    }
    if (!keys->problems.empty()) {
        std::string lines;
        for (const auto& problem : keys->problems) {
            if (!lines.empty()) lines += "; ";
            lines += "line " + std::to_string(problem.line) + ": " + problem.reason;
        }
        report.warn(name,
                    path + ": " + std::to_string(keys->keys.size()) + " keys, and a node skips " +
                        std::to_string(keys->problems.size()) + " lines (" + lines + ")",
                    "fix or remove those lines (peermq trust list --file " + path + ")");
        return;
    }
    report.ok(name, path + " is mode " + octal_mode(info.st_mode) + ", " +
                        std::to_string(keys->keys.size()) + " keys");
}

}  // namespace

void check_keys(Report& report, const std::string& dir) {
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) return;  // told by the journal
    check_directory(report, dir);
    check_key_file(report, dir);
    check_keys_list(report, dir, detail::kAuthorizedKeysFileName, "authorized-keys", "authorized");
    check_keys_list(report, dir, detail::kKnownKeysFileName, "known-keys", "tofu");
}

}  // namespace peermq::cli::doctor
