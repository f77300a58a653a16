// The tree rules (docs/configs.md): the master config, each sandbox (names,
// allow-lists, id maps, LSM labels, after-setup-command) and each process
// entry, which the rules_*.cpp files and plan_build.cpp carry on.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "check_internal.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/names.hpp"

namespace lithos::policy::check_internal {

namespace {

std::string kind_text(ProcessKind k) {
  return schema::Enum<ProcessKind>::name_of(k);
}
std::string kind_text(ContainerKind k) {
  return schema::Enum<ContainerKind>::name_of(k);
}

// A bare program name of an after-setup-command is looked up here, never in
// the caller's PATH (docs/configs.md, "Bridged network").
constexpr std::string_view kHelperPath[] = {"/usr/sbin", "/usr/bin", "/sbin", "/bin"};

// LSM labels (docs/hardening.md, "LSM labels"): what the knot writes to
// /proc/thread-self/attr/exec, one line without spaces or control bytes.
std::optional<std::string> apparmor_profile_problem(std::string_view profile) {
  if (profile.empty()) return "an empty AppArmor profile name";
  if (profile.size() > 4096) return "an AppArmor profile name longer than 4096 bytes";
  for (unsigned char c : profile)
    if (c <= ' ' || c == 0x7f)
      return "AppArmor profile " + quote(profile) + " has a space or control character";
  return std::nullopt;
}

// user:role:type[:level], the level itself may hold ':' (s0:c1,c2).
std::optional<std::string> selinux_label_problem(std::string_view label) {
  auto ok_char = [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == ',' || c == ':';
  };
  std::size_t colons = 0;
  bool empty_part = label.empty() || label.front() == ':' || label.back() == ':';
  for (std::size_t i = 0; i < label.size(); ++i) {
    if (!ok_char(static_cast<unsigned char>(label[i])))
      return "SELinux label " + quote(label) + " has a character outside [A-Za-z0-9_.,:-]";
    if (label[i] == ':') {
      ++colons;
      if (i + 1 < label.size() && label[i + 1] == ':' && colons < 3) empty_part = true;
    }
  }
  if (colons < 2 || empty_part)
    return "SELinux label " + quote(label) + " is not user:role:type[:level]";
  return std::nullopt;
}

// Whether this host runs the LSM (sysfs, no securityfs needed).
bool lsm_enabled(const std::string& root, bool apparmor) {
  if (apparmor) {
    FILE* f = std::fopen(under_root(root, "/sys/module/apparmor/parameters/enabled").c_str(), "re");
    if (!f) return false;
    int c = std::fgetc(f);
    std::fclose(f);
    return c == 'Y';
  }
  struct stat st {};
  return ::stat(under_root(root, "/sys/fs/selinux/enforce").c_str(), &st) == 0;
}

bool kinds_compatible(ContainerKind container, ProcessKind process) {
  switch (container) {
    case ContainerKind::Daemon:
      return process == ProcessKind::Daemon;
    case ContainerKind::Command:
      return process == ProcessKind::Command;
    case ContainerKind::CommandOrDaemon:
      return true;
  }
  return false;
}

}  // namespace

void TreeChecker::run() {
  if (!tree_.master) return;
  const auto& master = tree_.master->value;
  mount_root_ = join_path(master.runtime_dir, master.mount_dir);
  state_root_ = join_path(master.runtime_dir, master.state_dir);
  if (mount_root_.empty() || mount_root_.front() != '/') {
    // Point at whichever of the two keys is written (mount-dir first).
    const auto& marks = tree_.master->marks;
    Mark where = marks.has(".mount-dir") ? marks.find(".mount-dir") : marks.find(".runtime-dir");
    report_.error(
        tree_.master->file, where, Code::BadPath,
        "runtime-dir joined with mount-dir must be absolute (got " + quote(mount_root_) + ")");
  }
  if (options_.check_devfs) {
    for (auto& problem : inspect_devfs(host(master.devfs_dir)))
      report_.add(host_severity(), tree_.master->file, tree_.master->marks.find(".devfs-dir"),
                  Code::Devfs, std::move(problem));
  }
  if (master.cgroup_name && options_.cgroup_refusal) {
    CgroupPlan placement_only;
    placement_only.controllers = effective_cgroup_controllers(master);
    if (auto refused = options_.cgroup_refusal(placement_only)) {
      const auto& marks = tree_.master->marks;
      Mark where = marks.has(".cgroup-controllers") ? marks.find(".cgroup-controllers")
                                                    : marks.find(".cgroup-name");
      report_.error(tree_.master->file, where, Code::Cgroup,
                    "instances cannot be placed in cgroups on this host: " + refused->why);
    }
  }
  for (const auto& sandbox : tree_.sandboxes) check_sandbox(sandbox);
}

void TreeChecker::check_sandbox(const SandboxSource& sandbox) {
  if (!sandbox.processes && sandbox.processes_partial) return check_clean_entries(sandbox);
  if (!sandbox.config && sandbox.partial && sandbox.processes)
    return check_containers_of_broken_sandbox(sandbox);
  if (!sandbox.config || !sandbox.processes) return;  // already reported
  const auto& sb = sandbox.config->value;
  const auto& sfile = sandbox.config->file;
  // The name comes from the file name (or --sandbox) and becomes a path
  // component, a cgroup scope and a log field, like a process name.
  if (!names::valid_name(sandbox.name))
    report_.error(sfile, {}, Code::BadName,
                  "sandbox name " + quote(sandbox.name) +
                      " (the config's file name) must match ^[\\w-]+$: letters, digits, _ "
                      "and - only");
  if (sb.allow_users.empty())
    report_.error(sfile, {1, 1}, Code::AllowList,
                  "No allowed users range. Please add `allow-users: [1-65535]` or similar");
  if (sb.allow_groups.empty())
    report_.error(sfile, {1, 1}, Code::AllowList,
                  "No allowed groups range. Please add `allow-groups: [1-65535]` or similar");
  for (std::size_t i = 0; i < sb.uid_map.size(); ++i) check_map_entry(sandbox, "uid", i);
  for (std::size_t i = 0; i < sb.gid_map.size(); ++i) check_map_entry(sandbox, "gid", i);
  if (sb.bridged_network && sb.bridged_network->default_gateway &&
      sb.bridged_network->default_gateway->v6 != sb.bridged_network->network.address.v6)
    report_.error(sfile, sandbox.config->marks.find(".bridged-network.default-gateway"),
                  Code::IpAddress, "default-gateway is not of the network's address family");
  if (sb.bridged_network) check_after_setup(sandbox);
  check_lsm_labels(sfile, sandbox.config->marks, sb.apparmor_profile, sb.selinux_label);
  OpenDir image_dir(host(sb.image_dir));  // one open per sandbox, not per container
  image_dir_fd_ = image_dir.fd();
  for (const auto& [child, entry] : sandbox.processes->value) {
    if (options_.only_child && *options_.only_child != child) continue;
    check_entry(sandbox, child, entry);
  }
  image_dir_fd_ = -1;
}

// An AppArmor profile or SELinux label of a sandbox or container: well
// formed, one of them, for an LSM this host runs.
void TreeChecker::check_lsm_labels(const std::string& file, const schema::MarkTable& marks,
                                   const std::optional<std::string>& apparmor,
                                   const std::optional<std::string>& selinux) {
  if (apparmor && selinux)
    report_.error(file, marks.find(".selinux-label"), Code::Lsm,
                  "apparmor-profile and selinux-label cannot both apply: a host runs one of "
                  "them");
  auto one = [&](const std::optional<std::string>& label, bool is_apparmor) {
    if (!label) return;
    const char* key = is_apparmor ? ".apparmor-profile" : ".selinux-label";
    auto problem = is_apparmor ? apparmor_profile_problem(*label) : selinux_label_problem(*label);
    if (problem) {
      report_.error(file, marks.find(key), Code::Lsm, *problem);
      return;
    }
    if (!lsm_enabled(options_.host_root, is_apparmor))
      report_.add(host_severity(), file, marks.find(key), Code::Lsm,
                  std::string(is_apparmor ? "AppArmor" : "SELinux") +
                      " is not enabled on this host (" +
                      (is_apparmor ? "/sys/module/apparmor/parameters/enabled is not Y"
                                   : "/sys/fs/selinux is not mounted") +
                      "): the knot would refuse to start with " + quote(*label));
  };
  one(apparmor, true);
  one(selinux, false);
}

// after-setup-command: a program of the host (a bare name from kHelperPath)
// and arguments whose only variables are @{container_ip} and
// @{container_interface}.
void TreeChecker::check_after_setup(const SandboxSource& sandbox) {
  const auto& argv = sandbox.config->value.bridged_network->after_setup_command;
  if (argv.empty()) return;
  const auto& sfile = sandbox.config->file;
  const Mark mark = sandbox.config->marks.find(".bridged-network.after-setup-command");
  if (argv.front().find("@{") != std::string::npos)
    report_.error(sfile, mark, Code::Template,
                  "after-setup-command: the program " + quote(argv.front()) +
                      " is not template-expanded; only the arguments are");
  for (std::size_t i = 1; i < argv.size(); ++i)
    for (const auto& part : scalars::parse_template(argv[i]))
      if (part.is_variable && part.text != "container_ip" && part.text != "container_interface")
        report_.error(sfile, mark, Code::Template,
                      "after-setup-command: unknown variable \"" + part.text +
                          "\" (only @{container_ip} and @{container_interface} are known here)");
  if (!helper_program(argv.front())) {
    std::string where = argv.front().find('/') == std::string::npos
                            ? " is not an executable file in /usr/sbin, /usr/bin, /sbin or /bin"
                        : argv.front().front() == '/'
                            ? " is not an executable file"
                            : " must be an absolute path or a bare program name";
    report_.add(host_severity(), sfile, mark, Code::Executable,
                "after-setup-command: " + quote(argv.front()) + where);
  }
}

// Where the program of an after-setup-command is on the host; nullopt
// when it is not an executable regular file.
std::optional<std::string> TreeChecker::helper_program(const std::string& program) const {
  auto runnable = [&](const std::string& path) {
    struct stat st {};
    return ::stat(host(path).c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
  };
  if (program.empty()) return std::nullopt;
  if (program.find('/') != std::string::npos) {
    if (program.front() == '/' && runnable(program)) return program;
    return std::nullopt;
  }
  for (auto dir : kHelperPath) {
    std::string path = std::string(dir) + "/" + program;
    if (runnable(path)) return path;
  }
  return std::nullopt;
}

// The sandbox's own maps have no allow-list rule in the original; only
// overflowing entries are rejected here.
void TreeChecker::check_map_entry(const SandboxSource& sandbox, std::string_view which,
                                  std::size_t i) {
  const auto& map = which == "uid" ? sandbox.config->value.uid_map : sandbox.config->value.gid_map;
  const auto& e = map[i];
  std::string path = key_path("." + std::string(which) + "-map", std::to_string(i));
  if (std::uint64_t{e.inside} + e.count > 0x100000000ULL ||
      std::uint64_t{e.outside} + e.count > 0x100000000ULL)
    report_.error(sandbox.config->file, sandbox.config->marks.find(path), Code::IdMap,
                  std::string(which) + "-map entry overflows 32-bit ids");
}

// A process config with errors: the entries without an error of their
// own (none on the lines from their name to the next entry's) are
// checked as if the file held only them, and keep no plan: a file with
// errors starts nothing (the tree keeps what runs, docs/tree.md).
void TreeChecker::check_clean_entries(const SandboxSource& sandbox) {
  const auto& partial = *sandbox.processes_partial;
  std::vector<std::pair<int, std::string>> starts;
  for (const auto& entry : partial.value)
    starts.emplace_back(partial.marks.find(key_path("", entry.first)).line, entry.first);
  std::sort(starts.begin(), starts.end());
  std::vector<int> error_lines;
  for (const auto& d : diags_.items())
    if (d.severity == Severity::Error && d.file == partial.file) error_lines.push_back(d.mark.line);
  if (std::find(error_lines.begin(), error_lines.end(), 0) != error_lines.end()) return;
  SandboxSource clean = sandbox;
  clean.processes = std::move(clean.processes_partial);
  clean.processes_partial.reset();
  for (std::size_t i = 0; i < starts.size(); ++i) {
    int from = starts[i].first;
    int to = i + 1 < starts.size() ? starts[i + 1].first : std::numeric_limits<int>::max();
    bool broken = from <= 0 || std::any_of(error_lines.begin(), error_lines.end(),
                                           [&](int line) { return line >= from && line < to; });
    if (broken) clean.processes->value.erase(starts[i].second);
  }
  auto* plans = std::exchange(plans_, nullptr);
  check_sandbox(clean);
  plans_ = plans;
}

// A sandbox config with errors builds no plan, but its process entries'
// container configs can still be read and checked on their own, as far
// as the keys that locate them (image-dir, image-dir-levels) decoded:
// one broken key must not hide the errors of every container under it.
void TreeChecker::check_containers_of_broken_sandbox(const SandboxSource& sandbox) {
  const auto& partial = *sandbox.partial;
  for (const char* key : {".image-dir", ".image-dir-levels"})
    if (partial.marks.has(key) && !decoded_as_written(partial, key)) return;
  const auto& sb = partial.value;
  if (sb.image_dir.empty() || sb.image_dir.front() != '/') return;
  for (const auto& [child, entry] : sandbox.processes->value) {
    auto components = image_components(entry.image);
    if (entry.config.empty() || entry.config.front() != '/' || !components ||
        components->size() != sb.image_dir_levels)
      continue;  // reported with the process config; never read through it
    std::string below = join_components(*components).substr(1);
    std::string image_root = host(join_path(sb.image_dir, below));
    std::string display = join_path(image_root, entry.config.substr(1));
    if (!checked_alone_.insert(display).second) continue;
    struct stat st {};
    if (::stat(image_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (auto container = load_container(image_root, entry.config, display, diags_, sources_))
      check_container_rules(*container, report_);
  }
}

// Whether the value of `key` in a config with errors is the one written:
// a scalar whose value failed to decode keeps its default, which names
// nothing, and its error sits on the key's line.
bool TreeChecker::decoded_as_written(const Loaded<SandboxCodec>& doc, std::string_view key) const {
  const int line = doc.marks.find(key).line;
  return std::none_of(diags_.items().begin(), diags_.items().end(), [&](const Diagnostic& d) {
    return d.severity == Severity::Error && d.file == doc.file && d.mark.line == line;
  });
}

void TreeChecker::check_entry(const SandboxSource& sandbox, const std::string& child,
                              const ProcessEntry& entry) {
  EntryContext e{sandbox, child, entry, {}, {}};
  const auto& sb = sandbox.config->value;
  std::size_t errors_before = report_.errors();
  entry_errors_before_ = errors_before;

  // The name ends up in the state dir path, the knot's --name, cgroup
  // scopes, metric labels and log lines: `/`, `..`, spaces and newlines
  // would escape or split them. Checking goes on, but no plan is kept.
  if (!names::valid_name(child))
    perror(e, "", Code::BadName,
           "process name " + quote(child) + " must match ^[\\w-]+$: letters, digits, _ and - only");

  bool config_ok = !entry.config.empty() && entry.config.front() == '/';
  if (!config_ok)
    perror(e, ".config", Code::ConfigPath,
           "Config path must be absolute (got " + quote(entry.config) + ")");
  auto components = image_components(entry.image);
  bool image_ok = components && components->size() == sb.image_dir_levels;
  if (!image_ok)
    perror(e, ".image", Code::ImagePath,
           "Image " + quote(entry.image) + " in sandbox " + quote(sandbox.name) + ", process " +
               quote(child) + " is invalid: it must be exactly " +
               std::to_string(sb.image_dir_levels) +
               " path component(s) below image-dir, without a leading /, . or ..");
  if (!config_ok || !image_ok) return;  // never read through an unsafe path

  std::string below = join_components(*components).substr(1);
  e.image_root = join_path(sb.image_dir, below);
  e.image_on_disk = host(e.image_root);
  if ((options_.inspect_images || options_.offline) && !image_present(e)) return;
  std::string display = join_path(e.image_on_disk, entry.config.substr(1));
  auto container = load_container(e.image_on_disk, entry.config, display, diags_, sources_,
                                  BeneathDir{image_dir_fd_, below});
  if (!container) return;
  if (options_.effective_containers) (*options_.effective_containers)[display] = container->value;
  check_container_rules(*container, report_);
  const auto& c = container->value;
  const auto& cfile = container->file;
  auto cmark = [&](const std::string& path) { return container->marks.find(path); };
  if ((c.apparmor_profile || c.selinux_label) && !sb.allow_lsm_override)
    report_.error(cfile, cmark(c.apparmor_profile ? ".apparmor-profile" : ".selinux-label"),
                  Code::Lsm,
                  "sandbox " + quote(sandbox.name) +
                      " does not let containers choose their LSM label (allow-lsm-override: "
                      "false)");
  else
    check_lsm_labels(cfile, container->marks, c.apparmor_profile, c.selinux_label);

  if (!kinds_compatible(c.kind, entry.kind))
    report_.error(cfile, cmark(".kind"), Code::Kind,
                  "Container type mismatch: the container is " + kind_text(c.kind) +
                      " but process " + quote(child) + " is " + kind_text(entry.kind));

  auto uid = check_ids(e, *container, true);
  auto gid = check_ids(e, *container, false);
  check_variables(e, *container);
  check_secrets(e, *container);
  check_cgroup_controls(sandbox, *container);
  if (options_.max_fileno_limit && c.fileno_limit > *options_.max_fileno_limit)
    report_.warning(cfile, cmark(".fileno-limit"), Code::FilenoLimit,
                    "fileno-limit " + std::to_string(c.fileno_limit) + " of process " +
                        quote(child) + " is more than a knot can set here (" +
                        std::to_string(*options_.max_fileno_limit) + ", " +
                        options_.max_fileno_limit_reason +
                        "): its starts fail until it is lowered or the limit raised");
  const bool wanted =
      entry.kind == ProcessKind::Daemon ? options_.plans_for_daemons : options_.plans_for_commands;
  const bool keep = plans_ && wanted;
  const bool inspect = options_.inspect_images && report_.errors() == errors_before;
  auto mounts = check_volumes(e, *container, keep || inspect);

  const bool bridged = sb.bridged_network.has_value();
  std::uint64_t count = entry.kind == ProcessKind::Daemon ? entry.instances : 1;
  if (!entry.ip_addresses.empty() && entry.ip_addresses.size() < count &&
      entry.kind == ProcessKind::Daemon)
    perror(e, ".ip-addresses", Code::IpAddress,
           "Instance no " + std::to_string(entry.ip_addresses.size()) + ", but there's only " +
               std::to_string(entry.ip_addresses.size()) + " ip addresses");
  if (bridged) {
    const auto& net = sb.bridged_network->network;
    if (entry.kind == ProcessKind::Daemon && entry.ip_addresses.size() < count &&
        entry.ip_addresses.empty())
      perror(e, "", Code::IpAddress,
             child + ": no IP address specified (bridged-network needs one per instance)");
    for (std::size_t i = 0; i < entry.ip_addresses.size(); ++i) {
      const auto& ip = entry.ip_addresses[i];
      if (ip.v6 != net.address.v6 || !scalars::network_contains(net, ip))
        perror(e, key_path(".ip-addresses", std::to_string(i)), Code::IpAddress,
               child + ": invalid ip " + scalars::format_ip(ip) + " (not inside network " +
                   scalars::format_network(net) + ")");
    }
  }

  bool image_refused = false;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::optional<scalars::IpAddress> ip;
    if (i < entry.ip_addresses.size()) ip = entry.ip_addresses[i];
    // A single instance re-derived from its identity keeps its own index.
    std::uint64_t index = options_.instance_index.value_or(i);
    std::string name =
        InstanceName{sandbox.name, child, entry.kind != ProcessKind::Daemon,
                     entry.kind == ProcessKind::Daemon ? index : options_.command_pid}
            .format();
    const bool inspect_this = inspect && i == 0 && report_.errors() == errors_before;
    inspection_only_ = inspect_this && !keep;
    auto plan = instantiate(e, *container, name, index, ip, uid, gid, mounts, keep || inspect_this);
    inspection_only_ = false;
    // An image-wide finding is reported once per image, so an entry can
    // be refused without a diagnostic of its own: it keeps no plan.
    if (plan && inspect_this && !report_image_findings(e, *container, *plan)) image_refused = true;
    if (plan && inspect_this && !cgroup_placeable(*container, *plan)) image_refused = true;
    if (plan && keep) plans_->plan(std::move(*plan));
  }
  if (keep) plans_->entry_done(report_.errors() == errors_before && !image_refused);
}

}  // namespace lithos::policy::check_internal

namespace lithos::policy {

void check_tree_into(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
                     Sources* sources, PlanSink& sink) {
  check_internal::TreeChecker(tree, options, diags, sources, &sink).run();
}

namespace {

// Keeps every valid entry's plans in a vector, in check order.
class VectorSink final : public PlanSink {
 public:
  explicit VectorSink(std::vector<InstancePlan>& plans)
      : plans_(plans), entry_start_(plans.size()) {}
  void plan(InstancePlan&& plan) override { plans_.push_back(std::move(plan)); }
  void entry_done(bool keep) override {
    if (!keep)
      plans_.erase(plans_.begin() + static_cast<std::ptrdiff_t>(entry_start_), plans_.end());
    entry_start_ = plans_.size();
  }

 private:
  std::vector<InstancePlan>& plans_;
  std::size_t entry_start_;
};

}  // namespace

void check_tree(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
                Sources* sources, std::vector<InstancePlan>* plans) {
  if (plans == nullptr) {
    check_internal::TreeChecker(tree, options, diags, sources, nullptr).run();
    return;
  }
  VectorSink sink(*plans);
  check_tree_into(tree, options, diags, sources, sink);
}

}  // namespace lithos::policy
