// The YAML reader: marks, nulls, merges, tags and every bounded failure mode.
#include <gtest/gtest.h>
#include <time.h>

#include <fstream>
#include <sstream>

#include "lithos/policy/yaml.hpp"

using namespace lithos::policy;
using yaml::Node;

namespace {

// A parsed tree, used like a pointer to its root node.
struct Parsed {
  std::optional<yaml::Tree> tree;
  explicit operator bool() const { return tree.has_value(); }
  const Node* operator->() const { return &tree->root(); }
  const Node& operator*() const { return tree->root(); }
};

Parsed parse(std::string_view text, Diagnostics& diags, yaml::Limits limits = {}) {
  return {yaml::parse(text, "t.yaml", diags, limits)};
}

Code first_code(std::string_view text, yaml::Limits limits = {}) {
  Diagnostics diags;
  auto node = parse(text, diags, limits);
  EXPECT_FALSE(node) << text;
  EXPECT_FALSE(diags.empty()) << text;
  return diags.empty() ? Code::YamlSyntax : diags.items()[0].code;
}

}  // namespace

TEST(Yaml, MarksAreOneBased) {
  Diagnostics diags;
  auto n = parse("a: 1\nbb:\n  - x\n", diags);
  ASSERT_TRUE(n);
  ASSERT_EQ(n->pairs.size(), 2u);
  EXPECT_EQ(n->pairs[0].first.mark, (Mark{1, 1}));
  EXPECT_EQ(n->pairs[0].second.mark, (Mark{1, 4}));
  EXPECT_EQ(n->pairs[1].second.items[0].mark, (Mark{3, 5}));
}

TEST(Yaml, NullForms) {
  Diagnostics diags;
  auto n = parse("a:\nb: ~\nc: null\nd: \"null\"\ne: Null\n", diags);
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->pairs[0].second.is_implicit_null());
  EXPECT_TRUE(n->pairs[1].second.is_explicit_null());
  EXPECT_TRUE(n->pairs[2].second.is_explicit_null());
  EXPECT_FALSE(n->pairs[3].second.is_null());
  EXPECT_FALSE(n->pairs[4].second.is_null());
}

TEST(Yaml, EmptyFileIsImplicitNull) {
  Diagnostics diags;
  auto n = parse("", diags);
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->is_implicit_null());
  auto comment = parse("# nothing\n", diags);
  ASSERT_TRUE(comment);
  EXPECT_TRUE(comment->is_implicit_null());
}

TEST(Yaml, MergeKeysExplicitWins) {
  Diagnostics diags;
  auto n = parse("base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}\n", diags);
  ASSERT_TRUE(n);
  const Node& other = n->pairs[1].second;
  ASSERT_EQ(other.pairs.size(), 2u);
  EXPECT_EQ(other.pairs[0].first.value, "y");
  EXPECT_EQ(other.pairs[0].second.value, "3");
  EXPECT_EQ(other.pairs[1].first.value, "x");
}

TEST(Yaml, MergeListFirstWins) {
  Diagnostics diags;
  auto n = parse("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nc: {<<: [*a, *b]}\n", diags);
  ASSERT_TRUE(n);
  const Node& c = n->pairs[2].second;
  ASSERT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.pairs[0].second.value, "1");
}

TEST(Yaml, UnpackSplicesSequences) {
  Diagnostics diags;
  auto n = parse("a: &a [1, 2]\nb: [0, !*Unpack [*a, [3]], 4]\n", diags);
  ASSERT_TRUE(n);
  const Node& b = n->pairs[1].second;
  ASSERT_EQ(b.items.size(), 5u);
  EXPECT_EQ(b.items[1].value, "1");
  EXPECT_EQ(b.items[3].value, "3");
}

TEST(Yaml, LocalTagsKept) {
  Diagnostics diags;
  auto n = parse("v: !Persistent {path: /x}\nw: !Name\n", diags);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->pairs[0].second.tag, "!Persistent");
  EXPECT_EQ(n->pairs[1].second.tag, "!Name");
  EXPECT_TRUE(n->pairs[1].second.is_empty_scalar());
}

TEST(Yaml, Failures) {
  EXPECT_EQ(first_code("a: [1, 2\n"), Code::YamlSyntax);
  EXPECT_EQ(first_code("a: 1\na: 2\n"), Code::YamlDuplicateKey);
  EXPECT_EQ(first_code("a: !!int 1\n"), Code::YamlTag);
  EXPECT_EQ(first_code("a: !<tag:x> 1\n"), Code::YamlTag);
  EXPECT_EQ(first_code("a: !*Include x.yaml\n"), Code::YamlTag);
  EXPECT_EQ(first_code("%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n"), Code::YamlTag);
  EXPECT_EQ(first_code("a: *nothing\n"), Code::YamlAlias);
  EXPECT_EQ(first_code("[1, 2]: x\n"), Code::YamlKey);
  EXPECT_EQ(first_code("a: 1\n---\nb: 2\n"), Code::YamlSyntax);
  EXPECT_EQ(first_code("a: {<<: 5}\n"), Code::YamlMerge);
  EXPECT_EQ(first_code(std::string_view("a: \0\n", 5)), Code::YamlEncoding);
  EXPECT_EQ(first_code("a: \xff\xfe\n"), Code::YamlEncoding);
  EXPECT_EQ(first_code("a: \xc3\x28\n"), Code::YamlEncoding);
}

