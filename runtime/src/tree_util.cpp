// The helpers of tree_util.hpp, used by several of the tree's files.
#include "tree_util.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "tree_support.hpp"

namespace lithos::runtime::tree_detail {

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int keep_high(int fd) {
  if (fd < 0 || fd >= kLowDescriptors) return fd;
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, kLowDescriptors);
  if (high < 0) return fd;
  ::close(fd);
  return high;
}

bool pidfd_signal(int pidfd, int sig) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string status_text(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exited with code " + std::to_string(info.si_status);
  const char* abbrev = sigabbrev_np(info.si_status);
  std::string out = std::string("killed by signal ") + (abbrev ? "SIG" : "") +
                    (abbrev ? abbrev : "?") + "[" + std::to_string(info.si_status) + "]";
  if (info.si_code == CLD_DUMPED) out += " (core dumped)";
  return out;
}

}  // namespace lithos::runtime::tree_detail
