// The supervisor proper: startup, adoption, garbage collection, the config
// log, the event loop, re-exec, shutdown and the metrics file (docs/tree.md).
#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "lithos/policy/check.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/confine.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "lithos/runtime/spawn.hpp"
#include "tree_support.hpp"

namespace lithos::runtime::tree_detail {

namespace sv = lithos::policy::supervise;

namespace {

// write(2) until done; false (errno set) on an error.
bool write_all_checked(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

constexpr std::uint64_t kSignalTag = 1;
constexpr std::uint64_t kTimerTag = 2;
constexpr std::uint64_t kPidTag = 1ULL << 32;
constexpr off_t kConfigLogRotateSize = 10485760;
// The config reader's wall-clock limit (its CPU limit is 30 s): a reader
// blocked on something (a hung file system) must not hold the tree's start.
constexpr Ns kConfigReadTimeout = 60'000 * kMs;

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

bool pidfd_signal(int pidfd, int sig) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

void mkdir_p(const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    std::string prefix = path.substr(0, slash);
    if (!prefix.empty()) ::mkdir(prefix.c_str(), 0755);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

std::string quote(const std::string& s) {
  return "\"" + s + "\"";
}

std::string describe_diag(const policy::Diagnostic& d) {
  std::string where = d.file;
  if (d.mark.line > 0) where += ":" + std::to_string(d.mark.line);
  return where + ": " + d.message;
}

// Status text as the original logged it, but with the exit code unsigned
// (the original printed codes above 127 as negative numbers).
std::string status_text(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exited with code " + std::to_string(info.si_status);
  const char* abbrev = sigabbrev_np(info.si_status);
  std::string out = std::string("killed by signal ") + (abbrev ? "SIG" : "") +
                    (abbrev ? abbrev : "?") + "[" + std::to_string(info.si_status) + "]";
  if (info.si_code == CLD_DUMPED) out += " (core dumped)";
  return out;
}

}  // namespace

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

int Tree::fatal(const std::string& message) {
  std::cerr << "Fatal error: " << message << "\n";
  log_.error(message);
  return 1;
}

// ---- startup ------------------------------------------------------------------------

int Tree::run() {
  const Ns run_start = now_ns();
  // Master config first: it says where everything else is.
  policy::Diagnostics diags;
  policy::LoadOptions load;
  load.skip_process_configs = true;
  auto master_only = policy::load_tree(opt_.master_path, load, diags, nullptr);
  if (!master_only.master) {
    std::string why;
    for (const auto& d : diags.items()) why += (why.empty() ? "" : "; ") + describe_diag(d);
    return fatal("Error reading master config: " + why);
  }
  const auto& master = master_only.master->value;
  // The OOM killer must pick a container, never the supervisor (docs/tree.md,
  // "Crash-only"): knots inherit this, containers get 0 back.
  bool oom_adjusted = set_oom_score_adj(kSupervisorOomScoreAdj);
  int oom_errno = errno;
  // Fatal on a first start only: after a reload the knots are already
  // running, and a tree that exits supervises nothing (docs/tree.md,
  // "Crash-only"); their starts fail with the knot's own message instead.
  bool devfs_ok = is_directory(master.devfs_dir);
  if (!devfs_ok && !opt_.inherited_state)
    return fatal("Devfs dir (" + master.devfs_dir + ") must exist and contain device nodes");

  runtime_dir_ = master.runtime_dir;
  state_root_ = policy::join_path(runtime_dir_, master.state_dir);
  config_log_dir_ = master.config_log_dir;
  for (const auto& d :
       {runtime_dir_, state_root_, policy::join_path(runtime_dir_, master.mount_dir),
        master.default_log_dir, master.stdio_log_dir})
    mkdir_p(d);
  if (config_log_dir_) mkdir_p(*config_log_dir_);
  if (master.metrics_dir) {
    mkdir_p(*master.metrics_dir);
    metrics_dir_path_ = *master.metrics_dir;
    metrics_file_ = policy::join_path(*master.metrics_dir, "lithos_tree.prom");
  }

  // Logging (docs/tree.md "Logging"): syslog or the log file.
  log_.set_stderr(opt_.log_stderr);
  master_log_level_ = master.log_level;
  log_.set_level(
      parse_log_level(opt_.log_level.value_or(master.log_level)).value_or(LogLevel::Warn));
  // A log that cannot be opened (a full disk, a directory at its name)
  // costs log lines, never the service: stderr takes them (the journal
  // under systemd).
  if (auto opened = open_configured_log(
          log_, master, policy::join_path(master.default_log_dir, master.log_file), "");
      !opened) {
    log_.set_stderr(true);
    log_.error("Can't open the log, logging to stderr: " + opened.error().what());
  }
  if (!oom_adjusted)
    log_.warn("Can't set oom_score_adj " + std::to_string(kSupervisorOomScoreAdj) + ": " +
              errno_text(oom_errno) + " (the OOM killer may pick the tree)");
  if (!devfs_ok)
    log_.error("Devfs dir (" + master.devfs_dir +
               ") is missing: running instances are kept, starts fail until it is back");

  // One tree per master: the lock, held until this process exits (and
  // across its re-execs), says whether another tree runs. The pid file
  // is only a pointer for lithos_switch and operators.
  auto lock = take_tree_lock(runtime_dir_);
  if (!lock) return fatal(lock.error().what());
  lock_ = std::move(*lock);
  keep_lock_across_crash_exec(lock_.get());

  std::string pid_file = policy::join_path(runtime_dir_, "master.pid");
  pid_t self = ::getpid();
  bool pid_file_is_ours = false;
  if (auto text = read_small_file(pid_file))
    pid_file_is_ours = std::strtol(text->c_str(), nullptr, 10) == self;
  if (!pid_file_is_ours) {  // after a re-exec the file is left as it is
    // The runtime dir is root's, but nothing written there follows a name
    // someone else could have planted (safe_files.hpp).
    if (auto written = replace_file(pid_file, std::to_string(self) + "\n", 0644); !written) {
      // Fatal on a first start; after a re-exec the knots depend on us staying.
      if (!opt_.inherited_state) return fatal("Can't write pid file: " + written.error().what());
      log_.error("Can't write pid file: " + written.error().what());
    }
  }

  // The tree itself lives in <cgroup-name> (docs/tree.md "Startup"). Fatal on a first
  // start; after a re-exec the knots depend on us staying.
  if (master.cgroup_name) {
    if (auto joined = join_own_cgroup(master); !joined) {
      if (!opt_.inherited_state) return fatal(joined.error().what());
      log_.error(joined.error().what());
    }
  }

  // Event sources: every signal of tree_signals() is blocked since main().
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : tree_signals()) sigaddset(&mask, sig);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!signal_fd_ || !timer_ || !epoll_) return fatal("event setup: " + errno_text(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kSignalTag;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &ev);
  ev.data.u64 = kTimerTag;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &ev);

