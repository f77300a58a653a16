// Adoption and garbage collection at startup (docs/tree.md, "Adoption and a
// tree killed with -9", "Garbage collection"): what runs before the loop is
// sorted into ours, a previous tree's, and strangers'; what is left over goes.
#include <dirent.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "lithos/common/text.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "tree_reexec_state.hpp"
#include "tree_support.hpp"
#include "tree_util.hpp"

namespace lithos::runtime::tree_detail {

namespace sv = lithos::policy::supervise;

// The state the previous image wrote (Tree::reexec, tree_reexec_state.hpp).
void Tree::apply_inherited_state() {
  inherited_ = decode_reexec_state(*opt_.inherited_state);
}

// The processes adoption sorts. The reading child (`reader`) is ours but no
// knot: never a candidate to stop (once reaped, its pid may belong to anyone).
std::vector<ProcEntry> Tree::list_processes(pid_t reader) {
  std::set<pid_t> known;
  for (const auto& [pid, knot] : inherited_.knots) known.insert(pid);
  std::optional<std::vector<ProcEntry>> children;
  if (inherited_.children_only) children = scan_own_children(known);
  auto processes = children ? std::move(*children) : scan_processes(::getpid(), known);
  std::erase_if(processes, [&](const ProcEntry& p) { return p.pid == reader; });
  return processes;
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
  if (child.name.empty()) ++unknown_children_;
  children_.emplace(pid, std::move(child));
  return true;
}

// The pid in `cmd.NAME.PID` is its lithos_cmd's: alive means that pid is a
// lithos_cmd now, not merely some process (pids are reused).
bool command_alive(long pid) {
  if (pid <= 0) return false;
  auto comm = procfs::read_file("/proc/" + std::to_string(pid) + "/comm");
  return comm && comm->rfind("lithos_cmd", 0) == 0;
}

// A knot of our master that is not our child was started by a previous tree
// of this master (killed, crashed, or a reload that failed): knots outlive
// the tree. Not such a knot: a command's knot (`S/cmd.X.PID`, owned by its
// lithos_cmd), a knot whose parent is a live lithos_cmd or lithos_tree (a
// lithos inside a container with the same master path: we hold this
// master's lock, so that tree is not ours), or a process that only calls
// itself lithos_knot.
enum class Leftover { Adoptable, NotOurs, ForeignBinary, Exiting };

Leftover classify_leftover_knot(pid_t pid, pid_t parent, const std::string& name,
                                const std::string& knot_path) {
  if (auto parsed = policy::InstanceName::parse(name); parsed && parsed->command)
    return Leftover::NotOurs;
  if (auto text = procfs::read_file("/proc/" + std::to_string(parent) + "/stat")) {
    auto stat = procfs::parse_stat(*text);
    if (stat && stat->state != 'Z' && (stat->comm == "lithos_cmd" || stat->comm == "lithos_tree"))
      return Leftover::NotOurs;
  }
  // The knot binary of this tree; after a package upgrade the old knots run
  // the replaced file, which the kernel shows with " (deleted)".
  char buf[PATH_MAX];
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  // No executable left: it is exiting (a knot killed with the previous
  // tree by its parent-death signal, still tearing down its PID namespace).
  if (n <= 0) return errno == ENOENT ? Leftover::Exiting : Leftover::ForeignBinary;
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
    return p.ppid == self && inherited_.knots.count(p.pid) != 0;
  };
  std::set<pid_t> knot_pids;
  for (const auto& p : processes)
    if (inherited(p) || sv::parse_knot_cmdline(p.argv)) knot_pids.insert(p.pid);
  for (const auto& p : processes) {
    if (p.pid == self || knot_pids.count(p.ppid)) continue;
    if (inherited(p)) {
      const auto& [name, identity] = inherited_.knots.at(p.pid);
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
          log_.warn("Not adopting " + debug_quote(knot->name) + " (pid: " + std::to_string(p.pid) +
                    "): it is not " + opt_.knot_path + "; left alone");
          break;
        case Leftover::NotOurs:
        case Leftover::Exiting:
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
    child.pidfd.reset(keep_high(pidfd_open(k.pid)));
    if (!child.pidfd) {
      // Our child cannot be gone before we reap it: this is EMFILE or ENOMEM.
      // Its name stays busy, so no second knot of it is ever started.
      if (k.our_child && errno != ESRCH) {
        log_.error("Can't watch " + debug_quote(k.name) + " (pid: " + std::to_string(k.pid) +
                   "): " + errno_text(errno) + "; it is not restarted while it lives");
        ++busy_names_[k.name];
      }
      continue;
    }
    if (!k.our_child) {
      // The pid may have been reused between the scan and pidfd_open.
      auto again = procfs::read_file("/proc/" + std::to_string(k.pid) + "/cmdline");
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
        auto last = inherited_.starts.find(k.name);
        if (last != inherited_.starts.end()) instance.last_start = last->second;
        metrics_.on_running(process_key(instance));
        if (upgrade) {
          log_.info("Config mismatch: " + name + ", pid: " + pid_text + ". Upgrading...");
          stop_child(children_.at(k.pid), kill_timeout_for(name, k.identity), "upgrade");
        } else {
          log_.info("Adopted " + debug_quote(name) + " (pid: " + pid_text +
                    (k.our_child ? ")" : ", left running by a previous tree)"));
        }
        break;
      }
      case sv::Verdict::Keep:
        log_.error("Keeping " + debug_quote(k.name) + " (pid: " + pid_text +
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
    child.pidfd.reset(keep_high(pidfd_open(pid)));
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
    while (dirent* e = ::readdir(d))
      if (policy::instance_of_scope(e->d_name)) scopes.push_back(e->d_name);
    ::closedir(d);
    for (const auto& scope : scopes) {
      const std::string name = *policy::instance_of_scope(scope);
      bool keep = live.count(name) > 0 || instances_.count(name) > 0 || is_unreadable_name(name);
      if (auto parsed = policy::InstanceName::parse(name); parsed && parsed->command)
        keep = command_alive(static_cast<pid_t>(parsed->number));
      if (keep) continue;
      std::string dir = parent + "/" + scope;
      log_.warn("Dangling cgroup " + dir + ". Deleting...");
      if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
        auto procs = procfs::read_file(dir + "/cgroup.procs");
        log_.error("Can't remove cgroup " + dir + ": " + errno_text(errno) +
                   (procs ? " (cgroup.procs: " + *procs + ")" : ""));
      }
    }
  }
}

}  // namespace lithos::runtime::tree_detail
