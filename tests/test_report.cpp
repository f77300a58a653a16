// Rendering of diagnostics (text, JSON, SARIF, GitHub, GitLab), their order,
// the documented code list, and lithos_check run as a program in every
// format and for every usage error of the formats.
// One file over 600 lines on purpose: one renderer per format over the same
// diagnostics, compared side by side.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "check_run_support.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/policy/report.hpp"

using namespace lithos::policy;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

Diagnostics sample(Sources& sources) {
  Diagnostics diags;
  std::string text = "executable: /x\nwork-dir: /a\nkill-timeout: 5x\n";
  sources.add("c.yaml", text);
  (void)decode_text<ContainerCodec>(text, "c.yaml", diags);
  return diags;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string docs() {
  return slurp(fs::path(LITHOS_SOURCE_DIR) / "docs" / "diagnostics.md");
}

// Paths as lithos_check would see them in a checkout at /w/repo.
const ReportPaths kRepo{"/w/repo", "/w/repo"};

// Diagnostics of every shape the CI formats must handle: positioned and
// file-level, error, warning and note, a path with `./` and `..`, one
// outside the source root, one with characters a URI must encode, and
// messages with the characters GitHub's commands escape.
Diagnostics mixed() {
  Diagnostics d;
  d.error("./sandboxes/../sandboxes/app.yaml", {3, 7}, Code::UnknownKey, "unknown key \"x\"");
  d.error("processes/app.yaml", {}, Code::FileUnreadable, "cannot read: 100% gone,\nreally");
  d.warning("/etc/lithos/master.yaml", {2, 1}, Code::Bridge, "bridge \"br0\": absent");
  d.note("images/my img/config/a,b:c.yaml", {1, 1}, Code::Image, "not verified\r");
  return d;
}

// ------------------------------------------------------------- SARIF structure

bool is_int(const json& j) {
  return j.is_number_integer() || j.is_number_unsigned();
}

// An RFC 3986 URI reference as SARIF wants it: no spaces or raw non-ASCII,
// percent signs followed by two hex digits, and (our own rule) no `.` or
// `..` segment.
bool valid_uri_reference(const std::string& uri) {
  static const std::regex shape(
      R"(^([A-Za-z][A-Za-z0-9+.-]*:)?([A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*(#([A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?$)");
  if (!std::regex_match(uri, shape)) return false;
  std::string path = uri.substr(0, uri.find('#'));
  std::stringstream segments(path);
  for (std::string segment; std::getline(segments, segment, '/');)
    if (segment == "." || segment == "..") return false;
  return true;
}

bool absolute_uri(const std::string& uri) {
  return std::regex_search(uri, std::regex(R"(^[A-Za-z][A-Za-z0-9+.-]*:)"));
}

// A structural validator of the parts of the SARIF 2.1.0 schema that
// lithos_check writes (sarif-schema-2.1.0.json: sarifLog, run, tool,
// toolComponent, reportingDescriptor, reportingConfiguration, invocation,
// result, location, physicalLocation, artifactLocation, region, message).
// Returns every problem found, with its JSON path.
std::vector<std::string> validate_sarif(const json& log) {
  std::vector<std::string> problems;
  auto fail = [&](const std::string& where, const std::string& what) {
    problems.push_back(where + ": " + what);
  };
  auto string_at = [&](const json& j, const char* key, const std::string& where, bool required) {
    if (!j.contains(key)) {
      if (required) fail(where, std::string("missing required ") + key);
      return false;
    }
    if (!j[key].is_string()) {
      fail(where + "." + key, "not a string");
      return false;
    }
    return true;
  };
  auto message = [&](const json& j, const std::string& where) {
    if (!j.is_object()) return fail(where, "message is not an object");
    if (!j.contains("text") && !j.contains("id")) fail(where, "message without text or id");
    if (j.contains("text") && !j["text"].is_string()) fail(where + ".text", "not a string");
  };
  static const std::set<std::string> kLevels{"none", "note", "warning", "error"};

  if (!log.is_object()) return {"sarifLog is not an object"};
  if (log.value("version", "") != "2.1.0") fail("$", "version is not \"2.1.0\"");
  string_at(log, "$schema", "$", false);
  if (!log.contains("runs") || !log["runs"].is_array()) {
    fail("$", "missing required runs array");
    return problems;
  }
  for (std::size_t r = 0; r < log["runs"].size(); ++r) {
    const json& run = log["runs"][r];
    std::string rw = "$.runs[" + std::to_string(r) + "]";
    if (!run.is_object()) {
      fail(rw, "not an object");
      continue;
    }
    // run.tool.driver (toolComponent): name required; rules reportingDescriptors.
    std::size_t rule_count = 0;
    json rules = json::array();
    if (!run.contains("tool") || !run["tool"].is_object()) {
      fail(rw, "missing required tool");
    } else if (!run["tool"].contains("driver") || !run["tool"]["driver"].is_object()) {
      fail(rw + ".tool", "missing required driver");
    } else {
      const json& driver = run["tool"]["driver"];
      string_at(driver, "name", rw + ".tool.driver", true);
      string_at(driver, "version", rw + ".tool.driver", false);
      if (driver.contains("rules")) {
        if (!driver["rules"].is_array()) {
          fail(rw + ".tool.driver.rules", "not an array");
        } else {
          rules = driver["rules"];
          rule_count = rules.size();
          std::set<std::string> ids;
          for (std::size_t i = 0; i < rules.size(); ++i) {
            const json& rule = rules[i];
            std::string w = rw + ".tool.driver.rules[" + std::to_string(i) + "]";
            if (!rule.is_object()) {
              fail(w, "not an object");
              continue;
            }
            if (string_at(rule, "id", w, true) && !ids.insert(rule["id"]).second)
              fail(w, "duplicate rule id");
            if (rule.contains("shortDescription")) message(rule["shortDescription"], w);
            if (string_at(rule, "helpUri", w, false) &&
                (!valid_uri_reference(rule["helpUri"]) || !absolute_uri(rule["helpUri"])))
              fail(w + ".helpUri", "not an absolute URI");
            if (rule.contains("defaultConfiguration")) {
              const json& c = rule["defaultConfiguration"];
              if (!c.is_object() ||
                  (c.contains("level") && (!c["level"].is_string() || !kLevels.count(c["level"]))))
                fail(w + ".defaultConfiguration", "bad level");
            }
          }
        }
      }
    }
    // invocations: executionSuccessful required.
    if (run.contains("invocations")) {
      if (!run["invocations"].is_array()) fail(rw + ".invocations", "not an array");
      for (std::size_t i = 0; run["invocations"].is_array() && i < run["invocations"].size(); ++i) {
        const json& inv = run["invocations"][i];
        std::string w = rw + ".invocations[" + std::to_string(i) + "]";
        if (!inv.is_object() || !inv.contains("executionSuccessful") ||
            !inv["executionSuccessful"].is_boolean())
          fail(w, "missing required boolean executionSuccessful");
        if (inv.is_object() && inv.contains("exitCode") && !is_int(inv["exitCode"]))
          fail(w + ".exitCode", "not an integer");
      }
    }
    // originalUriBaseIds: artifactLocations with absolute URIs ending in '/'.
    std::set<std::string> base_ids;
    if (run.contains("originalUriBaseIds")) {
      if (!run["originalUriBaseIds"].is_object()) fail(rw + ".originalUriBaseIds", "not an object");
      for (const auto& [id, base] : run["originalUriBaseIds"].items()) {
        std::string w = rw + ".originalUriBaseIds." + id;
        base_ids.insert(id);
        if (!base.is_object() || !base.contains("uri") || !base["uri"].is_string()) {
          fail(w, "no uri");
          continue;
        }
        std::string uri = base["uri"];
        if (!valid_uri_reference(uri) || !absolute_uri(uri) || uri.back() != '/')
          fail(w, "uri is not an absolute URI ending with /: " + uri);
      }
    }
    if (run.contains("columnKind") && run["columnKind"] != "utf16CodeUnits" &&
        run["columnKind"] != "unicodeCodePoints")
      fail(rw + ".columnKind", "bad value");
    if (!run.contains("results")) continue;
    if (!run["results"].is_array()) {
      fail(rw + ".results", "not an array");
      continue;
    }
    for (std::size_t i = 0; i < run["results"].size(); ++i) {
      const json& res = run["results"][i];
      std::string w = rw + ".results[" + std::to_string(i) + "]";
      if (!res.is_object()) {
        fail(w, "not an object");
        continue;
      }
      if (!res.contains("message"))
        fail(w, "missing required message");
      else
        message(res["message"], w + ".message");
      string_at(res, "ruleId", w, false);
      if (res.contains("ruleIndex")) {
        if (!is_int(res["ruleIndex"]) || res["ruleIndex"].get<long>() < -1)
          fail(w + ".ruleIndex", "not an integer >= -1");
        else if (res["ruleIndex"].get<long>() >= 0 &&
                 static_cast<std::size_t>(res["ruleIndex"].get<long>()) >= rule_count)
          fail(w + ".ruleIndex", "out of range of the rules");
        else if (res["ruleIndex"].get<long>() >= 0 && res.contains("ruleId") &&
                 rules[res["ruleIndex"].get<std::size_t>()].value("id", "") != res["ruleId"])
          fail(w + ".ruleIndex", "names another rule than ruleId");
      }
      if (res.contains("level") && (!res["level"].is_string() || !kLevels.count(res["level"])))
        fail(w + ".level", "not one of none, note, warning, error");
      if (res.contains("partialFingerprints")) {
        if (!res["partialFingerprints"].is_object())
          fail(w + ".partialFingerprints", "not an object");
        for (const auto& [key, value] : res["partialFingerprints"].items())
          if (!value.is_string()) fail(w + ".partialFingerprints." + key, "not a string");
      }
      if (!res.contains("locations")) continue;
      if (!res["locations"].is_array()) {
        fail(w + ".locations", "not an array");
        continue;
      }
      for (std::size_t l = 0; l < res["locations"].size(); ++l) {
        const json& loc = res["locations"][l];
        std::string lw = w + ".locations[" + std::to_string(l) + "]";
        if (!loc.is_object()) {
          fail(lw, "not an object");
          continue;
        }
        if (!loc.contains("physicalLocation")) continue;
        const json& phys = loc["physicalLocation"];
        std::string pw = lw + ".physicalLocation";
        if (!phys.is_object() ||
            (!phys.contains("artifactLocation") && !phys.contains("address"))) {
          fail(pw, "needs artifactLocation or address");
          continue;
        }
        if (phys.contains("artifactLocation")) {
          const json& art = phys["artifactLocation"];
          std::string aw = pw + ".artifactLocation";
          if (!art.is_object()) {
            fail(aw, "not an object");
          } else {
            if (string_at(art, "uri", aw, false) && !valid_uri_reference(art["uri"]))
              fail(aw + ".uri", "not a URI reference: " + art["uri"].get<std::string>());
            if (string_at(art, "uriBaseId", aw, false)) {
              if (!base_ids.count(art["uriBaseId"]))
                fail(aw + ".uriBaseId", "not in originalUriBaseIds");
              if (art.contains("uri") && art["uri"].is_string() && absolute_uri(art["uri"]))
                fail(aw, "absolute uri with a uriBaseId");
            } else if (art.contains("uri") && art["uri"].is_string() && !absolute_uri(art["uri"])) {
              fail(aw, "relative uri without uriBaseId");
            }
          }
        }
        if (phys.contains("region")) {
          const json& reg = phys["region"];
          std::string gw = pw + ".region";
          if (!reg.is_object()) {
            fail(gw, "not an object");
            continue;
          }
          for (const char* key : {"startLine", "startColumn", "endLine", "endColumn"})
            if (reg.contains(key) && (!is_int(reg[key]) || reg[key].get<long>() < 1))
              fail(gw + "." + key, "not a 1-based integer");
          if (!reg.contains("startLine") && !reg.contains("charOffset") &&
              !reg.contains("byteOffset"))
            fail(gw, "no startLine, charOffset or byteOffset");
        }
      }
    }
  }
  return problems;
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// ------------------------------------------------------------- running the program

using lithos::test::run_check;
using lithos::test::RunResult;

// A checkout in a temp dir: two broken container configs (one under sub/),
// one that does not exist, and a file outside the checkout. Container
// checks need no master, host or image: the diagnostics are the files'.
struct Checkout : ::testing::Test {
  fs::path top, repo, outside;
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lithos-report-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    top = pattern;
    repo = top / "repo";
    outside = top / "outside.yaml";
    fs::create_directories(repo / "sub");
    std::ofstream(repo / "b.yaml") << "executable: /x\nwork-dir: /a\nkill-timeout: 5x\n";
    std::ofstream(repo / "sub" / "a.yaml") << "executable: /x\nbogus: 1\n";
    std::ofstream(outside) << "executable: /x\nalso-bogus: 1\n";
  }
  void TearDown() override { fs::remove_all(top); }

  // Every file, in an order the output must not keep, `sub/a.yaml` named
  // through `./` and `..`, and b.yaml twice (its diagnostics once).
  std::vector<std::string> check_all(const std::string& format) const {
    return {"--format",          format,
            "--check-container", "b.yaml",
            "--check-container", "./sub/../sub/a.yaml",
            "--check-container", "missing.yaml",
            "--check-container", outside.string(),
            "--check-container", "b.yaml"};
  }
};

}  // namespace

