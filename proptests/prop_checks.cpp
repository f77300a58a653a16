// Properties of the cross-file rules (check.hpp, docs/configs.md):
//  * the id-map / range helpers agree with brute-force models that enumerate
//    ids one by one (small counts, bases near 0 and near 2^32);
//  * resolve_virtual picks the longest component-wise prefix, as a model
//    that splits paths by hand does;
//  * narrowing a sandbox (dropping, shrinking or splitting an allowed range)
//    never turns a tree with errors into one without;
//  * `@{}` substitution agrees with a find()-based model and never leaves a
//    reference to a provided variable in its output;
//  * names::valid_name agrees with the regex ^[\w-]+$ where every byte
//    >= 0x80 counts as a word character.
// One file over 600 lines on purpose: the properties share the generators
// of the cross-file rules.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "generators.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/names.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/tree.hpp"

namespace {

using namespace lithos::policy;
using lithos::proptest::small_vector;
using lithos::proptest::uniform;
using scalars::Range;

constexpr std::uint64_t kU32Max = 0xffffffffULL;

// ------------------------------------------------------------------ generators

// Ids clustered at 0 or just below 2^32, so that end-of-range overflow is hit.
rc::Gen<std::uint32_t> clustered_id() {
  return rc::gen::map(rc::gen::pair(rc::gen::element<std::uint64_t>(0, kU32Max - 24),
                                    uniform<std::uint64_t>(0, 25)),
                      [](std::pair<std::uint64_t, std::uint64_t> p) {
                        return static_cast<std::uint32_t>(p.first + p.second);
                      });
}

rc::Gen<IdMapEntry> small_entry() {
  return rc::gen::exec([] {
    IdMapEntry e;
    e.inside = *clustered_id();
    e.outside = *clustered_id();
    e.count = *uniform<std::uint32_t>(0, 21);
    return e;
  });
}

rc::Gen<Range> small_range() {
  return rc::gen::exec([] {
    Range r;
    r.start = *clustered_id();
    const std::uint64_t len = *uniform<std::uint64_t>(0, 21);
    r.end = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.start + len, kU32Max));
    return r;
  });
}

// A query id near the entries (and sometimes just past 2^32 - 1 for the
// 64-bit ranges_contain).
rc::Gen<std::uint64_t> query_id() {
  return rc::gen::map(rc::gen::pair(rc::gen::element<std::uint64_t>(0, kU32Max - 24),
                                    uniform<std::uint64_t>(0, 50)),
                      [](std::pair<std::uint64_t, std::uint64_t> p) { return p.first + p.second; });
}

// ------------------------------------------------------------------ models

std::set<std::uint64_t> model_inside_ids(const std::vector<IdMapEntry>& map) {
  std::set<std::uint64_t> ids;
  for (const auto& e : map)
    for (std::uint64_t k = 0; k < e.count; ++k) ids.insert(std::uint64_t{e.inside} + k);
  return ids;
}

// The first entry (in order) that covers the id decides.
std::optional<std::uint64_t> model_outside(const std::vector<IdMapEntry>& map, std::uint64_t id) {
  for (const auto& e : map)
    for (std::uint64_t k = 0; k < e.count; ++k)
      if (std::uint64_t{e.inside} + k == id) return std::uint64_t{e.outside} + k;
  return std::nullopt;
}

bool model_range_has(const Range& r, std::uint64_t id) {
  for (std::uint64_t x = r.start; x <= r.end; ++x)
    if (x == id) return true;
  return false;
}

bool model_span_in_one(const IdMapEntry& e, const std::vector<Range>& ranges) {
  for (const auto& r : ranges) {
    bool all = true;
    for (std::uint64_t k = 0; k < e.count && all; ++k)
      all = model_range_has(r, std::uint64_t{e.outside} + k);
    if (all) return true;
  }
  return e.count == 0;
}

