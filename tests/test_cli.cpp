// The command-line convention every tool follows (docs/cli.md): --help on
// stdout with exit 0, --version as `NAME VERSION`, an unknown flag as one
// line on stderr that says to try --help, exit 2; colour only on a
// terminal and never with NO_COLOR. Run against the built programs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "check_run_support.hpp"

namespace {

using lithos::test::run_tool;
namespace fs = std::filesystem;

const std::vector<std::string> kTools = {"lithos_tree",  "lithos_knot",  "lithos_cmd",
                                         "lithos_crypt", "lithos_check", "lithos_switch",
                                         "lithos_ps",    "lithos_clean", "lithos_mkdev"};

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST(CommandLine, HelpGoesToStdoutAndExitsZero) {
  for (const auto& tool : kTools) {
    auto r = run_tool("/", tool, {"--help"});
    EXPECT_EQ(r.exit_code, 0) << tool << ": " << r.err;
    EXPECT_NE(r.out.find(tool), std::string::npos) << tool << ": " << r.out;
    EXPECT_EQ(r.err, "") << tool;
  }
}

TEST(CommandLine, VersionIsNameAndVersion) {
  for (const auto& tool : kTools) {
    auto r = run_tool("/", tool, {"--version"});
    EXPECT_EQ(r.exit_code, 0) << tool << ": " << r.err;
    EXPECT_EQ(r.out, tool + " " + LITHOS_VERSION + "\n") << tool;
    EXPECT_EQ(r.err, "") << tool;
  }
}

TEST(CommandLine, AnUnknownFlagIsOneLineAndExitsTwo) {
  for (const auto& tool : kTools) {
    auto r = run_tool("/", tool, {"--no-such-flag"});
    EXPECT_EQ(r.exit_code, 2) << tool << ": " << r.err;
    EXPECT_EQ(r.out, "") << tool;
    EXPECT_EQ(lines(r.err), 1u) << tool << ": " << r.err;
    EXPECT_EQ(r.err.rfind(tool + ": usage error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("(try " + tool + " --help)"), std::string::npos) << r.err;
  }
}

// A --help after the operands belongs to the command lithos_cmd runs.
TEST(CommandLine, HelpAfterTheOperandsIsTheCommandsArgument) {
  auto r =
      run_tool("/", "lithos_cmd", {"--master", "/nonexistent/master.yaml", "box", "cmd", "--help"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.find("Usage:"), std::string::npos) << r.out;
}

class Colour : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lithos-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A container config with an error: lithos_check reports it on stderr.
    std::ofstream(dir_ / "bad.yaml") << "kind: Deamon\nexecutable: /bin/true\n";
    terminal_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(terminal_, 0);
    ASSERT_EQ(::grantpt(terminal_), 0);
    ASSERT_EQ(::unlockpt(terminal_), 0);
    const char* name = ::ptsname(terminal_);
    ASSERT_NE(name, nullptr);
    secondary_ = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(secondary_, 0);
  }
  void TearDown() override {
    if (secondary_ >= 0) ::close(secondary_);
    if (terminal_ >= 0) ::close(terminal_);
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  // What lithos_check wrote to the terminal.
  std::string check_on_terminal(const std::vector<std::string>& env) {
    auto r = run_tool(dir_, "lithos_check", {"--check-container", "bad.yaml"}, env, secondary_);
    EXPECT_EQ(r.exit_code, 1);
    std::string text;
    char buffer[4096];
    ::fcntl(terminal_, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(terminal_, buffer, sizeof buffer)) > 0)
      text.append(buffer, static_cast<std::size_t>(n));
    return text;
  }

  fs::path dir_;
  int terminal_ = -1, secondary_ = -1;
};

TEST_F(Colour, OnlyOnATerminalAndNeverWithNoColor) {
  std::string coloured = check_on_terminal({});
  EXPECT_NE(coloured.find("Deamon"), std::string::npos) << coloured;
  EXPECT_NE(coloured.find("\033["), std::string::npos) << coloured;
  std::string plain = check_on_terminal({"NO_COLOR=1"});
  EXPECT_NE(plain.find("Deamon"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("\033["), std::string::npos) << plain;
  // Not a terminal: no colour either.
  auto r = run_tool(dir_, "lithos_check", {"--check-container", "bad.yaml"});
  EXPECT_NE(r.err.find("Deamon"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("\033["), std::string::npos) << r.err;
  auto ps = run_tool(dir_, "lithos_ps", {"--help"}, {"NO_COLOR=1"});
  EXPECT_EQ(ps.out.find("\033["), std::string::npos);
}

}  // namespace
