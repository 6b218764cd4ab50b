#include "admin/control_codec.hpp"

#include <optional>
#include <string>
#include <type_traits>

#include "admin/control_messages.hpp"
#include "wire/msgpack_fields.hpp"
#include "wire/msgpack_table.hpp"

namespace peermq::detail {
namespace {

using msgpack::type::object_type;
using Object = msgpack::object;

// Calls visit(verb) for each row of control::kVerbs.
template <typename Visit>
void for_each_verb(Visit&& visit) {
    std::apply([&](const auto&... verb) { (visit(verb), ...); }, control::kVerbs);
}

// How many verbs have requests of type R, and replies whose body is a B: each alternative of
// ControlRequest and of ControlReplyBody is exactly one verb's.
template <typename R, typename... Verbs>
constexpr std::size_t verbs_with_request(std::type_identity<std::tuple<Verbs...>>) {
    return (std::size_t{std::is_same_v<typename Verbs::request_type, R>} + ...);
}
template <typename B, typename... Verbs>
constexpr std::size_t verbs_with_body(std::type_identity<std::tuple<Verbs...>>) {
    return (std::size_t{std::is_same_v<typename Verbs::body_codec::value_type, B>} + ...);
}
template <typename... Requests, typename... Bodies>
constexpr bool one_verb_each(std::type_identity<std::variant<Requests...>>,
                             std::type_identity<std::variant<Bodies...>>) {
    using Verbs = std::type_identity<std::decay_t<decltype(control::kVerbs)>>;
    return ((verbs_with_request<Requests>(Verbs{}) == 1) && ...) &&
           ((verbs_with_body<Bodies>(Verbs{}) == 1) && ...) &&
           sizeof...(Requests) == std::tuple_size_v<std::decay_t<decltype(control::kVerbs)>>;
}
static_assert(one_verb_each(std::type_identity<ControlRequest>{},
                            std::type_identity<ControlReplyBody>{}),
              "every request and every reply body is one row of control::kVerbs");

// Unpacks exactly one MessagePack object filling the whole buffer; on anything else, why not.
std::optional<std::string> unpack_one(const void* data, std::size_t size,
                                      const msgpack::unpack_limit& limit,
                                      msgpack::object_handle& out) {
    if (data == nullptr || size == 0) return "empty";
    try {
        std::size_t offset = 0;
        out =
            msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr, limit);
        if (offset != size) return "trailing bytes";
        return std::nullopt;
    } catch (const msgpack::size_overflow& e) {
        return std::string("exceeds the decode limits: ") + e.what();
    } catch (const std::exception& e) {
        return e.what();
    }
}

std::optional<ControlRequestError> bad(std::string_view reason, std::string message) {
    return ControlRequestError{reason, std::move(message)};
}

// The arguments of `verb` (elements 2.. of the request array e[0..n)) into `request`.
template <typename Verb, typename Request>
std::optional<ControlRequestError> read_arguments(const Verb& verb, const Object* e,
                                                  std::uint32_t n, Request& request) {
    std::optional<ControlRequestError> error;
    std::uint32_t at = 2;
    const std::string name(verb.name);
    const auto read = [&](const auto& arg) {
        using Codec = typename std::decay_t<decltype(arg)>::codec;
        const Object* value = at < n ? &e[at] : nullptr;
        ++at;
        if (error) return;
        if (value == nullptr || (arg.presence == control::Presence::optional_or_nil &&
                                 value->type == object_type::NIL)) {
            if (arg.presence == control::Presence::required) {
                error = bad("control.bad_request", name + std::string(arg.missing));
            }
            return;
        }
        MsgpackReader reader;
        if (Codec::read(reader, *value, request.*arg.member)) return;
        error = bad("control.bad_request",
                    arg.bad.empty() ? name + ": " + reader.error() : name + std::string(arg.bad));
    };
    std::apply([&](const auto&... arg) { (read(arg), ...); }, verb.args);
    return error;
}

// [1, "ok", body]: the body, or the Status of an error reply or of a malformed reply.
Result<const Object*> reply_body(const msgpack::object_handle& handle,
                                 const std::optional<std::string>& unpack_error) {
    auto malformed = [](std::string what) {
        return Status(ErrorCode::protocol_error, "malformed control reply: " + std::move(what));
    };
    if (unpack_error) return malformed("not one MessagePack value (" + *unpack_error + ")");
    const Object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size < 2) {
        return malformed("not an array [version, status, ...]");
    }
    const Object* e = root.via.array.ptr;
    std::uint64_t version = 0;
    if (!read_uint(e[0], version)) return malformed("the version is not an unsigned integer");
    if (version != kControlVersion) {
        return Status(ErrorCode::protocol_error,
                      "the node answered in control protocol version " + std::to_string(version) +
                          "; this client speaks version " + std::to_string(kControlVersion));
    }
    std::string status;
    if (!read_str(e[1], status, kMaxControlStringBytes))
        return malformed("the status is not a string");
    if (status == "error") {
        std::string code_name, message;
        if (root.via.array.size < 4 || !read_str(e[2], code_name, kMaxControlStringBytes) ||
            !read_str(e[3], message, kMaxControlStringBytes)) {
            return malformed("an error reply needs a code name and a message");
        }
        auto code = error_code_from_name(code_name);
        if (!code || *code == ErrorCode::ok) {
            return Status(ErrorCode::protocol_error, code_name + ": " + message);
        }
        return Status(*code, std::move(message));
    }
    if (status != "ok") return malformed("unknown status '" + status + "'");
    if (root.via.array.size < 3) return malformed("an ok reply without a body");
    return &e[2];
}

