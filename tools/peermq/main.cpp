// peermq: the command-line tool. See docs/cli.md, or `peermq --help`.
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

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

}  // namespace

int main(int argc, char** argv) {
    using namespace peermq::cli;
    CLI::App app{"peermq: peers, queues, topics and dead letters of a peermq cluster"};
    app.name("peermq");
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("peermq ") + PEERMQ_VERSION);

    Runner selected;
    add_peers_command(app, selected);
    add_message_commands(app, selected);
    add_dlq_command(app, selected);
    add_stats_command(app, selected);
    add_bench_command(app, selected);
    add_doctor_command(app, selected);

    try {
        app.parse(argc, argv);
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
