// Rendering diagnostics: ninja/rustc-style text with the source line and a
// caret, a JSON array, or SARIF 2.1.0 for code-scanning in CI.
#pragma once

#include <string>
#include <string_view>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::policy {

enum class ReportFormat { Text, Json, Sarif };

// `file:line:col: error[code]: message`, then the source line and a caret.
std::string format_text(const Diagnostics& diags, const Sources& sources, bool color = false);
// [{"file","line","column","code","severity","message"}, ...]
std::string format_json(const Diagnostics& diags);
// A SARIF 2.1.0 log with one run; every diagnostic code is a rule.
std::string format_sarif(const Diagnostics& diags, std::string_view tool_version);

}  // namespace lithos::policy
