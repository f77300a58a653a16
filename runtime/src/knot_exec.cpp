// The container process (docs/knot.md "The container process"; unlike the
// original, supplementary groups are reset and docs/hardening.md applies) and
// the knot's standard streams and supervision loop (docs/knot.md,
// "Supervision and exit codes").
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>

#include "lithos/common/text.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/landlock.hpp"
#include "lithos/runtime/sockaddr.hpp"
#include "lithos/runtime/spawn.hpp"

namespace lithos::runtime {

using policy::InstancePlan;

namespace {

constexpr std::size_t kPidDigits = 20;

// Decimal digits of `value` into `out` (NUL-terminated), no allocation.
void format_pid(char* out, long value) noexcept {
  char tmp[kPidDigits];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < kPidDigits - 1);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
}

Result<void> write_proc_file(pid_t pid, const char* file, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return step_error("write_id_maps", path, errno, "open");
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return step_error("write_id_maps", path, errno, "write " + text);
  return {};
}

// The knot inherits the tree's negative oom_score_adj (docs/tree.md,
// "Crash-only"); its container gets the neutral 0 back so that the OOM
// killer picks a container, never a supervisor. A higher value (set by
// whoever started a lithos_cmd) is left as it is.
Result<void> neutral_oom_score(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/oom_score_adj";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return step_error("oom_score_adj", path, errno, "open");
  char text[16] = {};
  if (::read(fd.get(), text, sizeof text - 1) < 0)
    return step_error("oom_score_adj", path, errno, "read");
  if (std::strtol(text, nullptr, 10) >= 0) return {};
  if (::write(fd.get(), "0", 1) != 1) return step_error("oom_score_adj", path, errno, "write 0");
  return {};
}

std::string map_text(const std::vector<policy::IdMapEntry>& map) {
  std::string out;
  for (const auto& e : map)
    out += std::to_string(e.inside) + " " + std::to_string(e.outside) + " " +
           std::to_string(e.count) + "\n";
  return out;
}

double monotonic_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void arm_timer(int fd, std::int64_t ms) {
  itimerspec spec{};
  if (ms <= 0) ms = 1;  // 0 would disarm
  spec.it_value.tv_sec = ms / 1000;
  spec.it_value.tv_nsec = (ms % 1000) * 1000000;
  ::timerfd_settime(fd, 0, &spec, nullptr);
}

std::string format_timeout(std::int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    std::string out = "killed by signal SIG" + std::string(abbrev ? abbrev : "UNKNOWN") + "[" +
                      std::to_string(sig) + "]";
    if (WCOREDUMP(status)) out += " (core dumped)";
    return out;
  }
  return "unknown status " + std::to_string(status);
}

