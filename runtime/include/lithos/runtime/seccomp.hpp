// The seccomp step: the filter is compiled by the policy layer where the plan
// is built (policy::compile_seccomp_program) and travels in the plan as BPF
// instructions; the knot copies them into a program before fork and the
// child only installs it (no allocation, no libseccomp in the knot).
// Installed last, right before exec, after capabilities are dropped and
// no_new_privs is set.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "lithos/policy/plan.hpp"
#include "lithos/runtime/error.hpp"

namespace lithos::runtime {

struct SeccompProgram {
  // Empty when the plan disables seccomp: load_seccomp is then a no-op.
  std::vector<sock_filter> filter;
  // Denied names this architecture does not have (logged, not an error: a
  // syscall that does not exist cannot be called).
  std::vector<std::string> skipped;
  // Whether the namespace rules were added: clone with a CLONE_NEW* flag ->
  // EPERM, clone3 -> ENOSYS (added when `unshare` is denied).
  bool namespace_rules = false;
  // Whether the default profile's argument rules were added (ioctl TIOCSTI
  // and TIOCLINUX, socket AF_VSOCK, personality: EPERM).
  bool argument_rules = false;

  // The kernel's view of the program; points into `filter`.
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(filter.size()),
                      const_cast<sock_filter*>(filter.data())};
  }
};

// The plan's compiled program as the kernel takes it. An enabled plan
// without a program (never compiled) is an error, never "no filter".
Result<SeccompProgram> seccomp_program_of(const policy::SeccompPlan& plan);

// Compiles the plan's lists with policy::compile_seccomp_program, then as
// seccomp_program_of (for tools and tests that start from a SeccompPlan
// without a program; lithos_knot never compiles).
Result<SeccompProgram> compile_seccomp(const policy::SeccompPlan& plan);

// Installs the program in the calling thread. Async-signal-safe: no
// allocation, two system calls at most. Requires no_new_privs (or
// CAP_SYS_ADMIN). Returns 0 or an errno value. An empty program is a no-op.
int load_seccomp(const sock_fprog& program) noexcept;

}  // namespace lithos::runtime