// ------------------------------------------------------------- text and JSON

TEST(Report, TextHasLocationCodeSourceLineAndCaret) {
  Sources sources;
  auto diags = sample(sources);
  ASSERT_EQ(diags.size(), 2u);
  std::string text = format_text(diags, sources);
  EXPECT_NE(text.find("c.yaml:2:1: error[unknown-key]: unknown key \"work-dir\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" 2 | work-dir: /a\n   | ^\n"), std::string::npos) << text;
  EXPECT_NE(text.find("c.yaml:3:15: error[bad-duration]:"), std::string::npos) << text;
  EXPECT_NE(text.find(" 3 | kill-timeout: 5x\n   |               ^\n"), std::string::npos) << text;
}

TEST(Report, JsonIsAVersionedObjectWithCounts) {
  Sources sources;
  auto diags = sample(sources);
  diags.warning("c.yaml", {1, 1}, Code::Bridge, "w");
  auto j = json::parse(format_json(diags, "1.2.3"));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["version"], kReportJsonVersion);
  EXPECT_EQ(j["tool"], "lithos_check");
  EXPECT_EQ(j["tool_version"], "1.2.3");
  EXPECT_EQ(j["errors"], 2);
  EXPECT_EQ(j["warnings"], 1);
  EXPECT_EQ(j["notes"], 0);
  const auto& d = j["diagnostics"];
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], json({{"file", "c.yaml"},
                        {"line", 2},
                        {"column", 1},
                        {"code", "unknown-key"},
                        {"severity", "error"},
                        {"message", diags.items()[0].message}}));
  EXPECT_EQ(d[0]["message"].get<std::string>().rfind("unknown key \"work-dir\"", 0), 0u);
  EXPECT_EQ(d[1]["code"], "bad-duration");
  EXPECT_EQ(d[1]["column"], 15);
  EXPECT_EQ(d[2]["severity"], "warning");
  // The keys of the contract, in this order, and nothing else.
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"diagnostics", "errors", "notes", "tool",
                                            "tool_version", "version", "warnings"}));
  std::string text = format_json(diags, "1.2.3");
  EXPECT_LT(text.find("\"version\""), text.find("\"diagnostics\"")) << "version comes first";
}

