// TrustPolicy (trust_policy.hpp): the authorized_keys file, read at start and again when it
// changes, and tofu's pins.
#include "security/trust_policy.hpp"

#include <sys/stat.h>

namespace peermq::detail {
namespace {

std::string key_bytes(const CurveKey& key) {
    return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

}  // namespace

Result<TrustPolicy> TrustPolicy::load(Settings settings) {
    TrustPolicy policy(std::move(settings));
    const Settings& s = policy.settings_;
    if (s.mode == TrustMode::authorized) {
        if (s.authorized_keys.empty()) {
            return make_error(ErrorCode::invalid_argument,
                              "trust mode authorized needs an authorized_keys file: give "
                              "authorized_keys, or a data directory to hold one");
        }
        policy.stamp_ = stamp_of(s.authorized_keys);
        auto read = read_authorized_keys(s.authorized_keys);
        if (!read) {
            return make_error(read.status().code(),
                              "trust mode authorized: " + read.status().message() +
                                  " (peermq trust add KEY NAME --file " + s.authorized_keys +
                                  " makes one)");
        }
        policy.authorized_ = std::move(read).value();
        policy.index();
    }
    if (s.mode == TrustMode::tofu && !s.known_keys.empty()) {
        auto read = read_authorized_keys(s.known_keys);
        if (read) {
            for (const auto& pin : read->keys) policy.pins_.emplace(pin.name, pin.key);
        } else if (read.status().code() != ErrorCode::not_found) {
            return make_error(read.status().code(), "trust mode tofu: " + read.status().message());
        }
    }
    return policy;
}

void TrustPolicy::index() {
    by_key_.clear();
    for (std::size_t i = 0; i < authorized_.keys.size(); ++i) {
        by_key_.emplace(key_bytes(authorized_.keys[i].key), i);
    }
}

bool TrustPolicy::admits(const CurveKey& key) const {
    return settings_.mode != TrustMode::authorized || entry(key) != nullptr;
}

const AuthorizedKey* TrustPolicy::entry(const CurveKey& key) const {
    if (settings_.mode != TrustMode::authorized) return nullptr;
    const auto it = by_key_.find(key_bytes(key));
    return it == by_key_.end() ? nullptr : &authorized_.keys[it->second];
}

const Permissions* TrustPolicy::permissions(const CurveKey& key) const {
    const AuthorizedKey* line = entry(key);
    if (!line || line->permissions.unrestricted()) return nullptr;
    return &line->permissions;
}

TrustPolicy::FileStamp TrustPolicy::stamp_of(const std::string& path) {
    FileStamp stamp;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return stamp;
    stamp.exists = true;
    stamp.size = st.st_size;
    stamp.mtime_ns = std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.ctime_ns = std::int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
    stamp.inode = st.st_ino;
    return stamp;
}

TrustPolicy::Change TrustPolicy::reload_if_changed() {
    Change change;
    if (settings_.mode != TrustMode::authorized) return change;
    const FileStamp now = stamp_of(settings_.authorized_keys);
    if (now == stamp_) return change;
    stamp_ = now;
    auto read = read_authorized_keys(settings_.authorized_keys);
    if (!read) {
        // Whoever can delete or garble the file could as well write it: keeping the keys in
        // force costs no safety, and an editor's half-written save does not cut every link.
        change.error = read.status();
        change.keys = authorized_.keys.size();
        return change;
    }
    AuthorizedKeys next = std::move(read).value();
    for (const auto& old : authorized_.keys) {
        const AuthorizedKey* match = next.find(old.key);
        if (!match) {
            change.revoked.push_back(old.key);
        } else if (match->permissions != old.permissions) {
            change.changed.push_back(old.key);
        }
    }
    change.reloaded = true;
    change.problems = next.problems;
    change.keys = next.keys.size();
    authorized_ = std::move(next);
    index();
    ++generation_;
    return change;
}

TrustPolicy::Pin TrustPolicy::check_pin(std::string_view name, const CurveKey& key) {
    if (settings_.mode != TrustMode::tofu || name.empty()) return Pin::matches;
    if (const auto it = pins_.find(std::string(name)); it != pins_.end()) {
        return it->second == key ? Pin::matches : Pin::changed;
    }
    pins_.emplace(std::string(name), key);
    if (!settings_.known_keys.empty()) {
        AuthorizedKey pin;
        pin.key = key;
        pin.name = std::string(name);
        pin_write_error_ = add_authorized_key(settings_.known_keys, pin);
    }
    return Pin::pinned;
}

const CurveKey* TrustPolicy::pinned_key(std::string_view name) const {
    const auto it = pins_.find(std::string(name));
    return it == pins_.end() ? nullptr : &it->second;
}

}  // namespace peermq::detail
