// The privilege audit of `lithos_check --audit` (docs/lithos_check.md,
// "Audit"): what each process instance may do, read off the launch plans
// check_tree builds, plus the warnings a security reviewer should see first.
// Pure: host facts (which uids are host accounts) come from the caller.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/diagnostics.hpp"
#include "lithos/policy/plan.hpp"

namespace lithos::policy {

// The version of the JSON shape; bumped when a member changes meaning or goes.
inline constexpr int kAuditJsonVersion = 1;

// What the caller knows about the host. `account_name(uid)`: the name of the
// host account with that uid, or nullopt (lithos_check asks getpwuid). An
// empty function means no host facts: the host-account warning never fires.
struct AuditHostFacts {
  std::function<std::optional<std::string>(std::uint32_t uid)> account_name;
};

// A user or group: the id the process has inside its user namespace and the
// host id it is outside (equal without a user namespace; nullopt when the
// maps do not cover it, and the kernel shows the overflow id).
struct AuditId {
  std::uint32_t inside = 0;
  std::optional<std::uint32_t> outside;
  std::optional<std::string> host_account;  // user only: a host account with the outside uid
};

// A host path visible in the container.
struct AuditPath {
  std::string host;    // host path
  std::string target;  // where the process sees it
  std::string
      what;  // "persistent", "statedir", "readonly", "image", "devices", "resolv.conf", "hosts"
};

struct AuditTmpfs {
  std::string target;
  std::string options;
};

struct AuditSocket {
  std::uint16_t port = 0;
  std::string address;
  std::uint32_t fd = 0;
  bool host_side = true;  // bound by the tree on the host, else inside the container's netns
};

struct AuditSeccomp {
  bool enabled = false;
  std::vector<std::string> denied;  // sorted
  bool argument_rules = false;
  bool namespace_rules = false;
};

struct AuditLandlock {
  bool enabled = false;
  std::vector<std::string> writable;     // container dirs where files may be created and written
  std::vector<std::string> write_files;  // container dirs where existing files may be written
  bool restrict_bind = false;
  std::vector<std::uint16_t> bind_ports;
  bool scope_abstract_unix = false;
  bool scope_signals = false;
};

struct AuditNetwork {
  bool bridged = false;  // false: the host's network namespace
  std::string bridge;
  std::optional<std::string> address;  // "10.0.0.2/24"
  std::optional<std::string> gateway;
  // Run by the knot as root, with every capability, on the host's file
  // system, in this network namespace, at every start.
  std::vector<std::string> after_setup_command;
};

// TCP ports the process itself may bind: `any` unless Landlock restricts
// bind to `ports` (on kernels with Landlock network rules).
struct AuditBind {
  bool any = true;
  std::vector<std::uint16_t> ports;
};

struct AuditCgroup {
  std::string path;                           // PARENT/SCOPE
  std::optional<std::uint64_t> memory_limit;  // bytes; nullopt: none
  std::optional<std::uint64_t> cpu_shares;    // nullopt: the cpu controller is not joined
  std::optional<std::uint64_t> pids_limit;
  // The other controls the container sets, by container key, as the
  // knot applies them ("cpu-quota-us": "50000 per 100000").
  std::map<std::string, std::string> controls;
};

struct AuditSecrets {
  std::vector<std::string> allowed_namespaces;
  std::vector<std::string> names;   // environment variable names, never values
  std::optional<std::string> file;  // secret-environ-file, inside the container
};

struct AuditInstance {
  std::string name;  // SANDBOX/CHILD.N or SANDBOX/cmd.CHILD.PID
  std::string sandbox;
  std::string child;
  ProcessKind kind = ProcessKind::Daemon;
  std::vector<std::string> argv;  // argv[0] is the executable
  AuditId user;
  AuditId group;
  std::vector<IdMapEntry> uid_map;  // empty: no user namespace
  std::vector<IdMapEntry> gid_map;
  std::vector<std::string> namespaces;  // created for it: "mount", "pid", ..., "user", "net"
  std::vector<std::string> capabilities;
  std::uint64_t capability_mask = 0;
  AuditSeccomp seccomp;
  AuditLandlock landlock;
  // "apparmor PROFILE" or "selinux CONTEXT"; empty: no LSM label.
  std::string lsm_label;
  std::vector<AuditPath> writable_host_paths;  // read-write binds: the process can write there
  std::vector<AuditPath>
      readonly_host_paths;        // image, read-only binds, devices, resolv.conf, hosts
  std::vector<AuditTmpfs> tmpfs;  // memory, not host paths
  std::string devices;            // the devfs dir, bound read-only at /dev
  AuditNetwork network;
  std::vector<AuditSocket> sockets;
  AuditBind bind;
  std::string output;            // where stdout/stderr go
  std::uint64_t open_files = 0;  // RLIMIT_NOFILE
  std::optional<AuditCgroup> cgroup;
  std::optional<AuditSecrets> secrets;
};

// Codes of the reviewer warnings (docs/lithos_check.md, "Audit").
inline constexpr std::string_view kAuditRootInside = "root-inside";
inline constexpr std::string_view kAuditSharedWritablePath = "shared-writable-path";
inline constexpr std::string_view kAuditSharedUid = "shared-uid";
inline constexpr std::string_view kAuditSharedUidRange = "shared-uid-range";
inline constexpr std::string_view kAuditHostAccount = "host-account";
inline constexpr std::string_view kAuditNoMemoryLimit = "no-memory-limit";
inline constexpr std::string_view kAuditNoPidsLimit = "no-pids-limit";

struct AuditWarning {
  std::string code;
  std::vector<std::string> instances;  // sorted
  std::string message;
};

struct Audit {
  std::vector<AuditInstance> instances;  // sorted by name
  std::vector<AuditWarning> warnings;    // by code, then first instance
};

// What the plans grant each instance, and the warnings over all of them.
Audit build_audit(const std::vector<InstancePlan>& plans, const AuditHostFacts& host = {});

// One block per instance, then the warnings.
std::string format_audit_text(const Audit& audit);

// {"version": 1, "instances": [...], "warnings": [...]} and, when `diags` is
// given, "diagnostics": the array of format_json (report.hpp).
std::string format_audit_json(const Audit& audit, const Diagnostics* diags = nullptr);

}  // namespace lithos::policy