RC_GTEST_PROP(IdRules, MapContainsInsideMatchesEnumeration, ()) {
  const auto map = *small_vector(small_entry(), 4);
  const auto id = *query_id();
  RC_PRE(id <= kU32Max);
  const auto ids = model_inside_ids(map);
  RC_ASSERT(map_contains_inside(map, static_cast<std::uint32_t>(id)) == (ids.count(id) == 1));
}

RC_GTEST_PROP(IdRules, MapToOutsideMatchesEnumeration, ()) {
  const auto map = *small_vector(small_entry(), 4);
  const auto id = *query_id();
  RC_PRE(id <= kU32Max);
  const auto model = model_outside(map, id);
  const auto got = map_to_outside(map, static_cast<std::uint32_t>(id));
  if (!model || *model > kU32Max) {
    RC_ASSERT(!got.has_value());
  } else {
    RC_ASSERT(got.has_value());
    RC_ASSERT(std::uint64_t{*got} == *model);
  }
}

RC_GTEST_PROP(IdRules, RangesContainMatchesEnumeration, ()) {
  const auto ranges = *small_vector(small_range(), 4);
  const auto id = *query_id();
  bool model = false;
  for (const auto& r : ranges) model = model || model_range_has(r, id);
  RC_ASSERT(ranges_contain(ranges, id) == model);
}

RC_GTEST_PROP(IdRules, SpanInOneRangeMatchesEnumeration, ()) {
  const auto ranges = *small_vector(small_range(), 4);
  auto e = *small_entry();
  // Put the span near a range often, so that both answers are common.
  if (!ranges.empty() && *rc::gen::arbitrary<bool>()) {
    const auto& r = ranges[*uniform<std::size_t>(0, ranges.size())];
    e.outside = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(r.start + *uniform<std::uint64_t>(0, 4), kU32Max));
  }
  RC_TAG(model_span_in_one(e, ranges));
  RC_ASSERT(span_in_one_range(e, ranges) == model_span_in_one(e, ranges));
}

// ------------------------------------------------------------------ resolve_virtual

// Components split by hand; nullopt for relative paths or `.`/`..`.
std::optional<std::vector<std::string>> model_split(const std::string& path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::vector<std::string> parts;
  std::string current;
  for (char c : path + "/") {
    if (c != '/') {
      current += c;
      continue;
    }
    if (current == "." || current == "..") return std::nullopt;
    if (!current.empty()) parts.push_back(current);
    current.clear();
  }
  return parts;
}

std::optional<std::string> model_resolve(const std::map<std::string, std::string>& table,
                                         const std::string& path) {
  auto parts = model_split(path);
  if (!parts) return std::nullopt;
  const std::pair<const std::string, std::string>* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& kv : table) {
    auto key = model_split(kv.first);
    if (!key || key->size() > parts->size()) continue;
    bool prefix = true;
    for (std::size_t i = 0; i < key->size(); ++i) prefix = prefix && (*key)[i] == (*parts)[i];
    if (!prefix) continue;
    if (!best || key->size() > best_len) {  // the first of equally long keys wins
      best = &kv;
      best_len = key->size();
    }
  }
  if (!best) return std::nullopt;
  std::string rest;
  for (std::size_t i = best_len; i < parts->size(); ++i)
    rest += (rest.empty() ? "" : "/") + (*parts)[i];
  const std::string& host = best->second;
  if (rest.empty()) return host;
  if (host.empty()) return rest;
  return host.back() == '/' ? host + rest : host + "/" + rest;
}

rc::Gen<std::string> virtual_path() {
  return rc::gen::exec([] {
    std::string out = *rc::gen::weightedOneOf<std::string>({{8, rc::gen::just(std::string("/"))},
                                                            {1, rc::gen::just(std::string("//"))},
                                                            {1, rc::gen::just(std::string())}});
    const auto n = *uniform(0, 4);
    for (int i = 0; i < n; ++i) {
      if (i > 0)
        out += *rc::gen::weightedOneOf<std::string>(
            {{6, rc::gen::just(std::string("/"))}, {1, rc::gen::just(std::string("//"))}});
      out += *rc::gen::weightedOneOf<std::string>(
          {{10, rc::gen::element<std::string>("a", "b", "ab", "data")},
           {1, rc::gen::element<std::string>(".", "..")}});
    }
    if (*uniform(0, 5) == 0) out += "/";
    return out;
  });
}

