// lithos_knot: executes one InstancePlan (docs/knot.md). The plan is built
// and checked by the policy layer; the knot decides nothing, it runs an
// ordered table of small named steps, each failing with
// StepError{step, path, errno, message}, then starts and supervises the
// container process. docs/knot.md lists the steps.
#pragma once

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lithos/crypt/secure_buffer.hpp"
#include "lithos/policy/plan.hpp"
#include "lithos/runtime/capabilities.hpp"
#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/seccomp.hpp"

namespace lithos::runtime {

// What the setup steps leave for the later ones and for the supervisor.
struct KnotState {
  UniqueFd null_device;  // the host's /dev/null (checked 1:3): masks, the container's stdin
  UniqueFd root;         // the container root (M) once the image is mounted
  UniqueFd state_dir;    // <state>, kept open across pivot_root
  // A detached copy of the host's mount tree (open_tree), taken before
  // pivot_root only when the plan has an after-setup-command: that host
  // program runs chroot-ed into it (docs/knot.md, "Bridged networking").
  UniqueFd host_root;
  // Decrypted secret-environ, name -> value (already byte-sorted); the
  // values live in wiped memory only (docs/hardening.md, Secrets).
  std::vector<std::pair<std::string, crypt::SecureBuffer>> secrets;
  std::vector<StepError> warnings;  // logged, not fatal (cgroup limit writes)
  bool pivoted = false;
};

struct KnotStep {
  const char* name;
  Result<void> (*run)(const policy::InstancePlan& plan, KnotState& state);
};

// ---- the launch plan (docs/knot.md, "The launch plan") ---------------------

// A new memfd holding `wire` (policy::encode_plan), sealed against writes,
// growing, shrinking and further seals; close-on-exec. For the tree and
// lithos_cmd, which hand it to the knot at policy::kPlanFd.
Result<UniqueFd> seal_plan(std::string_view wire);

// Reads the plan from `fd` (closed here): it must be a sealed memfd of at
// most policy::kMaxPlanBytes, and decode_plan must accept it. Nothing
// privileged has happened when this fails.
Result<policy::InstancePlan> read_launch_plan(int fd);

// Moves the host-side sockets the caller handed over at kPlanFd + 1 + i (in
// the plan's order) to their planned numbers, close-on-exec; each must be a
// socket.
Result<void> place_host_sockets(const policy::InstancePlan& plan);

// The plan's log: syslog as `syslog_ident` when the master sets a facility,
// else `log_file` (created 0640, no symlink followed).
Result<void> open_plan_log(Logger& log, const policy::InstancePlan& plan);

// The setup steps, in order (docs/knot.md). Every step that mounts works in
// the knot's private mount namespace only.
const std::vector<KnotStep>& knot_steps();

// Runs the table; the first failure stops it. Its StepError's `step` is the
// table's name for the step that failed, whatever a helper below called
// itself (docs/errors.md).
Result<void> run_knot_steps(const policy::InstancePlan& plan, KnotState& state, const Logger& log);

// The same over any table (tests run a table of their own).
Result<void> run_steps(std::span<const KnotStep> steps, const policy::InstancePlan& plan,
                       KnotState& state, const Logger& log);

// ---- pieces exposed for tests ---------------------------------------------------

// openat2 below `dir_fd` with RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS: a path inside the container root, never leaving it
// and never following a symlink (planted or not).
Result<UniqueFd> open_in_root(int dir_fd, const std::string& path, int flags, const char* step);

// open_in_root for a file the knot reads or writes (stdout-stderr-file,
// secret-environ-file): opened O_NONBLOCK so a FIFO cannot block the knot,
// then required to be a regular file; O_NONBLOCK is cleared again.
Result<UniqueFd> open_regular_in_root(int dir_fd, const std::string& path, int flags,
                                      const char* step);

// The content of <state>/hosts; `hostname_ip` is the
// public hostname's address (nullopt: the line is left out).
std::string hosts_file_content(const policy::InstancePlan& plan, const std::string& copied,
                               const std::string& hostname,
                               const std::optional<std::string>& hostname_ip);

// Bridged networking for a child created with CLONE_NEWNET, before it is
// released: veth pair named by the plan (peer in the child's namespace), host side on the
// bridge and up; inside: lo up, address, peer up, default route, then the
// after-setup-command.
Result<void> setup_bridged_network(const policy::InstancePlan& plan, int child_pidfd,
                                   pid_t child_pid, int host_root);

// Writes `label` to /proc/thread-self/attr/exec: the LSM label the next
// execve of this thread takes ("exec PROFILE" for AppArmor, the context for
// SELinux). 0 or an errno value (EINVAL where no LSM takes it).
int write_exec_label(std::string_view label) noexcept;

// How long an after-setup-command may take before it is killed.
inline constexpr std::chrono::milliseconds kAfterSetupTimeout{10000};

// Runs `argv` (argv[0] an absolute path, as the plan gives it) in the
// caller's namespaces, chroot-ed into `root` (a directory descriptor: the
// host's mount tree; -1: the caller's root), with stdin on /dev/null, stdout
// and stderr captured, only PATH in its environment and no other
// descriptor. Fails with the command, its exit code or signal and what it
// printed, or when it does not finish within `timeout` (it is then killed).
Result<void> run_after_setup_command(const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout, int root = -1);

// "exited with code N" (unsigned, unlike the original) / "killed by signal SIGTERM[15]".
std::string describe_status(int wait_status);

// ---- the container process -----------------------------------------------------

// Everything the child needs, built before fork: the child only copies pid
// digits into preallocated buffers and makes system calls.
class ExecImage {
 public:
  // What the knot holds for every start of its container.
  struct KnotHandles {
    // The container's stdin unless it is interactive or a socket is planned
    // at fd 0 (borrowed: it must outlive the image).
    int null_device = -1;
    // Restored in the container (knot_process_hygiene).
    rlimit core_limit{};
    // The Landlock ruleset the child restricts itself with; -1: none.
    int landlock_ruleset = -1;
    // KnotState::host_root for the after-setup-command; -1: none.
    int host_root = -1;
  };
  static Result<ExecImage> prepare(
      const policy::InstancePlan& plan, const std::string& term,
      const std::vector<std::string>& extra_args,
      const std::vector<std::pair<std::string, crypt::SecureBuffer>>& secrets,
      const KnotHandles& handles);
  ExecImage(ExecImage&&) = default;
  ExecImage& operator=(ExecImage&&) = default;

