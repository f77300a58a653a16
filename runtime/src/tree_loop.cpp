// The loop (docs/tree.md, "The loop", "Stopping children and kill timeouts",
// "Shutdown"): timers, signals and pidfds; starting, stopping and reaping
// knots. Everything here runs for the tree's whole life.
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "lithos/common/text.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "lithos/runtime/spawn.hpp"
#include "tree_support.hpp"
#include "tree_util.hpp"

namespace lithos::runtime::tree_detail {

namespace sv = lithos::policy::supervise;

bool Tree::is_unreadable_name(const std::string& name) const {
  return sv::is_unreadable(unreadable_, name);
}

bool Tree::name_busy(const std::string& name) const {
  return busy_names_.count(name) > 0;
}

void Tree::set_due(Instance& instance, std::optional<Ns> due) {
  if (instance.due) due_starts_.erase({*instance.due, instance.name});
  instance.due = due;
  if (due) due_starts_.emplace(*due, instance.name);
}

void Tree::set_kill_at(Child& child, std::optional<Ns> at) {
  if (child.kill_at) due_kills_.erase({*child.kill_at, child.pid});
  child.kill_at = at;
  if (at) due_kills_.emplace(*at, child.pid);
}

bool Tree::uses_host_sockets(const Instance& instance) const {
  for (const auto& sp : instance.plan->sockets)
    if (sp.host_side && !sp.reuse_port) return true;
  return false;
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
  auto inherited = inherited_.kills.find(child.pid);
  Ns deadline = inherited != inherited_.kills.end() ? inherited->second : now_ns() + timeout;
  if (!child.kill_at || deadline < *child.kill_at) set_kill_at(child, deadline);
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
    // After the starts: a SIGCHLD's waitid(P_ALL) walks every child (about
    // 2 ms at 5000), and a knot's death, seen through its pidfd in the same
    // turn, is restarted first.
    if (reap_pending_) {
      reap_pending_ = false;
      reap_all();
    }
    if (shutting_down_ && children_.empty()) break;
    if (exit_loop_) break;
    // Sockets only serve running instances: close the unused ones.
    std::set<SocketKey> used;
    for (const auto& name : socket_users_)
      if (const auto& instance = instances_.at(name); instance.pid != 0)
        for (const auto& sp : instance.plan->sockets)
          if (sp.host_side && !sp.reuse_port) used.insert({sp.host, sp.port});
    sockets_.close_unused(used, log_);
    if (metrics_.changed()) write_metrics();
    // Arm the timer for the earliest due start or kill. A start whose name
    // is busy waits for that knot's death, which wakes the loop anyway.
    std::optional<Ns> next;
    for (const auto& [at, name] : due_starts_)
      if (!name_busy(name)) {
        next = at;
        break;
      }
    if (!due_kills_.empty() && (!next || due_kills_.begin()->first < *next))
      next = due_kills_.begin()->first;
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
  while (!due_kills_.empty() && due_kills_.begin()->first <= now) {
    const pid_t pid = due_kills_.begin()->second;
    Child& child = children_.at(pid);
    set_kill_at(child, std::nullopt);
    metrics_.on_change();
    child.killed = true;
    std::string who =
        (child.name.empty() ? std::string("unidentified child") : debug_quote(child.name)) +
        " (pid: " + std::to_string(pid) + ")";
    log_.error(who + " did not stop after SIGTERM. Sending SIGKILL");
    if (!pidfd_signal(child.pidfd.get(), SIGKILL) && errno != ESRCH)
      log_.error("Can't send SIGKILL to " + who + ": " + errno_text(errno));
  }
  if (shutting_down_) return;
  // A turn starts what is due for at most kStartBurstBudget, then goes back
  // to epoll: the timer is still due, so the next turn goes on at once, and a
  // SIGTERM, a SIGQUIT or a knot's death in between is seen within one start
  // rather than after thousands of them (docs/tree.md, "The loop").
  const Ns burst_end = now + kStartBurstBudget;
  std::vector<std::string> ready;
  for (const auto& [at, name] : due_starts_) {
    if (at > now) break;
    if (!name_busy(name)) ready.push_back(name);
  }
  for (const auto& name : ready) {
    start(instances_.at(name));
    if (now_ns() >= burst_end) break;
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
  set_due(instance, std::nullopt);
  // Counted (metrics_.on_start) only once the knot is about to be spawned:
  // a start refused before that (fileno-limit, launch plan, sockets) counts
  // in no metric, as in the original.
  metrics_.on_change();

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
  spawn.fd_table_below = kLowDescriptors;

  // A limit the knot cannot set fails its setup after every start: said
  // here, once per attempt, with the back-off of start errors.
  if (plan.fileno_limit > fileno_ceiling_.most) {
    start_failed(instance, now,
                 "fileno-limit " + std::to_string(plan.fileno_limit) +
                     " is more than this tree can give (" + std::to_string(fileno_ceiling_.most) +
                     ", " + fileno_ceiling_.reason + ")");
    return;
  }

  // Every knot binds it: without it each knot would fail in its setup and
  // restart at the restart-timeout pace; here it backs off like any start
  // error until the directory is back (docs/tree.md, "Crash-only").
  if (!is_directory(devfs_dir_)) {
    start_failed(instance, now, "devfs dir " + devfs_dir_ + " is missing");
    return;
  }

  // The launch plan, in a sealed memfd of this start's own.
  auto sealed = copy_launch_plan(plan);
  if (!sealed) {
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
      start_failed(instance, now, "error opening sockets: " + fd.error().what());
      return;
    }
    spawn.fds.emplace_back(*fd, policy::kPlanFd + static_cast<int>(spawn.fds.size()));
  }

  instance.last_start = now;
  metrics_.on_start(process_key(instance));
  auto spawned = spawn_process(spawn);
  if (!spawned) {
    metrics_.on_spawn_failure(process_key(instance));
    start_failed(instance, now, spawned.error().what());
    return;
  }
  Child child;
  child.pid = spawned->pid;
  child.pidfd.reset(keep_high(spawned->pidfd.release()));
  child.name = plan.name;
  child.configured_identity = true;
  child.counted = true;
  pid_t pid = child.pid;
  if (!track(std::move(child))) {
    // Without a pidfd in epoll we could not notice its death: stop it (it is
    // reaped as an unknown child) and try again after the restart timeout.
    ::kill(pid, SIGKILL);
    metrics_.on_spawn_failure(process_key(instance));
    start_failed(instance, now, "cannot watch its knot (epoll)");
    return;
  }
  instance.start_errors = 0;
  instance.pid = pid;
  metrics_.on_running(process_key(instance));
  log_.info("Forked " + debug_quote(plan.name) + " (pid: " + std::to_string(pid) + ")");
}

// A start that failed before a knot ran: one line with the reason and when
// the next attempt is, which backs off (start_error_backoff_ms).
void Tree::start_failed(Instance& instance, Ns now, const std::string& why) {
  instance.start_errors += 1;
  std::int64_t delay_ms =
      sv::start_error_backoff_ms(instance.start_errors, instance.plan->restart_timeout_ms);
  set_due(instance, now + delay_ms * kMs);
  char next[32];
  std::snprintf(next, sizeof next, "%.1f", static_cast<double>(delay_ms) / 1000.0);
  log_.error("Error starting " + debug_quote(instance.name) + ": " + why + " (attempt " +
             std::to_string(instance.start_errors) + ", next in " + next + " s)");
}

void Tree::on_signal() {
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    int sig = static_cast<int>(info.ssi_signo);
    switch (sig) {
      case SIGCHLD:
        reap_pending_ = true;  // reaped at the next turn, after its starts (loop)
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
  for (auto& [name, instance] : instances_) set_due(instance, std::nullopt);
  for (auto& [pid, child] : children_) {
    // A second SIGTERM is forwarded again but does not extend the deadline.
    auto it = instances_.find(child.name);
    std::string identity = child.configured_identity && it != instances_.end()
                               ? it->second.plan->identity
                               : std::string();
    stop_child(child, kill_timeout_for(child.name, identity), "Shutdown");
  }
  if (children_.empty()) exit_loop_ = true;
  metrics_.on_change();
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
      log_.error("Container " + debug_quote(child.name) + what);
    else
      log_.info((child.name.empty() ? std::string("Process") : "Knot " + debug_quote(child.name)) +
                what);
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
  std::string label = c.name.empty() ? "Unidentified child" : "Container " + debug_quote(c.name);
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
  set_kill_at(child, std::nullopt);
  if (child.name.empty()) --unknown_children_;
  if (auto busy = busy_names_.find(child.name); busy != busy_names_.end() && --busy->second <= 0)
    busy_names_.erase(busy);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, child.pidfd.get(), nullptr);
  metrics_.on_change();
  Ns now = now_ns();
  if (child.counted) {
    auto& instance = instances_.at(child.name);
    instance.pid = 0;
    metrics_.on_death(process_key(instance), status.value_or(1) != 0);
    remove_state_dir(child.name);
    // The scope is kept for the restart (re-creating a just-removed
    // memory cgroup was unsafe on old kernels), removed at shutdown.
    if (shutting_down_) remove_scope(child.name);
    if (!shutting_down_)
      set_due(instance,
              sv::next_start(now, instance.last_start, instance.plan->restart_timeout_ms * kMs));
  } else if (!child.name.empty()) {
    auto inst = instances_.find(child.name);
    if (!name_busy(child.name) && (inst == instances_.end() || inst->second.pid == 0)) {
      remove_state_dir(child.name);
      if (child.retired || shutting_down_) remove_scope(child.name);
    }
  }
  if (shutting_down_ && children_.empty()) exit_loop_ = true;
}

void Tree::remove_scope(const std::string& name) {
  if (name.empty() || name.find("..") != std::string::npos) return;
  for (const auto& parent : cgroup_parents_) {
    std::string dir = parent + "/" + policy::scope_name(name);
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
      log_.error("Can't remove cgroup " + dir + ": " + errno_text(errno));
  }
}

void Tree::remove_state_dir(const std::string& name) {
  if (name.empty() || name.find("..") != std::string::npos) return;
  if (auto removed = remove_tree(policy::join_path(state_root_, name)); !removed)
    log_.error(removed.error().what());
}

// After the loop: every scope goes at shutdown, also those of instances
// that had no knot at that moment (waiting out their restart-timeout), and
// the state dir is emptied: nothing of ours runs any more.
void Tree::clean_up_after_loop() {
  if (shutting_down_ && children_.empty())
    for (const auto& [name, instance] : instances_) remove_scope(name);
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
}

// The metrics file (tree_metrics.hpp), with the gauges of the loop's state.
void Tree::write_metrics() {
  LoopGauges gauges;
  gauges.containers = instances_.size();
  gauges.queue = due_starts_.size() + due_kills_.size();
  gauges.unknown = unknown_children_;
  metrics_.write(gauges);
}

}  // namespace lithos::runtime::tree_detail
