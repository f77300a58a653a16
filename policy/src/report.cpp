#include "lithos/policy/report.hpp"

#include <nlohmann/json.hpp>

namespace lithos::policy {

namespace {

// Column of a 1-based character column within `line` counted in bytes of
// UTF-8 lead characters, so that the caret sits under the right character.
std::size_t caret_offset(std::string_view line, int column) {
  std::size_t chars = 0, width = 0;
  for (std::size_t i = 0; i < line.size() && chars + 1 < static_cast<std::size_t>(column); ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;
    ++chars;
    ++width;
  }
  return width;
}

}  // namespace

std::string format_text(const Diagnostics& diags, const Sources& sources, bool color) {
  const char* bold = color ? "\033[1m" : "";
  const char* red = color ? "\033[1;31m" : "";
  const char* yellow = color ? "\033[1;33m" : "";
  const char* reset = color ? "\033[0m" : "";
  std::string out;
  for (const auto& d : diags.items()) {
    out += bold + d.file;
    if (d.mark.line > 0)
      out += ":" + std::to_string(d.mark.line) + ":" + std::to_string(d.mark.column);
    out += std::string(": ") + reset + (d.severity == Severity::Error ? red : yellow) +
           std::string(severity_name(d.severity)) + "[" + std::string(code_id(d.code)) + "]" +
           reset + ": " + d.message + "\n";
    if (auto line = sources.line(d.file, d.mark.line)) {
      std::string number = std::to_string(d.mark.line);
      std::string pad(number.size(), ' ');
      std::string text(*line);
      for (char& c : text)
        if (c == '\t') c = ' ';
      out += " " + number + " | " + text + "\n";
      out += " " + pad + " | " + std::string(caret_offset(*line, d.mark.column), ' ') + "^\n";
    }
  }
  return out;
}

std::string format_json(const Diagnostics& diags) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const auto& d : diags.items()) {
    nlohmann::ordered_json j;
    j["file"] = d.file;
    j["line"] = d.mark.line;
    j["column"] = d.mark.column;
    j["code"] = code_id(d.code);
    j["severity"] = severity_name(d.severity);
    j["message"] = d.message;
    all.push_back(std::move(j));
  }
  return all.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string format_sarif(const Diagnostics& diags, std::string_view tool_version) {
  using json = nlohmann::ordered_json;
  json rules = json::array();
  for (const auto& info : kCodeTable) {
    rules.push_back({{"id", info.id},
                     {"shortDescription", {{"text", info.summary}}},
                     {"defaultConfiguration", {{"level", "error"}}}});
  }
  json results = json::array();
  for (const auto& d : diags.items()) {
    json location;
    location["physicalLocation"]["artifactLocation"]["uri"] = d.file;
    if (d.mark.line > 0) {
      location["physicalLocation"]["region"]["startLine"] = d.mark.line;
      location["physicalLocation"]["region"]["startColumn"] = std::max(1, d.mark.column);
    }
    results.push_back({{"ruleId", code_id(d.code)},
                       {"ruleIndex", static_cast<int>(d.code)},
                       {"level", d.severity == Severity::Error ? "error" : "warning"},
                       {"message", {{"text", d.message}}},
                       {"locations", json::array({location})}});
  }
  json log;
  log["$schema"] = "https://json.schemastore.org/sarif-2.1.0.json";
  log["version"] = "2.1.0";
  log["runs"] = json::array(
      {{{"tool",
         {{"driver", {{"name", "lithos_check"}, {"version", tool_version}, {"rules", rules}}}}},
        {"results", results}}});
  return log.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace lithos::policy