  if (opt_.inherited_state) apply_inherited_state();
  read_metrics();
  restarts_ += 1;
  // Phase times go into the "started" line: a slow reload says where.
  Ns phase_start = now_ns();
  auto phase_ms = [&phase_start] {
    Ns now = now_ns();
    auto ms = (now - phase_start) / kMs;
    phase_start = now;
    return std::to_string(ms) + " ms";
  };
  std::string phases =
      "master and setup " + std::to_string((phase_start - run_start) / kMs) + " ms";
  fileno_ceiling_ = fileno_ceiling();
  auto pending = start_reading_configuration();
  std::set<pid_t> known;
  for (const auto& [pid, knot] : inherited_knots_) known.insert(pid);
  std::optional<std::vector<ProcEntry>> children;
  if (inherited_children_only_) children = scan_own_children(known);
  auto processes = children ? std::move(*children) : scan_processes(self, known);
  // The reading child is ours but no knot: never a candidate to stop (once
  // reaped, its pid may belong to anyone).
  std::erase_if(processes, [&](const ProcEntry& p) { return p.pid == pending.pid; });
  phases += ", process list " + phase_ms();
  finish_reading_configuration(std::move(pending));
  phases += ", configuration (after the list) " + phase_ms();
  prepare_cgroups();
  sockets_.recover(log_);
  // Whatever else we inherited (from the launcher, a shell, a service
  // manager) must not leak into knots: everything is close-on-exec now.
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
    log_.warn("close_range(CLOEXEC): " + errno_text(errno));
  phases += ", cgroups and sockets " + phase_ms();
  adopt(processes);
  std::vector<ProcEntry>{}.swap(processes);
  phases += ", adoption " + phase_ms();
  collect_garbage();
  phases += ", cleanup " + phase_ms();
  reap_all();                // zombies whose SIGCHLD the previous image consumed
  inherited_kills_.clear();  // used by adopt(); pids may be reused later
  inherited_knots_.clear();
  // Loading and checking every config peaks far above what the loop keeps:
  // give the freed heap back to the system (the tree lives for months).
  ::malloc_trim(0);
  Ns now = now_ns();
  for (auto& [name, instance] : instances_) {
    if (instance.pid != 0) continue;
    auto last = inherited_starts_.find(name);
    // Throttles survive the re-exec (the original restarted pending ones at once).
    std::optional<Ns> last_start;
    if (last != inherited_starts_.end()) last_start = last->second;
    instance.last_start = last_start;
    instance.due = sv::next_start(now, last_start, instance.plan->restart_timeout_ms * kMs);
  }
  log_.info("lithos_tree started (pid " + std::to_string(self) + "), " +
            std::to_string(instances_.size()) + " instances configured (" + phases + ")");
  // Also after a re-exec: the new image ends the reload the old one began.
  notify("READY=1\nSTATUS=supervising " + std::to_string(instances_.size()) + " instances");
  answer_reload(inherited_reload_token_, true,
                "reloaded, " + std::to_string(instances_.size()) + " instances configured");
  loop();

  // Every scope goes at shutdown, also those of instances that had no knot
  // at that moment (waiting out their restart-timeout).
  if (shutting_down_ && children_.empty())
    for (const auto& [name, instance] : instances_) remove_scope(name);
  // Empty the state dir: nothing of ours runs any more.
  if (DIR* d = ::opendir(state_root_.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names)
      if (auto removed = remove_tree(policy::join_path(state_root_, n)); !removed)
        log_.error(removed.error().what());
  }
  write_metrics();
  log_.info("lithos_tree stopped");
  return 0;
}

// Reading and checking every config peaks far above what the loop keeps
// (all plans at once, the YAML trees, the checks' tables), and a heap that
// once held it stays fragmented and resident for the tree's lifetime. So a
// short-lived child reads, checks and logs, and hands the loop's summaries
// back over a pipe: the tree's own heap only ever holds the summaries, and
// the parser's and checker's code is never paged into the tree.
// The child runs while the tree scans /proc for adoption: on a host with a
// thousand instances both take ~100 ms, and there are two cores.
PendingConfiguration Tree::start_reading_configuration() {
  PendingConfiguration pending;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    log_.error("Can't read configuration: pipe: " + errno_text(errno));
    return pending;
  }
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  // The plan store: the reader writes every encoded launch plan into it; the
  // tree copies one into a sealed memfd of its own per start. Its pages are
  // not mapped by the tree, so a thousand plans cost the tree no RSS.
  UniqueFd plans(static_cast<int>(::syscall(SYS_memfd_create, "lithos-plans", MFD_CLOEXEC)));
  if (!plans) {
    log_.error("Can't read configuration: memfd_create: " + errno_text(errno));
    return pending;
  }
  auto progress = ReaderProgress::create();
  if (!progress) {
    log_.error("Can't read configuration: " + progress.error().what());
    return pending;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    log_.error("Can't read configuration: fork: " + errno_text(errno));
    return pending;
  }
  if (pid == 0) {
    read_end.reset();
    progress->install();
    // Under memory pressure the reader goes first: the tree then keeps what
    // runs (keep_everything) and reports it.
    set_oom_score_adj(kConfigReaderOomScoreAdj);
    // Image-supplied YAML is parsed here: as nobody, with only
    // CAP_DAC_READ_SEARCH, under a read-only seccomp allow-list and limits
    // (confine.hpp, docs/tree.md). Only the pipe and the log stay open.
    ConfineOptions confine;
    confine.keep_fds.push_back(write_end.get());
    confine.keep_fds.push_back(plans.get());
    if (log_.descriptor() >= 0) confine.keep_fds.push_back(log_.descriptor());
    if (auto confined = confine_config_reader(confine); !confined) {
      log_.error("Can't read configuration: " + confined.error().what());
      ::_exit(2);
    }
    write_all(write_end.get(), encode_configuration(read_configuration(plans.get())));
    ::_exit(0);
  }
  pending.started = now_ns();
  pending.pid = pid;
  pending.read_end = std::move(read_end);
  pending.plans = std::move(plans);
  pending.progress.emplace(std::move(*progress));
  return pending;
}

bool Tree::finish_reading_configuration(PendingConfiguration pending) {
  if (pending.pid <= 0) return keep_everything();
  std::string wire;
  char buf[65536];
  bool timed_out = false;
  while (true) {
    Ns left = pending.started + kConfigReadTimeout - now_ns();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pending.read_end.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::min<Ns>(left / kMs + 1, INT_MAX)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    if (ready < 0) break;
    ssize_t n = ::read(pending.read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    wire.append(buf, static_cast<std::size_t>(n));
  }
  // Not reaped yet, so the pid is still the reader's.
  if (timed_out) ::kill(pending.pid, SIGKILL);
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pending.pid), &info, WEXITED) < 0 && errno == EINTR) {
  }
  bool clean_exit = info.si_code == CLD_EXITED && info.si_status == 0;
  auto loaded = clean_exit && !timed_out ? decode_configuration(wire) : std::nullopt;
  std::string{}.swap(wire);
  if (!loaded) {
    // A crash, a limit or a timeout of the reader is a configuration
    // error: the tree keeps what runs (keep_everything), it never dies.
    std::string what = timed_out ? "did not finish within " +
                                       std::to_string(kConfigReadTimeout / kMs / 1000) +
                                       " s and was killed"
                       : clean_exit ? "sent a malformed summary"
                                    : "ended: " + status_text(info);
    if (pending.progress) what += pending.progress->while_reading();
    log_.error("Configuration error: the config reader (pid " + std::to_string(pending.pid) + ") " +
               what);
    return keep_everything();
  }
  write_config_logs(loaded->config_log);
  plans_ = std::move(pending.plans);
  sandboxes_ = loaded->sandboxes;
  for (auto& name : loaded->unreadable) unreadable_.insert(std::move(name));
  for (auto& summary : loaded->instances) {
    Instance instance;
    instance.name = summary.name;
    instance.plan = std::move(summary);
    instances_.emplace(instance.name, std::move(instance));
  }
  set_up_counters();
  return true;
}

// Unreadable configuration keeps what runs, for the whole host: nothing can be told
// retired, so every running knot is kept and nothing new starts.
constexpr std::string_view kKeepEverything =
    "Can't read the master config or the sandboxes directory: every running instance is kept, "
    "nothing is started";

bool Tree::keep_everything() {
  log_.error(kKeepEverything);
  unreadable_.insert(std::string(sv::kEverything));
  set_up_counters();
  return false;
}

// Per-process metrics exist for the entries configured now; the
// counters read back from the metrics file continue.
void Tree::set_up_counters() {
  std::map<std::pair<std::string, std::string>, Counters> configured;
  for (const auto& [name, instance] : instances_) {
    std::pair<std::string, std::string> key{instance.plan->sandbox, instance.plan->child};
    auto previous = per_process_.find(key);
    configured[key] = previous != per_process_.end() ? previous->second : Counters{};
    configured[key].running = 0;
  }
  per_process_ = std::move(configured);
  metrics_dirty_ = true;
}

