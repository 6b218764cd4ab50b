// Table-driven MessagePack maps on msgpack-c: a message is described once, as a table of fields
// (key, codec, member), and both its encoder and its decoder walk that table, so the two
// directions cannot disagree. Codecs for scalars, optional values, lists and maps (bounded in
// count and in bytes when encoding) live here; a protocol's own tables live with it
// (admin/control_messages.hpp). Pure functions over constant tables; safe from any thread.
//
// A codec C of values V is a type with
//   using value_type = V;
//   static void pack(MsgpackWriter&, const V&);   // or returns how many entries it left out
//   static bool read(MsgpackReader&, const msgpack::object&, V&);
// and, when the value may be absent from a map, static bool present(const V&).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include <msgpack.hpp>

#include "wire/msgpack_fields.hpp"

namespace peermq::detail {

// Where a message is written: the buffer (a list bounded in bytes measures it) and a packer on it.
struct MsgpackWriter {
    explicit MsgpackWriter(msgpack::sbuffer& buffer) : out(buffer), pk(buffer) {}
    msgpack::sbuffer& out;
    msgpack::packer<msgpack::sbuffer> pk;
};

// Reading reports the first thing found wrong: the innermost field, kept when the enclosing
// fields then fail too.
class MsgpackReader {
public:
    bool fail(std::string_view what) {
        if (error_.empty()) error_ = std::string(what);
        return false;
    }
    const std::string& error() const noexcept { return error_; }

private:
    std::string error_;
};

inline constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

inline std::string_view key_of(const msgpack::object_kv& kv) {
    if (kv.key.type != msgpack::type::STR) return {};
    return {kv.key.via.str.ptr, kv.key.via.str.size};
}

// --- Scalars --------------------------------------------------------------------------------

// An unsigned integer, written in its shortest form; a value over T's range is refused.
template <typename T>
struct UnsignedCodec {
    using value_type = T;
    static void pack(MsgpackWriter& w, T v) { w.pk.pack_uint64(v); }
    static bool read(MsgpackReader&, const msgpack::object& o, T& v) {
        std::uint64_t wide = 0;
        if (!read_uint(o, wide) || wide > std::numeric_limits<T>::max()) return false;
        v = static_cast<T>(wide);
        return true;
    }
};

struct SignedCodec {
    using value_type = std::int64_t;
    static void pack(MsgpackWriter& w, std::int64_t v) { w.pk.pack_int64(v); }
    static bool read(MsgpackReader&, const msgpack::object& o, std::int64_t& v) {
        return read_int(o, v);
    }
};

// An id: bin of exactly 16 bytes.
struct IdCodec {
    using value_type = Uuid;
    static void pack(MsgpackWriter& w, const Uuid& id) { pack_bin(w.pk, id.data(), Uuid::kSize); }
    static bool read(MsgpackReader&, const msgpack::object& o, Uuid& id) { return read_id(o, id); }
};

// A str of at most kMax bytes when read.
template <std::size_t kMax = kUnbounded>
struct TextCodec {
    using value_type = std::string;
    static void pack(MsgpackWriter& w, std::string_view s) { pack_str(w.pk, s); }
    static bool read(MsgpackReader&, const msgpack::object& o, std::string& s) {
        return read_str(o, s, kMax);
    }
};

// A value of a map that is written only when it has one.
template <typename Codec>
struct OptionalCodec {
    using value_type = std::optional<typename Codec::value_type>;
    static bool present(const value_type& v) { return v.has_value(); }
    static void pack(MsgpackWriter& w, const value_type& v) { Codec::pack(w, *v); }
    static bool read(MsgpackReader& r, const msgpack::object& o, value_type& v) {
        typename Codec::value_type value{};
        if (!Codec::read(r, o, value)) return false;
        v = std::move(value);
        return true;
    }
};

// A number of a map that is written only when it is not 0 (0 means "none").
template <typename Codec>
struct NonZeroCodec : Codec {
    static bool present(const typename Codec::value_type& v) { return v != 0; }
};

// --- Lists and maps -------------------------------------------------------------------------

// Writes the first elements of `items` that fit as an array (or, `as_map`, as the pairs of a
// map), and returns how many it wrote: at most `max_count`, and with `max_bytes` only while
// w.out stays within it. Within a byte bound each element is packed once into a scratch buffer
// and copied once: the time and memory spent follow what is listed, not what `items` holds.
template <typename Items, typename PackOne>
std::size_t pack_bounded(MsgpackWriter& w, const Items& items, std::size_t max_count,
                         std::size_t max_bytes, bool as_map, PackOne&& pack_one) {
    const auto header = [&](std::size_t n) {
        if (as_map) {
            w.pk.pack_map(static_cast<std::uint32_t>(n));
        } else {
            w.pk.pack_array(static_cast<std::uint32_t>(n));
        }
    };
    if (max_bytes == kUnbounded) {
        const std::size_t n = std::min(items.size(), max_count);
        header(n);
        std::size_t i = 0;
        for (auto it = items.begin(); i < n; ++it, ++i) pack_one(w, *it);
        return n;
    }
    constexpr std::size_t kHeader = 5;  // an array or map header, at most
    msgpack::sbuffer listed;
    msgpack::sbuffer item;
    MsgpackWriter item_writer(item);
    std::size_t n = 0;
    for (const auto& element : items) {
        if (n == max_count) break;
        item.clear();
        pack_one(item_writer, element);
        if (w.out.size() + kHeader + listed.size() + item.size() > max_bytes) break;
        listed.write(item.data(), item.size());
        ++n;
    }
    header(n);
    w.out.write(listed.data(), listed.size());
    return n;
}

// An array of elements; when written, the first kMaxCount (and within kMaxBytes of the whole
// buffer) of them. pack() returns how many it left out.
template <typename Codec, std::size_t kMaxCount = kUnbounded, std::size_t kMaxBytes = kUnbounded>
struct ListCodec {
    using value_type = std::vector<typename Codec::value_type>;
    static std::uint64_t pack(MsgpackWriter& w, const value_type& items) {
        return items.size() -
               pack_bounded(w, items, kMaxCount, kMaxBytes, false,
                            [](MsgpackWriter& iw, const auto& e) { Codec::pack(iw, e); });
    }
    // The unpack limits bound the array's size by the bytes it came in.
    static bool read(MsgpackReader& r, const msgpack::object& o, value_type& out) {
        if (o.type != msgpack::type::ARRAY) return false;
        out.assign(o.via.array.size, typename Codec::value_type{});
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            if (!Codec::read(r, o.via.array.ptr[i], out[i])) return false;
        }
        return true;
    }
};

