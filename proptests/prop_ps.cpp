// lithos_ps properties: /proc/PID/stat and cmdline round trips for any comm
// and argv bytes, and grouping of random process forests checked against a
// brute-force model (nothing lost, nothing listed twice, totals = subtree).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/ps.hpp"

using namespace lithos::runtime;

namespace {

constexpr const char* kIdentity =
    R"({"instances":1,"image":"i","config":"/c.yaml","kind":"Daemon"})";

rc::Gen<std::uint64_t> small_signed() {
  return rc::gen::inRange<std::uint64_t>(0, std::numeric_limits<std::int64_t>::max());
}

}  // namespace

RC_GTEST_PROP(PsProcfsProps, StatRoundTripsForAnyComm, ()) {
  procfs::ProcStat s;
  s.pid = *rc::gen::inRange(1, 1 << 22);
  s.comm = *rc::gen::container<std::string>(
      rc::gen::suchThat(rc::gen::arbitrary<char>(), [](char c) { return c != '\0'; }));
  s.state = *rc::gen::element('R', 'S', 'D', 'Z', 'T', 'I');
  s.ppid = *rc::gen::inRange(0, 1 << 22);
  s.utime = *rc::gen::arbitrary<std::uint64_t>();
  s.stime = *rc::gen::arbitrary<std::uint64_t>();
  s.cutime = *small_signed();
  s.cstime = *small_signed();
  s.num_threads = *small_signed();
  s.starttime = *rc::gen::arbitrary<std::uint64_t>();
  s.vsize = *rc::gen::arbitrary<std::uint64_t>();
  s.rss_pages = *small_signed();
  auto back = procfs::parse_stat(procfs::format_stat(s));
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == s);
}

RC_GTEST_PROP(PsProcfsProps, CmdlineRoundTrips, ()) {
  auto args = *rc::gen::container<std::vector<std::string>>(rc::gen::container<std::string>(
      rc::gen::suchThat(rc::gen::arbitrary<char>(), [](char c) { return c != '\0'; })));
  std::string bytes;
  for (const auto& a : args) {
    bytes += a;
    bytes += '\0';
  }
  RC_ASSERT(procfs::parse_cmdline(bytes) == args);
}

RC_GTEST_PROP(PsProcfsProps, ParsersNeverCrashOnJunk, (const std::string& junk)) {
  (void)procfs::parse_stat(junk);
  (void)procfs::parse_status(junk);
  (void)procfs::parse_boot_time(junk);
  (void)procfs::parse_cpu_stat_usage_usec(junk);
  (void)procfs::parse_prometheus_text(junk);
  (void)lithos::policy::InstanceName::parse(junk);
}

RC_GTEST_PROP(PsGroupProps, GroupingMatchesModel, ()) {
  // A random forest: process i (pid i+1) has parent 0 or an earlier pid.
  const int n = *rc::gen::inRange(1, 40);
  procfs::ProcessTable table;
  for (int i = 0; i < n; ++i) {
    procfs::ProcessInfo p;
    p.pid = i + 1;
    p.ppid = i == 0 ? 0 : *rc::gen::inRange(0, i + 1);
    p.threads = *rc::gen::inRange<std::uint64_t>(1, 5);
    p.mem_rss = *rc::gen::inRange<std::uint64_t>(0, 1 << 20);
    p.utime = *rc::gen::inRange<std::uint64_t>(0, 1000);
    int role = *rc::gen::inRange(0, 3);
    bool valid = *rc::gen::inRange(0, 5) != 0;
    if (role == 0) {
      p.name = "lithos_tree";
      p.argv = valid ? std::vector<std::string>{"lithos_tree"}
                     : std::vector<std::string>{"lithos_tree", "--nope"};
    } else if (role == 1) {
      p.name = "lithos_knot";
      std::string name = *rc::gen::element<std::string>("a", "b") + "/" +
                         *rc::gen::element<std::string>("x", "y") + "." +
                         std::to_string(*rc::gen::inRange(0, 3));
      p.argv = {"lithos_knot", "--name", name};
      if (valid) p.argv.insert(p.argv.end(), {"--config", kIdentity});
    } else {
      p.name = "sleep";
      p.argv = {"sleep", "1"};
    }
    table.push_back(p);
  }
  // Shuffled input order must not matter.
  auto keys = *rc::gen::container<std::vector<int>>(table.size(), rc::gen::arbitrary<int>());
  std::vector<std::size_t> order(table.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
  procfs::ProcessTable shuffled;
  for (std::size_t i : order) shuffled.push_back(table[i]);
  auto trees = ps::group(shuffled);

  std::map<pid_t, const procfs::ProcessInfo*> by_pid;
  std::map<pid_t, std::vector<pid_t>> kids;
  for (const auto& p : table) {
    by_pid[p.pid] = &p;
    kids[p.ppid].push_back(p.pid);
  }
  auto descendants = [&](pid_t root) {
    std::set<pid_t> out;
    std::vector<pid_t> stack = kids[root];
    while (!stack.empty()) {
      pid_t pid = stack.back();
      stack.pop_back();
      out.insert(pid);
      for (pid_t k : kids[pid]) stack.push_back(k);
    }
    return out;
  };
  auto is_tree = [](const procfs::ProcessInfo& p) {
    return p.name == "lithos_tree" && procfs::parse_tree_argv(p.argv).has_value();
  };
  auto is_knot = [](const procfs::ProcessInfo& p) {
    return p.name == "lithos_knot" && procfs::parse_knot_argv(p.argv).has_value();
  };

  std::size_t model_trees = 0, model_knots = 0;
  for (const auto& p : table) {
    if (is_tree(p)) ++model_trees;
    if (is_knot(p) && by_pid.count(p.ppid) && is_tree(*by_pid[p.ppid])) ++model_knots;
  }
  RC_ASSERT(trees.size() == model_trees);
  std::set<pid_t> knots_seen, heads_seen;
  std::size_t knots = 0;
  for (std::size_t t = 0; t < trees.size(); ++t) {
    const auto& tree = trees[t];
    if (t > 0) RC_ASSERT(trees[t - 1].pid < tree.pid);
    ps::Totals sum;
    for (const auto& sandbox : tree.sandboxes)
      for (const auto& child : sandbox.children)
        for (const auto& instance : child.instances) {
          ++knots;
          RC_ASSERT(knots_seen.insert(instance.knot_pid).second);
          RC_ASSERT(by_pid[instance.knot_pid]->ppid == tree.pid);
          RC_ASSERT(instance.heads.size() == kids[instance.knot_pid].size());
          std::set<pid_t> model = descendants(instance.knot_pid);
          RC_ASSERT(instance.totals.processes == model.size());
          std::uint64_t rss = 0;
          for (pid_t pid : model) rss += by_pid[pid]->mem_rss;
          RC_ASSERT(instance.totals.mem_rss == rss);
          for (const auto& head : instance.heads) {
            RC_ASSERT(heads_seen.insert(head.process.pid).second);
            RC_ASSERT(head.process.ppid == instance.knot_pid);
          }
          sum.add(instance.totals);
        }
    RC_ASSERT(tree.totals.processes == sum.processes);
    RC_ASSERT(tree.totals.cpu_ticks() == sum.cpu_ticks());
  }
  RC_ASSERT(knots == model_knots);
}
