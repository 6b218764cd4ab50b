// Fuzz target: the wire envelope decoders (docs/spec/wire.md), which read bytes from any socket
// that reaches a node's inbox. Properties checked on every input:
//   - decode_header / decode_hello never crash, hang or read out of bounds (ASan under libFuzzer);
//   - a header they accept is valid MessagePack (msgpack-c parses it as one whole object), and
//     encoding the decoded header and decoding that again gives the same header (round trip);
//   - split_batch, given the input as a BATCH body whose entry count is its first byte, never
//     crashes; a body it accepts has entries inside it that encode back to exactly that body, and
//     each entry's header goes through decode_header without harm, and the BatchHeaderDecoder
//     (what the actor uses) gives for each entry exactly what decode_header gives for it alone.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "fuzz_driver.hpp"
#include "wire/envelope.hpp"

namespace {

using peermq::detail::Header;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "envelope_fuzz: %s\n", what);
    std::abort();
}

bool same(const Header& a, const Header& b) {
    return a.version == b.version && a.kind == b.kind && a.sender == b.sender && a.id == b.id &&
           a.channel == b.channel && a.flags == b.flags && a.attempt == b.attempt &&
           a.created_ms == b.created_ms && a.deadline_ms == b.deadline_ms && a.seq == b.seq &&
           a.headers == b.headers && a.ids == b.ids && a.error == b.error;
}

void check_msgpack(const std::uint8_t* data, std::size_t size) {
    try {
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(reinterpret_cast<const char*>(data), size, offset);
        if (offset != size) fail("accepted a header with trailing bytes");
    } catch (const std::exception&) {
        fail("accepted a header that msgpack-c cannot parse");
    }
}

void check_batch(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return;
    std::vector<peermq::detail::BatchEntry> entries;
    const std::uint8_t* body = data + 1;
    const std::size_t body_size = size - 1;
    if (peermq::detail::split_batch(body, body_size, data[0], entries)) return;
    if (entries.size() != data[0]) fail("a batch splits into another number of entries");
    msgpack::sbuffer again;
    peermq::detail::BatchHeaderDecoder decoder;
    Header shared;
    for (const auto& entry : entries) {
        for (std::string_view part : {entry.header, entry.payload}) {
            const auto* p = reinterpret_cast<const std::uint8_t*>(part.data());
            if (!part.empty() && (p < body || p + part.size() > body + body_size)) {
                fail("a batch entry points outside its body");
            }
        }
        peermq::detail::append_batch_entry(entry.header, entry.payload, again);
        Header header;
        const auto alone =
            peermq::detail::decode_header(entry.header.data(), entry.header.size(), header);
        if (decoder.decode(entry.header, shared) != alone) {
            fail("the batch decoder and decode_header give different reasons for an entry");
        }
        if (!alone && !same(header, shared)) {
            fail("the batch decoder and decode_header decode an entry differently");
        }
    }
    if (again.size() != body_size ||
        (body_size > 0 && std::memcmp(again.data(), body, body_size))) {
        fail("a batch does not encode back to its body");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Header header;
    if (!peermq::detail::decode_header(data, size, header)) {
        check_msgpack(data, size);
        msgpack::sbuffer encoded;
        peermq::detail::encode_header(header, encoded);
        Header again;
        if (auto reason = peermq::detail::decode_header(encoded.data(), encoded.size(), again)) {
            fail("a decoded header does not decode after encoding");
        }
        if (!same(header, again)) fail("a decoded header changes through encode/decode");
    }
    peermq::detail::Hello hello;
    (void)peermq::detail::decode_hello(data, size, hello);
    check_batch(data, size);
    return 0;
}

namespace {

using Bytes = peermq::fuzz::Bytes;

Bytes bytes_of(const msgpack::sbuffer& buffer) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(buffer.data());
    return Bytes(p, p + buffer.size());
}

}  // namespace

// Valid frames of every kind, from the encoder, and BATCH bodies (prefixed with their entry
// count, as LLVMFuzzerTestOneInput reads them).
std::vector<peermq::fuzz::Bytes> peermq::fuzz::seed_inputs() {
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
    // BATCH bodies, prefixed with their entry count: DATA headers (out[0]) with payloads of
    // several sizes, and an entry that is not DATA (out[1]).
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

void peermq::fuzz::after_replay() {}