// A map from str to values (std::map Map); bounded as ListCodec when written.
template <typename Map, typename Codec, std::size_t kMaxCount = kUnbounded,
          std::size_t kMaxBytes = kUnbounded>
struct TextMapCodec {
    using value_type = Map;
    static std::uint64_t pack(MsgpackWriter& w, const Map& map) {
        return map.size() - pack_bounded(w, map, kMaxCount, kMaxBytes, true,
                                         [](MsgpackWriter& iw, const auto& entry) {
                                             pack_str(iw.pk, entry.first);
                                             Codec::pack(iw, entry.second);
                                         });
    }
    // A key read twice keeps the later value (merged into the earlier one for a message).
    static bool read(MsgpackReader& r, const msgpack::object& o, Map& out) {
        if (o.type != msgpack::type::MAP) return false;
        out.clear();
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            if (kv.key.type != msgpack::type::STR) return false;
            if (!Codec::read(r, kv.val, out[std::string(key_of(kv))])) return false;
        }
        return true;
    }
};

// --- Messages: maps described by a table ----------------------------------------------------

template <typename T, typename Codec>
struct MapField {
    using owner_type = T;
    using codec = Codec;
    std::string_view key;
    typename Codec::value_type T::*member;
    // How a bad value is reported ("" = the message's prefix and the key).
    std::string_view error = {};
    // A bounded list: the field of the same message, written after this one, that adds to its
    // own value how many entries this one left out.
    std::uint64_t T::*omitted_in = nullptr;
};

template <typename Codec, typename T>
constexpr MapField<T, Codec> map_field(std::string_view key, typename Codec::value_type T::*member,
                                       std::string_view error = {},
                                       std::uint64_t T::*omitted_in = nullptr) {
    return {key, member, error, omitted_in};
}

