// Rendering diagnostics: ninja/rustc-style text with the source line and a
// caret, a versioned JSON object, and what CI systems read: SARIF 2.1.0 (code
// scanning), GitHub Actions workflow commands and GitLab Code Quality JSON.
// The formatters print diagnostics in the order given; lithos_check sorts and
// deduplicates them first (Diagnostics::sorted_unique). docs/lithos_check.md
// documents every format; the JSON object is a stable contract.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::policy {

enum class ReportFormat { Text, Json, Sarif, Github, Gitlab };

// "text", "json", "sarif", "github", "gitlab".
std::optional<ReportFormat> report_format_from_name(std::string_view name);
// Whether paths in the format are relative to a source root (--srcroot).
constexpr bool uses_srcroot(ReportFormat f) {
  return f == ReportFormat::Sarif || f == ReportFormat::Github || f == ReportFormat::Gitlab;
}

// The version of the JSON object of format_json ("version"); raised only for
// a change that breaks a reader of the documented fields.
inline constexpr int kReportJsonVersion = 1;

// Where the file names of the CI formats are taken from and made relative to.
struct ReportPaths {
  std::string cwd;      // absolute: what relative file names are relative to
  std::string srcroot;  // absolute: reported paths are relative to it (empty: cwd)
};

// Lexically normal absolute form of `path` (relative ones joined to `cwd`):
// no `.` components, `..` applied, no trailing slash except for "/".
std::string absolute_normal(std::string_view path, std::string_view cwd);
// `path` relative to `root` (both absolute and normal) when it lies strictly
// under it; nullopt otherwise (outside it, or the root itself).
std::optional<std::string> relative_under(std::string_view path, std::string_view root);
// The path a CI format reports: relative to the srcroot when the file lies
// under it, else absolute; always lexically normal (never `./`).
std::string report_path(std::string_view file, const ReportPaths& paths);
// "file://" and the percent-encoded absolute path; `directory` adds a
// trailing slash.
std::string file_uri(std::string_view absolute_path, bool directory = false);
// A relative path as a URI reference (percent-encoded segments).
std::string relative_uri(std::string_view relative_path);

// A fingerprint per diagnostic that survives runs, checkouts in other
// directories and edits that move lines: 16 hex digits of FNV-1a 64 over
// code, report path and message, then ":N", N counting identical triples in
// output order from 1. Index i belongs to diags.items()[i].
std::vector<std::string> fingerprints(const Diagnostics& diags, const ReportPaths& paths);

// `file:line:col: error[code]: message`, then the source line and a caret.
std::string format_text(const Diagnostics& diags, const Sources& sources, bool color = false);

// {"version": 1, "tool": "lithos_check", "tool_version", "errors", "warnings",
//  "notes", "diagnostics": [...]} (docs/lithos_check.md, "JSON").
std::string format_json(const Diagnostics& diags, std::string_view tool_version);
// The "diagnostics" array of format_json alone: one object per diagnostic,
// {"file", "line", "column", "code", "severity", "message"}, line and column
// only when it has a position. --audit --format json embeds it.
std::string format_json_diagnostics(const Diagnostics& diags);

struct SarifOptions {
  std::string tool_version;
  // URI of diagnostics.md; each rule's helpUri is it + "#" + code.
  std::string help_uri = "docs/diagnostics.md";
  // invocations[0].exitCode: what lithos_check exits with (by default 1 when
  // there is an error, else 0).
  std::optional<int> exit_code;
};
// A SARIF 2.1.0 log with one run: every code is a rule (with its default
// level and helpUri), SRCROOT-relative artifact URIs, one invocation with
// lithos_check's exit code, partialFingerprints per result.
std::string format_sarif(const Diagnostics& diags, const ReportPaths& paths,
                         const SarifOptions& options);

// GitHub Actions workflow commands, one line per diagnostic:
// `::error file=F,line=L,col=C,title=lithos_check [code]::message`.
std::string format_github(const Diagnostics& diags, const ReportPaths& paths);
// Escaping of workflow commands: the message escapes % \r \n, a property
// value also : and ,.
std::string github_escape_data(std::string_view text);
std::string github_escape_property(std::string_view text);

// GitLab Code Quality: a JSON array of {description, check_name,
// fingerprint, severity, location: {path, lines: {begin}}}.
std::string format_gitlab(const Diagnostics& diags, const ReportPaths& paths);

}  // namespace lithos::policy