Result<ExecImage> ExecImage::prepare(
    const InstancePlan& plan, const std::string& term, const std::vector<std::string>& extra_args,
    const std::vector<std::pair<std::string, crypt::SecureBuffer>>& secrets,
    const KnotHandles& handles) {
  ExecImage image;
  image.executable_ = plan.executable;
  image.workdir_ = plan.workdir;
  image.uid_ = plan.uid;
  image.gid_ = plan.gid;
  image.interactive_ = plan.interactive;
  image.args_ = plan.argv;
  for (const auto& a : extra_args) image.args_.push_back(a);
  image.core_limit_ = handles.core_limit;
  image.landlock_ruleset_ = handles.landlock_ruleset;
  image.host_root_ = handles.host_root;
  // AppArmor takes "exec PROFILE", SELinux the context itself.
  if (!plan.apparmor_profile.empty()) image.exec_label_ = "exec " + plan.apparmor_profile;
  if (!plan.selinux_label.empty()) image.exec_label_ = plan.selinux_label;
  bool socket_at_stdin = false;
  for (const auto& sp : plan.sockets) {
    if (sp.fd == 0) socket_at_stdin = true;
    if (sp.host_side) image.inherited_fds_.push_back(static_cast<int>(sp.fd));
  }
  image.null_device_ = plan.interactive || socket_at_stdin ? -1 : handles.null_device;

  // docs/knot.md (Environment): TERM, environ, secrets, LITHOS_NAME/LITHOS_CONFIG, pid
  // variables. Values are views (secrets into their wiped buffers) until
  // they are copied once into the wiped environment block.
  static constexpr char kPidSpace[kPidDigits] = {};
  const std::string_view pid_space(kPidSpace, kPidDigits);
  const std::string term_value = term.empty() ? "dumb" : term;
  std::map<std::string_view, std::string_view> env;
  env["TERM"] = term_value;
  for (const auto& [k, v] : plan.environ) env[k] = v;
  for (const auto& [k, v] : secrets) env[k] = v.view();
  for (const auto& [k, v] : plan.environ)
    if (k == "LITHOS_NAME" || k == "LITHOS_CONFIG") env[k] = v;
  for (const auto& k : plan.pid_variables) env[k] = pid_space;
  std::size_t total = 0;
  for (const auto& [k, v] : env) total += k.size() + 1 + v.size() + 1;
  image.env_block_ = crypt::SecureBuffer(total);
  std::vector<std::size_t> starts;
  std::size_t at = 0;
  auto* block = reinterpret_cast<char*>(image.env_block_.data());
  for (const auto& [k, v] : env) {
    starts.push_back(at);
    std::memcpy(block + at, k.data(), k.size());
    block[at + k.size()] = '=';
    std::size_t value_at = at + k.size() + 1;
    if (std::find(plan.pid_variables.begin(), plan.pid_variables.end(), k) !=
        plan.pid_variables.end())
      image.pid_slots_.push_back(value_at);
    else if (!v.empty())
      std::memcpy(block + value_at, v.data(), v.size());
    at = value_at + v.size();
    block[at++] = '\0';
  }

  for (const auto& sp : plan.sockets) {
    if (sp.host_side || !plan.network) continue;  // the tree's (inherited) sockets
    InnerSocket in;
    in.fd = static_cast<int>(sp.fd);
    in.backlog = static_cast<int>(sp.listen_backlog);
    in.reuse_addr = sp.reuse_addr;
    in.reuse_port = sp.reuse_port;
    in.non_block = sp.set_non_block;
    in.port = sp.port;
    in.len = to_sockaddr(sp.host, static_cast<std::uint16_t>(sp.port), in.addr);
    in.family = sp.host.v6 ? AF_INET6 : AF_INET;
    image.sockets_.push_back(in);
  }

  auto caps = capabilities_of_mask(plan.capability_mask);
  if (!caps) return Failure<StepError>{caps.error()};
  image.caps_ = *caps;
  auto seccomp = seccomp_program_of(plan.seccomp);
  if (!seccomp) return Failure<StepError>{seccomp.error()};
  image.seccomp_ = std::move(*seccomp);

  for (auto& a : image.args_) image.argv_.push_back(a.data());
  image.argv_.push_back(nullptr);
  for (auto offset : starts) image.envp_.push_back(block + offset);
  image.envp_.push_back(nullptr);
  return image;
}

std::string ExecImage::command_line() const {
  std::string out;
  for (const auto& a : args_) out += (out.empty() ? "" : " ") + debug_quote(a);
  return out;
}

int write_exec_label(std::string_view label) noexcept {
  int fd = ::open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, label.data(), label.size());
  int err = n == static_cast<ssize_t>(label.size()) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return err;
}

