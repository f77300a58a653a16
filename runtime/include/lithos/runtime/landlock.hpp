// Landlock as defence in depth (docs/hardening.md "Landlock"): the knot
// builds a ruleset from the plan's LandlockPlan once, after pivot_root and
// before the first clone, and each container child restricts itself with it
// right before seccomp. The kernel's Landlock ABI is detected at run time;
// rights a kernel does not know are left out, so older kernels get what they
// can enforce (or nothing, with one log line).
//
// The constants are defined here rather than taken from <linux/landlock.h>:
// distribution headers (Debian 12: ABI 2) lag the kernels they run on.
#pragma once

#include <cstdint>
#include <string>

#include "lithos/policy/plan.hpp"
#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {

namespace landlock {

// Filesystem access rights (ABI 1 unless noted).
inline constexpr std::uint64_t kFsExecute = 1ULL << 0;
inline constexpr std::uint64_t kFsWriteFile = 1ULL << 1;
inline constexpr std::uint64_t kFsReadFile = 1ULL << 2;
inline constexpr std::uint64_t kFsReadDir = 1ULL << 3;
inline constexpr std::uint64_t kFsRemoveDir = 1ULL << 4;
inline constexpr std::uint64_t kFsRemoveFile = 1ULL << 5;
inline constexpr std::uint64_t kFsMakeChar = 1ULL << 6;
inline constexpr std::uint64_t kFsMakeDir = 1ULL << 7;
inline constexpr std::uint64_t kFsMakeReg = 1ULL << 8;
inline constexpr std::uint64_t kFsMakeSock = 1ULL << 9;
inline constexpr std::uint64_t kFsMakeFifo = 1ULL << 10;
inline constexpr std::uint64_t kFsMakeBlock = 1ULL << 11;
inline constexpr std::uint64_t kFsMakeSym = 1ULL << 12;
inline constexpr std::uint64_t kFsRefer = 1ULL << 13;     // ABI 2
inline constexpr std::uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
inline constexpr std::uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
// Network access rights (ABI 4).
inline constexpr std::uint64_t kNetBindTcp = 1ULL << 0;
inline constexpr std::uint64_t kNetConnectTcp = 1ULL << 1;
// Scopes (ABI 6).
inline constexpr std::uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
inline constexpr std::uint64_t kScopeSignal = 1ULL << 1;

// Everything the kernel of `abi` knows, per kind (0 for abi <= 0).
std::uint64_t supported_fs(int abi) noexcept;
std::uint64_t supported_net(int abi) noexcept;
std::uint64_t supported_scopes(int abi) noexcept;

// What lithos handles, masked by `abi`: the write-ish filesystem rights
// (read and execute stay allowed everywhere); full rights below writable
// volumes, WRITE_FILE and TRUNCATE only below `write_files` paths.
std::uint64_t handled_fs(int abi) noexcept;
std::uint64_t write_files_rights(int abi) noexcept;

}  // namespace landlock

// The highest Landlock ABI the running kernel supports; 0 when Landlock is
// not built in or disabled at boot (lsm=).
int landlock_abi() noexcept;

// The lowest ABI lithos uses: with ABI 1 the kernel denies every rename or
// link across directories (no REFER right), which would break ordinary
// programs writing to their volumes.
inline constexpr int kLandlockMinAbi = 2;

struct LandlockRuleset {
  enum class State {
    Ready,        // `fd` holds the ruleset
    Disabled,     // the sandbox's `landlock: false`
    Unsupported,  // kernel without (usable) Landlock
  };
  State state = State::Disabled;
  int abi = 0;
  UniqueFd fd;  // close-on-exec (the kernel creates it so)
  // What the ruleset handles (Ready only), for logs and tests.
  std::uint64_t handled_fs = 0;
  std::uint64_t handled_net = 0;
  std::uint64_t scoped = 0;
  // The one log line: why nothing is applied, or what is.
  std::string summary;

  bool ready() const noexcept { return state == State::Ready && fd.valid(); }
};

// Run in the knot after pivot_root and before clone: `plan` paths are then
// container paths, opened below "/" without following any symlink (the
// container may have planted some). Returns Disabled/Unsupported (not an
// error) when there is nothing to apply; an error when a path of the plan
// cannot be opened or the kernel refuses a rule. `abi` is landlock_abi()
// unless a test asks for less.
Result<LandlockRuleset> prepare_landlock(const policy::LandlockPlan& plan);
Result<LandlockRuleset> prepare_landlock(const policy::LandlockPlan& plan, int abi);

// Run in the cloned child after no_new_privs (which it requires without
// CAP_SYS_ADMIN) and before seccomp. Async-signal-safe: one system call.
// `ruleset_fd` < 0 (not ready) is a no-op. Returns 0 or an errno value.
int apply_landlock(int ruleset_fd) noexcept;

}  // namespace lithos::runtime
