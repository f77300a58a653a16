// Properties of the supervisor's pure decisions (policy/supervise.hpp):
//  * reconcile: per name at most one knot is kept (children of an earlier,
//    killed tree included), our own child is preferred over one that is not
//    when both run the configured identity, every desired instance is either kept
//    (adopted/upgrading) or started, nothing undesired is started, identical identities are
//    adopted, unreadable configuration never stops a running instance of ours;
//  * next_start: never before the death, never sooner than restart-timeout
//    after the previous start; a crash loop gets at most one start per
//    restart-timeout in any window;
//  * start_error_backoff_ms: restart-timeout (at least 1 s) after the first
//    start error, doubling per error, capped at a minute;
//  * socket_credentials: without maps the process's own ids; with maps the
//    id a brute-force walk over every mapped id finds, or 0 when none does;
//  * parse_knot_cmdline recognises the tree's knot argv whatever the extra
//    log options and their order, and rejects other programs.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lithos/policy/supervise.hpp"

namespace {

using namespace lithos::policy::supervise;

rc::Gen<std::string> instance_name() {
  return rc::gen::map(rc::gen::pair(rc::gen::element<std::string>("a/web", "a/db", "b/web"),
                                    rc::gen::inRange(0, 3)),
                      [](const std::pair<std::string, int>& p) {
                        return p.first + "." + std::to_string(p.second);
                      });
}
rc::Gen<std::string> identity() {
  return rc::gen::element<std::string>("{v1}", "{v2}", "{v3}");
}

RC_GTEST_PROP(Reconcile, NeverTwoOfOneNameAndEveryDesiredIsMatchedOrStarted, ()) {
  auto desired =
      *rc::gen::container<std::map<std::string, std::string>>(instance_name(), identity());
  auto count = *rc::gen::inRange<std::size_t>(0, 12);
  std::vector<FoundKnot> found;
  for (std::size_t i = 0; i < count; ++i)
    found.push_back({static_cast<pid_t>(100 + i * 7), *instance_name(), *identity(),
                     *rc::gen::arbitrary<bool>()});
  std::set<std::string> unreadable;
  for (const auto& k : found)
    if (!desired.count(k.name) && *rc::gen::weightedElement<bool>({{1, true}, {3, false}}))
      unreadable.insert(k.name);
  if (*rc::gen::weightedElement<bool>({{1, true}, {4, false}})) unreadable.insert("b/");

  auto d = reconcile(desired, found, unreadable);
  RC_ASSERT(d.verdicts.size() == found.size());
  std::map<std::string, int> kept;
  for (std::size_t i = 0; i < found.size(); ++i) {
    auto v = d.verdicts[i];
    const auto& k = found[i];
    bool keeps = v == Verdict::Adopt || v == Verdict::Upgrade || v == Verdict::Keep;
    if (keeps) ++kept[k.name];
    if (v == Verdict::Adopt) RC_ASSERT(desired.at(k.name) == k.identity);
    if (v == Verdict::Upgrade) RC_ASSERT(desired.at(k.name) != k.identity);
    if (v == Verdict::Retire)
      RC_ASSERT(!desired.count(k.name) && !is_unreadable(unreadable, k.name));
    // A knot whose configuration cannot be read is never retired: kept, or
    // stopped only as the duplicate of the one kept (checked below).
    if (!desired.count(k.name) && is_unreadable(unreadable, k.name))
      RC_ASSERT(v == Verdict::Keep || v == Verdict::Stop);
  }
  for (const auto& [name, n] : kept) RC_ASSERT(n == 1);
  std::set<std::string> started(d.start.begin(), d.start.end());
  RC_ASSERT(started.size() == d.start.size());
  for (const auto& name : d.start) RC_ASSERT(desired.count(name) == 1u);
  for (const auto& [name, id] : desired)
    RC_ASSERT((kept.count(name) ? 1 : 0) + started.count(name) == 1u);
  // An unreadable name with a running knot: exactly one kept.
  for (const auto& k : found)
    if (!desired.count(k.name) && is_unreadable(unreadable, k.name)) RC_ASSERT(kept[k.name] == 1);
  // Same identity is preferred when there is a choice; among those running
  // the same identity, our own child (it can be waited for).
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (!desired.count(found[i].name) || desired.at(found[i].name) != found[i].identity) continue;
    for (std::size_t j = 0; j < found.size(); ++j) {
      if (found[j].name != found[i].name) continue;
      if (d.verdicts[j] == Verdict::Upgrade) RC_FAIL("upgrade chosen over adopt");
      if (d.verdicts[j] == Verdict::Adopt && found[i].our_child && !found[j].our_child)
        RC_FAIL("a previous tree's knot chosen over our own child");
    }
    // Whoever its parent is, a knot running what is configured is never
    // restarted: its name is adopted, not started.
    RC_ASSERT(std::find(d.start.begin(), d.start.end(), found[i].name) == d.start.end());
  }
}

