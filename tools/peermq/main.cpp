// peermq: the command-line tool. See docs/cli.md, or `peermq --help`.
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"

namespace {

// CLI11 messages can span lines; an error here is always one line.
std::string one_line(std::string text) {
    for (auto& c : text) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

// The deepest subcommand named on the command line, for the "see --help" hint.
std::string command_path(const CLI::App& app) {
    std::string path = app.get_name();
    const CLI::App* current = &app;
    for (;;) {
        const auto chosen = current->get_subcommands();
        if (chosen.empty()) return path;
        current = chosen.front();
        path += " " + current->get_name();
    }
}

// When parsing stopped at a command that needs a subcommand, the word given in its place: CLI11
// only says that a subcommand is required.
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv) {
    const CLI::App* current = &app;
    int index = 1;
    for (;;) {
        const auto chosen = current->get_subcommands();
        if (chosen.empty()) break;
        current = chosen.front();
        while (index < argc && argv[index] != current->get_name()) ++index;
        ++index;
    }
    if (current->get_subcommands({}).empty() || index >= argc) return std::nullopt;
    const std::string word = argv[index];
    if (word.empty() || word.front() == '-') return std::nullopt;
    return word;
}

// `peermq help [COMMAND...]` is `peermq [COMMAND...] --help`: the arguments to parse instead,
// or the word that names no command.
struct HelpRequest {
    std::vector<std::string> args;
    std::optional<std::string> unknown;
};
std::optional<HelpRequest> help_request(const CLI::App& app, int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) != "help") return std::nullopt;
    HelpRequest request{{argv[0]}, std::nullopt};
    const CLI::App* current = &app;
    for (int i = 2; i < argc; ++i) {
        const CLI::App* next = nullptr;
        for (const CLI::App* child : current->get_subcommands({})) {
            if (child->get_name() == argv[i]) next = child;
        }
        if (next == nullptr) {
            request.unknown = argv[i];
            return request;
        }
        request.args.emplace_back(argv[i]);
        current = next;
    }
    request.args.emplace_back("--help");
    return request;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace peermq::cli;
    CLI::App app{"peermq: peers, queues, topics and dead letters of a peermq cluster"};
    app.name("peermq");
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("peermq ") + PEERMQ_VERSION);

    Runner selected;
    add_peers_command(app, selected);
    add_send_commands(app, selected);
    add_consume_commands(app, selected);
    add_dlq_command(app, selected);
    add_stats_command(app, selected);
    add_queues_commands(app, selected);
    add_bench_command(app, selected);
    add_doctor_command(app, selected);
    add_keys_command(app, selected);
    add_trust_command(app, selected);
    app.add_subcommand("help", "The help of a command: peermq help send, peermq help dlq list");

    const std::optional<HelpRequest> help = help_request(app, argc, argv);
    if (help && help->unknown) {
        std::fprintf(stderr, "peermq: unknown command '%s' (see: peermq --help)\n",
                     help->unknown->c_str());
        return 2;
    }
    std::vector<const char*> help_args;
    if (help) {
        for (const auto& arg : help->args) help_args.push_back(arg.c_str());
    }

    std::vector<std::string> args(argv, argv + argc);
    protect_key_arguments(args);
    std::vector<const char*> arg_pointers;
    for (const auto& arg : args) arg_pointers.push_back(arg.c_str());
    try {
        if (help_args.empty()) {
            app.parse(static_cast<int>(arg_pointers.size()), arg_pointers.data());
        } else {
            app.parse(static_cast<int>(help_args.size()), help_args.data());
        }
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        const std::string path = command_path(app);
        std::string message = one_line(e.what());
        if (auto unknown = unknown_command(app, argc, argv))
            message = "unknown command '" + *unknown + "'";
        std::fprintf(stderr, "peermq: %s (see: %s --help)\n", message.c_str(), path.c_str());
        return 2;
    }
    try {
        return selected ? selected() : 0;
    } catch (const CliError& e) {
        std::fprintf(stderr, "peermq: %s\n", one_line(e.what()).c_str());
        return e.code;
    } catch (const CLI::Error& e) {
        std::fprintf(stderr, "peermq: %s\n", one_line(e.what()).c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "peermq: %s\n", one_line(e.what()).c_str());
        return 1;
    }
}
