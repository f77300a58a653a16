#include "lithos/policy/report.hpp"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

namespace lithos::policy {

namespace {

using json = nlohmann::ordered_json;

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

std::string dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

bool has_position(const Diagnostic& d) {
  return d.mark.line > 0;
}
int column_of(const Diagnostic& d) {
  return std::max(1, d.mark.column);
}

// Each severity's name in the three CI formats, indexed by Severity
// (error, warning, note): SARIF's level, GitHub's workflow command, GitLab
// Code Quality's severity (of info, minor, major, critical, blocker).
struct SeverityNames {
  std::string_view sarif, github, gitlab;
};
constexpr SeverityNames kSeverityNames[] = {
    {"error", "error", "major"}, {"warning", "warning", "minor"}, {"note", "notice", "info"}};
const SeverityNames& names_of(Severity s) {
  return kSeverityNames[static_cast<std::size_t>(s)];
}
std::string_view sarif_level(Severity s) {
  return names_of(s).sarif;
}
std::string_view github_command(Severity s) {
  return names_of(s).github;
}
std::string_view gitlab_severity(Severity s) {
  return names_of(s).gitlab;
}

std::uint64_t fnv1a(std::string_view bytes, std::uint64_t hash = 0xcbf29ce484222325ULL) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// Bytes a URI path keeps as they are: RFC 3986 unreserved characters, the
// separator and the sub-delimiters and '@' of pchar. ':' is encoded so that
// a relative reference never looks like a scheme.
bool uri_keeps(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~/!$&'()*+,;=@").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string percent_encode(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (unsigned char c : path) {
    if (uri_keeps(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string escape(std::string_view text, std::string_view special) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (special.find(c) == std::string_view::npos) {
      out += c;
      continue;
    }
    switch (c) {
      case '%':
        out += "%25";
        break;
      case '\r':
        out += "%0D";
        break;
      case '\n':
        out += "%0A";
        break;
      case ':':
        out += "%3A";
        break;
      case ',':
        out += "%2C";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string srcroot_of(const ReportPaths& paths) {
  return absolute_normal(paths.srcroot.empty() ? paths.cwd : paths.srcroot, paths.cwd);
}

}  // namespace

std::optional<ReportFormat> report_format_from_name(std::string_view name) {
  if (name == "text") return ReportFormat::Text;
  if (name == "json") return ReportFormat::Json;
  if (name == "sarif") return ReportFormat::Sarif;
  if (name == "github") return ReportFormat::Github;
  if (name == "gitlab") return ReportFormat::Gitlab;
  return std::nullopt;
}

std::string absolute_normal(std::string_view path, std::string_view cwd) {
  std::filesystem::path p{std::string(path)};
  if (!p.is_absolute()) p = std::filesystem::path(std::string(cwd)) / p;
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out.empty() ? "/" : out;
}

std::optional<std::string> relative_under(std::string_view path, std::string_view root) {
  if (root == "/") {
    if (path.size() > 1 && path.front() == '/') return std::string(path.substr(1));
    return std::nullopt;
  }
  if (path.size() > root.size() + 1 && path.substr(0, root.size()) == root &&
      path[root.size()] == '/')
    return std::string(path.substr(root.size() + 1));
  return std::nullopt;
}

std::string report_path(std::string_view file, const ReportPaths& paths) {
  std::string absolute = absolute_normal(file, paths.cwd);
  if (auto relative = relative_under(absolute, srcroot_of(paths))) return *relative;
  return absolute;
}

std::string file_uri(std::string_view absolute_path, bool directory) {
  std::string uri = "file://" + percent_encode(absolute_path);
  if (directory && uri.back() != '/') uri += '/';
  return uri;
}

std::string relative_uri(std::string_view relative_path) {
  return percent_encode(relative_path);
}

std::vector<std::string> fingerprints(const Diagnostics& diags, const ReportPaths& paths) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::vector<std::string> out;
  std::map<std::string, int> seen;
  for (const auto& d : diags.items()) {
    std::uint64_t hash = fnv1a(code_id(d.code));
    hash = fnv1a(std::string_view("\0", 1), hash);
    hash = fnv1a(report_path(d.file, paths), hash);
    hash = fnv1a(std::string_view("\0", 1), hash);
    hash = fnv1a(d.message, hash);
    std::string hex(16, '0');
    for (int i = 15; i >= 0; --i, hash >>= 4) hex[static_cast<std::size_t>(i)] = kHex[hash & 0xF];
    out.push_back(hex + ":" + std::to_string(++seen[hex]));
  }
  return out;
}

std::string format_text(const Diagnostics& diags, const Sources& sources, bool color) {
  const char* bold = color ? "\033[1m" : "";
  const char* red = color ? "\033[1;31m" : "";
  const char* yellow = color ? "\033[1;33m" : "";
  const char* reset = color ? "\033[0m" : "";
  std::string out;
  for (const auto& d : diags.items()) {
    // Appended piece by piece: one long chain of temporaries trips a false
    // -Wrestrict of GCC 12 at -O3.
    out += bold;
    out += d.file;
    if (d.mark.line > 0) {
      out += ':';
      out += std::to_string(d.mark.line);
      out += ':';
      out += std::to_string(d.mark.column);
    }
    out += ": ";
    out += reset;
    out += d.severity == Severity::Error ? red : yellow;
    out += severity_name(d.severity);
    out += '[';
    out += code_id(d.code);
    out += ']';
    out += reset;
    out += ": ";
    out += d.message;
    out += '\n';
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

namespace {

json diagnostics_array(const Diagnostics& diags) {
  json all = json::array();
  for (const auto& d : diags.items()) {
    json j;
    j["file"] = d.file;
    if (has_position(d)) {
      j["line"] = d.mark.line;
      j["column"] = column_of(d);
    }
    j["code"] = code_id(d.code);
    j["severity"] = severity_name(d.severity);
    j["message"] = d.message;
    all.push_back(std::move(j));
  }
  return all;
}

}  // namespace

std::string format_json_diagnostics(const Diagnostics& diags) {
  return dump(diagnostics_array(diags));
}

std::string format_json(const Diagnostics& diags, std::string_view tool_version) {
  std::size_t counts[3] = {0, 0, 0};
  for (const auto& d : diags.items())
    ++counts[d.severity == Severity::Error ? 0 : d.severity == Severity::Warning ? 1 : 2];
  json j;
  j["version"] = kReportJsonVersion;
  j["tool"] = "lithos_check";
  j["tool_version"] = tool_version;
  j["errors"] = counts[0];
  j["warnings"] = counts[1];
  j["notes"] = counts[2];
  j["diagnostics"] = diagnostics_array(diags);
  return dump(j);
}

std::string format_sarif(const Diagnostics& diags, const ReportPaths& paths,
                         const SarifOptions& options) {
  const std::string root = srcroot_of(paths);
  json rules = json::array();
  for (const auto& info : kCodeTable) {
    rules.push_back(
        {{"id", info.id},
         {"shortDescription", {{"text", info.summary}}},
         {"helpUri", options.help_uri + "#" + std::string(info.id)},
         {"defaultConfiguration", {{"level", sarif_level(default_severity(info.code))}}}});
  }
  auto prints = fingerprints(diags, paths);
  json results = json::array();
  for (std::size_t i = 0; i < diags.items().size(); ++i) {
    const auto& d = diags.items()[i];
    json artifact;
    std::string absolute = absolute_normal(d.file, paths.cwd);
    if (auto relative = relative_under(absolute, root)) {
      artifact["uri"] = relative_uri(*relative);
      artifact["uriBaseId"] = "SRCROOT";
    } else {
      artifact["uri"] = file_uri(absolute);
    }
    json physical;
    physical["artifactLocation"] = std::move(artifact);
    if (has_position(d))
      physical["region"] = {{"startLine", d.mark.line}, {"startColumn", column_of(d)}};
    std::string text = d.message.empty()
                           ? std::string(kCodeTable[static_cast<std::size_t>(d.code)].summary)
                           : d.message;
    results.push_back({{"ruleId", code_id(d.code)},
                       {"ruleIndex", static_cast<int>(d.code)},
                       {"level", sarif_level(d.severity)},
                       {"message", {{"text", text}}},
                       {"locations", json::array({{{"physicalLocation", physical}}})},
                       {"partialFingerprints", {{"lithosFingerprint/v1", prints[i]}}}});
  }
  json run;
  run["tool"]["driver"] = {
      {"name", "lithos_check"}, {"version", options.tool_version}, {"rules", std::move(rules)}};
  // The check ran to its end; results are not a failure of the tool. The
  // exit code is lithos_check's: 1 when there is an error.
  run["invocations"] =
      json::array({{{"executionSuccessful", true},
                    {"exitCode", options.exit_code.value_or(diags.has_errors() ? 1 : 0)}}});
  run["originalUriBaseIds"]["SRCROOT"]["uri"] = file_uri(root, true);
  run["columnKind"] = "unicodeCodePoints";
  run["results"] = std::move(results);
  json log;
  log["$schema"] = "https://json.schemastore.org/sarif-2.1.0.json";
  log["version"] = "2.1.0";
  log["runs"] = json::array({std::move(run)});
  return dump(log);
}

std::string github_escape_data(std::string_view text) {
  return escape(text, "%\r\n");
}

std::string github_escape_property(std::string_view text) {
  return escape(text, "%\r\n:,");
}

std::string format_github(const Diagnostics& diags, const ReportPaths& paths) {
  std::string out;
  for (const auto& d : diags.items()) {
    out += "::" + std::string(github_command(d.severity)) +
           " file=" + github_escape_property(report_path(d.file, paths));
    if (has_position(d))
      out += ",line=" + std::to_string(d.mark.line) + ",col=" + std::to_string(column_of(d));
    out +=
        ",title=" + github_escape_property("lithos_check [" + std::string(code_id(d.code)) + "]");
    out += "::" + github_escape_data(d.message) + "\n";
  }
  return out;
}

std::string format_gitlab(const Diagnostics& diags, const ReportPaths& paths) {
  auto prints = fingerprints(diags, paths);
  json all = json::array();
  for (std::size_t i = 0; i < diags.items().size(); ++i) {
    const auto& d = diags.items()[i];
    json j;
    j["description"] = d.message;
    j["check_name"] = code_id(d.code);
    j["fingerprint"] = prints[i];
    j["severity"] = gitlab_severity(d.severity);
    j["location"] = {{"path", report_path(d.file, paths)},
                     {"lines", {{"begin", has_position(d) ? d.mark.line : 1}}}};
    all.push_back(std::move(j));
  }
  return dump(all);
}

}  // namespace lithos::policy