TEST(Report, JsonFileLevelDiagnosticsHaveNoLineOrColumn) {
  Diagnostics diags;
  diags.error("gone.yaml", {}, Code::FileUnreadable, "cannot read");
  diags.note("img", {}, Code::Image, "not verified");
  auto j = json::parse(format_json(diags, "0"));
  ASSERT_EQ(j["diagnostics"].size(), 2u);
  EXPECT_EQ(j["diagnostics"][0],
            json::parse(R"({"file": "gone.yaml", "code": "file-unreadable", "severity": "error",
                "message": "cannot read"})"));
  EXPECT_FALSE(j["diagnostics"][1].contains("line"));
  EXPECT_EQ(j["diagnostics"][1]["severity"], "note");
  EXPECT_EQ(j["errors"], 1);
  EXPECT_EQ(j["notes"], 1);
  // What --audit embeds is the same array.
  EXPECT_EQ(json::parse(format_json_diagnostics(diags)), j["diagnostics"]);
}

TEST(Report, OneLineFormsGiveTheLineOnlyWhereThereIsOneAndJoinOnlyErrors) {
  Diagnostics diags;
  diags.error("/etc/lithos/sandboxes/a.yaml", {3, 5}, Code::UnknownKey, "Unknown key \"x\"");
  diags.warning("/etc/lithos/sandboxes/a.yaml", {4, 1}, Code::NoProcesses, "not an error");
  diags.error("/etc/lithos/processes/a.yaml", {}, Code::FileUnreadable, "Error reading file: gone");
  EXPECT_EQ(diags.items()[0].one_line(), "/etc/lithos/sandboxes/a.yaml:3: Unknown key \"x\"");
  EXPECT_EQ(diags.items()[2].one_line(), "/etc/lithos/processes/a.yaml: Error reading file: gone");
  EXPECT_EQ(diags.errors_one_line(),
            "/etc/lithos/sandboxes/a.yaml:3: Unknown key \"x\"; "
            "/etc/lithos/processes/a.yaml: Error reading file: gone");
}