// In the reading child: everything the loop needs of the configuration,
// with every diagnostic and config-log line written on the way.
LoadedConfiguration Tree::read_configuration(int plan_store) {
  LoadedConfiguration out;
  policy::Diagnostics diags;
  auto config = policy::load_tree(opt_.master_path, {}, diags, nullptr);
  policy::CheckOptions check;
  check.plans_for_commands = false;
  check.max_fileno_limit = fileno_ceiling_.most;
  check.max_fileno_limit_reason = fileno_ceiling_.reason;
  std::vector<policy::InstancePlan> plans;
  if (config.master) policy::check_tree(config, check, diags, nullptr, &plans);
  for (const auto& d : diags.items()) {
    if (d.severity == policy::Severity::Error)
      log_.error("Config error: " + describe_diag(d));
    else
      log_.warn("Config warning: " + describe_diag(d));
  }
  bool sandbox_list_unreadable = !config.master;
  for (const auto& d : diags.items())
    if (d.code == policy::Code::FileUnreadable && d.severity == policy::Severity::Error &&
        config.master && d.file == config.sandboxes_dir())
      sandbox_list_unreadable = true;
  std::set<std::string> unreadable;
  if (sandbox_list_unreadable) {
    // Keep what runs, for the whole host (see kKeepEverything).
    log_.error(kKeepEverything);
    unreadable.insert(std::string(sv::kEverything));
    plans.clear();
  }
  for (const auto& sandbox : config.sandboxes) {
    if (!sandbox.config || !sandbox.processes) {
      // Running instances of a sandbox we cannot read are kept (the original stopped them).
      log_.error("Can't read config of sandbox " + quote(sandbox.name) +
                 ": its running instances are kept, nothing new is started");
      unreadable.insert(sandbox.name + "/");
      continue;
    }
    ++out.sandboxes;
    if (config_log_dir_)
      out.config_log.emplace_back(
          sandbox.name,
          rfc3339_now() + " " + policy::process_config_json(sandbox.processes->value) + "\n");
    for (const auto& [child, entry] : sandbox.processes->value) {
      if (entry.kind != policy::ProcessKind::Daemon) continue;
      for (std::uint64_t i = 0; i < entry.instances; ++i)
        unreadable.insert(sandbox.name + "/" + child + "." + std::to_string(i));
    }
  }
  std::uint64_t offset = 0;
  for (auto& plan : plans) {
    if (plan.kind != policy::ProcessKind::Daemon) continue;
    std::string wire = policy::encode_plan(plan);
    if (!write_all_checked(plan_store, wire)) {
      log_.error("Can't store the launch plan of " + quote(plan.name) + ": " + errno_text(errno));
      continue;  // stays unreadable: a running one is kept, none is started
    }
    unreadable.erase(plan.name);
    auto summary = PlanSummary::of(std::move(plan));
    summary.plan_offset = offset;
    summary.plan_size = wire.size();
    offset += wire.size();
    out.instances.push_back(std::move(summary));
  }
  for (const auto& name : unreadable)
    if (name.back() != '/' && name != sv::kEverything)
      log_.error("Instance " + quote(name) +
                 " has no valid configuration: a running one is kept, none is started");
  out.unreadable.assign(unreadable.begin(), unreadable.end());
  return out;
}

// One line per successfully read process config, one write(2), with
// rotation past 10 MiB (docs/tree.md). Written by the tree from the lines
// the reader sends, within one directory handle: no name in the directory
// is followed. Failures (full disk) are logged, never fatal.
void Tree::write_config_logs(const std::vector<std::pair<std::string, std::string>>& lines) {
  if (!config_log_dir_ || lines.empty()) return;
  const std::string& dir = *config_log_dir_;
  auto dir_fd = open_directory(dir);
  if (!dir_fd) {
    log_.error("Can't open config log dir: " + dir_fd.error().what());
    return;
  }
  for (const auto& [sandbox, line] : lines) write_config_log(dir_fd->get(), sandbox, line);
}

void Tree::write_config_log(int dir_fd, const std::string& sandbox, const std::string& line) {
  const std::string& dir = *config_log_dir_;
  std::string name = sandbox + ".log";
  std::string path = policy::join_path(dir, name);
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      st.st_size > kConfigLogRotateSize) {
    ::unlinkat(dir_fd, (name + ".100").c_str(), 0);
    for (int i = 99; i >= 1; --i) {
      std::string from = name + "." + std::to_string(i);
      if (::renameat(dir_fd, from.c_str(), dir_fd, (name + "." + std::to_string(i + 1)).c_str()) !=
              0 &&
          errno != ENOENT)
        log_.error("Can't rotate " + policy::join_path(dir, from) + ": " + errno_text(errno));
    }
    if (::renameat(dir_fd, name.c_str(), dir_fd, (name + ".1").c_str()) != 0)
      log_.error("Can't rotate " + path + ": " + errno_text(errno));
  }
  auto fd = open_log_at(dir_fd, dir, name);
  if (!fd) {
    log_.error("Can't open config log: " + fd.error().what());
    return;
  }
  struct stat before {};
  bool sized = ::fstat(fd->get(), &before) == 0;
  ssize_t n = ::write(fd->get(), line.data(), line.size());
  if (n == static_cast<ssize_t>(line.size())) return;
  int err = n < 0 ? errno : ENOSPC;  // a short write is a full disk
  // Half a line would glue the next entry onto it: take it back.
  if (n > 0 && sized && ::ftruncate(fd->get(), before.st_size) != 0)
    log_.error("Can't remove a partial line from " + path + ": " + errno_text(errno));
  log_.error("Can't write config log " + path + ": " + errno_text(err));
}

Result<void> Tree::join_own_cgroup(const policy::MasterConfig& master) {
  auto host = probe_cgroups();
  if (!host) return fail(host.error());
  policy::CgroupPlan plan;
  plan.parent = *master.cgroup_name;
  plan.scope = std::string(kTreeCgroupLeaf);
  plan.controllers = policy::effective_cgroup_controllers(master);
  auto placed = place_cgroup(*host, plan);
  if (!placed) return fail(placed.error());
  if (auto prepared = prepare_cgroup_parent(*placed); !prepared) return prepared;
  return join_tree_cgroup(*placed, ::getpid());
}

void Tree::prepare_cgroups() {
  std::set<std::string> done;
  std::optional<CgroupHost> host;
  for (const auto& [name, instance] : instances_) {
    const auto& cg = instance.plan->cgroup;
    if (!cg) continue;
    std::string key = cg->parent;
    for (const auto& c : cg->controllers) key += "," + c;
    if (!done.insert(key).second) continue;
    if (!host) {
      auto probed = probe_cgroups();
      if (!probed) {
        log_.error("cgroups: " + probed.error().what());
        return;
      }
      host = std::move(*probed);
    }
    auto placed = place_cgroup(*host, *cg);
    if (!placed) {
      log_.error("cgroups: " + placed.error().what());
      continue;
    }
    if (auto prepared = prepare_cgroup_parent(*placed); !prepared)
      log_.error("cgroups: " + prepared.error().what());
    for (const auto& p : *placed)
      if (std::find(cgroup_parents_.begin(), cgroup_parents_.end(), p.parent) ==
          cgroup_parents_.end())
        cgroup_parents_.push_back(p.parent);
  }
}

bool Tree::track(Child child) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kPidTag | static_cast<std::uint32_t>(child.pid);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, child.pidfd.get(), &ev) != 0) {
    log_.error("epoll_ctl for pid " + std::to_string(child.pid) + ": " + errno_text(errno));
    return false;
  }
  pid_t pid = child.pid;
  if (!child.name.empty()) ++busy_names_[child.name];
  children_.emplace(pid, std::move(child));
  return true;
}

// The pid in `cmd.NAME.PID` is its lithos_cmd's: alive means that pid is a
// lithos_cmd now, not merely some process (pids are reused).
bool command_alive(long pid) {
  if (pid <= 0) return false;
  auto comm = read_small_file("/proc/" + std::to_string(pid) + "/comm");
  return comm && comm->rfind("lithos_cmd", 0) == 0;
}

// A knot of our master that is not our child was started by a previous tree
// of this master (killed, crashed, or a reload that failed): knots outlive
// the tree. Not such a knot: a command's knot (`S/cmd.X.PID`, owned by its
// lithos_cmd), a knot whose parent is a live lithos_cmd or lithos_tree (a
// lithos inside a container with the same master path: we hold this
// master's lock, so that tree is not ours), or a process that only calls
// itself lithos_knot.
enum class Leftover { Adoptable, NotOurs, ForeignBinary };

