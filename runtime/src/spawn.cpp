#include "lithos/runtime/spawn.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <linux/close_range.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace lithos::runtime {

pid_t clone_with_pidfd(unsigned long flags, int* pidfd) noexcept {
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<std::uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

void reset_signals(const sigset_t* keep_blocked) noexcept {
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, keep_blocked ? keep_blocked : &empty, nullptr);
  for (int sig = 1; sig < 32; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
}

int close_inherited_on_exec(unsigned from) noexcept {
  if (::syscall(SYS_close_range, from, ~0u, CLOSE_RANGE_CLOEXEC) == 0) return 0;
  if (errno != ENOSYS && errno != EINVAL) return errno;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return errno;
  int listing = ::dirfd(dir);
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd < static_cast<long>(from) || fd == listing)
      continue;
    int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
    if (flags >= 0) ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
  }
  ::closedir(dir);
  return 0;
}

namespace {

[[noreturn]] void child_fail(int fd, const char* op) noexcept {
  report_child_failure(fd, {op, errno, -1});
}

}  // namespace

Result<Spawned> spawn_process(const SpawnOptions& options) {
  // Everything the child needs is built here: after clone it allocates nothing.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t parent = ::getpid();
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int sig : options.blocked_signals) sigaddset(&blocked, sig);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return step_error("spawn", options.path, errno, "pipe");
  UniqueFd report_read(pipe_fds[0]);
  UniqueFd report_write(pipe_fds[1]);

  // The child checks after its prctl that we are still alive: a death
  // between clone and prctl would otherwise go unnoticed (getppid() says
  // nothing in a new PID namespace). Close-on-exec like every pidfd.
  UniqueFd parent_pidfd;
  if (options.parent_death_signal != 0) {
    parent_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, parent, 0)));
    if (!parent_pidfd) return step_error("spawn", options.path, errno, "pidfd_open(self)");
  }
  int highest_target = -1;
  for (const auto& [from, to] : options.fds) highest_target = std::max(highest_target, to);

  const auto below = [&](int fd) { return fd < options.fd_table_below; };
  const bool small_table =
      options.fd_table_below > 0 && below(report_write.get()) &&
      (!parent_pidfd || below(parent_pidfd.get())) && below(options.root_fd) &&
      std::all_of(options.fds.begin(), options.fds.end(),
                  [&](const auto& move) { return below(move.first) && below(move.second); });
  unsigned long clone_flags = options.namespaces;
  if (small_table) clone_flags |= CLONE_FILES | CLONE_VFORK;

  int pidfd = -1;
  pid_t pid = clone_with_pidfd(clone_flags, &pidfd);
  if (pid < 0) return step_error("spawn", options.path, errno, "clone3");
  if (pid == 0) {
    // First of all: a table of our own, before anything in it changes.
    if (small_table && ::syscall(SYS_close_range, static_cast<unsigned>(options.fd_table_below),
                                 ~0u, CLOSE_RANGE_UNSHARE) != 0)
      child_fail(report_write.get(), "close_range(CLOSE_RANGE_UNSHARE)");
    // The caller's crash handlers (lithos_tree re-executes itself on SIGSEGV)
    // must not run in here.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE}) ::signal(sig, SIG_DFL);
    int report = report_write.get();
    if (options.parent_death_signal != 0) {
      if (::prctl(PR_SET_PDEATHSIG, options.parent_death_signal, 0, 0, 0) != 0)
        child_fail(report, "prctl(PR_SET_PDEATHSIG)");
      // The parent may have died before the prctl: its death signal is lost.
      pollfd parent_gone{parent_pidfd.get(), POLLIN, 0};
      if (::poll(&parent_gone, 1, 0) != 0) ::_exit(127);
    }
    if (options.new_session && ::setsid() < 0) child_fail(report, "setsid");
    // A descriptor target may be the report pipe's number: move the pipe away.
    if (report <= highest_target) {
      report = ::fcntl(report, F_DUPFD_CLOEXEC, highest_target + 1);
      if (report < 0) ::_exit(127);
    }
    for (const auto& [from, to] : options.fds) {
      if (from == to) {
        int flags = ::fcntl(from, F_GETFD);
        if (flags < 0 || ::fcntl(from, F_SETFD, flags & ~FD_CLOEXEC) != 0)
          child_fail(report, "fcntl(FD_CLOEXEC)");
      } else if (::dup2(from, to) < 0) {
        child_fail(report, "dup2");
      }
    }
    if (options.root_fd >= 0 && (::fchdir(options.root_fd) != 0 || ::chroot(".") != 0))
      child_fail(report, "chroot");
    if (options.only_given_fds &&
        close_inherited_on_exec(static_cast<unsigned>(std::max(3, highest_target + 1))) != 0)
      child_fail(report, "close_range");
    reset_signals(&blocked);
    ::execve(options.path.c_str(), argv.data(), envp.data());
    child_fail(report, "execve");
  }
  Spawned spawned;
  spawned.pid = pid;
  spawned.pidfd.reset(pidfd);
  report_write.reset();
  if (auto failure = read_child_status(report_read.get())) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return step_error("spawn", options.path, failure->err, failure->what());
  }
  return spawned;
}

PipeOutput read_until_closed(int fd, std::chrono::steady_clock::time_point deadline,
                             std::size_t max_bytes, int exit_fd) {
  PipeOutput out;
  char buffer[65536];
  auto keep = [&](ssize_t n) {
    std::size_t room = max_bytes - std::min(max_bytes, out.bytes.size());
    out.bytes.append(buffer, std::min(room, static_cast<std::size_t>(n)));
  };
  bool pipe_open = true;
  while (pipe_open || exit_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.timed_out = true;
      break;
    }
    pollfd p[2] = {{pipe_open ? fd : -1, POLLIN, 0}, {exit_fd, POLLIN, 0}};
    int ready = ::poll(p, exit_fd >= 0 ? 2 : 1,
                       static_cast<int>(std::min<long long>(left.count() + 1, INT_MAX)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {  // cannot wait any more: as if the time were up
      out.timed_out = true;
      break;
    }
    if (ready == 0) continue;
    if (exit_fd >= 0 && (p[1].revents & POLLIN)) {
      // Exited: what it wrote is in the pipe already; take that, no more.
      if (pipe_open && ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0) {
        ssize_t n;
        while ((n = ::read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR))
          if (n > 0) keep(n);
      }
      break;
    }
    if (pipe_open && p[0].revents != 0) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        pipe_open = false;  // every writer is gone
        continue;
      }
      keep(n);
    }
  }
  return out;
}

Result<int> wait_process(Spawned& process) {
  while (true) {
    pollfd pfd{process.pidfd.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return step_error("wait", std::to_string(process.pid), errno, "poll pidfd");
    }
    break;
  }
  int status = 0;
  while (::waitpid(process.pid, &status, 0) < 0) {
    if (errno != EINTR) return step_error("wait", std::to_string(process.pid), errno, "waitpid");
  }
  process.pidfd.reset();
  return status;
}

}  // namespace lithos::runtime
