// peermq: the command-line tool. See docs/cli.md, or `peermq --help`.
#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
    using namespace peermq::cli;
    CLI::App app{"peermq: peers, queues, topics and dead letters of a peermq cluster"};
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
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        return selected ? selected() : 0;
    } catch (const CliError& e) {
        std::fprintf(stderr, "peermq: %s\n", e.what());
        return e.code;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "peermq: %s\n", e.what());
        return 1;
    }
}
