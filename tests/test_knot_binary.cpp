// What lithos_knot is built from (docs/knot.md, "The launch plan"): the knot
// runs as root against a plan it did not derive, so it must not carry a YAML
// parser, the X3 grammars, a JSON library, libseccomp's compiler or any of
// the config-decoding policy code, and its code stays small (every start pays
// for its pages).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <regex>
#include <sstream>
#include <string>

namespace {

const std::string kKnot = std::string(LITHOS_BIN_DIR) + "/lithos_knot";

// Standard output of a shell command, or a failed expectation.
std::string output_of(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return out;
  }
  char buffer[65536];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, got);
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << " failed";
  return out;
}

TEST(KnotBinary, LinksNoParserOrConfigCode) {
  const std::string symbols = output_of("nm -C " + kKnot);
  // The knot's own code must be there, or this test proves nothing.
  ASSERT_NE(symbols.find("lithos::policy::PlanWire::decode"), std::string::npos);
  ASSERT_NE(symbols.find("lithos::runtime::load_seccomp"), std::string::npos);

  const std::regex forbidden(
      R"((\byaml_[a-z_]+)|(boost::spirit)|(nlohmann::)|)"
      R"((\bseccomp_(init|rule_add|rule_add_array|export_bpf|load|release|syscall_resolve_name)\b)|)"
      R"((lithos::policy::(yaml|schema)::)|)"
      R"((lithos::policy::(load_tree|load_container|check_tree|check_container_alone|plan_instance|)"
      R"(parse_instance_identity|compile_seccomp_program|discover_sandboxes|read_in_root)\b))");
  std::istringstream lines(symbols);
  std::string line;
  int found = 0;
  while (std::getline(lines, line)) {
    if (std::regex_search(line, forbidden)) {
      if (++found <= 20) ADD_FAILURE() << "lithos_knot links " << line;
    }
  }
  EXPECT_EQ(found, 0);
}

TEST(KnotBinary, TextIsAtMostOneMebibyte) {
#if LITHOS_SANITIZED
  GTEST_SKIP() << "sanitizer builds carry the sanitizer runtime; the size is a release figure";
#else
  const std::string sections = output_of("size -A " + kKnot);
  std::smatch text;
  ASSERT_TRUE(std::regex_search(sections, text, std::regex(R"(\n\.text\s+(\d+)\s)"))) << sections;
  const long bytes = std::stol(text[1]);
  EXPECT_GT(bytes, 0);
  EXPECT_LE(bytes, 1L << 20) << "lithos_knot .text is " << bytes << " bytes";
#endif
}

}  // namespace
