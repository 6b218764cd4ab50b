// What a fuzz target gives the deterministic driver (fuzz_driver.cpp) besides its
// LLVMFuzzerTestOneInput: inputs to start from, and a check to run once everything was replayed.
// libFuzzer never calls them.
#pragma once

#include <cstdint>
#include <vector>

namespace peermq::fuzz {

using Bytes = std::vector<std::uint8_t>;

// Inputs replayed before the corpus files and mutated with them.
std::vector<Bytes> seed_inputs();

// Called once after the last input; aborts the process if a property that needs time to show
// (every message settled, ...) does not hold.
void after_replay();

}  // namespace peermq::fuzz
