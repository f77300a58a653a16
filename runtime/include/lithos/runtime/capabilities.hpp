// The capability step. Names are resolved before fork; the child only calls
// drop_capabilities(), which uses raw system calls and allocates nothing.
//
// Order in the child, right before exec (docs/hardening.md):
//   1. drop_capabilities(kept)  -- bounding, ambient, then E/P/I, then ambient raise
//   2. set_no_new_privs()
//   3. load_seccomp(program)    -- last, so none of the setup is filtered
// If the process changes to a non-root uid, call keep_capabilities_across_setuid()
// before setuid() and drop_capabilities() after it: the kept capabilities
// then survive the uid change and, through the ambient set, the exec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lithos/runtime/error.hpp"

namespace lithos::runtime {

struct CapabilitySet {
  std::uint64_t kept = 0;  // bit N set: capability N is kept
  int last_cap = 0;        // highest capability the running kernel knows
  bool has(int cap) const { return cap >= 0 && cap < 64 && (kept >> cap & 1U) != 0; }
};

// Resolves names ("CAP_NET_BIND_SERVICE", any spelling libcap accepts) and
// reads the kernel's last capability (/proc/sys/kernel/cap_last_cap). Unknown
// names are an error: the policy layer has already rejected them, so one
// here means plan and kernel disagree.
// (lithos_runtime, not the knot: it needs the policy's name table.)
Result<CapabilitySet> resolve_capabilities(const std::vector<std::string>& names);

// The plan's capability mask (bit N: capability N kept) against the running
// kernel's last capability; a bit the kernel does not know is an error.
Result<CapabilitySet> capabilities_of_mask(std::uint64_t mask);

// In the child: afterwards the bounding, effective, permitted and inheritable
// sets are exactly `set.kept`, and the ambient set is `set.kept` too (so the
// capabilities survive exec as a non-root uid; as uid 0 they survive through
// the bounding set). Async-signal-safe: raw prctl/capget/capset, no
// allocation. Needs CAP_SETPCAP in the permitted set (root, or kept across
// setuid). On failure `op` names the sub-step and `arg` the capability.
ChildStatus drop_capabilities(const CapabilitySet& set) noexcept;

// PR_SET_NO_NEW_PRIVS: exec can no longer grant privileges (setuid bits, file
// capabilities); also what lets an unprivileged process load seccomp.
ChildStatus set_no_new_privs() noexcept;

// PR_SET_KEEPCAPS before setuid(non-root), so permitted survives the change.
ChildStatus keep_capabilities_across_setuid() noexcept;

}  // namespace lithos::runtime
