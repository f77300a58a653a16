// Private to the tree (runtime/src/tree_*.cpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/plan.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/runtime/confine.hpp"
#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/notify.hpp"
#include "lithos/runtime/supervisor.hpp"
#include "tree_metrics.hpp"
#include "tree_reexec_state.hpp"

namespace lithos::runtime::tree_detail {

using Ns = std::int64_t;  // CLOCK_MONOTONIC nanoseconds (survives exec)
inline constexpr Ns kMs = 1'000'000;
// How long one loop turn may spend starting due instances before it looks at
// signals and deaths again (Tree::fire_timers).
inline constexpr Ns kStartBurstBudget = 5 * kMs;
// How long after a knot's own kill-timeout the tree's SIGKILL waits: the
// knot's timer starts only once its setup is done.
inline constexpr std::int64_t kKnotKillMarginMs = 2000;

inline Ns now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Ns>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// stat(2) says directory.
bool is_directory(const std::string& path);

// ---- crash-only (docs/tree.md, "Crash-only")

// The tree's and (inherited) every knot's oom_score_adj: under memory
// pressure the kernel kills a container, never the supervisor. The knot
// gives its container 0 back (knot_exec.cpp). The config reader, whose death
// only keeps what runs, goes first.
inline constexpr int kSupervisorOomScoreAdj = -900;
inline constexpr int kConfigReaderOomScoreAdj = 1000;
// Writes /proc/self/oom_score_adj; false (errno set) when it cannot.
bool set_oom_score_adj(int value);

// The largest RLIMIT_NOFILE a knot of this tree can set (knots inherit the
// tree's limits): fs.nr_open with CAP_SYS_RESOURCE, else the tree's own hard
// limit. `reason` says which, for the messages.
struct FilenoCeiling {
  std::uint64_t most = 0;
  std::string reason;
};
FilenoCeiling fileno_ceiling();

// One tree per master: an exclusive flock on RUNTIME-DIR/master.lock, held
// for the tree's life and passed on across its re-execs (an inherited
// descriptor of the file is found and used). Fails, naming the holder's pid,
// when another live process holds it; the kernel drops it when the holder
// exits, so a killed tree that is not yet reaped blocks nothing.
inline constexpr std::string_view kTreeLockName = "master.lock";
// `TOKEN ok|refused MESSAGE`: the answer to `lithos_tree --reload`, whose
// SIGQUIT carried TOKEN (sigqueue), in the runtime dir.
inline constexpr std::string_view kReloadAnswerName = "reload.answer";
// How long take_tree_lock waits for a lock whose recorded holder has exited
// (a child of that tree may hold it for a moment longer).
inline constexpr std::chrono::milliseconds kLockLeftoverWait{2000};
Result<UniqueFd> take_tree_lock(const std::string& runtime_dir);
// The pid the holder wrote into the lock file; 0 when none is there.
long lock_holder_pid(int lock_fd);
// The lock's descriptor survives a crash re-exec too (tree_main.cpp).
void keep_lock_across_crash_exec(int fd);

// ---- host-side sockets (docs/tree.md; tree_sockets.cpp)

struct SocketKey {
  policy::scalars::IpAddress host{};
  std::uint16_t port = 0;
  friend auto operator<=>(const SocketKey&, const SocketKey&) = default;
  friend bool operator==(const SocketKey&, const SocketKey&) = default;
};

// A bound, listening, close-on-exec socket at a descriptor >= 512.
// Creates, binds and listens; socket() runs with the filesystem uid/gid of
// `owner` when either is non-zero (docs/tree.md, "Host-side sockets"),
// restored afterwards.
Result<UniqueFd> open_listener(const policy::SocketPlan& sp,
                               policy::supervise::SocketCredentials owner);

class SocketTable {
 public:
  // The shared socket of (host, port), created on first use (the options of
  // whoever creates it win). The table keeps ownership.
  Result<int> get(const policy::SocketPlan& sp, policy::supervise::SocketCredentials owner,
                  const Logger& log);
  // Closes every socket whose key is not in `used`.
  void close_unused(const std::set<SocketKey>& used, const Logger& log);
  // Close-on-exec off right before the re-exec (so the sockets survive it),
  // back on if the exec failed.
  void set_cloexec(bool on);
  // In the new image: listening inet sockets inherited without close-on-exec.
  void recover(const Logger& log);

