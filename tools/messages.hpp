// One-line summaries of configuration errors for the launcher tools' fatal
// messages and logs (lithos_check prints the full report instead).
#pragma once

#include <string>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::tools {

// "FILE:LINE: message; FILE:LINE: message" over the errors only.
inline std::string describe_errors(const policy::Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags.items()) {
    if (d.severity != policy::Severity::Error) continue;
    if (!out.empty()) out += "; ";
    out += d.file + ":" + std::to_string(d.mark.line) + ": " + d.message;
  }
  return out;
}

}  // namespace lithos::tools
