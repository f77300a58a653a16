// Start latency of a hardened `/bin/true` in a busybox image: lithos against
// our C floor (start_floor.c), bubblewrap, crun and a plain unshare + chroot
// floor, measured side by side in one run.
//
// Setup, in a temporary directory: a busybox image (scripts/make-example-
// image.sh, plus a /bin/true link to busybox), a devfs (lithos_mkdev), and a
// master/sandbox/process tree with a `kind: Command` entry `true` whose
// container config sets memory-limit, cpu-shares and fileno-limit, with
// `cgroup-name` in the master, so the knot joins a scope cgroup and writes the
// limits. Capabilities (none kept), no_new_privs and the default seccomp deny
// list come from our hardening defaults (docs/hardening.md).
//
// Every tool runs the same image read-only, as uid 0, in new mount, PID, IPC
// and UTS namespaces (no network or user namespace: lithos gives a command
// without bridged-network none, so neither do the peers):
//   ours   lithos_cmd --master M box true   (lithos_cmd -> lithos_knot -> true)
//   knot   lithos_knot started directly, as lithos_tree starts it (spawn_process
//          with the knot namespaces); informational, shows lithos_cmd's share
//   floor-c  start_floor IMAGE DEV PARENT -- /bin/true (bench/start_floor.c):
//          the same kernel steps as our start (namespaces, scope cgroups in
//          memory, cpu and pids with the same limits, read-only image, proc,
//          devfs, tmpfs, pivot_root, RLIMIT_NOFILE, no capabilities,
//          no_new_privs, the default seccomp deny list compiled per start) in
//          one C process, with no supervisor and no config: ours/floor-c is
//          lithos' own overhead (target <= 1.15). Ours joins the master's
//          cgroup controllers (default: name=systemd, cpu, cpuacct, memory,
//          blkio), so on a v1 host it makes more scope dirs than the floor
//   bwrap  bwrap --unshare-pid --unshare-ipc --unshare-uts --die-with-parent
//          --new-session --ro-bind IMAGE / --proc /proc --dev /dev --cap-drop ALL
//          --seccomp 3 /bin/true, fd 3 = our own compiled default filter;
//          bwrap always sets no_new_privs; it has no cgroup support
//   crun   crun --root R run --bundle B ID with config.json from `crun spec`:
//          root = IMAGE read-only, args /bin/true, no terminal, every
//          capability set emptied, noNewPrivileges, RLIMIT_NOFILE, memory
//          limit and cpu shares (cgroupfs manager), the network namespace
//          removed, and a seccomp profile with our default deny list (EPERM),
//          the clone namespace-flag rules and clone3 -> ENOSYS
//   floor  unshare --mount --pid --fork --ipc --uts chroot IMAGE /bin/true
//          (no cgroups, hardening or mounts: not the same work, no target)
//
// crun 1.8 refuses a hybrid cgroup host whose cgroup2 mount still has
// controllers ("cgroups in hybrid mode not supported"). On such a host crun
// is run by a helper process in a private mount namespace of its own where
// /sys/fs/cgroup/unified is detached, so crun sees a plain v1 host; the
// other tools see the host as it is. Nothing on the host is changed.
//
// Each round starts every tool once, in an order rotated per round, so that
// machine noise hits all of them alike. Time = wall clock from posix_spawn
// (clone3 for the direct knot) to the reap by wait4; cpu = user + system
// time of the reaped tree. Peak RSS comes from a separate pass of 20 starts
// per tool through bench_rss_trampoline (rss_trampoline.cpp): ru_maxrss of
// its wait4, i.e. the largest peak resident set of any single process of the
// started tree (the process and the descendants it reaped), not a sum.
//
// Usage: bench_knot_start [STARTS] [--keep]   (STARTS default 200)
// One file over 600 lines on purpose: every side of the comparison is set up
// and timed by the same code in one run.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lithos/policy/check.hpp"
#include "lithos/policy/hardening.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/seccomp.hpp"
#include "lithos/runtime/spawn.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lithos;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr int kWarmup = 5;
// The script the isolation check runs in every tool (busybox sh).
constexpr const char* kShowScript =
    "grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | "
    "tr '\\t\\n' '  '; grep -E ':memory:' /proc/self/cgroup";

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string own_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  return fs::path(std::string(buf, static_cast<std::size_t>(n))).parent_path().string();
}

std::optional<std::string> find_program(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return std::nullopt;
}

