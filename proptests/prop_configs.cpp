// Properties of the four config kinds, with values generated from the
// schema field tables (generators.hpp):
//  * printing then decoding gives the value back (decode(print(x)) == x);
//  * decoding arbitrary bytes, YAML-ish token soup and mutated printed
//    configs never crashes and ends either in a value with no errors or in
//    at least one error whose line/column lie inside the text;
//  * whatever decodes prints to text that decodes to the same value;
//  * the alias byte budget is exact: a document whose scalars, aliases
//    written out, exceed the budget is refused with yaml-alias, one that
//    fits is accepted.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "generators.hpp"
#include "lithos/policy/config.hpp"

namespace {

using namespace lithos::policy;
using lithos::proptest::gen_value;
using lithos::proptest::uniform;

std::string describe(const Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags.items())
    out += std::to_string(d.mark.line) + ":" + std::to_string(d.mark.column) + " [" +
           std::string(code_id(d.code)) + "] " + d.message + "\n";
  return out;
}

template <class Codec>
void assert_round_trip(const typename Codec::value_type& x) {
  const std::string text = print<Codec>(x);
  RC_ASSERT(!text.empty());
  Diagnostics diags;
  auto back = decode_text<Codec>(text, "printed.yaml", diags);
  if (!back) RC_FAIL("printed text does not decode:\n" + text + "\n" + describe(diags));
  RC_ASSERT(!diags.has_errors());
  if (!(back->value == x))
    RC_FAIL("decode(print(x)) != x\nprinted:\n" + text + "\nreprinted:\n" +
            print<Codec>(back->value));
}

// Line breaks as YAML counts them (an upper bound: "\r\n" counts twice).
int line_breaks(const std::string& text) {
  int n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\r') ++n;
    if (text.compare(i, 2, "\xc2\x85") == 0 || text.compare(i, 3, "\xe2\x80\xa8") == 0 ||
        text.compare(i, 3, "\xe2\x80\xa9") == 0)
      ++n;
  }
  return n;
}

// The outcome of decoding any text is well-formed: a value and no errors, or
// no value and at least one error; every mark lies within the text.
template <class Codec>
bool assert_decodes_sanely(const std::string& text) {
  Diagnostics diags;
  auto doc = decode_text<Codec>(text, "input.yaml", diags);
  if (doc) {
    if (diags.has_errors()) RC_FAIL("a value and errors:\n" + describe(diags));
  } else {
    if (!diags.has_errors()) RC_FAIL("no value and no error for:\n" + text);
  }
  const int lines = line_breaks(text) + 1;
  for (const auto& d : diags.items()) {
    if (d.mark.line < 0 || d.mark.column < 0 || d.mark.line > lines + 1)
      RC_FAIL("diagnostic outside the text (" + std::to_string(lines) + " lines):\n" +
              describe(diags));
  }
  if (doc) {
    // Whatever was accepted has a canonical form that means the same.
    const std::string printed = print<Codec>(doc->value);
    Diagnostics again;
    auto back = decode_text<Codec>(printed, "printed.yaml", again);
    if (!back)
      RC_FAIL("input:\n" + text + "\nprinted form does not decode:\n" + printed + "\n" +
              describe(again));
    if (!(back->value == doc->value))
      RC_FAIL("input:\n" + text + "\nprinted form decodes differently:\n" + printed);
  }
  return doc.has_value();
}

// Returns how many of the four kinds accepted the text.
int assert_all_kinds_sane(const std::string& text) {
  return int{assert_decodes_sanely<MasterCodec>(text)} +
         int{assert_decodes_sanely<SandboxCodec>(text)} +
         int{assert_decodes_sanely<ProcessConfigCodec>(text)} +
         int{assert_decodes_sanely<ContainerCodec>(text)};
}

// ------------------------------------------------------------------ round trips

RC_GTEST_PROP(ConfigRoundTrip, Master, ()) {
  assert_round_trip<MasterCodec>(*gen_value<MasterCodec>());
}

