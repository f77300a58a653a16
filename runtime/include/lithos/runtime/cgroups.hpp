// cgroups: host layout detection (v1, v2, hybrid) and the `enter_cgroup`
// step. docs/cgroups.md describes the choices made here.
//
// Everything that interprets text is a pure function over file contents, so
// the three layouts can be tested from fixtures; only probe_cgroups(),
// prepare_cgroup_parent(), enter_cgroup() and remove_cgroup() touch the system.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/plan.hpp"
#include "lithos/runtime/error.hpp"

namespace lithos::runtime {

// ---- parsing (pure) -------------------------------------------------------

struct MountInfoEntry {
  std::string root;         // root of the mount inside its filesystem
  std::string mount_point;  // octal escapes (\040 ...) decoded
  std::string fstype;       // "cgroup", "cgroup2", ...
  std::string source;
  std::vector<std::string> super_options;  // "rw", "memory", "name=systemd", ...
};
// /proc/PID/mountinfo. Malformed lines are an error naming the line number.
Result<std::vector<MountInfoEntry>> parse_mountinfo(std::string_view text);

struct ProcCgroupLine {
  unsigned id = 0;
  std::vector<std::string> controllers;  // as written: "cpu", "name=systemd"; empty for v2
  std::string path;
};
// /proc/PID/cgroup: "ID:CONTROLLERS:PATH" per line.
Result<std::vector<ProcCgroupLine>> parse_proc_cgroup(std::string_view text);

// cgroup.controllers / cgroup.subtree_control: space-separated names.
std::vector<std::string> parse_controller_list(std::string_view text);

// ---- host description ------------------------------------------------------

enum class CgroupLayout { None, V1, V2, Hybrid };
std::string_view layout_name(CgroupLayout layout);

struct V1Hierarchy {
  std::string dir_name;                  // mount dir name: "cpu,cpuacct", "systemd"
  std::vector<std::string> controllers;  // "cpu", "cpuacct" or "name=systemd"
  std::string mount;                     // "/sys/fs/cgroup/cpu,cpuacct"
  std::string init_path;                 // PID 1's path in this hierarchy ("/" normally)
};

struct UnifiedHierarchy {
  std::string mount;      // "/sys/fs/cgroup" or "/sys/fs/cgroup/unified"
  std::string init_path;  // PID 1's path ("/init.scope" under systemd)
  // Where lithos' parent cgroup lives: init_path without a trailing
  // "init.scope" (v2 forbids controllers below a cgroup with processes).
  std::string base;
  std::vector<std::string> controllers;  // enabled at `base` (cgroup.controllers)
};

struct CgroupHost {
  CgroupLayout layout = CgroupLayout::None;
  std::vector<V1Hierarchy> v1;
  std::optional<UnifiedHierarchy> v2;