// The deepest reply: [1, "ok", {"queues": {name: {"ack_latency": {"buckets": [...]}}}}].
constexpr std::size_t kMaxReplyDepth = 8;

// Decodes an ok reply whose body is a B, read by the codec of the verb that answers with one.
// No container of the reply can claim more elements than the reply has bytes: a forged length
// is refused before anything is allocated for it.
template <typename B>
Result<B> decode_reply(const void* data, std::size_t size) {
    const msgpack::unpack_limit limit(size, size / 2, size, size, 0, kMaxReplyDepth);
    msgpack::object_handle handle;
    const auto unpack_error = unpack_one(data, size, limit, handle);
    auto body = reply_body(handle, unpack_error);
    if (!body) return body.status();
    B value{};
    MsgpackReader reader;
    std::string_view verb_name;
    bool ok = false;
    for_each_verb([&](const auto& verb) {
        using Codec = typename std::decay_t<decltype(verb)>::body_codec;
        if constexpr (std::is_same_v<typename Codec::value_type, B>) {
            verb_name = verb.name;
            ok = Codec::read(reader, *body.value(), value) || reader.fail(verb.body_what);
        }
    });
    if (!ok) {
        return Status(
            ErrorCode::protocol_error,
            "malformed control reply: " + std::string(verb_name) + " body: bad " + reader.error());
    }
    return value;
}

}  // namespace

void encode_request(const ControlRequest& request, msgpack::sbuffer& out) {
    MsgpackWriter w(out);
    std::visit(
        [&](const auto& r) {
            for_each_verb([&](const auto& verb) {
                using Verb = std::decay_t<decltype(verb)>;
                if constexpr (std::is_same_v<typename Verb::request_type,
                                             std::decay_t<decltype(r)>>) {
                    w.pk.pack_array(
                        static_cast<std::uint32_t>(2 + std::tuple_size_v<decltype(verb.args)>));
                    w.pk.pack_uint32(kControlVersion);
                    pack_str(w.pk, verb.name);
                    std::apply(
                        [&](const auto&... arg) {
                            (std::decay_t<decltype(arg)>::codec::pack(w, r.*arg.member), ...);
                        },
                        verb.args);
                }
            });
        },
        request);
}

