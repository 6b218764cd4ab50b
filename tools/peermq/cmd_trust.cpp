// peermq trust: the authorized_keys file of a node in trust mode `authorized` (docs/security.md).
// `add` lists a key under a name with what it may do, `remove` takes a key (or a name) off it,
// `list` shows the keys, the node ids they give and their permissions, and the lines a node
// skips. The file is edited in place of the node: a running node reads it again when it changes.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "peermq/keys.hpp"
#include "security/authorized_keys.hpp"

namespace peermq::cli {
namespace {

namespace fs = std::filesystem;
using detail::AuthorizedKey;

struct TrustOptions {
    std::string file;
    std::string data_dir;
    std::string key;          // add
    std::string name;         // add
    std::string key_or_name;  // remove
    // add: absent = unrestricted; "" = nothing allowed.
    std::optional<std::string> send, consume, publish, subscribe;
    bool json = false;
};

// --file PATH, or --data-dir DIR for DIR/authorized_keys: exactly one.
std::string file_of(const TrustOptions& options) {
    if (options.file.empty() == options.data_dir.empty())
        throw CliError("give one of --file PATH or --data-dir DIR", 2);
    if (!options.file.empty()) return options.file;
    std::error_code error;
    if (!fs::is_directory(options.data_dir, error))
        throw CliError("no such data directory: " + options.data_dir);
    return (fs::path(options.data_dir) / detail::kAuthorizedKeysFileName).string();
}

// A public key as given: its Z85 text, or a node's address ending with it (host:port#KEY,
// tcp://host:port#KEY, as nodes print it). The key is the last 40 characters after a '#', not
// what follows the last '#': a Z85 key may hold '#' itself. A leading space is
// protect_key_arguments()'s.
std::optional<detail::CurveKey> key_of(std::string_view text) {
    if (text.starts_with(' ')) text.remove_prefix(1);
    if (auto key = detail::decode_key(text)) return key;
    if (text.size() > kKeyTextSize && text[text.size() - kKeyTextSize - 1] == '#')
        return detail::decode_key(text.substr(text.size() - kKeyTextSize));
    return std::nullopt;
}

// "q1,q2" as given on the command line; "" is the empty list. Empty or bad entries are left in
// for add_authorized_key to refuse with the file's own words.
std::optional<std::vector<std::string>> list_of(const std::optional<std::string>& value) {
    if (!value) return std::nullopt;
    std::vector<std::string> entries;
    if (value->empty()) return entries;
    std::string_view rest = *value;
    for (;;) {
        const auto comma = rest.find(',');
        entries.emplace_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) return entries;
        rest.remove_prefix(comma + 1);
    }
}

// A permission as `list` shows it: the field as the file writes it, "(none)" for an empty list.
std::string permissions_text(const detail::Permissions& permissions) {
    if (permissions.unrestricted()) return "all";
    std::string text;
    const auto field = [&](const char* word, const std::optional<std::vector<std::string>>& list) {
        if (!list) return;
        if (!text.empty()) text += " ";
        text += std::string(word) + "=" + (list->empty() ? "(none)" : join(*list));
    };
    field("send", permissions.send);
    field("consume", permissions.consume);
    field("publish", permissions.publish);
    field("subscribe", permissions.subscribe);
    return text;
}

Json permissions_json(const detail::Permissions& permissions) {
    const auto list = [](const std::optional<std::vector<std::string>>& value) {
        return value ? Json(*value) : Json(nullptr);  // null: unrestricted
    };
    return {{"send", list(permissions.send)},
            {"consume", list(permissions.consume)},
            {"publish", list(permissions.publish)},
            {"subscribe", list(permissions.subscribe)}};
}

int run_add(const TrustOptions& options) {
    const std::string path = file_of(options);
    const auto key = key_of(options.key);
    if (!key) {
        throw CliError("'" + options.key +
                       "' is not a public key: give its 40 Z85 characters, or host:port#KEY as "
                       "a node prints its address");
    }
    AuthorizedKey entry;
    entry.key = *key;
    entry.name = options.name;
    entry.permissions.send = list_of(options.send);
    entry.permissions.consume = list_of(options.consume);
    entry.permissions.publish = list_of(options.publish);
    entry.permissions.subscribe = list_of(options.subscribe);
    if (Status added = detail::add_authorized_key(path, entry); !added.ok())
        throw CliError(added.message());
    print_line("added " + entry.name + " (id " + detail::node_id_of(entry.key).to_string() + ", " +
               permissions_text(entry.permissions) + ") to " + path);
    return 0;
}

int run_remove(const TrustOptions& options) {
    const std::string path = file_of(options);
    std::string target = options.key_or_name;
    if (target.starts_with(' ')) target.erase(0, 1);
    if (const auto key = key_of(target)) target = detail::encode_key(*key);
    // Read first only to say whom the removal took off; remove_authorized_key decides.
    const auto before = detail::read_authorized_keys(path);
    if (Status removed = detail::remove_authorized_key(path, target); !removed.ok())
        throw CliError(removed.message());
    const AuthorizedKey* entry = nullptr;
    if (before) {
        const auto key = detail::decode_key(target);
        entry = key ? before->find(*key) : nullptr;
        if (!entry) entry = before->find_name(target);
    }
    print_line(entry ? "removed " + entry->name + " (" + detail::encode_key(entry->key) +
                           ") from " + path
                     : "removed the lines of " + target + " from " + path);
    return 0;
}

void print_list_json(const std::string& path, const detail::AuthorizedKeys& keys) {
    Json out = {{"file", path}, {"keys", Json::array()}, {"problems", Json::array()}};
    for (const AuthorizedKey& entry : keys.keys) {
        out["keys"].push_back({{"key", detail::encode_key(entry.key)},
                               {"name", entry.name},
                               {"id", detail::node_id_of(entry.key).to_string()},
                               {"line", entry.line},
                               {"permissions", permissions_json(entry.permissions)}});
    }
    for (const auto& problem : keys.problems)
        out["problems"].push_back({{"line", problem.line}, {"reason", problem.reason}});
    print_line(dump(out));
}

// The problems are told, and yet the exit is 0: the file was read, and a node reading it
// would skip the same lines (the exit says whether the file could be read, not how good it is).
int run_list(const TrustOptions& options) {
    const std::string path = file_of(options);
    const auto read = detail::read_authorized_keys(path);
    if (!read) throw CliError(read.status().message());
    if (options.json) {
        print_list_json(path, *read);
        return 0;
    }
    Table table({"NAME", "ID", "KEY", "PERMISSIONS"});
    for (const AuthorizedKey& entry : read->keys) {
        table.add({entry.name, detail::node_id_of(entry.key).to_string(),
                   detail::encode_key(entry.key), permissions_text(entry.permissions)});
    }
    if (table.empty())
        note("no keys in " + path);
    else
        print_text(table.render());
    for (const auto& problem : read->problems)
        note("line " + std::to_string(problem.line) + ": " + problem.reason);
    return 0;
}

void add_file_options(CLI::App& command, TrustOptions& options) {
    command.add_option("--file", options.file, "The authorized_keys file");
    command.add_option("--data-dir", options.data_dir,
                       "The node's data directory: its authorized_keys file");
}

// --send and the others: an option given empty ("--send ''") allows nothing, one not given
// allows everything, so the value is kept as an optional.
void add_permission_option(CLI::App& command, const std::string& name,
                           std::optional<std::string>& value, const std::string& description) {
    command.add_option_function<std::string>(
        name, [&value](const std::string& given) { value = given; }, description);
}

}  // namespace

