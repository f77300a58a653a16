// One tree per master (docs/tree.md, "One tree per master"). The pid file
// alone is no lock: two trees started at the same moment both passed its
// check and every instance then ran twice, and a killed tree that was not
// yet reaped looked alive. An flock is released by the kernel the moment
// its holder exits (zombie or not), and it is never held by two processes.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "lithos/policy/tree.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "tree_support.hpp"

namespace lithos::runtime::tree_detail {

namespace {

bool same_file(int fd, const struct stat& lock) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_dev == lock.st_dev && st.st_ino == lock.st_ino;
}

// A descriptor of the lock file this process already has: passed on by the
// previous image of a re-exec (the reload or the crash re-exec), so that the
// lock is never released between the two images.
int inherited_descriptor(int fresh, const struct stat& lock) {
  DIR* fds = ::opendir("/proc/self/fd");
  if (!fds) return -1;
  int found = -1;
  while (dirent* e = ::readdir(fds)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || fd < 3 || fd == fresh || fd == ::dirfd(fds)) continue;
    if (same_file(static_cast<int>(fd), lock)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(fds);
  return found;
}

// True when the recorded holder has exited (gone, or a zombie not yet
// reaped): then whoever still holds the lock is something it left behind.
bool holder_has_exited(long pid) {
  if (pid <= 0) return false;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  UniqueFd stat(::open(path, O_RDONLY | O_CLOEXEC));
  if (!stat) return errno == ENOENT;
  char text[512];
  const ssize_t n = ::read(stat.get(), text, sizeof text - 1);
  if (n <= 0) return false;
  text[n] = '\0';
  const char* close = std::strrchr(text, ')');  // the name may hold anything
  return close != nullptr && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
}

}  // namespace

long lock_holder_pid(int lock_fd) {
  char text[32] = {};
  ssize_t n = ::pread(lock_fd, text, sizeof text - 1, 0);
  long pid = n > 0 ? std::strtol(text, nullptr, 10) : 0;
  return pid > 0 ? pid : 0;
}

Result<UniqueFd> take_tree_lock(const std::string& runtime_dir) {
  const std::string path = policy::join_path(runtime_dir, std::string(kTreeLockName));
  auto dir = open_directory(runtime_dir);
  if (!dir) return fail(dir.error());
  // O_NOFOLLOW|O_NONBLOCK: a symlink or a FIFO planted at the name is
  // refused, never followed or waited on.
  UniqueFd fd(::openat(dir->get(), std::string(kTreeLockName).c_str(),
                       O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644));
  if (!fd) return step_error("lock", path, errno, "open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return step_error("lock", path, errno, "fstat");
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != ::geteuid())
    return step_error("lock", path, 0, "not a regular file of our own with one link");
  if (int kept = inherited_descriptor(fd.get(), st); kept >= 0) {
    // Ours already (the same open file description): flock succeeds at once.
    if (::flock(kept, LOCK_EX | LOCK_NB) == 0) {
      ::fcntl(kept, F_SETFD, FD_CLOEXEC);
      fd.reset(kept);
    } else {
      ::close(kept);  // someone else's descriptor: not ours to keep
    }
  }
  // A tree that was killed may leave the lock's description open in a child
  // for a moment: its config reader until its first act, a knot between
  // clone and exec (both also die with it). When the recorded holder has
  // exited, wait for those to go, briefly (kLockLeftoverWait).
  const auto give_up = std::chrono::steady_clock::now() + kLockLeftoverWait;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK) return step_error("lock", path, err, "flock");
    long holder = lock_holder_pid(fd.get());
    if (holder_has_exited(holder) && std::chrono::steady_clock::now() < give_up) {
      const timespec pause{0, 10'000'000};
      ::nanosleep(&pause, nullptr);
      continue;
    }
    return step_error("lock", path, 0,
                      "another lithos_tree runs for this master" +
                          (holder > 0 ? " (pid " + std::to_string(holder) + ")" : std::string()) +
                          " and holds this lock" +
                          (holder_has_exited(holder) ? " (that tree has exited; a process it "
                                                       "left holds the lock still)"
                                                     : ""));
  }
  // A lock on a file that is no longer at the name (removed or replaced
  // between the open and the flock) excludes nobody.
  struct stat locked {};
  struct stat named {};
  if (::fstat(fd.get(), &locked) != 0 ||
      ::fstatat(dir->get(), std::string(kTreeLockName).c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
      locked.st_dev != named.st_dev || locked.st_ino != named.st_ino)
    return step_error("lock", path, 0, "the lock file was replaced while it was being locked");
  // The holder's pid, for the message above (the pid file is written
  // separately, for lithos_switch and the operator).
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return step_error("lock", path, errno, "write the holder's pid");
  return fd;
}

}  // namespace lithos::runtime::tree_detail
