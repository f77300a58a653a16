// Startup (docs/tree.md, "Startup"): run() is the list of phases from the
// master config to the loop and back; each phase is a member named after
// it, so a slow or failing start points at one of them.
#include <fcntl.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "lithos/policy/config.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "tree_support.hpp"
#include "tree_util.hpp"

namespace lithos::runtime::tree_detail {

namespace sv = lithos::policy::supervise;

namespace {

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

// Phase times go into the "started" line: a slow reload says where.
class PhaseTimes {
 public:
  // After a reload, its checks (old image) and its exec and start-up (up to
  // run()) come first.
  PhaseTimes(Ns run_start, const std::optional<std::pair<Ns, Ns>>& reload)
      : last_(now_ns()),
        text_((reload ? "reload checks " + std::to_string((reload->second - reload->first) / kMs) +
                            " ms, exec and start-up " +
                            std::to_string((run_start - reload->second) / kMs) + " ms, "
                      : std::string()) +
              "master and setup " + std::to_string((last_ - run_start) / kMs) + " ms") {}
  void lap(const std::string& phase) {
    Ns now = now_ns();
    text_ += ", " + phase + " " + std::to_string((now - last_) / kMs) + " ms";
    last_ = now;
  }
  const std::string& text() const { return text_; }

 private:
  Ns last_;
  std::string text_;
};

}  // namespace

int Tree::fatal(const std::string& message) {
  std::cerr << "Fatal error: " << message << "\n";
  log_.error(message);
  // An image a reload started goes back to the one that started it
  // (docs/tree.md, "Going back"); this returns only without a way back.
  go_back_to_previous_image("could not start: " + message);
  return 1;
}

// The phases of a start, in order. A phase that returns false has called
// fatal(): the tree does not start.
int Tree::run() {
  const Ns run_start = now_ns();
  auto master = read_master_config();
  if (!master) return 1;
  HostChecks host;
  if (!check_host(*master, host)) return 1;
  make_directories(*master);
  open_log(*master, host);
  if (!take_lock_and_pid_file()) return 1;
  if (!join_own_cgroup_at_start(*master)) return 1;
  if (!set_up_event_sources()) return 1;
  continue_from_previous_image();

  PhaseTimes times(run_start, inherited_.reload_times);
  fileno_ceiling_ = fileno_ceiling();
  auto pending = start_reading_configuration();
  auto processes = list_processes(pending.pid);
  times.lap("process list");
  finish_reading_configuration(std::move(pending));
  times.lap("configuration (after the list)");
  prepare_cgroups_and_sockets();
  times.lap("cgroups and sockets");
  adopt(processes);
  std::vector<ProcEntry>{}.swap(processes);
  times.lap("adoption");
  collect_garbage();
  times.lap("cleanup");
  forget_previous_image();
  schedule_starts();
  announce_start(times.text());

  loop();

  clean_up_after_loop();
  write_metrics();
  log_.info("lithos_tree stopped");
  return 0;
}

// Master config first: it says where everything else is.
std::optional<policy::MasterConfig> Tree::read_master_config() {
  policy::Diagnostics diags;
  policy::LoadOptions load;
  load.skip_process_configs = true;
  auto master_only = policy::load_tree(opt_.master_path, load, diags, nullptr);
  if (!master_only.master) {
    std::string why;
    for (const auto& d : diags.items()) why += (why.empty() ? "" : "; ") + d.one_line();
    fatal("Error reading master config: " + why);
    return std::nullopt;
  }
  return std::move(master_only.master->value);
}

// Before the log is open: what they find is logged by open_log.
bool Tree::check_host(const policy::MasterConfig& master, HostChecks& host) {
  // The OOM killer must pick a container, never the supervisor (docs/tree.md,
  // "Crash-only"): knots inherit this, containers get 0 back.
  host.oom_adjusted = set_oom_score_adj(kSupervisorOomScoreAdj);
  host.oom_errno = errno;
  // Fatal on a first start only: after a reload the knots are already
  // running, and a tree that exits supervises nothing (docs/tree.md,
  // "Crash-only"); their starts fail with the knot's own message instead.
  host.devfs_ok = is_directory(master.devfs_dir);
  if (!host.devfs_ok && !opt_.inherited_state) {
    fatal("Devfs dir (" + master.devfs_dir + ") must exist and contain device nodes");
    return false;
  }
  return true;
}

void Tree::make_directories(const policy::MasterConfig& master) {
  runtime_dir_ = master.runtime_dir;
  devfs_dir_ = master.devfs_dir;
  state_root_ = policy::join_path(runtime_dir_, master.state_dir);
  config_log_dir_ = master.config_log_dir;
  for (const auto& d :
       {runtime_dir_, state_root_, policy::join_path(runtime_dir_, master.mount_dir),
        master.default_log_dir, master.stdio_log_dir})
    mkdir_p(d);
  if (config_log_dir_) mkdir_p(*config_log_dir_);
  if (master.metrics_dir) {
    mkdir_p(*master.metrics_dir);
    metrics_.set_dir(*master.metrics_dir);
  }
}

// Logging (docs/tree.md "Logging"): syslog or the log file.
void Tree::open_log(const policy::MasterConfig& master, const HostChecks& host) {
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
  if (!host.oom_adjusted)
    log_.warn("Can't set oom_score_adj " + std::to_string(kSupervisorOomScoreAdj) + ": " +
              errno_text(host.oom_errno) + " (the OOM killer may pick the tree)");
  if (!host.devfs_ok)
    log_.error("Devfs dir (" + master.devfs_dir +
               ") is missing: running instances are kept, starts fail until it is back");
}

// One tree per master: the lock, held until this process exits (and
// across its re-execs), says whether another tree runs. The pid file
// is only a pointer for lithos_switch and operators.
bool Tree::take_lock_and_pid_file() {
  auto lock = take_tree_lock(runtime_dir_);
  if (!lock) {
    fatal(lock.error().what());
    return false;
  }
  lock_ = std::move(*lock);
  keep_lock_across_crash_exec(lock_.get());

  std::string pid_file = policy::join_path(runtime_dir_, "master.pid");
  pid_t self = ::getpid();
  bool pid_file_is_ours = false;
  if (auto text = procfs::read_file(pid_file))
    pid_file_is_ours = std::strtol(text->c_str(), nullptr, 10) == self;
  if (!pid_file_is_ours) {  // after a re-exec the file is left as it is
    // The runtime dir is root's, but nothing written there follows a name
    // someone else could have planted (safe_files.hpp).
    if (auto written = replace_file(pid_file, std::to_string(self) + "\n", 0644); !written) {
      // Fatal on a first start; after a re-exec the knots depend on us staying.
      if (!opt_.inherited_state) {
        fatal("Can't write pid file: " + written.error().what());
        return false;
      }
      log_.error("Can't write pid file: " + written.error().what());
    }
  }
  return true;
}

// The tree itself lives in <cgroup-name> (docs/tree.md "Startup"). Fatal on a first
// start; after a re-exec the knots depend on us staying.
bool Tree::join_own_cgroup_at_start(const policy::MasterConfig& master) {
  if (!master.cgroup_name) return true;
  if (auto joined = join_own_cgroup(master); !joined) {
    if (!opt_.inherited_state) {
      fatal(joined.error().what());
      return false;
    }
    log_.error(joined.error().what());
  }
  return true;
}

// Event sources: every signal of tree_signals() is blocked since main().
bool Tree::set_up_event_sources() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : tree_signals()) sigaddset(&mask, sig);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!signal_fd_ || !timer_ || !epoll_) {
    fatal("event setup: " + errno_text(errno));
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kSignalTag;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &ev);
  ev.data.u64 = kTimerTag;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &ev);
  return true;
}