void protect_key_arguments(std::vector<std::string>& args) {
    if (args.size() < 2 || args[1] != "trust") return;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i].starts_with('-') && key_of(args[i])) args[i].insert(0, 1, ' ');
    }
}

void add_trust_command(CLI::App& app, Runner& selected) {
    auto* trust = app.add_subcommand(
        "trust", "The authorized_keys file of trust mode authorized: add, remove, list keys");
    trust->require_subcommand(1);

    auto add = add_command<TrustOptions>(
        *trust, selected, "add",
        "List a node's public key under a name, with what it may do (all, unless limited)",
        run_add);
    add.app->add_option("KEY", add.options->key, "Its public key, or host:port#KEY")->required();
    add.app->add_option("NAME", add.options->name, "Its name: 1-48 of [A-Za-z0-9._-]")->required();
    add_file_options(*add.app, *add.options);
    add_permission_option(*add.app, "--send", add.options->send,
                          "Queues it may send to: q1,q2 or *; '' for none");
    add_permission_option(*add.app, "--consume", add.options->consume,
                          "Queues it may consume: q1,q2 or *; '' for none");
    add_permission_option(*add.app, "--publish", add.options->publish,
                          "Topic prefixes it may publish under, or *; '' for none");
    add_permission_option(*add.app, "--subscribe", add.options->subscribe,
                          "Topic prefixes it may subscribe within, or *; '' for none");

    auto remove =
        add_command<TrustOptions>(*trust, selected, "remove",
                                  "Take a key off the file, by its key or by its name", run_remove);
    remove.app->add_option("KEY_OR_NAME", remove.options->key_or_name, "A key, or a name")
        ->required();
    add_file_options(*remove.app, *remove.options);

    auto list = add_command<TrustOptions>(
        *trust, selected, "list",
        "The keys, their node ids and permissions; the lines a node skips, on stderr", run_list);
    add_file_options(*list.app, *list.options);
    list.app->add_flag("--json", list.options->json,
                       "One JSON object: file, keys, problems (line, reason)");
}

}  // namespace peermq::cli
