// lithos_ps: the process table of a host grouped as trees → sandboxes →
// processes → instances (docs/lithos_ps.md), and its three renderings (tree
// view, JSON, monitor table). Grouping and rendering are pure: they take a
// ProcessTable (procfs.hpp) and numbers read elsewhere, so tests need no /proc.
// docs/lithos_ps.md describes every field and where it comes from.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lithos/runtime/procfs.hpp"

namespace lithos::runtime::ps {

// Sums over a set of processes (the knots and the tree are never counted).
struct Totals {
  std::uint64_t processes = 0;
  std::uint64_t threads = 0;
  std::uint64_t mem_rss = 0;                       // bytes
  std::uint64_t mem_swap = 0;                      // bytes
  std::uint64_t user = 0, system = 0;              // clock ticks
  std::uint64_t child_user = 0, child_system = 0;  // of reaped descendants, clock ticks
  std::uint64_t memory() const { return mem_rss + mem_swap; }
  std::uint64_t cpu_ticks() const { return user + system + child_user + child_system; }
  void add(const Totals& other);
  void add(const procfs::ProcessInfo& process);
};

// A direct child of a knot (normally exactly one: the container process),
// with the totals of its whole subtree.
struct Head {
  procfs::ProcessInfo process;
  Totals totals;
};

struct Instance {
  std::string name;  // as in --name: "SANDBOX/CHILD.N"
  policy::InstanceName parsed;
  pid_t knot_pid = 0;
  std::vector<Head> heads;  // sorted by pid
  Totals totals;            // sum over the heads
  procfs::CgroupUsage cgroup;
  bool ok() const { return heads.size() == 1; }
};

struct Child {
  std::string name;
  std::vector<Instance> instances;  // sorted by index, then pid
  Totals totals;
  std::optional<std::uint64_t> restarts;  // from the metrics file, if any
};

struct Sandbox {
  std::string name;
  std::vector<Child> children;  // sorted by name
  Totals totals;
};

struct Tree {
  pid_t pid = 0;
  std::string config;              // master config path as given on the tree's command line
  std::vector<Sandbox> sandboxes;  // sorted by name
  Totals totals;
};

// Trees (Name lithos_tree whose argv parses), their direct children that are
// knots (Name lithos_knot, argv parses), and below each knot its heads.
// Sorted by tree pid. A pid present twice in the table counts once; each
// knot is listed under one tree and each head under one knot.
std::vector<Tree> group(const procfs::ProcessTable& table);

// Every instance of every tree, for filling in cgroup numbers.
std::vector<Instance*> instances(std::vector<Tree>& trees);

// Restarts of each process entry from the samples of the tree's metrics
// file: `lithos_process_deaths_total{sandbox="S",process="C"}` (every death
// of a knot is followed by a restart while the entry stays configured;
// docs/lithos_ps.md).
void apply_restarts(Tree& tree, const std::vector<procfs::MetricSample>& samples);

// ---- rendering ----------------------------------------------------------------

struct Clock {
  std::uint64_t now = 0;        // unix seconds
  std::uint64_t boot_time = 0;  // unix seconds (/proc/stat btime)
  std::uint64_t ticks = 100;    // sysconf(_SC_CLK_TCK)
  std::uint64_t start_time(const procfs::ProcessInfo& p) const {
    return boot_time + p.starttime / (ticks ? ticks : 100);
  }
};

// "512B", "1.5kiB", "10.0MiB", "2.3GiB".
std::string format_memory(std::uint64_t bytes);
// "12s", "3m4s", "1h2m3s", "1d2h3m", "5days".
std::string format_uptime(std::uint64_t seconds);
// CPU time from ticks: "0.25s", "12.3s", "3m4s", "1h2m".
std::string format_cpu_seconds(double seconds);

std::string render_text(const std::vector<Tree>& trees, const Clock& clock, bool color);
// One JSON object, keys sorted, no trailing newline (the original's members
// plus the additions documented in docs/lithos_ps.md).
std::string render_json(const std::vector<Tree>& trees, const Clock& clock);

// The --monitor table: one row per instance sorted by name; CPU is the
// percentage of one CPU between `previous` and `current`, `interval`
// seconds apart (0 for instances not in `previous`).
std::string render_monitor(const std::vector<Tree>& previous, const std::vector<Tree>& current,
                           double interval, std::uint64_t ticks);

}  // namespace lithos::runtime::ps
