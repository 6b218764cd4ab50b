// Key pairs and the ids they give (peermq/keys.hpp), over libzmq's CURVE helpers.
#include "peermq/keys.hpp"

#include <zmq.h>

#include <array>
#include <cstdint>

#include "security/node_key.hpp"

namespace peermq {

Result<KeyPair> generate_key_pair() {
    std::array<char, kKeyTextSize + 1> public_text{};
    std::array<char, kKeyTextSize + 1> secret_text{};
    if (zmq_curve_keypair(public_text.data(), secret_text.data()) != 0) {
        return make_error(ErrorCode::unavailable, std::string("cannot make a CURVE key pair: ") +
                                                      zmq_strerror(zmq_errno()) +
                                                      " (libzmq without CURVE?)");
    }
    return KeyPair{std::string(public_text.data(), kKeyTextSize),
                   std::string(secret_text.data(), kKeyTextSize)};
}

Result<std::string> public_key_of(std::string_view secret_key) {
    if (!detail::decode_key(secret_key)) {
        return make_error(ErrorCode::invalid_argument, "a secret key is 40 characters of Z85 text");
    }
    const std::string secret(secret_key);
    std::array<char, kKeyTextSize + 1> public_text{};
    if (zmq_curve_public(public_text.data(), secret.c_str()) != 0) {
        return make_error(
            ErrorCode::unavailable,
            std::string("cannot derive a CURVE public key: ") + zmq_strerror(zmq_errno()));
    }
    return std::string(public_text.data(), kKeyTextSize);
}

Result<NodeId> node_id_of(std::string_view public_key) {
    const auto key = detail::decode_key(public_key);
    if (!key) {
        return make_error(ErrorCode::invalid_argument, "a public key is 40 characters of Z85 text");
    }
    return detail::node_id_of(*key);
}

std::string peer_address(std::string_view inbox_endpoint, std::string_view public_key) {
    std::string address(inbox_endpoint);
    address += '#';
    address += public_key;
    return address;
}

}  // namespace peermq