Result<ContainerProcess> Container::start(const InstancePlan& plan, ExecImage& image,
                                          int output_fd) {
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return step_error("spawn", "", errno, "pipe");
  UniqueFd status_read(status_pipe[0]), status_write(status_pipe[1]);
  int release_pipe[2];
  if (::pipe2(release_pipe, O_CLOEXEC) != 0) return step_error("spawn", "", errno, "pipe");
  UniqueFd release_read(release_pipe[0]), release_write(release_pipe[1]);

  // Everything the child touches is ready now.
  const sock_fprog program = image.seccomp_.fprog();
  const bool userns = plan.user_namespace;
  std::vector<char*> pid_slots;
  auto* block = reinterpret_cast<char*>(image.env_block_.data());
  for (auto offset : image.pid_slots_) pid_slots.push_back(block + offset);

  int pidfd = -1;
  // A cgroup namespace of its own: the container sees its cgroup as "/" and
  // no host cgroup path (docs/hardening.md).
  unsigned long flags =
      CLONE_NEWCGROUP | (userns ? CLONE_NEWUSER : 0) | (plan.network ? CLONE_NEWNET : 0);
  pid_t pid = clone_with_pidfd(flags, &pidfd);
  if (pid < 0) return step_error("spawn", plan.executable, errno, "clone3");
  if (pid == 0) {
    int report = status_write.get();
    // Our copy of the write end would keep the read below from ever seeing
    // EOF when the knot gives up: it must be closed first.
    ::close(release_pipe[1]);
    // Wait until the knot has written the id maps (or given up).
    char go = 0;
    while (::read(release_read.get(), &go, 1) < 0 && errno == EINTR) {
    }
    if (go != 'g') ::_exit(127);
    if (!image.interactive_) {
      // No controlling terminal: /dev/tty gives ENXIO and no ioctl can reach
      // the operator's terminal (docs/hardening.md, Terminals).
      if (::setsid() < 0) report_child_failure(report, {"setsid", errno, -1});
    }
    if (image.null_device_ >= 0 && ::dup2(image.null_device_, STDIN_FILENO) < 0)
      report_child_failure(report, {"dup2(stdin)", errno, 0});
    for (int fd : image.inherited_fds_) {
      if (::fcntl(fd, F_SETFD, 0) != 0) report_child_failure(report, {"fcntl(socket)", errno, fd});
    }
    if (::setrlimit(RLIMIT_CORE, &image.core_limit_) != 0)
      report_child_failure(report, {"setrlimit(RLIMIT_CORE)", errno, -1});
    // As root, before the uid changes: the LSM label the exec will take.
    if (!image.exec_label_.empty()) {
      if (int err = write_exec_label(image.exec_label_); err != 0)
        report_child_failure(report, {"write /proc/thread-self/attr/exec (LSM label)", err, -1});
    }
    if (::setgroups(0, nullptr) != 0) report_child_failure(report, {"setgroups", errno, 0});
    if (auto st = keep_capabilities_across_setuid(); !st.ok()) report_child_failure(report, st);
    if (::setgid(image.gid_) != 0) report_child_failure(report, {"setgid", errno, image.gid_});
    if (::setuid(image.uid_) != 0) report_child_failure(report, {"setuid", errno, image.uid_});
    if (auto st = drop_capabilities(image.caps_); !st.ok()) report_child_failure(report, st);
    // After the last credential change, which clears it.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
      report_child_failure(report, {"prctl(PR_SET_PDEATHSIG)", errno, -1});
    if (auto st = set_no_new_privs(); !st.ok()) report_child_failure(report, st);
    if (::chdir(image.workdir_.c_str()) != 0)
      report_child_failure(report, {"chdir(workdir)", errno, -1});
    if (output_fd >= 0) {
      if (::dup2(output_fd, STDOUT_FILENO) < 0)
        report_child_failure(report, {"dup2(stdout)", errno, 1});
      if (::dup2(output_fd, STDERR_FILENO) < 0)
        report_child_failure(report, {"dup2(stderr)", errno, 2});
    }
    reset_signals();
    for (const auto& sock : image.sockets_) {
      int type = SOCK_STREAM | (sock.non_block ? SOCK_NONBLOCK : 0);
      int fd = ::socket(sock.family, type, 0);
      if (fd < 0) report_child_failure(report, {"socket", errno, sock.port});
      int one = 1;
      if (sock.reuse_addr && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        report_child_failure(report, {"setsockopt(SO_REUSEADDR)", errno, sock.port});
      if (sock.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        report_child_failure(report, {"setsockopt(SO_REUSEPORT)", errno, sock.port});
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&sock.addr), sock.len) != 0)
        report_child_failure(report, {"bind", errno, sock.port});
      if (::listen(fd, sock.backlog) != 0)
        report_child_failure(report, {"listen", errno, sock.port});
      if (fd != sock.fd) {
        if (::dup2(fd, sock.fd) < 0) report_child_failure(report, {"dup2(socket)", errno, sock.fd});
        ::close(fd);
      }
    }
    long self = ::syscall(SYS_getpid);
    for (char* slot : pid_slots) format_pid(slot, self);
    // Landlock after the sockets are bound, right before the filter.
    if (int err = apply_landlock(image.landlock_ruleset_); err != 0)
      report_child_failure(report, {"landlock_restrict_self", err, -1});
    if (int err = load_seccomp(program); err != 0)
      report_child_failure(report, {"seccomp", err, -1});
    ::execve(image.executable_.c_str(), image.argv_.data(), image.envp_.data());
    report_child_failure(report, {"execve", errno, -1});
  }
  ContainerProcess process;
  process.pid = pid;
  process.pidfd.reset(pidfd);
  status_write.reset();
  release_read.reset();

  auto abort_child = [&](StepError error) -> Result<ContainerProcess> {
    release_write.reset();  // the child exits without 'g'
    ::syscall(SYS_pidfd_send_signal, process.pidfd.get(), SIGKILL, nullptr, 0);
    int ignored = 0;
    ::waitpid(pid, &ignored, 0);
    return Failure<StepError>{std::move(error)};
  };
  if (userns) {
    // The knot is root in the parent namespace: maps are written directly
    // ([inside, inside + count) per line); setgroups stays allowed.
    if (auto r = write_proc_file(pid, "uid_map", map_text(plan.uid_map)); !r)
      return abort_child(r.error());
    if (auto r = write_proc_file(pid, "gid_map", map_text(plan.gid_map)); !r)
      return abort_child(r.error());
  }
  if (plan.network) {
    if (auto r = setup_bridged_network(plan, process.pidfd.get(), pid, image.host_root_); !r)
      return abort_child(r.error());
  }
  if (auto r = neutral_oom_score(pid); !r) return abort_child(r.error());
  char go = 'g';
  if (::write(release_write.get(), &go, 1) != 1)
    return abort_child(StepError{"spawn", "", errno, "release the child", {}});
  release_write.reset();

  if (auto failure = read_child_status(status_read.get())) {
    int ignored = 0;
    ::waitpid(pid, &ignored, 0);
    std::string arg = failure->arg >= 0 ? std::to_string(failure->arg) : std::string();
    return step_error(std::string("child: ") + (failure->op ? failure->op : "?"), arg, failure->err,
                      "before exec of " + plan.executable);
  }
  return process;
}

