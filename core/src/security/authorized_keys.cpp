// The authorized_keys file (authorized_keys.hpp): its lines read into keys and problems, and the
// edits of `peermq trust`, which rewrite the file whole and keep every line they do not touch
// byte for byte.
#include "security/authorized_keys.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "platform/private_file.hpp"

namespace peermq::detail {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxNameSize = 48;
constexpr std::size_t kMaxEntrySize = 255;
constexpr std::size_t kMaxEntries = 256;
// A key, a name and one field of each kind: a seventh word is always one too many, so no line
// is split further than that (a 4 MiB line of words costs no more than a short one).
constexpr std::size_t kMaxWords = 7;
// How much of a word a problem quotes: the file may hold anything, the log should not.
constexpr std::size_t kQuotedSize = 32;

// The permission fields, in the order format_authorized_key writes them.
struct Field {
    std::string_view word;
    std::optional<std::vector<std::string>> Permissions::*member;
};
constexpr std::array<Field, 4> kFields = {{
    {"send", &Permissions::send},
    {"consume", &Permissions::consume},
    {"publish", &Permissions::publish},
    {"subscribe", &Permissions::subscribe},
}};

// --- Lines and words ------------------------------------------------------------------------

// One line: `text` without its end ("\n" or "\r\n"), `whole` with it, as the file holds it.
struct Line {
    std::string_view text;
    std::string_view whole;
};

// The first line of `rest`, which moves past it.
Line next_line(std::string_view& rest) {
    const auto end = rest.find('\n');
    const std::size_t size = end == std::string_view::npos ? rest.size() : end + 1;
    Line line{rest.substr(0, end), rest.substr(0, size)};
    rest.remove_prefix(size);
    if (line.text.ends_with('\r')) line.text.remove_suffix(1);
    return line;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// The first kMaxWords words of a line, split at spaces and tabs.
std::vector<std::string_view> words_of(std::string_view text) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (words.size() < kMaxWords) {
        while (i < text.size() && is_blank(text[i])) ++i;
        if (i == text.size()) break;
        const std::size_t start = i;
        while (i < text.size() && !is_blank(text[i])) ++i;
        words.push_back(text.substr(start, i - start));
    }
    return words;
}

// Blank, or a first word of '#' alone: "#abc" is no comment, as a Z85 key may begin with '#'.
bool is_comment(const std::vector<std::string_view>& words) {
    return words.empty() || words[0] == "#";
}

std::string quoted(std::string_view word) {
    std::string text(word.substr(0, kQuotedSize));
    for (char& c : text) {
        if (std::iscntrl(static_cast<unsigned char>(c))) c = '?';
    }
    return "'" + text + (word.size() > kQuotedSize ? "...'" : "'");
}

// --- One line's entry -----------------------------------------------------------------------

// The node-name rule.
bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameSize) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

bool valid_list_entry(std::string_view entry) {
    if (entry.empty() || entry.size() > kMaxEntrySize) return false;
    return std::none_of(entry.begin(), entry.end(), [](char c) {
        return c == ',' || std::isspace(static_cast<unsigned char>(c));
    });
}

// The comma-separated `value` of field `word` into `entries`; the problem, or "". An empty
// value is an empty list: `publish=` allows nothing.
std::string read_list(std::string_view word, std::string_view value,
                      std::vector<std::string>& entries) {
    if (value.empty()) return {};
    for (std::size_t start = 0;;) {
        const auto comma = value.find(',', start);
        const std::string_view entry =
            value.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (!valid_list_entry(entry)) {
            return std::string(word) + "= entries must be 1-255 bytes without ',' or whitespace";
        }
        if (entries.size() == kMaxEntries) return std::string(word) + "= lists more than 256";
        entries.emplace_back(entry);
        if (comma == std::string_view::npos) return {};
        start = comma + 1;
    }
}