RC_GTEST_PROP(ConfigRoundTrip, Sandbox, ()) {
  assert_round_trip<SandboxCodec>(*gen_value<SandboxCodec>());
}

RC_GTEST_PROP(ConfigRoundTrip, Process, ()) {
  assert_round_trip<ProcessConfigCodec>(*gen_value<ProcessConfigCodec>());
}

RC_GTEST_PROP(ConfigRoundTrip, Container, ()) {
  assert_round_trip<ContainerCodec>(*gen_value<ContainerCodec>());
}

// Single strings in every position a Str can take: a value, a key, a
// sequence item, a tagged scalar (fast, focused, many cases).
RC_GTEST_PROP(ConfigRoundTrip, AwkwardStringsEverywhere, ()) {
  const auto s = *lithos::proptest::awkward_string();
  ContainerConfig c;
  c.executable = s;
  c.arguments = {s, s + "x"};
  c.environ[s] = s;
  c.secret_environ[s] = {s};
  if (!s.empty()) c.volumes["/" + s] = ReadonlyVolume{s};
  c.variables[s] = ChoiceVariable{{s}};
  c.tcp_ports[s] = TcpPortSettings{};
  assert_round_trip<ContainerCodec>(c);
}

// ------------------------------------------------------------------ numeric fields

// Every Numeric codec used by a field table accepts exactly the values that
// fit both its declared bounds and its storage type, and keeps them exactly
// (bounds on the 64-bit value, then the storage type; nothing wraps on
// narrowing: docs/configs.md, "Scalars").
template <class C>
void assert_numeric_codec(std::int64_t v) {
  using T = typename C::value_type;
  const long double lo = std::max<long double>(C::min, std::numeric_limits<T>::min());
  const long double hi = std::min<long double>(C::max, std::numeric_limits<T>::max());
  const bool fits = v >= lo && v <= hi;
  Diagnostics diags;
  schema::Context ctx("n.yaml", diags, nullptr);
  T out{};
  yaml::Arena arena;
  const bool ok = C::decode(schema::scalar_node(arena, std::to_string(v)), ctx, out);
  RC_ASSERT(ok == fits);
  RC_ASSERT(ok != diags.has_errors());
  if (ok) RC_ASSERT(static_cast<std::int64_t>(out) == v);
}

rc::Gen<std::int64_t> interesting_int64() {
  return rc::gen::oneOf(
      rc::gen::arbitrary<std::int64_t>(), uniform<std::int64_t>(-70000, 70000),
      rc::gen::map(rc::gen::pair(rc::gen::element<std::int64_t>(0, 16, 01777, 65535, 2147483647LL,
                                                                -2147483648LL, 4294967295LL,
                                                                9223372036854775807LL),
                                 uniform<std::int64_t>(-2, 3)),
                   [](std::pair<std::int64_t, std::int64_t> p) {
                     return p.first == 9223372036854775807LL && p.second > 0 ? p.first
                                                                             : p.first + p.second;
                   }));
}

RC_GTEST_PROP(NumericFields, BoundsAndStorageType, ()) {
  const auto v = *interesting_int64();
  assert_numeric_codec<schema::Numeric<std::int32_t>>(v);             // normal-exit-codes
  assert_numeric_codec<schema::Numeric<std::uint32_t>>(v);            // user-id, uid-map
  assert_numeric_codec<schema::Numeric<std::uint64_t>>(v);            // memory-limit
  assert_numeric_codec<schema::Mode>(v);                              // volume mode
  assert_numeric_codec<schema::Numeric<std::uint32_t, 1, 16>>(v);     // image-dir-levels
  assert_numeric_codec<schema::Numeric<std::uint32_t, 0, 65535>>(v);  // tcp-ports fd
}

// ------------------------------------------------------------------ robustness