RC_GTEST_PROP(VirtualPaths, ResolveIsLongestPrefix, ()) {
  const auto keys = *small_vector(virtual_path(), 4);
  std::map<std::string, std::string> table;
  for (const auto& k : keys)
    table[k] = *rc::gen::element<std::string>("/host/x", "/host/y/", "/", "", "rel");
  const auto path = *virtual_path();
  const auto model = model_resolve(table, path);
  RC_TAG(model.has_value());
  RC_ASSERT(resolve_virtual(table, path) == model);
}

// ------------------------------------------------------------------ substitution

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string model_substitute(const std::string& text,
                             const std::map<std::string, std::string>& vars,
                             const Builtins& builtins, std::size_t& errors) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    auto at = text.find("@{", pos);
    auto close = at == std::string::npos ? std::string::npos : text.find('}', at + 2);
    if (close == std::string::npos) {
      out += text.substr(pos);
      return out;
    }
    out += text.substr(pos, at - pos);
    const std::string name = trim(text.substr(at + 2, close - at - 2));
    if (auto it = vars.find(name); it != vars.end()) {
      out += it->second;
    } else if (name == "lithos:name") {
      out += builtins.name;
    } else if (name == "lithos:config_filename") {
      out += builtins.config_filename;
    } else {
      ++errors;
    }
    pos = close + 1;
  }
}

RC_GTEST_PROP(Substitution, MatchesModelAndLeavesNoProvidedReference, ()) {
  const auto var_name = rc::gen::element<std::string>("a", "b", "ab", "lithos:name", "x y");
  // Values are non-empty and free of '@', '{' and '}': otherwise a value could
  // itself spell a reference (values are not rescanned, by design).
  const auto value = rc::gen::element<std::string>("1", "v", "8080", "a b", "é", "/p");
  const auto names = *small_vector(var_name, 3);
  std::map<std::string, std::string> vars;
  for (const auto& n : names) vars[n] = *value;
  const auto pieces = *small_vector(
      rc::gen::element<std::string>("@{", "}", "@", "{", "a", "b", "ab", " ", "\t", ":", "x y",
                                    "lithos:name", "lithos:config_filename", "lithos:pid", "@{a}",
                                    "@{ b }", "@{lithos:name}", "text"),
      12);
  std::string text;
  for (const auto& p : pieces) text += p;
  const Builtins builtins{"sb/child.0", "/config.yaml"};
  std::vector<std::string> errors;
  const std::string out = substitute(text, vars, builtins, errors);
  std::size_t model_errors = 0;
  RC_ASSERT(out == model_substitute(text, vars, builtins, model_errors));
  RC_ASSERT(errors.size() == model_errors);
  for (const auto& [name, v] : vars) RC_ASSERT(out.find("@{" + name + "}") == std::string::npos);
}

// ------------------------------------------------------------------ narrowing a sandbox

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lithos-prop-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct SmallTree {
  SandboxConfig sandbox;
  ProcessConfig processes;
  ContainerConfig container;
};

// Writes the tree below `root` and loads it.
ConfigTree load_small_tree(const std::filesystem::path& root, const SmallTree& t,
                           Diagnostics& diags) {
  MasterConfig master;
  write_file(root / "master.yaml", print<MasterCodec>(master));
  SandboxConfig sb = t.sandbox;
  sb.image_dir = (root / "images").string();
  write_file(root / "sandboxes" / "s.yaml", print<SandboxCodec>(sb));
  write_file(root / "processes" / "s.yaml", print<ProcessConfigCodec>(t.processes));
  write_file(root / "images" / "img" / "c.yaml", print<ContainerCodec>(t.container));
  return load_tree((root / "master.yaml").string(), LoadOptions{}, diags, nullptr);
}

