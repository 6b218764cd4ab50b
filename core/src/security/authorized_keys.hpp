// The authorized_keys file of TrustMode::authorized: which keys may connect to a node, under what
// name, and what each may do. One key per line:
//
//   <public key, Z85> <name> [send=q1,q2] [consume=q1,q2] [publish=p1,p2] [subscribe=p1,p2]
//
// Lines that are blank, or whose first word is '#' alone ('#' followed by a space, a tab or the
// end of the line), are comments. A '#' joined to a word starts no comment: '#' is a Z85
// character, so "#KEY name" is a damaged line to report, not one to skip in silence (no key's
// text begins with '#', as 0xffffffff is "%nSc0" in Z85, but a key may hold one elsewhere). A
// permission that is absent allows everything of its kind; present, it allows only what it
// lists: queue names (exact, or "*" for every queue) for send and consume, topic prefixes for
// publish and subscribe ("" — written `publish=` — allows none; "*" allows every topic). A line
// that cannot be read is skipped and reported with its line number: that key is not authorized.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peermq/status.hpp"
#include "security/node_key.hpp"

namespace peermq::detail {

inline constexpr const char* kAuthorizedKeysFileName = "authorized_keys";
// Bounds on what one file may hold: a hostile or broken file costs bounded memory.
inline constexpr std::size_t kMaxAuthorizedKeys = 4096;
inline constexpr std::size_t kMaxAuthorizedKeysFileBytes = 4u << 20;
// Problems told one by one; past these, one more problem says how many other lines were skipped.
inline constexpr std::size_t kMaxAuthorizedKeysProblems = 100;

struct Permissions {
    // nullopt: unrestricted. Otherwise what is allowed, as written (queue names or "*"; topic
    // prefixes or "*").
    std::optional<std::vector<std::string>> send;
    std::optional<std::vector<std::string>> consume;
    std::optional<std::vector<std::string>> publish;
    std::optional<std::vector<std::string>> subscribe;

    bool may_send(std::string_view queue) const;
    bool may_consume(std::string_view queue) const;
    // The topic begins with an allowed prefix.
    bool may_publish(std::string_view topic) const;
    // Every topic the subscription prefix matches is allowed: the prefix begins with an allowed
    // prefix ("" subscribes to everything, so only "*" allows it).
    bool may_subscribe(std::string_view prefix) const;

    bool unrestricted() const { return !send && !consume && !publish && !subscribe; }
    bool operator==(const Permissions&) const = default;
};

struct AuthorizedKey {
    CurveKey key{};
    std::string name;
    Permissions permissions;
    std::size_t line = 0;  // 1-based, in the file it was read from
};

struct AuthorizedKeysProblem {
    std::size_t line = 0;
    std::string reason;  // "not a Z85 key", "name must be 1-48 characters of [A-Za-z0-9._-]", ...
};

struct AuthorizedKeys {
    std::vector<AuthorizedKey> keys;  // in file order; a key listed twice: the first line counts
    std::vector<AuthorizedKeysProblem> problems;  // lines skipped

    const AuthorizedKey* find(const CurveKey& key) const;
    const AuthorizedKey* find_name(std::string_view name) const;
};

AuthorizedKeys parse_authorized_keys(std::string_view text);
// One line as the file holds it, without its end (parse_authorized_keys reads it back to the
// same entry when the entry is valid).
std::string format_authorized_key(const AuthorizedKey& entry);

// Reads a file. Errors: not_found (no such file), invalid_argument (not a regular file, larger
// than kMaxAuthorizedKeysFileBytes, or writable by group or others: whoever can write it can
// authorize any key), io_error (cannot read it).
Result<AuthorizedKeys> read_authorized_keys(const std::string& path);

// Edits for `peermq trust`: the file is rewritten whole (a temporary file, fsync, rename; mode
// 0600), keeping every other line, comments included, as it was. add: invalid_argument when the
// entry is not valid or the key or the name is already listed (remove it first); the file is
// created when missing (its directory is not). remove: by key (Z85) or else by name, every line
// of that key (or name, and of the keys listed under it: a later line of the same key would
// otherwise take effect once the first is gone); not_found when neither matches a line.
Status add_authorized_key(const std::string& path, const AuthorizedKey& entry);
Status remove_authorized_key(const std::string& path, std::string_view key_or_name);

}  // namespace peermq::detail