struct MapRules {
    std::string_view what;         // how a value that is not a map is reported
    std::string_view prefix = {};  // a bad field is reported as prefix + key
    // A strict map refuses a key it does not know, reported as "<unknown_key> '<key>'" (a key
    // that narrows what an operation does must never be ignored), and a key that is not a str
    // (reported as `not_text_key`); a nil value is an absent one. A lenient map ("") skips
    // keys it does not know: a later revision's.
    std::string_view unknown_key = {};
    std::string_view not_text_key = {};
};

template <typename T, typename... Fields>
struct MapTable {
    using value_type = T;
    MapRules rules;
    std::tuple<Fields...> fields;
};

template <typename T, typename... Fields>
constexpr MapTable<T, Fields...> map_table(MapRules rules, Fields... fields) {
    static_assert((std::is_same_v<typename Fields::owner_type, T> && ...));
    return {rules, {fields...}};
}

// The message a table describes, as a codec: a map of the fields that are present, in table
// order.
template <const auto& kTable>
struct MessageCodec {
    using value_type = typename std::decay_t<decltype(kTable)>::value_type;

    static void pack(MsgpackWriter& w, const value_type& v) {
        std::uint32_t n = 0;
        for_each([&](const auto& f) { n += present(f, v) ? 1 : 0; });
        w.pk.pack_map(n);
        LeftOut left_out;
        for_each([&](const auto& f) {
            if (!present(f, v)) return;
            using Codec = typename std::decay_t<decltype(f)>::codec;
            const auto& value = v.*f.member;
            pack_str(w.pk, f.key);
            if constexpr (!std::is_void_v<decltype(Codec::pack(w, value))>) {
                const std::uint64_t cut = Codec::pack(w, value);
                if (f.omitted_in != nullptr) left_out.add(f.omitted_in, cut);
            } else if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::uint64_t>) {
                Codec::pack(w, value + left_out.of(f.member));
            } else {
                Codec::pack(w, value);
            }
        });
    }

    static bool read(MsgpackReader& r, const msgpack::object& o, value_type& v) {
        const MapRules& rules = kTable.rules;
        const bool strict = !rules.unknown_key.empty();
        if (o.type != msgpack::type::MAP) return r.fail(rules.what);
        for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& kv = o.via.map.ptr[i];
            if (strict && kv.key.type != msgpack::type::STR) return r.fail(rules.not_text_key);
            const std::string_view key = key_of(kv);
            bool known = false;
            bool ok = true;
            for_each([&](const auto& f) {
                if (known || f.key != key) return;
                known = true;
                if (strict && kv.val.type == msgpack::type::NIL) return;
                using Codec = typename std::decay_t<decltype(f)>::codec;
                if (Codec::read(r, kv.val, v.*f.member)) return;
                ok = f.error.empty() ? r.fail(std::string(rules.prefix) + std::string(key))
                                     : r.fail(f.error);
            });
            if (!known && strict) {
                return r.fail(std::string(rules.unknown_key) + " '" + std::string(key) + "'");
            }
            if (!ok) return false;
        }
        return true;
    }

private:
    template <typename Visit>
    static void for_each(Visit&& visit) {
        std::apply([&](const auto&... f) { (visit(f), ...); }, kTable.fields);
    }

    template <typename Field>
    static bool present(const Field& f, const value_type& v) {
        using Codec = typename Field::codec;
        if constexpr (requires(const typename Codec::value_type& x) { Codec::present(x); }) {
            return Codec::present(v.*f.member);
        } else {
            return true;
        }
    }

    // What the bounded lists written so far left out, by the field that counts it.
    class LeftOut {
    public:
        void add(std::uint64_t value_type::*field, std::uint64_t n) {
            for (auto& entry : entries_) {
                if (entry.field == nullptr || entry.field == field) {
                    entry.field = field;
                    entry.n += n;
                    return;
                }
            }
        }
        std::uint64_t of(std::uint64_t value_type::*field) const {
            for (const auto& entry : entries_) {
                if (entry.field == field) return entry.n;
            }
            return 0;
        }

    private:
        struct Entry {
            std::uint64_t value_type::*field = nullptr;
            std::uint64_t n = 0;
        };
        std::array<Entry, std::tuple_size_v<decltype(kTable.fields)>> entries_{};
    };
};

}  // namespace peermq::detail
