// The default hardening applied to every container (docs/hardening.md): the
// seccomp deny list and the capability rules. Sandboxes may narrow or widen
// the list with `seccomp: {allow, deny}` and grant capabilities by name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/plan.hpp"
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

// Argument rules of the default profile (docs/hardening.md, "Argument
// rules"). Each rule denies a call with EPERM when the low 32 bits of one
// argument, masked, equal a value: the kernel reads these arguments as 32-bit
// ints, so a rule on the full 64-bit register could be bypassed by setting
// high bits (the TIOCSTI bypass of CVE-2019-10063).
struct ArgumentRule {
  std::string_view syscall;
  unsigned argument = 0;
  std::uint32_t mask = 0;
  std::uint32_t value = 0;
  friend bool operator==(const ArgumentRule&, const ArgumentRule&) = default;
};

// ioctl requests that push input into a terminal (or the console), which a
// container sharing the operator's terminal could use to type commands into
// the operator's shell. asm-generic numbers, as on x86_64 and arm64.
inline constexpr std::uint32_t kTiocsti = 0x5412;
inline constexpr std::uint32_t kTioclinux = 0x541c;
inline constexpr std::uint32_t kAfVsock = 40;  // not namespaced: reaches the hypervisor

// personality(2) values a container may set: PER_LINUX, PER_LINUX32, each
// with UNAME26, and 0xffffffff (a query). Everything else (READ_IMPLIES_EXEC,
// ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ...) weakens the process's own hardening.
inline constexpr std::uint32_t kPersonalityAllowed[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

inline bool personality_allowed(std::uint32_t value) {
  return std::find(std::begin(kPersonalityAllowed), std::end(kPersonalityAllowed), value) !=
         std::end(kPersonalityAllowed);
}

// A filter cannot say "not one of these" with one comparison, so the denied
// personality values are written as a union of bit patterns ("bit a set, bit
// b clear"): every value other than 0xffffffff has a clear bit; a value with
// bit 0 set is denied by (bit 0 set, bit c clear) for its clear bit c; a
// value with bit 0 clear is denied by (bit 0 clear, bit b set) for any set
// bit b other than 3 (PER_LINUX32) and 17 (UNAME26). 60 patterns.
inline std::vector<ArgumentRule> personality_deny_rules() {
  std::vector<ArgumentRule> out;
  for (unsigned c = 1; c < 32; ++c) out.push_back({"personality", 0, 1u | (1u << c), 1u});
  for (unsigned b = 1; b < 32; ++b) {
    if (b == 3 || b == 17) continue;
    out.push_back({"personality", 0, 1u | (1u << b), 1u << b});
  }
  return out;
}

inline bool denied_by(const std::vector<ArgumentRule>& rules, std::uint32_t value) {
  return std::any_of(rules.begin(), rules.end(),
                     [&](const ArgumentRule& r) { return (value & r.mask) == r.value; });
}

inline std::vector<ArgumentRule> default_argument_rules() {
  std::vector<ArgumentRule> out = {
      {"ioctl", 1, 0xffffffff, kTiocsti},
      {"ioctl", 1, 0xffffffff, kTioclinux},
      {"socket", 0, 0xffffffff, kAfVsock},
  };
  auto personality = personality_deny_rules();
  out.insert(out.end(), personality.begin(), personality.end());
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

// Compiles `plan.enabled`, `plan.denied` and `plan.argument_rules` into
// `plan.program` for this machine's native architecture (`skipped` and
// `namespace_rules` say what was left out or added): default action ALLOW;
// every denied name -> EPERM; if `unshare` is denied, `clone` with any
// CLONE_NEW* flag -> EPERM and `clone3` -> ENOSYS (its flags live in memory a
// filter cannot inspect; libc then falls back to `clone`); the default
// profile's argument rules; a call through a foreign ABI (i386 or x32 on
// x86_64) kills the process. nullopt on success, else what failed.
std::optional<std::string> compile_seccomp_program(SeccompPlan& plan);

}  // namespace lithos::policy
