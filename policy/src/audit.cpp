// lithos_check --audit: what each instance may do, from its plan and the
// host facts (docs/lithos_check.md, "Audit"), as text and as JSON.
// One file over 600 lines on purpose: the audit model, its warnings and its
// two writers (text and JSON), which must name the same claims alike.
#include "lithos/policy/audit.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "lithos/common/text.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/report.hpp"

namespace lithos::policy {

namespace {

// The namespaces a process of this plan gets: the knot is started in new
// mount, PID, IPC and UTS namespaces (kKnotNamespaces in runtime/spawn.hpp);
// it clones the process into a new cgroup namespace, a user namespace when
// the plan maps ids and a network namespace when it is bridged
// (Container::start in runtime/src/knot_exec.cpp).
std::vector<std::string> namespaces_of(const InstancePlan& plan) {
  std::vector<std::string> out = {"mount", "pid", "ipc", "uts", "cgroup"};
  if (plan.user_namespace) out.emplace_back("user");
  if (plan.network) out.emplace_back("net");
  return out;
}

AuditId id_of(std::uint32_t inside, const std::vector<IdMapEntry>& map, bool user_namespace) {
  AuditId id;
  id.inside = inside;
  id.outside = user_namespace ? map_to_outside(map, inside) : std::optional(inside);
  return id;
}

bool has(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// The cgroup limits that the runtime applies: a limit whose controller is
// not joined is not applied (runtime/src/cgroups.cpp), and memory at
// INT64_MAX or above is written as "max".
AuditCgroup cgroup_of(const CgroupPlan& plan) {
  constexpr auto kUnlimited = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  AuditCgroup out;
  out.path = plan.parent + "/" + plan.scope;
  if (has(plan.controllers, "memory") && plan.memory_limit < kUnlimited)
    out.memory_limit = plan.memory_limit;
  if (has(plan.controllers, "cpu")) out.cpu_shares = plan.cpu_shares;
  if (has(plan.controllers, "pids")) out.pids_limit = plan.pids_limit;
  if (plan.memory_high) out.controls["memory-high"] = std::to_string(*plan.memory_high);
  if (plan.memory_low) out.controls["memory-low"] = std::to_string(*plan.memory_low);
  if (plan.memory_oom_group) out.controls["memory-oom-group"] = "true";
  if (plan.cpu_quota_us)
    out.controls["cpu-quota-us"] =
        std::to_string(*plan.cpu_quota_us) + " per " + std::to_string(plan.cpu_period_us);
  if (plan.io_weight) out.controls["io-weight"] = std::to_string(*plan.io_weight);
  std::string devices;
  for (const auto& d : plan.io_max) devices += (devices.empty() ? "" : ", ") + io_max_line(d);
  if (!devices.empty()) out.controls["io-max"] = devices;
  return out;
}

std::string output_of(const InstancePlan& plan) {
  if (plan.interactive) return "inherited from the caller (interactive)";
  if (plan.stdout_stderr_file)
    return "the process writes " + *plan.stdout_stderr_file + " inside the container";
  return "a pipe; the knot appends it to " + plan.stdio_log;
}

AuditInstance instance_of(const InstancePlan& plan, const AuditHostFacts& host) {
  AuditInstance a;
  a.name = plan.name;
  a.sandbox = plan.sandbox;
  a.child = plan.child;
  a.kind = plan.kind;
  a.argv = plan.argv;
  if (a.argv.empty()) a.argv.push_back(plan.executable);
  a.user = id_of(plan.uid, plan.uid_map, plan.user_namespace);
  a.group = id_of(plan.gid, plan.gid_map, plan.user_namespace);
  if (a.user.outside && host.account_name) a.user.host_account = host.account_name(*a.user.outside);
  if (plan.user_namespace) {
    a.uid_map = plan.uid_map;
    a.gid_map = plan.gid_map;
  }
  a.namespaces = namespaces_of(plan);
  a.capabilities = plan.capabilities;
  a.capability_mask = plan.capability_mask;

  if (!plan.apparmor_profile.empty()) a.lsm_label = "apparmor " + plan.apparmor_profile;
  if (!plan.selinux_label.empty()) a.lsm_label = "selinux " + plan.selinux_label;
  a.seccomp.enabled = plan.seccomp.enabled;
  if (plan.seccomp.enabled) {
    a.seccomp.denied = plan.seccomp.denied;
    std::sort(a.seccomp.denied.begin(), a.seccomp.denied.end());
    a.seccomp.argument_rules = plan.seccomp.argument_rules;
    a.seccomp.namespace_rules = plan.seccomp.namespace_rules;
  }

  const auto& ll = plan.landlock;
  a.landlock.enabled = ll.enabled;
  if (ll.enabled) {
    a.landlock.writable = ll.writable;
    a.landlock.write_files = ll.write_files;
    a.landlock.restrict_bind = ll.restrict_bind;
    a.landlock.bind_ports = ll.bind_ports;
    a.landlock.scope_abstract_unix = ll.scope_abstract_unix;
    a.landlock.scope_signals = ll.scope_signals;
  }

  a.readonly_host_paths.push_back({plan.image_root, "/", "image"});
  for (const auto& m : plan.mounts) {
    switch (m.kind) {
      case MountPlan::Kind::BindReadWrite:
        // State-dir volumes are the ones confined to the instance's state dir.
        a.writable_host_paths.push_back(
            {m.source, m.target, m.confine_to.empty() ? "persistent" : "statedir"});
        break;
      case MountPlan::Kind::BindReadOnly:
        a.readonly_host_paths.push_back({m.source, m.target, "readonly"});
        break;
      case MountPlan::Kind::Tmpfs:
        a.tmpfs.push_back({m.target, m.data});
        break;
    }
  }
  a.devices = plan.devfs_dir;
  a.readonly_host_paths.push_back({plan.devfs_dir, "/dev", "devices"});
  // The knot writes these into the state dir and binds them read-only.
  if (plan.mount_resolv_conf)
    a.readonly_host_paths.push_back(
        {plan.state_dir + "/resolv.conf", "/etc/resolv.conf", "resolv.conf"});
  if (plan.mount_hosts)
    a.readonly_host_paths.push_back({plan.state_dir + "/hosts", "/etc/hosts", "hosts"});

  if (plan.network) {
    a.network.bridged = true;
    a.network.bridge = plan.network->bridge;
    if (plan.network->ip)
      a.network.address =
          scalars::format_ip(*plan.network->ip) + "/" + std::to_string(plan.network->prefix);
    if (plan.network->gateway) a.network.gateway = scalars::format_ip(*plan.network->gateway);
    a.network.after_setup_command = plan.network->after_setup_command;
  }
  for (const auto& s : plan.sockets)
    a.sockets.push_back({s.port, scalars::format_ip(s.host), s.fd, s.host_side});
  std::sort(a.sockets.begin(), a.sockets.end(),
            [](const AuditSocket& x, const AuditSocket& y) { return x.port < y.port; });
  if (ll.enabled && ll.restrict_bind) {
    a.bind.any = false;
    a.bind.ports = ll.bind_ports;
  }

  a.output = output_of(plan);
  a.open_files = plan.fileno_limit;
  if (plan.cgroup) a.cgroup = cgroup_of(*plan.cgroup);
  if (plan.secrets) {
    AuditSecrets s;
    s.allowed_namespaces = plan.secrets->allowed_namespaces;
    for (const auto& entry : plan.secrets->values) s.names.push_back(entry.first);
    s.file = plan.secrets->file;
    a.secrets = std::move(s);
  }
  return a;
}

// Whether `inner` is `outer` or below it, component-wise.
bool path_within(const std::string& inner, const std::string& outer) {
  std::string o = outer;
  while (o.size() > 1 && o.back() == '/') o.pop_back();
  std::string i = inner;
  while (i.size() > 1 && i.back() == '/') i.pop_back();
  if (i == o) return true;
  if (o == "/") return !i.empty() && i.front() == '/';
  return i.size() > o.size() && i.compare(0, o.size(), o) == 0 && i[o.size()] == '/';
}

std::string join_list(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// Instance-level warnings with the same code and fact become one warning
// naming all their instances (every instance of a daemon, typically).
class WarningSet {
 public:
  void add(std::string_view code, const std::string& instance, const std::string& message) {
    auto& instances = by_fact_[{std::string(code), message}];
    instances.insert(instance);
  }
  void add(std::string_view code, const std::set<std::string>& instances,
           const std::string& message) {
    by_fact_[{std::string(code), message}].insert(instances.begin(), instances.end());
  }
  std::vector<AuditWarning> take() {
    static constexpr std::string_view kOrder[] = {
        kAuditRootInside,         kAuditHostAccount,   kAuditSharedUid,  kAuditSharedUidRange,
        kAuditSharedWritablePath, kAuditNoMemoryLimit, kAuditNoPidsLimit};
    auto rank = [](const std::string& code) {
      return std::find(std::begin(kOrder), std::end(kOrder), code) - std::begin(kOrder);
    };
    std::vector<AuditWarning> out;
    for (auto& [fact, instances] : by_fact_)
      out.push_back({fact.first, {instances.begin(), instances.end()}, fact.second});
    std::sort(out.begin(), out.end(), [&](const AuditWarning& x, const AuditWarning& y) {
      return std::tuple(rank(x.code), x.instances, x.message) <
             std::tuple(rank(y.code), y.instances, y.message);
    });
    return out;
  }

 private:
  std::map<std::pair<std::string, std::string>, std::set<std::string>> by_fact_;
};

std::vector<AuditWarning> warnings_of(const std::vector<AuditInstance>& instances) {
  WarningSet warnings;
  for (const auto& a : instances) {
    if (a.user.inside == 0) {
      std::string where = !has(a.namespaces, "user")
                              ? "without a user namespace: this is host root"
                              : (a.user.outside ? "host uid " + std::to_string(*a.user.outside) +
                                                      " through the uid map"
                                                : "not mapped to a host uid");
      warnings.add(kAuditRootInside, a.name, "runs as uid 0 inside (" + where + ")");
    }
    if (a.user.host_account)
      warnings.add(kAuditHostAccount, a.name,
                   "runs as host uid " + std::to_string(*a.user.outside) +
                       ", the uid of host account " + debug_quote(*a.user.host_account));
    if (!a.cgroup)
      warnings.add(kAuditNoMemoryLimit, a.name,
                   "no memory limit (no cgroup: cgroup-name is unset)");
    else if (!a.cgroup->memory_limit)
      warnings.add(kAuditNoMemoryLimit, a.name, "no memory limit");
    if (!a.cgroup)
      warnings.add(kAuditNoPidsLimit, a.name, "no pids limit (no cgroup: cgroup-name is unset)");
    else if (!a.cgroup->pids_limit)
      warnings.add(kAuditNoPidsLimit, a.name, "no pids limit");
  }

  // One host uid in two sandboxes: their processes can signal, ptrace (if
  // allowed) and write each other's files.
  std::map<std::uint32_t, std::map<std::string, std::set<std::string>>> by_uid;
  for (const auto& a : instances)
    if (a.user.outside) by_uid[*a.user.outside][a.sandbox].insert(a.name);
  for (const auto& [uid, sandboxes] : by_uid) {
    if (sandboxes.size() < 2) continue;
    std::set<std::string> names;
    std::vector<std::string> sandbox_names;
    for (const auto& [sandbox, members] : sandboxes) {
      sandbox_names.push_back(debug_quote(sandbox));
      names.insert(members.begin(), members.end());
    }
    warnings.add(
        kAuditSharedUid, names,
        "host uid " + std::to_string(uid) + " is used by sandboxes " + join_list(sandbox_names));
  }

  // Host uids two sandboxes' uid maps both cover, whoever runs as them now:
  // a process of one may own (and a later config may run as) uids whose
  // files the other writes. One warning per pair of sandboxes.
  struct Span {
    std::uint64_t first, last;
  };
  std::map<std::string, std::vector<Span>> spans_of;              // sandbox -> outside spans
  std::map<std::string, std::set<std::string>> mapped_instances;  // sandbox -> instances with maps
  for (const auto& a : instances) {
    for (const auto& e : a.uid_map) {
      if (e.count == 0) continue;
      spans_of[a.sandbox].push_back({e.outside, std::uint64_t{e.outside} + e.count - 1});
      mapped_instances[a.sandbox].insert(a.name);
    }
  }
  for (auto first = spans_of.begin(); first != spans_of.end(); ++first) {
    for (auto second = std::next(first); second != spans_of.end(); ++second) {
      std::optional<Span> common;
      for (const auto& x : first->second)
        for (const auto& y : second->second) {
          Span overlap{std::max(x.first, y.first), std::min(x.last, y.last)};
          if (overlap.first > overlap.last) continue;
          if (!common || overlap.first < common->first) common = overlap;
        }
      if (!common) continue;
      std::set<std::string> names = mapped_instances[first->first];
      names.insert(mapped_instances[second->first].begin(), mapped_instances[second->first].end());
      warnings.add(kAuditSharedUidRange, names,
                   "the uid maps of sandboxes " + debug_quote(first->first) + " and " +
                       debug_quote(second->first) + " both cover host uids " +
                       std::to_string(common->first) + "-" + std::to_string(common->last) +
                       " (first overlap): their processes can own each other's files");
    }
  }

  // A writable host path of one sandbox that is, contains or lies in one of
  // another sandbox: one warning per topmost such path.
  struct Writable {
    std::string path;
    const AuditInstance* instance;
  };
  std::vector<Writable> writable;
  for (const auto& a : instances)
    for (const auto& p : a.writable_host_paths) writable.push_back({p.host, &a});
  std::set<std::string> tops;
  for (const auto& w : writable) {
    bool below_another = std::any_of(writable.begin(), writable.end(), [&](const Writable& o) {
      return o.path != w.path && path_within(w.path, o.path);
    });
    if (!below_another) tops.insert(w.path);
  }
  for (const auto& top : tops) {
    std::map<std::string, std::set<std::string>> sandboxes;  // sandbox -> "instance (path)"
    std::set<std::string> names;
    for (const auto& w : writable) {
      if (!path_within(w.path, top)) continue;
      sandboxes[w.instance->sandbox].insert(w.instance->name + " (" + w.path + ")");
      names.insert(w.instance->name);
    }
    if (sandboxes.size() < 2) continue;
    std::vector<std::string> who;
    for (const auto& [sandbox, members] : sandboxes)
      for (const auto& m : members) who.push_back(m);
    warnings.add(kAuditSharedWritablePath, names,
                 "host path " + top + " is writable by more than one sandbox: " + join_list(who));
  }
  return warnings.take();
}

std::string kind_name(ProcessKind kind) {
  return kind == ProcessKind::Command ? "command" : "daemon";
}

std::string id_text(const char* what, const AuditId& id) {
  std::string out = std::string(what) + " " + std::to_string(id.inside) + " inside, ";
  out += id.outside ? "host " + std::string(what) + " " + std::to_string(*id.outside)
                    : "not mapped (the kernel's overflow id outside)";
  if (id.host_account) out += " (host account " + debug_quote(*id.host_account) + ")";
  return out;
}

std::string map_text(const std::vector<IdMapEntry>& map) {
  std::vector<std::string> parts;
  for (const auto& e : map)
    parts.push_back(std::to_string(e.inside) + "->" + std::to_string(e.outside) + " x" +
                    std::to_string(e.count));
  return join_list(parts);
}

std::string ports_text(const std::vector<std::uint16_t>& ports) {
  std::vector<std::string> parts;
  for (auto p : ports) parts.push_back(std::to_string(p));
  return parts.empty() ? "none" : join_list(parts);
}

std::string hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = kDigits[value & 15];
  return out;
}

// `items` after `label`, wrapped below 100 columns with a hanging indent.
std::string wrapped(const std::string& label, const std::vector<std::string>& items) {
  std::string out = label, indent(label.size(), ' ');
  std::size_t column = label.size();
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string item = items[i] + (i + 1 < items.size() ? "," : "");
    if (column > label.size() && column + 1 + item.size() > 100) {
      out += "\n" + indent;
      column = indent.size();
    } else if (column > label.size()) {
      out += " ";
      ++column;
    }
    out += item;
    column += item.size();
  }
  return out + "\n";
}

std::string limit_text(const std::optional<std::uint64_t>& limit) {
  return limit ? std::to_string(*limit) : "none";
}

}  // namespace

Audit build_audit(const std::vector<InstancePlan>& plans, const AuditHostFacts& host) {
  Audit audit;
  for (const auto& plan : plans) audit.instances.push_back(instance_of(plan, host));
  std::sort(audit.instances.begin(), audit.instances.end(),
            [](const AuditInstance& x, const AuditInstance& y) { return x.name < y.name; });
  audit.warnings = warnings_of(audit.instances);
  return audit;
}

std::string format_audit_text(const Audit& audit) {
  std::string out;
  const std::string pad = "  ";
  for (const auto& a : audit.instances) {
    if (!out.empty()) out += "\n";
    out += a.name + " (" + kind_name(a.kind) + " " + a.sandbox + "/" + a.child + ")\n";
    out += pad + "command:        " + join_list(a.argv, " ") + "\n";
    out += pad + "user:           " + id_text("uid", a.user) + "\n";
    out += pad + "group:          " + id_text("gid", a.group) + "\n";
    if (a.uid_map.empty() && a.gid_map.empty()) {
      out += pad + "id maps:        none (no user namespace)\n";
    } else {
      out += pad + "uid map:        " + map_text(a.uid_map) + "\n";
      out += pad + "gid map:        " + map_text(a.gid_map) + "\n";
    }
    out += pad + "namespaces:     " + join_list(a.namespaces) + "\n";
    out += pad +
           "capabilities:   " + (a.capabilities.empty() ? "none" : join_list(a.capabilities)) +
           " (mask " + hex(a.capability_mask) + "); no_new_privs\n";
    out += pad + "lsm label:      " + (a.lsm_label.empty() ? "none" : a.lsm_label) + "\n";
    if (a.seccomp.enabled) {
      out += pad + "seccomp:        on, " + std::to_string(a.seccomp.denied.size()) +
             " system calls denied; argument rules " + (a.seccomp.argument_rules ? "on" : "off") +
             "; namespace rules " + (a.seccomp.namespace_rules ? "on" : "off") + "\n";
      if (!a.seccomp.denied.empty()) out += wrapped(pad + "  denied:       ", a.seccomp.denied);
    } else {
      out += pad + "seccomp:        off\n";
    }
    if (a.landlock.enabled) {
      std::vector<std::string> scopes;
      if (a.landlock.scope_abstract_unix) scopes.emplace_back("abstract-unix");
      if (a.landlock.scope_signals) scopes.emplace_back("signals");
      out += pad + "landlock:       on (where the kernel has it)\n";
      out += pad + "  writable:     " +
             (a.landlock.writable.empty() ? "none" : join_list(a.landlock.writable)) + "\n";
      out += pad + "  write files:  " +
             (a.landlock.write_files.empty() ? "none" : join_list(a.landlock.write_files)) + "\n";
      out += pad + "  bind:         " +
             (a.landlock.restrict_bind ? "ports " + ports_text(a.landlock.bind_ports)
                                       : std::string("not restricted")) +
             "\n";
      out += pad + "  scopes:       " + (scopes.empty() ? "none" : join_list(scopes)) + "\n";
    } else {
      out += pad + "landlock:       off\n";
    }
    out += pad + "writable host paths:\n";
    if (a.writable_host_paths.empty()) out += pad + "  none\n";
    for (const auto& p : a.writable_host_paths)
      out += pad + "  " + p.host + " -> " + p.target + " (" + p.what + ")\n";
    out += pad + "read-only host paths:\n";
    for (const auto& p : a.readonly_host_paths)
      out += pad + "  " + p.host + " -> " + p.target + " (" + p.what + ")\n";
    if (!a.tmpfs.empty()) {
      std::vector<std::string> parts;
      for (const auto& t : a.tmpfs) parts.push_back(t.target + " (" + t.options + ")");
      out += pad + "tmpfs:          " + join_list(parts) + "\n";
    }
    out += pad + "devices:        " + a.devices + " read-only at /dev\n";
    if (a.network.bridged) {
      out += pad + "network:        bridged to " + a.network.bridge;
      if (a.network.address) out += ", address " + *a.network.address;
      if (a.network.gateway) out += ", gateway " + *a.network.gateway;
      out += "\n";
      if (!a.network.after_setup_command.empty()) {
        out += pad + "after setup:    as host root, all capabilities:";
        for (const auto& arg : a.network.after_setup_command) out += " " + debug_quote(arg);
        out += "\n";
      }
    } else {
      out += pad + "network:        host\n";
    }
    if (!a.sockets.empty()) {
      std::vector<std::string> parts;
      for (const auto& s : a.sockets)
        parts.push_back(std::to_string(s.port) + " on " + s.address + " as fd " +
                        std::to_string(s.fd) +
                        (s.host_side ? " (bound on the host)" : " (bound in the container)"));
      out += pad + "sockets:        " + join_list(parts, "; ") + "\n";
    }
    out += pad + "may bind:       " +
           (a.bind.any ? std::string(a.network.bridged ? "any port (in its own network namespace)"
                                                       : "any port")
                       : "ports " + ports_text(a.bind.ports)) +
           "\n";
    out += pad + "output:         " + a.output + "\n";
    out += pad + "open files:     " + std::to_string(a.open_files) + " (RLIMIT_NOFILE)\n";
    if (a.cgroup) {
      out += pad + "cgroup:         " + a.cgroup->path + "; memory " +
             limit_text(a.cgroup->memory_limit) + ", cpu shares " +
             limit_text(a.cgroup->cpu_shares) + ", pids " + limit_text(a.cgroup->pids_limit);
      for (const auto& [key, value] : a.cgroup->controls) out += ", " + key + " " + value;
      out += "\n";
    } else {
      out += pad + "cgroup:         none (memory none, cpu shares none, pids none)\n";
    }
    if (a.secrets) {
      std::vector<std::string> namespaces;
      for (const auto& n : a.secrets->allowed_namespaces)
        namespaces.push_back(n.empty() ? "\"\" (the default)" : n);
      out += pad + "secrets:        names " +
             (a.secrets->names.empty() ? "none" : join_list(a.secrets->names)) + "; namespaces " +
             join_list(namespaces);
      if (a.secrets->file) out += "; from " + *a.secrets->file;
      out += "\n";
    } else {
      out += pad + "secrets:        none\n";
    }
  }
  if (audit.instances.empty()) out += "no process instances\n";
  out += "\nwarnings: " + std::to_string(audit.warnings.size()) + "\n";
  for (const auto& w : audit.warnings)
    out += "  warning[" + w.code + "]: " + join_list(w.instances) + ": " + w.message + "\n";
  return out;
}

std::string format_audit_json(const Audit& audit, const Diagnostics* diags) {
  using json = nlohmann::ordered_json;
  auto id_json = [](const AuditId& id) {
    json j;
    j["inside"] = id.inside;
    j["outside"] = id.outside ? json(*id.outside) : json(nullptr);
    return j;
  };
  auto map_json = [](const std::vector<IdMapEntry>& map) {
    json j = json::array();
    for (const auto& e : map)
      j.push_back({{"inside", e.inside}, {"outside", e.outside}, {"count", e.count}});
    return j;
  };
  auto paths_json = [](const std::vector<AuditPath>& paths) {
    json j = json::array();
    for (const auto& p : paths)
      j.push_back({{"host", p.host}, {"target", p.target}, {"what", p.what}});
    return j;
  };
  auto optional_json = [](const std::optional<std::uint64_t>& value) {
    return value ? json(*value) : json(nullptr);
  };
  json instances = json::array();
  for (const auto& a : audit.instances) {
    json j;
    j["name"] = a.name;
    j["sandbox"] = a.sandbox;
    j["child"] = a.child;
    j["kind"] = kind_name(a.kind);
    j["argv"] = a.argv;
    j["user"] = id_json(a.user);
    j["user"]["host_account"] = a.user.host_account ? json(*a.user.host_account) : json(nullptr);
    j["group"] = id_json(a.group);
    j["uid_map"] = map_json(a.uid_map);
    j["gid_map"] = map_json(a.gid_map);
    j["namespaces"] = a.namespaces;
    j["capabilities"] = a.capabilities;
    j["capability_mask"] = hex(a.capability_mask);
    j["lsm_label"] = a.lsm_label.empty() ? json(nullptr) : json(a.lsm_label);
    j["no_new_privs"] = true;
    j["seccomp"] = {{"enabled", a.seccomp.enabled},
                    {"denied_count", a.seccomp.denied.size()},
                    {"denied", a.seccomp.denied},
                    {"argument_rules", a.seccomp.argument_rules},
                    {"namespace_rules", a.seccomp.namespace_rules}};
    j["landlock"] = {{"enabled", a.landlock.enabled},
                     {"writable", a.landlock.writable},
                     {"write_files", a.landlock.write_files},
                     {"restrict_bind", a.landlock.restrict_bind},
                     {"bind_ports", a.landlock.bind_ports},
                     {"scope_abstract_unix", a.landlock.scope_abstract_unix},
                     {"scope_signals", a.landlock.scope_signals}};
    j["writable_host_paths"] = paths_json(a.writable_host_paths);
    j["readonly_host_paths"] = paths_json(a.readonly_host_paths);
    json tmpfs = json::array();
    for (const auto& t : a.tmpfs) tmpfs.push_back({{"target", t.target}, {"options", t.options}});
    j["tmpfs"] = std::move(tmpfs);
    j["devices"] = a.devices;
    json network;
    network["mode"] = a.network.bridged ? "bridged" : "host";
    if (a.network.bridged) {
      network["bridge"] = a.network.bridge;
      network["address"] = a.network.address ? json(*a.network.address) : json(nullptr);
      network["gateway"] = a.network.gateway ? json(*a.network.gateway) : json(nullptr);
      network["after_setup_command"] = a.network.after_setup_command;
    }
    j["network"] = std::move(network);
    json sockets = json::array();
    for (const auto& s : a.sockets)
      sockets.push_back(
          {{"port", s.port}, {"address", s.address}, {"fd", s.fd}, {"host_side", s.host_side}});
    j["sockets"] = std::move(sockets);
    j["bind"] = {{"any", a.bind.any}, {"ports", a.bind.ports}};
    j["output"] = a.output;
    j["rlimits"] = {{"nofile", a.open_files}};
    if (a.cgroup)
      j["cgroup"] = {{"path", a.cgroup->path},
                     {"memory_limit", optional_json(a.cgroup->memory_limit)},
                     {"cpu_shares", optional_json(a.cgroup->cpu_shares)},
                     {"pids_limit", optional_json(a.cgroup->pids_limit)},
                     {"controls", a.cgroup->controls}};
    else
      j["cgroup"] = nullptr;
    if (a.secrets)
      j["secrets"] = {{"allowed_namespaces", a.secrets->allowed_namespaces},
                      {"names", a.secrets->names},
                      {"file", a.secrets->file ? json(*a.secrets->file) : json(nullptr)}};
    else
      j["secrets"] = nullptr;
    instances.push_back(std::move(j));
  }
  json warnings = json::array();
  for (const auto& w : audit.warnings)
    warnings.push_back({{"code", w.code}, {"instances", w.instances}, {"message", w.message}});
  json all;
  all["version"] = kAuditJsonVersion;
  all["instances"] = std::move(instances);
  all["warnings"] = std::move(warnings);
  if (diags) all["diagnostics"] = json::parse(format_json_diagnostics(*diags));
  return all.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace lithos::policy
