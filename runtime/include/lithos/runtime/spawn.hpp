// Starting a helper or a knot: clone3() with CLONE_PIDFD (so the caller gets
// a pidfd atomically, no pid-reuse race), optional new namespaces, parent
// death signal, emptied signal mask and default dispositions, an exact
// environment, and errors before exec reported back over a close-on-exec
// pipe. lithos_cmd starts lithos_knot with it; lithos_tree is meant to as well
// (new mount, UTS, IPC and PID namespaces; docs/tree.md, "The loop").
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {

// The namespaces of a knot: it becomes PID 1 of a new PID namespace.
inline constexpr unsigned long kKnotNamespaces =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID;

// The signals a knot reads from its signalfd.
inline const std::vector<int> kKnotSignals = {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGQUIT};

struct SpawnOptions {
  std::string path;               // executed as is (no PATH lookup)
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value", exactly this environment
  unsigned long namespaces = 0;   // CLONE_NEW* flags
  int parent_death_signal = 0;    // e.g. SIGKILL; 0 = none
  // Signals left blocked across exec (everything else is unblocked and reset
  // to its default action). A knot gets kKnotSignals: a SIGTERM sent before
  // its main() runs stays pending instead of being dropped (the original lost
  // it; PID 1 of a namespace ignores default-action signals it does not block).
  std::vector<int> blocked_signals;
  // Descriptors placed at fixed numbers in the child (source, target);
  // every other descriptor of the caller should be close-on-exec.
  std::vector<std::pair<int, int>> fds;
  // The child closes every descriptor but those of `fds` at exec, whatever
  // their flags in the caller (a helper run by a knot, which holds
  // descriptors the container needs).
  bool only_given_fds = false;
  // A directory descriptor the child chroots into before exec (-1: none).
  int root_fd = -1;
  // setsid() in the child: it leaves the caller's session and so has no
  // controlling terminal (a knot of the tree must not reach the terminal the
  // tree was started from, docs/hardening.md).
  bool new_session = false;
  // A caller that holds thousands of descriptors (the tree: one pidfd per
  // knot) would have its whole descriptor table copied at clone and closed
  // again at exec, on every start. With a limit N > 0, when every descriptor
  // the child uses is below N, the child shares the caller's table until
  // its first act, which unshares it keeping only descriptors below N
  // (close_range CLOSE_RANGE_UNSHARE); the caller waits meanwhile
  // (CLONE_VFORK), so the table cannot change under it. Otherwise the
  // table is copied as usual.
  int fd_table_below = 0;
};

struct Spawned {
  pid_t pid = -1;  // in the caller's PID namespace
  UniqueFd pidfd;
};

// Starts the program; returns once it has exec'd (or fails with the step and
// errno of what went wrong in the child: "exec", "prctl", "dup2"...).
Result<Spawned> spawn_process(const SpawnOptions& options);

// Marks every descriptor >= `from` close-on-exec (close_range, or a walk of
// /proc/self/fd on kernels before 5.11), so that nothing this process
// inherited reaches a program it execs unless handed on by number. Returns 0
// or an errno value.
int close_inherited_on_exec(unsigned from = 3) noexcept;

// What a child wrote to a pipe: read until every writer has closed it or
// `deadline` has passed (`timed_out`); past `max_bytes` the rest is read
// and dropped. With `exit_fd` (the child's pidfd) reading ends when the
// child has exited, not when the pipe closes: a child that closes its output
// and goes on is still waited for, and one whose own children keep the pipe
// open is not.
struct PipeOutput {
  std::string bytes;
  bool timed_out = false;
};
PipeOutput read_until_closed(int fd, std::chrono::steady_clock::time_point deadline,
                             std::size_t max_bytes, int exit_fd = -1);

// Blocks until the process exits (poll on the pidfd, then waitid on it);
// returns the raw wait status (WIFEXITED/WEXITSTATUS apply).
Result<int> wait_process(Spawned& process);

// clone3 with CLONE_PIDFD | flags and exit signal SIGCHLD: 0 in the child,
// the child's pid in the parent (with *pidfd set), -1 with errno on failure.
// Like fork(): the child must only use async-signal-safe calls.
pid_t clone_with_pidfd(unsigned long flags, int* pidfd) noexcept;

// Signal mask set to `keep_blocked` (nullptr: emptied), dispositions 1..31
// reset to default (for children right before exec).
void reset_signals(const sigset_t* keep_blocked = nullptr) noexcept;

}  // namespace lithos::runtime
