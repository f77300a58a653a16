// The one property every config fuzz target checks, for any codec: decoding
// arbitrary text never crashes, a rejection always comes with an error
// diagnostic at a real position, and whatever decodes prints to canonical
// text that decodes to the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lithos/policy/config.hpp"

namespace lithos::fuzz {

template <class Codec>
int check_config_round_trip(const std::uint8_t* data, std::size_t size) {
  using namespace lithos::policy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Diagnostics diags;
  auto doc = decode_text<Codec>(text, "fuzz.yaml", diags);
  for (const auto& d : diags.items())
    if (d.mark.line < 0 || d.mark.column < 0) std::abort();
  if (!doc) {
    if (!diags.has_errors()) std::abort();  // rejected without saying why
    return 0;
  }
  if (diags.has_errors()) std::abort();  // accepted despite an error
  const std::string printed = print<Codec>(doc->value);
  Diagnostics again;
  auto back = decode_text<Codec>(printed, "printed.yaml", again);
  if (!back || !(back->value == doc->value)) std::abort();
  return 0;
}

}  // namespace lithos::fuzz