// Writes the tree below `root` and returns the diagnostics of a full check.
Diagnostics check_small_tree(const std::filesystem::path& root, const SmallTree& t) {
  Diagnostics diags;
  auto tree = load_small_tree(root, t, diags);
  CheckOptions options;
  options.check_devfs = false;
  std::vector<InstancePlan> plans;
  check_tree(tree, options, diags, nullptr, &plans);
  return diags;
}

rc::Gen<Range> tiny_range() {
  return rc::gen::exec([] {
    Range r;
    r.start = *uniform<std::uint32_t>(0, 40);
    r.end = r.start + *uniform<std::uint32_t>(0, 16);
    return r;
  });
}

// A range that contains the span `r` (a few ids either side).
Range around(Range r) {
  const std::uint32_t below = std::min<std::uint32_t>(r.start, *uniform<std::uint32_t>(0, 6));
  return {r.start - below, r.end + *uniform<std::uint32_t>(0, 6)};
}

// An allow list that usually admits every span in `needed`, plus noise.
std::vector<Range> allow_list(const std::vector<Range>& needed) {
  std::vector<Range> out = *small_vector(tiny_range(), 2);
  for (auto span : needed)
    if (*uniform(0, 10) != 0)
      out.insert(out.begin() + *uniform<std::ptrdiff_t>(0, out.size() + 1), around(span));
  return out;
}

// A container map (or none) that usually maps `id` from an outside span
// lying in one allowed range.
std::vector<IdMapEntry> container_map(std::uint32_t id, std::vector<Range>& outside_needed) {
  if (*uniform(0, 4) != 0) return {};
  IdMapEntry e;
  e.count = *uniform<std::uint32_t>(1, 6);
  e.inside = id - std::min(id, *uniform<std::uint32_t>(0, e.count + 1));
  e.outside = *uniform<std::uint32_t>(0, 40);
  outside_needed.push_back({e.outside, e.outside + e.count - 1});
  return {e};
}

rc::Gen<SmallTree> small_tree() {
  return rc::gen::exec([] {
    SmallTree t;
    auto& c = t.container;
    c.executable = "/bin/true";
    const std::uint32_t uid = *uniform<std::uint32_t>(0, 45);
    const std::uint32_t gid = *uniform<std::uint32_t>(0, 45);
    if (*uniform(0, 4) != 0) {
      c.user_id = uid;
    } else if (*uniform(0, 10) != 0) {
      t.sandbox.default_user = uid;
    }
    if (*uniform(0, 4) != 0) {
      c.group_id = gid;
    } else {
      t.sandbox.default_group = gid;
    }
    std::vector<Range> users{{uid, uid}}, groups{{gid, gid}}, ports;
    c.uid_map = container_map(uid, users);
    c.gid_map = container_map(gid, groups);
    if (c.uid_map.empty() && c.gid_map.empty() && *uniform(0, 8) == 0) {
      // Sandbox-level namespace instead: inside ids map to anything.
      t.sandbox.uid_map = {{0, 1000, 100}};
      t.sandbox.gid_map = {{0, 1000, 100}};
    }

    ProcessEntry entry;
    entry.image = "img";
    entry.config = "/c.yaml";
    if (*rc::gen::arbitrary<bool>()) {
      const std::uint32_t port = *uniform<std::uint32_t>(0, 45);
      TcpPortSettings s;
      s.fd = 3;
      c.tcp_ports[std::to_string(port)] = s;
      ports.push_back({port, port});
    }
    if (*rc::gen::arbitrary<bool>()) {
      const std::uint32_t port = *uniform<std::uint32_t>(0, 45);
      c.variables["port"] = TcpPortVariable{};
      entry.variables["port"] = std::to_string(port);
      ports.push_back({port, port});
    }
    t.processes["p"] = entry;
    t.sandbox.allow_users = allow_list(users);
    t.sandbox.allow_groups = allow_list(groups);
    t.sandbox.allow_tcp_ports = allow_list(ports);
    return t;
  });
}

