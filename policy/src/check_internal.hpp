// Private to the policy library (policy/src): the TreeChecker whose rules
// live in rules_*.cpp and whose plan drafting lives in plan_build.cpp, and
// the helpers the container rules and the plan builder share.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lithos/policy/check.hpp"
#include "lithos/policy/image_inspect.hpp"

namespace lithos::policy::check_internal {

using schema::field_path;
using schema::key_path;
using schema::quote;

// Reports each (file, line, column, message) once: per-instance rules would
// otherwise repeat the same finding for every instance.
class Reporter {
 public:
  explicit Reporter(Diagnostics& diags) : diags_(diags) {}
  // The same finding at the same place is said once.
  void add(Severity severity, const std::string& file, Mark mark, Code code, std::string message) {
    auto key =
        file + ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column) + ":" + message;
    if (!seen_.insert(key).second) return;
    diags_.add({file, mark, severity, code, std::move(message)});
  }
  void error(const std::string& file, Mark mark, Code code, std::string message) {
    add(Severity::Error, file, mark, code, std::move(message));
  }
  void warning(const std::string& file, Mark mark, Code code, std::string message) {
    add(Severity::Warning, file, mark, code, std::move(message));
  }
  std::size_t errors() const { return diags_.error_count(); }

 private:
  Diagnostics& diags_;
  std::set<std::string> seen_;
};

// rules_container.cpp: the rules of a container config alone (also the whole
// of `lithos_check --check-container`).
void check_container_rules(const Loaded<ContainerCodec>& doc, Reporter& report);

// Ports that socket activation assigns: variable name -> fd, in byte order.
std::map<std::string, std::uint32_t> activation_fds(const ContainerConfig& c);
// "MAJOR:MINOR" of io-max, as the kernel prints device numbers.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_device_numbers(std::string_view text);

// All rules of a loaded tree, and the plans of its valid instances.
class TreeChecker {
 public:
  TreeChecker(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
              Sources* sources, PlanSink* plans)
      : tree_(tree),
        options_(options),
        diags_(diags),
        report_(diags),
        sources_(sources),
        plans_(plans) {}

  void run();

 private:
  // rules_tree.cpp: the master, each sandbox and each process entry.
  void check_sandbox(const SandboxSource& sandbox);
  void check_lsm_labels(const std::string& file, const schema::MarkTable& marks,
                        const std::optional<std::string>& apparmor,
                        const std::optional<std::string>& selinux);
  void check_after_setup(const SandboxSource& sandbox);
  std::optional<std::string> helper_program(const std::string& program) const;
  void check_map_entry(const SandboxSource& sandbox, std::string_view which, std::size_t i);
  void check_clean_entries(const SandboxSource& sandbox);
  void check_containers_of_broken_sandbox(const SandboxSource& sandbox);
  bool decoded_as_written(const Loaded<SandboxCodec>& doc, std::string_view key) const;

  struct EntryContext {
    const SandboxSource& sandbox;
    const std::string& child;
    const ProcessEntry& entry;
    std::string image_root;     // host path of the image, once the image is valid
    std::string image_on_disk;  // where it is read: image_root under --root
  };

  Mark pmark(const EntryContext& e, const std::string& suffix) const {
    return e.sandbox.processes->marks.find(key_path("", e.child) + suffix);
  }
  void perror(const EntryContext& e, const std::string& suffix, Code code, std::string message) {
    report_.error(e.sandbox.processes->file, pmark(e, suffix), code, std::move(message));
  }

  std::string host(const std::string& path) const { return under_root(options_.host_root, path); }
  // Host facts that cannot be looked at offline are notes.
  Severity host_severity() const { return options_.offline ? Severity::Note : Severity::Error; }

  void check_entry(const SandboxSource& sandbox, const std::string& child,
                   const ProcessEntry& entry);

  // rules_image.cpp: what the knot will find in the image and on the host.
  bool image_present(const EntryContext& e);
  bool report_image_findings(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                             const InstancePlan& plan);

  // rules_cgroup.cpp: cgroup controls, sandbox ceilings and placement.
  bool cgroup_placeable(const Loaded<ContainerCodec>& doc, const InstancePlan& plan);
  void check_cgroup_controls(const SandboxSource& sandbox, const Loaded<ContainerCodec>& doc);

  // rules_ids.cpp: users, groups, id maps, variables and secrets.
  std::optional<std::uint32_t> check_ids(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                         bool user);
  void check_variables(const EntryContext& e, const Loaded<ContainerCodec>& doc);
  std::vector<std::string> allowed_namespaces(const EntryContext& e) const;
  void check_secrets(const EntryContext& e, const Loaded<ContainerCodec>& doc);

  // The maps applied to the process: the sandbox's if it has any, else the
  // container's (docs/configs.md, "Users, groups and id maps").
  static const std::vector<IdMapEntry>& applied_map(const SandboxConfig& sb,
                                                    const ContainerConfig& c, bool user) {
    bool sandbox_maps = !sb.uid_map.empty() || !sb.gid_map.empty();
    if (sandbox_maps) return user ? sb.uid_map : sb.gid_map;
    return user ? c.uid_map : c.gid_map;
  }
  static bool maps_apply(const SandboxConfig& sb, const ContainerConfig& c) {
    return !sb.uid_map.empty() || !sb.gid_map.empty() || !c.uid_map.empty() || !c.gid_map.empty();
  }

  bool owner_allowed(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                     const std::string& mp, std::uint32_t user, std::uint32_t group);

  // rules_volumes.cpp: volumes, and the mounts they draft for a plan.
  struct VolumeDraft {
    MountPlan mount;
    std::string statedir_rel;  // for !Statedir: path below the state dir
  };

  std::vector<VolumeDraft> check_volumes(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                         bool keep);

  // plan_build.cpp: one instance's plan from the checked configs.
  std::optional<InstancePlan> instantiate(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                          const std::string& name, std::uint64_t index,
                                          std::optional<scalars::IpAddress> ip,
                                          std::optional<std::uint32_t> uid,
                                          std::optional<std::uint32_t> gid,
                                          const std::vector<VolumeDraft>& volumes, bool keep);
  const SeccompPlan& sandbox_seccomp(const EntryContext& e, bool argument_rules);
  bool read_secret_environ_file(const Loaded<ContainerCodec>& doc, InstancePlan& plan);

  const ConfigTree& tree_;
  const CheckOptions& options_;
  Diagnostics& diags_;
  Reporter report_;
  Sources* sources_;
  PlanSink* plans_;
  std::string mount_root_;
  std::string state_root_;  // runtime-dir/state-dir
  // The deny list of each sandbox, computed once for all its instances.
  std::map<std::pair<const SandboxSource*, bool>, SeccompPlan> seccomp_;

  // sandbox + "\n" + image root -> whether it is there (image_present).
  std::map<std::string, bool> image_present_;
  // Controller lists asked of the host (cgroup_placeable) -> why not.
  std::map<std::string, std::optional<CgroupRefusal>> cgroup_refusals_;
  // instantiate() builds a plan that is only inspected, never kept.
  bool inspection_only_ = false;
  // sandbox + image root + message of image-wide findings already reported.
  std::set<std::string> image_reported_;
  HostLookups host_lookups_;             // one run is one snapshot of the host
  int image_dir_fd_ = -1;                // the current sandbox's image-dir (OpenDir), or -1
  std::set<std::string> checked_alone_;  // container configs of broken sandboxes, checked once
  std::size_t entry_errors_before_ = 0;  // error count when the current entry started
};

}  // namespace lithos::policy::check_internal
