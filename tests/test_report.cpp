// Rendering of diagnostics (text, JSON, SARIF) and the documented code list.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lithos/policy/config.hpp"
#include "lithos/policy/report.hpp"

using namespace lithos::policy;

namespace {

Diagnostics sample(Sources& sources) {
  Diagnostics diags;
  std::string text = "executable: /x\nwork-dir: /a\nkill-timeout: 5x\n";
  sources.add("c.yaml", text);
  (void)decode_text<ContainerCodec>(text, "c.yaml", diags);
  return diags;
}

}  // namespace

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

TEST(Report, JsonListsEveryDiagnostic) {
  Sources sources;
  auto diags = sample(sources);
  auto j = nlohmann::json::parse(format_json(diags));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["file"], "c.yaml");
  EXPECT_EQ(j[0]["line"], 2);
  EXPECT_EQ(j[0]["column"], 1);
  EXPECT_EQ(j[0]["code"], "unknown-key");
  EXPECT_EQ(j[0]["severity"], "error");
  EXPECT_EQ(j[1]["code"], "bad-duration");
}

TEST(Report, SarifIsVersion210WithRulesAndRegions) {
  Sources sources;
  auto diags = sample(sources);
  auto j = nlohmann::json::parse(format_sarif(diags, "1.2.3"));
  EXPECT_EQ(j["version"], "2.1.0");
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["name"], "lithos_check");
  EXPECT_EQ(run["tool"]["driver"]["rules"].size(), kCodeTable.size());
  ASSERT_EQ(run["results"].size(), 2u);
  const auto& r = run["results"][0];
  EXPECT_EQ(r["ruleId"], "unknown-key");
  EXPECT_EQ(run["tool"]["driver"]["rules"][r["ruleIndex"].get<int>()]["id"], "unknown-key");
  EXPECT_EQ(r["level"], "error");
  EXPECT_EQ(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "c.yaml");
  EXPECT_EQ(r["locations"][0]["physicalLocation"]["region"]["startLine"], 2);
}

TEST(Report, DocsListEveryCode) {
  std::ifstream in(LITHOS_SOURCE_DIR "/docs/diagnostics.md");
  ASSERT_TRUE(in) << "docs/diagnostics.md missing";
  std::stringstream buffer;
  buffer << in.rdbuf();
  for (const auto& info : kCodeTable)
    EXPECT_NE(buffer.str().find("`" + std::string(info.id) + "`"), std::string::npos) << info.id;
}

TEST(Report, CodeIdsAreUniqueAndRoundTrip) {
  for (const auto& info : kCodeTable) {
    auto code = code_from_id(info.id);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, info.code);
  }
}