// Arbitrary bytes (NUL, invalid UTF-8 and control characters included).
RC_GTEST_PROP(ConfigDecodeRobust, ArbitraryBytes, ()) {
  const auto n = *uniform<std::size_t>(0, 200);
  const auto text = *rc::gen::container<std::string>(n, rc::gen::arbitrary<char>());
  assert_all_kinds_sane(text);
}

// Token soup: text made of YAML syntax pieces and config key names, which
// reaches far deeper into the decoder than random bytes.
RC_GTEST_PROP(ConfigDecodeRobust, YamlTokenSoup, ()) {
  static const std::vector<std::string> tokens = {
      "\n",       "\n  ",   "\n    ",      "\n- ",       ": ",          "- ",          "  ",
      "{",        "}",      "[",           "]",          ", ",          "&a ",         "*a",
      "&b ",      "*b",     "<<: ",        "!Readonly ", "!Persistent", "!Tmpfs ",     "!TcpPort",
      "!Choice ", "!Name",  "!systemd",    "!!int ",     "!*Unpack ",   "!*Include ",  "~",
      "null",     "\"",     "'",           "#",          "? ",          "|\n  ",       ">\n  ",
      "---\n",    "...\n",  "%YAML 1.1\n", "executable", "volumes",     "variables",   "tcp-ports",
      "kind",     "Daemon", "image",       "config",     "/x",          "8080",        "1-5",
      "10.0.0.1", "::1",    "uid-map",     "inside",     "count",       "allow-users", "user-id",
      "fd",       "true",   "0x10",        "16Mi",       "_anchor",     "\t",          "\r",
      "\xc3\xa9", "\xff",   "\xef\xbb\xbf"};
  const auto parts = *lithos::proptest::small_vector(rc::gen::elementOf(tokens), 40);
  std::string text;
  for (const auto& p : parts) text += p;
  RC_TAG(assert_all_kinds_sane(text) > 0 ? "accepted by some kind" : "rejected by all kinds");
}

// A printed config with a few random edits: byte flips, insertions of YAML
// syntax, deletions, duplicated lines.
std::string mutate(std::string text) {
  static const std::vector<std::string> inserts = {
      ":", ": ", "- ", "\n", "  ", "\t", "&a ", "*a",   "!Tag ", "<<: *a\n", "{", "}",
      "[", "]",  "\"", "'",  "#",  "~",  "? ",  "\xff", "\xc3",  "!!str ",   "*"};
  const int edits = *uniform(1, 3);
  for (int i = 0; i < edits; ++i) {
    const std::size_t at = text.empty() ? 0 : *uniform<std::size_t>(0, text.size() + 1);
    switch (*uniform(0, 7)) {
      case 0:
      case 4:
      case 5:
        if (at < text.size())
          text[at] = *rc::gen::weightedOneOf<char>(
              {{3, uniform<char>(' ', '~' + 1)}, {1, rc::gen::arbitrary<char>()}});
        break;
      case 1:
        text.insert(at, *rc::gen::elementOf(inserts));
        break;
      case 2:
        if (at < text.size()) text.erase(at, *uniform<std::size_t>(1, 8));
        break;
      default: {
        auto begin = text.rfind('\n', at == 0 ? 0 : at - 1);
        begin = begin == std::string::npos ? 0 : begin + 1;
        auto end = text.find('\n', at);
        end = end == std::string::npos ? text.size() : end + 1;
        text.insert(begin, text.substr(begin, end - begin));
        break;
      }
    }
  }
  return text;
}

// Five mutants of each generated config; tagged by how many were accepted.
template <class Codec>
void check_mutants() {
  const std::string printed = print<Codec>(*gen_value<Codec>());
  int accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += assert_all_kinds_sane(mutate(printed)) > 0 ? 1 : 0;
  RC_TAG(accepted > 0 ? "some mutant accepted" : "all mutants rejected");
}

RC_GTEST_PROP(ConfigDecodeRobust, MutatedMaster, ()) {
  check_mutants<MasterCodec>();
}