// A `word=list` field into `permissions`; the problem, or "".
std::string read_field(std::string_view token, Permissions& permissions) {
    const auto equals = token.find('=');
    const std::string_view word = token.substr(0, equals);
    const auto field = std::find_if(kFields.begin(), kFields.end(),
                                    [&](const Field& f) { return f.word == word; });
    if (equals == std::string_view::npos || field == kFields.end()) {
        return quoted(word) + " is not a field (send=, consume=, publish=, subscribe=)";
    }
    auto& list = permissions.*(field->member);
    if (list) return std::string(word) + "= given twice";
    std::vector<std::string> entries;
    if (std::string problem = read_list(word, token.substr(equals + 1), entries);
        !problem.empty()) {
        return problem;
    }
    list = std::move(entries);
    return {};
}

// The entry a line's words give; the problem, or "".
std::string read_entry(const std::vector<std::string_view>& words, AuthorizedKey& entry) {
    const auto key = decode_key(words[0]);
    if (!key) return "not a Z85 key (40 characters)";
    entry.key = *key;
    if (words.size() < 2) return "no name after the key";
    if (!valid_name(words[1])) return "name must be 1-48 characters of [A-Za-z0-9._-]";
    entry.name = std::string(words[1]);
    for (std::size_t i = 2; i < words.size(); ++i) {
        if (std::string problem = read_field(words[i], entry.permissions); !problem.empty()) {
            return problem;
        }
    }
    return {};
}

std::string key_bytes(const CurveKey& key) {
    return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

// --- The whole text -------------------------------------------------------------------------

class Parser {
public:
    AuthorizedKeys run(std::string_view text) {
        for (std::size_t number = 1; !text.empty(); ++number) {
            const auto words = words_of(next_line(text).text);
            if (is_comment(words)) continue;
            AuthorizedKey entry;
            entry.line = number;
            std::string problem = read_entry(words, entry);
            if (problem.empty()) problem = admit(entry);
            if (!problem.empty()) add_problem(number, std::move(problem));
        }
        if (untold_ > 0) {
            result_.problems.push_back(
                {first_untold_, std::to_string(untold_) + " more lines skipped from this one on"});
        }
        return std::move(result_);
    }

private:
    // Takes a valid line's entry unless an earlier line holds its key or its name, or the file
    // already holds as many keys as it may; the problem, or "".
    std::string admit(AuthorizedKey& entry) {
        const std::string key = key_bytes(entry.key);
        if (const auto it = key_lines_.find(key); it != key_lines_.end()) {
            return "key already listed on line " + std::to_string(it->second);
        }
        if (const auto it = name_lines_.find(entry.name); it != name_lines_.end()) {
            return "name already listed on line " + std::to_string(it->second);
        }
        if (result_.keys.size() == kMaxAuthorizedKeys) {
            return "more than " + std::to_string(kMaxAuthorizedKeys) + " keys listed";
        }
        key_lines_.emplace(key, entry.line);
        name_lines_.emplace(entry.name, entry.line);
        result_.keys.push_back(std::move(entry));
        return {};
    }

    // Problems are told one by one up to a bound, then counted: a file of garbage lines costs
    // no more than that.
    void add_problem(std::size_t line, std::string reason) {
        if (result_.problems.size() < kMaxAuthorizedKeysProblems) {
            result_.problems.push_back({line, std::move(reason)});
            return;
        }
        if (untold_++ == 0) first_untold_ = line;
    }

    AuthorizedKeys result_;
    std::unordered_map<std::string, std::size_t> key_lines_;   // raw key -> its line
    std::unordered_map<std::string, std::size_t> name_lines_;  // name -> its line
    std::size_t untold_ = 0;
    std::size_t first_untold_ = 0;
};

// --- Files ----------------------------------------------------------------------------------

Status io_error(const std::string& what, const std::string& path) {
    return make_error(ErrorCode::io_error, what + " " + path + ": " + std::strerror(errno));
}

Status invalid(std::string message) {
    return make_error(ErrorCode::invalid_argument, std::move(message));
}

Status too_large(const std::string& path) {
    return invalid(path + " is larger than " + std::to_string(kMaxAuthorizedKeysFileBytes) +
                   " bytes");
}

struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
};

Status check_file(const std::string& path, const struct stat& st) {
    if (!S_ISREG(st.st_mode)) return invalid(path + " is not a regular file");
    if ((st.st_mode & 022) != 0) {
        char mode[16];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return invalid(path + " is writable by group or others (mode " + mode +
                       "): whoever can write it can authorize any key; run chmod 600 " + path);
    }
    if (static_cast<std::uintmax_t>(st.st_size) > kMaxAuthorizedKeysFileBytes) {
        return too_large(path);
    }
    return {};
}

