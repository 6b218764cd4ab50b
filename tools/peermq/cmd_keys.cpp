// peermq keys: a node's CURVE key pair (docs/security.md). `generate` makes one, printed or
// written as a data directory's node.key; `show` prints a data directory's public key and the
// node id it gives: what another node needs to name it as a static peer (host:port#KEY).
#include <sys/stat.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "peermq/keys.hpp"
#include "security/node_key.hpp"

namespace peermq::cli {
namespace {

struct KeysOptions {
    std::string data_dir;
    bool json = false;
};

void print_key(const std::string& public_key, const NodeId& id, const std::string& secret_key,
               bool json) {
    if (json) {
        nlohmann::json out = {{"public_key", public_key}, {"id", id.to_string()}};
        if (!secret_key.empty()) out["secret_key"] = secret_key;
        print_line(out.dump());
        return;
    }
    print_line("public " + public_key);
    if (!secret_key.empty()) print_line("secret " + secret_key);
    print_line("id     " + id.to_string());
}

int run_generate(const KeysOptions& options) {
    if (options.data_dir.empty()) {
        auto pair = generate_key_pair();
        if (!pair) throw CliError(pair.status().message());
        print_key(pair->public_key, node_id_of(pair->public_key).value(), pair->secret_key,
                  options.json);
        return 0;
    }
    namespace fs = std::filesystem;
    if (fs::exists(fs::path(options.data_dir) / detail::kKeyFileName)) {
        throw CliError(options.data_dir + " already has a node key (peermq keys show --data-dir " +
                       options.data_dir + "); a new one would be a new node id");
    }
    std::error_code ec;
    if (!fs::exists(options.data_dir, ec)) {
        if (!fs::create_directories(options.data_dir, ec) && ec)
            throw CliError("cannot create " + options.data_dir + ": " + ec.message());
        ::chmod(options.data_dir.c_str(), 0700);
    }
    auto identity = detail::read_key_file(options.data_dir, true);
    if (!identity) throw CliError(identity.status().message());
    print_key(identity->public_key, identity->id, {}, options.json);
    return 0;
}

int run_show(const KeysOptions& options) {
    auto identity = detail::read_key_file(options.data_dir, false);
    if (!identity) throw CliError(identity.status().message());
    print_key(identity->public_key, identity->id, {}, options.json);
    return 0;
}

}  // namespace

void add_keys_command(CLI::App& app, Runner& selected) {
    auto* keys = app.add_subcommand("keys", "A node's key pair: make one, or show a data dir's");
    keys->require_subcommand(1);
    auto options = std::make_shared<KeysOptions>();

    auto* generate = keys->add_subcommand(
        "generate",
        "Make a key pair: printed (public, secret, node id), or with --data-dir "
        "written as its node.key (mode 0600) and only the public half printed");
    generate->add_option("--data-dir", options->data_dir, "The data directory to give the key");
    generate->add_flag("--json", options->json, "One JSON object");
    generate->callback(
        [options, &selected] { selected = [options] { return run_generate(*options); }; });

    auto* show = keys->add_subcommand(
        "show", "The public key and node id of a data directory's key (never the secret)");
    show->add_option("--data-dir", options->data_dir, "The node's data directory")->required();
    show->add_flag("--json", options->json, "One JSON object");
    show->callback([options, &selected] { selected = [options] { return run_show(*options); }; });
}

}  // namespace peermq::cli
