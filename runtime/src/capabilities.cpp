#include "lithos/runtime/capabilities.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {
namespace {

int read_last_cap() {
  UniqueFd fd(::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC));
  if (!fd) return CAP_LAST_CAP;
  char buf[16] = {};
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return CAP_LAST_CAP;
  int value = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i)
    value = value * 10 + (buf[i] - '0');
  return value > 0 && value < 64 ? value : CAP_LAST_CAP;
}

struct CapData {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

int capget_self(CapData& caps) noexcept {
  caps.header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &caps.header, caps.data) == 0 ? 0 : errno;
}

int capset_self(CapData& caps) noexcept {
  caps.header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capset, &caps.header, caps.data) == 0 ? 0 : errno;
}

}  // namespace

Result<CapabilitySet> capabilities_of_mask(std::uint64_t mask) {
  CapabilitySet set;
  set.last_cap = read_last_cap();
  for (int cap = set.last_cap + 1; cap < 64; ++cap)
    if ((mask >> cap & 1U) != 0)
      return step_error(
          "resolve_capabilities", "", EINVAL,
          "capability " + std::to_string(cap) + " is not known to the running kernel");
  set.kept = mask;
  return set;
}

ChildStatus drop_capabilities(const CapabilitySet& set) noexcept {
  CapData caps;
  if (int err = capget_self(caps)) return {"capget", err, -1};
  // After setuid() with KEEPCAPS the effective set is empty but permitted is
  // not: CAP_SETPCAP must be effective for the bounding-set drops.
  constexpr unsigned kSetpcapWord = CAP_SETPCAP / 32, kSetpcapBit = CAP_SETPCAP % 32;
  if ((caps.data[kSetpcapWord].permitted >> kSetpcapBit & 1U) != 0 &&
      (caps.data[kSetpcapWord].effective >> kSetpcapBit & 1U) == 0) {
    caps.data[kSetpcapWord].effective |= 1U << kSetpcapBit;
    if (int err = capset_self(caps)) return {"capset (raise CAP_SETPCAP)", err, CAP_SETPCAP};
  }

  // 1. Bounding set: nothing outside `kept` can ever come back, not even
  //    through a setuid-root or file-capability binary.
  for (int cap = 0; cap <= set.last_cap; ++cap) {
    if (set.has(cap)) continue;
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0) continue;  // already gone
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return {"PR_CAPBSET_DROP", errno, cap};
  }

  // 2. Ambient set cleared (EINVAL: kernel before 4.3, which has none).
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return {"PR_CAP_AMBIENT_CLEAR_ALL", errno, -1};

  // 3. Effective = permitted = inheritable = kept.
  for (unsigned word = 0; word < _LINUX_CAPABILITY_U32S_3; ++word) {
    auto bits = static_cast<std::uint32_t>(set.kept >> (32 * word));
    caps.data[word].effective = bits;
    caps.data[word].permitted = bits;
    caps.data[word].inheritable = bits;
  }
  if (int err = capset_self(caps)) return {"capset", err, -1};

  // 4. Ambient = kept, so a non-root uid keeps them across exec.
  for (int cap = 0; cap <= set.last_cap; ++cap) {
    if (!set.has(cap)) continue;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
      return {"PR_CAP_AMBIENT_RAISE", errno, cap};
  }
  return {};
}

ChildStatus set_no_new_privs() noexcept {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return {"PR_SET_NO_NEW_PRIVS", errno, -1};
  return {};
}

ChildStatus keep_capabilities_across_setuid() noexcept {
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return {"PR_SET_KEEPCAPS", errno, -1};
  return {};
}

}  // namespace lithos::runtime