  std::string command_line() const;  // "EXE" "ARG"... for the stdio markers

 private:
  ExecImage() = default;
  friend class Container;
  std::string executable_;
  std::string workdir_;
  std::vector<std::string> args_;
  // Every "NAME=value\0" of the environment in one wiped buffer: it holds
  // decrypted secrets. Pid variables have 20 spare bytes after '='.
  crypt::SecureBuffer env_block_;
  std::vector<std::size_t> pid_slots_;  // offsets into env_block_
  std::vector<char*> argv_;
  std::vector<char*> envp_;
  std::uint32_t uid_ = 0, gid_ = 0;
  bool interactive_ = false;
  int null_device_ = -1;       // dup'ed onto fd 0 (non-interactive, no socket at 0)
  rlimit core_limit_{};        // the knot's own is 0 (no core of a knot holding secrets)
  int landlock_ruleset_ = -1;  // applied by the child right before seccomp
  int host_root_ = -1;         // KnotHandles::host_root
  std::string exec_label_;     // for /proc/thread-self/attr/exec; empty: none
  // Host-side sockets the tree handed over at their planned numbers: the
  // knot keeps them close-on-exec, the child clears the flag.
  std::vector<int> inherited_fds_;
  // Container-side listening sockets (bridged, not external), bound by the
  // child after the uid change, so it owns them.
  struct InnerSocket {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = 0;
    int fd = 0;
    int backlog = 128;
    bool reuse_addr = true, reuse_port = false, non_block = false;
    long port = 0;
  };
  std::vector<InnerSocket> sockets_;
  CapabilitySet caps_;
  SeccompProgram seccomp_;
};

// A started container process.
struct ContainerProcess {
  pid_t pid = -1;  // in the knot's PID namespace
  UniqueFd pidfd;
};

class Container {
 public:
  // clone3 (CLONE_PIDFD, CLONE_NEWCGROUP, CLONE_NEWUSER when the plan maps
  // ids), id maps written by the knot, then the child runs the hardening
  // sequence and execs. stdout/stderr: `output_fd` (-1: inherited). Errors
  // before exec come back as the child's ChildStatus: "child: setuid:
  // Operation not permitted".
  static Result<ContainerProcess> start(const policy::InstancePlan& plan, ExecImage& image,
                                        int output_fd);
};

// ---- supervision (docs/knot.md, "Supervision and exit codes") ---------------------

struct SuperviseOutcome {
  int exit_code = 2;               // the knot's exit code (0, 1, 2, 3)
  std::optional<int> last_status;  // raw wait status of the last death
  std::string error;               // why, when exit_code is 1
};

// Blocks SIGTERM/SIGINT/SIGCHLD/SIGHUP/SIGQUIT (call first thing in main).
void block_knot_signals() noexcept;

// The knot's own hygiene, right after block_knot_signals: every inherited
// descriptor above 2 close-on-exec, not dumpable and RLIMIT_CORE soft limit 0
// (it will hold decrypted secrets). Returns the caller's RLIMIT_CORE, which
// the container gets back, or an error naming the call.
Result<rlimit> knot_process_hygiene();

// Whether a SIGTERM/SIGINT record may stop the knot: only senders outside its
// PID namespace (the tree, lithos_cmd, an operator: pid 0 there) or the
// kernel may; a process of the container (pid > 0) may not.
inline bool stop_signal_accepted(std::uint32_t sender_pid) {
  return sender_pid == 0;
}

// The loop: starts, forwards SIGTERM, enforces kill-timeout, restarts when
// restart-process-only. `stdio_log` receives the marker lines and, copied by
// the knot from a pipe, the container's stdout and stderr (the container
// never holds the shared log file itself, docs/knot.md).
SuperviseOutcome supervise(const policy::InstancePlan& plan, ExecImage& image, int stdio_log,
                           const Logger& log);

}  // namespace lithos::runtime

namespace lithos::runtime {

// Removes `path` and everything below it without following symlinks (the
// state dir holds container-written files). A missing path is fine.
Result<void> remove_tree(const std::string& path);

// The command's status, written by the knot to <state>/exit-status for
// lithos_cmd: "exited N" or "signal N".
inline constexpr const char* kExitStatusFile = "exit-status";
void write_exit_status(int state_dir_fd, int wait_status) noexcept;
// nullopt when the file is absent or malformed; otherwise a wait status.
std::optional<int> read_exit_status(const std::string& state_dir);

}  // namespace lithos::runtime
