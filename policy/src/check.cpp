#include "lithos/policy/check.hpp"

#include "lithos/crypt/crypt.hpp"

#include "lithos/policy/image_inspect.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/names.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace lithos::policy {

struct PlanBuilder {
  static InstancePlan make() { return InstancePlan{}; }
};

namespace {

using schema::field_path;
using schema::key_path;
using schema::quote;

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

// quote() with control characters escaped: a rejected name may hold a
// newline, which would split the diagnostic's line.
std::string quote_name(std::string_view name) {
  std::string out = "\"";
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// Ports that socket activation assigns: variable name -> fd, in byte order.
std::map<std::string, std::uint32_t> activation_fds(const ContainerConfig& c) {
  std::map<std::string, std::uint32_t> out;
  std::uint32_t fd = 3;
  for (const auto& [name, var] : c.variables) {
    if (auto* tcp = std::get_if<TcpPortVariable>(&var);
        tcp && tcp->activation == Activation::Systemd)
      out[name] = fd++;
  }
  return out;
}

// "size=%llu,mode=0%04o" without printf.
std::string tmpfs_data(std::uint64_t size, std::uint32_t mode) {
  char digits[32];
  std::string out = "size=";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, size).ptr);
  out += ",mode=0";
  char* end = std::to_chars(digits, digits + sizeof digits, mode, 8).ptr;
  const auto width = static_cast<std::size_t>(end - digits);
  if (width < 4) out.append(4 - width, '0');
  out.append(digits, end);
  return out;
}

// docs/hardening.md "Landlock": derived from the mounts and sockets already
// in the plan, so it can only allow what the plan gives the container.
// `variable_ports`: values of !TcpPort variables, which a container may bind
// itself (the example's httpd -p @{port}); allow-tcp-ports already covers them.
LandlockPlan landlock_plan(const SandboxConfig& sb, const InstancePlan& plan,
                           const std::vector<std::uint16_t>& variable_ports) {
  LandlockPlan out;
  if (!sb.landlock) return out;
  out.enabled = true;
  std::set<std::string> writable;
  for (const auto& m : plan.mounts)
    if (m.kind != MountPlan::Kind::BindReadOnly) writable.insert(m.target);
  out.writable.assign(writable.begin(), writable.end());
  out.write_files = {"/dev", "/proc"};
  // Bridged: the container's own network namespace has nothing of the
  // host's to bind, so bind stays unrestricted there.
  out.restrict_bind = !plan.network.has_value();
  if (out.restrict_bind) {
    std::set<std::uint16_t> ports(variable_ports.begin(), variable_ports.end());
    for (const auto& s : plan.sockets) ports.insert(s.port);
    out.bind_ports.assign(ports.begin(), ports.end());
  }
  out.scope_abstract_unix = true;
  out.scope_signals = true;
  return out;
}

constexpr std::string_view kActivationNames[] = {"LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"};

void check_templates(const Loaded<ContainerCodec>& doc, Reporter& report) {
  const auto& c = doc.value;
  // `path_of` makes the mark path, only needed for a message.
  auto check = [&](std::string_view text, const auto& path_of, bool environ_value) {
    if (environ_value && text == kPidVariable) return;
    if (text.find("@{") == std::string_view::npos) return;  // literal text only
    for (const auto& part : scalars::parse_template(text)) {
      if (!part.is_variable) continue;
      if (c.variables.count(part.text)) continue;
      if (std::string_view(part.text) == "lithos:pid") {
        report.error(doc.file, doc.marks.find(path_of()), Code::Template,
                     "lithos:pid variable can only be used in environment as a sole value");
      } else if (!is_builtin_variable(part.text)) {
        std::vector<std::string> known{"lithos:name", "lithos:config_filename"};
        for (const auto& declared : c.variables) known.push_back(declared.first);
        std::string hint = schema::nearest_name(part.text, known);
        report.error(doc.file, doc.marks.find(path_of()), Code::Template,
                     "undefined variable " + quote(part.text) +
                         (hint.empty() ? " (declare it in `variables`)"
                                       : " (did you mean " + quote(hint) +
                                             "? or declare it in `variables`)"));
      }
    }
  };
  for (std::size_t i = 0; i < c.arguments.size(); ++i)
    check(
        c.arguments[i], [&] { return key_path(".arguments", std::to_string(i)); }, false);
  // Plain names, not structured bindings: clang 14 (the fuzz build) cannot
  // capture those in a lambda.
  for (const auto& entry : c.environ) {
    const std::string& name = entry.first;
    check(
        entry.second, [&] { return key_path(".environ", name) + ":value"; }, true);
  }
  for (const auto& entry : c.tcp_ports) {
    const std::string& key = entry.first;
    check(
        key, [&] { return key_path(".tcp-ports", key); }, false);
  }
}

void check_activation(const Loaded<ContainerCodec>& doc, Reporter& report) {
  const auto& c = doc.value;
  auto fds = activation_fds(c);
  if (fds.empty()) return;
  for (auto name : kActivationNames) {
    std::string n(name);
    if (c.environ.count(n))
      report.error(doc.file, doc.marks.find(key_path(".environ", n)), Code::Activation,
                   n + " is set by socket activation and must not be in environ");
    if (c.secret_environ.count(n))
      report.error(doc.file, doc.marks.find(key_path(".secret-environ", n)), Code::Activation,
                   n + " is set by socket activation and must not be in secret-environ");
  }
  for (const auto& [key, port] : c.tcp_ports) {
    for (const auto& [var, fd] : fds) {
      if (port.fd == fd)
        report.error(
            doc.file, doc.marks.find(key_path(".tcp-ports", key) + ".fd"), Code::Activation,
            "fd " + std::to_string(fd) + " is used by socket activation of variable " + quote(var));
    }
  }
}

// "MAJOR:MINOR" of io-max, as the kernel prints device numbers.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_device_numbers(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view digits) -> std::optional<std::uint32_t> {
    std::uint32_t value = 0;
    if (digits.empty() || digits.size() > 10) return std::nullopt;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return value;
  };
  auto major = number(text.substr(0, colon));
  auto minor = number(text.substr(colon + 1));
  if (!major || !minor) return std::nullopt;
  return std::pair{*major, *minor};
}

// The controller each new cgroup control needs (docs/cgroups.md); the
// controls written since the original, which are refused rather than
// skipped when they cannot be applied.
struct CgroupControl {
  const char* key;
  const char* controller;
  bool (*set)(const ContainerConfig&);
};
constexpr CgroupControl kCgroupControls[] = {
    {"memory-high", "memory", [](const ContainerConfig& c) { return c.memory_high.has_value(); }},
    {"memory-low", "memory", [](const ContainerConfig& c) { return c.memory_low.has_value(); }},
    {"memory-oom-group", "memory", [](const ContainerConfig& c) { return c.memory_oom_group; }},
    {"cpu-quota-us", "cpu", [](const ContainerConfig& c) { return c.cpu_quota_us.has_value(); }},
    {"io-weight", "blkio", [](const ContainerConfig& c) { return c.io_weight.has_value(); }},
    {"io-max", "blkio", [](const ContainerConfig& c) { return !c.io_max.empty(); }},
};

