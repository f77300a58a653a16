// InstancePlan: everything the runtime needs to start one process instance,
// already resolved, validated and kernel-ready (the seccomp program compiled,
// the capability mask computed, secret values gathered but still encrypted).
// Only the policy layer builds plans (check.hpp); plan_wire.hpp carries one
// to lithos_knot on a sealed memfd, and the knot executes it and decides
// nothing. This header includes no config code: the knot links it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/plan_types.hpp"

namespace lithos::policy {

struct MountPlan {
  enum class Kind {
    BindReadOnly,   // !Readonly: recursive bind, read-only recursively, nosuid, nodev
    BindReadWrite,  // !Persistent, !Statedir: recursive bind, nosuid, nodev
    Tmpfs,          // !Tmpfs: fresh tmpfs, nosuid, nodev
  };
  Kind kind = Kind::BindReadOnly;
  std::string volume;  // the mount point as written (for messages)
  std::string source;  // host path (bind) or "tmpfs"
  std::string target;  // absolute path inside the container root
  std::string data;    // tmpfs options, e.g. "size=104857600,mode=0777"
  // Host directory to create before binding (!Persistent mkdir, !Statedir).
  bool create = false;
  std::uint32_t mode = 0;
  std::uint32_t owner_uid = 0;  // host ids, mapped through the applied maps
  std::uint32_t owner_gid = 0;
  // Where `source` must stay inside (state dir) — opened without following
  // symlinks below it.
  std::string confine_to;
  friend bool operator==(const MountPlan&, const MountPlan&) = default;
};

struct SocketPlan {
  std::uint16_t port = 0;
  scalars::IpAddress host{};
  std::uint32_t fd = 0;
  bool reuse_addr = true;
  bool reuse_port = false;
  bool set_non_block = false;
  std::uint32_t listen_backlog = 128;
  // Bound by the tree on the host (not bridged, or external) or inside the
  // container's network namespace.
  bool host_side = true;
  friend bool operator==(const SocketPlan&, const SocketPlan&) = default;
};

struct NetworkPlan {
  std::string bridge;
  std::optional<scalars::IpAddress> ip;
  int prefix = 0;
  std::optional<scalars::IpAddress> gateway;
  // The veth pair's names (veth_host_name in check.hpp); empty without an ip.
  std::string host_interface;
  std::string container_interface;
  // Program (absolute) and arguments, @{container_ip} and
  // @{container_interface} already substituted; empty without an ip.
  std::vector<std::string> after_setup_command;
  friend bool operator==(const NetworkPlan&, const NetworkPlan&) = default;
};

struct SecretsPlan {
  std::string private_key_path;
  std::vector<std::string> allowed_namespaces;  // sandbox's (or {""}) + extra
  // Encrypted values (name -> candidates): `secret-environ`, or what the
  // plan builder read from `secret-environ-file` (docs/knot.md, Secrets).
  // The knot decrypts them just before exec.
  std::map<std::string, std::vector<std::string>> values;
  std::optional<std::string> file;  // where they came from (inside the container), for messages
  friend bool operator==(const SecretsPlan&, const SecretsPlan&) = default;
};

// io-max of one block device.
struct IoMaxPlan {
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  IoLimits limits;
  friend bool operator==(const IoMaxPlan&, const IoMaxPlan&) = default;
};

// The device's line as cgroup v2's io.max takes it: "MAJ:MIN" and the
// limits given, "8:0 rbps=1048576 wiops=100" (the audit's text); with
// `unset_as_max` every limit, "8:0 rbps=1048576 wbps=max riops=max
// wiops=100" (what the knot writes: the kernel keeps a limit not named).
inline std::string io_max_line(const IoMaxPlan& device, bool unset_as_max = false) {
  std::string line = std::to_string(device.major) + ":" + std::to_string(device.minor);
  auto add = [&](const char* name, const std::optional<std::uint64_t>& limit) {
    if (limit)
      line += std::string(" ") + name + "=" + std::to_string(*limit);
    else if (unset_as_max)
      line += std::string(" ") + name + "=max";
  };
  add("rbps", device.limits.read_bps);
  add("wbps", device.limits.write_bps);
  add("riops", device.limits.read_iops);
  add("wiops", device.limits.write_iops);
  return line;
}

struct CgroupPlan {
  std::string parent;                    // master cgroup-name, e.g. "lithos.slice"
  std::string scope;                     // "SANDBOX:CHILD.N.scope"
  std::vector<std::string> controllers;  // v1 hierarchies to join
  std::uint64_t memory_limit = 0;
  std::uint64_t cpu_shares = 1024;
  std::optional<std::uint64_t> pids_limit;
  std::optional<std::uint64_t> memory_high;
  std::optional<std::uint64_t> memory_low;
  bool memory_oom_group = false;
  std::optional<std::uint64_t> cpu_quota_us;
  std::uint64_t cpu_period_us = 100000;
  std::optional<std::uint64_t> io_weight;
  std::vector<IoMaxPlan> io_max;  // sorted by device
  friend bool operator==(const CgroupPlan&, const CgroupPlan&) = default;
};

// A cgroup setting this host cannot apply: its container key
// ("memory-high"; empty when the instance cannot be placed in cgroups at
// all) and why, naming the file or hierarchy that is missing.
struct CgroupRefusal {
  std::string key;
  std::string why;
};

// One BPF instruction (struct sock_filter's layout, kept here so that this
// header needs no kernel header).
struct SeccompInstruction {
  std::uint16_t code = 0;
  std::uint8_t jt = 0;
  std::uint8_t jf = 0;
  std::uint32_t k = 0;
  friend bool operator==(const SeccompInstruction&, const SeccompInstruction&) = default;
};

struct SeccompPlan {
  bool enabled = true;
  std::vector<std::string> denied;  // system call names, sorted, after allow/deny
  // The default profile's argument rules (docs/hardening.md): no terminal
  // input injection (TIOCSTI, TIOCLINUX), personality limited to the harmless
  // values, no AF_VSOCK sockets.
  bool argument_rules = true;
  // Compiled by the policy layer (compile_seccomp_program in hardening.hpp) for
  // this machine's native architecture; the knot only installs it. Empty
  // when disabled.
  std::vector<SeccompInstruction> program;
  // Denied names this architecture does not have (logged by the knot).
  std::vector<std::string> skipped;
  // Whether clone's namespace flags and clone3 are refused (unshare denied).
  bool namespace_rules = false;
  friend bool operator==(const SeccompPlan&, const SeccompPlan&) = default;
};

// Landlock ruleset (docs/hardening.md "Landlock"), applied by the knot in the
// child before exec when the kernel supports it. Paths are container paths.
struct LandlockPlan {
  bool enabled = false;  // the sandbox's `landlock` key
  // Below these, everything write-ish is allowed: create, remove, rename,
  // write and truncate files (targets of !Persistent, !Statedir, !Tmpfs).
  std::vector<std::string> writable;  // sorted, unique
  // Below these, existing files may only be opened for writing and
  // truncated, nothing created or removed: /dev (null, tty, pts) and /proc
  // (/proc/self/comm and the like; its dangerous parts are read-only mounts).
  std::vector<std::string> write_files;
  // TCP bind restricted to `bind_ports` (false with a bridged network: the
  // container then has a network namespace of its own).
  bool restrict_bind = false;
  std::vector<std::uint16_t> bind_ports;  // sorted, unique
  // ABI >= 6: no abstract UNIX sockets and no signals outside the container.
  bool scope_abstract_unix = false;
  bool scope_signals = false;
  friend bool operator==(const LandlockPlan&, const LandlockPlan&) = default;
};

class InstancePlan {
 public:
  // Identity
  std::string name;  // SANDBOX/CHILD.N or SANDBOX/cmd.CHILD.PID
  std::string sandbox;
  std::string child;
  std::uint64_t index = 0;
  ProcessKind kind = ProcessKind::Daemon;
  ContainerKind container_kind = ContainerKind::Daemon;
  std::string identity;  // compact JSON, the knot's --config