RC_GTEST_PROP(ConfigDecodeRobust, MutatedSandbox, ()) {
  check_mutants<SandboxCodec>();
}

RC_GTEST_PROP(ConfigDecodeRobust, MutatedProcess, ()) {
  check_mutants<ProcessConfigCodec>();
}

RC_GTEST_PROP(ConfigDecodeRobust, MutatedContainer, ()) {
  check_mutants<ContainerCodec>();
}

// Alias expansion stays bounded: a billion-laughs document is refused with
// an error instead of exhausting memory.
TEST(ConfigDecodeRobust, AliasBombIsAnError) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i)
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + std::string("*a") +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + "]\n";
  Diagnostics diags;
  auto doc = decode_text<MasterCodec>(text, "bomb.yaml", diags);
  EXPECT_FALSE(doc);
  ASSERT_TRUE(diags.has_errors());
  EXPECT_EQ(diags.items().front().code, Code::YamlAlias);
}

// Scalar bytes of a tree with every alias written out (keys included).
std::size_t expanded_bytes(const yaml::Node& n) {
  std::size_t total = n.value.size();
  for (const auto& item : n.items) total += expanded_bytes(item);
  for (const auto& entry : n.pairs)
    total += expanded_bytes(entry.first) + expanded_bytes(entry.second);
  return total;
}

// Documents of anchored scalars and sequences and lists of aliases to them
// (no merges: a merge drops duplicate keys, so the charge may exceed the
// finished tree). Returns the text.
rc::Gen<std::string> aliasing_document() {
  return rc::gen::exec([] {
    const int anchors = *rc::gen::inRange(1, 5);
    std::string text;
    for (int i = 0; i < anchors; ++i) {
      const std::string name = "a" + std::to_string(i);
      text += name + ": &" + name + " ";
      if (i > 0 && *rc::gen::arbitrary<bool>()) {
        // A sequence of earlier aliases and fresh scalars.
        const int items = *rc::gen::inRange(0, 4);
        text += "[";
        for (int k = 0; k < items; ++k) {
          if (k) text += ", ";
          if (*rc::gen::arbitrary<bool>())
            text += "*a" + std::to_string(*rc::gen::inRange(0, i));
          else
            text += std::string(*rc::gen::inRange<std::size_t>(1, 40), 'v');
        }
        text += "]\n";
      } else {
        text += "\"" + std::string(*rc::gen::inRange<std::size_t>(0, 2000), 's') + "\"\n";
      }
    }
    const int uses = *rc::gen::inRange(0, 30);
    text += "uses: [";
    for (int k = 0; k < uses; ++k)
      text += (k ? ", *a" : "*a") + std::to_string(*rc::gen::inRange(0, anchors));
    text += "]\n";
    return text;
  });
}

RC_GTEST_PROP(YamlBudget, ExpandedBytesOverTheBudgetAreRefused, ()) {
  const std::string text = *aliasing_document();
  yaml::Limits unlimited;
  unlimited.max_expanded_bytes = std::numeric_limits<std::size_t>::max();
  Diagnostics diags;
  auto tree = yaml::parse(text, "doc.yaml", diags, unlimited);
  if (!tree) RC_FAIL("generated document does not parse:\n" + text + describe(diags));
  const std::size_t total = expanded_bytes(tree->root());
  RC_TAG(total > 0 ? "non-empty" : "empty");

  yaml::Limits exact;
  exact.max_expanded_bytes = total;
  Diagnostics fits;
  RC_ASSERT(yaml::parse(text, "doc.yaml", fits, exact).has_value());
  if (total == 0) return;
  yaml::Limits below;
  below.max_expanded_bytes = *rc::gen::inRange<std::size_t>(0, total);
  Diagnostics refused;
  RC_ASSERT(!yaml::parse(text, "doc.yaml", refused, below).has_value());
  RC_ASSERT(!refused.empty());
  RC_ASSERT(refused.items().front().code == Code::YamlAlias);
}

}  // namespace