void check_container_rules(const Loaded<ContainerCodec>& doc, Reporter& report) {
  check_activation(doc, report);
  check_templates(doc, report);
  const auto& c = doc.value;
  for (const auto& [mp, volume] : c.volumes) {
    if (!absolute_clean(mp))
      report.error(doc.file, doc.marks.find(key_path(".volumes", mp)), Code::BadPath,
                   "volume mount point " + quote(mp) + " must be absolute without . or ..");
  }
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> devices;
  for (const auto& [device, limits] : c.io_max) {
    Mark where = doc.marks.find(key_path(".io-max", device));
    auto numbers = parse_device_numbers(device);
    if (!numbers)
      report.error(doc.file, where, Code::CgroupLimit,
                   "io-max device " + quote(device) +
                       " must be MAJOR:MINOR, the numbers of a block device (lsblk shows them)");
    else if (auto [seen, fresh] = devices.emplace(*numbers, device); !fresh)
      report.error(
          doc.file, where, Code::CgroupLimit,
          "io-max device " + quote(device) + " is the same device as " + quote(seen->second));
    if (limits == IoLimits{})
      report.error(doc.file, where, Code::CgroupLimit,
                   "io-max device " + quote(device) +
                       " has no limit: give read-bps, write-bps, read-iops or write-iops");
  }
  if (!absolute_clean(c.workdir))
    report.error(doc.file, doc.marks.find(".workdir"), Code::BadPath,
                 "workdir " + quote(c.workdir) + " must be absolute without . or ..");
  if (c.secret_environ_file && !c.secret_environ.empty())
    report.error(doc.file, doc.marks.find(".secret-environ-file"), Code::SecretConfig,
                 "secret-environ and secret-environ-file settings are mutually exclusive");
  for (const auto& [name, values] : c.secret_environ) {
    for (const auto& value : values) {
      if (auto parsed = crypt::parse_v2(value); !parsed) {
        report.error(doc.file, doc.marks.find(key_path(".secret-environ", name) + ":value"),
                     Code::BadSecret, "secret " + quote(name) + ": " + parsed.error());
      }
    }
  }
}

class TreeChecker {
 public:
  TreeChecker(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
              Sources* sources, std::vector<InstancePlan>* plans)
      : tree_(tree),
        options_(options),
        diags_(diags),
        report_(diags),
        sources_(sources),
        plans_(plans) {}

