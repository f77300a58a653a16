// Layer 5 of schema.hpp: Tagged, the codec of a std::variant whose
// alternatives are told apart by YAML tags (`!Readonly`, `!Tmpfs`, ...).
// Include schema.hpp, not this part.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "lithos/policy/diagnostics.hpp"
#include "lithos/policy/schema/context.hpp"
#include "lithos/policy/schema/struct.hpp"

namespace lithos::policy {
namespace schema {

// ---------------------------------------------------------------- tagged unions
// `Schema<Alt>::tag` names the YAML tag of each alternative; the body is a
// mapping when the schema has `fields`, nothing when it has `empty = true`, or
// a single value (`using body = Codec; static constexpr auto member`).

template <class Alt>
constexpr bool has_fields = requires {
  Schema<Alt>::fields;
};
template <class Alt>
constexpr bool has_body = requires {
  typename Schema<Alt>::body;
};

template <class Variant>
struct Tagged;

template <class... Alts>
struct Tagged<std::variant<Alts...>> {
  using value_type = std::variant<Alts...>;

  static std::string tags() {
    std::string out;
    ((out += (out.empty() ? "" : ", ") + std::string(Schema<Alts>::tag)), ...);
    return out;
  }
  static std::string type_name() {
    std::string out;
    ((out += (out.empty() ? "" : "|") + std::string(Schema<Alts>::tag)), ...);
    return out;
  }

  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (n.tag.empty()) {
      ctx.error(n.mark, Code::BadTag, "One of the tags [" + tags() + "] expected");
      return false;
    }
    bool matched = false, ok = false;
    ((!matched && n.tag == Schema<Alts>::tag ? (matched = true, ok = decode_alt<Alts>(n, ctx, out))
                                             : false),
     ...);
    if (!matched) {
      ctx.error(n.mark, Code::BadTag,
                "The tag " + std::string(n.tag) + " is not expected (one of [" + tags() + "])");
      return false;
    }
    return ok;
  }

  static Node encode(const value_type& v, yaml::Arena& arena) {
    return std::visit(
        [&arena](const auto& alt) {
          using Alt = std::decay_t<decltype(alt)>;
          Node n;
          if constexpr (has_fields<Alt>) {
            n = Struct<Alt>::encode(alt, arena);
          } else if constexpr (has_body<Alt>) {
            n = Schema<Alt>::body::encode(alt.*Schema<Alt>::member, arena);
          } else {
            n = null_node();
          }
          n.tag = Schema<Alt>::tag;  // static storage
          return n;
        },
        v);
  }

 private:
  // The node without its tag is null (what `is_null` would say of it).
  static bool untagged_null(const Node& n) {
    const std::string_view v = n.value;
    return n.is_scalar() && n.plain && (v.empty() || v == "~" || v == "null");
  }

  template <class Alt>
  static bool decode_alt(const Node& n, Context& ctx, value_type& out) {
    Alt alt{};
    if constexpr (has_fields<Alt>) {
      // Struct decoding never looks at the tag of its node, so the tagged
      // node is decoded in place (an untagged copy would copy the subtree).
      static const Node empty = empty_mapping();
      if (!Struct<Alt>::decode(n.is_empty_scalar() ? empty : n, ctx, alt)) return false;
    } else if constexpr (has_body<Alt>) {
      if (untagged_null(n)) {
        ctx.error(n.mark, Code::NullValue, std::string(n.tag) + " needs a value");
        return false;
      }
      Node body = n;
      body.tag = {};
      if (!Schema<Alt>::body::decode(body, ctx, alt.*Schema<Alt>::member)) return false;
    } else {
      if (!untagged_null(n)) {
        ctx.error(n.mark, Code::BadTag, std::string(n.tag) + " takes no value (Null expected)");
        return false;
      }
    }
    out = std::move(alt);
    return true;
  }
};

}  // namespace schema
}  // namespace lithos::policy