// Drops one allowed range, or shrinks it from either end, or splits it
// around one id: the new allow list is a subset of the old one.
void narrow(std::vector<Range>& ranges) {
  if (ranges.empty()) return;
  const auto i = *uniform<std::size_t>(0, ranges.size());
  Range& r = ranges[i];
  const std::uint32_t width = r.end - r.start;
  switch (*uniform(0, 4)) {
    case 0:
      ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    case 1:
      if (width == 0) return ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(i)), void();
      r.start += *uniform<std::uint32_t>(1, width + 1);
      return;
    case 2:
      if (width == 0) return ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(i)), void();
      r.end -= *uniform<std::uint32_t>(1, width + 1);
      return;
    default: {
      const std::uint32_t hole = r.start + *uniform<std::uint32_t>(0, width + 1);
      std::vector<Range> parts;
      if (hole > r.start) parts.push_back({r.start, hole - 1});
      if (hole < r.end) parts.push_back({hole + 1, r.end});
      ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(i));
      ranges.insert(ranges.begin() + static_cast<std::ptrdiff_t>(i), parts.begin(), parts.end());
      return;
    }
  }
}

RC_GTEST_PROP(Narrowing, NeverTurnsAnInvalidTreeValid, ()) {
  const auto tree = *small_tree();
  TempDir dir;
  const auto before = check_small_tree(dir.path(), tree);

  SmallTree narrowed = tree;
  const int steps = *uniform(1, 4);
  for (int s = 0; s < steps; ++s) {
    switch (*uniform(0, 3)) {
      case 0:
        narrow(narrowed.sandbox.allow_users);
        break;
      case 1:
        narrow(narrowed.sandbox.allow_groups);
        break;
      default:
        narrow(narrowed.sandbox.allow_tcp_ports);
        break;
    }
  }
  TempDir dir2;
  const auto after = check_small_tree(dir2.path(), narrowed);
  RC_TAG(before.has_errors() ? "invalid before" : "valid before",
         after.has_errors() ? "invalid after" : "valid after");
  // LITHOS_PROP_DEBUG=1 tags each case with its findings, to tune the generator.
  if (std::getenv("LITHOS_PROP_DEBUG"))
    for (const auto& d : before.items())
      RC_TAG(std::string(code_id(d.code)) + " " + d.message.substr(0, 30));
  if (before.has_errors()) RC_ASSERT(after.has_errors());
}

// Records what check_tree_into hands a sink: the plans of each entry and
// whether the entry was kept.
class RecordingSink final : public PlanSink {
 public:
  void plan(InstancePlan&& plan) override { entry_.push_back(encode_plan(plan)); }
  void entry_done(bool keep) override {
    ++entries_;
    if (keep) {
      kept_.insert(kept_.end(), entry_.begin(), entry_.end());
    } else {
      ++withdrawn_;
    }
    entry_.clear();
  }
  std::vector<std::string> kept_, entry_;
  int entries_ = 0, withdrawn_ = 0;
};

