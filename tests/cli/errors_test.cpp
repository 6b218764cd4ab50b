// What a user gets wrong: every mistake is one line "peermq: ..." on stderr, nothing on stdout
// and a non-zero exit (2 for bad arguments, 1 for a runtime failure); never a stack trace.
#include <fstream>

#include "cli_support.hpp"

namespace peermq::cli_test {
namespace {

TEST(CliErrorsTest, UnknownSubcommand) {
    expect_one_error_line(run_cli(Args{"frobnicate"}), 2, "unknown command 'frobnicate'");
    expect_one_error_line(run_cli(Args{"dlq", "frobnicate", "--data-dir", "/tmp"}), 2,
                          "unknown command 'frobnicate'");
    expect_one_error_line(run_cli(Args{}), 2, "subcommand is required");
}

TEST(CliErrorsTest, UnknownOptionAndMissingArgument) {
    expect_one_error_line(run_cli(Args{"peers", "--frobnicate"}), 2, "--frobnicate");
    expect_one_error_line(run_cli(Args{"consume"}), 2, "queue is required");
    expect_one_error_line(run_cli(Args{"send", "jobs", "--guarantee", "sometimes"}), 2,
                          "sometimes");
}

TEST(CliErrorsTest, DlqOnADirectoryThatDoesNotExist) {
    TempDir dir;
    const std::string missing = dir.file("no-such-dir");
    expect_one_error_line(run_cli(Args{"dlq", "list", "--data-dir", missing}), 1,
                          "no such data directory: " + missing);
}

TEST(CliErrorsTest, DlqOnADirectoryWithoutAJournalNamesTheFile) {
    TempDir dir;
    expect_one_error_line(run_cli(Args{"dlq", "list", "--data-dir", dir.path()}), 1,
                          dir.file("peermq.db"));
}

TEST(CliErrorsTest, DlqOnACorruptJournalNamesTheFile) {
    TempDir dir;
    {
        std::ofstream db(dir.file("peermq.db"), std::ios::binary);
        db << "this is not an SQLite database, and certainly not a peermq journal\n";
    }
    expect_one_error_line(run_cli(Args{"dlq", "list", "--data-dir", dir.path()}), 1,
                          dir.file("peermq.db"));
}

TEST(CliErrorsTest, BadDurationsAndTimes) {
    TempDir dir;
    expect_one_error_line(run_cli(Args{"dlq", "list", "--data-dir", dir.path(), "--since", "10x"}),
                          2, "--since");
    expect_one_error_line(
        run_cli(Args{"dlq", "list", "--data-dir", dir.path(), "--until", "2024-13-01"}), 2,
        "--until");
    expect_one_error_line(run_cli(Args{"peers", "--timeout", "soon"}), 2,
                          "'soon' is not a duration");
    expect_one_error_line(run_cli(Args{"send", "jobs", "x", "--ttl", "5"}), 2, "--ttl");
}

TEST(CliErrorsTest, BadMessageIdsAndInput) {
    TempDir dir;
    expect_one_error_line(run_cli(Args{"dlq", "show", "not-an-id", "--data-dir", dir.path()}), 2,
                          "'not-an-id' is not a message id");
    expect_one_error_line(run_cli(Args{"dlq", "replay", "--data-dir", dir.path()}), 2,
                          "IDs or --all");
    expect_one_error_line(run_cli(Args{"dlq", "list"}), 2, "--data-dir");
    expect_one_error_line(run_cli(Args{"send", "jobs", "{oops", "--json"} + on_lo()), 2,
                          "argument 1 is not valid JSON");
    expect_one_error_line(run_cli(Args{"send", "jobs"} + on_lo()), 2, "nothing to send");
    expect_one_error_line(run_cli(Args{"send", "jobs", "x", "--header", "novalue"} + on_lo()), 2,
                          "KEY=VALUE");
}

TEST(CliErrorsTest, NodeThatCannotStart) {
    expect_one_error_line(
        run_cli(Args{"peers", "--interface", "nosuchif0", "--discovery", "static"}), 1,
        "nosuchif0");
}

TEST(CliErrorsTest, StatsWithoutARunningNode) {
    TempDir dir;
    expect_one_error_line(run_cli(Args{"stats", "--data-dir", dir.path()}), 1,
                          "no node is running on " + dir.path());
}

}  // namespace
}  // namespace peermq::cli_test
