// Cross-file rules (docs/configs.md, with this rebuild's fixes) and plan building.
// Every rule reports a Diagnostic pointing at the line that causes it; all
// problems of a tree are reported in one pass. The same code runs in
// lithos_check, lithos_switch, lithos_tree and lithos_knot.
// The helpers the rules share have headers of their own, included here:
// idmap.hpp, paths.hpp, templates.hpp, variables.hpp and identity.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/crypt/crypt.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/policy/hardening.hpp"
#include "lithos/policy/identity.hpp"
#include "lithos/policy/idmap.hpp"
#include "lithos/policy/paths.hpp"
#include "lithos/policy/plan.hpp"
#include "lithos/policy/templates.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/policy/variables.hpp"

namespace lithos::policy {

struct CheckOptions {
  bool check_devfs = true;  // devfs-dir must exist
  // Process kinds for which plans are built (tree: daemons; cmd: commands).
  bool plans_for_daemons = true;
  bool plans_for_commands = true;
  // `cmd.CHILD.PID` names of commands use this pid (lithos_cmd's own).
  std::uint64_t command_pid = 0;
  // Check only this process entry (knot, cmd).
  std::optional<std::string> only_child;
  // Build the entry's single instance under this index (plan_instance).
  std::optional<std::uint64_t> instance_index;
  // When set, receives every container config read (display path -> value),
  // for `lithos_check --print-effective`.
  std::map<std::string, ContainerConfig>* effective_containers = nullptr;
  // The largest RLIMIT_NOFILE a knot can set on this host, and why (a host
  // fact the caller reads: fs.nr_open, or the tree's own hard limit when it
  // lacks CAP_SYS_RESOURCE). A container asking for more is a warning.
  std::optional<std::uint64_t> max_fileno_limit;
  std::string max_fileno_limit_reason;
  // Replay what the knot will find on disk (image_inspect.hpp) for the
  // first instance of every entry that has no other error: lithos_check's
  // "What passes is what runs". Off where plans are built for a start (the
  // knot refuses by itself there) and in the unprivileged reader.
  bool inspect_images = false;
  // What of an instance's cgroup settings this host cannot apply (nullopt:
  // all of it). Given by lithos_check, which asks the runtime's probe; the
  // knot's enter_cgroup step refuses the same.
  std::function<std::optional<CgroupRefusal>(const CgroupPlan& plan)> cgroup_refusal;
  // Checking a config repository rather than a host (lithos_check --root,
  // --offline; docs/lithos_check.md "Config repositories"). Every absolute
  // host path the configs name is looked for under `host_root` (empty: /);
  // plans and messages keep the host path as written.
  std::string host_root;
  // What needs the host or an image that is not there (devfs, absent
  // images, volume sources, host files, the secrets key, bridges) is a note,
  // not an error.
  bool offline = false;
};

// The checks of one container config that need nothing else (also the whole
// of `lithos_check --check-container`): activation conflicts and template
// references to undeclared variables.
void check_container_alone(const Loaded<ContainerCodec>& container, Diagnostics& diags);

// Takes the plans of valid instances from check_tree one at a time, so that
// a caller with thousands of instances need not hold them all at once (the
// tree's config reader encodes each into its plan store and drops it). The
// plans of a process entry count only once `entry_done(true)` says so:
// `entry_done(false)` withdraws every plan given since the previous call (an
// error found later in the same entry refuses all its instances).
class PlanSink {
 public:
  virtual ~PlanSink() = default;
  virtual void plan(InstancePlan&& plan) = 0;
  virtual void entry_done(bool keep) = 0;
};

// All rules for a loaded tree; the plans of valid instances go to `sink`.
// Reads container configs (confined to their images).
void check_tree_into(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
                     Sources* sources, PlanSink& sink);

// The same, appending the plans of valid instances to `plans` when given.
void check_tree(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
                Sources* sources, std::vector<InstancePlan>* plans);

// What the knot and lithos_cmd re-derive: one instance of one process entry
// of one sandbox, from the identity it was started with.
struct InstanceRequest {
  std::string sandbox;
  std::string child;
  std::uint64_t index = 0;        // N of SANDBOX/CHILD.N (daemons)
  std::uint64_t command_pid = 0;  // PID of SANDBOX/cmd.CHILD.PID (commands)
  InstanceIdentity identity;
};

// Runs every check of check_tree on that one instance (the tree must hold the
// master and the sandbox: load_tree with LoadOptions::only_sandbox) and
// returns its plan, or nullopt with the reasons in `diags`.
std::optional<InstancePlan> plan_instance(const ConfigTree& tree, const InstanceRequest& request,
                                          Diagnostics& diags, Sources* sources);

// The host side of an instance's veth pair, as the original names it: "li_" +
// the first 3 bytes of BLAKE2b-512 of {"bridge":B,"ip":IP} + "_" + the last two
// address bytes, in hex. The container side is the same with "-" for "_".
std::string veth_host_name(const std::string& bridge, const scalars::IpAddress& ip);

}  // namespace lithos::policy
