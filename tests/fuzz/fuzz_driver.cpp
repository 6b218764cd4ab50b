// A driver for the fuzz targets when they are not built with libFuzzer (the CI's GCC build): runs
// the target over its seed inputs (fuzz_driver.hpp) and the files of the corpus paths given, in
// name order, then over a fixed number of deterministic mutations of them (bit flips, byte
// changes, truncations, insertions, splices), so the `fuzz` tests replay the same inputs every
// run; last, the target's after_replay() check.
//   <binary> [iterations] [seed] [[--repeat=N] corpus directory or file]...
//   <binary> --write-seeds DIRECTORY      writes the seed inputs there (a corpus to start from)
// --repeat=N replays each input of the paths after it N times in a row (a regression of a
// target that keeps state between inputs may need a few tries to show); they are not mutated.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fuzz_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using peermq::fuzz::Bytes;

Bytes read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz_driver: cannot read %s\n", path.c_str());
        std::exit(2);
    }
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The files of a corpus directory in name order (or the one file named): the same order on
// every run and every machine.
std::vector<Bytes> read_corpus(const std::filesystem::path& path) {
    std::error_code error;
    if (!std::filesystem::is_directory(path, error)) {
        if (!std::filesystem::is_regular_file(path, error)) {
            std::fprintf(stderr, "fuzz_driver: no corpus at %s\n", path.c_str());
            std::exit(2);
        }
        return {read_file(path)};
    }
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<Bytes> out;
    for (const auto& file : files) out.push_back(read_file(file));
    return out;
}

Bytes mutate(const Bytes& input, const std::vector<Bytes>& pool, std::mt19937_64& random) {
    Bytes b = input;
    const int rounds = 1 + static_cast<int>(random() % 4);
    for (int r = 0; r < rounds; ++r) {
        const std::size_t at = b.empty() ? 0 : random() % b.size();
        switch (random() % 6) {
            case 0:  // flip a bit
                if (!b.empty()) b[at] ^= static_cast<std::uint8_t>(1u << (random() % 8));
                break;
            case 1:  // an interesting byte: MessagePack type markers and limits
                if (!b.empty()) {
                    static constexpr std::uint8_t kBytes[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                                              0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc6,
                                                              0xcf, 0xd3, 0xdb, 0xdd, 0xdf, 0xff};
                    b[at] = kBytes[random() % sizeof kBytes];
                }
                break;
            case 2:  // truncate
                b.resize(at);
                break;
            case 3:  // insert random bytes
                for (int i = 0, n = 1 + static_cast<int>(random() % 8); i < n; ++i) {
                    b.insert(b.begin() + static_cast<std::ptrdiff_t>(std::min(at, b.size())),
                             static_cast<std::uint8_t>(random()));
                }
                break;
            case 4: {  // splice with another seed
                const Bytes& other = pool[random() % pool.size()];
                const std::size_t from = other.empty() ? 0 : random() % other.size();
                b.resize(std::min(at, b.size()));
                b.insert(b.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
                break;
            }
            default:  // a big length prefix
                if (b.size() > at + 4) {
                    b[at] = 0xdd;
                    b[at + 1] = b[at + 2] = b[at + 3] = b[at + 4] = 0xff;
                }
                break;
        }
    }
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
        const std::vector<Bytes> seeds = peermq::fuzz::seed_inputs();
        for (std::size_t i = 0; i < seeds.size(); ++i) {
            const auto path = std::filesystem::path(argv[2]) / ("seed-" + std::to_string(i));
            std::ofstream(path, std::ios::binary)
                .write(reinterpret_cast<const char*>(seeds[i].data()),
                       static_cast<std::streamsize>(seeds[i].size()));
        }
        std::printf("%zu seeds written to %s\n", seeds.size(), argv[2]);
        return 0;
    }
    const long iterations = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 200'000;
    const auto seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20261128ull;
    std::mt19937_64 random(seed);
    std::vector<Bytes> pool = peermq::fuzz::seed_inputs();
    const std::size_t seeds = pool.size();
    std::vector<Bytes> repeated;
    long repeat = 1;
    for (int i = 3; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.starts_with("--repeat=")) {
            repeat = std::strtol(arg.c_str() + 9, nullptr, 10);
            continue;
        }
        for (Bytes& input : read_corpus(arg)) {
            (repeat > 1 ? repeated : pool).push_back(std::move(input));
        }
    }
    if (pool.empty()) pool.emplace_back();
    for (const Bytes& input : pool) LLVMFuzzerTestOneInput(input.data(), input.size());
    for (const Bytes& input : repeated) {
        for (long r = 0; r < repeat; ++r) LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    Bytes random_bytes;
    for (long i = 0; i < iterations; ++i) {
        if (i % 16 == 0) {  // now and then, plain noise
            random_bytes.resize(random() % 64);
            for (auto& byte : random_bytes) byte = static_cast<std::uint8_t>(random());
            LLVMFuzzerTestOneInput(random_bytes.data(), random_bytes.size());
            continue;
        }
        const Bytes input = mutate(pool[random() % pool.size()], pool, random);
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    peermq::fuzz::after_replay();
    std::printf(
        "%zu seeds, %zu corpus inputs, %zu regressions (%ld times each) and %ld mutated inputs: "
        "no crash, no failed check\n",
        seeds, pool.size() - seeds, repeated.size(), repeat, iterations);
    return 0;
}