std::optional<ControlRequestError> decode_request(const void* data, std::size_t size,
                                                  ControlRequest& out) {
    // Requests are small: bounded containers and strings, at most three levels deep.
    static const msgpack::unpack_limit limit(64, 64, kMaxControlStringBytes, kMaxControlStringBytes,
                                             0, 3);
    if (size > kMaxControlRequestBytes) {
        return bad("control.garbage",
                   "a request is at most " + std::to_string(kMaxControlRequestBytes) + " bytes");
    }
    msgpack::object_handle handle;
    if (unpack_one(data, size, limit, handle)) {
        return bad("control.garbage", "a request is one MessagePack array [version, verb, ...]");
    }
    const Object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size < 2) {
        return bad("control.garbage", "a request is a MessagePack array [version, verb, ...]");
    }
    const Object* e = root.via.array.ptr;
    std::uint64_t version = 0;
    if (!read_uint(e[0], version)) {
        return bad("control.garbage", "the request version must be an unsigned integer");
    }
    if (version != kControlVersion) {
        return bad("control.bad_version",
                   "unsupported control protocol version " + std::to_string(version) +
                       "; this node speaks version " + std::to_string(kControlVersion));
    }
    std::string name;
    if (!read_str(e[1], name, 64)) {
        return bad("control.garbage", "the request verb must be a string");
    }
    std::optional<ControlRequestError> error =
        bad("control.unknown_verb", "unknown control verb '" + name + "'");
    for_each_verb([&](const auto& verb) {
        if (verb.name != name) return;
        typename std::decay_t<decltype(verb)>::request_type request{};
        error = read_arguments(verb, e, root.via.array.size, request);
        if (!error) out = std::move(request);
    });
    return error;
}

void encode_ok_reply(const ControlReplyBody& body, msgpack::sbuffer& out) {
    MsgpackWriter w(out);
    w.pk.pack_array(3);
    w.pk.pack_uint32(kControlVersion);
    pack_str(w.pk, "ok");
    std::visit(
        [&](const auto& b) {
            for_each_verb([&](const auto& verb) {
                using Codec = typename std::decay_t<decltype(verb)>::body_codec;
                if constexpr (std::is_same_v<typename Codec::value_type,
                                             std::decay_t<decltype(b)>>) {
                    // A list cut short counts what it left out in the body itself, if anywhere.
                    (void)Codec::pack(w, b);
                }
            });
        },
        body);
}

void encode_error_reply(const Status& status, msgpack::sbuffer& out) {
    MsgpackWriter w(out);
    w.pk.pack_array(4);
    w.pk.pack_uint32(kControlVersion);
    pack_str(w.pk, "error");
    pack_str(w.pk, to_string(status.ok() ? ErrorCode::internal : status.code()));
    const std::string_view message = status.message();
    pack_str(w.pk, message.substr(0, kMaxControlStringBytes));
}

Result<NodeStats> decode_stats_reply(const void* data, std::size_t size) {
    return decode_reply<NodeStats>(data, size);
}

Result<std::vector<PeerInfo>> decode_peers_reply(const void* data, std::size_t size) {
    return decode_reply<std::vector<PeerInfo>>(data, size);
}

Result<std::vector<DeadLetter>> decode_dead_letters_reply(const void* data, std::size_t size) {
    return decode_reply<std::vector<DeadLetter>>(data, size);
}

Result<DeadLetter> decode_dead_letter_reply(const void* data, std::size_t size) {
    return decode_reply<DeadLetter>(data, size);
}

Result<std::uint64_t> decode_count_reply(const void* data, std::size_t size) {
    return decode_reply<std::uint64_t>(data, size);
}

Result<MessageId> decode_id_reply(const void* data, std::size_t size) {
    return decode_reply<MessageId>(data, size);
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
    for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i) {
        const auto code = static_cast<ErrorCode>(i);
        if (to_string(code) == name) return code;
    }
    return std::nullopt;
}

}  // namespace peermq::detail