Leftover classify_leftover_knot(pid_t pid, pid_t parent, const std::string& name,
                                const std::string& knot_path) {
  if (auto parsed = policy::InstanceName::parse(name); parsed && parsed->command)
    return Leftover::NotOurs;
  if (auto text = read_small_file("/proc/" + std::to_string(parent) + "/stat")) {
    auto stat = procfs::parse_stat(*text);
    if (stat && stat->state != 'Z' && (stat->comm == "lithos_cmd" || stat->comm == "lithos_tree"))
      return Leftover::NotOurs;
  }
  // The knot binary of this tree; after a package upgrade the old knots run
  // the replaced file, which the kernel shows with " (deleted)".
  char buf[PATH_MAX];
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return Leftover::ForeignBinary;
  std::string exe(buf, static_cast<std::size_t>(n));
  const std::string deleted = " (deleted)";
  if (exe.size() > deleted.size() && exe.ends_with(deleted))
    exe.resize(exe.size() - deleted.size());
  return exe == knot_path ? Leftover::Adoptable : Leftover::ForeignBinary;
}

// Adoption (docs/tree.md): unidentified children are killed, knots are
// recognised by option names, and knots that are not our children (the
// tree was killed and started again) handled too: they are stopped, and
// their instance starts once they are gone (never two of one name).
void Tree::adopt(const std::vector<ProcEntry>& processes) {
  pid_t self = ::getpid();
  std::vector<sv::FoundKnot> found;
  std::vector<pid_t> unknown;
  // A knot's container process shows the knot's command line between its
  // clone and its exec: a process whose parent is a knot is never a knot.
  // Zombies included: a knot that died during the re-exec is reaped and
  // accounted as the instance's death, not as an unknown process.
  auto inherited = [&](const ProcEntry& p) {
    return p.ppid == self && inherited_knots_.count(p.pid) != 0;
  };
  std::set<pid_t> knot_pids;
  for (const auto& p : processes)
    if (inherited(p) || sv::parse_knot_cmdline(p.argv)) knot_pids.insert(p.pid);
  for (const auto& p : processes) {
    if (p.pid == self || knot_pids.count(p.ppid)) continue;
    if (inherited(p)) {
      const auto& [name, identity] = inherited_knots_.at(p.pid);
      found.push_back({p.pid, name, identity, true});
      continue;
    }
    auto knot = sv::parse_knot_cmdline(p.argv);
    bool ours_master = knot && sv::same_path(knot->master, opt_.master_path);
    if (p.ppid == self) {
      if (p.argv.empty()) continue;  // zombie: reaped by reap_all()
      if (ours_master)
        found.push_back({p.pid, knot->name, knot->config, true});
      else
        unknown.push_back(p.pid);
    } else if (ours_master) {
      switch (classify_leftover_knot(p.pid, p.ppid, knot->name, opt_.knot_path)) {
        case Leftover::Adoptable:
          found.push_back({p.pid, knot->name, knot->config, false});
          break;
        case Leftover::ForeignBinary:
          log_.warn("Not adopting " + quote(knot->name) + " (pid: " + std::to_string(p.pid) +
                    "): it is not " + opt_.knot_path + "; left alone");
          break;
        case Leftover::NotOurs:
          break;
      }
    }
  }
  std::map<std::string, std::string> desired;
  for (const auto& [name, instance] : instances_) desired[name] = instance.plan->identity;
  auto decision = sv::reconcile(desired, found, unreadable_);
  for (std::size_t i = 0; i < found.size(); ++i) {
    const auto& k = found[i];
    Child child;
    child.pid = k.pid;
    child.name = k.name;
    if (auto it = instances_.find(k.name); it != instances_.end())
      child.configured_identity = it->second.plan->identity == k.identity;
    child.ours = k.our_child;
    child.pidfd.reset(pidfd_open(k.pid));
    if (!child.pidfd) {
      // Our child cannot be gone before we reap it: this is EMFILE or ENOMEM.
      // Its name stays busy, so no second knot of it is ever started.
      if (k.our_child && errno != ESRCH) {
        log_.error("Can't watch " + quote(k.name) + " (pid: " + std::to_string(k.pid) +
                   "): " + errno_text(errno) + "; it is not restarted while it lives");
        ++busy_names_[k.name];
      }
      continue;
    }
    if (!k.our_child) {
      // The pid may have been reused between the scan and pidfd_open.
      auto again = read_small_file("/proc/" + std::to_string(k.pid) + "/cmdline");
      auto knot = again ? sv::parse_knot_cmdline(procfs::parse_cmdline(*again)) : std::nullopt;
      if (!knot || knot->name != k.name) continue;
    }
    std::string pid_text = std::to_string(k.pid);
    switch (decision.verdicts[i]) {
      case sv::Verdict::Adopt:
      case sv::Verdict::Upgrade: {
        auto& instance = instances_.at(k.name);
        child.counted = true;
        bool upgrade = decision.verdicts[i] == sv::Verdict::Upgrade;
        std::string name = k.name;
        if (!track(std::move(child))) {
          ++busy_names_[name];  // as above: never a second knot of this name
          continue;
        }
        instance.pid = k.pid;
        auto last = inherited_starts_.find(k.name);
        if (last != inherited_starts_.end()) instance.last_start = last->second;
        auto& pc = per_process_[{instance.plan->sandbox, instance.plan->child}];
        pc.running += 1;
        total_.running += 1;
        if (upgrade) {
          log_.info("Config mismatch: " + name + ", pid: " + pid_text + ". Upgrading...");
          stop_child(children_.at(k.pid), kill_timeout_for(name, k.identity), "upgrade");
        } else {
          log_.info("Adopted " + quote(name) + " (pid: " + pid_text +
                    (k.our_child ? ")" : ", left running by a previous tree)"));
        }
        break;
      }
      case sv::Verdict::Keep:
        log_.error("Keeping " + quote(k.name) + " (pid: " + pid_text +
                   ") running: its configuration cannot be read");
        track(std::move(child));
        break;
      case sv::Verdict::Retire: {
        child.retired = true;
        std::string name = k.name;
        if (track(std::move(child)))
          stop_child(children_.at(k.pid), kill_timeout_for(name, k.identity), "Retired child");
        break;
      }
      case sv::Verdict::Stop: {
        child.retired = !desired.count(k.name);
        std::string name = k.name;
        if (track(std::move(child)))
          stop_child(children_.at(k.pid), kill_timeout_for(name, k.identity), "Duplicate child");
        break;
      }
    }
  }
  for (pid_t pid : unknown) {
    Child child;
    child.pid = pid;
    child.pidfd.reset(pidfd_open(pid));
    if (!child.pidfd) continue;
    if (track(std::move(child)))
      stop_child(children_.at(pid), opt_.default_kill_timeout_ms * kMs, "Undefined child");
  }
}

