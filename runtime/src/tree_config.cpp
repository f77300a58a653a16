// Reading the configuration (docs/tree.md, "The config reader"): a confined
// child reads and checks every config while the tree scans /proc, and hands
// back summaries; separate because none of it runs once the loop has started.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>

#include "lithos/common/text.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/confine.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "tree_support.hpp"
#include "tree_util.hpp"

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

constexpr off_t kConfigLogRotateSize = 10485760;
// The config reader's wall-clock limit (its CPU limit is 30 s): a reader
// blocked on something (a hung file system) must not hold the tree's start.
constexpr Ns kConfigReadTimeout = 60'000 * kMs;

}  // namespace

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
  // Withdrawn plans the reader left past the last one cost pages for nothing.
  std::uint64_t store_end = 0;
  for (const auto& instance : loaded->instances)
    store_end = std::max(store_end, instance.plan_offset + instance.plan_size);
  if (::ftruncate(plans_.get(), static_cast<off_t>(store_end)) != 0)
    log_.warn("Can't trim the plan store: " + errno_text(errno));
  metrics_.on_sandboxes_read(loaded->sandboxes);
  for (auto& name : loaded->unreadable) unreadable_.insert(std::move(name));
  for (auto& summary : loaded->instances) {
    Instance instance;
    instance.name = summary.name;
    instance.plan = std::move(summary);
    if (uses_host_sockets(instance)) socket_users_.insert(instance.name);
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
  std::set<ProcessKey> configured;
  for (const auto& [name, instance] : instances_) configured.insert(process_key(instance));
  metrics_.keep_only(configured);
}

namespace {

// The reader's end of check_tree: writes each daemon's launch plan into the
// plan store at once and keeps only its summary. An entry the checker
// refuses after all (entry_done(false)) is cut off the store again.
class PlanStoreSink final : public policy::PlanSink {
 public:
  PlanStoreSink(int store, const Logger& log) : store_(store), log_(log) {}

  void plan(policy::InstancePlan&& plan) override {
    if (plan.kind != policy::ProcessKind::Daemon) return;
    const std::string wire = encoder_.encode(plan);
    if (!write_all_checked(store_, wire)) {
      log_.error("Can't store the launch plan of " + debug_quote(plan.name) + ": " +
                 errno_text(errno));
      cut_back_to(offset_);  // a partial write must not shift the plans after it
      return;                // stays unreadable: a running one is kept, none is started
    }
    auto summary = PlanSummary::of(std::move(plan));
    summary.plan_offset = offset_;
    summary.plan_size = wire.size();
    offset_ += wire.size();
    entry_.push_back(std::move(summary));
  }

  void entry_done(bool keep) override {
    if (keep) {
      if (kept_.empty())
        kept_.swap(entry_);  // the first entry (often the only one) moves nothing
      else
        for (auto& summary : entry_) kept_.push_back(std::move(summary));
      entry_start_ = offset_;
    } else {
      cut_back_to(entry_start_);
    }
    entry_.clear();
  }

  void drop_all() {
    entry_.clear();
    kept_.clear();
    entry_start_ = 0;
    cut_back_to(0);
  }

  std::vector<PlanSummary> take() { return std::move(kept_); }

 private:
  // The next plan overwrites the withdrawn ones. What is left past the last
  // plan is never read (no summary points there); the tree trims it, as
  // the reader may not truncate (its seccomp allow-list has no ftruncate:
  // the log descriptor it holds must not be cut either).
  void cut_back_to(std::uint64_t offset) {
    if (::lseek(store_, static_cast<off_t>(offset), SEEK_SET) < 0)
      log_.warn("Can't cut the plan store back: " + errno_text(errno));
    offset_ = offset;
  }

  int store_;
  const Logger& log_;
  policy::PlanEncoder encoder_;
  std::uint64_t offset_ = 0, entry_start_ = 0;
  std::vector<PlanSummary> entry_, kept_;
};

}  // namespace

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
  // Each plan is encoded into the store as soon as it is built and dropped:
  // the reader holds one plan at a time, not thousands (docs/tree.md, "The
  // config reader").
  PlanStoreSink store(plan_store, log_);
  if (config.master) policy::check_tree_into(config, check, diags, nullptr, store);
  for (const auto& d : diags.items()) {
    if (d.severity == policy::Severity::Error)
      log_.error("Config error: " + d.one_line());
    else
      log_.warn("Config warning: " + d.one_line());
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
    store.drop_all();
  }
  for (const auto& sandbox : config.sandboxes) {
    if (!sandbox.config || !sandbox.processes) {
      // Running instances of a sandbox we cannot read are kept (the original stopped them).
      log_.error("Can't read config of sandbox " + debug_quote(sandbox.name) +
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
  out.instances = store.take();
  for (const auto& summary : out.instances) unreadable.erase(summary.name);
  for (const auto& name : unreadable)
    if (name.back() != '/' && name != sv::kEverything)
      log_.error("Instance " + debug_quote(name) +
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
}  // namespace lithos::runtime::tree_detail
