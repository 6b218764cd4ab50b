// A driver for the fuzz targets when they are not built with libFuzzer (the CI's GCC build): runs
// the target over seed inputs (valid frames of every kind, from the encoder) and over a fixed
// number of deterministic mutations of them (bit flips, byte changes, truncations, insertions,
// splices), so the `fuzz` tests replay the same inputs every run.
//   <binary> [iterations] [seed]
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(const msgpack::sbuffer& buffer) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(buffer.data());
    return Bytes(p, p + buffer.size());
}

std::vector<Bytes> seeds() {
    using namespace peermq::detail;
    std::vector<Bytes> out;
    for (Kind kind : {Kind::data, Kind::ack, Kind::nack, Kind::hello, Kind::heartbeat, Kind::bye,
                      Kind::reject, Kind::batch}) {
        Header h;
        h.kind = kind;
        h.sender = peermq::Uuid::generate();
        h.id = peermq::Uuid::generate();
        h.channel = "orders.eu";
        h.flags = kFlagAckRequested | kFlagDedupe;
        h.attempt = 3;
        h.created_ms = 1'764'000'000'000;
        h.deadline_ms = h.created_ms + 5000;
        h.seq = 42;
        h.headers = {{"trace", "abc"}, {"content-type", "application/msgpack"}};
        if (kind == Kind::ack || kind == Kind::nack) {
            h.ids = {peermq::Uuid::generate(), peermq::Uuid::generate()};
        }
        if (kind == Kind::nack || kind == Kind::reject) h.error = "handler threw: bad currency";
        msgpack::sbuffer buffer;
        encode_header(h, buffer);
        out.push_back(bytes_of(buffer));
    }
    Hello hello;
    hello.name = "worker-1";
    hello.cluster = "default";
    hello.inbox_port = 40000;
    hello.pub_port = 40001;
    hello.queues = {{"orders", 256}, {"payments", 16}};
    hello.topics = {"prices."};
    hello.heartbeat_ms = 1000;
    msgpack::sbuffer buffer;
    encode_hello(hello, buffer);
    out.push_back(bytes_of(buffer));
    // BATCH bodies, prefixed with their entry count (see envelope_fuzz.cpp): DATA headers
    // (seeds[0]) with payloads of several sizes, and an entry that is not DATA.
    for (std::uint8_t count : {1, 2, 5}) {
        msgpack::sbuffer body;
        const char count_byte = static_cast<char>(count);
        body.write(&count_byte, 1);
        for (std::uint8_t i = 0; i < count; ++i) {
            const Bytes& header = out[i % 2 == 0 ? 0 : 1];
            append_batch_entry({reinterpret_cast<const char*>(header.data()), header.size()},
                               std::string(static_cast<std::size_t>(i) * 7, 'p'), body);
        }
        out.push_back(bytes_of(body));
    }
    // A BATCH as a node sends it: entries of one sender and channel (shared leading bytes).
    {
        msgpack::sbuffer body;
        const char count_byte = 4;
        body.write(&count_byte, 1);
        Header h;
        h.kind = Kind::data;
        h.sender = peermq::Uuid::generate();
        h.channel = "orders.eu";
        h.flags = kFlagAckRequested;
        for (std::uint32_t i = 0; i < 4; ++i) {
            h.id = peermq::Uuid::generate();
            h.attempt = 1 + i;
            h.seq = 100 + i;
            msgpack::sbuffer header;
            encode_header(h, header);
            append_batch_entry({header.data(), header.size()}, "payload", body);
        }
        out.push_back(bytes_of(body));
    }
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
    const long iterations = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 200'000;
    const auto seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20261128ull;
    std::mt19937_64 random(seed);
    const std::vector<Bytes> pool = seeds();
    for (const Bytes& input : pool) LLVMFuzzerTestOneInput(input.data(), input.size());
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
    std::printf("%zu seeds and %ld mutated inputs: no crash, every accepted header round-trips\n",
                pool.size(), iterations);
    return 0;
}
