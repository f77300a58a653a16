// The helpers of tree_util.hpp, and read_small_file (tree_support.hpp), used
// by several of the tree's files.
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

bool pidfd_signal(int pidfd, int sig) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string quote(const std::string& s) {
  return "\"" + s + "\"";
}

std::string describe_diag(const policy::Diagnostic& d) {
  std::string where = d.file;
  if (d.mark.line > 0) where += ":" + std::to_string(d.mark.line);
  return where + ": " + d.message;
}

std::string status_text(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exited with code " + std::to_string(info.si_status);
  const char* abbrev = sigabbrev_np(info.si_status);
  std::string out = std::string("killed by signal ") + (abbrev ? "SIG" : "") +
                    (abbrev ? abbrev : "?") + "[" + std::to_string(info.si_status) + "]";
  if (info.si_code == CLD_DUMPED) out += " (core dumped)";
  return out;
}

std::optional<std::string> read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (n < 0) return std::nullopt;
  return out;
}

}  // namespace lithos::runtime::tree_detail
