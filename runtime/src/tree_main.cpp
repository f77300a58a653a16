// lithos_tree's entry points (run_tree, preflight_tree) and what they need
// of the host outside the Tree class: signals, the crash re-exec handler,
// /proc scans, limits (docs/tree.md). Decisions are in policy/supervise.hpp.
#include "lithos/runtime/supervisor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include "lithos/policy/check.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/spawn.hpp"
#include "tree_reexec_state.hpp"
#include "tree_support.hpp"

namespace lithos::runtime {

namespace sv = lithos::policy::supervise;
using tree_detail::now_ns;
using tree_detail::Ns;

std::vector<int> tree_signals() {
  return {SIGTERM, SIGINT, SIGCHLD, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
}

void block_tree_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2})
    sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

std::optional<std::string> take_inherited_state() {
  const char* value = std::getenv(kTreeStateEnv);
  if (!value) return std::nullopt;
  int fd = std::atoi(value);
  ::unsetenv(kTreeStateEnv);
  if (fd < 3) return std::nullopt;
  UniqueFd state(fd);
  ::lseek(state.get(), 0, SEEK_SET);
  auto text = read_all(state.get());
  if (!text) return std::nullopt;
  return std::move(*text);
}

// ---- crash re-exec ------------------------------------------------------------------

namespace {

struct CrashExec {
  std::string path;
  std::vector<std::string> argv_storage, env_storage;
  std::vector<char*> argv, envp;
  Ns started = 0;
};
CrashExec* g_crash = nullptr;

// Listening sockets for a crash re-exec; written outside the handler only.
constexpr std::size_t kMaxKeptFds = 4096;
int g_kept_fds[kMaxKeptFds];
volatile std::sig_atomic_t g_kept_count = 0;
volatile std::sig_atomic_t g_lock_fd = -1;

// The way back to the previous image (docs/tree.md, "Going back"), built
// in full at start-up so that the crash handler only copies and execs.
struct WayBack {
  UniqueFd exe;    // O_PATH, close-on-exec: execveat needs no inheritance
  UniqueFd state;  // a memfd with the inherited state, for the old image
  std::vector<std::string> argv_storage, env_storage;
  std::vector<char*> argv, envp;
};
WayBack* g_way_back = nullptr;
constexpr std::string_view kWentBackPrefix = "LITHOS_TREE_WENT_BACK=";
char g_went_back[512];  // kWentBackPrefix + the reason; envp points at it

// Async-signal-safe: copies, formats a number, execs.
void append_reason(std::size_t& at, const char* text) noexcept {
  for (; *text && at + 1 < sizeof g_went_back; ++text) g_went_back[at++] = *text;
  g_went_back[at] = '\0';
}

void exec_way_back() noexcept {
  WayBack* w = g_way_back;
  if (!w) return;
  ::fcntl(w->state.get(), F_SETFD, 0);
  for (std::sig_atomic_t i = 0; i < g_kept_count; ++i) ::fcntl(g_kept_fds[i], F_SETFD, 0);
  if (g_lock_fd >= 0) ::fcntl(g_lock_fd, F_SETFD, 0);
  ::syscall(SYS_execveat, w->exe.get(), "", w->argv.data(), w->envp.data(), AT_EMPTY_PATH);
  ::fcntl(w->state.get(), F_SETFD, FD_CLOEXEC);
}

void crash_handler(int sig) {
  if (g_way_back) {  // crashed during the start-up a reload began
    std::size_t at = kWentBackPrefix.size();
    append_reason(at, "crashed with signal ");
    char digits[12];
    int n = 0;
    for (int value = sig; n == 0 || value > 0; value /= 10)
      digits[n++] = static_cast<char>('0' + value % 10);
    while (n > 0 && at + 1 < sizeof g_went_back) g_went_back[at++] = digits[--n];
    append_reason(at, " during its start-up");
    exec_way_back();
  }
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  Ns now = static_cast<Ns>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  if (g_crash && now - g_crash->started > 1'000'000'000) {
    for (std::sig_atomic_t i = 0; i < g_kept_count; ++i) ::fcntl(g_kept_fds[i], F_SETFD, 0);
    if (g_lock_fd >= 0) ::fcntl(g_lock_fd, F_SETFD, 0);
    ::execve(g_crash->path.c_str(), g_crash->argv.data(), g_crash->envp.data());
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

namespace tree_detail {
void keep_across_crash_exec(const std::vector<int>& fds) {
  g_kept_count = 0;  // the handler never sees a half-written list
  std::size_t n = std::min(fds.size(), kMaxKeptFds);
  for (std::size_t i = 0; i < n; ++i) g_kept_fds[i] = fds[i];
  g_kept_count = static_cast<std::sig_atomic_t>(n);
}

void keep_lock_across_crash_exec(int fd) {
  g_lock_fd = fd;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

FilenoCeiling fileno_ceiling() {
  FilenoCeiling out;
  rlimit own{};
  ::getrlimit(RLIMIT_NOFILE, &own);
  std::uint64_t nr_open = 1048576;
  if (auto text = procfs::read_file("/proc/sys/fs/nr_open"))
    if (std::uint64_t value = std::strtoull(text->c_str(), nullptr, 10); value > 0) nr_open = value;
  // Raising a hard limit takes CAP_SYS_RESOURCE (some hosts keep it out of
  // even root's bounding set).
  std::uint64_t effective = 0;
  if (auto status = procfs::read_file("/proc/self/status"))
    if (auto at = status->find("\nCapEff:"); at != std::string::npos)
      effective = std::strtoull(status->c_str() + at + 8, nullptr, 16);
  if ((effective >> CAP_SYS_RESOURCE) & 1) {
    out.most = nr_open;
    out.reason = "fs.nr_open";
  } else {
    out.most = own.rlim_max == RLIM_INFINITY ? nr_open : static_cast<std::uint64_t>(own.rlim_max);
    out.reason = "the tree's hard RLIMIT_NOFILE, without CAP_SYS_RESOURCE";
  }
  return out;
}

bool set_oom_score_adj(int value) {
  int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string text = std::to_string(value) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}
}  // namespace tree_detail

void take_way_back(TreeOptions& options) {
  auto take = [&](const char* name) -> std::optional<std::string> {
    const std::string prefix = std::string(name) + "=";
    std::optional<std::string> value;
    std::erase_if(options.env, [&](const std::string& entry) {
      if (!entry.starts_with(prefix)) return false;
      value = entry.substr(prefix.size());
      return true;
    });
    ::unsetenv(name);
    return value;
  };
  options.went_back = take(kWentBackEnv);
  auto text = take(kPreviousImageEnv);
  if (!text) return;
  auto decoded = tree_detail::decode_way_back(*text);
  if (!decoded || decoded->exe_fd < 3 || decoded->argv.empty()) return;
  UniqueFd exe(decoded->exe_fd);
  struct stat st {};
  // Only what a reload handed over: an O_PATH descriptor of a regular file.
  const int flags = ::fcntl(exe.get(), F_GETFL);
  if (flags < 0 || !(flags & O_PATH) || ::fstat(exe.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    (void)exe.release();  // not ours to close
    return;
  }
  ::fcntl(exe.get(), F_SETFD, FD_CLOEXEC);
  if (!options.inherited_state) return;  // no state to go back with
  auto* w = new WayBack;                 // lives until close_way_back or the exec
  w->exe = std::move(exe);
  w->state.reset(static_cast<int>(::syscall(SYS_memfd_create, "lithos_tree_state", MFD_CLOEXEC)));
  const std::string& state = *options.inherited_state;
  if (!w->state ||
      ::write(w->state.get(), state.data(), state.size()) != static_cast<ssize_t>(state.size())) {
    delete w;
    return;
  }
  w->argv_storage = std::move(decoded->argv);
  w->env_storage = options.env;
  w->env_storage.push_back(std::string(kTreeStateEnv) + "=" + std::to_string(w->state.get()));
  for (auto& a : w->argv_storage) w->argv.push_back(a.data());
  w->argv.push_back(nullptr);
  for (auto& e : w->env_storage) w->envp.push_back(e.data());
  std::memcpy(g_went_back, kWentBackPrefix.data(), kWentBackPrefix.size());
  g_went_back[kWentBackPrefix.size()] = '\0';
  w->envp.push_back(g_went_back);
  w->envp.push_back(nullptr);
  g_way_back = w;
}

void go_back_to_previous_image(const std::string& why) {
  if (!g_way_back) return;
  std::size_t at = kWentBackPrefix.size();
  append_reason(at, why.c_str());
  exec_way_back();
}

void close_way_back() {
  WayBack* w = g_way_back;
  g_way_back = nullptr;  // the handler never sees a closed one
  delete w;
}

void install_crash_reexec(const TreeOptions& options) {
  auto* c = new CrashExec;  // lives until exec or exit
  c->path = options.self_exe;
  c->argv_storage = options.argv;
  c->env_storage = options.env;
  for (auto& a : c->argv_storage) c->argv.push_back(a.data());
  c->argv.push_back(nullptr);
  for (auto& e : c->env_storage) c->envp.push_back(e.data());
  c->envp.push_back(nullptr);
  c->started = now_ns();
  g_crash = c;
  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE}) {
    struct sigaction sa {};
    sa.sa_handler = crash_handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
    sigaddset(&unblock, sig);
  }
  // A crash re-exec leaves its signal blocked in the new image: undo that.
  ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
}

// ---- /proc -----------------------------------------------------------------------------

std::vector<ProcEntry> scan_processes(std::optional<pid_t> adoption_by,
                                      const std::set<pid_t>& known) {
  std::set<pid_t> pids;
  for (int pass = 0; pass < 2; ++pass) {
    DIR* d = ::opendir("/proc");
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (end && *end == '\0' && pid > 0) pids.insert(static_cast<pid_t>(pid));
    }
    ::closedir(d);
  }
  std::vector<ProcEntry> out;
  for (pid_t pid : pids) {
    std::string base = "/proc/" + std::to_string(pid);
    auto text = procfs::read_file(base + "/stat");
    if (!text) continue;
    auto stat = procfs::parse_stat(*text);
    if (!stat) continue;
    ProcEntry entry;
    entry.pid = pid;
    entry.ppid = stat->ppid;
    entry.state = stat->state;
    entry.comm = std::move(stat->comm);
    const std::string& comm = entry.comm;
    bool wanted = !adoption_by || comm == "lithos_knot" || comm == "lithos_tree" ||
                  entry.ppid == *adoption_by;
    if (adoption_by && entry.ppid == *adoption_by && known.count(pid)) wanted = false;
    if (wanted)
      if (auto cmdline = procfs::read_file(base + "/cmdline"))
        entry.argv = procfs::parse_cmdline(*cmdline);
    out.push_back(std::move(entry));
  }
  return out;
}

std::optional<std::vector<ProcEntry>> scan_own_children(const std::set<pid_t>& known) {
  pid_t self = ::getpid();
  DIR* tasks = ::opendir("/proc/self/task");
  if (!tasks) return std::nullopt;
  std::set<pid_t> pids;
  bool readable = true;
  while (dirent* e = ::readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    auto text = procfs::read_file(std::string("/proc/self/task/") + e->d_name + "/children");
    if (!text) {
      readable = false;
      break;
    }
    std::istringstream in(*text);
    for (long pid; in >> pid;) pids.insert(static_cast<pid_t>(pid));
  }
  ::closedir(tasks);
  if (!readable) return std::nullopt;
  std::vector<ProcEntry> out;
  for (pid_t pid : pids) {
    ProcEntry entry;
    entry.pid = pid;
    entry.ppid = self;
    if (!known.count(pid)) {
      std::string base = "/proc/" + std::to_string(pid);
      auto text = procfs::read_file(base + "/stat");
      if (!text) continue;
      auto stat = procfs::parse_stat(*text);
      if (!stat) continue;
      entry.state = stat->state;
      entry.comm = std::move(stat->comm);
      if (auto cmdline = procfs::read_file(base + "/cmdline"))
        entry.argv = procfs::parse_cmdline(*cmdline);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

int preflight_tree(const TreeOptions& options) {
  policy::Diagnostics diags;
  auto master = policy::load_config<policy::MasterCodec>(options.master_path, diags, nullptr);
  if (!master) {
    std::string why;
    for (const auto& d : diags.items())
      why += (why.empty() ? "" : "; ") + d.file + ": " + d.message;
    std::cerr << "master config: " << why << "\n";
    return 1;
  }
  if (!tree_detail::is_directory(master->value.devfs_dir)) {
    std::cerr << "devfs dir " << master->value.devfs_dir << " is missing\n";
    return 1;
  }
  return 0;
}

int run_tree(const TreeOptions& options) {
  tree_detail::Tree tree(options);
  return tree.run();
}

}  // namespace lithos::runtime
