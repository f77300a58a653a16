// Golden corpus: runs the real lithos_check on every case under
// corpus/cases and compares its exit code and the exact set of diagnostics
// (severity, code, file, line and, when given, column) with the case's
// `expect` file. The format is described in corpus/README.md.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "check_run_support.hpp"
#include "lithos/policy/diagnostics.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path kCasesDir = fs::path(LITHOS_SOURCE_DIR) / "corpus" / "cases";
const fs::path kCheck = fs::path(LITHOS_BIN_DIR) / "lithos_check";

struct ExpectedDiagnostic {
  std::string severity;  // "error" or "warning"
  std::string code;
  std::string file;
  int line = 0;
  std::optional<int> column;
  std::string message_part;  // when not empty, the message must contain it
};

struct Expectation {
  std::vector<std::string> containers;  // non-empty: --check-container mode
  bool check_container = false;
  std::vector<std::string> args;
  int exit_code = -1;
  std::vector<ExpectedDiagnostic> diagnostics;
  std::optional<std::string> known_bug;
  std::vector<std::string> problems;  // malformed lines
};

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

Expectation parse_expectation(const fs::path& file) {
  Expectation e;
  std::ifstream in(file);
  if (!in) {
    e.problems.push_back("cannot read " + file.string());
    return e;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line.front() == '#') continue;
    auto colon = line.find(": ");
    if (colon == std::string::npos) {
      e.problems.push_back("line " + std::to_string(number) + ": no `key: value`");
      continue;
    }
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "mode") {
      auto words = split_words(value);
      if (words.empty() || (words[0] != "tree" && words[0] != "check-container") ||
          (words[0] == "tree" && words.size() != 1) ||
          (words[0] == "check-container" && words.size() < 2)) {
        e.problems.push_back("line " + std::to_string(number) + ": bad mode " + value);
        continue;
      }
      e.check_container = words[0] == "check-container";
      e.containers.assign(words.begin() + 1, words.end());
    } else if (key == "args") {
      e.args = split_words(value);
    } else if (key == "exit") {
      e.exit_code = std::atoi(value.c_str());
    } else if (key == "knot") {
      // What lithos_knot says when it is started on the case anyway
      // (tests/test_parity.cpp); not part of lithos_check's output.
    } else if (key == "known-bug") {
      e.known_bug = value;
    } else if (key == "error" || key == "warning") {
      static const std::regex shape(R"(^(\S+) (\S+?):(\d+)(?::(\d+))?(?: ~ (.+))?$)");
      std::smatch m;
      if (!std::regex_match(value, m, shape)) {
        e.problems.push_back("line " + std::to_string(number) + ": bad diagnostic " + value);
        continue;
      }
      ExpectedDiagnostic d{key, m[1], m[2], std::stoi(m[3]), std::nullopt, m[5]};
      if (m[4].matched) d.column = std::stoi(m[4]);
      if (!lithos::policy::code_from_id(d.code))
        e.problems.push_back("line " + std::to_string(number) + ": unknown code " + d.code);
      e.diagnostics.push_back(std::move(d));
    } else {
      e.problems.push_back("line " + std::to_string(number) + ": unknown key " + key);
    }
  }
  if (e.exit_code < 0) e.problems.push_back("no exit line");
  return e;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kCasesDir, ec))
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

using lithos::test::run_check;
using lithos::test::RunResult;

std::vector<std::string> command_line(const Expectation& e, const std::string& format) {
  std::vector<std::string> args{"--format", format};
  if (e.check_container) {
    for (const auto& file : e.containers) {
      args.push_back("--check-container");
      args.push_back(file);
    }
  } else {
    args.push_back("-C");
    args.push_back("master.yaml");
    args.insert(args.end(), e.args.begin(), e.args.end());
  }
  return args;
}

// Paths are printed as lithos_check built them (`././sandboxes/x.yaml` for a
// master given as `master.yaml`); drop the `.` components only, so that a
// `..` in a reported path stays visible.
std::string normalise(std::string path) {
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  for (std::size_t at; (at = path.find("/./")) != std::string::npos;) path.erase(at, 2);
  return path;
}

struct ActualDiagnostic {
  std::string severity, code, file, message;
  int line = 0, column = 0;
  std::string text() const {
    return severity + " " + code + " " + file + ":" + std::to_string(line) + ":" +
           std::to_string(column) + " (" + message + ")";
  }
};