TEST(Yaml, DuplicateKeyPointsAtSecondKey) {
  Diagnostics diags;
  EXPECT_FALSE(parse("a: 1\nb: 2\na: 3\n", diags));
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags.items()[0].mark, (Mark{3, 1}));
}

TEST(Yaml, AliasBombIsBounded) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c, ++prev) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
  }
  EXPECT_EQ(first_code(bomb), Code::YamlAlias);
}

// Aliases share their anchor's nodes, but each one is charged the anchor's
// full node count: the budget is exact at its edge, as if every alias had
// been copied.
TEST(Yaml, AliasesAreChargedTheirExpandedSize) {
  // Root mapping 1, key `a` 1, the anchored list 1 + 3 items, key `b` 1,
  // list 1: 8 nodes; each alias of *a adds 4.
  auto doc = [](int aliases) {
    std::string text = "a: &a [x, y, z]\nb: [";
    for (int i = 0; i < aliases; ++i) text += i ? ", *a" : "*a";
    return text + "]\n";
  };
  yaml::Limits limits;
  limits.max_nodes = 8 + 4 * 5;
  Diagnostics diags;
  auto fits = parse(doc(5), diags, limits);
  ASSERT_TRUE(fits) << (diags.empty() ? "" : diags.items()[0].message);
  ASSERT_EQ(fits->pairs[1].second.items.size(), 5u);
  for (const auto& copy : fits->pairs[1].second.items) {
    ASSERT_EQ(copy.items.size(), 3u);
    EXPECT_EQ(copy.items[2].value, "z");
    EXPECT_EQ(copy.items[2].mark, (Mark{1, 14}));  // the anchored node's place
  }
  EXPECT_EQ(first_code(doc(6), limits), Code::YamlAlias);
}

// Layered defaults merged twice per level: the finished mappings stay small
// (duplicates merged away), so the budget must charge what an alias really
// expands to, not everything parsed while its anchor was built.
TEST(Yaml, DiamondMergesAreChargedTheirFinishedSize) {
  std::string text = "b0: &b0 {k0: 0, k1: 1, k2: 2, k3: 3}\n";
  for (int i = 1; i <= 20; ++i) {
    const std::string n = std::to_string(i), p = std::to_string(i - 1);
    text += "b" + n + ": &b" + n + " {<<: [*b" + p + ", *b" + p + "], l" + n + ": " + n + "}\n";
  }
  Diagnostics diags;
  auto tree = parse(text, diags);
  ASSERT_TRUE(tree) << (diags.empty() ? "" : diags.items()[0].message);
  EXPECT_EQ(tree->pairs[20].second.pairs.size(), 4u + 20u);
}

// Few nodes, many bytes: one long scalar aliased again and again is charged
// its length at every alias, and the document is refused with yaml-alias at
// the alias that crosses the byte budget.
TEST(Yaml, AliasesAreChargedTheirExpandedBytes) {
  const std::size_t mib = 1u << 20;
  std::string text = "s: &s \"" + std::string(mib, 'x') + "\"\nl:\n";
  for (int i = 0; i < 200; ++i) text += "- *s\n";
  yaml::Limits limits;
  limits.max_file_bytes = 16 * mib;  // the file size alone must not be what stops it
  Diagnostics diags;
  EXPECT_FALSE(parse(text, diags, limits));
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags.items()[0].code, Code::YamlAlias);
  EXPECT_NE(diags.items()[0].message.find("bytes"), std::string::npos) << diags.items()[0].message;
  // Keys `s` and `l` (2 bytes) plus the anchor and k aliases of 1 MiB each
  // pass 64 MiB at k = 63, on line 2 + 63.
  EXPECT_EQ(diags.items()[0].mark.line, 65);
}

// Keys count as well as values, and the budget is exact at its edge:
// `a` + `xxxx` + `b` + 2 x `xxxx` is 14 bytes.
TEST(Yaml, ByteBudgetIsExactAtItsEdge) {
  const std::string text = "a: &s xxxx\nb: [*s, *s]\n";
  yaml::Limits limits;
  limits.max_expanded_bytes = 14;
  Diagnostics diags;
  auto fits = parse(text, diags, limits);
  ASSERT_TRUE(fits) << (diags.empty() ? "" : diags.items()[0].message);
  EXPECT_EQ(fits->pairs[1].second.items[1].value, "xxxx");
  limits.max_expanded_bytes = 13;
  EXPECT_EQ(first_code(text, limits), Code::YamlAlias);
}

