// The roles of peermq_driver (main.cpp): each takes the arguments after its name and returns the
// process's exit status. Each role's source file says what it prints and what it answers.
#pragma once

#include <string>
#include <vector>

namespace peermq::driver {

// `node`: a node run by its flags: a consumer, a producer, or both (node.cpp).
int run_node(const std::vector<std::string>& args);
// `probe`: a node commanded line by line that reports what it sees (probe.cpp).
int run_probe(const std::vector<std::string>& args);
// `discovery`: a discovery backend alone: check, serve or mesh (discovery.cpp).
int run_discovery(const std::vector<std::string>& args);

}  // namespace peermq::driver