std::string describe(const ExpectedDiagnostic& d) {
  return d.severity + " " + d.code + " " + d.file + ":" + std::to_string(d.line) +
         (d.column ? ":" + std::to_string(*d.column) : "") +
         (d.message_part.empty() ? "" : " ~ " + d.message_part);
}

// The host state the cases name (corpus/host-setup.sh): volume sources and
// the secrets key, which lithos_check reports missing as the knot would.
class CorpusHostState : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string command = (fs::path(LITHOS_SOURCE_DIR) / "corpus" / "host-setup.sh").string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
};
const auto* const kCorpusHostState = ::testing::AddGlobalTestEnvironment(new CorpusHostState);

class CorpusCase : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusCase, MatchesExpectation) {
  const fs::path dir = kCasesDir / GetParam();
  Expectation e = parse_expectation(dir / "expect");
  ASSERT_TRUE(e.problems.empty()) << ::testing::PrintToString(e.problems);
  if (e.known_bug) GTEST_SKIP() << "known bug: " << *e.known_bug;

  RunResult run = run_check(dir, command_line(e, "json"));
  ASSERT_NE(run.exit_code, -1) << "lithos_check did not exit normally";
  EXPECT_EQ(run.exit_code, e.exit_code) << "stderr:\n" << run.err << "stdout:\n" << run.out;

  std::vector<ActualDiagnostic> actual;
  if (e.exit_code != 2) {
    // {"version": 1, ..., "diagnostics": [...]}; file-level ones have no line.
    auto json = nlohmann::json::parse(run.out, nullptr, false);
    ASSERT_TRUE(json.is_object() && json.value("version", 0) == 1 && json.contains("diagnostics") &&
                json["diagnostics"].is_array())
        << "not a version 1 report:\n"
        << run.out;
    for (const auto& item : json["diagnostics"]) {
      ActualDiagnostic d{item.at("severity"), item.at("code"),       normalise(item.at("file")),
                         item.at("message"),  item.value("line", 0), item.value("column", 0)};
      // Whether lithos_tree/lithos_knot sit beside lithos_check depends on
      // which targets were built, not on the case.
      if (d.code == "binaries") continue;
      actual.push_back(std::move(d));
    }
  }

  std::vector<bool> used(actual.size(), false);
  std::vector<std::string> missing;
  for (const auto& want : e.diagnostics) {
    bool found = false;
    for (std::size_t i = 0; i < actual.size() && !found; ++i) {
      const auto& got = actual[i];
      if (used[i] || got.severity != want.severity || got.code != want.code ||
          got.file != want.file || got.line != want.line ||
          (want.column && got.column != *want.column) ||
          got.message.find(want.message_part) == std::string::npos)
        continue;
      used[i] = found = true;
    }
    if (!found) missing.push_back(describe(want));
  }
  std::vector<std::string> extra;
  for (std::size_t i = 0; i < actual.size(); ++i)
    if (!used[i]) extra.push_back(actual[i].text());
  EXPECT_TRUE(missing.empty() && extra.empty())
      << "missing:\n  " << ::testing::PrintToString(missing) << "\nunexpected:\n  "
      << ::testing::PrintToString(extra);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Cases, CorpusCase, ::testing::ValuesIn(case_names()), test_name);

// ---------------------------------------------------------------- the corpus itself

TEST(CorpusShape, HasEnoughGoodAndBadCases) {
  auto names = case_names();
  std::size_t good = 0, bad = 0;
  for (const auto& name : names) {
    Expectation e = parse_expectation(kCasesDir / name / "expect");
    EXPECT_TRUE(e.problems.empty()) << name << ": " << ::testing::PrintToString(e.problems);
    if (name.rfind("good-", 0) == 0) {
      ++good;
      EXPECT_EQ(e.exit_code, 0) << name;
      for (const auto& d : e.diagnostics) EXPECT_EQ(d.severity, "warning") << name;
    } else if (name.rfind("bad-", 0) == 0) {
      ++bad;
      EXPECT_NE(e.exit_code, 0) << name;
      // Exit 1 needs at least one error; exit 2 is a usage error without diagnostics.
      if (e.exit_code == 1) {
        EXPECT_TRUE(std::any_of(e.diagnostics.begin(), e.diagnostics.end(),
                                [](const ExpectedDiagnostic& d) { return d.severity == "error"; }))
            << name;
      }
    } else {
      ADD_FAILURE() << name << ": case names start with good- or bad-";
    }
  }
  EXPECT_GE(good, 25u);
  EXPECT_GE(bad, 60u);
}

