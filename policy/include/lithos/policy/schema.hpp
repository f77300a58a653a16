// The field-table machinery. Each config struct is declared once as a plain
// struct plus one `Schema<T>` specialisation listing its fields; decoding
// (with precise diagnostics), defaults, unknown-key errors and the canonical
// printer all derive from that table (and so do the RapidCheck generators in
// proptests/generators.hpp).
//
// The machinery is in layers under schema/, each on the ones before it:
// marks.hpp, context.hpp, codecs.hpp, struct.hpp, tagged.hpp. Include this
// header: it defines `quote`, which the later layers use.
#pragma once

#include <string>
#include <string_view>

#include "lithos/policy/schema/context.hpp"
#include "lithos/policy/schema/marks.hpp"

namespace lithos::policy::schema {

inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace lithos::policy::schema

#include "lithos/policy/schema/codecs.hpp"
#include "lithos/policy/schema/struct.hpp"
#include "lithos/policy/schema/tagged.hpp"