  // Filesystem
  std::string image_root;  // host path of the image
  std::string mount_root;  // runtime-dir/mount-dir (absolute)
  std::string state_dir;   // runtime-dir/state-dir/NAME
  std::string devfs_dir;
  std::vector<MountPlan> mounts;  // in mount order
  bool mount_resolv_conf = false;
  bool require_resolv_conf = false;               // `mount: true`
  std::optional<std::string> resolv_conf_source;  // host file copied to state
  bool mount_hosts = false;
  bool require_hosts = false;
  std::optional<std::string> hosts_copy_source;
  bool hosts_localhost = false;
  bool hosts_public_hostname = false;
  std::vector<std::pair<std::string, std::string>> additional_hosts;  // ip, name
  bool write_hosts = false;

  // Identity of the process
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<IdMapEntry> uid_map;  // empty: no user namespace
  std::vector<IdMapEntry> gid_map;
  bool user_namespace = false;

  // Process
  std::string executable;
  std::vector<std::string> argv;                             // argv[0] = executable
  std::vector<std::pair<std::string, std::string>> environ;  // sorted by name, no secrets
  std::vector<std::string> pid_variables;                    // set to the child's pid at exec
  std::string workdir = "/";
  std::optional<SecretsPlan> secrets;

  // Limits and hardening
  std::uint64_t fileno_limit = 1024;
  std::optional<CgroupPlan> cgroup;
  std::vector<std::string> capabilities;  // kept (canonical names, for messages and audits)
  std::uint64_t capability_mask = 0;      // the same, as kernel capability bits
  SeccompPlan seccomp;
  LandlockPlan landlock;
  // The LSM label written to /proc/thread-self/attr/exec right before exec
  // (docs/hardening.md, "LSM labels"); at most one is set.
  std::string apparmor_profile;
  std::string selinux_label;

  // Network and sockets
  std::optional<NetworkPlan> network;
  std::vector<SocketPlan> sockets;

  // Supervision and output
  std::int64_t restart_timeout_ms = 1000;
  std::int64_t kill_timeout_ms = 5000;
  bool restart_process_only = false;
  std::vector<std::int32_t> normal_exit_codes;
  bool interactive = false;
  std::optional<std::string> stdout_stderr_file;  // inside the container
  std::string stdio_log;                          // host path of the sandbox stdio log
  std::string log_file;                           // host path of the knot log
  std::string log_level;
  // The master's syslog-facility as a facility code; when set the knot logs
  // to syslog as `syslog_ident` instead of to `log_file`.
  std::optional<int> syslog_facility;
  std::string syslog_ident;

  friend bool operator==(const InstancePlan&, const InstancePlan&) = default;

 private:
  InstancePlan() = default;
  friend struct PlanBuilder;
  friend struct PlanWire;        // the decoder (plan_wire.hpp), which checks the wire format
  friend struct PlanTestAccess;  // property generators (proptests/)
};

}  // namespace lithos::policy
