// Layer 3 of schema.hpp: the codecs, one per kind of value (strings, numbers,
// durations, addresses, enums, lists, maps). Uses schema.hpp's `quote`:
// include schema.hpp, not this part.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lithos/policy/diagnostics.hpp"
#include "lithos/policy/scalars.hpp"
#include "lithos/policy/schema/context.hpp"

namespace lithos::policy {

// Specialised once per config struct, enum and tagged alternative.
template <class T>
struct Schema;

namespace schema {

// ---------------------------------------------------------------- codecs
// A codec has `value_type`, `static bool decode(const Node&, Context&,
// value_type&)` (reports its own diagnostics) and `static Node encode(const
// value_type&, yaml::Arena&)`: the arena keeps the nodes' text. Its
// `static std::string type_name()` is the short name the generated key
// reference (reference.hpp) shows for it.

struct Str {
  using value_type = std::string;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!n.is_scalar()) {
      ctx.error(n.mark, Code::WrongType, "expected a string, found " + std::string(kind_name(n)));
      return false;
    }
    if (!n.tag.empty()) {
      ctx.error(n.mark, Code::BadTag, "the tag " + std::string(n.tag) + " is not expected here");
      return false;
    }
    if (n.is_explicit_null()) {
      ctx.error(n.mark, Code::NullValue, "a string is required here, found null");
      return false;
    }
    // An empty plain value (`KEY:` in a mapping, `- ` in a list) is a null,
    // not an empty string (docs/configs.md, "Null and defaults"); fields with a default or that
    // are optional never get here (see Struct::decode_field).
    if (n.is_implicit_null()) {
      ctx.error(n.mark, Code::NullValue,
                "a string is required here, found an empty value (write \"\" for an empty string)");
      return false;
    }
    out = n.value;
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) { return scalar_node(arena, v); }
  static std::string type_name() { return "string"; }
};
// A string that names a file or directory: decoded as a string, shown as a
// path in the key reference.
struct Path : Str {
  static std::string type_name() { return "path"; }
};

// A string literal as a template argument (a codec's type_name()).
template <std::size_t N>
struct Literal {
  char text[N]{};
  constexpr Literal(const char (&s)[N]) { std::copy_n(s, N, text); }
};

// A scalar read by one of the grammars of scalars.hpp (docs/configs.md,
// "Scalars"): `Parse` gives the value, or the message reported under `Error`;
// `Format` prints the value back as `Parse` reads it.
template <auto Parse, auto Format, Code Error, Literal TypeName>
struct ScalarCodec {
  using value_type = std::decay_t<decltype(*Parse(std::string_view{}))>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = Parse(n.value);
    if (!r) {
      ctx.error(n.mark, Error, r.error());
      return false;
    }
    out = *r;
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    return scalar_node(arena, Format(v));
  }
  static std::string type_name() { return TypeName.text; }
};

inline std::string_view bool_text(bool v) {
  return v ? "true" : "false";
}
inline std::string decimal_text(std::uint32_t v) {
  return std::to_string(v);
}

using Bool = ScalarCodec<scalars::parse_bool, bool_text, Code::BadBool, "bool">;
// Plain ints (docs/configs.md, "Scalars"): decimal digits only.
using PlainU32 =
    ScalarCodec<scalars::parse_plain_u32, decimal_text, Code::BadNumber, "plain integer">;
using RangeCodec =
    ScalarCodec<scalars::parse_range, scalars::format_range, Code::BadRange, "range">;
using IpCodec = ScalarCodec<scalars::parse_ip, scalars::format_ip, Code::BadAddress, "IP address">;
using NetworkCodec = ScalarCodec<scalars::parse_network, scalars::format_network, Code::BadAddress,
                                 "network (address/prefix)">;

// A string that only some texts are, such as a name from a fixed list: the
// codec `Rule` derives from this and gives `static bool accept(std::string&)`,
// which may rewrite the text to its canonical spelling, `static std::string
// complaint(const std::string&)`, reported under `Error` when `accept` says
// no, and `type_name()`.
template <class Rule, Code Error>
struct Validated {
  using value_type = std::string;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!Str::decode(n, ctx, out)) return false;
    if (Rule::accept(out)) return true;
    ctx.error(n.mark, Error, Rule::complaint(out));
    return false;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) { return Str::encode(v, arena); }
};

