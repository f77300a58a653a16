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

// Every text output section (.text and .text.knot_hot), in bytes.
[[maybe_unused]] long text_bytes(const std::string& sections) {
  long bytes = 0;
  const std::regex text(R"(\n\.text(\.knot_hot)?\s+(\d+)\s)");
  for (std::sregex_iterator at(sections.begin(), sections.end(), text), end; at != end; ++at)
    bytes += std::stol((*at)[2]);
  return bytes;
}

TEST(KnotBinary, TextIsAtMostOneMebibyte) {
#if LITHOS_SANITIZED
  GTEST_SKIP() << "sanitizer builds carry the sanitizer runtime; the size is a release figure";
#else
  const std::string sections = output_of("size -A " + kKnot);
  const long bytes = text_bytes(sections);
  EXPECT_GT(bytes, 0) << sections;
  EXPECT_LE(bytes, 1L << 20) << "lithos_knot .text is " << bytes << " bytes";
#endif
}

// The code a start runs sits in .text.knot_hot, ahead of the rest
// (tools/lithos_knot_hot.ld, docs/knot.md "Memory"): the knot's entry, its
// plan decoder, its supervision loop and glibc's allocator.
TEST(KnotBinary, StartCodeIsLaidOutTogether) {
#if !LITHOS_KNOT_HOT_TEXT
  GTEST_SKIP() << "the hot-text order applies to the static release link only";
#else
  const std::string sections = output_of("size -A -x " + kKnot);
  std::smatch hot;
  ASSERT_TRUE(std::regex_search(
      sections, hot, std::regex(R"(\n\.text\.knot_hot\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+))")))
      << "no .text.knot_hot section:\n"
      << sections;
  const unsigned long size = std::stoul(hot[1], nullptr, 16);
  const unsigned long start = std::stoul(hot[2], nullptr, 16);
  ASSERT_GT(size, 0UL);
  const std::string symbols = output_of("nm -C " + kKnot);
  // nm -C: "ADDRESS T NAME"; a function's name ends before its arguments
  // or ABI tag.
  for (const std::string name :
       {"main", "lithos::policy::PlanWire::decode", "lithos::runtime::supervise", "malloc"}) {
    std::istringstream lines(symbols);
    std::string line;
    bool found = false;
    while (std::getline(lines, line)) {
      if (line.size() < 19 + name.size() || (line[17] != 'T' && line[17] != 't') ||
          line.compare(19, name.size(), name) != 0)
        continue;
      const std::size_t end = 19 + name.size();
      if (end != line.size() && line[end] != '(' && line[end] != '[') continue;
      if (line.find("[clone ") != std::string::npos) continue;  // cold parts may go elsewhere
      found = true;
      const unsigned long address = std::stoul(line.substr(0, 16), nullptr, 16);
      EXPECT_TRUE(address >= start && address < start + size)
          << name << " at 0x" << std::hex << address << " is outside .text.knot_hot";
    }
    EXPECT_TRUE(found) << name << " not found";
  }
#endif
}

}  // namespace
