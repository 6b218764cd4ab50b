// peermq_driver: peermq in a process of its own, for the tests and the benchmarks that must run
// it where the test cannot (another network namespace or lab host), kill it (SIGKILL, SIGSTOP),
// restart it on the same data directory, or keep it off the measuring process's cores.
//
//   peermq_driver node [flags]       a node run by its flags: consumer, producer (node.cpp)
//   peermq_driver probe [flags]      a node commanded line by line, reporting peer events and the
//                                    messages it handled, with timestamps (probe.cpp)
//   peermq_driver discovery check|serve|mesh [flags]
//                                    a discovery backend alone (discovery.cpp)
//   peermq_driver bench --role ROLE [flags]
//                                    the receiving side of a benchmark figure (harness/bench/
//                                    roles.hpp); `peermq bench-peer` runs the same roles
//
// Not installed. Exit status: 2 for bad arguments; otherwise as the role says.
#include <cstdio>
#include <string>
#include <vector>

#include "driver.hpp"
#include "roles.hpp"

namespace {

int usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: peermq_driver node|probe [flags]\n"
                 "       peermq_driver discovery check|serve|mesh [flags]\n"
                 "       peermq_driver bench --role ROLE [flags]\n"
                 "(the flags of each role are described at the top of its source file in "
                 "harness/driver/)\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage(stderr);
    const std::string role = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    if (role == "node") return peermq::driver::run_node(args);
    if (role == "probe") return peermq::driver::run_probe(args);
    if (role == "discovery") return peermq::driver::run_discovery(args);
    if (role == "bench") {
        if (args.size() < 2 || args[0] != "--role") return usage(stderr);
        return peermq::bench::run_role({args.begin() + 1, args.end()});
    }
    if (role == "--help" || role == "-h") {
        usage(stdout);
        return 0;
    }
    std::fprintf(stderr, "peermq_driver: unknown role '%s'\n", role.c_str());
    return usage(stderr);
}