// Numbers (docs/configs.md, "Scalars"), range-checked on the 64-bit value, then narrowed.
// The default bounds are those of T, so that narrowing never wraps (step 7:
// a value that does not fit the storage type is an error).
template <class T,
          std::int64_t Min =
              std::is_signed_v<T> ? static_cast<std::int64_t>(std::numeric_limits<T>::min()) : 0,
          std::int64_t Max = (std::numeric_limits<T>::max() >
                              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                                 ? std::numeric_limits<std::int64_t>::max()
                                 : static_cast<std::int64_t>(std::numeric_limits<T>::max())>
struct Numeric {
  using value_type = T;
  static constexpr std::int64_t min = Min;
  static constexpr std::int64_t max = Max;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_numeric(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadNumber, r.error());
      return false;
    }
    if (*r < Min) {
      ctx.error(n.mark, Code::BadNumber, "Value must be at least " + std::to_string(Min));
      return false;
    }
    if (*r > Max) {
      ctx.error(n.mark, Code::BadNumber, "Value must be at most " + std::to_string(Max));
      return false;
    }
    out = static_cast<T>(*r);
    return true;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    return scalar_node(arena, std::to_string(v));
  }
  // Bounds are named only when narrower than the storage type's.
  static std::string type_name() {
    if (Numeric<T>::min == Min && Numeric<T>::max == Max) return "integer";
    return "integer " + std::to_string(Min) + " to " + std::to_string(Max);
  }
};

// Timeouts: decimal seconds (a fix over the original's whole seconds), kept as
// whole milliseconds so that values compare and print exactly.
struct Milliseconds {
  std::int64_t count = 0;
  friend bool operator==(const Milliseconds&, const Milliseconds&) = default;
  friend auto operator<=>(const Milliseconds&, const Milliseconds&) = default;
};

inline std::string format_seconds(Milliseconds ms) {
  std::string out = std::to_string(ms.count / 1000);
  if (auto frac = ms.count % 1000; frac != 0) {
    std::string digits = std::to_string(frac + 1000).substr(1);
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

template <std::int64_t MaxSeconds>
struct Seconds {
  using value_type = Milliseconds;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_seconds(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadDuration, r.error());
      return false;
    }
    if (*r < 0 || *r > static_cast<double>(MaxSeconds)) {
      ctx.error(n.mark, Code::BadDuration,
                "Value must be between 0 and " + std::to_string(MaxSeconds) + " seconds");
      return false;
    }
    out.count = static_cast<std::int64_t>(*r * 1000.0 + 0.5);
    return true;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    return scalar_node(arena, format_seconds(v));
  }
  static std::string type_name() { return "seconds 0 to " + std::to_string(MaxSeconds); }
};

// A scalar restricted to a set of names given by `Schema<E>::names`, an
// array of {value, "Name"} pairs. A tag with an empty value (`!systemd`)
// selects the same name.
template <class E>
struct Enum {
  using value_type = E;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!n.is_scalar()) {
      ctx.error(n.mark, Code::WrongType,
                "expected one of " + choices() + ", found " + std::string(kind_name(n)));
      return false;
    }
    std::string text(n.value);
    if (!n.tag.empty()) {
      if (!n.value.empty()) {
        ctx.error(n.mark, Code::BadTag, "the tag " + std::string(n.tag) + " is not expected here");
        return false;
      }
      text = n.tag.substr(1);
    } else if (n.is_null()) {
      ctx.error(n.mark, Code::NullValue, "expected one of " + choices() + ", found null");
      return false;
    }
    std::replace(text.begin(), text.end(), '-', '_');
    for (const auto& [value, name] : Schema<E>::names) {
      if (text == name) {
        out = value;
        return true;
      }
    }
    ctx.error(n.mark, Code::BadEnum,
              "unknown value " + quote(n.tag.empty() ? n.value : n.tag) + ", expected one of " +
                  choices());
    return false;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    for (const auto& [value, name] : Schema<E>::names)
      if (value == v) return scalar_node(arena, name);
    return null_node();
  }
  static std::string name_of(value_type v) {
    for (const auto& [value, name] : Schema<E>::names)
      if (value == v) return std::string(name);
    return "~";
  }
  static std::string choices() {
    std::string out;
    for (const auto& [value, name] : Schema<E>::names) {
      if (!out.empty()) out += ", ";
      out += name;
    }
    return out;
  }
  static std::string type_name() {
    std::string out;
    for (const auto& [value, name] : Schema<E>::names)
      out += (out.empty() ? "" : "|") + std::string(name);
    return "one of " + out;
  }
};