// The text of the file at `path`, once check_file finds nothing against it.
Result<std::string> read_text(const std::string& path) {
    // O_NONBLOCK: a FIFO put in the file's place must not hang the node at open.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return make_error(ErrorCode::not_found, "no such file: " + path);
        return io_error("cannot open", path);
    }
    const FdCloser closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return io_error("cannot read", path);
    if (Status refused = check_file(path, st); !refused.ok()) return refused;
    std::string text;
    char buffer[16384];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error("cannot read", path);
        if (n == 0) return text;
        text.append(buffer, static_cast<std::size_t>(n));
        // The size was checked, but the file may have grown since.
        if (text.size() > kMaxAuthorizedKeysFileBytes) return too_large(path);
    }
}

// The file an edit replaces: a symbolic link's target, so that the link stays a link.
fs::path edited_file(const std::string& path) {
    std::error_code error;
    if (!fs::is_symlink(path, error)) return path;
    fs::path target = fs::weakly_canonical(path, error);
    return error ? fs::path(path) : target;
}

// Replaces the file with `text` (platform/private_file.hpp): a symbolic link's target.
Status write_file(const std::string& path, std::string_view text) {
    return replace_private_file(edited_file(path), text);
}

// --- Edits ----------------------------------------------------------------------------------

// An entry add may write: one line that reads back as the same key and name, with no problem.
Status check_entry(const AuthorizedKey& entry, const std::string& line) {
    if (line.find_first_of("\r\n") != std::string::npos) {
        return invalid("a name or a permission holds a line break");
    }
    const AuthorizedKeys parsed = parse_authorized_keys(line);
    if (!parsed.problems.empty()) return invalid(parsed.problems.front().reason);
    if (parsed.keys.size() != 1 || parsed.keys[0].name != entry.name) {
        return invalid("the entry does not read back as written: " + line);
    }
    return {};
}

// "\r\n" when the file's lines end so, else "\n": an added line ends like the others.
std::string_view line_end_of(std::string_view text) {
    const auto end = text.find('\n');
    return end != std::string_view::npos && end > 0 && text[end - 1] == '\r' ? "\r\n" : "\n";
}

// Which lines remove drops.
struct Removal {
    std::vector<CurveKey> keys;
    std::string_view name;  // empty when removing by key

    bool drops(const std::vector<std::string_view>& words) const {
        if (is_comment(words)) return false;
        if (!name.empty() && words.size() > 1 && words[1] == name) return true;
        const auto key = decode_key(words[0]);
        return key && std::find(keys.begin(), keys.end(), *key) != keys.end();
    }
    bool matches_a_line(std::string_view text) const {
        while (!text.empty()) {
            if (drops(words_of(next_line(text).text))) return true;
        }
        return false;
    }
};

// By key when `key_or_name` is a key some line lists; else by name, with the keys listed under
// it (a name is Z85 text too, so a 40-character name is tried as a key first).
std::optional<Removal> removal_of(std::string_view text, std::string_view key_or_name) {
    if (const auto key = decode_key(key_or_name)) {
        Removal by_key{{*key}, {}};
        if (by_key.matches_a_line(text)) return by_key;
    }
    Removal by_name{{}, key_or_name};
    for (std::string_view rest = text; !rest.empty();) {
        const auto words = words_of(next_line(rest).text);
        if (!is_comment(words) && words.size() > 1 && words[1] == key_or_name) {
            if (const auto key = decode_key(words[0])) by_name.keys.push_back(*key);
        }
    }
    if (key_or_name.empty() || !by_name.matches_a_line(text)) return std::nullopt;
    return by_name;
}

bool allows_name(const std::optional<std::vector<std::string>>& allowed, std::string_view name) {
    if (!allowed) return true;
    return std::any_of(allowed->begin(), allowed->end(), [&](const std::string& entry) {
        return entry == "*" || (!entry.empty() && entry == name);
    });
}