RC_GTEST_PROP(Throttle, NextStartIsNeverEarlyAndOnePerTimeout, ()) {
  auto timeout = *rc::gen::inRange<std::int64_t>(0, 5000);
  auto death = *rc::gen::inRange<std::int64_t>(0, 100000);
  std::optional<std::int64_t> last;
  if (*rc::gen::arbitrary<bool>()) last = *rc::gen::inRange<std::int64_t>(0, death + 1);
  auto next = next_start(death, last, timeout);
  RC_ASSERT(next >= death);
  if (last) RC_ASSERT(next >= *last + timeout);
  RC_ASSERT(next == death || (last && next == *last + timeout));
}

RC_GTEST_PROP(Throttle, CrashLoopStartsAtMostOncePerTimeoutInAnyWindow, ()) {
  auto timeout = *rc::gen::inRange<std::int64_t>(1, 1000);
  auto lifetimes =
      *rc::gen::container<std::vector<std::int64_t>>(rc::gen::inRange<std::int64_t>(0, 3000));
  std::vector<std::int64_t> starts;
  std::int64_t t = 0;
  std::optional<std::int64_t> last;
  for (auto life : lifetimes) {
    starts.push_back(t);
    last = t;
    std::int64_t death = t + life;
    t = next_start(death, last, timeout);
  }
  for (std::size_t i = 1; i < starts.size(); ++i) RC_ASSERT(starts[i] - starts[i - 1] >= timeout);
  auto window = *rc::gen::inRange<std::int64_t>(1, 10000);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    std::size_t in = 0;
    for (std::size_t j = i; j < starts.size() && starts[j] < starts[i] + window; ++j) ++in;
    RC_ASSERT(static_cast<std::int64_t>(in) <= window / timeout + 1);
  }
}

