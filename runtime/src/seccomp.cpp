#include "lithos/runtime/seccomp.hpp"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace lithos::runtime {

Result<SeccompProgram> seccomp_program_of(const policy::SeccompPlan& plan) {
  SeccompProgram program;
  if (!plan.enabled) return program;
  if (plan.program.empty() || plan.program.size() > BPF_MAXINSNS)
    return step_error(
        "load_seccomp", "", EINVAL,
        "the plan's seccomp program has " + std::to_string(plan.program.size()) + " instructions");
  program.filter.reserve(plan.program.size());
  for (const auto& insn : plan.program)
    program.filter.push_back({insn.code, insn.jt, insn.jf, insn.k});
  program.skipped = plan.skipped;
  program.namespace_rules = plan.namespace_rules;
  program.argument_rules = plan.argument_rules;
  return program;
}

int load_seccomp(const sock_fprog& program) noexcept {
  if (program.len == 0) return 0;
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0) return 0;
  int err = errno;
  if (err != ENOSYS) return err;
  // Kernels before 3.17 only have the prctl interface.
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0) return 0;
  return errno;
}

}  // namespace lithos::runtime