  void run() {
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

 private:
  void check_sandbox(const SandboxSource& sandbox) {
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
                    "sandbox name " + quote_name(sandbox.name) +
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
    // Room for one plan per entry (most have one instance), so that the
    // plans are not moved again and again as the vector grows.
    if (plans_ && !options_.only_child)
      plans_->reserve(plans_->size() + sandbox.processes->value.size());
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
  void check_lsm_labels(const std::string& file, const schema::MarkTable& marks,
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
  void check_after_setup(const SandboxSource& sandbox) {
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
  std::optional<std::string> helper_program(const std::string& program) const {
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
  void check_map_entry(const SandboxSource& sandbox, std::string_view which, std::size_t i) {
    const auto& map =
        which == "uid" ? sandbox.config->value.uid_map : sandbox.config->value.gid_map;
    const auto& e = map[i];
    std::string path = key_path("." + std::string(which) + "-map", std::to_string(i));
    if (std::uint64_t{e.inside} + e.count > 0x100000000ULL ||
        std::uint64_t{e.outside} + e.count > 0x100000000ULL)
      report_.error(sandbox.config->file, sandbox.config->marks.find(path), Code::IdMap,
                    std::string(which) + "-map entry overflows 32-bit ids");
  }

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

  // A process config with errors: the entries without an error of their
  // own (none on the lines from their name to the next entry's) are
  // checked as if the file held only them, and keep no plan: a file with
  // errors starts nothing (the tree keeps what runs, docs/tree.md).
  void check_clean_entries(const SandboxSource& sandbox) {
    const auto& partial = *sandbox.processes_partial;
    std::vector<std::pair<int, std::string>> starts;
    for (const auto& entry : partial.value)
      starts.emplace_back(partial.marks.find(key_path("", entry.first)).line, entry.first);
    std::sort(starts.begin(), starts.end());
    std::vector<int> error_lines;
    for (const auto& d : diags_.items())
      if (d.severity == Severity::Error && d.file == partial.file)
        error_lines.push_back(d.mark.line);
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
  void check_containers_of_broken_sandbox(const SandboxSource& sandbox) {
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
  bool decoded_as_written(const Loaded<SandboxCodec>& doc, std::string_view key) const {
    const int line = doc.marks.find(key).line;
    return std::none_of(diags_.items().begin(), diags_.items().end(), [&](const Diagnostic& d) {
      return d.severity == Severity::Error && d.file == doc.file && d.mark.line == line;
    });
  }

  void check_entry(const SandboxSource& sandbox, const std::string& child,
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
             "process name " + quote_name(child) +
                 " must match ^[\\w-]+$: letters, digits, _ and - only");

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
    const bool wanted = entry.kind == ProcessKind::Daemon ? options_.plans_for_daemons
                                                          : options_.plans_for_commands;
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

    std::vector<InstancePlan> built;
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
      auto plan =
          instantiate(e, *container, name, index, ip, uid, gid, mounts, keep || inspect_this);
      inspection_only_ = false;
      // An image-wide finding is reported once per image, so an entry can
      // be refused without a diagnostic of its own: it keeps no plan.
      if (plan && inspect_this && !report_image_findings(e, *container, *plan))
        image_refused = true;
      if (plan && inspect_this && !cgroup_placeable(*container, *plan)) image_refused = true;
      if (plan && keep) built.push_back(std::move(*plan));
    }
    if (keep && report_.errors() == errors_before && !image_refused)
      for (auto& p : built) plans_->push_back(std::move(p));
  }

  // An absent or unreadable image is one error per sandbox and image, on
  // the first entry that names it; its entries are not checked further.
  bool image_present(const EntryContext& e) {
    auto key = e.sandbox.name + "\n" + e.image_root;
    auto known = image_present_.find(key);
    if (known != image_present_.end()) return known->second;
    struct stat st {};
    std::string problem;
    if (::stat(e.image_on_disk.c_str(), &st) != 0)
      problem = errno == ENOENT ? " does not exist (not built or not unpacked yet)"
                                : " cannot be read (" + std::string(std::strerror(errno)) + ")";
    else if (!S_ISDIR(st.st_mode))
      problem = " is not a directory";
    if (!problem.empty() && options_.offline)
      report_.add(Severity::Note, e.sandbox.processes->file, pmark(e, ".image"), Code::Image,
                  "image " + e.image_on_disk + problem +
                      ": its container config is not checked (--offline)");
    else if (!problem.empty())
      perror(e, ".image", Code::Image, "image " + e.image_on_disk + problem);
    return image_present_.emplace(key, problem.empty()).first->second;
  }

  // The controllers of one plan, when they are not the master's list (the
  // `pids` that `pids-limit` adds), and the controls it sets, asked of the
  // host like the master's. One question per distinct set.
  bool cgroup_placeable(const Loaded<ContainerCodec>& doc, const InstancePlan& plan) {
    if (!plan.cgroup || !options_.cgroup_refusal) return true;
    const auto& master = tree_.master->value;
    const bool master_controllers =
        plan.cgroup->controllers == effective_cgroup_controllers(master);
    std::string question;
    for (const auto& controller : plan.cgroup->controllers) question += controller + ",";
    for (const auto& control : kCgroupControls)
      if (control.set(doc.value)) question += std::string(";") + control.key;
    for (const auto& device : plan.cgroup->io_max)  // each is looked for
      question += ";" + std::to_string(device.major) + ":" + std::to_string(device.minor);
    if (master_controllers && question.find(';') == std::string::npos) return true;
    auto known = cgroup_refusals_.find(question);
    if (known == cgroup_refusals_.end())
      known = cgroup_refusals_.emplace(question, options_.cgroup_refusal(*plan.cgroup)).first;
    if (!known->second) return true;
    const auto& refused = *known->second;
    if (refused.key.empty()) {
      if (master_controllers) return false;  // reported on the master config
      Mark mark = doc.marks.has(".pids-limit") ? doc.marks.find(".pids-limit") : Mark{};
      report_.error(doc.file, mark, Code::Cgroup,
                    "pids-limit needs the pids controller, and instances cannot be placed in "
                    "cgroups with it on this host: " +
                        refused.why);
      return false;
    }
    report_.error(doc.file, doc.marks.find("." + refused.key), Code::Cgroup,
                  refused.key + " cannot be applied on this host: " + refused.why);
    return false;
  }

  // The new cgroup controls need their controller among those joined, and
  // every limit must stay within the sandbox's cgroup-ceilings.
  void check_cgroup_controls(const SandboxSource& sandbox, const Loaded<ContainerCodec>& doc) {
    const auto& master = tree_.master->value;
    const auto& c = doc.value;
    auto mark = [&](const std::string& key) {
      return doc.marks.has("." + key) ? doc.marks.find("." + key) : Mark{};
    };
    const auto controllers = effective_cgroup_controllers(master);
    for (const auto& control : kCgroupControls) {
      if (!control.set(c)) continue;
      std::string controller = control.controller;
      auto listed = [&](std::string_view name) {
        return std::find(controllers.begin(), controllers.end(), name) != controllers.end();
      };
      if (!master.cgroup_name)
        report_.warning(doc.file, mark(control.key), Code::Cgroup,
                        std::string(control.key) +
                            " has no effect: the master config disables cgroups (cgroup-name: "
                            "null)");
      else if (!listed(controller) && !(controller == "blkio" && listed("io")))
        report_.error(doc.file, mark(control.key), Code::Cgroup,
                      std::string(control.key) + " needs the " + controller +
                          " controller, which the master's cgroup-controllers does not list");
    }

    const auto& ceilings = sandbox.config->value.cgroup_ceilings;
    auto within = [&](const char* key, const std::optional<std::uint64_t>& ceiling,
                      std::optional<std::uint64_t> asked, const std::string& asked_text) {
      if (!ceiling || (asked && *asked <= *ceiling)) return;
      report_.error(doc.file, mark(key), Code::CgroupLimit,
                    std::string(key) + " " + asked_text + " is more than sandbox " +
                        quote(sandbox.name) + " allows (cgroup-ceilings: " +
                        std::string(key == std::string_view("cpu-quota-us") ? "cpu-percent" : key) +
                        " " + std::to_string(*ceiling) + ")");
    };
    auto number = [](std::optional<std::uint64_t> v, const char* unset) {
      return v ? std::to_string(*v) : std::string(unset);
    };
    constexpr auto kUnlimited = static_cast<std::uint64_t>(0x7fffffffffffffffULL);
    std::optional<std::uint64_t> memory_limit;
    if (c.memory_limit < kUnlimited) memory_limit = c.memory_limit;
    within("memory-limit", ceilings.memory_limit, memory_limit,
           memory_limit ? std::to_string(c.memory_limit) : "(unset: no limit)");
    // memory-limit caps the throttling point too: a lower one meets the
    // ceiling without memory-high (which a v1 host cannot apply).
    std::optional<std::uint64_t> high = c.memory_high;
    if (memory_limit && (!high || *memory_limit < *high)) high = memory_limit;
    within("memory-high", ceilings.memory_high, high,
           c.memory_high  ? std::to_string(*c.memory_high)
           : memory_limit ? "(unset: memory-limit " + std::to_string(*memory_limit) + ")"
                          : "(unset: no limit)");
    within("memory-low", ceilings.memory_low, c.memory_low.value_or(0),
           number(c.memory_low, "(unset: 0)"));
    within("cpu-shares", ceilings.cpu_shares, c.cpu_shares, std::to_string(c.cpu_shares));
    std::optional<std::uint64_t> percent;
    if (c.cpu_quota_us) {
      // Rounded up: a quota of 150.5% of one CPU is more than 150%.
      // In two parts: quota × 100 can overflow 64 bits.
      const std::uint64_t period = c.cpu_period_us;
      percent =
          *c.cpu_quota_us / period * 100 + (*c.cpu_quota_us % period * 100 + period - 1) / period;
    }
    within("cpu-quota-us", ceilings.cpu_percent, percent,
           c.cpu_quota_us
               ? std::to_string(*c.cpu_quota_us) + " per " + std::to_string(c.cpu_period_us) +
                     " (" + std::to_string(*percent) + "% of one CPU)"
               : "(unset: no quota)");
    within("pids-limit", ceilings.pids_limit, c.pids_limit,
           number(c.pids_limit, "(unset: no limit)"));
    within("io-weight", ceilings.io_weight, c.io_weight.value_or(100),
           number(c.io_weight, "(unset: 100)"));
  }

  // Findings of image_inspect.hpp, each on the key that causes it. False
  // when one of them is an error (reported now or already, for the image).
  bool report_image_findings(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                             const InstancePlan& plan) {
    const auto& sandbox = *e.sandbox.config;
    auto on_container = [&](const std::string& key, Code code, std::string message) {
      // A defaulted key is not in the file: point at the config as a whole.
      Mark mark = doc.marks.has(key) ? doc.marks.find(key) : Mark{};
      report_.error(doc.file, mark, code, std::move(message));
    };
    bool startable = true;
    for (auto& f : inspect_plan_files(plan_under_root(plan, options_.host_root), &host_lookups_)) {
      // Offline, what lies outside the image is not there to look at.
      const bool on_host = f.subject == ImageSubject::VolumeSource ||
                           f.subject == ImageSubject::ResolvSource ||
                           f.subject == ImageSubject::HostsSource ||
                           f.subject == ImageSubject::Bridge || f.subject == ImageSubject::Secrets;
      if (on_host && options_.offline) {
        report_.add(Severity::Note, f.subject == ImageSubject::Secrets ? doc.file : sandbox.file,
                    {}, Code::HostFile, "not verified (--offline): " + f.message);
        continue;
      }
      if (!f.warning) startable = false;
      switch (f.subject) {
        case ImageSubject::Image:
          // Once per sandbox and image, like an absent one (image_present).
          if (image_reported_.insert(e.sandbox.name + "\n" + e.image_root + "\n" + f.message)
                  .second)
            perror(e, ".image", Code::Image, std::move(f.message));
          break;
        case ImageSubject::Executable:
          on_container(".executable", Code::Executable, std::move(f.message));
          break;
        case ImageSubject::Workdir:
          on_container(".workdir", Code::Workdir, std::move(f.message));
          break;
        case ImageSubject::VolumeTarget:
        case ImageSubject::VolumeSource: {
          const std::string& volume = plan.mounts[f.volume].volume;
          std::string key = key_path(".volumes", volume);
          if (doc.marks.has(key)) {
            report_.error(doc.file, doc.marks.find(key), Code::Volume, std::move(f.message));
          } else {  // a sandbox's readonly-paths/writable-paths entry
            report_.error(doc.file, {}, Code::Volume, std::move(f.message));
          }
          break;
        }
        case ImageSubject::StdoutFile:
          on_container(".stdout-stderr-file", Code::StdoutFile, std::move(f.message));
          break;
        case ImageSubject::ResolvConf:
          on_container(".resolv-conf.mount", Code::Image, std::move(f.message));
          break;
        case ImageSubject::Hosts:
          on_container(".hosts-file.mount", Code::Image, std::move(f.message));
          break;
        case ImageSubject::ResolvSource:
          report_.error(sandbox.file, sandbox.marks.find(".resolv-conf"), Code::HostFile,
                        std::move(f.message));
          break;
        case ImageSubject::HostsSource:
          report_.error(sandbox.file, sandbox.marks.find(".hosts-file"), Code::HostFile,
                        std::move(f.message));
          break;
        case ImageSubject::Secrets: {
          const char* key =
              doc.marks.has(".secret-environ") ? ".secret-environ" : ".secret-environ-file";
          on_container(key, Code::SecretConfig, std::move(f.message));
          break;
        }
        case ImageSubject::Bridge:
          report_.warning(sandbox.file, sandbox.marks.find(".bridged-network.bridge"), Code::Bridge,
                          std::move(f.message));
          break;
      }
    }
    return startable;
  }

  // uid/gid rules (docs/configs.md, "Users, groups and id maps"); returns the id (inside the
  // container) when one is defined.
  std::optional<std::uint32_t> check_ids(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                         bool user) {
    const auto& sb = e.sandbox.config->value;
    const auto& sfile = e.sandbox.config->file;
    const auto& c = doc.value;
    const char* id_word = user ? "uid" : "gid";
    const char* Which = user ? "User" : "Group";
    const Code code = user ? Code::UserId : Code::GroupId;
    const auto& cmap = user ? c.uid_map : c.gid_map;
    const auto& smap = user ? sb.uid_map : sb.gid_map;
    const auto& allow = user ? sb.allow_users : sb.allow_groups;
    std::string allow_key = user ? "allow-users" : "allow-groups";
    std::string map_key = user ? "uid-map" : "gid-map";

    std::optional<std::uint32_t> id = user ? c.user_id : c.group_id;
    // Where the id was written; looked up only for a message (marks are
    // recorded on demand).
    const std::string* id_file = &doc.file;
    const schema::MarkTable* id_marks = &doc.marks;
    std::string_view id_path = user ? ".user-id" : ".group-id";
    if (!id) {
      if (user && sb.default_user) {
        id = sb.default_user;
        id_file = &sfile;
        id_marks = &e.sandbox.config->marks;
        id_path = ".default-user";
      } else if (!user) {
        id = sb.default_group;
        id_file = &sfile;
        id_marks = &e.sandbox.config->marks;
        id_path = ".default-group";
      }
    }
    auto id_mark = [&] { return id_marks->find(id_path); };
    if (!cmap.empty() && !smap.empty())
      report_.error(doc.file, doc.marks.find("." + map_key), Code::IdMap,
                    std::string("Can't have ") + id_word +
                        "_maps in both the sandbox and a container itself");
    for (std::size_t i = 0; i < cmap.size(); ++i) {
      if (!span_in_one_range(cmap[i], allow)) {
        const auto& m = cmap[i];
        report_.error(
            doc.file, doc.marks.find(key_path("." + map_key, std::to_string(i))), Code::IdMap,
            std::string("Bad ") + id_word + " mapping: host " + id_word + "s [" +
                std::to_string(m.outside) + ", " +
                std::to_string(std::uint64_t{m.outside} + m.count) + ") are not inside a single " +
                allow_key + " range of the sandbox (" + format_ranges(allow) + ")");
      }
    }
    if (!id) {
      report_.error(doc.file, {1, 1}, code,
                    "Neither user id is specified nor default is found (set user-id here or "
                    "default-user in sandbox " +
                        quote(e.sandbox.name) + ")");
      return std::nullopt;
    }
    std::string idtext = std::string(id_word) + " " + std::to_string(*id);
    if (!cmap.empty()) {
      if (!map_contains_inside(cmap, *id))
        report_.error(*id_file, id_mark(), code,
                      std::string(Which) + " is not in mapped range (" + idtext +
                          " inside the container's user namespace; the container " + map_key +
                          " maps " + format_map(cmap) + ")");
    } else {
      const bool sandbox_ns = !smap.empty();
      if (!ranges_contain(allow, *id))
        report_.error(*id_file, id_mark(), code,
                      std::string(Which) + " is not in allowed range (" + idtext +
                          (sandbox_ns ? " inside the sandbox's user namespace" : " on the host") +
                          "; sandbox " + allow_key + ": " + format_ranges(allow) + ")");
      if (sandbox_ns && !map_to_outside(smap, *id))
        report_.error(*id_file, id_mark(), code,
                      std::string(Which) + " is not in mapped range (" + idtext +
                          " inside the sandbox's user namespace; the sandbox " + map_key +
                          " maps " + format_map(smap) + ")");
    }
    return id;
  }

  void check_variables(const EntryContext& e, const Loaded<ContainerCodec>& doc) {
    const auto& sb = e.sandbox.config->value;
    const bool bridged = sb.bridged_network.has_value();
    for (const auto& declared : doc.value.variables) {
      const std::string& name = declared.first;
      const Variable& var = declared.second;
      auto it = e.entry.variables.find(name);
      if (it == e.entry.variables.end()) {
        perror(e, ".variables", Code::Variable,
               "Variable " + quote(name) + " is undefined (declared in " + doc.file + ")");
        continue;
      }
      const std::string& value = it->second;
      auto where = [&] { return key_path(".variables", name) + ":value"; };
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, TcpPortVariable>) {
              auto port = parse_port(value);
              if (!port) {
                perror(e, where(), Code::Variable,
                       "invalid TcpPort " + quote(value) + " for variable " + quote(name) +
                           ": expected a port number 0-65535");
              } else if (!bridged && !ranges_contain(sb.allow_tcp_ports, *port)) {
                perror(e, where(), Code::Port,
                       "TcpPort " + std::to_string(*port) + " (variable " + quote(name) +
                           ") is not in allowed range (sandbox allow-tcp-ports: " +
                           format_ranges(sb.allow_tcp_ports) + ")");
              }
            } else if constexpr (std::is_same_v<V, NameVariable>) {
              if (!valid_name_value(value))
                perror(e, where(), Code::Variable,
                       "invalid Name " + quote(value) + " for variable " + quote(name) +
                           ": expected one or more of A-Z a-z 0-9 - _");
            } else if constexpr (std::is_same_v<V, DottedNameVariable>) {
              if (!valid_dotted_name_value(value))
                perror(e, where(), Code::Variable,
                       "invalid DottedName " + quote(value) + " for variable " + quote(name) +
                           ": expected dot-separated names of A-Z a-z 0-9 - _, none empty or "
                           "starting/ending with -");
            } else if constexpr (std::is_same_v<V, ChoiceVariable>) {
              if (std::find(v.choices.begin(), v.choices.end(), value) == v.choices.end()) {
                std::string options;
                for (const auto& ch : v.choices)
                  options += (options.empty() ? "" : ", ") + quote(ch);
                perror(e, where(), Code::Variable,
                       "invalid value " + quote(value) + " for variable " + quote(name) +
                           ", expected one of " + options);
              }
            }
          },
          var);
    }
  }

  std::vector<std::string> allowed_namespaces(const EntryContext& e) const {
    std::vector<std::string> out = e.sandbox.config->value.secrets_namespaces;
    if (out.empty()) out.emplace_back("");
    for (const auto& ns : e.entry.extra_secrets_namespaces) out.push_back(ns);
    return out;
  }

  void check_secrets(const EntryContext& e, const Loaded<ContainerCodec>& doc) {
    const auto& sb = e.sandbox.config->value;
    const auto& c = doc.value;
    if ((!c.secret_environ.empty() || c.secret_environ_file) && !sb.secrets_private_key)
      report_.error(
          doc.file,
          doc.marks.find(c.secret_environ_file ? ".secret-environ-file" : ".secret-environ"),
          Code::SecretConfig,
          "No secrets key file defined to decode secrets (set secrets-private-key in "
          "sandbox " +
              quote(e.sandbox.name) + ")");
    if ((!c.secret_environ.empty() || c.secret_environ_file) && applied_map(sb, c, true).empty())
      // Not an error: allow-users may well be clear of host accounts. But
      // the decrypted values sit in /proc/PID/environ, readable by any host
      // process running as the same uid (docs/hardening.md).
      report_.warning(
          doc.file,
          doc.marks.find(c.secret_environ_file ? ".secret-environ-file" : ".secret-environ"),
          Code::SecretHostUid,
          "process " + quote(e.child) + " of sandbox " + quote(e.sandbox.name) +
              " gets secrets but no uid-map applies: a host account with the container's uid "
              "can read them from /proc/PID/environ (add a uid-map, or keep allow-users clear "
              "of host accounts)");
    if (c.secret_environ.empty()) return;  // nothing below to check
    auto allowed = allowed_namespaces(e);
    std::set<std::string> allowed_hashes;
    for (const auto& ns : allowed) allowed_hashes.insert(crypt::short_hash(ns));
    for (const auto& [name, values] : c.secret_environ) {
      bool any_parsed = false, any_allowed = false;
      for (const auto& value : values) {
        auto parsed = crypt::parse_v2(value);
        if (!parsed) continue;
        any_parsed = true;
        if (allowed_hashes.count(parsed->namespace_hash)) any_allowed = true;
      }
      if (any_parsed && !any_allowed) {
        std::string list;
        for (const auto& ns : allowed) list += (list.empty() ? "" : ", ") + quote(ns);
        report_.error(doc.file, doc.marks.find(key_path(".secret-environ", name) + ":value"),
                      Code::SecretNamespace,
                      "secret " + quote(name) + " is encrypted for a namespace that sandbox " +
                          quote(e.sandbox.name) + " does not allow for process " + quote(e.child) +
                          " (allowed: " + list + ")");
      }
    }
  }

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

  // The owner of a !Persistent directory created on the host, when no id
  // maps apply: it must be inside the sandbox's allow-users/allow-groups.
  bool owner_allowed(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                     const std::string& mp, std::uint32_t user, std::uint32_t group) {
    const auto& sb = e.sandbox.config->value;
    bool ok = true;
    auto check = [&](std::uint32_t id, bool is_user) {
      const auto& allow = is_user ? sb.allow_users : sb.allow_groups;
      if (ranges_contain(allow, id)) return;
      ok = false;
      const char* key = is_user ? ".user" : ".group";
      report_.error(doc.file, doc.marks.find(key_path(".volumes", mp) + key), Code::Volume,
                    std::string("!Persistent volume ") + mp + " would create a host directory " +
                        "owned by " + (is_user ? "user " : "group ") + std::to_string(id) +
                        ", which is not in sandbox " + quote(e.sandbox.name) + "'s " +
                        (is_user ? "allow-users" : "allow-groups") + " (" + format_ranges(allow) +
                        "; no uid/gid map applies)");
    };
    check(user, true);
    check(group, false);
    return ok;
  }

  struct VolumeDraft {
    MountPlan mount;
    std::string statedir_rel;  // for !Statedir: path below the state dir
  };

  // The checks always run; the drafts (for plans) are made only when kept.
  std::vector<VolumeDraft> check_volumes(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                         bool keep) {
    const auto& sb = e.sandbox.config->value;
    const auto& c = doc.value;
    const bool mapped = maps_apply(sb, c);
    std::vector<VolumeDraft> out;
    // Mark paths are built only for a message.
    auto owner = [&](std::uint32_t id, bool user, const std::string& mp,
                     std::string_view suffix) -> std::optional<std::uint32_t> {
      if (!mapped) return id;
      auto outside = map_to_outside(applied_map(sb, c, user), id);
      if (!outside)
        report_.error(doc.file, doc.marks.find(key_path(".volumes", mp) + std::string(suffix)),
                      Code::Volume,
                      std::string("Non-mapped ") + (user ? "user " : "group ") +
                          std::to_string(id) + " for volume " + mp +
                          " (not covered by the applied " + (user ? "uid-map" : "gid-map") + ")");
      return outside;
    };
    for (const auto& entry : c.volumes) {
      const std::string& mp = entry.first;
      const Volume& volume = entry.second;
      auto vpath = [&] { return key_path(".volumes", mp); };
      if (!absolute_clean(mp)) continue;  // reported by the container rules
      VolumeDraft draft;
      if (keep) {
        draft.mount.volume = mp;
        draft.mount.target = join_components(*absolute_components(mp));
      }
      bool ok = std::visit(
          [&](const auto& v) -> bool {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, ReadonlyVolume>) {
              if (!absolute_clean(v.path)) {
                report_.error(
                    doc.file, doc.marks.find(vpath()), Code::BadPath,
                    "!Readonly path " + quote(v.path) + " must be absolute without . or ..");
                return false;
              }
              auto host = resolve_virtual(sb.readonly_paths, v.path);
              if (!host) host = resolve_virtual(sb.writable_paths, v.path);
              if (!host) {
                report_.error(doc.file, doc.marks.find(vpath()), Code::Volume,
                              "Can't find volume for " + v.path +
                                  ", probably missing entry in "
                                  "readonly-paths of sandbox " +
                                  quote(e.sandbox.name));
                return false;
              }
              draft.mount.kind = MountPlan::Kind::BindReadOnly;
              draft.mount.source = *host;
              return true;
            } else if constexpr (std::is_same_v<V, PersistentVolume>) {
              if (!absolute_clean(v.path)) {
                report_.error(
                    doc.file, doc.marks.find(vpath() + ".path"), Code::BadPath,
                    "!Persistent path " + quote(v.path) + " must be absolute without . or ..");
                return false;
              }
              auto host = resolve_virtual(sb.writable_paths, v.path);
              if (!host) {
                report_.error(doc.file, doc.marks.find(vpath()), Code::Volume,
                              "Can't find volume for " + v.path +
                                  ", probably missing entry in "
                                  "writable-paths of sandbox " +
                                  quote(e.sandbox.name));
                return false;
              }
              auto u = owner(v.user, true, mp, ".user");
              auto g = owner(v.group, false, mp, ".group");
              if (!u || !g) return false;
              // Without maps the ids are host ids, and with mkdir the host
              // directory is created owned by them: an image must not hand
              // a host directory to an account the sandbox does not allow.
              if (!mapped && v.mkdir && !owner_allowed(e, doc, mp, v.user, v.group)) return false;
              draft.mount.kind = MountPlan::Kind::BindReadWrite;
              draft.mount.source = *host;
              draft.mount.create = v.mkdir;
              draft.mount.mode = v.mode;
              draft.mount.owner_uid = *u;
              draft.mount.owner_gid = *g;
              return true;
            } else if constexpr (std::is_same_v<V, StatedirVolume>) {
              std::string rel = v.path;
              if (rel.empty() || rel.front() != '/') rel = "/" + rel;
              auto parts = absolute_components(rel);
              if (!parts) {
                report_.error(doc.file, doc.marks.find(vpath() + ".path"), Code::BadPath,
                              "!Statedir path " + quote(v.path) + " must not contain . or ..");
                return false;
              }
              auto u = owner(v.user, true, mp, ".user");
              auto g = owner(v.group, false, mp, ".group");
              if (!u || !g) return false;
              draft.mount.kind = MountPlan::Kind::BindReadWrite;
              draft.statedir_rel = join_components(*parts);
              // The state dir root keeps its 01777 mode and owner (the original re-owned it).
              draft.mount.create = !parts->empty();
              draft.mount.mode = v.mode;
              draft.mount.owner_uid = *u;
              draft.mount.owner_gid = *g;
              return true;
            } else {
              // The kernel reads size=0 as "no limit": RAM bounded by nothing.
              if (v.size == 0) {
                report_.error(doc.file, doc.marks.find(vpath() + ".size"), Code::Volume,
                              "!Tmpfs volume " + mp +
                                  ": size 0 would mean unlimited; give a size in bytes (e.g. "
                                  "100Mi)");
                return false;
              }
              draft.mount.kind = MountPlan::Kind::Tmpfs;
              draft.mount.source = "tmpfs";
              draft.mount.data = tmpfs_data(v.size, v.mode);
              return true;
            }
          },
          volume);
      if (ok && keep) out.push_back(std::move(draft));
    }
    // Shortest mount point first; equal lengths keep sorted key order.
    std::stable_sort(out.begin(), out.end(), [](const VolumeDraft& a, const VolumeDraft& b) {
      return a.mount.volume.size() < b.mount.volume.size();
    });
    return out;
  }

  std::optional<InstancePlan> instantiate(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                          const std::string& name, std::uint64_t index,
                                          std::optional<scalars::IpAddress> ip,
                                          std::optional<std::uint32_t> uid,
                                          std::optional<std::uint32_t> gid,
                                          const std::vector<VolumeDraft>& volumes, bool keep) {
    const auto& master = tree_.master->value;
    const auto& sb = e.sandbox.config->value;
    const auto& c = doc.value;
    const bool bridged = sb.bridged_network.has_value();
    std::vector<std::string> errors;
    Builtins builtins{name, e.entry.config};

    // What can fail comes first: substitutions and the ports they give.
    // lithos_check keeps no plan (`keep` false), so nothing else is built.
    std::vector<std::string> argv;
    std::vector<std::string> pid_variables;
    if (keep) argv.push_back(c.executable);
    for (const auto& arg : c.arguments) {
      if (!keep) {
        substitute_into(arg, e.entry.variables, builtins, errors, nullptr);
        continue;
      }
      argv.push_back(substitute(arg, e.entry.variables, builtins, errors));
    }
    std::map<std::string, std::string> env;
    for (const auto& [key, value] : c.environ) {
      if (value == kPidVariable) {
        if (keep) pid_variables.push_back(key);
        continue;
      }
      if (!keep) {
        substitute_into(value, e.entry.variables, builtins, errors, nullptr);
        continue;
      }
      env[key] = substitute(value, e.entry.variables, builtins, errors);
    }
    std::map<std::uint16_t, SocketPlan> sockets;
    for (const auto& [key, port] : c.tcp_ports) {
      std::size_t errors_so_far = errors.size();
      std::string text = substitute(key, e.entry.variables, builtins, errors);
      if (errors.size() != errors_so_far) continue;  // the substitution error says it all
      auto number = parse_port(text);
      if (!number) {
        report_.error(doc.file, doc.marks.find(key_path(".tcp-ports", key)), Code::Port,
                      "Bad port " + quote(text) + " (from key " + quote(key) + ")");
        continue;
      }
      SocketPlan s;
      s.port = *number;
      s.host = port.host;
      s.fd = port.fd;
      s.reuse_addr = port.reuse_addr;
      s.reuse_port = port.reuse_port;
      s.set_non_block = port.set_non_block;
      s.listen_backlog = port.listen_backlog;
      s.host_side = !bridged || port.external;
      if (s.host_side && !ranges_contain(sb.allow_tcp_ports, s.port))
        report_.error(doc.file, doc.marks.find(key_path(".tcp-ports", key)), Code::Port,
                      "Port " + std::to_string(s.port) + " is not allowed for sandbox " +
                          quote(e.sandbox.name) +
                          " (allow-tcp-ports: " + format_ranges(sb.allow_tcp_ports) + ")");
      if (s.host_side && (s.fd == 1 || s.fd == 2))
        report_.error(doc.file, doc.marks.find(key_path(".tcp-ports", key) + ".fd"), Code::Port,
                      "fd 1 and fd 2 cannot receive a host-side listening socket");
      sockets[s.port] = s;
    }
    if (!errors.empty()) {
      // Every substitution failure is an undeclared reference or an
      // undefined variable, which the static rules have already reported
      // for this entry; report here only if they did not (defence in depth).
      if (report_.errors() == entry_errors_before_) {
        std::string joined;
        for (const auto& err : errors) joined += (joined.empty() ? "" : "; ") + err;
        perror(e, "", Code::Template, "Variable substitution error for " + name + ": " + joined);
      }
      return std::nullopt;
    }
    if (!keep) return std::nullopt;

    InstancePlan plan = PlanBuilder::make();
    plan.executable = c.executable;
    plan.argv = std::move(argv);
    plan.pid_variables = std::move(pid_variables);
    auto fds = activation_fds(c);
    if (!fds.empty()) {
      std::string names;
      for (const auto& [var, fd] : fds) {
        auto value = e.entry.variables.find(var);
        if (value == e.entry.variables.end()) continue;  // reported as undefined
        auto number = parse_port(value->second);
        if (!number) continue;  // reported by the variable rules
        SocketPlan s;
        s.port = *number;
        s.fd = fd;
        s.host_side = !bridged;
        sockets[s.port] = s;
        names += (names.empty() ? "" : ":") + var;
      }
      env["LISTEN_FDS"] = std::to_string(fds.size());
      env["LISTEN_FDNAMES"] = names;
      plan.pid_variables.push_back("LISTEN_PID");
    }
    for (auto& [port, s] : sockets) plan.sockets.push_back(s);
    env["LITHOS_NAME"] = name;
    env["LITHOS_CONFIG"] = e.entry.config;
    plan.environ.reserve(env.size());
    for (auto& kv : env) plan.environ.emplace_back(kv.first, std::move(kv.second));
    std::sort(plan.pid_variables.begin(), plan.pid_variables.end());
    plan.workdir = c.workdir;

    if (!c.secret_environ.empty() || c.secret_environ_file) {
      SecretsPlan secrets;
      secrets.private_key_path = sb.secrets_private_key.value_or("");
      secrets.allowed_namespaces = allowed_namespaces(e);
      secrets.values = c.secret_environ;
      if (c.secret_environ_file)
        secrets.file = c.secret_environ_file->front() == '/'
                           ? *c.secret_environ_file
                           : join_path(parent_dir(e.entry.config), *c.secret_environ_file);
      plan.secrets = std::move(secrets);
    }

    plan.fileno_limit = c.fileno_limit;
    if (master.cgroup_name) {
      CgroupPlan cg;
      cg.parent = *master.cgroup_name;
      std::string scope = name;
      std::replace(scope.begin(), scope.end(), '/', ':');
      cg.scope = scope + ".scope";
      cg.controllers = effective_cgroup_controllers(master);
      // pids-limit is new: the default list gains the controller it needs.
      if (master.cgroup_controllers.empty() && c.pids_limit) cg.controllers.push_back("pids");
      cg.memory_limit = c.memory_limit;
      cg.cpu_shares = c.cpu_shares;
      cg.pids_limit = c.pids_limit;
      cg.memory_high = c.memory_high;
      cg.memory_low = c.memory_low;
      cg.memory_oom_group = c.memory_oom_group;
      cg.cpu_quota_us = c.cpu_quota_us;
      cg.cpu_period_us = c.cpu_period_us;
      cg.io_weight = c.io_weight;
      for (const auto& [device, limits] : c.io_max) {
        auto numbers = parse_device_numbers(device);
        if (!numbers) continue;  // reported by check_container_rules
        cg.io_max.push_back(IoMaxPlan{numbers->first, numbers->second, limits});
      }
      std::sort(cg.io_max.begin(), cg.io_max.end(), [](const IoMaxPlan& a, const IoMaxPlan& b) {
        return std::pair{a.major, a.minor} < std::pair{b.major, b.minor};
      });
      plan.cgroup = std::move(cg);
    }
    plan.capabilities = kept_capabilities(sb);
    for (const auto& cap_name : plan.capabilities) {
      // The names were checked with the sandbox; one unknown here would be a
      // table mismatch, and then the capability is simply not kept.
      auto cap = names::capability(cap_name);
      if (cap && cap->number >= 0 && cap->number < 64)
        plan.capability_mask |= std::uint64_t{1} << cap->number;
    }
    // A plan built only to be inspected (image_inspect.hpp) needs no copy
    // of the program; the compile is still what reports a bad deny list.
    const SeccompPlan& seccomp = sandbox_seccomp(e, sb.seccomp.profile == SeccompProfile::Default);
    if (seccomp.enabled && seccomp.program.empty()) return std::nullopt;  // reported
    if (!inspection_only_) plan.seccomp = seccomp;

    if (bridged) {
      NetworkPlan net;
      net.bridge = sb.bridged_network->bridge;
      net.ip = ip;
      net.prefix = sb.bridged_network->network.prefix;
      net.gateway = sb.bridged_network->default_gateway;
      // Without an address only lo is brought up, and nothing runs after it.
      if (ip) {
        net.host_interface = veth_host_name(net.bridge, *ip);
        net.container_interface = net.host_interface;
        std::replace(net.container_interface.begin(), net.container_interface.end(), '_', '-');
      }
      const auto& command = sb.bridged_network->after_setup_command;
      if (ip && !command.empty()) {
        net.after_setup_command.push_back(
            helper_program(command.front()).value_or(command.front()));
        const std::map<std::string, std::string> vars{
            {"container_ip", scalars::format_ip(*ip)},
            {"container_interface", net.container_interface}};
        std::vector<std::string> unknown;  // reported with the sandbox
        for (std::size_t i = 1; i < command.size(); ++i)
          net.after_setup_command.push_back(substitute(command[i], vars, Builtins{}, unknown));
      }
      plan.network = std::move(net);
    }

    plan.restart_timeout_ms = c.restart_timeout.count;
    plan.kill_timeout_ms = c.kill_timeout.count;
    plan.restart_process_only = c.restart_process_only;
    plan.normal_exit_codes = c.normal_exit_codes;
    plan.interactive = c.interactive;
    plan.stdout_stderr_file = c.stdout_stderr_file;
    plan.stdio_log = join_path(master.stdio_log_dir, e.sandbox.name + ".log");
    plan.log_file =
        join_path(master.default_log_dir, sb.log_file.value_or(e.sandbox.name + ".log"));
    plan.log_level = sb.log_level.value_or(master.log_level);
    if (master.syslog_facility) {
      plan.syslog_facility = syslog_facility_code(*master.syslog_facility).value_or(1);
      plan.syslog_ident = master.syslog_app_name + "-" + e.sandbox.name;
    }

    plan.name = name;
    plan.sandbox = e.sandbox.name;
    plan.child = e.child;
    plan.index = index;
    plan.kind = e.entry.kind;
    plan.container_kind = c.kind;
    plan.identity = instance_identity(e.entry, ip, e.entry.kind);
    plan.image_root = e.image_root;
    plan.mount_root = mount_root_;
    plan.state_dir = join_path(state_root_, name);
    plan.devfs_dir = master.devfs_dir;
    for (const auto& v : volumes) {
      MountPlan m = v.mount;
      if (!v.statedir_rel.empty() ||
          (m.kind == MountPlan::Kind::BindReadWrite && m.source.empty())) {
        m.source = v.statedir_rel == "/" ? plan.state_dir : plan.state_dir + v.statedir_rel;
        m.confine_to = plan.state_dir;
      }
      plan.mounts.push_back(std::move(m));
    }
    std::vector<std::uint16_t> variable_ports;
    for (const auto& [var, decl] : c.variables) {
      if (!std::holds_alternative<TcpPortVariable>(decl)) continue;
      auto value = e.entry.variables.find(var);
      if (value == e.entry.variables.end()) continue;  // reported as undefined
      if (auto number = parse_port(value->second)) variable_ports.push_back(*number);
    }
    if (!inspection_only_) plan.landlock = landlock_plan(sb, plan, variable_ports);
    // A container that may and does choose its label replaces the sandbox's.
    const bool own_label = sb.allow_lsm_override && (c.apparmor_profile || c.selinux_label);
    plan.apparmor_profile = (own_label ? c.apparmor_profile : sb.apparmor_profile).value_or("");
    plan.selinux_label = (own_label ? c.selinux_label : sb.selinux_label).value_or("");

    // resolv.conf and hosts (docs/knot.md, "State directory")
    plan.resolv_conf_source =
        c.resolv_conf.copy_from_host ? std::optional(sb.resolv_conf) : std::nullopt;
    plan.mount_resolv_conf = c.resolv_conf.mount.value_or(c.resolv_conf.copy_from_host);
    plan.require_resolv_conf = c.resolv_conf.mount.value_or(false);
    const bool copy_hosts = c.hosts_file.copy_from_host;
    plan.hosts_copy_source = copy_hosts ? std::optional(sb.hosts_file) : std::nullopt;
    plan.hosts_localhost = c.hosts_file.localhost.value_or(!copy_hosts);
    plan.hosts_public_hostname = c.hosts_file.public_hostname.value_or(!copy_hosts);
    for (const auto& [host, addr] : sb.additional_hosts)
      plan.additional_hosts.emplace_back(addr, host);
    plan.write_hosts = copy_hosts || plan.hosts_localhost || plan.hosts_public_hostname ||
                       !sb.additional_hosts.empty();
    plan.mount_hosts = c.hosts_file.mount.value_or(true) && plan.write_hosts;
    plan.require_hosts = c.hosts_file.mount.value_or(false);

    if (plan.secrets && plan.secrets->file && !read_secret_environ_file(doc, plan))
      return std::nullopt;

    // ids
    plan.uid = uid.value_or(0);
    plan.gid = gid.value_or(0);
    plan.uid_map = applied_map(sb, c, true);
    plan.gid_map = applied_map(sb, c, false);
    plan.user_namespace = maps_apply(sb, c);

    return plan;
  }

  // The sandbox's compiled program: compiled once per sandbox and profile
  // (a thousand instances share a handful of programs). A compile failure
  // is reported once, on the sandbox file.
  const SeccompPlan& sandbox_seccomp(const EntryContext& e, bool argument_rules) {
    auto key = std::pair(&e.sandbox, argument_rules);
    auto it = seccomp_.find(key);
    if (it != seccomp_.end()) return it->second;
    SeccompPlan plan;
    plan.enabled = true;
    plan.denied = denied_syscalls(e.sandbox.config->value.seccomp);
    plan.argument_rules = argument_rules;
    if (auto error = compile_seccomp_program(plan)) {
      report_.error(e.sandbox.config->file, e.sandbox.config->marks.find(".seccomp"),
                    Code::UnknownSyscall, "Can't compile the seccomp filter: " + *error);
      plan.program.clear();
    }
    return seccomp_.emplace(key, std::move(plan)).first->second;
  }

  // secret-environ-file is read here, by the unprivileged plan builder,
  // never by the knot (docs/knot.md, Secrets): through the volume that will
  // hold it when the container starts, else through the image, confined to
  // that directory like a container config. A file on a !Tmpfs or
  // !Statedir volume does not exist before the start and is an error.
  bool read_secret_environ_file(const Loaded<ContainerCodec>& doc, InstancePlan& plan) {
    const std::string& path = *plan.secrets->file;
    auto mark = doc.marks.find(".secret-environ-file");
    const MountPlan* holder = nullptr;
    for (const auto& m : plan.mounts) {
      bool within =
          m.target == "/" || path == m.target ||
          (path.size() > m.target.size() && path.compare(0, m.target.size(), m.target) == 0 &&
           path[m.target.size()] == '/');
      if (within && (!holder || m.target.size() >= holder->target.size())) holder = &m;
    }
    std::string root = host(plan.image_root), inside = path;
    if (holder) {
      if (holder->kind == MountPlan::Kind::Tmpfs || !holder->confine_to.empty()) {
        report_.error(doc.file, mark, Code::SecretConfig,
                      "secret-environ-file " + quote(path) + " is on volume " +
                          quote(holder->volume) + ", which is empty when the container starts");
        return false;
      }
      root = host(holder->source);
      inside = path.size() > holder->target.size() && holder->target != "/"
                   ? path.substr(holder->target.size())
                   : (holder->target == "/" ? path : "/");
    }
    Diagnostics file_diags;
    std::string display = join_path(root, inside.substr(1));
    auto text = read_in_root(root, inside, display, file_diags);
    std::optional<Loaded<schema::Map<schema::OneOrMany>>> values;
    if (text) values = decode_text<schema::Map<schema::OneOrMany>>(*text, display, file_diags);
    if (!values || file_diags.has_errors()) {
      std::string why = file_diags.empty() ? "unreadable" : file_diags.items()[0].message;
      report_.error(doc.file, mark, Code::SecretConfig,
                    "Can't read secret environ file " + quote(path) + " (" + display + "): " + why);
      return false;
    }
    for (auto& [name, candidates] : values->value) {
      auto& list = plan.secrets->values[name];
      list.insert(list.end(), candidates.begin(), candidates.end());
    }
    return true;
  }

  const ConfigTree& tree_;
  const CheckOptions& options_;
  Diagnostics& diags_;
  Reporter report_;
  Sources* sources_;
  std::vector<InstancePlan>* plans_;
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

}  // namespace

void check_container_alone(const Loaded<ContainerCodec>& container, Diagnostics& diags) {
  Reporter report(diags);
  check_container_rules(container, report);
}

void check_tree(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
                Sources* sources, std::vector<InstancePlan>* plans) {
  TreeChecker(tree, options, diags, sources, plans).run();
}

std::optional<InstanceIdentity> parse_instance_identity(std::string_view text, Diagnostics& diags) {
  auto doc = decode_text<schema::Struct<InstanceIdentity>>(text, "--config", diags);
  if (!doc) return std::nullopt;
  return doc->value;
}

std::optional<InstancePlan> plan_instance(const ConfigTree& tree, const InstanceRequest& request,
                                          Diagnostics& diags, Sources* sources) {
  ConfigTree one;
  one.master_path = tree.master_path;
  one.master = tree.master;
  const SandboxSource* found = nullptr;
  for (const auto& s : tree.sandboxes)
    if (s.name == request.sandbox) found = &s;
  if (!found || !found->config || !tree.master) {
    diags.error(tree.master_path, {}, Code::Sandbox,
                "sandbox \"" + request.sandbox + "\" is not configured or failed to load");
    return std::nullopt;
  }
  SandboxSource sandbox = *found;
  ProcessEntry entry;
  entry.instances = 1;
  entry.image = request.identity.image;
  entry.config = request.identity.config;
  entry.variables = request.identity.variables;
  entry.extra_secrets_namespaces = request.identity.extra_secrets_namespaces;
  entry.kind = request.identity.kind;
  if (request.identity.ip_address) entry.ip_addresses.push_back(*request.identity.ip_address);
  Loaded<ProcessConfigCodec> processes;
  processes.file = "--config";
  processes.value[request.child] = entry;
  sandbox.processes = std::move(processes);
  one.sandboxes.push_back(std::move(sandbox));

  CheckOptions options;
  options.check_devfs = true;
  options.command_pid = request.command_pid;
  options.instance_index = request.index;
  std::vector<InstancePlan> plans;
  check_tree(one, options, diags, sources, &plans);
  if (diags.has_errors() || plans.size() != 1) return std::nullopt;
  return std::move(plans.front());
}

namespace {

// Strings that nlohmann's dump writes as themselves, with only `"` and `\`
// escaped: printable ASCII. Anything else takes the nlohmann path below.
bool plain_json_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

// The identity JSON written directly, byte for byte what the nlohmann path
// writes (compact, keys in insertion order), when every string in it is
// printable ASCII; nullopt otherwise.
std::optional<std::string> plain_identity(const ProcessEntry& entry,
                                          const std::optional<scalars::IpAddress>& ip,
                                          ProcessKind kind) {
  if (!plain_json_text(entry.image) || !plain_json_text(entry.config)) return std::nullopt;
  for (const auto& [k, v] : entry.variables)
    if (!plain_json_text(k) || !plain_json_text(v)) return std::nullopt;
  for (const auto& ns : entry.extra_secrets_namespaces)
    if (!plain_json_text(ns)) return std::nullopt;
  std::string out;
  out.reserve(64 + entry.image.size() + entry.config.size() + 32 * entry.variables.size());
  out += "{\"instances\":1,\"image\":";
  append_json_string(out, entry.image);
  out += ",\"config\":";
  append_json_string(out, entry.config);
  if (!entry.variables.empty()) {
    out += ",\"variables\":{";
    bool first = true;
    for (const auto& [k, v] : entry.variables) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, k);
      out += ':';
      append_json_string(out, v);
    }
    out += '}';
  }
  if (!entry.extra_secrets_namespaces.empty()) {
    out += ",\"extra_secrets_namespaces\":[";
    bool first = true;
    for (const auto& ns : entry.extra_secrets_namespaces) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, ns);
    }
    out += ']';
  }
  if (ip) {
    out += ",\"ip_address\":";
    append_json_string(out, scalars::format_ip(*ip));
  }
  out += ",\"kind\":";
  append_json_string(out, kind_text(kind));
  out += '}';
  return out;
}

}  // namespace

