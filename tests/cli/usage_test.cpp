// Usage mistakes are usage errors (docs/cli.md, "Conventions"): a negative or out-of-range
// count, an unknown dead-letter reason, a bad --peer or bad JSON input exit 2 with one line
// naming the problem, at once; `peermq help COMMAND` is the command's help; options that only
// make sense together say so; and a host without avahi-daemon is told what to pass.
#include <fstream>

#include "cli_support.hpp"
#include "support/scoped_env.hpp"

namespace peermq::cli_test {
namespace {

void expect_usage_error(const Args& args, const std::string& mentions) {
    // A mistaken count must not start anything: the answer comes at once.
    expect_one_error_line(run_cli(args, 10s), 2, mentions);
}

TEST(CliUsageTest, NegativeCountsAndSizesAreUsageErrors) {
    TempDir dir;
    expect_usage_error(Args{"consume", "jobs", "--count", "-1"} + on_lo(), "--count");
    expect_usage_error(Args{"send", "jobs", "--count", "-1"} + on_lo(), "--count");
    expect_usage_error(Args{"publish", "t", "x", "--count", "-5"} + on_lo(), "--count");
    expect_usage_error(Args{"tap", "t.", "--count", "-1"} + on_lo(), "--count");
    expect_usage_error(Args{"peers", "--wait", "-1"} + on_lo(), "--wait");
    expect_usage_error(Args{"consume", "jobs", "--prefetch", "-1"} + on_lo(), "--prefetch");
    expect_usage_error(Args{"send", "jobs", "x", "--max-attempts", "-1"} + on_lo(),
                       "--max-attempts");
    expect_usage_error(Args{"publish", "t", "x", "--subscribers", "-1"} + on_lo(), "--subscribers");
    expect_usage_error(Args{"peers", "--port", "-1"} + on_lo(), "--port");
    expect_usage_error(Args{"dlq", "list", "--data-dir", dir.path(), "--limit", "-1"}, "--limit");
    expect_usage_error(Args{"bench", "--messages", "-1"}, "--messages");
    expect_usage_error(Args{"bench", "--runs", "-3"}, "--runs");
    expect_usage_error(Args{"bench", "--size", "-64"}, "--size");
    // Past the type's range.
    expect_usage_error(Args{"consume", "jobs", "--count", "18446744073709551616"} + on_lo(),
                       "--count");
    expect_usage_error(Args{"consume", "jobs", "--prefetch", "4294967296"} + on_lo(), "--prefetch");
    expect_usage_error(Args{"peers", "--port", "65536"} + on_lo(), "--port");
}

TEST(CliUsageTest, AnUnknownDeadLetterReasonIsAUsageErrorListingTheKnownOnes) {
    TempDir dir;
    expect_usage_error(Args{"dlq", "list", "--data-dir", dir.path(), "--reason", "bogus"},
                       "max_attempts");
    expect_usage_error(
        Args{"dlq", "purge", "--all", "--data-dir", dir.path(), "--reason", "Expired"}, "--reason");
    expect_usage_error(
        Args{"dlq", "replay", "--all", "--data-dir", dir.path(), "--reason", "bogus"}, "--reason");
    // Every reason a node or its journal writes is accepted (an empty directory: no journal).
    for (const char* reason :
         {"max_attempts", "expired", "rejected", "no_consumer", "dropped_oldest", "corrupt"}) {
        const CliResult result =
            run_cli(Args{"dlq", "list", "--data-dir", dir.path(), "--reason", reason});
        EXPECT_EQ(result.exit_code, 1) << reason << "\n" << result;
        EXPECT_NE(result.err.find("peermq.db"), std::string::npos) << reason << "\n" << result;
    }
}

TEST(CliUsageTest, ABadPeerOrBadJsonIsAUsageError) {
    expect_usage_error(
        Args{"peers", "--interface", "lo", "--discovery", "static", "--peer", "nonsense"},
        "--peer");
    expect_usage_error(Args{"send", "jobs", "x", "--peer", "127.0.0.1:99999"} + on_lo(), "--peer");
    expect_usage_error(Args{"send", "jobs", "{oops", "--json"} + on_lo(),
                       "argument 1 is not valid JSON");
    TempDir dir;
    {
        std::ofstream file(dir.file("orders.json"));
        file << "{\"id\":1}\n{\"id\":\n";
    }
    expect_usage_error(Args{"send", "jobs", "--json", "--file", dir.file("orders.json")} + on_lo(),
                       "line 2 is not valid JSON");
    {
        std::ofstream file(dir.file("bad.mp"), std::ios::binary);
        file << "\xc1";
    }
    expect_usage_error(Args{"send", "jobs", "--msgpack", "--file", dir.file("bad.mp")} + on_lo(),
                       "not a MessagePack stream");
}

TEST(CliUsageTest, HelpCommandPrintsTheHelpOfTheCommandNamed) {
    const CliResult send = run_cli(Args{"help", "send"});
    EXPECT_EQ(send.exit_code, 0) << send;
    EXPECT_NE(send.out.find("Send messages to a work queue"), std::string::npos) << send;
    EXPECT_NE(send.out.find("--guarantee"), std::string::npos) << send;
    EXPECT_EQ(send.out, run_cli(Args{"send", "--help"}).out);

    const CliResult list = run_cli(Args{"help", "dlq", "list"});
    EXPECT_EQ(list.exit_code, 0) << list;
    EXPECT_NE(list.out.find("--reason"), std::string::npos) << list;

    const CliResult top = run_cli(Args{"help"});
    EXPECT_EQ(top.exit_code, 0) << top;
    EXPECT_EQ(top.out, run_cli(Args{"--help"}).out);
    EXPECT_NE(top.out.find("help"), std::string::npos) << top;

    expect_usage_error(Args{"help", "frobnicate"}, "unknown command 'frobnicate'");
}

TEST(CliUsageTest, TimeoutWithoutCountEndsTheRunWithoutAFailure) {
    for (const Args& args : {Args{"consume", "jobs", "--timeout", "300ms"} + on_lo(),
                             Args{"tap", "t.", "--timeout", "300ms"} + on_lo()}) {
        const CliResult result = run_cli(args, 20s);
        EXPECT_EQ(result.exit_code, 0) << result;
        EXPECT_EQ(result.err.find("only 0 of 0"), std::string::npos) << result;
        EXPECT_NE(result.err.find(": 0 messages in"), std::string::npos) << result;
    }
    // With a count, the timeout is still a failure that says what arrived.
    const CliResult counted =
        run_cli(Args{"consume", "jobs", "--count", "3", "--timeout", "300ms"} + on_lo(), 20s);
    EXPECT_EQ(counted.exit_code, 1) << counted;
    EXPECT_NE(counted.err.find("only 0 of 3 messages within 300ms"), std::string::npos) << counted;
}

// No avahi-daemon answers (the system bus is pointed at nothing) and no --interface: the error
// says what to pass, not which field of which C++ struct was empty.
TEST(CliUsageTest, WithoutAvahiDaemonOrInterfaceTheErrorSaysWhatToPass) {
    peermq::testing::ScopedEnv no_bus("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    peermq::testing::ScopedEnv no_interface("PEERMQ_INTERFACE", nullptr);
    const CliResult result = run_cli(Args{"peers"}, 20s);
    EXPECT_EQ(result.exit_code, 1) << result;
    EXPECT_EQ(result.out, "") << result;
    ASSERT_EQ(result.err_lines().size(), 1u) << result;
    EXPECT_EQ(result.err.find("AvahiOptions"), std::string::npos) << result;
    EXPECT_NE(result.err.find("--interface"), std::string::npos) << result;
    EXPECT_NE(result.err.find("--discovery static"), std::string::npos) << result;

    expect_usage_error(Args{"peers", "--discovery", "embedded"}, "--interface");
}

}  // namespace
}  // namespace peermq::cli_test
