// The subcommands of the `peermq` tool. Each add_*_command registers its subcommand(s) on the
// application; when one is chosen on the command line, its parse callback stores what to run in
// `selected`, and main() runs it after parsing. A command returns the process exit code; errors
// are reported by throwing CliError (one line, no stack trace).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace peermq::cli {

using Runner = std::function<int()>;

// A user-facing failure: main() prints "peermq: <what>" and exits with `code`.
struct CliError : std::runtime_error {
    explicit CliError(const std::string& what, int code = 1)
        : std::runtime_error(what), code(code) {}
    int code;
};

void add_peers_command(CLI::App& app, Runner& selected);
void add_send_commands(CLI::App& app, Runner& selected);     // send, publish
void add_consume_commands(CLI::App& app, Runner& selected);  // consume, tap
void add_dlq_command(CLI::App& app, Runner& selected);
void add_stats_command(CLI::App& app, Runner& selected);
void add_queues_commands(CLI::App& app, Runner& selected);  // queues, top
void add_bench_command(CLI::App& app, Runner& selected);
void add_doctor_command(CLI::App& app, Runner& selected);
void add_keys_command(CLI::App& app, Runner& selected);   // keys generate, keys show
void add_trust_command(CLI::App& app, Runner& selected);  // trust add, remove, list
// A Z85 key may begin with '-', which the parser would take for an option: the arguments of
// `peermq trust` that are keys (or addresses ending with one) and begin with '-' get a leading
// space, which makes them positional; cmd_trust.cpp strips it.
void protect_key_arguments(std::vector<std::string>& args);

}  // namespace peermq::cli