// Garbage collection of state dirs and scopes (docs/tree.md).
void Tree::collect_garbage() {
  std::set<std::string> live;
  for (const auto& [pid, child] : children_)
    if (!child.name.empty()) live.insert(child.name);
  DIR* top = ::opendir(state_root_.c_str());
  if (!top) return;
  std::vector<std::string> sandboxes;
  while (dirent* e = ::readdir(top))
    if (e->d_name[0] != '.') sandboxes.emplace_back(e->d_name);
  ::closedir(top);
  for (const auto& s : sandboxes) {
    std::string sdir = policy::join_path(state_root_, s);
    DIR* d = ::opendir(sdir.c_str());
    if (!d) continue;
    std::vector<std::string> subs;
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') subs.emplace_back(e->d_name);
    ::closedir(d);
    bool kept = false;
    for (const auto& p : subs) {
      std::string name = s + "/" + p;
      bool keep = live.count(name) > 0;
      auto parsed = policy::InstanceName::parse(name);
      if (!keep && parsed && parsed->command)
        keep = command_alive(static_cast<pid_t>(parsed->number));
      if (keep) {
        kept = true;
        continue;
      }
      log_.warn("Dangling state dir " + policy::join_path(sdir, p) + ". Deleting...");
      if (auto removed = remove_tree(policy::join_path(sdir, p)); !removed)
        log_.error(removed.error().what());
    }
    if (!kept) ::rmdir(sdir.c_str());
  }
  // Dangling cgroups: scopes of instances neither running nor
  // configured, and of commands whose lithos_cmd is gone.
  for (const auto& parent : cgroup_parents_) {
    DIR* d = ::opendir(parent.c_str());
    if (!d) continue;
    std::vector<std::string> scopes;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 6 && n.compare(n.size() - 6, 6, ".scope") == 0 && n.find(':') != n.npos)
        scopes.push_back(n);
    }
    ::closedir(d);
    for (const auto& scope : scopes) {
      std::string stem = scope.substr(0, scope.size() - 6);
      auto colon = stem.find(':');
      std::string name = stem.substr(0, colon) + "/" + stem.substr(colon + 1);
      bool keep = live.count(name) > 0 || instances_.count(name) > 0 || is_unreadable_name(name);
      if (auto parsed = policy::InstanceName::parse(name); parsed && parsed->command)
        keep = command_alive(static_cast<pid_t>(parsed->number));
      if (keep) continue;
      std::string dir = parent + "/" + scope;
      log_.warn("Dangling cgroup " + dir + ". Deleting...");
      if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
        auto procs = read_small_file(dir + "/cgroup.procs");
        log_.error("Can't remove cgroup " + dir + ": " + errno_text(errno) +
                   (procs ? " (cgroup.procs: " + *procs + ")" : ""));
      }
    }
  }
}

// "v1\nstart NAME NS\nkill PID NS\n..." written by reexec().
void Tree::apply_inherited_state() {
  std::istringstream in(*opt_.inherited_state);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "start") {
      std::string name;
      Ns t = 0;
      if (fields >> name >> t) inherited_starts_[name] = t;
    } else if (kind == "kill") {
      long pid = 0;
      Ns t = 0;
      if (fields >> pid >> t) inherited_kills_[static_cast<pid_t>(pid)] = t;
    } else if (kind == "reload") {
      fields >> inherited_reload_token_;
    } else if (kind == "scan") {
      std::string what;
      if (fields >> what && what == "children") inherited_children_only_ = true;
    } else if (kind == "knot") {
      long pid = 0;
      std::string name, identity;
      if (fields >> pid >> name && fields.get() == ' ' && std::getline(fields, identity) &&
          pid > 0 && !identity.empty())
        inherited_knots_[static_cast<pid_t>(pid)] = {name, identity};
    }
  }
}

// ---- the loop -------------------------------------------------------------------------

bool Tree::is_unreadable_name(const std::string& name) const {
  return sv::is_unreadable(unreadable_, name);
}

bool Tree::name_busy(const std::string& name) const {
  return busy_names_.count(name) > 0;
}

Ns Tree::kill_timeout_for(const std::string& name, const std::string& identity) const {
  // The knot enforces its container's kill-timeout itself, counting
  // from the end of its setup: the tree's SIGKILL is a backstop after that.
  // A knot running the configured identity has exactly the plan's timeout; a
  // retired or outdated one may have any, so it gets the largest configured.
  std::int64_t ms = opt_.default_kill_timeout_ms;
  auto it = instances_.find(name);
  if (it != instances_.end() && it->second.plan->identity == identity) {
    ms = std::max(ms, it->second.plan->kill_timeout_ms);
  } else {
    for (const auto& [other, instance] : instances_)
      ms = std::max(ms, instance.plan->kill_timeout_ms);
  }
  return (ms + kKnotKillMarginMs) * kMs;
}

void Tree::stop_child(Child& child, Ns timeout, const std::string& why) {
  std::string who = child.name.empty() ? "pid: " + std::to_string(child.pid)
                                       : child.name + ", pid: " + std::to_string(child.pid);
  if (!pidfd_signal(child.pidfd.get(), SIGTERM) && errno != ESRCH)
    log_.error("Can't send SIGTERM to " + who + ": " + errno_text(errno));
  child.term_sent = true;
  auto inherited = inherited_kills_.find(child.pid);
  Ns deadline = inherited != inherited_kills_.end() ? inherited->second : now_ns() + timeout;
  if (!child.kill_at || deadline < *child.kill_at) child.kill_at = deadline;
  // Stopping what the configuration no longer asks for, or everything at a
  // shutdown, is routine; a duplicate or an unknown knot is not.
  const bool routine = why == "Shutdown" || why == "upgrade" || why == "Retired child";
  log_.log(routine ? LogLevel::Info : LogLevel::Warn, why + ": " + who + ". Sending SIGTERM...");
}