  // The v1 hierarchy serving `controller` ("memory"; "name" or
  // "name=systemd" for the named hierarchy), or nullptr.
  const V1Hierarchy* find_v1(std::string_view controller) const;
};

// Pure: combines the mount table with PID 1's cgroup file. `v2_controllers`
// is the content of <unified mount><base>/cgroup.controllers (ignored when
// there is no cgroup2 mount).
Result<CgroupHost> describe_cgroups(std::string_view mountinfo, std::string_view pid1_cgroup,
                                    std::string_view v2_controllers);

// Reads /proc/self/mountinfo, /proc/1/cgroup and the unified
// cgroup.controllers of this host.
Result<CgroupHost> probe_cgroups();

// ---- placement (pure) ------------------------------------------------------

// One hierarchy the instance joins.
struct CgroupPlacement {
  bool unified = false;
  std::string base;    // mount + PID 1's path (v2: + base)
  std::string parent;  // base/<plan.parent>
  std::string scope;   // parent/<plan.scope>
  // Requested names served here (v1: as requested; v2: the kernel names
  // "memory", "cpu", "io", "pids" that must be enabled in subtree_control).
  std::vector<std::string> controllers;
};

// Maps every requested controller to a hierarchy: v1 if it is mounted there,
// else the unified hierarchy if enabled there ("blkio" is "io" on v2,
// "cpuacct" is part of "cpu" accounting, "name" is plain membership). A
// controller found nowhere is a StepError naming it.
Result<std::vector<CgroupPlacement>> place_cgroup(const CgroupHost& host,
                                                  const policy::CgroupPlan& plan);

// What of `plan` this host cannot apply (probe_cgroups, place_cgroup and
// plan_cgroup_writes as the knot's enter_cgroup step does, then: is every
// file a control needs present in its v1 hierarchy?), or nullopt. Reads
// only; for lithos_check (CheckOptions::cgroup_refusal). A v2 file below
// the root cannot be looked for without creating a cgroup: the knot
// refuses its absence at start.
std::optional<policy::CgroupRefusal> cgroup_refusal(const policy::CgroupPlan& plan);
std::optional<policy::CgroupRefusal> cgroup_refusal(const CgroupHost& host,
                                                    const policy::CgroupPlan& plan);

// systemd's conversion of cpu.shares (2..262144) to cpu.weight (1..10000).
std::uint64_t shares_to_weight(std::uint64_t shares);
// io-weight (1..10000, default 100) as v1 blkio.weight (10..1000, default
// 500): × 5, clamped.
std::uint64_t io_weight_to_blkio(std::uint64_t weight);

struct CgroupWrite {
  std::string controller;  // for messages: "memory", "cpu", "pids"
  std::string file;        // absolute path
  std::string value;
  bool only_if_exists = false;  // memory.memsw.limit_in_bytes, memory.swap.max
  // The controls added since the original (memory-high ...): a failed
  // write refuses the start instead of being logged. `key` names it.
  bool required = false;
  std::string key;
};
struct CgroupWrites {
  std::vector<CgroupWrite> writes;
  // Limits whose controller is not among the placements (logged and
  // skipped, docs/cgroups.md).
  std::vector<StepError> skipped;
  // Required controls with no file in the hierarchy serving them
  // (memory-high where memory is v1): the start is refused.
  std::vector<policy::CgroupRefusal> unsupported;
};
// The limit files for the scope dirs, in write order.
CgroupWrites plan_cgroup_writes(const std::vector<CgroupPlacement>& placements,
                                const policy::CgroupPlan& plan);

// ---- side effects ------------------------------------------------------------

// The tree's part: creates <base>/<parent> in every placement (an existing
// one is fine) and, on v2, enables the placement's controllers in the
// subtree_control of base and parent.
Result<void> prepare_cgroup_parent(const std::vector<CgroupPlacement>& placements);

// Where the tree itself lives below <cgroup-name> on v2 (on v1 it joins
// <cgroup-name> itself; a v2 cgroup that enables controllers for
// its children cannot hold processes, so on v2 the tree takes a leaf). The
// name has no ':' and is never taken for an instance's scope.
inline constexpr std::string_view kTreeCgroupLeaf = "lithos_tree.scope";

// At the tree's startup (docs/tree.md): moves `pid` into <parent> of every v1 placement and into
// <parent>/lithos_tree.scope (created if missing) of the v2 one. Run after
// prepare_cgroup_parent.
Result<void> join_tree_cgroup(const std::vector<CgroupPlacement>& placements, pid_t pid);

// The knot's step `enter_cgroup`: creates the scope dirs (the parent must
// exist), writes the limits, then moves `pid` in (0: the caller) through
// cgroup.procs. Failing to create or join is an error, and so is a required
// control (CgroupWrite::required) that cannot be written; other failed
// limit writes are returned as warnings (logged only, as in the original).
Result<std::vector<StepError>> enter_cgroup(const std::vector<CgroupPlacement>& placements,
                                            const policy::CgroupPlan& plan, pid_t pid);

// Removes the scope dirs (they must be empty of processes); a missing one is
// fine. With `parent_too`, the parent dirs afterwards (if empty).
Result<void> remove_cgroup(const std::vector<CgroupPlacement>& placements, bool parent_too);

}  // namespace lithos::runtime
