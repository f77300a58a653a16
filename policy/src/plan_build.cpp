// Plan assembly (docs/knot.md): one instance's InstancePlan from its checked
// configs, the seccomp program and secrets file it needs, plan_instance for
// the knot and lithos_cmd, and the veth names of a bridged instance.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "check_internal.hpp"
#include "lithos/crypt/crypt.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/names.hpp"

namespace lithos::policy {

struct PlanBuilder {
  static InstancePlan make() { return InstancePlan{}; }
};

}  // namespace lithos::policy

namespace lithos::policy::check_internal {

namespace {

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

}  // namespace

std::optional<InstancePlan> TreeChecker::instantiate(
    const EntryContext& e, const Loaded<ContainerCodec>& doc, const std::string& name,
    std::uint64_t index, std::optional<scalars::IpAddress> ip, std::optional<std::uint32_t> uid,
    std::optional<std::uint32_t> gid, const std::vector<VolumeDraft>& volumes, bool keep) {
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
    cg.scope = scope_name(name);
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
      net.after_setup_command.push_back(helper_program(command.front()).value_or(command.front()));
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
  plan.log_file = join_path(master.default_log_dir, sb.log_file.value_or(e.sandbox.name + ".log"));
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
    if (!v.statedir_rel.empty() || (m.kind == MountPlan::Kind::BindReadWrite && m.source.empty())) {
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
const SeccompPlan& TreeChecker::sandbox_seccomp(const EntryContext& e, bool argument_rules) {
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
bool TreeChecker::read_secret_environ_file(const Loaded<ContainerCodec>& doc, InstancePlan& plan) {
  const std::string& path = *plan.secrets->file;
  auto mark = doc.marks.find(".secret-environ-file");
  const MountPlan* holder = nullptr;
  for (const auto& m : plan.mounts) {
    bool within = m.target == "/" || path == m.target ||
                  (path.size() > m.target.size() &&
                   path.compare(0, m.target.size(), m.target) == 0 && path[m.target.size()] == '/');
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

}  // namespace lithos::policy::check_internal

namespace lithos::policy {

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

}  // namespace lithos::policy