// A sink sees the same plans as the vector, in the same order; an entry is
// withdrawn only when the check found an error, and no plan is left
// hanging after the last entry_done.
RC_GTEST_PROP(PlanSink, KeepsExactlyThePlansOfTheVector, ()) {
  SmallTree t = *small_tree();
  t.processes["p"].instances = *uniform<std::uint64_t>(1, 5);
  if (*uniform(0, 3) == 0) {
    ProcessEntry second = t.processes["p"];
    second.instances = *uniform<std::uint64_t>(1, 3);
    t.processes["q"] = second;
  }
  TempDir dir;
  Diagnostics load_diags;
  auto tree = load_small_tree(dir.path(), t, load_diags);
  CheckOptions options;
  options.check_devfs = false;

  Diagnostics vector_diags = load_diags, sink_diags = load_diags;
  std::vector<InstancePlan> plans;
  check_tree(tree, options, vector_diags, nullptr, &plans);
  RecordingSink sink;
  check_tree_into(tree, options, sink_diags, nullptr, sink);

  std::vector<std::string> expected;
  for (const auto& plan : plans) expected.push_back(encode_plan(plan));
  RC_TAG(plans.empty() ? "no plans" : "plans", sink.withdrawn_ > 0 ? "withdrawn" : "all kept");
  RC_ASSERT(sink.kept_ == expected);
  RC_ASSERT(sink.entry_.empty());
  RC_ASSERT(sink.entries_ == static_cast<int>(t.processes.size()));
  if (sink.withdrawn_ > 0) RC_ASSERT(sink_diags.has_errors());
  RC_ASSERT(sink_diags.items().size() == vector_diags.items().size());
}

// The generated trees are not vacuous: a wide-open sandbox accepts the
// container, and narrowing away exactly its uid makes the tree invalid.
TEST(Narrowing, BaseTreeIsValidAndExcludingTheUidIsNot) {
  SmallTree t;
  t.sandbox.allow_users = {{1, 100}};
  t.sandbox.allow_groups = {{1, 100}};
  t.sandbox.allow_tcp_ports = {{8000, 8010}};
  t.container.executable = "/bin/true";
  t.container.user_id = 10;
  t.container.group_id = 10;
  TcpPortSettings port;
  port.fd = 3;
  t.container.tcp_ports["8005"] = port;
  ProcessEntry entry;
  entry.image = "img";
  entry.config = "/c.yaml";
  t.processes["p"] = entry;
  {
    TempDir dir;
    auto diags = check_small_tree(dir.path(), t);
    std::string all;
    for (const auto& d : diags.items()) all += d.file + ": " + d.message + "\n";
    EXPECT_FALSE(diags.has_errors()) << all;
  }
  t.sandbox.allow_users = {{1, 9}, {11, 100}};
  {
    TempDir dir;
    auto diags = check_small_tree(dir.path(), t);
    ASSERT_TRUE(diags.has_errors());
    EXPECT_EQ(diags.items().front().code, Code::UserId);
  }
  t.sandbox.allow_users = {{1, 100}};
  t.sandbox.allow_tcp_ports = {{8000, 8004}, {8006, 8010}};
  {
    TempDir dir;
    auto diags = check_small_tree(dir.path(), t);
    ASSERT_TRUE(diags.has_errors());
    EXPECT_EQ(diags.items().front().code, Code::Port);
  }
}

// ----------------------------------------------------------------- names

// Bytes that matter to the rule: word characters, `-`, and the near misses
// (`/`, `.`, space, controls, DEL, NUL: the 14th byte of the literal) plus
// UTF-8 lead and continuation bytes.
rc::Gen<std::string> name_candidate() {
  static const std::string alphabet = std::string("aZ09_-/. \n\t\x7f\x01", 14) + "\xc3\xa9\x80\xff";
  return rc::gen::container<std::string>(rc::gen::elementOf(alphabet));
}

RC_GTEST_PROP(Names, ValidNameMatchesRegexModel, ()) {
  const std::string name = *rc::gen::oneOf(name_candidate(), rc::gen::arbitrary<std::string>());
  // std::regex's \w is ASCII [A-Za-z0-9_]: bytes >= 0x80 stand in as 'a'.
  std::string model_input = name;
  for (char& c : model_input)
    if (static_cast<unsigned char>(c) >= 0x80) c = 'a';
  static const std::regex rule("^[\\w-]+$");
  const bool model = std::regex_match(model_input, rule);
  RC_ASSERT(names::valid_name(name) == model);
}

}  // namespace

// ----------------------------------------------------------------- cgroup ceilings

