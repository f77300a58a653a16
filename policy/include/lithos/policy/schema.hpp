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

#include "lithos/common/text.hpp"
#include "lithos/policy/schema/context.hpp"
#include "lithos/policy/schema/marks.hpp"

namespace lithos::policy::schema {

// Names in messages are quoted as the original quoted them (Rust's `{:?}`),
// by the one quoting of lithos/common/text.hpp.
inline std::string quote(std::string_view s) {
  return lithos::debug_quote(s);
}

}  // namespace lithos::policy::schema

#include "lithos/policy/schema/codecs.hpp"
#include "lithos/policy/schema/struct.hpp"
#include "lithos/policy/schema/tagged.hpp"