TEST(Report, JsonOfNothingIsAnEmptyList) {
  auto j = json::parse(format_json(Diagnostics{}, "0"));
  EXPECT_EQ(j["errors"], 0);
  EXPECT_TRUE(j["diagnostics"].is_array());
  EXPECT_TRUE(j["diagnostics"].empty());
}

// ------------------------------------------------------------- order

TEST(Report, SortedUniqueOrdersByFileLineColumnCodeMessageAndDropsDuplicates) {
  Diagnostics d;
  d.error("b.yaml", {1, 1}, Code::UnknownKey, "m");
  d.error("a.yaml", {10, 1}, Code::UnknownKey, "m");
  d.error("a.yaml", {2, 5}, Code::WrongType, "z");
  d.error("a.yaml", {2, 5}, Code::BadBool, "z");  // bad-bool < wrong-type
  d.error("a.yaml", {2, 5}, Code::BadBool, "a");
  d.error("a.yaml", {2, 3}, Code::WrongType, "m");
  d.error("a.yaml", {}, Code::FileTooLarge, "whole file");
  d.error("b.yaml", {1, 1}, Code::UnknownKey, "m");   // exact duplicate
  d.warning("a.yaml", {2, 5}, Code::BadBool, "a");    // differs in severity only
  d.error("a.yaml", {10, 1}, Code::UnknownKey, "m");  // exact duplicate
  auto s = d.sorted_unique();
  std::vector<std::string> got;
  for (const auto& x : s.items())
    got.push_back(x.file + ":" + std::to_string(x.mark.line) + ":" + std::to_string(x.mark.column) +
                  " " + std::string(code_id(x.code)) + " " + x.message + " " +
                  std::string(severity_name(x.severity)));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "a.yaml:0:0 file-too-large whole file error",
                     "a.yaml:2:3 wrong-type m error",
                     "a.yaml:2:5 bad-bool a error",
                     "a.yaml:2:5 bad-bool a warning",
                     "a.yaml:2:5 bad-bool z error",
                     "a.yaml:2:5 wrong-type z error",
                     "a.yaml:10:1 unknown-key m error",
                     "b.yaml:1:1 unknown-key m error",
                 }));
  EXPECT_EQ(d.size(), 10u) << "the original is left as it was";
  EXPECT_EQ(s.sorted_unique().size(), s.size()) << "idempotent";
}

// ------------------------------------------------------------- paths

TEST(ReportPaths, AbsoluteNormalIsLexical) {
  EXPECT_EQ(absolute_normal("./a/../b", "/w/repo"), "/w/repo/b");
  EXPECT_EQ(absolute_normal("././sandboxes/x.yaml", "/w/repo"), "/w/repo/sandboxes/x.yaml");
  EXPECT_EQ(absolute_normal("/etc//lithos/./x/", "/w"), "/etc/lithos/x");
  EXPECT_EQ(absolute_normal("../../..", "/w/repo"), "/");
  EXPECT_EQ(absolute_normal(".", "/w/repo/"), "/w/repo");
}

TEST(ReportPaths, RelativeOnlyStrictlyUnderTheRoot) {
  EXPECT_EQ(relative_under("/w/repo/a/b.yaml", "/w/repo"), "a/b.yaml");
  EXPECT_EQ(relative_under("/w/repository/b.yaml", "/w/repo"), std::nullopt);
  EXPECT_EQ(relative_under("/w/repo", "/w/repo"), std::nullopt);
  EXPECT_EQ(relative_under("/etc/x", "/"), "etc/x");
  EXPECT_EQ(report_path("./sub/../b.yaml", kRepo), "b.yaml");
  EXPECT_EQ(report_path("/etc/lithos/m.yaml", kRepo), "/etc/lithos/m.yaml");
  EXPECT_EQ(report_path("../b.yaml", {"/w/repo/sub", "/w/repo"}), "b.yaml");
  // The srcroot defaults to the cwd.
  EXPECT_EQ(report_path("x/y.yaml", {"/w/repo", ""}), "x/y.yaml");
  EXPECT_EQ(report_path("x/y.yaml", {"/w/repo", "/w"}), "repo/x/y.yaml");
}

TEST(ReportPaths, UrisArePercentEncoded) {
  EXPECT_EQ(file_uri("/w/repo", true), "file:///w/repo/");
  EXPECT_EQ(file_uri("/", true), "file:///");
  EXPECT_EQ(file_uri("/a b/%c#d?e"), "file:///a%20b/%25c%23d%3Fe");
  EXPECT_EQ(relative_uri("a:b/c"), "a%3Ab/c") << "never mistaken for a scheme";
  EXPECT_EQ(relative_uri("images/\xc3\xa9.yaml"), "images/%C3%A9.yaml");
}

// ------------------------------------------------------------- SARIF

