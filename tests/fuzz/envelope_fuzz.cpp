// Fuzz target: the wire envelope decoders (docs/spec/wire.md), which read bytes from any socket
// that reaches a node's inbox. Properties checked on every input:
//   - decode_header / decode_hello never crash, hang or read out of bounds (ASan under libFuzzer);
//   - a header they accept is valid MessagePack (msgpack-c parses it as one whole object), and
//     encoding the decoded header and decoding that again gives the same header (round trip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>

#include <msgpack.hpp>

#include "envelope.hpp"

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
        msgpack::object_handle handle = msgpack::unpack(reinterpret_cast<const char*>(data), size, offset);
        if (offset != size) fail("accepted a header with trailing bytes");
    } catch (const std::exception&) {
        fail("accepted a header that msgpack-c cannot parse");
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
    return 0;
}