// An empty entry allows nothing: only an empty list can be written for it (`publish=`).
bool allows_prefix(const std::optional<std::vector<std::string>>& allowed, std::string_view topic) {
    if (!allowed) return true;
    return std::any_of(allowed->begin(), allowed->end(), [&](const std::string& entry) {
        return entry == "*" || (!entry.empty() && topic.starts_with(entry));
    });
}

}  // namespace

bool Permissions::may_send(std::string_view queue) const { return allows_name(send, queue); }

bool Permissions::may_consume(std::string_view queue) const { return allows_name(consume, queue); }

bool Permissions::may_publish(std::string_view topic) const {
    return allows_prefix(publish, topic);
}

// A subscription to `prefix` receives every topic that begins with it, so it is allowed only
// when the prefix itself begins with an allowed one.
bool Permissions::may_subscribe(std::string_view prefix) const {
    return allows_prefix(subscribe, prefix);
}

const AuthorizedKey* AuthorizedKeys::find(const CurveKey& key) const {
    const auto it = std::find_if(keys.begin(), keys.end(),
                                 [&](const AuthorizedKey& entry) { return entry.key == key; });
    return it == keys.end() ? nullptr : &*it;
}

const AuthorizedKey* AuthorizedKeys::find_name(std::string_view name) const {
    const auto it = std::find_if(keys.begin(), keys.end(),
                                 [&](const AuthorizedKey& entry) { return entry.name == name; });
    return it == keys.end() ? nullptr : &*it;
}

AuthorizedKeys parse_authorized_keys(std::string_view text) { return Parser().run(text); }

std::string format_authorized_key(const AuthorizedKey& entry) {
    std::string line = encode_key(entry.key) + " " + entry.name;
    for (const Field& field : kFields) {
        const auto& list = entry.permissions.*(field.member);
        if (!list) continue;
        line += " " + std::string(field.word) + "=";
        for (std::size_t i = 0; i < list->size(); ++i) {
            if (i > 0) line += ",";
            line += (*list)[i];
        }
    }
    return line;
}

Result<AuthorizedKeys> read_authorized_keys(const std::string& path) {
    auto text = read_text(path);
    if (!text) return text.status();
    return parse_authorized_keys(*text);
}

Status add_authorized_key(const std::string& path, const AuthorizedKey& entry) {
    const std::string line = format_authorized_key(entry);
    if (Status valid = check_entry(entry, line); !valid.ok()) return valid;
    auto read = read_text(path);
    if (!read && read.status().code() != ErrorCode::not_found) return read.status();
    std::string text = read ? std::move(read).value() : std::string();

    const AuthorizedKeys listed = parse_authorized_keys(text);
    if (const AuthorizedKey* same = listed.find(entry.key)) {
        return invalid("the key is already listed on line " + std::to_string(same->line) + " of " +
                       path + ", as " + same->name + " (remove it first)");
    }
    if (const AuthorizedKey* same = listed.find_name(entry.name)) {
        return invalid("the name " + entry.name + " is already listed on line " +
                       std::to_string(same->line) + " of " + path +
                       ", for another key (remove it first)");
    }
    if (listed.keys.size() >= kMaxAuthorizedKeys) {
        return invalid(path + " already lists " + std::to_string(kMaxAuthorizedKeys) +
                       " keys, the most it may");
    }

    const std::string_view end = line_end_of(text);
    if (!text.empty() && text.back() != '\n') text += end;
    text += line;
    text += end;
    if (text.size() > kMaxAuthorizedKeysFileBytes) {
        return invalid(path + " would grow past " + std::to_string(kMaxAuthorizedKeysFileBytes) +
                       " bytes");
    }
    return write_file(path, text);
}

Status remove_authorized_key(const std::string& path, std::string_view key_or_name) {
    auto read = read_text(path);
    if (!read) return read.status();
    const std::string& text = *read;
    const auto removal = removal_of(text, key_or_name);
    if (!removal) {
        return make_error(ErrorCode::not_found,
                          "no line of " + path + " lists the key or name " + quoted(key_or_name));
    }
    std::string kept;
    kept.reserve(text.size());
    for (std::string_view rest = text; !rest.empty();) {
        const Line line = next_line(rest);
        if (!removal->drops(words_of(line.text))) kept += line.whole;
    }
    return write_file(path, kept);
}

}  // namespace peermq::detail