TEST(ReportSarif, SampleIsValidAndPointsAtTheLines) {
  Sources sources;
  auto diags = sample(sources);
  auto j = json::parse(format_sarif(diags, kRepo, {"1.2.3", "file:///d/diagnostics.md", {}}));
  EXPECT_EQ(validate_sarif(j), std::vector<std::string>{});
  EXPECT_EQ(j["version"], "2.1.0");
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["name"], "lithos_check");
  EXPECT_EQ(run["tool"]["driver"]["version"], "1.2.3");
  EXPECT_EQ(run["tool"]["driver"]["rules"].size(), kCodeTable.size());
  ASSERT_EQ(run["results"].size(), 2u);
  const auto& r = run["results"][0];
  EXPECT_EQ(r["ruleId"], "unknown-key");
  EXPECT_EQ(run["tool"]["driver"]["rules"][r["ruleIndex"].get<int>()]["id"], "unknown-key");
  EXPECT_EQ(r["level"], "error");
  EXPECT_EQ(r["locations"][0]["physicalLocation"]["artifactLocation"],
            json::parse(R"({"uri": "c.yaml", "uriBaseId": "SRCROOT"})"));
  EXPECT_EQ(r["locations"][0]["physicalLocation"]["region"],
            json::parse(R"({"startLine": 2, "startColumn": 1})"));
  EXPECT_EQ(run["originalUriBaseIds"]["SRCROOT"]["uri"], "file:///w/repo/");
  EXPECT_EQ(run["invocations"], json::parse(R"([{"executionSuccessful": true, "exitCode": 1}])"));
}

TEST(ReportSarif, EveryShapeIsValid) {
  auto j = json::parse(format_sarif(mixed(), kRepo, {"0", "file:///d/diagnostics.md", 0}));
  EXPECT_EQ(validate_sarif(j), std::vector<std::string>{});
  const auto& results = j["runs"][0]["results"];
  ASSERT_EQ(results.size(), 4u);
  auto artifact = [&](std::size_t i) {
    return results[i]["locations"][0]["physicalLocation"]["artifactLocation"];
  };
  // ./sandboxes/../sandboxes/app.yaml: normal, relative, no `./`.
  EXPECT_EQ(artifact(0), json::parse(R"({"uri": "sandboxes/app.yaml", "uriBaseId": "SRCROOT"})"));
  // File-level: a location without a region.
  EXPECT_EQ(artifact(1)["uri"], "processes/app.yaml");
  EXPECT_FALSE(results[1]["locations"][0]["physicalLocation"].contains("region"));
  // Outside the srcroot: an absolute file URI, no base.
  EXPECT_EQ(artifact(2), json::parse(R"({"uri": "file:///etc/lithos/master.yaml"})"));
  EXPECT_EQ(results[2]["level"], "warning");
  EXPECT_EQ(artifact(3)["uri"], "images/my%20img/config/a,b%3Ac.yaml");
  EXPECT_EQ(results[3]["level"], "note");
  // The exit code is the caller's (--strict may fail on warnings).
  EXPECT_EQ(j["runs"][0]["invocations"][0]["exitCode"], 0);
  EXPECT_EQ(j["runs"][0]["columnKind"], "unicodeCodePoints");
}

TEST(ReportSarif, RulesHaveTheirDefaultLevelAndAHelpAnchor) {
  auto j = json::parse(format_sarif(Diagnostics{}, kRepo, {"0", "file:///d/diagnostics.md", {}}));
  EXPECT_EQ(validate_sarif(j), std::vector<std::string>{});
  const auto& rules = j["runs"][0]["tool"]["driver"]["rules"];
  ASSERT_EQ(rules.size(), kCodeTable.size());
  std::string text = docs();
  for (std::size_t i = 0; i < kCodeTable.size(); ++i) {
    const auto& info = kCodeTable[i];
    EXPECT_EQ(rules[i]["id"], info.id);
    EXPECT_EQ(rules[i]["shortDescription"]["text"], info.summary);
    EXPECT_EQ(rules[i]["helpUri"], "file:///d/diagnostics.md#" + std::string(info.id));
    EXPECT_EQ(rules[i]["defaultConfiguration"]["level"],
              default_severity(info.code) == Severity::Error ? "error" : "warning");
    // The anchor is a heading of docs/diagnostics.md (GitHub, GitLab and
    // pandoc all make `### \`id\`` the anchor #id).
    EXPECT_NE(text.find("\n### `" + std::string(info.id) + "`\n"), std::string::npos) << info.id;
  }
  EXPECT_EQ(j["runs"][0]["invocations"][0]["exitCode"], 0);
  EXPECT_TRUE(j["runs"][0]["results"].empty());
}

TEST(ReportSarif, FingerprintsIgnoreLinesAndCheckoutDirectories) {
  Diagnostics a, b;
  a.error("/w/repo/x.yaml", {3, 1}, Code::UnknownKey, "unknown key \"k\"");
  b.error("x.yaml", {9, 4}, Code::UnknownKey, "unknown key \"k\"");  // moved lines
  auto fa = fingerprints(a, kRepo);
  auto fb = fingerprints(b, {"/elsewhere/checkout", ""});  // another checkout
  ASSERT_EQ(fa.size(), 1u);
  EXPECT_TRUE(std::regex_match(fa[0], std::regex("^[0-9a-f]{16}:1$"))) << fa[0];
  EXPECT_EQ(fa, fb);
  EXPECT_EQ(fingerprints(a, kRepo), fa) << "stable across runs";
  Diagnostics c;
  c.error("x.yaml", {3, 1}, Code::UnknownKey, "unknown key \"other\"");
  c.error("x.yaml", {3, 1}, Code::BadEnum, "unknown key \"k\"");
  c.error("y.yaml", {3, 1}, Code::UnknownKey, "unknown key \"k\"");
  for (const auto& f : fingerprints(c, kRepo)) EXPECT_NE(f, fa[0]);
  // The same problem twice in one file: told apart by the occurrence.
  Diagnostics twice;
  twice.error("x.yaml", {3, 1}, Code::UnknownKey, "unknown key \"k\"");
  twice.error("x.yaml", {7, 1}, Code::UnknownKey, "unknown key \"k\"");
  auto ft = fingerprints(twice, kRepo);
  EXPECT_EQ(ft[0], fa[0]);
  EXPECT_EQ(ft[1], fa[0].substr(0, 16) + ":2");
  // SARIF and GitLab carry the same values.
  auto sarif = json::parse(format_sarif(twice, kRepo, {}));
  EXPECT_EQ(sarif["runs"][0]["results"][1]["partialFingerprints"]["lithosFingerprint/v1"], ft[1]);
  auto gitlab = json::parse(format_gitlab(twice, kRepo));
  EXPECT_EQ(gitlab[1]["fingerprint"], ft[1]);
}

TEST(ReportSarif, ValidatorRejectsBrokenLogs) {
  const json good = json::parse(format_sarif(mixed(), kRepo, {"0", "file:///d/d.md", {}}));
  ASSERT_EQ(validate_sarif(good), std::vector<std::string>{});
  auto broken = [&](auto change) {
    json j = good;
    change(j);
    return validate_sarif(j).size();
  };
  EXPECT_GT(broken([](json& j) { j["version"] = "2.0.0"; }), 0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0].erase("tool"); }), 0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0]["tool"]["driver"].erase("name"); }), 0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0]["results"][0].erase("message"); }), 0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0]["results"][0]["level"] = "fatal"; }), 0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0]["results"][0]["ruleIndex"] = 9999; }), 0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0]["results"][0]["ruleIndex"] = 0; }), 0u);
  EXPECT_GT(
      broken([](json& j) {
        j["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0;
      }),
      0u);
  EXPECT_GT(
      broken([](json& j) {
        j["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
            "./sandboxes/app.yaml";
      }),
      0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0].erase("originalUriBaseIds"); }), 0u);
  EXPECT_GT(
      broken([](json& j) { j["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"] = "file:///w"; }),
      0u);
  EXPECT_GT(broken([](json& j) { j["runs"][0]["invocations"][0].erase("executionSuccessful"); }),
            0u);
  EXPECT_GT(broken([](json& j) {
              j["runs"][0]["tool"]["driver"]["rules"][0]["defaultConfiguration"]["level"] = "bad";
            }),
            0u);
}