void Tree::loop() {
  // A SIGTERM that arrived during startup (or across a re-exec) is handled
  // before anything is started.
  on_signal();
  while (!exit_loop_) {
    fire_timers();
    if (shutting_down_ && children_.empty()) break;
    if (exit_loop_) break;
    // Sockets only serve running instances: close the unused ones.
    std::set<SocketKey> used;
    for (const auto& [name, instance] : instances_)
      if (instance.pid != 0)
        for (const auto& sp : instance.plan->sockets)
          if (sp.host_side && !sp.reuse_port) used.insert({sp.host, sp.port});
    sockets_.close_unused(used, log_);
    if (metrics_dirty_) write_metrics();
    // Arm the timer for the earliest due start or kill.
    std::optional<Ns> next;
    auto consider = [&](Ns t) {
      if (!next || t < *next) next = t;
    };
    for (const auto& [name, instance] : instances_)
      if (instance.due && !name_busy(name)) consider(*instance.due);
    for (const auto& [pid, child] : children_)
      if (child.kill_at) consider(*child.kill_at);
    itimerspec spec{};
    if (next) {
      Ns t = std::max<Ns>(*next, 1);
      spec.it_value.tv_sec = static_cast<time_t>(t / 1'000'000'000);
      spec.it_value.tv_nsec = static_cast<long>(t % 1'000'000'000);
    }
    ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
    epoll_event events[32];
    int n = ::epoll_wait(epoll_.get(), events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log_.error("epoll_wait: " + errno_text(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      std::uint64_t tag = events[i].data.u64;
      if (tag == kSignalTag) {
        on_signal();
      } else if (tag == kTimerTag) {
        std::uint64_t expirations;
        [[maybe_unused]] ssize_t r = ::read(timer_.get(), &expirations, sizeof expirations);
      } else if (tag & kPidTag) {
        on_pidfd(static_cast<pid_t>(tag & 0xffffffffULL));
      }
    }
  }
}

void Tree::fire_timers() {
  Ns now = now_ns();
  for (auto& [pid, child] : children_) {
    if (!child.kill_at || *child.kill_at > now) continue;
    child.kill_at.reset();
    metrics_dirty_ = true;
    child.killed = true;
    std::string who = (child.name.empty() ? std::string("unidentified child") : quote(child.name)) +
                      " (pid: " + std::to_string(pid) + ")";
    log_.error(who + " did not stop after SIGTERM. Sending SIGKILL");
    if (!pidfd_signal(child.pidfd.get(), SIGKILL) && errno != ESRCH)
      log_.error("Can't send SIGKILL to " + who + ": " + errno_text(errno));
  }
  if (shutting_down_) return;
  for (auto& [name, instance] : instances_) {
    if (!instance.due || *instance.due > now || name_busy(name)) continue;
    start(instance);
  }
}

Result<UniqueFd> Tree::copy_launch_plan(const PlanSummary& plan) const {
  if (!plans_ || plan.plan_size == 0 || plan.plan_size > policy::kMaxPlanBytes)
    return step_error("seal_plan", "", 0, "no launch plan stored");
  std::string wire(plan.plan_size, '\0');
  std::size_t done = 0;
  while (done < wire.size()) {
    ssize_t n = ::pread(plans_.get(), wire.data() + done, wire.size() - done,
                        static_cast<off_t>(plan.plan_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return step_error("seal_plan", "plan store", n < 0 ? errno : EIO, "read");
    done += static_cast<std::size_t>(n);
  }
  return seal_plan(wire);
}

void Tree::start(Instance& instance) {
  const auto& plan = *instance.plan;
  Ns now = now_ns();
  instance.due.reset();
  auto& pc = per_process_[{plan.sandbox, plan.child}];
  total_.started += 1;
  pc.started += 1;
  metrics_dirty_ = true;

  SpawnOptions spawn;
  spawn.path = opt_.knot_path;
  policy::KnotInvocation invocation;
  invocation.name = *policy::InstanceName::parse(plan.name);  // valid: the reader checked it
  invocation.master = opt_.master_path;
  invocation.identity = plan.identity;
  invocation.log_stderr = opt_.log_stderr;
  if (opt_.log_level) {
    auto level = parse_log_level(*opt_.log_level);
    invocation.log_level = std::string(log_level_name(level.value_or(LogLevel::Warn)));
  }
  spawn.argv = invocation.format(opt_.knot_path);
  const char* term = std::getenv("TERM");
  spawn.env.push_back(std::string("TERM=") + (term ? term : "dumb"));
  for (const char* var : {"RUST_LOG", "RUST_BACKTRACE", "JOURNAL_STREAM"})
    if (const char* v = std::getenv(var)) spawn.env.push_back(std::string(var) + "=" + v);
  spawn.namespaces = kKnotNamespaces;
  // Only until the knot runs: a child that the tree's death catches between
  // clone and exec would exec a knot no scan had seen (a second knot of its
  // name). The knot clears it first thing, then outlives the tree, and the
  // next tree adopts it (docs/tree.md, "Crash-only").
  spawn.parent_death_signal = SIGKILL;
  spawn.new_session = true;
  spawn.blocked_signals = kKnotSignals;

  // A limit the knot cannot set fails its setup after every start: said
  // here, once per attempt, with the back-off of start errors.
  if (plan.fileno_limit > fileno_ceiling_.most) {
    total_.started -= 1;
    pc.started -= 1;
    start_failed(instance, now,
                 "fileno-limit " + std::to_string(plan.fileno_limit) +
                     " is more than this tree can give (" + std::to_string(fileno_ceiling_.most) +
                     ", " + fileno_ceiling_.reason + ")");
    return;
  }

  // The launch plan, in a sealed memfd of this start's own.
  auto sealed = copy_launch_plan(plan);
  if (!sealed) {
    total_.started -= 1;
    pc.started -= 1;
    start_failed(instance, now, sealed.error().what());
    return;
  }
  spawn.fds.emplace_back(sealed->get(), policy::kPlanFd);

  // Host-side sockets (docs/tree.md): shared per address, or fresh with reuse-port.
  // Handed over after the plan, in the plan's order; the knot moves them to
  // their planned numbers (place_host_sockets).
  std::vector<UniqueFd> fresh;
  for (const auto& sp : plan.sockets) {
    if (!sp.host_side) continue;
    Result<int> fd = step_error("socket", "", 0);
    if (sp.fd == 1 || sp.fd == 2) {
      fd = step_error("socket", std::to_string(sp.port), 0,
                      "passing fd 1 and fd 2 is not supported yet");
    } else if (sp.reuse_port) {
      auto opened = open_listener(sp, plan.socket_owner);
      if (opened) {
        fd = opened->get();
        fresh.push_back(std::move(*opened));
      } else {
        fd = Failure<StepError>{std::move(opened.error())};
      }
    } else {
      fd = sockets_.get(sp, plan.socket_owner, log_);
    }
    if (!fd) {
      total_.started -= 1;  // a socket error counts in no metric, as in the original
      pc.started -= 1;
      start_failed(instance, now, "error opening sockets: " + fd.error().what());
      return;
    }
    spawn.fds.emplace_back(*fd, policy::kPlanFd + static_cast<int>(spawn.fds.size()));
  }

  instance.last_start = now;
  auto spawned = spawn_process(spawn);
  if (!spawned) {
    total_.failures += 1;
    total_.deaths += 1;
    pc.failures += 1;
    pc.deaths += 1;
    start_failed(instance, now, spawned.error().what());
    return;
  }
  Child child;
  child.pid = spawned->pid;
  child.pidfd = std::move(spawned->pidfd);
  child.name = plan.name;
  child.configured_identity = true;
  child.counted = true;
  pid_t pid = child.pid;
  if (!track(std::move(child))) {
    // Without a pidfd in epoll we could not notice its death: stop it (it is
    // reaped as an unknown child) and try again after the restart timeout.
    ::kill(pid, SIGKILL);
    total_.failures += 1;
    total_.deaths += 1;
    pc.failures += 1;
    pc.deaths += 1;
    start_failed(instance, now, "cannot watch its knot (epoll)");
    return;
  }
  instance.start_errors = 0;
  instance.pid = pid;
  total_.running += 1;
  pc.running += 1;
  log_.info("Forked " + quote(plan.name) + " (pid: " + std::to_string(pid) + ")");
}

// A start that failed before a knot ran: one line with the reason and when
// the next attempt is, which backs off (start_error_backoff_ms).
void Tree::start_failed(Instance& instance, Ns now, const std::string& why) {
  instance.start_errors += 1;
  std::int64_t delay_ms =
      sv::start_error_backoff_ms(instance.start_errors, instance.plan->restart_timeout_ms);
  instance.due = now + delay_ms * kMs;
  char next[32];
  std::snprintf(next, sizeof next, "%.1f", static_cast<double>(delay_ms) / 1000.0);
  log_.error("Error starting " + quote(instance.name) + ": " + why + " (attempt " +
             std::to_string(instance.start_errors) + ", next in " + next + " s)");
}

void Tree::on_signal() {
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    int sig = static_cast<int>(info.ssi_signo);
    switch (sig) {
      case SIGCHLD:
        reap_all();
        break;
      case SIGTERM:
      case SIGINT:
        log_.info(std::string("Got ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                  ": stopping every child");
        begin_shutdown();
        break;
      default: {  // SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2
        // `lithos_tree --reload` queues its signal with a token to answer.
        const std::uint32_t token =
            info.ssi_code == SI_QUEUE ? static_cast<std::uint32_t>(info.ssi_int) : 0;
        if (shutting_down_) {
          log_.warn("Reload signal ignored during shutdown");
          answer_reload(token, false, "the tree is shutting down");
          break;
        }
        reexec(token);
        break;
      }
    }
  }
}

// The answer `lithos_tree --reload` waits for (token 0: nobody waits).
void Tree::answer_reload(std::uint32_t token, bool reloaded, const std::string& message) {
  if (token == 0) return;
  std::string line = std::to_string(token) + (reloaded ? " ok " : " refused ") + message + "\n";
  auto written =
      replace_file(policy::join_path(runtime_dir_, std::string(kReloadAnswerName)), line, 0644);
  if (!written) log_.warn("Can't answer the reload request: " + written.error().what());
}

// A failed notification costs the service manager's view, never the
// supervision: one warning, then quiet (a manager that went away).
void Tree::notify(const std::string& state) {
  if (notifier_.send(state) || notify_failed_) return;
  notify_failed_ = true;
  log_.warn("Can't notify the service manager (NOTIFY_SOCKET): " + errno_text(errno));
}

void Tree::begin_shutdown() {
  if (!shutting_down_)
    notify("STOPPING=1\nSTATUS=stopping " + std::to_string(children_.size()) + " knots");
  shutting_down_ = true;
  for (auto& [name, instance] : instances_) instance.due.reset();
  for (auto& [pid, child] : children_) {
    // A second SIGTERM is forwarded again but does not extend the deadline.
    auto it = instances_.find(child.name);
    std::string identity = child.configured_identity && it != instances_.end()
                               ? it->second.plan->identity
                               : std::string();
    stop_child(child, kill_timeout_for(child.name, identity), "Shutdown");
  }
  if (children_.empty()) exit_loop_ = true;
  metrics_dirty_ = true;
}

// Reaps every exited child: ours through their pidfd (finish_child), any
// other (a process we never recorded) by pid.
void Tree::reap_all() {
  while (true) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
    pid_t pid = info.si_pid;
    auto it = children_.find(pid);
    if (it != children_.end() && it->second.ours) {
      on_pidfd(pid);
      if (children_.count(pid)) {  // waitid on the pidfd failed: reap by pid
        siginfo_t again{};
        ::waitid(P_PID, static_cast<id_t>(pid), &again, WEXITED | WNOHANG);
        finish_child(pid, again.si_pid == pid ? std::optional<int>(again.si_code) : std::nullopt);
      }
      continue;
    }
    siginfo_t reaped{};
    ::waitid(P_PID, static_cast<id_t>(pid), &reaped, WEXITED | WNOHANG);
    log_.info("Unknown process (pid: " + std::to_string(pid) + ") " + status_text(reaped));
  }
}

void Tree::on_pidfd(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  Child& child = it->second;
  if (!child.ours) {
    // A previous tree's knot: its pidfd is readable once it has exited; its
    // status went to its parent, so the death counts as a failure.
    std::string what = " (pid: " + std::to_string(pid) +
                       ") is gone; its exit status went to its parent (a previous tree's knot)";
    if (child.counted && !shutting_down_)
      log_.error("Container " + quote(child.name) + what);
    else
      log_.info((child.name.empty() ? std::string("Process") : "Knot " + quote(child.name)) + what);
    finish_child(pid, std::nullopt);
    return;
  }
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child.pidfd.get()), &info,
               WEXITED | WNOHANG) != 0) {
    if (errno == ECHILD) finish_child(pid, std::nullopt);
    return;
  }
  if (info.si_pid == 0) return;  // not exited yet
  std::string status = status_text(info);
  bool failure = sv::is_failure(info.si_code == CLD_EXITED, info.si_status);
  Child& c = children_.at(pid);
  std::string label = c.name.empty() ? "Unidentified child" : "Container " + quote(c.name);
  // A stop we asked for is routine; a death nobody asked for is a crash
  // (ERROR) when it failed, else worth a warning: it is restarted either way.
  LogLevel level = LogLevel::Info;
  if (c.counted && !shutting_down_ && !c.term_sent)
    level = failure ? LogLevel::Error : LogLevel::Warn;
  log_.log(level, label + " (pid: " + std::to_string(pid) + ") " + status);
  finish_child(pid, failure ? 1 : 0);
}

// `status`: 0 normal death, 1 failure, nullopt unknown (not our child).
void Tree::finish_child(pid_t pid, std::optional<int> status) {
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  Child child = std::move(it->second);
  children_.erase(it);
  if (auto busy = busy_names_.find(child.name); busy != busy_names_.end() && --busy->second <= 0)
    busy_names_.erase(busy);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, child.pidfd.get(), nullptr);
  metrics_dirty_ = true;
  Ns now = now_ns();
  if (child.counted) {
    auto& instance = instances_.at(child.name);
    instance.pid = 0;
    auto& pc = per_process_[{instance.plan->sandbox, instance.plan->child}];
    total_.deaths += 1;
    pc.deaths += 1;
    if (status.value_or(1) != 0) {
      total_.failures += 1;
      pc.failures += 1;
    }
    total_.running -= 1;
    pc.running -= 1;
    remove_state_dir(child.name);
    // The scope is kept for the restart (re-creating a just-removed
    // memory cgroup was unsafe on old kernels), removed at shutdown.
    if (shutting_down_) remove_scope(child.name);
    if (!shutting_down_)
      instance.due =
          sv::next_start(now, instance.last_start, instance.plan->restart_timeout_ms * kMs);
  } else if (!child.name.empty()) {
    auto inst = instances_.find(child.name);
    if (!name_busy(child.name) && (inst == instances_.end() || inst->second.pid == 0)) {
      remove_state_dir(child.name);
      if (child.retired || shutting_down_) remove_scope(child.name);
    }
  }
  if (shutting_down_ && children_.empty()) exit_loop_ = true;
}

static std::string scope_dir_name(const std::string& name) {
  std::string scope = name;
  std::replace(scope.begin(), scope.end(), '/', ':');
  return scope + ".scope";
}

void Tree::remove_scope(const std::string& name) {
  if (name.empty() || name.find("..") != std::string::npos) return;
  for (const auto& parent : cgroup_parents_) {
    std::string dir = parent + "/" + scope_dir_name(name);
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
      log_.error("Can't remove cgroup " + dir + ": " + errno_text(errno));
  }
}

void Tree::remove_state_dir(const std::string& name) {
  if (name.empty() || name.find("..") != std::string::npos) return;
  if (auto removed = remove_tree(policy::join_path(state_root_, name)); !removed)
    log_.error(removed.error().what());
}

// ---- re-exec --------------------------------------------------------------------------

// What the new image needs to start at all, checked before execve: a reload
// that cannot start leaves the host unsupervised until the service manager
// starts a tree again (the knots keep running, docs/tree.md "Crash-only").
// "" when it can start.
std::string Tree::reload_blocker() const {
  policy::Diagnostics diags;
  auto master = policy::load_config<policy::MasterCodec>(opt_.master_path, diags, nullptr);
  if (!master) {
    std::string why;
    for (const auto& d : diags.items()) why += (why.empty() ? "" : "; ") + describe_diag(d);
    return "the master config cannot be read: " + why;
  }
  for (const auto& binary : {opt_.self_exe, opt_.knot_path}) {
    struct stat st {};
    if (::stat(binary.c_str(), &st) != 0) return binary + ": " + errno_text(errno);
    if (!S_ISREG(st.st_mode) || ::access(binary.c_str(), X_OK) != 0)
      return binary + " is not an executable file";
  }
  if (!is_directory(master->value.devfs_dir))
    return "devfs dir " + master->value.devfs_dir + " is missing";
  if (master->value.runtime_dir != runtime_dir_)
    return "runtime-dir changed from " + runtime_dir_ + " to " + master->value.runtime_dir +
           " (the lock and the state dir live there: restart the service instead)";
  return {};
}

// Runs the binary about to be exec'd as `lithos_tree ARGS --preflight`: a
// binary that does not run at all (a botched upgrade, a missing library, a
// script in its place) or refuses this master is found out while the
// current image can still keep supervising. "" when it passed.
std::string Tree::preflight_new_image() const {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return "pipe: " + errno_text(errno);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  SpawnOptions spawn;
  spawn.path = opt_.self_exe;
  spawn.argv = opt_.argv;
  if (spawn.argv.empty()) spawn.argv.push_back(opt_.self_exe);
  spawn.argv.push_back("--preflight");
  spawn.env = without_notify_socket(opt_.env);
  spawn.parent_death_signal = SIGKILL;
  spawn.fds = {{null_in.get(), 0}, {write_end.get(), 1}, {write_end.get(), 2}};
  auto spawned = spawn_process(spawn);
  write_end.reset();
  if (!spawned) return "it cannot run: " + spawned.error().what();
  std::string output;
  const Ns deadline = now_ns() + 10'000 * kMs;
  bool timed_out = false;
  while (true) {
    Ns left = deadline - now_ns();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left / kMs + 1));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[512];
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < 4096) output.append(buf, static_cast<std::size_t>(n));
  }
  if (timed_out) pidfd_signal(spawned->pidfd.get(), SIGKILL);
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(spawned->pid), &info, WEXITED) < 0 && errno == EINTR) {
  }
  if (timed_out) return "it did not finish within 10 s";
  if (info.si_code == CLD_EXITED && info.si_status == 0) return {};
  std::string first_line = output.substr(0, output.find('\n'));
  return status_text(info) + (first_line.empty() ? "" : ": " + first_line);
}