// The previous image's state (a re-exec) and the metrics file's counters.
void Tree::continue_from_previous_image() {
  if (opt_.inherited_state) apply_inherited_state();
  metrics_.read_previous();
  metrics_.on_tree_start();
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

void Tree::prepare_cgroups_and_sockets() {
  prepare_cgroups();
  sockets_.recover(log_);
  // Whatever else we inherited (from the launcher, a shell, a service
  // manager) must not leak into knots: everything is close-on-exec now.
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
    log_.warn("close_range(CLOEXEC): " + errno_text(errno));
}

void Tree::forget_previous_image() {
  reap_all();  // zombies whose SIGCHLD the previous image consumed
  // Used by adopt(); pids may be reused later.
  inherited_.kills.clear();
  inherited_.knots.clear();
  // Loading and checking every config peaks far above what the loop keeps:
  // give the freed heap back to the system (the tree lives for months).
  ::malloc_trim(0);
}

// Throttles survive the re-exec (the original restarted pending ones at once).
void Tree::schedule_starts() {
  Ns now = now_ns();
  for (auto& [name, instance] : instances_) {
    if (instance.pid != 0) continue;
    auto last = inherited_.starts.find(name);
    std::optional<Ns> last_start;
    if (last != inherited_.starts.end()) last_start = last->second;
    instance.last_start = last_start;
    set_due(instance, sv::next_start(now, last_start, instance.plan->restart_timeout_ms * kMs));
  }
}

void Tree::announce_start(const std::string& phases) {
  close_way_back();  // supervising: this image stays
  log_.info("lithos_tree started (pid " + std::to_string(::getpid()) + "), " +
            std::to_string(instances_.size()) + " instances configured (" + phases + ")");
  if (opt_.went_back) {
    // The image a reload started gave up and came back here: the reload failed.
    const std::string why = "the new image " + *opt_.went_back + "; went back to " + opt_.self_exe +
                            " as it ran before the reload";
    log_.error("Reload failed, " + why);
    notify("READY=1\nSTATUS=reload failed, " + why);
    answer_reload(inherited_.reload_token, false, why);
    return;
  }
  // Also after a re-exec: the new image ends the reload the old one began.
  notify("READY=1\nSTATUS=supervising " + std::to_string(instances_.size()) + " instances");
  answer_reload(inherited_.reload_token, true,
                "reloaded, " + std::to_string(instances_.size()) + " instances configured");
}

}  // namespace lithos::runtime::tree_detail