// ------------------------------------------------------------- GitHub

TEST(ReportGithub, OneWorkflowCommandPerDiagnostic) {
  std::string out = format_github(mixed(), kRepo);
  EXPECT_EQ(out,
            "::error file=sandboxes/app.yaml,line=3,col=7,title=lithos_check [unknown-key]::"
            "unknown key \"x\"\n"
            "::error file=processes/app.yaml,title=lithos_check [file-unreadable]::"
            "cannot read: 100%25 gone,%0Areally\n"
            "::warning file=/etc/lithos/master.yaml,line=2,col=1,title=lithos_check [bridge]::"
            "bridge \"br0\": absent\n"
            "::notice file=images/my img/config/a%2Cb%3Ac.yaml,line=1,col=1,"
            "title=lithos_check [image]::not verified%0D\n");
}

TEST(ReportGithub, Escaping) {
  EXPECT_EQ(github_escape_data("a%b\r\nc:d,e"), "a%25b%0D%0Ac:d,e");
  EXPECT_EQ(github_escape_property("a%b\r\nc:d,e"), "a%25b%0D%0Ac%3Ad%2Ce");
  EXPECT_EQ(format_github(Diagnostics{}, kRepo), "");
}

// ------------------------------------------------------------- GitLab

TEST(ReportGitlab, CodeQualityIssues) {
  auto j = json::parse(format_gitlab(mixed(), kRepo));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 4u);
  auto prints = fingerprints(mixed(), kRepo);
  EXPECT_EQ(j[0],
            json({{"description", "unknown key \"x\""},
                  {"check_name", "unknown-key"},
                  {"fingerprint", prints[0]},
                  {"severity", "major"},
                  {"location", {{"path", "sandboxes/app.yaml"}, {"lines", {{"begin", 3}}}}}}));
  EXPECT_EQ(j[1]["location"]["lines"]["begin"], 1) << "file-level: line 1";
  EXPECT_EQ(j[1]["location"]["path"], "processes/app.yaml");
  EXPECT_EQ(j[2]["severity"], "minor");
  EXPECT_EQ(j[2]["location"]["path"], "/etc/lithos/master.yaml");
  EXPECT_EQ(j[3]["severity"], "info");
  EXPECT_EQ(j[3]["location"]["path"], "images/my img/config/a,b:c.yaml");
  std::set<std::string> unique;
  for (const auto& issue : j) unique.insert(issue["fingerprint"].get<std::string>());
  EXPECT_EQ(unique.size(), j.size());
  EXPECT_EQ(json::parse(format_gitlab(Diagnostics{}, kRepo)), json::array());
}

// ------------------------------------------------------------- docs and codes

TEST(Report, DocsListEveryCode) {
  std::string text = docs();
  ASSERT_FALSE(text.empty()) << "docs/diagnostics.md missing";
  for (const auto& info : kCodeTable)
    EXPECT_NE(text.find("`" + std::string(info.id) + "`"), std::string::npos) << info.id;
}