void Tree::reexec(std::uint32_t token) {
  if (std::string blocker = reload_blocker(); !blocker.empty()) {
    log_.error("Reload refused, " + blocker + "; still running the current image");
    notify("STATUS=reload refused, " + blocker);
    answer_reload(token, false, blocker);
    return;
  }
  if (std::string failed = preflight_new_image(); !failed.empty()) {
    log_.error("Reload refused, " + opt_.self_exe + " --preflight " + failed +
               "; still running the current image");
    notify("STATUS=reload refused, " + opt_.self_exe + " --preflight " + failed);
    answer_reload(token, false, opt_.self_exe + " --preflight " + failed);
    return;
  }
  log_.info("Reloading: re-executing " + opt_.self_exe);
  std::string state = "v1\n";
  if (token != 0) state += "reload " + std::to_string(token) + "\n";
  for (const auto& [name, instance] : instances_)
    if (instance.last_start)
      state += "start " + name + " " + std::to_string(*instance.last_start) + "\n";
  // A tree that tracks only its own children has nothing else to find: the
  // new image lists its children instead of scanning every process.
  if (std::all_of(children_.begin(), children_.end(), [](const auto& c) { return c.second.ours; }))
    state += "scan children\n";
  for (const auto& [pid, child] : children_) {
    if (child.kill_at)
      state += "kill " + std::to_string(pid) + " " + std::to_string(*child.kill_at) + "\n";
    // Our knots and what they run: the new image needs no command lines,
    // and one that dies meanwhile (a zombie has none) is still accounted
    // as its instance's death. A knot being stopped is marked so ("-" is
    // no identity): the new image stops it again. One kept with an identity
    // we do not hold (its configuration unreadable) is left out: the new
    // image reads its command line.
    if (!child.ours || child.name.empty()) continue;
    auto it = instances_.find(child.name);
    std::string identity;
    if (child.term_sent)
      identity = "-";
    else if (child.configured_identity && it != instances_.end())
      identity = it->second.plan->identity;
    else
      continue;
    if (identity.find('\n') != std::string::npos || child.name.find(' ') != std::string::npos)
      continue;  // the new image reads its command line instead
    state += "knot " + std::to_string(pid) + " " + child.name + " " + identity + "\n";
  }
  write_metrics();
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "lithos_tree_state", 0));
  if (fd < 0 || ::write(fd, state.data(), state.size()) != static_cast<ssize_t>(state.size())) {
    log_.error("Can't keep state across re-exec: " + errno_text(errno) + "; re-executing anyway");
  }
  std::vector<std::string> env = opt_.env;
  if (fd >= 0) env.push_back(std::string(kTreeStateEnv) + "=" + std::to_string(fd));
  std::vector<char*> argv, envp;
  std::vector<std::string> args = opt_.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  sockets_.set_cloexec(false);
  // The lock passes to the new image: no moment without it (tree_lock.cpp).
  ::fcntl(lock_.get(), F_SETFD, 0);
  notify("RELOADING=1\nSTATUS=re-executing " + opt_.self_exe);
  ::execve(opt_.self_exe.c_str(), argv.data(), envp.data());
  int err = errno;
  notify("READY=1\nSTATUS=re-exec failed (" + errno_text(err) + "), still supervising");
  answer_reload(token, false, "can't re-execute " + opt_.self_exe + ": " + errno_text(err));
  ::fcntl(lock_.get(), F_SETFD, FD_CLOEXEC);
  sockets_.set_cloexec(true);
  if (fd >= 0) ::close(fd);
  log_.error("Can't re-execute " + opt_.self_exe + ": " + errno_text(err) + "; continuing");
}