 private:
  std::map<SocketKey, UniqueFd> table_;
  void publish() const;  // tells the crash re-exec handler which fds to keep
};

// The listening sockets a crash re-exec (a signal handler: no allocation)
// must pass on: FD_CLOEXEC is cleared on them right before its execve.
void keep_across_crash_exec(const std::vector<int>& fds);

// What the loop needs of an instance's plan: the knot re-derives the rest.
// Keeping only this (not the whole InstancePlan, ~4.5 KiB) is what keeps the
// tree small with a thousand instances (docs/tree.md, Benchmark).
struct PlanSummary {
  std::string name, sandbox, child, identity;
  std::int64_t restart_timeout_ms = 0, kill_timeout_ms = 0;
  std::uint64_t fileno_limit = 1024;  // checked against what the tree can give
  std::vector<policy::SocketPlan> sockets;
  policy::supervise::SocketCredentials socket_owner;
  std::optional<policy::CgroupPlan> cgroup;
  // Where the reader wrote the encoded launch plan in the configuration's
  // plan store (a memfd, Tree::plans_): copied into a sealed memfd of its
  // own for every start (docs/tree.md, "The config reader").
  std::uint64_t plan_offset = 0, plan_size = 0;

  static PlanSummary of(policy::InstancePlan&& plan) {
    PlanSummary s;
    s.socket_owner = policy::supervise::socket_credentials(plan);
    s.name = std::move(plan.name);
    s.sandbox = std::move(plan.sandbox);
    s.child = std::move(plan.child);
    s.identity = std::move(plan.identity);
    s.restart_timeout_ms = plan.restart_timeout_ms;
    s.kill_timeout_ms = plan.kill_timeout_ms;
    s.fileno_limit = plan.fileno_limit;
    s.sockets = std::move(plan.sockets);
    s.cgroup = std::move(plan.cgroup);
    s.sockets.shrink_to_fit();
    s.identity.shrink_to_fit();
    return s;
  }
  friend bool operator==(const PlanSummary&, const PlanSummary&) = default;
};

// The reading child of the tree, while it runs.
struct PendingConfiguration {
  pid_t pid = -1;  // -1: it could not be started
  UniqueFd read_end;
  UniqueFd plans;                          // the plan store the reader fills
  Ns started = 0;                          // for the wall-clock limit
  std::optional<ReaderProgress> progress;  // the file it was reading, if it dies
};

// What the reading child (Tree::start_reading_configuration) hands back.
struct LoadedConfiguration {
  std::vector<PlanSummary> instances;
  std::vector<std::string> unreadable;  // names, "SANDBOX/" or kEverything
  std::int64_t sandboxes = 0;
  // Config-log lines (sandbox, timestamped JSON line) for the tree to write:
  // the confined child cannot write root's files.
  std::vector<std::pair<std::string, std::string>> config_log;
  friend bool operator==(const LoadedConfiguration&, const LoadedConfiguration&) = default;
};
// A self-delimiting text form (numbers `N;`, strings `LEN:BYTES`); decoding
// fails on anything malformed or truncated (a child that died mid-write).
std::string encode_configuration(const LoadedConfiguration& loaded);
std::optional<LoadedConfiguration> decode_configuration(std::string_view wire);

struct Instance {
  std::string name;
  std::optional<PlanSummary> plan;
  std::optional<Ns> last_start;
  std::optional<Ns> due;  // pending start: set through Tree::set_due only
  // Starts in a row that failed before a knot ran: the back-off grows
  // (supervise::start_error_backoff_ms).
  std::uint32_t start_errors = 0;
  pid_t pid = 0;  // its recorded knot (running or upgrading)
};

struct Child {
  pid_t pid = 0;
  UniqueFd pidfd;
  std::string name;                  // knot name, or "" for an unidentified process
  bool configured_identity = false;  // runs the identity configured now
  bool ours = true;                  // our child: waitable
  bool counted = false;              // the knot of instances_[name]: accounting and restart
  bool retired = false;              // its state dir goes when it dies
  std::optional<Ns> kill_at;         // set through Tree::set_kill_at only
  bool term_sent = false;
  bool killed = false;
};

// The entry of an instance in the per-process metrics.
inline ProcessKey process_key(const Instance& instance) {
  return {instance.plan->sandbox, instance.plan->child};
}

class Tree {
 public:
  explicit Tree(const TreeOptions& options)
      : opt_(options), notifier_(ServiceNotifier::from_environment(options.env)) {}
  int run();