// The index of docs/diagnostics.md: one row per code, linking its anchor,
// with the code's default level.
TEST(Report, DocsIndexHasEveryCodeWithItsLevel) {
  std::string text = docs();
  for (const auto& info : kCodeTable) {
    std::string id(info.id);
    std::string level(severity_name(default_severity(info.code)));
    std::string row = "| [`" + id + "`](#" + id + ") | " + level + " |";
    EXPECT_NE(text.find(row), std::string::npos) << row;
    std::size_t headings = 0;
    for (auto at = text.find("\n### `" + id + "`\n"); at != std::string::npos;
         at = text.find("\n### `" + id + "`\n", at + 1))
      ++headings;
    EXPECT_EQ(headings, 1u) << id;
  }
}

TEST(Report, CodeIdsAreUniqueAndRoundTrip) {
  for (const auto& info : kCodeTable) {
    auto code = code_from_id(info.id);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, info.code);
  }
}

TEST(Report, FormatNames) {
  EXPECT_EQ(report_format_from_name("github"), ReportFormat::Github);
  EXPECT_EQ(report_format_from_name("gitlab"), ReportFormat::Gitlab);
  EXPECT_EQ(report_format_from_name("sarif"), ReportFormat::Sarif);
  EXPECT_EQ(report_format_from_name("xml"), std::nullopt);
  EXPECT_TRUE(uses_srcroot(ReportFormat::Gitlab));
  EXPECT_FALSE(uses_srcroot(ReportFormat::Json));
}

// ------------------------------------------------------------- the program