// ---------------------------------------------------------------- output formats

TEST(CorpusOutput, TextHasLocationSourceLineAndCaret) {
  const fs::path dir = kCasesDir / "bad-user-not-allowed";
  RunResult run = run_check(dir, {"-C", "master.yaml"});
  EXPECT_EQ(run.exit_code, 1);
  // images/app/config/app.yaml line 2 is `user-id: 0`; the value is at column 10.
  std::istringstream lines(run.err);
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  auto header = std::find_if(all.begin(), all.end(), [](const std::string& l) {
    return l.find("error[user-id]") != std::string::npos;
  });
  ASSERT_NE(header, all.end()) << run.err;
  EXPECT_TRUE(std::regex_match(
      *header,
      std::regex(R"(^(\./)*images/app/config/app\.yaml:2:10: error\[user-id\]: .*uid 0.*)")))
      << *header;
  ASSERT_LT(std::distance(all.begin(), header) + 2, static_cast<long>(all.size()));
  EXPECT_EQ(*(header + 1), " 2 | user-id: 0");
  EXPECT_EQ(*(header + 2), "   |          ^");
  EXPECT_NE(run.err.find("1 error(s)"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("\033["), std::string::npos) << "no colour when stderr is not a tty";
}

TEST(CorpusOutput, SarifIsValidWithOneResultPerDiagnostic) {
  const fs::path dir = kCasesDir / "bad-variable-values";
  RunResult json_run = run_check(dir, {"--format", "json", "-C", "master.yaml"});
  RunResult sarif_run = run_check(dir, {"--format", "sarif", "-C", "master.yaml"});
  EXPECT_EQ(sarif_run.exit_code, 1);
  auto report = nlohmann::json::parse(json_run.out, nullptr, false);
  auto sarif = nlohmann::json::parse(sarif_run.out, nullptr, false);
  ASSERT_TRUE(report.is_object() && report["diagnostics"].is_array()) << json_run.out;
  const auto& diags = report["diagnostics"];
  ASSERT_TRUE(sarif.is_object()) << sarif_run.out;
  ASSERT_GE(diags.size(), 8u);
  EXPECT_EQ(sarif.value("version", ""), "2.1.0");
  EXPECT_TRUE(sarif.contains("$schema"));
  ASSERT_TRUE(sarif["runs"].is_array());
  ASSERT_EQ(sarif["runs"].size(), 1u);
  const auto& run = sarif["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["name"], "lithos_check");
  const auto& rules = run["tool"]["driver"]["rules"];
  ASSERT_TRUE(rules.is_array());
  const auto& results = run["results"];
  ASSERT_TRUE(results.is_array());
  ASSERT_EQ(results.size(), diags.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& d = diags[i];
    EXPECT_EQ(r["ruleId"], d["code"]);
    int index = r.value("ruleIndex", -1);
    ASSERT_GE(index, 0);
    ASSERT_LT(static_cast<std::size_t>(index), rules.size());
    EXPECT_EQ(rules[static_cast<std::size_t>(index)]["id"], d["code"]);
    EXPECT_EQ(r["level"], d["severity"]);
    EXPECT_EQ(r["message"]["text"], d["message"]);
    const auto& loc = r["locations"][0]["physicalLocation"];
    // Files under the case directory (the cwd, so the SRCROOT) are
    // relative, normal URIs; others (the `binaries` warning's) absolute.
    std::string file = d["file"];
    if (file.front() == '/') {
      EXPECT_EQ(loc["artifactLocation"]["uri"], "file://" + file);
      EXPECT_FALSE(loc["artifactLocation"].contains("uriBaseId"));
    } else {
      EXPECT_EQ(loc["artifactLocation"]["uri"], normalise(file));
      EXPECT_EQ(loc["artifactLocation"]["uriBaseId"], "SRCROOT");
    }
    if (d.contains("line")) {
      EXPECT_EQ(loc["region"]["startLine"], d["line"]);
      EXPECT_EQ(loc["region"]["startColumn"], d["column"]);
    } else {
      EXPECT_FALSE(loc.contains("region"));
    }
  }
}

}  // namespace