// What a start is for: timed, the isolation check (stdout kept), or the
// peak-RSS pass (through bench_rss_trampoline).
enum class Mode { Time, Show, Rss };

struct Paths {
  std::string err;         // stderr of every start
  std::string shown;       // stdout of the isolation check
  std::string trampoline;  // bench_rss_trampoline
  std::string rss;         // its result file
};
Paths g_paths;

struct Sample {
  double ms = 0;
  double cpu_ms = 0;  // user + system of the whole reaped tree
  long maxrss_kib = 0;
  int status = -1;
};

// One start: stdin and stdout on /dev/null (Show: stdout to a file), stderr
// to a file, fd 3 opened from `fd3_path` when set. Rss: started through the
// trampoline, whose fork child is tiny, so the tree's ru_maxrss is the tool's
// own (a child of this big process would carry this process's pages: the
// kernel records the old memory map's peak at execve).
Sample run_once(const std::vector<std::string>& tool_argv, Mode mode,
                const std::string& fd3_path = {}) {
  std::vector<std::string> argv = tool_argv;
  if (mode == Mode::Rss) argv.insert(argv.begin(), {g_paths.trampoline, g_paths.rss});
  const std::string& err_path = g_paths.err;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  static char path_var[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  static char term_var[] = "TERM=dumb";
  char* env[] = {path_var, term_var, nullptr};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (mode == Mode::Show)
    posix_spawn_file_actions_addopen(&fa, 1, g_paths.shown.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
  else
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!fd3_path.empty()) posix_spawn_file_actions_addopen(&fa, 3, fd3_path.c_str(), O_RDONLY, 0);

  Sample s;
  auto start = Clock::now();
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    write_file(err_path, std::string("posix_spawn: ") + std::strerror(rc) + "\n");
    return s;
  }
  rusage ru{};
  while (::wait4(pid, &s.status, 0, &ru) < 0 && errno == EINTR) {
  }
  s.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  s.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  s.maxrss_kib = ru.ru_maxrss;
  if (mode == Mode::Rss) {
    // "MAXRSS_KIB STATUS" of the tool, as the trampoline reaped it.
    long rss = 0;
    int status = -1;
    std::istringstream in(read_file(g_paths.rss));
    if (!(in >> rss >> status)) status = -1;
    s.maxrss_kib = rss;
    if (s.status == 0) s.status = status;
  }
  return s;
}

struct Request {
  int run;
  Mode mode;
};

// Runs crun in a private mount namespace without the cgroup2 mount (see the
// header comment). Requests go over one pipe, Samples come back on another.
class CrunHelper {
 public:
  bool start(std::function<Sample(int, Mode)> run) {
    int req[2], rep[2];
    if (::pipe2(req, O_CLOEXEC) != 0 || ::pipe2(rep, O_CLOEXEC) != 0) return false;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::close(req[1]);
      ::close(rep[0]);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::umount2("/sys/fs/cgroup/unified", MNT_DETACH) != 0)
        ::_exit(1);
      Request q;
      while (::read(req[0], &q, sizeof q) == static_cast<ssize_t>(sizeof q)) {
        Sample s = run(q.run, q.mode);
        if (::write(rep[1], &s, sizeof s) != static_cast<ssize_t>(sizeof s)) ::_exit(1);
      }
      ::_exit(0);
    }
    ::close(req[0]);
    ::close(rep[1]);
    req_ = req[1];
    rep_ = rep[0];
    return true;
  }
  Sample run(int i, Mode mode) {
    Sample s;
    Request q{i, mode};
    if (::write(req_, &q, sizeof q) != static_cast<ssize_t>(sizeof q)) return s;
    if (::read(rep_, &s, sizeof s) != static_cast<ssize_t>(sizeof s)) return Sample{};
    return s;
  }
  ~CrunHelper() {
    if (pid_ <= 0) return;
    ::close(req_);
    ::close(rep_);
    int status;
    ::waitpid(pid_, &status, 0);
  }

 private:
  pid_t pid_ = -1;
  int req_ = -1, rep_ = -1;
};

bool hybrid_cgroup2_with_controllers() {
  std::string controllers = read_file("/sys/fs/cgroup/unified/cgroup.controllers");
  return controllers.find_first_not_of(" \n") != std::string::npos;
}

