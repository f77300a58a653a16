// The seccomp program of a plan, compiled with libseccomp where the plan is
// built (hardening.hpp, compile_seccomp_program); the knot only installs the bytes.
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "lithos/common/fd.hpp"
#include "lithos/policy/hardening.hpp"

namespace lithos::policy {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

struct CtxDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// Namespace flags `clone` can carry. CLONE_NEWTIME (0x80) is left out on
// purpose: for clone() the low byte is the exit signal, so 0x80 there is not
// a namespace request (the kernel accepts CLONE_NEWTIME only from clone3 and
// unshare).
constexpr scmp_datum_t kCloneNamespaceFlags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

// The argument holding clone's flags (s390 swaps the first two arguments).
#if defined(__s390__) || defined(__s390x__)
constexpr unsigned kCloneFlagsArg = 1;
#else
constexpr unsigned kCloneFlagsArg = 0;
#endif

std::optional<std::string> export_bpf(scmp_filter_ctx ctx,
                                      std::vector<SeccompInstruction>& program) {
  int raw = static_cast<int>(::syscall(SYS_memfd_create, "lithos-seccomp", MFD_CLOEXEC));
  if (raw < 0) return "memfd_create: " + errno_text(errno);
  UniqueFd fd(raw);
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0)
    return "seccomp_export_bpf: " + errno_text(-rc);
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return "lseek: " + errno_text(errno);
  if (size == 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0 ||
      size / static_cast<off_t>(sizeof(sock_filter)) > BPF_MAXINSNS)
    return "exported program has invalid size " + std::to_string(size);
  static_assert(sizeof(sock_filter) == sizeof(SeccompInstruction));
  std::vector<sock_filter> out(static_cast<std::size_t>(size) / sizeof(sock_filter));
  auto* bytes = reinterpret_cast<char*>(out.data());
  std::size_t done = 0;
  while (done < static_cast<std::size_t>(size)) {
    ssize_t n = ::pread(fd.get(), bytes + done, static_cast<std::size_t>(size) - done,
                        static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "read back: " + errno_text(errno);
    if (n == 0) return std::string("short read of the program");
    done += static_cast<std::size_t>(n);
  }
  program.clear();
  program.reserve(out.size());
  for (const auto& insn : out) program.push_back({insn.code, insn.jt, insn.jf, insn.k});
  return std::nullopt;
}

}  // namespace

std::optional<std::string> compile_seccomp_program(SeccompPlan& plan) {
  plan.program.clear();
  plan.skipped.clear();
  plan.namespace_rules = false;
  if (!plan.enabled) return std::nullopt;

  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return std::string("seccomp_init failed");
  // Best effort: a binary-tree layout is faster for long lists (libseccomp
  // >= 2.5.0); an older library just keeps the linear layout.
  (void)seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  // Only the native ABI is allowed: a call through a foreign one (i386 or x32
  // on x86_64) would be looked up in a different syscall table than the one
  // the deny list was resolved against.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
    return "bad-architecture action: " + errno_text(-rc);

  const auto denied = [&](std::string_view name) {
    return std::find(plan.denied.begin(), plan.denied.end(), name) != plan.denied.end();
  };

  for (const auto& name : plan.denied) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    // Negative numbers are libseccomp's pseudo-syscalls: names that exist on
    // some architecture but not on this one.
    if (nr == __NR_SCMP_ERROR || nr < 0) {
      plan.skipped.push_back(name);
      continue;
    }
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0); rc < 0)
      return "seccomp_rule_add " + name + ": " + errno_text(-rc);
  }

  if (denied("unshare")) {
    plan.namespace_rules = true;
    int clone_nr = seccomp_syscall_resolve_name("clone");
    if (clone_nr >= 0 && !denied("clone")) {
      for (scmp_datum_t flag : kCloneNamespaceFlags) {
        if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), clone_nr, 1,
                                      SCMP_CMP(kCloneFlagsArg, SCMP_CMP_MASKED_EQ, flag, flag));
            rc < 0)
          return "clone namespace flag rule: " + errno_text(-rc);
      }
    }
    int clone3_nr = seccomp_syscall_resolve_name("clone3");
    if (clone3_nr >= 0 && !denied("clone3")) {
      if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), clone3_nr, 0); rc < 0)
        return "clone3 ENOSYS rule: " + errno_text(-rc);
    }
  }

  if (plan.argument_rules) {
    for (const auto& rule : default_argument_rules()) {
      std::string name(rule.syscall);
      if (denied(name)) continue;  // the whole call is denied already
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR || nr < 0) continue;
      // Masked to the low 32 bits: the high half of the register is ignored,
      // as the kernel ignores it for these int arguments.
      if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 1,
                                    SCMP_CMP(rule.argument, SCMP_CMP_MASKED_EQ,
                                             scmp_datum_t{rule.mask}, scmp_datum_t{rule.value}));
          rc < 0)
        return "argument rule " + name + ": " + errno_text(-rc);
    }
  }

  return export_bpf(ctx.get(), plan.program);
}

}  // namespace lithos::policy
