// Template substitution of `@{name}` in container configs (docs/configs.md,
// "Variables"): the built-in variables and the substitution itself.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/scalars.hpp"

namespace lithos::policy {

// Views: the strings they name outlive every substitution.
struct Builtins {
  std::string_view name;             // lithos:name
  std::string_view config_filename;  // lithos:config_filename
};

inline bool is_builtin_variable(std::string_view name) {
  return name == "lithos:name" || name == "lithos:config_filename" || name == "lithos:pid";
}

// Substitutes `@{name}` (docs/configs.md, "Variables"): process variables first (they
// shadow built-ins), then lithos:name and lithos:config_filename. Errors are
// appended; the result is returned even when incomplete.
// Appends the substituted `text` to `out` (when given) and the errors of
// unknown variables to `errors`; checking alone needs no output.
inline void substitute_into(std::string_view text, const std::map<std::string, std::string>& vars,
                            const Builtins& builtins, std::vector<std::string>& errors,
                            std::string* out) {
  // Without "@{" the text is one literal part (or none when empty).
  if (text.find("@{") == std::string_view::npos) {
    if (out) out->append(text);
    return;
  }
  for (const auto& part : scalars::parse_template(text)) {
    if (!part.is_variable) {
      if (out) *out += part.text;
      continue;
    }
    const std::string_view name = part.text;
    if (auto it = vars.find(part.text); it != vars.end()) {
      if (out) *out += it->second;
    } else if (name == "lithos:name") {
      if (out) *out += builtins.name;
    } else if (name == "lithos:config_filename") {
      if (out) *out += builtins.config_filename;
    } else if (name == "lithos:pid") {
      errors.push_back("lithos:pid variable can only be used in environment as a sole value");
    } else {
      errors.push_back("unknown variable \"" + part.text + "\"");
    }
  }
}

inline std::string substitute(std::string_view text, const std::map<std::string, std::string>& vars,
                              const Builtins& builtins, std::vector<std::string>& errors) {
  std::string out;
  out.reserve(text.size() + 16);
  substitute_into(text, vars, builtins, errors, &out);
  return out;
}

inline constexpr std::string_view kPidVariable = "@{lithos:pid}";

}  // namespace lithos::policy