std::string instance_identity(const ProcessEntry& entry, std::optional<scalars::IpAddress> ip,
                              ProcessKind kind) {
  if (auto fast = plain_identity(entry, ip, kind)) return std::move(*fast);
  nlohmann::ordered_json j;
  j["instances"] = 1;
  j["image"] = entry.image;
  j["config"] = entry.config;
  if (!entry.variables.empty()) {
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();
    for (const auto& [k, v] : entry.variables) vars[k] = v;
    j["variables"] = vars;
  }
  if (!entry.extra_secrets_namespaces.empty())
    j["extra_secrets_namespaces"] = entry.extra_secrets_namespaces;
  if (ip) j["ip_address"] = scalars::format_ip(*ip);
  j["kind"] = kind_text(kind);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string veth_host_name(const std::string& bridge, const scalars::IpAddress& ip) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto hex2 = [](unsigned char b) { return std::string{kHex[b >> 4], kHex[b & 15]}; };
  std::string digest = crypt::blake2b_512("{\"bridge\":\"" + bridge + "\",\"ip\":\"" +
                                          scalars::format_ip(ip) + "\"}");
  std::size_t n = ip.v6 ? 16 : 4;
  std::string out = "li_";
  for (int i = 0; i < 3; ++i) out += hex2(static_cast<unsigned char>(digest[i]));
  return out + "_" + hex2(ip.bytes[n - 2]) + hex2(ip.bytes[n - 1]);
}

std::string process_config_json(const ProcessConfig& config) {
  nlohmann::ordered_json all = nlohmann::ordered_json::object();
  for (const auto& [name, entry] : config) {
    nlohmann::ordered_json j;
    j["instances"] = entry.instances;
    j["image"] = entry.image;
    j["config"] = entry.config;
    if (!entry.variables.empty()) {
      nlohmann::ordered_json vars = nlohmann::ordered_json::object();
      for (const auto& [k, v] : entry.variables) vars[k] = v;
      j["variables"] = vars;
    }
    if (!entry.extra_secrets_namespaces.empty())
      j["extra_secrets_namespaces"] = entry.extra_secrets_namespaces;
    if (!entry.ip_addresses.empty()) {
      std::vector<std::string> ips;
      for (const auto& ip : entry.ip_addresses) ips.push_back(scalars::format_ip(ip));
      j["ip_addresses"] = ips;
    }
    j["kind"] = kind_text(entry.kind);
    all[name] = j;
  }
  return all.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace lithos::policy