RC_GTEST_PROP(Throttle, StartErrorBackoffStartsAtTheTimeoutDoublesAndIsCapped, ()) {
  auto timeout = *rc::gen::inRange<std::int64_t>(0, 120'000);
  auto errors = *rc::gen::inRange<std::uint32_t>(1, 200);
  auto delay = start_error_backoff_ms(errors, timeout);
  auto base = std::max<std::int64_t>(timeout, 1000);
  auto cap = std::max(base, kMaxStartErrorBackoffMs);
  if (errors == 1) RC_ASSERT(delay == base);
  RC_ASSERT(delay >= base);
  RC_ASSERT(delay <= cap);
  auto next = start_error_backoff_ms(errors + 1, timeout);
  RC_ASSERT(next >= delay);
  RC_ASSERT(next == std::min(delay * 2, cap));
  // A fault that lasts costs at most one attempt per cap after a few.
  RC_ASSERT(start_error_backoff_ms(errors + 64, timeout) == cap);
}

RC_GTEST_PROP(KnotCmdline, RecognisedWhateverTheLogOptions, ()) {
  auto name = *rc::gen::element<std::string>("a/web.0", "s-1/p_2.10");
  auto master = *rc::gen::element<std::string>("/etc/lithos/master.yaml", "/tmp/x y/m.yaml");
  auto config = *rc::gen::element<std::string>("{\"instances\":1}", "--config");
  std::vector<std::vector<std::string>> parts = {
      {"--name", name}, {"--master", master}, {"--config", config}};
  if (*rc::gen::arbitrary<bool>()) parts.push_back({"--log-stderr"});
  if (*rc::gen::arbitrary<bool>()) parts.push_back({"--log-level=DEBUG"});
  if (*rc::gen::arbitrary<bool>()) parts.push_back({"--log-level", "info"});
  parts = *rc::gen::arbitrary<bool>()
              ? parts
              : std::vector<std::vector<std::string>>(parts.rbegin(), parts.rend());
  bool joined = *rc::gen::arbitrary<bool>();
  std::vector<std::string> argv = {
      *rc::gen::element<std::string>("/usr/bin/lithos_knot", "lithos_knot")};
  for (const auto& p : parts) {
    if (joined && p.size() == 2 && p[0] != "--log-level")
      argv.push_back(p[0] + "=" + p[1]);
    else
      argv.insert(argv.end(), p.begin(), p.end());
  }
  if (*rc::gen::arbitrary<bool>()) argv.insert(argv.end(), {"--", "--name", "other"});
  auto parsed = parse_knot_cmdline(argv);
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(parsed->name == name);
  RC_ASSERT(parsed->master == master);
  RC_ASSERT(parsed->config == config);
  argv[0] = "/usr/bin/lithos_tree";
  RC_ASSERT(!parse_knot_cmdline(argv).has_value());
}

RC_GTEST_PROP(SocketCredentials, MapsAgreeWithABruteForceWalk, ()) {
  using lithos::policy::IdMapEntry;
  // Small ids and counts, so the walk over every mapped id stays short;
  // entries may overlap (the first match wins, as in the kernel's order).
  auto entry = rc::gen::build<IdMapEntry>(
      rc::gen::set(&IdMapEntry::inside, rc::gen::inRange<std::uint32_t>(0, 40)),
      rc::gen::set(&IdMapEntry::outside, rc::gen::inRange<std::uint32_t>(0, 100000)),
      rc::gen::set(&IdMapEntry::count, rc::gen::inRange<std::uint32_t>(0, 20)));
  auto uid_map = *rc::gen::container<std::vector<IdMapEntry>>(entry);
  auto gid_map = *rc::gen::container<std::vector<IdMapEntry>>(entry);
  auto uid = *rc::gen::inRange<std::uint32_t>(0, 70);
  auto gid = *rc::gen::inRange<std::uint32_t>(0, 70);
  auto walk = [](const std::vector<IdMapEntry>& map, std::uint32_t id) -> std::uint32_t {
    if (map.empty()) return id;
    for (const auto& e : map)
      for (std::uint32_t i = 0; i < e.count; ++i)
        if (e.inside + i == id) return e.outside + i;
    return 0;
  };
  auto got = socket_credentials(uid, gid, uid_map, gid_map);
  RC_ASSERT(got.uid == walk(uid_map, uid));
  RC_ASSERT(got.gid == walk(gid_map, gid));
}

TEST(SocketCredentials, EdgesOfAnEntry) {
  using lithos::policy::IdMapEntry;
  std::vector<IdMapEntry> map{{1000, 200000, 10}};
  EXPECT_EQ(socket_credentials(1000, 1009, map, map), (SocketCredentials{200000, 200009}));
  EXPECT_EQ(socket_credentials(1010, 999, map, map), (SocketCredentials{0, 0}));  // exclusive end
  EXPECT_EQ(socket_credentials(7, 8, {}, {}), (SocketCredentials{7, 8}));
  std::vector<IdMapEntry> top{{0, 0xfffffff0u, 0x20}};  // would pass 2^32
  EXPECT_EQ(socket_credentials(0x0f, 0x10, top, top).uid, 0xffffffffu);
  EXPECT_EQ(socket_credentials(0x0f, 0x10, top, top).gid, 0u);
}

TEST(KnotCmdline, PathsCompareByComponents) {
  EXPECT_TRUE(same_path("/a//b/./c/", "/a/b/c"));
  EXPECT_FALSE(same_path("a/b", "/a/b"));
  EXPECT_FALSE(same_path("/a/b", "/a/b/c"));
}

TEST(Metrics, PrometheusNames) {
  EXPECT_EQ(prometheus_name("master.restarts"), "master_restarts");
  EXPECT_EQ(prometheus_name("processes.my-sandbox.web"), "processes_my_sandbox_web");
  EXPECT_EQ(prometheus_name("1x"), "_1x");
  EXPECT_EQ(prometheus_label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
}

}  // namespace