struct Tool {
  Tool(std::string k, std::string l, std::string why, std::function<Sample(int, Mode)> r)
      : key(std::move(k)), label(std::move(l)), skipped(std::move(why)), run(std::move(r)) {}
  std::string key;
  std::string label;
  std::string skipped;  // non-empty: why it is not measured
  std::function<Sample(int run, Mode mode)> run;
  std::vector<Sample> samples;
  std::vector<long> rss;  // the RSS pass
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  std::size_t rank = static_cast<std::size_t>(p * static_cast<double>(v.size()) + 0.999999);
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}
double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

const char* verdict(bool ok) {
  return ok ? "PASS" : "MISS";
}

// config.json for crun: `crun spec` edited (see the header comment).
bool make_crun_bundle(const std::string& crun, const fs::path& bundle, const fs::path& image,
                      const std::vector<std::string>& denied) {
  fs::create_directories(bundle);
  std::string cmd = "cd '" + bundle.string() + "' && '" + crun + "' spec >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return false;
  json c = json::parse(read_file(bundle / "config.json"), nullptr, false);
  if (c.is_discarded()) return false;
  c["root"] = {{"path", image.string()}, {"readonly", true}};
  auto& p = c["process"];
  p["terminal"] = false;
  p["args"] = json::array({"/bin/true"});
  p["env"] = json::array({"TERM=dumb"});
  p["user"] = {{"uid", 0}, {"gid", 0}};
  for (const char* set : {"bounding", "effective", "inheritable", "permitted", "ambient"})
    p["capabilities"][set] = json::array();
  p["noNewPrivileges"] = true;
  p["rlimits"] = json::array({json{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}});
  auto& linux_ = c["linux"];
  json namespaces = json::array();
  for (const auto& ns : linux_["namespaces"])
    if (ns.value("type", "") != "network") namespaces.push_back(ns);
  linux_["namespaces"] = namespaces;
  linux_["resources"]["memory"] = {{"limit", 64 * 1024 * 1024}};
  linux_["resources"]["cpu"] = {{"shares", 512}};
  json syscalls = json::array();
  syscalls.push_back(json{{"names", denied}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EPERM}});
  syscalls.push_back(
      json{{"names", json::array({"clone3"})}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", ENOSYS}});
  for (unsigned long flag : {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                             CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET})
    syscalls.push_back(json{
        {"names", json::array({"clone"})},
        {"action", "SCMP_ACT_ERRNO"},
        {"errnoRet", EPERM},
        {"args",
         json::array({json{
             {"index", 0}, {"value", flag}, {"valueTwo", flag}, {"op", "SCMP_CMP_MASKED_EQ"}}})}});
  linux_["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                       {"architectures", json::array({"SCMP_ARCH_X86_64"})},
                       {"syscalls", syscalls}};
  write_file(bundle / "config.json", c.dump(1));
  return true;
}

// Resident KiB of a process by kind of mapping, from its smaps: the
// executable's text (r-x), its read-only data (r--), writable data and heap
// (rw-, file or anonymous), and the stack. The text is what fault-around
// inflates (docs/knot.md, "Memory").
std::string resident_by_kind(const std::string& smaps) {
  long text = 0, readonly = 0, writable = 0, stack = 0;
  long* current = nullptr;
  std::istringstream lines(smaps);
  std::string line;
  while (std::getline(lines, line)) {
    char range[64], perms[8];
    if (std::sscanf(line.c_str(), "%63s %7s", range, perms) == 2 && std::strchr(range, '-') &&
        std::strlen(perms) == 4) {
      if (line.find("[stack]") != std::string::npos)
        current = &stack;
      else if (perms[0] == 'r' && perms[2] == 'x')
        current = &text;
      else if (perms[0] == 'r' && perms[1] == '-')
        current = &readonly;
      else if (perms[1] == 'w')
        current = &writable;
      else
        current = nullptr;
    } else if (current != nullptr && line.rfind("Rss:", 0) == 0) {
      *current += std::strtol(line.c_str() + 4, nullptr, 10);
    }
  }
  char out[160];
  std::snprintf(out, sizeof out,
                "text %ld KiB, read-only data %ld KiB, data+heap %ld KiB, stack %ld KiB", text,
                readonly, writable, stack);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int starts = 200;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keep")
      keep = true;
    else if (std::atoi(a.c_str()) > 0)
      starts = std::atoi(a.c_str());
    else {
      std::fprintf(stderr, "usage: bench_knot_start [STARTS] [--keep]\n");
      return 2;
    }
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_knot_start: needs root (namespaces, cgroups)\n");
    return 1;
  }

  std::string pattern = (fs::temp_directory_path() / "lithos-bench-start-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path root = pattern;
  const fs::path image = root / "images" / "box.v1";
  const std::string bin = own_dir();
  g_paths.err = (root / "stderr").string();
  g_paths.shown = (root / "shown").string();
  g_paths.rss = (root / "rss").string();
  g_paths.trampoline = bin + "/bench_rss_trampoline";
  const std::string cgroup_name = "lithos-bench-" + std::to_string(::getpid()) + ".slice";

  // Image, devfs, tree.
  std::string make_image = std::string(LITHOS_SOURCE_DIR) + "/scripts/make-example-image.sh '" +
                           image.string() + "' >/dev/null";
  std::string mkdev = bin + "/lithos_mkdev '" + (root / "dev").string() + "' 2>/dev/null";
  if (std::system(make_image.c_str()) != 0 || std::system(mkdev.c_str()) != 0) {
    std::fprintf(stderr, "bench_knot_start: cannot build the image or the devfs\n");
    return 1;
  }
  fs::create_symlink("busybox", image / "bin" / "true");
  fs::create_symlink("busybox", image / "bin" / "sleep");
  const std::string limits =
      "user-id: 0\ngroup-id: 0\nmemory-limit: 64Mi\ncpu-shares: 512\nfileno-limit: 1024\n"
      "interactive: true\n";
  write_file(image / "config" / "true.yaml", "kind: Command\nexecutable: /bin/true\n" + limits);
  write_file(image / "config" / "show.yaml",
             "kind: Command\nexecutable: /bin/sh\narguments: [-c, " + json(kShowScript).dump() +
                 "]\n" + limits);
  write_file(image / "config" / "sleep.yaml",
             "kind: Command\nexecutable: /bin/sleep\narguments: [\"1\"]\n" + limits);
  const std::string master = (root / "master.yaml").string();
  write_file(master, "runtime-dir: " + (root / "run").string() +
                         "\n"
                         "devfs-dir: " +
                         (root / "dev").string() +
                         "\n"
                         "default-log-dir: " +
                         (root / "log").string() +
                         "\n"
                         "config-log-dir: " +
                         (root / "log" / "config").string() +
                         "\n"
                         "stdio-log-dir: " +
                         (root / "log" / "stderr").string() +
                         "\n"
                         "cgroup-name: " +
                         cgroup_name + "\n");
  write_file(root / "sandboxes" / "box.yaml", "image-dir: " + (root / "images").string() +
                                                  "\n"
                                                  "allow-users: [0]\n"
                                                  "allow-groups: [0]\n");
  write_file(root / "processes" / "box.yaml",
             "true:\n  kind: Command\n  image: box.v1\n  config: /config/true.yaml\n"
             "show:\n  kind: Command\n  image: box.v1\n  config: /config/show.yaml\n"
             "sleep:\n  kind: Command\n  image: box.v1\n  config: /config/sleep.yaml\n");

  // Our default seccomp filter, compiled once: the program bwrap loads.
  policy::SeccompPlan seccomp;
  seccomp.denied = policy::denied_syscalls(policy::SeccompPolicy{});
  auto program = runtime::compile_seccomp(seccomp);
  if (!program) {
    std::fprintf(stderr, "bench_knot_start: %s\n", program.error().what().c_str());
    return 1;
  }
  const std::string bpf = (root / "seccomp.bpf").string();
  write_file(bpf, std::string(reinterpret_cast<const char*>(program->filter.data()),
                              program->filter.size() * sizeof(sock_filter)));

  // The direct knot: identity and per-run plans (for cleanup) from the tree.
  policy::Diagnostics diags;
  policy::LoadOptions load;
  load.only_sandbox = "box";
  auto tree = policy::load_tree(master, load, diags, nullptr);
  if (diags.has_errors() || tree.sandboxes.empty() || !tree.sandboxes.front().processes) {
    for (const auto& d : diags.items())
      std::fprintf(stderr, "%s:%d: %s\n", d.file.c_str(), d.mark.line, d.message.c_str());
    return 1;
  }
  const auto& processes = tree.sandboxes.front().processes->value;
  auto host = runtime::probe_cgroups();
  auto plan_for = [&](const std::string& child,
                      std::uint64_t pid) -> std::optional<policy::InstancePlan> {
    std::string identity =
        policy::instance_identity(processes.at(child), std::nullopt, policy::ProcessKind::Command);
    auto parsed = policy::parse_instance_identity(identity, diags);
    if (!parsed) return std::nullopt;
    return policy::plan_instance(tree, policy::InstanceRequest{"box", child, 0, pid, *parsed},
                                 diags, nullptr);
  };
  auto first_plan = plan_for("true", 1);
  if (!first_plan || !host) {
    std::fprintf(stderr, "bench_knot_start: cannot plan the direct knot\n");
    return 1;
  }
  fs::create_directories(first_plan->mount_root);
  std::vector<runtime::CgroupPlacement> parent;
  if (auto placed = runtime::place_cgroup(*host, *first_plan->cgroup)) {
    parent = *placed;
    if (auto ok = runtime::prepare_cgroup_parent(parent); !ok) {
      std::fprintf(stderr, "bench_knot_start: %s\n", ok.error().what().c_str());
      return 1;
    }
  }

  std::vector<Tool> tools;

  tools.push_back({"ours", "ours: lithos_cmd -> lithos_knot -> true", "", [&](int, Mode mode) {
                     return run_once({bin + "/lithos_cmd", "--master", master, "box",
                                      mode == Mode::Show ? "show" : "true"},
                                     mode);
                   }});

  // lithos_knot as the tree starts it: its sealed plan at kPlanFd, the argv
  // from KnotInvocation (the knot checks the plan's name and identity).
  auto spawn_knot = [&](const policy::InstancePlan& plan,
                        int stdout_fd) -> std::optional<runtime::Spawned> {
    auto sealed = runtime::seal_plan(policy::encode_plan(plan));
    if (!sealed) {
      write_file(g_paths.err, sealed.error().what() + "\n");
      return std::nullopt;
    }
    policy::KnotInvocation invocation;
    invocation.name = *policy::InstanceName::parse(plan.name);
    invocation.master = master;
    invocation.identity = plan.identity;
    runtime::UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    runtime::UniqueFd errfd(
        ::open(g_paths.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    runtime::SpawnOptions o;
    o.path = bin + "/lithos_knot";
    o.argv = invocation.format(o.path);
    o.env = {"TERM=dumb"};
    o.namespaces = runtime::kKnotNamespaces;
    o.parent_death_signal = SIGKILL;
    o.blocked_signals = runtime::kKnotSignals;
    o.fds = {{null.get(), 0}, {stdout_fd, 1}, {errfd.get(), 2}, {sealed->get(), policy::kPlanFd}};
    auto spawned = runtime::spawn_process(o);
    if (!spawned) {
      write_file(g_paths.err, spawned.error().what() + "\n");
      return std::nullopt;
    }
    return std::move(*spawned);
  };
  // What lithos_cmd does after its knot: state dir and scope cgroup.
  auto clean_knot = [&](const policy::InstancePlan& plan) {
    (void)runtime::remove_tree(plan.state_dir);
    if (auto placed = runtime::place_cgroup(*host, *plan.cgroup))
      (void)runtime::remove_cgroup(*placed, false);
  };

  tools.push_back({"knot", "knot alone (as lithos_tree starts it)", "", [&](int i, Mode mode) {
                     const bool show = mode == Mode::Show;
                     const std::string child = show ? "show" : "true";
                     const std::uint64_t pid = 900000000u + static_cast<std::uint64_t>(i);
                     auto plan = plan_for(child, pid);
                     Sample s;
                     if (!plan) return s;
                     runtime::UniqueFd outfd(show ? ::open(g_paths.shown.c_str(),
                                                           O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                                           0600)
                                                  : ::open("/dev/null", O_WRONLY | O_CLOEXEC));
                     auto start = Clock::now();
                     auto spawned = spawn_knot(*plan, outfd.get());
                     if (!spawned) return s;
                     rusage ru{};
                     while (::wait4(spawned->pid, &s.status, 0, &ru) < 0 && errno == EINTR) {
                     }
                     s.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
                     s.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                                (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
                     s.maxrss_kib = ru.ru_maxrss;
                     clean_knot(*plan);
                     return s;
                   }});

  // The C floor, with a parent cgroup of its own (removed at the end).
  const std::string floor_bin = bin + "/start_floor";
  const std::string floor_cgroup = "lithos-bench-floor-" + std::to_string(::getpid());
  tools.push_back({"floor-c", "floor-c: start_floor (same steps, in C)",
                   ::access(floor_bin.c_str(), X_OK) == 0 ? "" : "bin/start_floor not built",
                   [&](int, Mode mode) {
                     std::vector<std::string> a = {floor_bin, image.string(),
                                                   (root / "dev").string(), floor_cgroup, "--"};
                     if (mode == Mode::Show)
                       a.insert(a.end(), {"/bin/sh", "-c", kShowScript});
                     else
                       a.push_back("/bin/true");
                     return run_once(a, mode);
                   }});

  auto bwrap = find_program("bwrap");
  tools.push_back(
      {"bwrap", "bwrap (bubblewrap)", bwrap ? "" : "not installed", [&](int, Mode mode) {
         std::vector<std::string> a = {*bwrap,
                                       "--unshare-pid",
                                       "--unshare-ipc",
                                       "--unshare-uts",
                                       "--die-with-parent",
                                       "--new-session",
                                       "--ro-bind",
                                       image.string(),
                                       "/",
                                       "--proc",
                                       "/proc",
                                       "--dev",
                                       "/dev",
                                       "--cap-drop",
                                       "ALL",
                                       "--seccomp",
                                       "3"};
         if (mode == Mode::Show) {
           a.insert(a.end(), {"/bin/sh", "-c", kShowScript});
         } else {
           a.push_back("/bin/true");
         }
         return run_once(a, mode, bpf);
       }});

  auto crun = find_program("crun");
  std::string crun_skip = crun ? "" : "not installed";
  const fs::path bundle = root / "crun-bundle", show_bundle = root / "crun-show";
  const std::string crun_root = (root / "crun-state").string();
  if (crun && (!make_crun_bundle(*crun, bundle, image, seccomp.denied) ||
               !make_crun_bundle(*crun, show_bundle, image, seccomp.denied)))
    crun_skip = "crun spec failed";
  if (crun_skip.empty()) {
    json c = json::parse(read_file(show_bundle / "config.json"));
    c["process"]["args"] = json::array({"/bin/sh", "-c", kShowScript});
    write_file(show_bundle / "config.json", c.dump(1));
  }
  const std::string run_tag = std::to_string(::getpid());
  auto crun_once = [&](int i, Mode mode) {
    std::string id = "lithos-bench-" + run_tag + "-" + std::to_string(i);
    const fs::path& b = mode == Mode::Show ? show_bundle : bundle;
    return run_once({*crun, "--root", crun_root, "run", "--bundle", b.string(), id}, mode);
  };
  CrunHelper helper;
  bool via_helper = false;
  if (crun_skip.empty() && hybrid_cgroup2_with_controllers()) {
    if (helper.start(crun_once))
      via_helper = true;
    else
      crun_skip = "cannot start the mount-namespace helper";
  }
  tools.push_back(
      {"crun", via_helper ? "crun (cgroup v1 view, see notes)" : "crun", crun_skip,
       [&](int i, Mode mode) { return via_helper ? helper.run(i, mode) : crun_once(i, mode); }});

  auto unshare = find_program("unshare");
  auto chroot = find_program("chroot");
  tools.push_back({"floor", "floor: unshare + chroot", unshare && chroot ? "" : "not installed",
                   [&](int, Mode mode) {
                     // No /proc in the floor: the check is /bin/true too.
                     return run_once({*unshare, "--mount", "--pid", "--fork", "--ipc", "--uts",
                                      *chroot, image.string(), "/bin/true"},
                                     mode);
                   }});

  // Isolation check: what each tool's process looks like from inside.
  std::printf(
      "isolation as seen by the started process (caps, no_new_privs, seccomp, memory "
      "cgroup):\n");
  for (auto& t : tools) {
    if (!t.skipped.empty()) continue;
    ::truncate(g_paths.shown.c_str(), 0);
    Sample s = t.run(2000000, Mode::Show);
    std::string out = t.key == "floor" ? "(no /proc; no capability drop, no_new_privs, seccomp "
                                         "or cgroup: the floor)"
                                       : read_file(g_paths.shown);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    if (s.status != 0) {
      t.skipped = "failed (" + describe_status(s.status) + "): " + read_file(g_paths.err);
      while (!t.skipped.empty() && t.skipped.back() == '\n') t.skipped.pop_back();
    }
    std::printf("  %-7s %s\n", t.key.c_str(), out.c_str());
  }

  // Warm-up (page cache, dentries), then the measured interleaved rounds.
  for (int w = 0; w < kWarmup; ++w) {
    for (auto& t : tools) {
      if (!t.skipped.empty()) continue;
      Sample s = t.run(1000000 + w, Mode::Time);
      if (s.status != 0) {
        t.skipped = "failed (" + describe_status(s.status) + "): " + read_file(g_paths.err);
        while (!t.skipped.empty() && t.skipped.back() == '\n') t.skipped.pop_back();
      }
    }
  }
  std::vector<Tool*> active;
  for (auto& t : tools)
    if (t.skipped.empty()) active.push_back(&t);
  std::size_t failures = 0;
  for (int r = 0; r < starts; ++r) {
    for (std::size_t k = 0; k < active.size(); ++k) {
      Tool& t = *active[(k + static_cast<std::size_t>(r)) % active.size()];
      Sample s = t.run(r, Mode::Time);
      if (s.status != 0) {
        if (++failures <= 3)
          std::fprintf(stderr, "%s run %d: %s: %s", t.key.c_str(), r,
                       describe_status(s.status).c_str(), read_file(g_paths.err).c_str());
        continue;
      }
      t.samples.push_back(s);
    }
  }
  // Peak RSS, in a pass of its own (the trampoline is not in the timings).
  const int rss_rounds = std::min(starts, 20);
  for (int r = 0; r < rss_rounds; ++r) {
    for (std::size_t k = 0; k < active.size(); ++k) {
      Tool& t = *active[(k + static_cast<std::size_t>(r)) % active.size()];
      Sample s = t.run(3000000 + r, Mode::Rss);
      if (s.status == 0) t.rss.push_back(s.maxrss_kib);
    }
  }

  // The knot's own memory while it supervises: a direct knot runs `sleep 1`;
  // once the child has exec'd, the knot's VmHWM (peak RSS since its exec,
  // so nothing of the bench) and smaps_rollup's Private_Dirty are read.
  std::vector<double> knot_hwm, knot_dirty, knot_rss;
  std::string knot_layout;
  {
    // A just-linked knot's page cache is dirty until written back, and smaps
    // counts those shared text pages as Private_Dirty: write them back first.
    runtime::UniqueFd knot_file(::open((bin + "/lithos_knot").c_str(), O_RDONLY | O_CLOEXEC));
    if (knot_file.get() >= 0) (void)::fsync(knot_file.get());
  }
  for (int r = 0; r < 5; ++r) {
    auto plan = plan_for("sleep", 950000000u + static_cast<std::uint64_t>(r));
    if (!plan) break;
    runtime::UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    auto spawned = spawn_knot(*plan, null.get());
    if (!spawned) break;
    const std::string proc = "/proc/" + std::to_string(spawned->pid);
    auto field = [](const std::string& text, const std::string& key) -> double {
      auto at = text.find("\n" + key + ":");
      if (at == std::string::npos) return -1;
      return std::strtod(text.c_str() + at + key.size() + 2, nullptr);
    };
    bool supervising = false;
    for (int poll = 0; poll < 2000 && !supervising; ++poll) {
      std::string children =
          read_file(proc + "/task/" + std::to_string(spawned->pid) + "/children");
      if (!children.empty() &&
          read_file("/proc/" + std::to_string(std::atoi(children.c_str())) + "/comm") == "sleep\n")
        supervising = true;
      else
        ::usleep(500);
    }
    if (supervising) {
      ::usleep(100000);  // the knot is in its wait loop by now
      std::string status = "\n" + read_file(proc + "/status");
      std::string rollup = "\n" + read_file(proc + "/smaps_rollup");
      knot_hwm.push_back(field(status, "VmHWM"));
      knot_rss.push_back(field(rollup, "Rss"));
      knot_dirty.push_back(field(rollup, "Private_Dirty"));
      knot_layout = resident_by_kind(read_file(proc + "/smaps"));
    }
    int status = 0;
    while (::waitpid(spawned->pid, &status, 0) < 0 && errno == EINTR) {
    }
    clean_knot(*plan);
  }

  // Report.
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf(
      "\n%d starts of /bin/true per tool (%s, %ld cores), interleaved round-robin with the "
      "order rotated each round, after %d warm-up starts each; failed starts: %zu\n",
      starts, date, ::sysconf(_SC_NPROCESSORS_ONLN), kWarmup, failures);
  std::printf("%-42s %8s %8s %8s %9s %13s\n", "tool", "median", "p90", "mean", "cpu med",
              "maxrss med/max");
  std::printf("%-42s %8s %8s %8s %9s %13s\n", "", "ms", "ms", "ms", "ms", "KiB");
  auto times = [](const Tool& t) {
    std::vector<double> v;
    for (const auto& s : t.samples) v.push_back(s.ms);
    return v;
  };
  for (const auto& t : tools) {
    if (!t.skipped.empty()) {
      std::printf("%-42s skipped: %s\n", t.label.c_str(), t.skipped.c_str());
      continue;
    }
    std::vector<double> ms = times(t), cpu, rss;
    for (const auto& s : t.samples) cpu.push_back(s.cpu_ms);
    for (long kib : t.rss) rss.push_back(static_cast<double>(kib));
    std::printf("%-42s %8.2f %8.2f %8.2f %9.2f %6.0f/%-6.0f\n", t.label.c_str(), median(ms),
                percentile(ms, 0.9), mean(ms), median(cpu), median(rss),
                rss.empty() ? 0.0 : *std::max_element(rss.begin(), rss.end()));
  }
  auto find = [&](const std::string& key) -> const Tool* {
    for (const auto& t : tools)
      if (t.key == key && t.skipped.empty() && !t.samples.empty()) return &t;
    return nullptr;
  };
  std::printf("\n");
  const Tool* ours = find("ours");
  if (ours) {
    double m = median(times(*ours));
    for (auto [key, target] : {std::pair<const char*, double>{"bwrap", 0.75}, {"crun", 0.3}}) {
      if (const Tool* peer = find(key)) {
        double ratio = m / median(times(*peer));
        std::printf("ours/%-5s median ratio %.2f (target <= %.2f): %s\n", key, ratio, target,
                    verdict(ratio <= target));
      } else {
        std::printf("ours/%-5s skipped: peer not measured\n", key);
      }
    }
    if (const Tool* floor_c = find("floor-c")) {
      double ratio = m / median(times(*floor_c));
      std::printf("ours/floor-c median ratio %.2f (target <= 1.15): %s\n", ratio,
                  verdict(ratio <= 1.15));
    } else {
      std::printf("ours/floor-c skipped: floor-c not measured\n");
    }
    if (const Tool* floor = find("floor"))
      std::printf("ours/floor median ratio %.2f (no target)\n", m / median(times(*floor)));
    long peak = 0;
    for (long kib : ours->rss) peak = std::max(peak, kib);
    std::printf("ours peak RSS per start %ld KiB = %.2f MiB (target <= 2 MiB): %s\n", peak,
                static_cast<double>(peak) / 1024.0, verdict(peak <= 2048));
  }
  if (!knot_hwm.empty()) {
    double hwm = *std::max_element(knot_hwm.begin(), knot_hwm.end());
    double dirty = *std::max_element(knot_dirty.begin(), knot_dirty.end());
    std::printf("knot peak RSS (VmHWM, max of %zu) %.0f KiB (target <= 1024): %s\n",
                knot_hwm.size(), hwm, verdict(hwm <= 1024));
    std::printf("knot resident while supervising, last of them: %s\n", knot_layout.c_str());
    std::printf(
        "knot while supervising (max of %zu): Rss %.0f KiB, Private_Dirty %.0f KiB "
        "(target <= 150): %s\n",
        knot_dirty.size(), *std::max_element(knot_rss.begin(), knot_rss.end()), dirty,
        verdict(dirty <= 150));
  } else {
    std::printf("knot memory skipped: no direct knot reached its child (%s)\n",
                read_file(g_paths.err).c_str());
  }
  std::printf(
      "maxrss = ru_maxrss of wait4 over %d more starts each, through a small static trampoline: "
      "the largest peak RSS of any one process of the started tree (ours: lithos_cmd, "
      "lithos_knot, true), not a sum; the direct knot is cloned from the bench itself, so its "
      "figure may include pages copied from the bench\n",
      rss_rounds);
  if (via_helper)
    std::printf(
        "note: crun ran in a private mount namespace without /sys/fs/cgroup/unified (crun %s "
        "refuses hybrid hosts whose cgroup2 has controllers); its limits went to cgroup v1\n",
        "1.8");

  if (!parent.empty()) (void)runtime::remove_cgroup(parent, true);
  // start_floor's parent cgroup, in whichever hierarchies it made it.
  ::rmdir(("/sys/fs/cgroup/" + floor_cgroup).c_str());
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
    ::rmdir((h.path() / floor_cgroup).c_str());
  if (keep)
    std::printf("kept %s\n", root.c_str());
  else
    fs::remove_all(root);
  return ours ? 0 : 1;
}