template <class C>
struct Seq {
  using value_type = std::vector<typename C::value_type>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    out.clear();
    if (n.is_implicit_null() || n.is_explicit_null()) return true;
    if (!n.is_sequence()) {
      ctx.error(n.mark, Code::WrongType, "expected a sequence, found " + std::string(kind_name(n)));
      return false;
    }
    bool ok = true;
    out.reserve(n.items.size());
    for (std::size_t i = 0; i < n.items.size(); ++i) {
      char digits[24];
      const auto end = std::to_chars(digits, digits + sizeof digits, i).ptr;
      auto seg = ctx.key(std::string_view(digits, static_cast<std::size_t>(end - digits)));
      ctx.record(n.items[i]);
      typename C::value_type item{};
      if (C::decode(n.items[i], ctx, item)) {
        out.push_back(std::move(item));
      } else {
        ok = false;
      }
    }
    return ok;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    std::vector<Node> items;
    items.reserve(v.size());
    for (const auto& item : v) items.push_back(C::encode(item, arena));
    return sequence_node(arena, items);
  }
  static std::string type_name() { return "list of " + C::type_name(); }
};

// Free-form mappings: keys are taken literally (no dash/underscore folding).
template <class C>
struct Map {
  using value_type = std::map<std::string, typename C::value_type>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    out.clear();
    if (n.is_implicit_null() || n.is_explicit_null()) return true;
    if (!n.is_mapping()) {
      ctx.error(n.mark, Code::WrongType, "expected a mapping, found " + std::string(kind_name(n)));
      return false;
    }
    bool ok = true;
    for (const auto& [key, value] : n.pairs) {
      auto seg = ctx.key(key.value);
      ctx.record(key);
      ctx.record_as(":value", value);
      typename C::value_type item{};
      if (C::decode(value, ctx, item)) {
        out.emplace(key.value, std::move(item));
      } else {
        ok = false;
      }
    }
    return ok;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    std::vector<Node::Entry> pairs;
    pairs.reserve(v.size());
    for (const auto& [key, item] : v)
      pairs.push_back({scalar_node(arena, key), C::encode(item, arena)});
    return mapping_node(arena, pairs);
  }
  static std::string type_name() { return "map of string to " + C::type_name(); }
};

// A scalar or a list of scalars, kept as a list (secret-environ values).
struct OneOrMany {
  using value_type = std::vector<std::string>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    out.clear();
    if (n.is_sequence()) return Seq<Str>::decode(n, ctx, out);
    std::string one;
    if (!Str::decode(n, ctx, one)) return false;
    out.push_back(std::move(one));
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    if (v.size() == 1) return scalar_node(arena, v.front());
    return Seq<Str>::encode(v, arena);
  }
  static std::string type_name() { return "string or list of string"; }
};

// Accepts any YAML and keeps nothing (`metadata`).
struct Ignored {
  friend bool operator==(const Ignored&, const Ignored&) { return true; }
};
struct AnyNode {
  using value_type = Ignored;
  static bool decode(const Node&, Context&, value_type&) { return true; }
  static Node encode(const value_type&, yaml::Arena&) { return null_node(); }
  static std::string type_name() { return "any YAML"; }
};

}  // namespace schema
}  // namespace lithos::policy