 private:
  // Startup phases, in the order run() calls them (tree_startup.cpp).
  struct HostChecks {
    bool oom_adjusted = false;
    int oom_errno = 0;
    bool devfs_ok = false;
  };
  int fatal(const std::string& message);
  std::optional<policy::MasterConfig> read_master_config();
  bool check_host(const policy::MasterConfig& master, HostChecks& host);
  void make_directories(const policy::MasterConfig& master);
  void open_log(const policy::MasterConfig& master, const HostChecks& host);
  bool take_lock_and_pid_file();
  bool join_own_cgroup_at_start(const policy::MasterConfig& master);
  Result<void> join_own_cgroup(const policy::MasterConfig& master);
  bool set_up_event_sources();
  void continue_from_previous_image();
  void prepare_cgroups_and_sockets();
  void prepare_cgroups();
  void forget_previous_image();
  void schedule_starts();
  void announce_start(const std::string& phases);

  // Reading the configuration (tree_config.cpp).
  PendingConfiguration start_reading_configuration();
  bool finish_reading_configuration(PendingConfiguration pending);
  LoadedConfiguration read_configuration(int plan_store);
  bool keep_everything();
  void set_up_counters();
  void write_config_logs(const std::vector<std::pair<std::string, std::string>>& lines);
  void write_config_log(int dir_fd, const std::string& sandbox, const std::string& line);

  // Adoption and garbage collection (tree_adopt.cpp).
  void apply_inherited_state();
  std::vector<ProcEntry> list_processes(pid_t reader);
  bool track(Child child);
  void adopt(const std::vector<ProcEntry>& processes);
  void collect_garbage();

  // The loop (tree_loop.cpp).
  void loop();
  void fire_timers();
  Result<UniqueFd> copy_launch_plan(const PlanSummary& plan) const;
  void start(Instance& instance);
  void start_failed(Instance& instance, Ns now, const std::string& why);
  void on_signal();
  void reap_all();
  void on_pidfd(pid_t pid);
  void finish_child(pid_t pid, std::optional<int> status);
  void stop_child(Child& child, Ns timeout, const std::string& why);
  void begin_shutdown();
  void clean_up_after_loop();
  void notify(const std::string& state);
  void answer_reload(std::uint32_t token, bool reloaded, const std::string& message);
  bool name_busy(const std::string& name) const;
  void set_due(Instance& instance, std::optional<Ns> due);
  void set_kill_at(Child& child, std::optional<Ns> at);
  bool uses_host_sockets(const Instance& instance) const;
  Ns kill_timeout_for(const std::string& name, const std::string& identity) const;
  void write_metrics();
  void remove_state_dir(const std::string& name);
  void remove_scope(const std::string& name);
  bool is_unreadable_name(const std::string& name) const;

  // Reload by re-exec (tree_reexec.cpp).
  void reexec(std::uint32_t token);
  ReexecState state_for_next_image(std::uint32_t token) const;
  std::string reload_blocker() const;
  std::string preflight_new_image() const;

  const TreeOptions& opt_;
  Logger log_;
  Metrics metrics_{log_};  // docs/tree.md, "Metrics"
  std::string runtime_dir_, state_root_;
  std::string devfs_dir_;  // checked before every start: missing, it is a start error
  UniqueFd plans_;         // the plan store of the configuration read (PlanSummary::plan_offset)
  std::optional<std::string> config_log_dir_;
  std::string master_log_level_;
  std::map<std::string, Instance> instances_;
  std::set<std::string> unreadable_;
  std::vector<std::string> cgroup_parents_;  // <hierarchy>/<cgroup-name> dirs
  std::map<pid_t, Child> children_;
  std::map<std::string, int> busy_names_;  // live children per knot name
  // The pending starts and kills in time order, mirrors of Instance::due and
  // Child::kill_at: a loop turn looks at what is due, not at every instance
  // (at 5000 instances a scan of both maps cost about a millisecond a turn).
  std::set<std::pair<Ns, std::string>> due_starts_;
  std::set<std::pair<Ns, pid_t>> due_kills_;
  std::size_t unknown_children_ = 0;  // children without a knot name
  // Instances whose plan has a host-side socket of its own (not reuse-port):
  // only they keep sockets open (Tree::loop).
  std::set<std::string> socket_users_;
  SocketTable sockets_;
  UniqueFd epoll_, signal_fd_, timer_;
  UniqueFd lock_;             // take_tree_lock: held for the tree's life
  ServiceNotifier notifier_;  // systemd's NOTIFY_SOCKET (notify.hpp), or none
  bool notify_failed_ = false;
  FilenoCeiling fileno_ceiling_;
  bool shutting_down_ = false;
  bool exit_loop_ = false;
  bool reap_pending_ = false;  // a SIGCHLD came: reap_all at the next loop turn
  // From the previous image (a re-exec): last starts and the reload to
  // answer, for the whole start; kill deadlines and knots, until adoption.
  ReexecState inherited_;
};

}  // namespace lithos::runtime::tree_detail
