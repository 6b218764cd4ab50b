// The node's key file and incarnation counter in its data directory, and which key a node
// takes (node_key.hpp). Both files are written whole to a temporary file, synced, and moved into
// place, so that a crash leaves the old file or the new one; both are 0600 whatever the umask.
#include "security/node_key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "peermq/keys.hpp"
#include "platform/private_file.hpp"

namespace peermq::detail {
namespace fs = std::filesystem;
namespace {

std::string errno_text() { return std::strerror(errno); }

Status io_error(const std::string& what, const std::string& path) {
    return make_error(ErrorCode::io_error, what + " " + path + ": " + errno_text());
}

// Reads a small file whole; nullopt (errno set) when it cannot be opened. `mode` gets its
// permission bits.
std::optional<std::string> read_small_file(const std::string& path, mode_t& mode) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    mode = st.st_mode & 0777;
    std::string text;
    char buffer[512];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > 4096) break;  // no key file is this long: read no further
    }
    ::close(fd);
    return text;
}

Result<NodeIdentity> identity_of(const std::string& secret_key, std::string source) {
    auto public_key = public_key_of(secret_key);
    if (!public_key) return public_key.status();
    NodeIdentity identity;
    identity.public_key = std::move(public_key).value();
    identity.secret_key = secret_key;
    identity.id = node_id_of(*decode_key(identity.public_key));
    identity.source = std::move(source);
    return identity;
}

// The key file's text: comments, then "public KEY" and "secret KEY".
std::string key_file_text(const NodeIdentity& identity) {
    return "# peermq node key: the secret line must stay secret (this file is 0600).\n"
           "# node id " +
           identity.id.to_string() + "\npublic " + identity.public_key + "\nsecret " +
           identity.secret_key + "\n";
}

std::optional<std::string> key_line(std::string_view text, std::string_view name) {
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ' ') {
            return std::string(line.substr(name.size() + 1));
        }
    }
    return std::nullopt;
}

Result<std::uint64_t> next_incarnation(const std::string& data_dir, std::int64_t unix_ms) {
    const std::string path = (fs::path(data_dir) / kIncarnationFileName).string();
    std::uint64_t previous = 0;
    mode_t mode = 0;
    if (auto text = read_small_file(path, mode)) {
        std::string_view digits(*text);
        while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' '))
            digits.remove_suffix(1);
        // A damaged counter is not fatal: the clock below still moves the incarnation on.
        (void)std::from_chars(digits.data(), digits.data() + digits.size(), previous);
    }
    const std::uint64_t next = std::max<std::uint64_t>(
        previous + 1, static_cast<std::uint64_t>(std::max<std::int64_t>(unix_ms, 0)));
    if (Status written = replace_private_file(path, std::to_string(next) + "\n"); !written.ok()) {
        return written;
    }
    return next;
}

}  // namespace

KeySuffix split_key_suffix(std::string_view text) {
    if (text.size() <= kKeyTextSize || text[text.size() - kKeyTextSize - 1] != '#') {
        return {text, {}};
    }
    return {text.substr(0, text.size() - kKeyTextSize - 1),
            text.substr(text.size() - kKeyTextSize)};
}

std::optional<CurveKey> decode_key(std::string_view text) {
    if (text.size() != kKeyTextSize) return std::nullopt;
    static constexpr std::string_view kAlphabet =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    for (const char c : text) {
        if (kAlphabet.find(c) == std::string_view::npos) return std::nullopt;
    }
    const std::string terminated(text);
    CurveKey key{};
    if (zmq_z85_decode(key.data(), terminated.c_str()) == nullptr) return std::nullopt;
    return key;
}

std::string encode_key(const CurveKey& key) {
    std::array<char, kKeyTextSize + 1> text{};
    zmq_z85_encode(text.data(), key.data(), key.size());
    return std::string(text.data(), kKeyTextSize);
}

NodeId node_id_of(const CurveKey& public_key) {
    std::array<std::uint8_t, Uuid::kSize> bytes{};
    std::copy_n(public_key.begin(), bytes.size(), bytes.begin());
    bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x80);  // version 8
    bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);  // variant 10
    return NodeId(bytes);
}

Result<NodeIdentity> read_key_file(const std::string& data_dir, bool create) {
    const std::string path = (fs::path(data_dir) / kKeyFileName).string();
    mode_t mode = 0;
    auto text = read_small_file(path, mode);
    if (!text) {
        if (errno != ENOENT) return io_error("cannot read the node key", path);
        if (!create) return make_error(ErrorCode::not_found, "no node key in " + data_dir);
        auto pair = generate_key_pair();
        if (!pair) return pair.status();
        auto identity = identity_of(pair->secret_key, "data_dir");
        if (!identity) return identity.status();
        if (Status written = replace_private_file(path, key_file_text(*identity)); !written.ok()) {
            return written;
        }
        return identity;
    }
    if ((mode & 0077) != 0) {
        char octal[16];
        std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
        return make_error(ErrorCode::invalid_argument,
                          "the node key " + path + " is readable by others (mode " + octal +
                              "): run chmod 600 on it, and make a new key if others may have "
                              "read it");
    }
    const auto secret = key_line(*text, "secret");
    const auto expected_public = key_line(*text, "public");
    auto identity =
        secret ? identity_of(*secret, "data_dir")
               : Result<NodeIdentity>(make_error(ErrorCode::invalid_argument, "no secret line"));
    if (!identity || (expected_public && *expected_public != identity->public_key)) {
        return make_error(ErrorCode::invalid_argument,
                          "the node key " + path +
                              " is damaged (its secret line is not a Z85 key, or does not give "
                              "its public line); restore it from a backup, or remove it to start "
                              "with a new key and a new node id");
    }
    return identity;
}

Result<NodeIdentity> resolve_identity(const std::string& configured, const std::string& data_dir,
                                      std::int64_t unix_ms) {
    Result<NodeIdentity> identity = make_error(ErrorCode::internal, "no key");
    if (!configured.empty()) {
        identity = identity_of(configured, "option");
        if (!identity) {
            return make_error(ErrorCode::invalid_argument,
                              "NodeOptions::secret_key is not a Z85 secret key (40 characters)");
        }
    } else if (const char* env = std::getenv("PEERMQ_SECRET_KEY"); env != nullptr && *env != '\0') {
        identity = identity_of(env, "environment");
        if (!identity) {
            return make_error(ErrorCode::invalid_argument,
                              "PEERMQ_SECRET_KEY is not a Z85 secret key (40 characters)");
        }
    } else if (!data_dir.empty()) {
        identity = read_key_file(data_dir, true);
        if (!identity) return identity.status();
    } else {
        auto pair = generate_key_pair();
        if (!pair) return pair.status();
        identity = identity_of(pair->secret_key, "ephemeral");
        if (!identity) return identity.status();
    }
    if (data_dir.empty()) {
        identity->incarnation = static_cast<std::uint64_t>(std::max<std::int64_t>(unix_ms, 1));
    } else {
        auto incarnation = next_incarnation(data_dir, unix_ms);
        if (!incarnation) return incarnation.status();
        identity->incarnation = incarnation.value();
    }
    return identity;
}

}  // namespace peermq::detail