// Which container keys break the sandbox's cgroup-ceilings, by a model of
// docs/cgroups.md "Sandbox ceilings": an unset limit asks for no limit
// (memory-low unset is 0, io-weight unset is 100, cpu-shares defaults to
// 1024), cpu-percent compares the quota rounded up to a whole percent.
std::set<std::string> model_ceiling_breaks(const CgroupCeilings& ceil, const ContainerConfig& c) {
  std::set<std::string> out;
  auto check = [&](const char* key, std::optional<std::uint64_t> ceiling,
                   std::optional<std::uint64_t> asked) {
    if (ceiling && (!asked || *asked > *ceiling)) out.insert(key);
  };
  std::optional<std::uint64_t> memory;
  if (c.memory_limit < 0x7fffffffffffffffULL) memory = c.memory_limit;
  check("memory-limit", ceil.memory_limit, memory);
  std::optional<std::uint64_t> high = c.memory_high;  // memory-limit caps it too
  if (memory && (!high || *memory < *high)) high = memory;
  check("memory-high", ceil.memory_high, high);
  check("memory-low", ceil.memory_low, c.memory_low.value_or(0));
  check("cpu-shares", ceil.cpu_shares, c.cpu_shares);
  std::optional<std::uint64_t> percent;
  if (c.cpu_quota_us) {
    // Exact: the smallest p with p × period >= quota × 100.
    std::uint64_t p = 0;
    while (p * c.cpu_period_us < *c.cpu_quota_us * 100) ++p;
    percent = p;
  }
  check("cpu-quota-us", ceil.cpu_percent, percent);
  check("pids-limit", ceil.pids_limit, c.pids_limit);
  check("io-weight", ceil.io_weight, c.io_weight.value_or(100));
  return out;
}

RC_GTEST_PROP(Ceilings, ExactlyTheKeysAboveTheirCeilingAreRefused, ()) {
  auto maybe = [](std::uint64_t low, std::uint64_t high) -> std::optional<std::uint64_t> {
    if (*rc::gen::arbitrary<bool>()) return *uniform<std::uint64_t>(low, high);
    return std::nullopt;
  };
  SmallTree t;
  t.sandbox.allow_users = {{0, 100}};
  t.sandbox.allow_groups = {{0, 100}};
  t.sandbox.default_user = 1;
  t.sandbox.default_group = 1;
  auto& ceil = t.sandbox.cgroup_ceilings;
  ceil.memory_limit = maybe(1000, 1010);
  ceil.memory_high = maybe(1000, 1010);
  ceil.memory_low = maybe(0, 10);
  ceil.cpu_shares = maybe(1020, 1030);
  ceil.cpu_percent = maybe(1, 300);
  ceil.pids_limit = maybe(1, 10);
  ceil.io_weight = maybe(90, 110);
  auto& c = t.container;
  c.executable = "/bin/true";
  if (*rc::gen::arbitrary<bool>()) c.memory_limit = *uniform<std::uint64_t>(1000, 1010);
  c.memory_high = maybe(1000, 1010);
  c.memory_low = maybe(0, 10);
  c.cpu_shares = *uniform<std::uint64_t>(1020, 1030);
  c.cpu_quota_us = maybe(1000, 3000000);
  c.cpu_period_us = *uniform<std::uint64_t>(1000, 1000000);
  c.pids_limit = maybe(1, 10);
  c.io_weight = maybe(90, 110);
  ProcessEntry entry;
  entry.image = "img";
  entry.config = "/c.yaml";
  t.processes["p"] = entry;

  TempDir dir;
  auto diags = check_small_tree(dir.path(), t);
  std::set<std::string> refused;
  for (const auto& d : diags.items()) {
    if (d.code != Code::CgroupLimit) {
      RC_FAIL("unexpected " + std::string(code_id(d.code)) + ": " + d.message);
    }
    refused.insert(d.message.substr(0, d.message.find(' ')));
  }
  auto expected = model_ceiling_breaks(ceil, c);
  RC_TAG(expected.empty() ? "within" : "refused");
  RC_ASSERT(refused == expected);
}