// An ordinary config with a few anchors of small values, merges and
// aliases stays well inside both budgets.
TEST(Yaml, ReasonableAliasesPass) {
  const std::string text =
      "defaults: &defaults {memory-limit: 100Mi, cpu-shares: 512}\n"
      "args: &args [--port, \"8080\", --verbose]\n"
      "web:\n  <<: *defaults\n  arguments: *args\n  environ: {A: &v some-value, B: *v}\n"
      "worker:\n  <<: *defaults\n  arguments: *args\n";
  Diagnostics diags;
  auto tree = parse(text, diags);
  ASSERT_TRUE(tree) << (diags.empty() ? "" : diags.items()[0].message);
  EXPECT_EQ(tree->pairs[3].second.pairs.size(), 3u);
  EXPECT_EQ(tree->pairs[2].second.pairs[1].second.pairs[1].second.value, "some-value");
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr double kSlowdown = 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kSlowdown = 20;
#else
constexpr double kSlowdown = 1;
#endif
#else
constexpr double kSlowdown = 1;
#endif

double thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// A field of /proc/self/status in KiB (VmRSS, VmHWM).
long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

}  // namespace

// The billion-laughs variant of the security review (4 MiB string, 400
// aliases), given to the parser with the file limit lifted: refused with
// yaml-alias in well under a second of CPU (thread time; 500 ms leaves
// room for a machine whose caches other builds share, and is still a
// twentieth of the unbounded cost) and under 64 MiB of peak memory growth.
// Unbounded, it took 10 s and 1.6 GB once decoded.
TEST(Yaml, FourMebibyteLaughsAreRefusedFastAndSmall) {
  const std::size_t mib = 1u << 20;
  std::string text = "a: &s \"" + std::string(4 * mib, 'l') + "\"\nb: [";
  for (int i = 0; i < 400; ++i) text += i ? ", *s" : "*s";
  text += "]\n";
  yaml::Limits limits;
  limits.max_file_bytes = 16 * mib;
  // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const long rss_before = status_kib("VmRSS");
  const double start = thread_cpu_ms();
  Diagnostics diags;
  const bool parsed = yaml::parse(text, "t.yaml", diags, limits).has_value();
  const double cpu_ms = thread_cpu_ms() - start;
  const long peak = status_kib("VmHWM");
  EXPECT_FALSE(parsed);
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags.items()[0].code, Code::YamlAlias) << diags.items()[0].message;
  EXPECT_LT(cpu_ms, 500 * kSlowdown);
  ASSERT_GT(rss_before, 0);
  EXPECT_LT(peak - rss_before, 64 * 1024)
      << "peak grew from " << rss_before << " to " << peak << " KiB";
}

// Nodes point into their tree's arena, which stays put when the tree moves.
TEST(Yaml, NodesStayValidWhenTheTreeMoves) {
  Diagnostics diags;
  std::vector<yaml::Tree> trees;
  for (int i = 0; i < 20; ++i) {
    auto tree = yaml::parse("key" + std::to_string(i) + ": a value longer than sixteen bytes\n",
                            "t.yaml", diags);
    ASSERT_TRUE(tree);
    trees.push_back(std::move(*tree));  // the vector also moves earlier trees as it grows
  }
  for (int i = 0; i < 20; ++i) {
    const Node& root = trees[static_cast<std::size_t>(i)].root();
    ASSERT_EQ(root.pairs.size(), 1u);
    EXPECT_EQ(root.pairs[0].first.value, "key" + std::to_string(i));
    EXPECT_EQ(root.pairs[0].second.value, "a value longer than sixteen bytes");
  }
}

TEST(Yaml, DepthIsBounded) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  EXPECT_EQ(first_code(deep), Code::YamlDepth);
  yaml::Limits limits;
  limits.max_depth = 3;
  EXPECT_EQ(first_code("a: {b: {c: {d: 1}}}\n", limits), Code::YamlDepth);
}

TEST(Yaml, SizeIsBounded) {
  yaml::Limits limits;
  limits.max_file_bytes = 10;
  EXPECT_EQ(first_code("a: 12345678901\n", limits), Code::FileTooLarge);
}

TEST(Yaml, EmitQuotesWhatWouldReadAsNull) {
  yaml::Arena arena;
  std::vector<Node::Entry> pairs;
  for (std::string v : {"", "~", "null", "a: b", "- x", "#c", " lead", "multi\nline"}) {
    Node key, value;
    key.value = arena.text("k" + std::to_string(pairs.size()));
    value.value = arena.text(v);
    pairs.push_back({key, value});
  }
  Node map;
  map.kind = Node::Kind::Mapping;
  map.pairs = arena.copy(std::span<const Node::Entry>(pairs));
  std::string text = yaml::emit(map);
  Diagnostics diags;
  auto back = parse(text, diags);
  ASSERT_TRUE(back) << text;
  ASSERT_EQ(back->pairs.size(), map.pairs.size());
  for (std::size_t i = 0; i < map.pairs.size(); ++i) {
    EXPECT_EQ(back->pairs[i].second.value, map.pairs[i].second.value) << text;
    EXPECT_FALSE(back->pairs[i].second.is_null()) << text;
  }
}
