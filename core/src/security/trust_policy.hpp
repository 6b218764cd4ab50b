// TrustPolicy: what a node's trust mode lets each key do (docs/security.md). The actor asks it
// at every handshake (the ZAP handler: may this key connect?), for every frame whose key it has
// not checked since the policy last changed (is this key still authorized, and for what?), and
// for every HELLO and discovery record (tofu: is this the key pinned for that name?).
//
//   open        any key may connect; a key is a node, nothing more is asked
//   authorized  only the keys of the authorized_keys file, each with its permissions; the file
//               is read again when it changes (reload_if_changed, at every tick)
//   tofu        any key may connect, but the first key seen under a node name is pinned (in the
//               data directory's known_keys, or for this run without one) and another key
//               under that name is refused
//
// It reads files and nothing else: the actor carries out what a change means (links closed,
// connections cut, routes recomputed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "peermq/options.hpp"
#include "peermq/status.hpp"
#include "security/authorized_keys.hpp"

namespace peermq::detail {

inline constexpr const char* kKnownKeysFileName = "known_keys";

class TrustPolicy {
public:
    struct Settings {
        TrustMode mode = TrustMode::open;
        std::string authorized_keys;  // authorized: the file
        std::string known_keys;       // tofu: the pins' file; empty = kept for this run only
    };

    // authorized: the file must be readable now (a node that would admit no one because of a
    // typo in a path should not start). tofu: pins already in known_keys are loaded.
    static Result<TrustPolicy> load(Settings settings);

    TrustMode mode() const { return settings_.mode; }
    const Settings& settings() const { return settings_; }

    // May this key connect at all (the ZAP handler's question)?
    bool admits(const CurveKey& key) const;
    // authorized: the key's line; null when it is not listed (or in another mode).
    const AuthorizedKey* entry(const CurveKey& key) const;
    // What the key may do; null: everything (open, tofu, or a line without permissions).
    const Permissions* permissions(const CurveKey& key) const;
    // Grows whenever what admits(), entry() or permissions() answer may have changed: a
    // caller's cached answers are stale when it differs from theirs.
    std::uint64_t generation() const { return generation_; }

    struct Change {
        bool reloaded = false;
        // Keys listed before and not now, and keys whose permissions changed.
        std::vector<CurveKey> revoked;
        std::vector<CurveKey> changed;
        std::vector<AuthorizedKeysProblem> problems;  // lines of the new file that were skipped
        Status error;  // the file could not be read: the previous keys stay in force
        std::size_t keys = 0;
    };
    // authorized: reads the file again when its size, times or inode changed since it was
    // last read. A file that cannot be read (gone, unreadable, writable by others) keeps the
    // keys in force and says why, once per change of the file.
    Change reload_if_changed();

    enum class Pin {
        matches,  // the name's pinned key
        pinned,   // the name was new: this key is now its key
        changed,  // the name has another key: refused
    };
    // tofu: checks (and on first sight pins) a name's key. Other modes: matches.
    Pin check_pin(std::string_view name, const CurveKey& key);
    const CurveKey* pinned_key(std::string_view name) const;
    // tofu: pins not written to known_keys (it could not be written): the pin still holds for
    // this run.
    const Status& pin_write_error() const { return pin_write_error_; }

    const AuthorizedKeys& authorized() const { return authorized_; }

private:
    explicit TrustPolicy(Settings settings) : settings_(std::move(settings)) {}

    struct FileStamp {
        bool exists = false;
        off_t size = 0;
        std::int64_t mtime_ns = 0;
        std::int64_t ctime_ns = 0;
        ino_t inode = 0;
        bool operator==(const FileStamp&) const = default;
    };
    static FileStamp stamp_of(const std::string& path);
    void index();

    Settings settings_;
    AuthorizedKeys authorized_;
    std::unordered_map<std::string, std::size_t> by_key_;  // raw key bytes -> authorized_ index
    FileStamp stamp_;
    std::uint64_t generation_ = 1;
    std::unordered_map<std::string, CurveKey> pins_;  // tofu: name -> key
    Status pin_write_error_;
};

}  // namespace peermq::detail