// ---- metrics (a Prometheus text file) ----------------------------------------------------

// The metrics dir is opened once; a group- or world-writable one that is
// not sticky lets others swap names in it, which is worth one warning
// (nothing is written or read through a name there, see safe_files.hpp).
int Tree::metrics_dir() {
  if (!metrics_dir_fd_ && metrics_dir_path_) {
    auto fd = open_directory(*metrics_dir_path_);
    if (!fd) {
      log_.error("Can't open metrics dir: " + fd.error().what());
      return -1;
    }
    metrics_dir_fd_ = std::move(*fd);
    if (others_can_replace_names(metrics_dir_fd_.get()))
      log_.warn("Metrics dir " + *metrics_dir_path_ +
                " is writable by group or others and not sticky: they can replace " +
                metrics_file_ + " (chmod +t or 0755 it)");
  }
  return metrics_dir_fd_.get();
}

void Tree::read_metrics() {
  if (metrics_file_.empty()) return;
  int dir_fd = metrics_dir();
  if (dir_fd < 0) return;
  auto text = read_file_at(dir_fd, *metrics_dir_path_, "lithos_tree.prom");
  if (!text) {
    if (text.error().err != ENOENT) log_.warn("Counters start from 0: " + text.error().what());
    return;
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    std::string key = line.substr(0, space);
    std::uint64_t value = std::strtoull(line.c_str() + space + 1, nullptr, 10);
    std::string metric = key.substr(0, key.find('{'));
    if (metric == "lithos_master_restarts_total")
      restarts_ = value;
    else if (metric == "lithos_containers_started_total")
      total_.started = value;
    else if (metric == "lithos_containers_deaths_total")
      total_.deaths = value;
    else if (metric == "lithos_containers_failures_total")
      total_.failures = value;
    else if (metric.rfind("lithos_process_", 0) == 0) {
      auto s = key.find("sandbox=\"");
      auto p = key.find("process=\"");
      if (s == std::string::npos || p == std::string::npos) continue;
      std::string sandbox = key.substr(s + 9, key.find('"', s + 9) - s - 9);
      std::string process = key.substr(p + 9, key.find('"', p + 9) - p - 9);
      auto& pc = per_process_[{sandbox, process}];
      if (metric == "lithos_process_started_total")
        pc.started = value;
      else if (metric == "lithos_process_deaths_total")
        pc.deaths = value;
      else if (metric == "lithos_process_failures_total")
        pc.failures = value;
    }
  }
}

void Tree::write_metrics() {
  metrics_dirty_ = false;
  if (metrics_file_.empty()) return;
  std::size_t queue = 0;
  for (const auto& [name, instance] : instances_)
    if (instance.due) ++queue;
  for (const auto& [pid, child] : children_)
    if (child.kill_at) ++queue;
  std::int64_t unknown = 0;
  for (const auto& [pid, child] : children_)
    if (child.name.empty()) ++unknown;
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << " " << value << "\n";
  };
  metric("lithos_master_restarts_total", "counter", "tree starts, re-executions included",
         restarts_);
  metric("lithos_master_sandboxes", "gauge", "sandbox configs read successfully", sandboxes_);
  metric("lithos_master_containers", "gauge", "daemon instances configured", instances_.size());
  metric("lithos_master_queue", "gauge", "pending starts and kills", queue);
  metric("lithos_containers_started_total", "counter", "start attempts", total_.started);
  metric("lithos_containers_deaths_total", "counter", "knot deaths and spawn failures",
         total_.deaths);
  metric("lithos_containers_failures_total", "counter", "deaths other than a knot exit 0",
         total_.failures);
  metric("lithos_containers_running", "gauge", "live knots", total_.running);
  metric("lithos_containers_unknown", "gauge", "unidentified children being stopped", unknown);
  struct Family {
    const char* name;
    const char* type;
    const char* help;
  };
  const Family families[] = {
      {"lithos_process_started_total", "counter", "start attempts per process entry"},
      {"lithos_process_deaths_total", "counter", "deaths per process entry"},
      {"lithos_process_failures_total", "counter", "failures per process entry"},
      {"lithos_process_running", "gauge", "live knots per process entry"}};
  for (std::size_t f = 0; f < 4; ++f) {
    out << "# HELP " << families[f].name << " " << families[f].help << "\n# TYPE "
        << families[f].name << " " << families[f].type << "\n";
    for (const auto& [key, pc] : per_process_) {
      out << families[f].name << "{sandbox=\"" << sv::prometheus_label(key.first) << "\",process=\""
          << sv::prometheus_label(key.second) << "\"} ";
      if (f == 0)
        out << pc.started;
      else if (f == 1)
        out << pc.deaths;
      else if (f == 2)
        out << pc.failures;
      else
        out << pc.running;
      out << "\n";
    }
  }
  int dir_fd = metrics_dir();
  if (dir_fd < 0) return;
  if (auto written =
          replace_file_at(dir_fd, *metrics_dir_path_, "lithos_tree.prom", out.str(), 0644);
      !written)
    log_.error("Can't write metrics: " + written.error().what());
}

}  // namespace lithos::runtime::tree_detail
