// The default hardening applied to every container (docs/hardening.md): the
// seccomp deny list and the capability rules. Sandboxes may narrow or widen
// the list with `seccomp: {allow, deny}` and grant capabilities by name.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/sandbox.hpp"

namespace lithos::policy {

// System calls denied with EPERM by the default profile: filesystem and
// namespace manipulation, kernel modules and images, the keyring, tracing of
// other processes, clock changes, raw I/O ports, kernel log, accounting and
// quota, new mount API, io_uring (bypasses this filter) and similar.
inline constexpr std::string_view kDefaultDeniedSyscalls[] = {
    "acct",
    "add_key",
    "adjtimex",
    "bpf",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "vhangup",
};

// The effective deny list of a sandbox: the profile's list minus `allow`,
// plus `deny`, sorted and unique. `unconfined` denies only `deny`.
inline std::vector<std::string> denied_syscalls(const SeccompPolicy& policy) {
  std::vector<std::string> out;
  if (policy.profile == SeccompProfile::Default) {
    for (auto name : kDefaultDeniedSyscalls) {
      if (std::find(policy.allow.begin(), policy.allow.end(), name) == policy.allow.end())
        out.emplace_back(name);
    }
  }
  for (const auto& name : policy.deny) out.push_back(name);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Capabilities the container process keeps: those the sandbox grants, plus
// CAP_NET_BIND_SERVICE in a bridged network (as the original did).
inline std::vector<std::string> kept_capabilities(const SandboxConfig& sandbox) {
  std::vector<std::string> out = sandbox.capabilities;
  if (sandbox.bridged_network) out.emplace_back("CAP_NET_BIND_SERVICE");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace lithos::policy
