#include "lithos/runtime/landlock.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

// The same numbers on every architecture (the unified table from 424 on).
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

namespace lithos::runtime {
namespace landlock {
namespace {

// The kernel's structures at ABI 6. Older kernels accept the larger
// ruleset attribute as long as the fields they do not know are zero.
struct RulesetAttr {
  std::uint64_t handled_access_fs = 0;
  std::uint64_t handled_access_net = 0;  // ABI 4
  std::uint64_t scoped = 0;              // ABI 6
};

struct __attribute__((packed)) PathBeneathAttr {
  std::uint64_t allowed_access = 0;
  std::int32_t parent_fd = -1;
};

struct NetPortAttr {
  std::uint64_t allowed_access = 0;
  std::uint64_t port = 0;
};

constexpr unsigned kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;
constexpr int kRuleNetPort = 2;  // ABI 4

// Rights that make sense on a file (not a directory); others are EINVAL there.
constexpr std::uint64_t kFileRights =
    kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;

}  // namespace

std::uint64_t supported_fs(int abi) noexcept {
  if (abi <= 0) return 0;
  std::uint64_t out = (kFsMakeSym << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) out |= kFsRefer;
  if (abi >= 3) out |= kFsTruncate;
  if (abi >= 5) out |= kFsIoctlDev;
  return out;
}

std::uint64_t supported_net(int abi) noexcept {
  return abi >= 4 ? kNetBindTcp | kNetConnectTcp : 0;
}

std::uint64_t supported_scopes(int abi) noexcept {
  return abi >= 6 ? kScopeAbstractUnixSocket | kScopeSignal : 0;
}

std::uint64_t handled_fs(int abi) noexcept {
  constexpr std::uint64_t kWriteish = kFsWriteFile | kFsRemoveDir | kFsRemoveFile | kFsMakeChar |
                                      kFsMakeDir | kFsMakeReg | kFsMakeSock | kFsMakeFifo |
                                      kFsMakeBlock | kFsMakeSym | kFsRefer | kFsTruncate;
  return kWriteish & supported_fs(abi);
}

std::uint64_t write_files_rights(int abi) noexcept {
  return (kFsWriteFile | kFsTruncate) & supported_fs(abi);
}

}  // namespace landlock

namespace {

using namespace landlock;

long create_ruleset(const RulesetAttr* attr, std::size_t size, unsigned flags) noexcept {
  return ::syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// A plan path below "/" (the container root after pivot_root), never
// through a symlink: the container owns these directories and may have
// replaced one with a link to somewhere it should not write.
Result<UniqueFd> open_plan_path(int root, const std::string& path) {
  long fd = open_at2(root, path.c_str(), O_PATH,
                     RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) {
    int err = errno;
    return step_error(
        "landlock", path, err,
        err == ELOOP ? "symlinks are not followed inside the container" : "open for a rule");
  }
  return UniqueFd(static_cast<int>(fd));
}

Result<void> add_path_rule(int ruleset, int root, const std::string& path, std::uint64_t rights) {
  auto fd = open_plan_path(root, path);
  if (!fd) return Failure<StepError>{fd.error()};
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return step_error("landlock", path, errno, "fstat");
  // A volume may be a single file: only file rights apply to it.
  if (!S_ISDIR(st.st_mode)) rights &= kFileRights;
  if (rights == 0) return {};
  PathBeneathAttr attr;
  attr.allowed_access = rights;
  attr.parent_fd = fd->get();
  if (::syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &attr, 0U) != 0)
    return step_error("landlock", path, errno, "landlock_add_rule");
  return {};
}

}  // namespace

int landlock_abi() noexcept {
  long abi = create_ruleset(nullptr, 0, kCreateRulesetVersion);
  return abi > 0 ? static_cast<int>(abi) : 0;
}

Result<LandlockRuleset> prepare_landlock(const policy::LandlockPlan& plan) {
  if (!plan.enabled) return prepare_landlock(plan, 0);
  return prepare_landlock(plan, landlock_abi());
}

Result<LandlockRuleset> prepare_landlock(const policy::LandlockPlan& plan, int abi) {
  LandlockRuleset out;
  out.abi = abi;
  if (!plan.enabled) {
    out.state = LandlockRuleset::State::Disabled;
    out.summary = "Landlock disabled by the sandbox (landlock: false)";
    return out;
  }
  if (abi < kLandlockMinAbi) {
    out.state = LandlockRuleset::State::Unsupported;
    out.summary = abi <= 0 ? "Landlock not applied: the kernel does not support it"
                           : "Landlock not applied: the kernel's ABI " + std::to_string(abi) +
                                 " is below " + std::to_string(kLandlockMinAbi) +
                                 " (renames across directories would be denied)";
    return out;
  }

  RulesetAttr attr;
  attr.handled_access_fs = handled_fs(abi);
  if (plan.restrict_bind) attr.handled_access_net = kNetBindTcp & supported_net(abi);
  if (plan.scope_abstract_unix) attr.scoped |= kScopeAbstractUnixSocket;
  if (plan.scope_signals) attr.scoped |= kScopeSignal;
  attr.scoped &= supported_scopes(abi);

  long fd = create_ruleset(&attr, sizeof attr, 0);
  if (fd < 0) {
    int err = errno;
    // Landlock compiled in but disabled at boot answers the version query
    // with an error already; this covers a kernel changing its mind.
    if (err == ENOSYS || err == EOPNOTSUPP) {
      out.state = LandlockRuleset::State::Unsupported;
      out.summary = std::string("Landlock not applied: ") + std::strerror(err);
      return out;
    }
    return step_error("landlock", "", err, "landlock_create_ruleset");
  }
  out.fd.reset(static_cast<int>(fd));
  out.handled_fs = attr.handled_access_fs;
  out.handled_net = attr.handled_access_net;
  out.scoped = attr.scoped;

  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return step_error("landlock", "/", errno, "open the root");
  for (const auto& path : plan.writable)
    if (auto r = add_path_rule(out.fd.get(), root.get(), path, out.handled_fs); !r)
      return forward_error(std::move(r), "writable path");
  for (const auto& path : plan.write_files)
    if (auto r = add_path_rule(out.fd.get(), root.get(), path, write_files_rights(abi)); !r)
      return forward_error(std::move(r), "write-files path");
  if (out.handled_net != 0) {
    for (auto port : plan.bind_ports) {
      NetPortAttr rule;
      rule.allowed_access = kNetBindTcp;
      rule.port = port;
      if (::syscall(SYS_landlock_add_rule, out.fd.get(), kRuleNetPort, &rule, 0U) != 0)
        return step_error("landlock", "", errno,
                          "landlock_add_rule: TCP port " + std::to_string(port));
    }
  }

  out.state = LandlockRuleset::State::Ready;
  out.summary = "Landlock ABI " + std::to_string(abi) + ": writes below " +
                (plan.writable.empty() ? std::string("no volume") : join(plan.writable));
  if (!plan.restrict_bind) {
    out.summary += "; TCP bind not restricted (own network namespace)";
  } else if (out.handled_net == 0) {
    out.summary += "; TCP bind not restricted (needs ABI 4)";
  } else {
    std::vector<std::string> ports;
    for (auto port : plan.bind_ports) ports.push_back(std::to_string(port));
    out.summary += "; TCP bind to " + (ports.empty() ? std::string("no port") : join(ports));
  }
  std::vector<std::string> scoped;
  if (out.scoped & kScopeAbstractUnixSocket) scoped.push_back("abstract UNIX sockets");
  if (out.scoped & kScopeSignal) scoped.push_back("signals");
  if (!scoped.empty())
    out.summary += "; " + join(scoped) + " scoped to the container";
  else if (plan.scope_abstract_unix || plan.scope_signals)
    out.summary += "; abstract UNIX sockets and signals not scoped (needs ABI 6)";
  return out;
}

int apply_landlock(int ruleset_fd) noexcept {
  if (ruleset_fd < 0) return 0;
  if (::syscall(SYS_landlock_restrict_self, ruleset_fd, 0U) != 0) return errno;
  return 0;
}

}  // namespace lithos::runtime