TEST_F(Checkout, TextIsSortedWithoutDuplicates) {
  auto r = run_check(repo, check_all("text"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::vector<std::string> headers;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);)
    if (line.find(": error[") != std::string::npos)
      headers.push_back(line.substr(0, line.find(": error[")));
  // Sorted by the file as named ("./" < "/" < "b"), then line and column.
  EXPECT_EQ(headers, (std::vector<std::string>{"./sub/../sub/a.yaml:2:1", outside.string() + ":2:1",
                                               "b.yaml:2:1", "b.yaml:3:15", "missing.yaml"}))
      << r.err;
  EXPECT_NE(r.err.find("lithos_check: 5 error(s), 0 warning(s)"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(Checkout, JsonObject) {
  auto r = run_check(repo, check_all("json"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["tool"], "lithos_check");
  EXPECT_EQ(j["tool_version"], LITHOS_VERSION);
  EXPECT_EQ(j["errors"], 5);
  EXPECT_EQ(j["warnings"], 0);
  const auto& d = j["diagnostics"];
  ASSERT_EQ(d.size(), 5u) << r.out;
  EXPECT_EQ(d[0]["file"], "./sub/../sub/a.yaml");
  EXPECT_EQ(d[1]["file"], outside.string());
  EXPECT_EQ(d[2]["file"], "b.yaml");
  EXPECT_EQ(d[2]["line"], 2);
  EXPECT_EQ(d[3]["code"], "bad-duration");
  EXPECT_EQ(d[4], json({{"file", "missing.yaml"},
                        {"code", "file-unreadable"},
                        {"severity", "error"},
                        {"message", d[4]["message"]}}))
      << "file-level: no line, no column";
}

TEST_F(Checkout, SarifWithSrcroot) {
  // Run from the checkout's parent with --srcroot repo: paths are relative
  // to repo, the file beside it is an absolute URI.
  auto args = check_all("sarif");
  for (auto& a : args)
    if (a == "b.yaml" || a == "missing.yaml" || a == "./sub/../sub/a.yaml") a = "repo/" + a;
  args.insert(args.end(), {"--srcroot", "./repo/"});
  auto r = run_check(top, args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(validate_sarif(j), std::vector<std::string>{});
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["originalUriBaseIds"]["SRCROOT"]["uri"], file_uri(repo.string(), true));
  EXPECT_EQ(run["invocations"], json::parse(R"([{"executionSuccessful": true, "exitCode": 1}])"));
  std::vector<json> artifacts;
  for (const auto& res : run["results"])
    artifacts.push_back(res["locations"][0]["physicalLocation"]["artifactLocation"]);
  ASSERT_EQ(artifacts.size(), 5u) << r.out;
  EXPECT_EQ(artifacts[0], json({{"uri", file_uri(outside.string())}}));
  EXPECT_EQ(artifacts[1], json({{"uri", "sub/a.yaml"}, {"uriBaseId", "SRCROOT"}}));
  EXPECT_EQ(artifacts[2], json({{"uri", "b.yaml"}, {"uriBaseId", "SRCROOT"}}));
  EXPECT_EQ(artifacts[4], json({{"uri", "missing.yaml"}, {"uriBaseId", "SRCROOT"}}));
  EXPECT_FALSE(run["results"][4]["locations"][0]["physicalLocation"].contains("region"));
  // The same check from inside the checkout, without --srcroot: the same
  // locations under the same fingerprints.
  auto inside = json::parse(run_check(repo, check_all("sarif")).out);
  auto by_fingerprint = [](const json& results) {
    std::map<std::string, json> out;
    for (const auto& res : results)
      out[res["partialFingerprints"]["lithosFingerprint/v1"]] = res["locations"];
    return out;
  };
  EXPECT_EQ(by_fingerprint(inside["runs"][0]["results"]), by_fingerprint(run["results"]));
  EXPECT_EQ(by_fingerprint(run["results"]).size(), 5u);
}

TEST_F(Checkout, SarifHelpUriResolves) {
  auto r = run_check(repo, {"--format", "sarif", "--check-container", "b.yaml"});
  auto j = json::parse(r.out);
  const auto& rules = j["runs"][0]["tool"]["driver"]["rules"];
  ASSERT_EQ(rules.size(), kCodeTable.size());
  std::string uri = rules[0]["helpUri"];
  ASSERT_EQ(uri.rfind("file://", 0), 0u) << uri;
  std::string file = percent_decode(uri.substr(7, uri.find('#') - 7));
  fs::path bin = fs::path(LITHOS_BIN_DIR).lexically_normal();
  fs::path installed = (bin / "../share/doc/lithos/diagnostics.md").lexically_normal();
  fs::path in_tree = (bin / "../../docs/diagnostics.md").lexically_normal();
  if (fs::exists(installed)) {
    EXPECT_EQ(file, installed.string());
  } else if (fs::exists(in_tree)) {
    EXPECT_EQ(file, in_tree.string());
  } else {
    EXPECT_EQ(file, installed.string()) << "neither exists: the installed place";
  }
  if (fs::equivalent(bin / "../..", LITHOS_SOURCE_DIR)) {
    // A build directory at the root of the source tree (scripts/build.sh):
    // the link resolves to this file and its anchor to a heading.
    std::string text = slurp(file);
    for (const auto& rule : rules) {
      std::string id = rule["id"];
      EXPECT_EQ(rule["helpUri"], uri.substr(0, uri.find('#') + 1) + id);
      EXPECT_NE(text.find("\n### `" + id + "`\n"), std::string::npos) << id;
    }
  }
}

TEST_F(Checkout, Github) {
  auto r = run_check(repo, check_all("github"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(
      lines[0].rfind("::error file=sub/a.yaml,line=2,col=1,title=lithos_check [unknown-key]::", 0),
      0u)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("::error file=" + outside.string() +
                               ",line=2,col=1,title=lithos_check [unknown-key]::",
                           0),
            0u)
      << lines[1];
  EXPECT_EQ(
      lines[3].rfind("::error file=b.yaml,line=3,col=15,title=lithos_check [bad-duration]::", 0),
      0u)
      << lines[3];
  EXPECT_EQ(lines[4].rfind("::error file=missing.yaml,title=lithos_check [file-unreadable]::", 0),
            0u)
      << lines[4];
  // With --srcroot above the checkout, paths are relative to it.
  auto above =
      run_check(repo, {"--format", "github", "--srcroot", "..", "--check-container", "b.yaml"});
  EXPECT_EQ(above.out.rfind("::error file=repo/b.yaml,line=2,col=1,", 0), 0u) << above.out;
}

TEST_F(Checkout, Gitlab) {
  auto r = run_check(repo, check_all("gitlab"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto j = json::parse(r.out);
  ASSERT_EQ(j.size(), 5u) << r.out;
  EXPECT_EQ(j[0]["location"], json::parse(R"({"path": "sub/a.yaml", "lines": {"begin": 2}})"));
  EXPECT_EQ(j[0]["check_name"], "unknown-key");
  EXPECT_EQ(j[0]["severity"], "major");
  EXPECT_EQ(j[1]["location"]["path"], outside.string());
  EXPECT_EQ(j[4]["location"], json::parse(R"({"path": "missing.yaml", "lines": {"begin": 1}})"));
  for (const auto& issue : j) {
    EXPECT_TRUE(issue["description"].is_string());
    EXPECT_TRUE(issue["fingerprint"].is_string());
  }
}

TEST_F(Checkout, ValidConfigExitsZeroInEveryFormat) {
  std::ofstream(repo / "good.yaml") << "executable: /bin/true\n";
  for (const char* format : {"text", "json", "sarif", "github", "gitlab"}) {
    auto r = run_check(repo, {"--format", format, "--check-container", "good.yaml"});
    EXPECT_EQ(r.exit_code, 0) << format << ": " << r.err << r.out;
    if (std::string(format) == "sarif") {
      auto j = json::parse(r.out);
      EXPECT_EQ(validate_sarif(j), std::vector<std::string>{});
      EXPECT_EQ(j["runs"][0]["invocations"][0]["exitCode"], 0);
      EXPECT_TRUE(j["runs"][0]["results"].empty());
    }
    if (std::string(format) == "github" || std::string(format) == "text") {
      EXPECT_TRUE(r.out.empty()) << format << ": " << r.out;
    }
    if (std::string(format) == "gitlab") {
      EXPECT_EQ(json::parse(r.out), json::array());
    }
  }
}

TEST_F(Checkout, UsageErrorsAreOneLineAndExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string names;  // what the one line must name
  };
  std::vector<Case> cases{
      {{"--format", "text", "--srcroot", ".", "--check-container", "b.yaml"}, "--srcroot"},
      {{"--srcroot", ".", "--check-container", "b.yaml"}, "--srcroot"},  // text by default
      {{"--format", "json", "--srcroot", ".", "--check-container", "b.yaml"}, "--srcroot"},
      {{"--format", "sarif", "--srcroot", "no-such-dir", "--check-container", "b.yaml"},
       "no-such-dir"},
      {{"--format", "github", "--srcroot", "b.yaml", "--check-container", "b.yaml"}, "b.yaml"},
      {{"--format", "gitlab", "--srcroot", "", "--check-container", "b.yaml"}, "--srcroot"},
      {{"--format", "sarif", "--audit", "-C", "master.yaml"}, "--audit"},
      {{"--format", "github", "--audit", "-C", "master.yaml"}, "--audit"},
      {{"--format", "gitlab", "--audit", "-C", "master.yaml"}, "--audit"},
  };
  for (const auto& c : cases) {
    auto r = run_check(repo, c.args);
    std::string shown = ::testing::PrintToString(c.args);
    EXPECT_EQ(r.exit_code, 2) << shown << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << r.err;
    EXPECT_NE(r.err.find(c.names), std::string::npos) << shown << r.err;
    EXPECT_TRUE(r.out.empty()) << shown << r.out;
  }
  // Not a usage error: --srcroot with a CI format and a directory.
  EXPECT_EQ(
      run_check(repo, {"--format", "gitlab", "--srcroot", "sub", "--check-container", "b.yaml"})
          .exit_code,
      1);
}