void block_knot_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kKnotSignals) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

SuperviseOutcome supervise(const InstancePlan& plan, ExecImage& image, int stdio_log,
                           const Logger& log) {
  SuperviseOutcome outcome;
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD}) sigaddset(&set, sig);
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!sigfd || !timer) {
    outcome.error = std::string("signalfd/timerfd: ") + std::strerror(errno);
    log.error("Fatal error running \"" + plan.name + "\": " + outcome.error);
    outcome.exit_code = 1;
    return outcome;
  }
  const bool daemon = plan.container_kind == policy::ContainerKind::Daemon;
  bool should_exit = !daemon || !plan.restart_process_only;
  int exit_code = 2;
  const std::string qname = debug_quote(plan.name);
  auto marker = [&](const std::string& text) {
    write_all(stdio_log, rfc3339_now() + ": ----- " + text + " -----\n");
  };

  // The container's stdout and stderr: a pipe the knot copies into the
  // shared log, so that no container holds the log file itself (it could
  // truncate other instances' lines, docs/knot.md). One pipe for all starts.
  UniqueFd relay_read, relay_write;
  if (!plan.interactive && !plan.stdout_stderr_file) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      outcome.error = std::string("pipe for the container's output: ") + std::strerror(errno);
      log.error("Fatal error running \"" + plan.name + "\": " + outcome.error);
      outcome.exit_code = 1;
      return outcome;
    }
    relay_read.reset(fds[0]);
    relay_write.reset(fds[1]);
    // The container's end blocks as a file would; only the knot's end polls.
    ::fcntl(relay_write.get(), F_SETFL, 0);
  }
  std::vector<char> relay_buffer(relay_read ? 65536 : 0);
  // Copies what is in the pipe now into the log; never blocks.
  auto relay = [&] {
    if (!relay_read) return;
    while (true) {
      ssize_t n = ::read(relay_read.get(), relay_buffer.data(), relay_buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      write_all(stdio_log, std::string_view(relay_buffer.data(), static_cast<std::size_t>(n)));
    }
  };

  auto drain_signals = [&](bool* child_died, pid_t child, int* status, bool* term) {
    signalfd_siginfo info{};
    while (::read(sigfd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if ((info.ssi_signo == SIGINT || info.ssi_signo == SIGTERM) &&
          !stop_signal_accepted(info.ssi_pid)) {
        log.warn("Ignored " + std::string(info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM") +
                 " from pid " + std::to_string(info.ssi_pid) + " inside the container of " + qname);
        continue;
      }
      if (info.ssi_signo == SIGINT) {
        should_exit = true;
      } else if (info.ssi_signo == SIGTERM) {
        should_exit = true;
        exit_code = 0;
        *term = true;
      } else if (info.ssi_signo == SIGCHLD) {
        // PID 1: reap every child, orphans included.
        int st = 0;
        pid_t reaped;
        while ((reaped = ::waitpid(-1, &st, WNOHANG)) > 0) {
          if (reaped == child) {
            *child_died = true;
            *status = st;
          }
        }
      }
    }
  };

  while (true) {
    UniqueFd output;
    int output_fd = relay_write.get();
    if (plan.interactive) {
      output_fd = -1;
    } else if (plan.stdout_stderr_file) {
      // After pivot_root: resolved inside the container (docs/knot.md), no symlinks;
      // a FIFO planted there fails at once instead of blocking the knot.
      UniqueFd here(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
      auto opened =
          open_regular_in_root(here.get(), *plan.stdout_stderr_file,
                               O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY, "open_stdout_stderr");
      if (!opened) {
        outcome.error = opened.error().what();
        log.error("Fatal error running \"" + plan.name + "\": " + outcome.error);
        outcome.exit_code = 1;
        return outcome;
      }
      output = std::move(*opened);
      output_fd = output.get();
    }
    marker("Starting " + qname + ": " + image.command_line());
    log.info("Starting " + qname + ": " + image.command_line());
    double started = monotonic_seconds();
    auto process = Container::start(plan, image, output_fd);
    output.reset();
    if (!process) {
      outcome.error = process.error().what();
      log.error("Fatal error running \"" + plan.name + "\": " + outcome.error);
      outcome.exit_code = 1;
      return outcome;
    }
    // The exec went through (the child's status pipe closed on it).
    log.info("Process " + qname + " is running its executable (pid " +
             std::to_string(process->pid) + ")");

    bool died = false, term = false, term_sent = false;
    int status = 0;
    while (!died) {
      pollfd fds[3] = {{sigfd.get(), POLLIN, 0},
                       {relay_read ? relay_read.get() : -1, POLLIN, 0},
                       {term_sent ? timer.get() : -1, POLLIN, 0}};
      int r = ::poll(fds, 3, -1);
      if (r < 0 && errno != EINTR) break;
      relay();
      drain_signals(&died, process->pid, &status, &term);
      if (died) break;
      if (term && !term_sent) {
        ::syscall(SYS_pidfd_send_signal, process->pidfd.get(), SIGTERM, nullptr, 0);
        term_sent = true;
        arm_timer(timer.get(), plan.kill_timeout_ms);
      }
      if (term_sent && (fds[2].revents & POLLIN) != 0) {
        std::uint64_t ticks = 0;
        [[maybe_unused]] ssize_t n = ::read(timer.get(), &ticks, sizeof ticks);
        auto uptime = std::to_string(static_cast<long>(monotonic_seconds() - started));
        std::string text = "Process " + qname + " did not respond to SIGTERM in " +
                           format_timeout(plan.kill_timeout_ms) + ", uptime " + uptime +
                           "s. Killing..";
        relay();
        marker(text);
        log.error(text);
        outcome.exit_code = 3;
        return outcome;  // PID 1 exits: the kernel kills the namespace
      }
    }
    relay();  // the dead process's last words come before its marker
    outcome.last_status = status;
    unsigned code = WIFEXITED(status) ? static_cast<unsigned>(WEXITSTATUS(status)) : 256;
    bool by_sigterm = WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
    bool listed = std::find(plan.normal_exit_codes.begin(), plan.normal_exit_codes.end(),
                            static_cast<std::int32_t>(code)) != plan.normal_exit_codes.end();
    const bool normal = by_sigterm || (!plan.normal_exit_codes.empty() && listed) ||
                        (plan.normal_exit_codes.empty() && !daemon && code == 0);
    if (normal) exit_code = 0;
    auto uptime = std::to_string(static_cast<long>(monotonic_seconds() - started));
    std::string text =
        "Process " + qname + " " + describe_status(status) + ", uptime " + uptime + "s";
    marker(text);
    // A stop (SIGTERM) or a normal exit code is routine; anything else is a crash.
    log.log(normal ? LogLevel::Info : LogLevel::Error, text);
    if (should_exit) {
      outcome.exit_code = exit_code;
      return outcome;
    }
    // restart-process-only: wait for start + restart-timeout, still
    // answering signals.
    std::int64_t elapsed_ms = static_cast<std::int64_t>((monotonic_seconds() - started) * 1000);
    if (elapsed_ms < plan.restart_timeout_ms) {
      arm_timer(timer.get(), plan.restart_timeout_ms - elapsed_ms);
      bool expired = false;
      while (!expired && !should_exit) {
        pollfd fds[3] = {{sigfd.get(), POLLIN, 0},
                         {timer.get(), POLLIN, 0},
                         {relay_read ? relay_read.get() : -1, POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
        relay();  // orphans of the dead process may still write
        bool ignored_died = false;
        int ignored_status = 0;
        bool ignored_term = false;
        drain_signals(&ignored_died, -1, &ignored_status, &ignored_term);
        if ((fds[1].revents & POLLIN) != 0) expired = true;
      }
      itimerspec off{};
      ::timerfd_settime(timer.get(), 0, &off, nullptr);
      if (should_exit) {
        outcome.exit_code = exit_code;
        return outcome;
      }
    }
  }
}

}  // namespace lithos::runtime
