// lithos_ps: /proc and cgroup parsers from fixture strings, argv recognition,
// grouping and rendering from hand-made process tables, and an integration
// test against real processes that look like a tree with knots.
//
// The fake processes are this very test binary, started through symlinks
// named lithos_tree and lithos_knot (the kernel takes a process's Name from
// the file name it was executed by): a static initialiser notices the name
// and plays the part before GoogleTest's main runs.
// One file over 600 lines on purpose: the parsers, the grouping and the
// rendering are tested on the same fixture tables.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/ps.hpp"

using namespace lithos::runtime;
namespace fs = std::filesystem;

namespace {

// ---- the fake tree and knots ------------------------------------------------

constexpr const char* kIdentity =
    R"({"instances":1,"image":"demo","config":"/config/web.yaml","kind":"Daemon"})";

std::string self_comm() {
  std::ifstream in("/proc/self/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

void die_with_parent() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) ::_exit(0);
}

// LITHOS_PS_FAKE_DIR: directory with the symlinks, the master config and the
// pid files; LITHOS_PS_FAKE_KNOTS: "NAME:HEADS,..."; LITHOS_PS_FAKE_CGROUPS:
// ':'-free list of parent dirs ("A;B") in which a knot joins NAME.scope.
[[noreturn]] void fake_tree() {
  die_with_parent();
  const char* dir = std::getenv("LITHOS_PS_FAKE_DIR");
  const char* knots = std::getenv("LITHOS_PS_FAKE_KNOTS");
  if (!dir || !knots) ::_exit(3);
  std::stringstream list(knots);
  std::string entry;
  while (std::getline(list, entry, ',')) {
    auto colon = entry.rfind(':');
    std::string name = entry.substr(0, colon);
    std::string heads = entry.substr(colon + 1);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("LITHOS_PS_FAKE_HEADS", heads.c_str(), 1);
      std::string knot = std::string(dir) + "/lithos_knot";
      std::string master = std::string(dir) + "/master.yaml";
      // Options in a different order than the tree writes them, plus
      // --log-stderr: recognised by name (the original counted arguments).
      const char* argv[] = {"lithos_knot",  "--master", master.c_str(), "--name", name.c_str(),
                            "--log-stderr", "--config", kIdentity,      nullptr};
      ::execv(knot.c_str(), const_cast<char* const*>(argv));
      ::_exit(127);
    }
  }
  for (;;) ::pause();
}

[[noreturn]] void fake_knot() {
  die_with_parent();
  const char* dir = std::getenv("LITHOS_PS_FAKE_DIR");
  const char* heads = std::getenv("LITHOS_PS_FAKE_HEADS");
  if (!dir || !heads) ::_exit(3);
  std::string name;
  {
    std::ifstream in("/proc/self/cmdline");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto argv = procfs::parse_cmdline(all);
    for (std::size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == "--name") name = argv[i + 1];
  }
  std::string scope = name;
  for (auto& c : scope)
    if (c == '/') c = ':';
  scope += ".scope";
  if (const char* cgroups = std::getenv("LITHOS_PS_FAKE_CGROUPS")) {
    std::stringstream parents(cgroups);
    std::string parent;
    while (std::getline(parents, parent, ';')) {
      std::string procs = parent + "/" + scope + "/cgroup.procs";
      if (::access(procs.c_str(), F_OK) == 0) std::ofstream(procs) << ::getpid() << "\n";
    }
  }
  std::string line = std::to_string(::getpid());
  for (int i = 0; i < std::atoi(heads); ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      die_with_parent();
      ::execl("/bin/sleep", "sleep", "300", nullptr);
      ::_exit(127);
    }
    line += " " + std::to_string(pid);
  }
  std::string file = std::string(dir) + "/pids/" + scope;
  std::ofstream(file + ".tmp") << line << "\n";
  ::rename((file + ".tmp").c_str(), file.c_str());
  for (;;) ::pause();
}

[[maybe_unused]] const bool kFakeRole = [] {
  std::string comm = self_comm();
  if (comm == "lithos_tree") fake_tree();
  if (comm == "lithos_knot") fake_knot();
  return false;
}();

// ---- helpers --------------------------------------------------------------------

struct Run {
  int status = -1;
  std::string out;
};

Run run(const std::string& command) {
  Run result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ps_binary() {
  return std::string(LITHOS_BIN_DIR) + "/lithos_ps";
}

procfs::ProcessInfo proc(pid_t pid, pid_t ppid, std::string name,
                         std::vector<std::string> argv = {}, std::uint64_t rss = 0) {
  procfs::ProcessInfo p;
  p.pid = pid;
  p.ppid = ppid;
  p.name = std::move(name);
  p.argv = std::move(argv);
  p.threads = 1;
  p.mem_rss = rss;
  p.utime = 10;
  p.stime = 5;
  return p;
}

std::vector<std::string> knot_argv(const std::string& name) {
  return {"/usr/bin/lithos_knot",    "--name",   name,     "--master",
          "/etc/lithos/master.yaml", "--config", kIdentity};
}

// ---- /proc/PID/stat ----------------------------------------------------------------

TEST(Procfs, StatWithSpacesAndParenthesesInComm) {
  std::string text =
      "4242 (a) (b c) S 17 4242 4242 0 -1 4194560 1 0 0 0 123 45 6 7 20 0 3 0 98765 1000 250 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto stat = procfs::parse_stat(text);
  ASSERT_TRUE(stat) << stat.error().what();
  EXPECT_EQ(stat->pid, 4242);
  EXPECT_EQ(stat->comm, "a) (b c");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 17);
  EXPECT_EQ(stat->utime, 123u);
  EXPECT_EQ(stat->stime, 45u);
  EXPECT_EQ(stat->cutime, 6u);
  EXPECT_EQ(stat->cstime, 7u);
  EXPECT_EQ(stat->num_threads, 3u);
  EXPECT_EQ(stat->starttime, 98765u);
  EXPECT_EQ(stat->vsize, 1000u);
  EXPECT_EQ(stat->rss_pages, 250u);
}

TEST(Procfs, StatRejectsGarbage) {
  EXPECT_FALSE(procfs::parse_stat(""));
  EXPECT_FALSE(procfs::parse_stat("12 no parens S 1"));
  EXPECT_FALSE(procfs::parse_stat("12 (x) S 1 2 3"));  // truncated
  EXPECT_FALSE(procfs::parse_stat("x (x) S 1 0 0 0 -1 0 0 0 0 0 1 1 1 1 20 0 1 0 1 1 1 1"));
  EXPECT_FALSE(procfs::parse_stat("12 (x) S 1 0 0 0 -1 0 0 0 0 0 a 1 1 1 20 0 1 0 1 1 1 1"));
}

TEST(Procfs, StatOfThisProcess) {
  auto text = procfs::read_file("/proc/self/stat");
  ASSERT_TRUE(text);
  auto stat = procfs::parse_stat(*text);
  ASSERT_TRUE(stat) << stat.error().what();
  EXPECT_EQ(stat->pid, ::getpid());
  EXPECT_EQ(stat->ppid, ::getppid());
  EXPECT_GE(stat->num_threads, 1u);
}

TEST(Procfs, StatFormatRoundTrip) {
  procfs::ProcStat s;
  s.pid = 7;
  s.comm = "x) y (";
  s.state = 'R';
  s.ppid = 1;
  s.utime = 1;
  s.stime = 2;
  s.cutime = 3;
  s.cstime = 4;
  s.num_threads = 5;
  s.starttime = 6;
  s.vsize = 7;
  s.rss_pages = 8;
  auto back = procfs::parse_stat(procfs::format_stat(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
}

// ---- status, cmdline, statm, /proc/stat ------------------------------------------

TEST(Procfs, Status) {
  auto status = procfs::parse_status(
      "Name:\t  odd\\nname\\\\x\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t10\nPPid:\t3\n"
      "VmPeak:\t    9000 kB\nVmRSS:\t    1500 kB\nVmSwap:\t      12 kB\nThreads:\t4\n");
  ASSERT_TRUE(status) << status.error().what();
  EXPECT_EQ(status->name, "  odd\nname\\x");
  EXPECT_EQ(status->ppid, 3);
  EXPECT_EQ(status->threads, 4u);
  EXPECT_EQ(status->vm_rss, 1500u * 1024);
  EXPECT_EQ(status->vm_swap, 12u * 1024);
}

TEST(Procfs, StatusOfKernelThreadHasNoMemory) {
  auto status =
      procfs::parse_status("Name:\tkthreadd\nState:\tS (sleeping)\nPPid:\t0\nThreads:\t1\n");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->vm_rss, 0u);
  EXPECT_EQ(status->vm_swap, 0u);
  EXPECT_FALSE(procfs::parse_status("PPid:\t1\n"));
  EXPECT_FALSE(procfs::parse_status("Name:\tx\nVmRSS:\tlots kB\n"));
}

TEST(Procfs, CmdlineStatmBoottime) {
  using namespace std::string_literals;
  EXPECT_EQ(procfs::parse_cmdline("a\0--name\0x y\0"s),
            (std::vector<std::string>{"a", "--name", "x y"}));
  EXPECT_EQ(procfs::parse_cmdline("a\0b"s), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(procfs::parse_cmdline("").empty());
  auto resident = procfs::parse_statm_resident("2000 350 100 5 0 200 0\n");
  ASSERT_TRUE(resident);
  EXPECT_EQ(*resident, 350u);
  EXPECT_FALSE(procfs::parse_statm_resident("2000"));
  auto boot =
      procfs::parse_boot_time("cpu  1 2 3\nintr 5\nctxt 99\nbtime 1795963781\nprocesses 1\n");
  ASSERT_TRUE(boot);
  EXPECT_EQ(*boot, 1795963781u);
  EXPECT_FALSE(procfs::parse_boot_time("cpu 1 2\n"));
}

// ---- argv -------------------------------------------------------------------------

TEST(Procfs, TreeArgv) {
  auto plain = procfs::parse_tree_argv({"/usr/bin/lithos_tree"});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->config, "/etc/lithos/master.yaml");
  for (std::vector<std::string> argv :
       {std::vector<std::string>{"lithos_tree", "-C", "/x.yaml"},
        {"lithos_tree", "-C/x.yaml", "--log-stderr"},
        {"lithos_tree", "--log-level", "debug", "--config=/x.yaml"},
        {"lithos_tree", "--config", "/x.yaml", "--log-level=WARN", "--"}}) {
    auto args = procfs::parse_tree_argv(argv);
    ASSERT_TRUE(args) << argv.back();
    EXPECT_EQ(args->config, "/x.yaml");
  }
  EXPECT_FALSE(procfs::parse_tree_argv({}));
  EXPECT_FALSE(procfs::parse_tree_argv({"lithos_tree", "--config"}));
  EXPECT_FALSE(procfs::parse_tree_argv({"lithos_tree", "positional"}));
  EXPECT_FALSE(procfs::parse_tree_argv({"lithos_tree", "--bogus"}));
  EXPECT_FALSE(procfs::parse_tree_argv({"lithos_tree", "--log-level", "loud"}));
}

TEST(Procfs, KnotArgvByOptionName) {
  auto tree_form = procfs::parse_knot_argv(knot_argv("demo/web.0"));
  ASSERT_TRUE(tree_form);
  EXPECT_EQ(tree_form->name.format(), "demo/web.0");
  EXPECT_EQ(tree_form->master, "/etc/lithos/master.yaml");
  // Any order, extra flags, --opt=value, positionals after "--".
  auto shuffled = procfs::parse_knot_argv({"lithos_knot", "--config", kIdentity, "--log-stderr",
                                           "--log-level=INFO", "--name=db/main.3", "--master",
                                           "/m.yaml", "--", "a", "--b"});
  ASSERT_TRUE(shuffled);
  EXPECT_EQ(shuffled->name.format(), "db/main.3");
  EXPECT_EQ(shuffled->master, "/m.yaml");
  EXPECT_TRUE(shuffled->log_stderr);
  EXPECT_EQ(shuffled->log_level, "INFO");
  EXPECT_EQ(shuffled->extra, (std::vector<std::string>{"a", "--b"}));
  EXPECT_FALSE(procfs::parse_knot_argv({"lithos_knot", "--name", "demo/web.0"}));  // no --config
  EXPECT_FALSE(procfs::parse_knot_argv({"lithos_knot", "--name", "x/y.0", "--config", "{oops"}));
  EXPECT_FALSE(procfs::parse_knot_argv({"lithos_knot", "--name", "x/y.0", "--config", "{}"}));
  EXPECT_FALSE(
      procfs::parse_knot_argv({"lithos_knot", "--name", "x/y.0", "--what", "--config", kIdentity}));
  EXPECT_FALSE(procfs::parse_knot_argv({"lithos_knot", "--config"}));
}

TEST(Procfs, InstanceNames) {
  using N = lithos::policy::InstanceName;
  EXPECT_EQ(N::parse("demo/web.3"), (N{"demo", "web", false, 3}));
  EXPECT_EQ(N::parse("demo/cmd.sh.4321"), (N{"demo", "sh", true, 4321}));
  EXPECT_EQ(N::parse("demo/cmd.7"), (N{"demo", "cmd", false, 7}));  // a process named "cmd"
  // Names follow valid_name: a '.' in a process name cannot be told from the index.
  EXPECT_FALSE(N::parse("demo/a.b.12"));
  EXPECT_FALSE(N::parse("demo/web"));
  EXPECT_FALSE(N::parse("demo/web.x"));
  EXPECT_FALSE(N::parse("demo/web.-1"));
  EXPECT_FALSE(N::parse("demo/web.01"));
  EXPECT_FALSE(N::parse("demo/web.9223372036854775808"));
  EXPECT_FALSE(N::parse("de mo/web.1"));
  EXPECT_FALSE(N::parse("lonely"));
  EXPECT_FALSE(N::parse(""));
  EXPECT_FALSE(N::parse("/web.1"));
  EXPECT_FALSE(N::parse("demo/.1"));
}

// ---- cgroups ------------------------------------------------------------------------

// A hybrid host like the CI machine: v1 controllers plus cgroup2 at unified.
constexpr const char* kHybridMountinfo =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(Procfs, CgroupFilesHybrid) {
  auto mounts = parse_mountinfo(kHybridMountinfo);
  ASSERT_TRUE(mounts);
  auto lines = parse_proc_cgroup(
      "4:memory:/lithos.slice/demo:web.0.scope\n"
      "2:cpu,cpuacct:/lithos.slice/demo:web.0.scope\n"
      "1:name=systemd:/lithos.slice/demo:web.0.scope\n"
      "0::/system.slice/lithos.service\n");
  ASSERT_TRUE(lines);
  auto files = procfs::instance_cgroup_files(*mounts, *lines, "demo/web.0");
  EXPECT_EQ(files.cpuacct_usage,
            "/sys/fs/cgroup/cpu,cpuacct/lithos.slice/demo:web.0.scope/cpuacct.usage");
  EXPECT_EQ(files.memory_usage_in_bytes,
            "/sys/fs/cgroup/memory/lithos.slice/demo:web.0.scope/memory.usage_in_bytes");
  EXPECT_FALSE(files.cpu_stat);  // the unified path is the tree's, not the instance's
  EXPECT_FALSE(files.memory_current);
  // Another instance's scope: nothing.
  EXPECT_FALSE(procfs::instance_cgroup_files(*mounts, *lines, "demo/web.1").any());
}

TEST(Procfs, CgroupFilesV2AndBindMountedRoot) {
  auto mounts = parse_mountinfo(
      "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
      "50 1 0:22 /lithos.slice /mnt/lithos rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(mounts);
  auto lines = parse_proc_cgroup("0::/lithos.slice/db:main.2.scope\n");
  ASSERT_TRUE(lines);
  auto files = procfs::instance_cgroup_files(*mounts, *lines, "db/main.2");
  EXPECT_EQ(files.cpu_stat, "/sys/fs/cgroup/lithos.slice/db:main.2.scope/cpu.stat");
  EXPECT_EQ(files.memory_current, "/sys/fs/cgroup/lithos.slice/db:main.2.scope/memory.current");
  EXPECT_FALSE(files.cpuacct_usage);
  // Only the bind mount of a subtree: the path is taken through it.
  auto only_bind = parse_mountinfo("50 1 0:22 /lithos.slice /mnt/lithos rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(only_bind);
  EXPECT_EQ(procfs::instance_cgroup_files(*only_bind, *lines, "db/main.2").cpu_stat,
            "/mnt/lithos/db:main.2.scope/cpu.stat");
}

TEST(Procfs, CgroupValues) {
  auto v = procfs::parse_single_value("123456789\n");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 123456789u);
  EXPECT_FALSE(procfs::parse_single_value("max\n"));
  EXPECT_FALSE(procfs::parse_single_value(""));
  auto usage = procfs::parse_cpu_stat_usage_usec(
      "usage_usec 9876\nuser_usec 5000\nsystem_usec 4876\nnr_periods 0\n");
  ASSERT_TRUE(usage);
  EXPECT_EQ(*usage, 9876u);
  EXPECT_FALSE(procfs::parse_cpu_stat_usage_usec("user_usec 1\n"));
}

TEST(Procfs, CgroupUsageFromFiles) {
  auto dir = fs::temp_directory_path() / ("lithos-ps-cg-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "cpuacct.usage") << "2500000\n";
  std::ofstream(dir / "cpu.stat") << "usage_usec 7\n";
  std::ofstream(dir / "memory.current") << "4096\n";
  procfs::CgroupFiles files;
  files.cpuacct_usage = (dir / "cpuacct.usage").string();
  files.cpu_stat = (dir / "cpu.stat").string();
  files.memory_usage_in_bytes = (dir / "missing").string();
  files.memory_current = (dir / "memory.current").string();
  auto usage = procfs::read_cgroup_usage(files);
  EXPECT_EQ(usage.cpu_usec, 2500u);  // v1 first, ns → µs
  EXPECT_EQ(usage.cpu_file, *files.cpuacct_usage);
  EXPECT_EQ(usage.memory_bytes, 4096u);  // v1 unreadable → v2
  EXPECT_EQ(usage.memory_file, *files.memory_current);
  fs::remove_all(dir);
}

// ---- Prometheus text -------------------------------------------------------------------

TEST(Procfs, PrometheusText) {
  auto samples = procfs::parse_prometheus_text(
      "# HELP lithos_process_deaths_total deaths\n"
      "# TYPE lithos_process_deaths_total counter\n"
      "lithos_process_deaths_total{sandbox=\"demo\",process=\"web\"} 4\n"
      "lithos_master_restarts_total 2 1700000000000\n"
      "odd{label=\"a\\\"b\\\\c\"} 1.5e1\n"
      "broken{label=\"x} 3\n"
      "nonumber{a=\"b\"} x\n"
      "\n");
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].name, "lithos_process_deaths_total");
  EXPECT_EQ(samples[0].labels.at("sandbox"), "demo");
  EXPECT_EQ(samples[0].labels.at("process"), "web");
  EXPECT_EQ(samples[0].value, 4);
  EXPECT_EQ(samples[1].value, 2);
  EXPECT_EQ(samples[2].labels.at("label"), "a\"b\\c");
  EXPECT_EQ(samples[2].value, 15);
}

// ---- grouping ---------------------------------------------------------------------------

TEST(Ps, GroupsTreesSandboxesProcessesInstances) {
  procfs::ProcessTable table = {
      proc(1, 0, "systemd", {"/sbin/init"}),
      proc(100, 1, "lithos_tree", {"/usr/bin/lithos_tree", "-C", "/etc/m.yaml"}, 4096),
      proc(101, 100, "lithos_knot", knot_argv("demo/web.1"), 1000),
      proc(102, 100, "lithos_knot", knot_argv("demo/web.0"), 1000),
      proc(103, 100, "lithos_knot", knot_argv("demo/worker.0")),
      proc(104, 100, "lithos_knot", knot_argv("alpha/db.0")),
      proc(105, 100, "lithos_knot", {"lithos_knot", "--name", "demo/x.0"}),  // no --config
      proc(106, 100, "sh", {"/bin/sh"}),                                     // not a knot
      proc(201, 101, "python3", {"python3"}, 2048),
      proc(202, 102, "python3", {"python3"}, 4096),
      proc(203, 202, "worker", {"worker"}, 1024),
      proc(204, 104, "postgres", {"postgres"}),
      proc(205, 104, "postgres", {"postgres"}),
      proc(300, 1, "lithos_knot", knot_argv("orphan/x.0")),     // not below a tree
      proc(400, 1, "lithos_tree", {"lithos_tree", "--bogus"}),  // argv does not parse
  };
  auto trees = ps::group(table);
  ASSERT_EQ(trees.size(), 1u);
  const auto& tree = trees[0];
  EXPECT_EQ(tree.pid, 100);
  EXPECT_EQ(tree.config, "/etc/m.yaml");
  ASSERT_EQ(tree.sandboxes.size(), 2u);
  EXPECT_EQ(tree.sandboxes[0].name, "alpha");
  EXPECT_EQ(tree.sandboxes[1].name, "demo");
  const auto& demo = tree.sandboxes[1];
  ASSERT_EQ(demo.children.size(), 2u);
  EXPECT_EQ(demo.children[0].name, "web");
  EXPECT_EQ(demo.children[1].name, "worker");
  const auto& web = demo.children[0];
  ASSERT_EQ(web.instances.size(), 2u);
  EXPECT_EQ(web.instances[0].name, "demo/web.0");
  EXPECT_EQ(web.instances[0].knot_pid, 102);
  ASSERT_EQ(web.instances[0].heads.size(), 1u);
  EXPECT_EQ(web.instances[0].heads[0].process.pid, 202);
  // The head's totals include its descendants; the knot is not counted.
  EXPECT_EQ(web.instances[0].totals.processes, 2u);
  EXPECT_EQ(web.instances[0].totals.mem_rss, 4096u + 1024u);
  EXPECT_EQ(web.instances[0].totals.cpu_ticks(), 30u);
  EXPECT_TRUE(web.instances[0].ok());
  EXPECT_EQ(web.instances[1].knot_pid, 101);
  EXPECT_EQ(web.totals.processes, 3u);
  EXPECT_FALSE(demo.children[1].instances[0].ok());  // worker: no head
  EXPECT_TRUE(demo.children[1].instances[0].heads.empty());
  const auto& db = tree.sandboxes[0].children[0].instances[0];
  EXPECT_EQ(db.heads.size(), 2u);
  EXPECT_FALSE(db.ok());
  EXPECT_EQ(tree.totals.processes, 5u);
  EXPECT_EQ(tree.totals.mem_rss, 2048u + 4096u + 1024u);
}

TEST(Ps, EmptyTableAndTreeWithoutKnots) {
  EXPECT_TRUE(ps::group({}).empty());
  auto trees = ps::group({proc(9, 1, "lithos_tree", {"lithos_tree"})});
  ASSERT_EQ(trees.size(), 1u);
  EXPECT_EQ(trees[0].config, "/etc/lithos/master.yaml");
  EXPECT_TRUE(trees[0].sandboxes.empty());
}

TEST(Ps, PidCycleDoesNotHang) {
  // An inconsistent snapshot (pid reuse during the scan) may contain a cycle.
  procfs::ProcessTable table = {
      proc(10, 1, "lithos_tree", {"lithos_tree"}),
      proc(11, 10, "lithos_knot", knot_argv("a/b.0")),
      proc(12, 13, "x"),
      proc(13, 12, "y"),
  };
  table[2].ppid = 11;
  table.push_back(proc(14, 12, "z"));
  table.push_back(proc(12, 14, "dup"));  // same pid twice
  auto trees = ps::group(table);
  ASSERT_EQ(trees.size(), 1u);
  EXPECT_LE(trees[0].totals.processes, table.size());
}

TEST(Ps, RestartsFromMetrics) {
  auto trees = ps::group({proc(10, 1, "lithos_tree", {"lithos_tree"}),
                          proc(11, 10, "lithos_knot", knot_argv("demo/web.0")),
                          proc(12, 10, "lithos_knot", knot_argv("demo/db.0"))});
  ASSERT_EQ(trees.size(), 1u);
  ps::apply_restarts(trees[0],
                     procfs::parse_prometheus_text(
                         "lithos_process_deaths_total{sandbox=\"demo\",process=\"web\"} 4\n"
                         "lithos_process_deaths_total{sandbox=\"other\",process=\"db\"} 9\n"
                         "lithos_process_started_total{sandbox=\"demo\",process=\"db\"} 1\n"));
  const auto& children = trees[0].sandboxes[0].children;
  EXPECT_EQ(children[0].name, "db");
  EXPECT_FALSE(children[0].restarts);
  EXPECT_EQ(children[1].restarts, 4u);
}

// ---- rendering ------------------------------------------------------------------------------

TEST(Ps, Formats) {
  EXPECT_EQ(ps::format_memory(0), "0B");
  EXPECT_EQ(ps::format_memory(1023), "1023B");
  EXPECT_EQ(ps::format_memory(1536), "1.5kiB");
  EXPECT_EQ(ps::format_memory(10 * 1048576), "10.0MiB");
  EXPECT_EQ(ps::format_memory(3ULL << 30), "3.0GiB");
  EXPECT_EQ(ps::format_uptime(5), "5s");
  EXPECT_EQ(ps::format_uptime(125), "2m5s");
  EXPECT_EQ(ps::format_uptime(3723), "1h2m3s");
  EXPECT_EQ(ps::format_uptime(86400 + 7200 + 180), "1d2h3m");
  EXPECT_EQ(ps::format_uptime(5 * 86400), "5days");
  EXPECT_EQ(ps::format_cpu_seconds(0.25), "0.25s");
  EXPECT_EQ(ps::format_cpu_seconds(12.34), "12.3s");
  EXPECT_EQ(ps::format_cpu_seconds(184), "3m4s");
  EXPECT_EQ(ps::format_cpu_seconds(3720), "1h2m");
}

procfs::ProcessTable sample_table() {
  auto head = proc(202, 102, "python3", {"python3"}, 4096);
  head.starttime = 100 * 50;  // 50 s after boot
  return {proc(100, 1, "lithos_tree", {"lithos_tree", "-C", "/etc/m.yaml"}),
          proc(101, 100, "lithos_knot", knot_argv("demo/worker.0")),
          proc(102, 100, "lithos_knot", knot_argv("demo/web.0")),
          proc(103, 100, "lithos_knot", knot_argv("db/main.1")),
          proc(104, 100, "lithos_knot", knot_argv("db/main.2")),
          head,
          proc(203, 103, "pg", {"pg"}, 2048),
          proc(204, 103, "pg", {"pg"}, 2048)};
}

TEST(Ps, TextTree) {
  auto trees = ps::group(sample_table());
  trees[0].sandboxes[1].children[0].restarts = 2;
  trees[0].sandboxes[1].children[0].instances[0].cgroup.memory_bytes = 8192;
  trees[0].sandboxes[1].children[0].instances[0].cgroup.cpu_usec = 1500000;
  ps::Clock clock{1000 + 50 + 3723, 1000, 100};
  EXPECT_EQ(
      ps::render_text(trees, clock, false),
      "100 tree /etc/m.yaml [3/3] 8.0kiB cpu 0.45s\n"
      "  ├─db [2/2] 4.0kiB\n"
      "  │   └─main [2/2] 4.0kiB cpu 0.30s restarts -\n"
      "  │       ├─(103) main.1 2 [2/2] 4.0kiB cpu 0.30s\n"
      "  │       └─(104) main.2 failing\n"
      "  └─demo [1/1] 4.0kiB\n"
      "      ├─202 web.0 1h2m3s [1/1] 4.0kiB cpu 0.15s cgroup 8.0kiB/1.50s restarts 2 knot 102\n"
      "      └─(101) worker.0 failing restarts -\n");
  std::string colored = ps::render_text(trees, clock, true);
  EXPECT_NE(colored.find("\x1b[32m202\x1b[0m"), std::string::npos);
  EXPECT_NE(colored.find("\x1b[31m\x1b[1mfailing\x1b[0m\x1b[22m"), std::string::npos);
  // A fresh process: uptime in red.
  clock.now = 1000 + 50 + 10;
  EXPECT_NE(ps::render_text(trees, clock, true).find("\x1b[31m\x1b[1m10s\x1b[0m\x1b[22m"),
            std::string::npos);
}

TEST(Ps, JsonShape) {
  auto trees = ps::group(sample_table());
  ps::Clock clock{5000, 1000, 100};
  std::string text = ps::render_json(trees, clock);
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text.back(), '\n');
  auto doc = nlohmann::json::parse(text);
  ASSERT_EQ(doc["trees"].size(), 1u);
  const auto& tree = doc["trees"][0];
  EXPECT_EQ(tree["pid"], 100);
  EXPECT_EQ(tree["config"], "/etc/m.yaml");
  ASSERT_EQ(tree["children"].size(), 4u);
  const auto& web = tree["children"][2];
  EXPECT_EQ(web["name"], "demo/web.0");
  EXPECT_EQ(web["ok"], true);
  EXPECT_EQ(web["pid"], 102);
  EXPECT_TRUE(web["restarts"].is_null());
  EXPECT_TRUE(web["cgroup"].is_null());
  ASSERT_EQ(web["processes"].size(), 1u);
  const auto& head = web["processes"][0];
  EXPECT_EQ(head["pid"], 202);
  EXPECT_EQ(head["start_time"], 1050);
  EXPECT_EQ(head["mem_rss"], 4096);
  EXPECT_EQ(head["user_time"], 10);
  EXPECT_EQ(head["system_time"], 5);
  EXPECT_EQ(head["processes"], 1);
  EXPECT_EQ(tree["children"][0]["name"], "db/main.1");
  EXPECT_EQ(tree["children"][0]["ok"], false);
  // Keys sorted at every level (nlohmann's object is ordered by key).
  EXPECT_LT(text.find("\"children\""), text.find("\"config\""));
}

TEST(Ps, JsonNeverThrowsOnBadUtf8) {
  auto trees = ps::group({proc(10, 1, "lithos_tree", {"lithos_tree", "-C", "/etc/\xff\xfe.yaml"})});
  std::string text;
  EXPECT_NO_THROW(text = ps::render_json(trees, {}));
  EXPECT_TRUE(nlohmann::json::accept(text));
}

TEST(Ps, MonitorTable) {
  auto before = ps::group(sample_table());
  auto table = sample_table();
  table[5].utime += 50;  // web's head: 50 ticks in 1 s at 100 ticks/s = 50 %
  auto after = ps::group(table);
  std::string out = ps::render_monitor(before, after, 1.0, 100);
  std::istringstream lines(out);
  std::string header, first;
  std::getline(lines, header);
  EXPECT_EQ(header.rfind("PID ", 0), 0u);
  EXPECT_NE(header.find(" NAME "), std::string::npos);
  EXPECT_NE(header.find("MEM "), std::string::npos);
  EXPECT_NE(out.find("202 demo/web.0     50.0 "), std::string::npos) << out;
  EXPECT_NE(out.find(" 4096.0B \n"), std::string::npos) << out;  // max 4096 → bytes column
  EXPECT_NE(out.find("    0.0B \n"), std::string::npos) << out;
  // Rows sorted by name.
  EXPECT_LT(out.find("db/main.1"), out.find("demo/web.0"));
}

// ---- integration: real processes
// -----------------------------------------------------------------

std::string self_exe() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

struct Fleet {
  fs::path dir;
  pid_t tree = -1;
  std::map<std::string, std::vector<pid_t>> pids;  // scope name → knot pid, head pids
  std::vector<std::string> cgroup_dirs;            // created by the test

  ~Fleet() {
    // Only our own processes, by pid: heads and knots are zombies or alive
    // while their parents do not reap them, so the pids are still theirs.
    // pidfds first: a cgroup directory can go once its processes have
    // exited, which a pidfd reports (for a non-child too).
    std::vector<lithos::runtime::UniqueFd> exits;
    auto end = [&](pid_t pid) {
      exits.emplace_back(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
      ::kill(pid, SIGKILL);
    };
    for (auto& [name, list] : pids)
      for (std::size_t i = list.size(); i-- > 1;) end(list[i]);
    for (auto& [name, list] : pids)
      if (!list.empty()) end(list[0]);
    if (tree > 0) {
      ::kill(tree, SIGKILL);
      int status = 0;
      ::waitpid(tree, &status, 0);
    }
    for (const auto& exit : exits) {
      pollfd p{exit.get(), POLLIN, 0};
      if (exit) ::poll(&p, 1, 2000);
    }
    for (auto it = cgroup_dirs.rbegin(); it != cgroup_dirs.rend(); ++it) ::rmdir(it->c_str());
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

bool start_fleet(Fleet& fleet, const std::string& knots, std::size_t count,
                 const std::string& cgroup_parents = {}) {
  fleet.dir = fs::temp_directory_path() /
              ("lithos-ps-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  fs::create_directories(fleet.dir / "pids");
  fs::create_directories(fleet.dir / "metrics");
  lithos::runtime::UniqueFd pid_files(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!pid_files || ::inotify_add_watch(pid_files.get(), (fleet.dir / "pids").c_str(),
                                        IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
    return false;
  std::string exe = self_exe();
  if (exe.empty()) return false;
  fs::create_symlink(exe, fleet.dir / "lithos_tree");
  fs::create_symlink(exe, fleet.dir / "lithos_knot");
  std::ofstream(fleet.dir / "master.yaml")
      << "metrics-dir: " << (fleet.dir / "metrics").string() << "\n";
  std::ofstream(fleet.dir / "metrics" / "lithos_tree.prom")
      << "# TYPE lithos_process_deaths_total counter\n"
      << "lithos_process_deaths_total{sandbox=\"demo\",process=\"web\"} 4\n";
  std::string tree_path = (fleet.dir / "lithos_tree").string();
  std::string master = (fleet.dir / "master.yaml").string();
  std::string dir = fleet.dir.string();
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::setenv("LITHOS_PS_FAKE_DIR", dir.c_str(), 1);
    ::setenv("LITHOS_PS_FAKE_KNOTS", knots.c_str(), 1);
    if (!cgroup_parents.empty()) ::setenv("LITHOS_PS_FAKE_CGROUPS", cgroup_parents.c_str(), 1);
    const char* argv[] = {"lithos_tree", "--config", master.c_str(), nullptr};
    ::execv(tree_path.c_str(), const_cast<char* const*>(argv));
    ::_exit(127);
  }
  fleet.tree = pid;
  // The fake tree writes each scope's pid file under a temporary name and
  // renames it into place: IN_MOVED_TO says when one is complete.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    std::size_t found = 0;
    for (const auto& entry : fs::directory_iterator(fleet.dir / "pids"))
      if (entry.path().extension() == ".scope") ++found;
    if (found == count) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{pid_files.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    alignas(inotify_event) char events[4096];
    while (::read(pid_files.get(), events, sizeof events) > 0) {
    }
  }
  for (const auto& entry : fs::directory_iterator(fleet.dir / "pids")) {
    if (entry.path().extension() != ".scope") continue;
    std::ifstream in(entry.path());
    pid_t p;
    auto& list = fleet.pids[entry.path().filename().string()];
    while (in >> p) list.push_back(p);
  }
  return fleet.pids.size() == count;
}

const nlohmann::json* find_tree(const nlohmann::json& doc, pid_t pid) {
  for (const auto& tree : doc["trees"])
    if (tree["pid"] == pid) return &tree;
  return nullptr;
}

TEST(PsIntegration, ListsFakeTreeKnotsAndHeads) {
  Fleet fleet;
  ASSERT_TRUE(start_fleet(fleet, "demo/web.0:1,demo/web.1:1,demo/worker.0:0,db/main.0:2", 4));
  const auto& web0 = fleet.pids.at("demo:web.0.scope");
  const auto& web1 = fleet.pids.at("demo:web.1.scope");
  const auto& worker = fleet.pids.at("demo:worker.0.scope");
  const auto& db = fleet.pids.at("db:main.0.scope");
  ASSERT_EQ(web0.size(), 2u);
  ASSERT_EQ(db.size(), 3u);

  auto json_run = run(ps_binary() + " --json");
  ASSERT_EQ(json_run.status, 0);
  EXPECT_NE(json_run.out.back(), '\n');
  auto doc = nlohmann::json::parse(json_run.out);
  const auto* tree = find_tree(doc, fleet.tree);
  ASSERT_NE(tree, nullptr) << json_run.out;
  EXPECT_EQ((*tree)["config"], (fleet.dir / "master.yaml").string());
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& child : (*tree)["children"]) by_name[child["name"]] = child;
  ASSERT_EQ(by_name.size(), 4u) << json_run.out;
  EXPECT_EQ(by_name["demo/web.0"]["pid"], web0[0]);
  EXPECT_EQ(by_name["demo/web.0"]["ok"], true);
  EXPECT_EQ(by_name["demo/web.0"]["processes"][0]["pid"], web0[1]);
  EXPECT_EQ(by_name["demo/web.0"]["restarts"], 4);
  EXPECT_EQ(by_name["demo/web.1"]["processes"][0]["pid"], web1[1]);
  EXPECT_EQ(by_name["demo/worker.0"]["pid"], worker[0]);
  EXPECT_EQ(by_name["demo/worker.0"]["ok"], false);
  EXPECT_TRUE(by_name["demo/worker.0"]["restarts"].is_null());
  EXPECT_EQ(by_name["db/main.0"]["processes"].size(), 2u);
  EXPECT_GT(by_name["demo/web.0"]["processes"][0]["mem_rss"].get<std::uint64_t>(), 0u);
  EXPECT_GT(by_name["demo/web.0"]["processes"][0]["start_time"].get<std::uint64_t>(), 1000000000u);

  // --format json is the same document shape; the last of --json/--monitor wins.
  auto format_run = run(ps_binary() + " --monitor --format json");
  ASSERT_EQ(format_run.status, 0);
  EXPECT_NE(find_tree(nlohmann::json::parse(format_run.out), fleet.tree), nullptr);

  auto text_run = run(ps_binary() + " --no-color");
  ASSERT_EQ(text_run.status, 0);
  const std::string& text = text_run.out;
  auto p = [](pid_t v) { return std::to_string(v); };
  EXPECT_NE(text.find(p(fleet.tree) + " tree " + (fleet.dir / "master.yaml").string() + " [4/4]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("├─" + p(web0[1]) + " web.0 "), std::string::npos) << text;
  EXPECT_NE(text.find("└─" + p(web1[1]) + " web.1 "), std::string::npos) << text;
  EXPECT_NE(text.find(" knot " + p(web0[0]) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("web [2/2] "), std::string::npos) << text;
  EXPECT_NE(text.find("restarts 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("└─(" + p(worker[0]) + ") worker.0 failing restarts -\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("(" + p(db[0]) + ") main.0 2 [2/2] "), std::string::npos) << text;
  EXPECT_EQ(text.find("\x1b["), std::string::npos);

  auto colored = run(ps_binary() + " --no-color --force-color");
  EXPECT_NE(colored.out.find("\x1b[32m" + p(web0[1]) + "\x1b[0m"), std::string::npos);
}

TEST(PsIntegration, CgroupNumbersOfAnInstanceScope) {
  // A real v1 cpuacct (or v2) scope named like the knot's: lithos_ps must
  // find it from /proc/KNOT/cgroup and report its usage.
  auto mounts_text = procfs::read_file("/proc/self/mountinfo");
  ASSERT_TRUE(mounts_text);
  auto mounts = parse_mountinfo(*mounts_text);
  ASSERT_TRUE(mounts);
  std::string base;
  bool v1 = false;
  for (const auto& m : *mounts)
    if (m.fstype == "cgroup" && m.root == "/" &&
        std::find(m.super_options.begin(), m.super_options.end(), "cpuacct") !=
            m.super_options.end()) {
      base = m.mount_point;
      v1 = true;
    }
  if (base.empty())
    for (const auto& m : *mounts)
      if (m.fstype == "cgroup2" && m.root == "/") base = m.mount_point;
  ASSERT_FALSE(base.empty()) << "no cgroup hierarchy with cpu accounting is mounted";
  std::string parent = base + "/lithos-ps-test-" + std::to_string(::getpid());
  std::string scope = parent + "/demo:web.0.scope";
  // Root with cgroups (as in CI): creating a cgroup must work, so a failure fails.
  ASSERT_EQ(::mkdir(parent.c_str(), 0755), 0)
      << "cannot create " << parent << ": " << std::strerror(errno);
  Fleet fleet;
  fleet.cgroup_dirs.push_back(parent);
  ASSERT_EQ(::mkdir(scope.c_str(), 0755), 0) << std::strerror(errno);
  fleet.cgroup_dirs.push_back(scope);
  ASSERT_TRUE(start_fleet(fleet, "demo/web.0:1,demo/web.1:1", 2, parent));

  auto json_run = run(ps_binary() + " --json");
  ASSERT_EQ(json_run.status, 0);
  auto doc = nlohmann::json::parse(json_run.out);
  const auto* tree = find_tree(doc, fleet.tree);
  ASSERT_NE(tree, nullptr);
  for (const auto& child : (*tree)["children"]) {
    if (child["name"] == "demo/web.0") {
      ASSERT_TRUE(child["cgroup"].is_object()) << json_run.out;
      EXPECT_TRUE(child["cgroup"]["cpu_usage_usec"].is_number());
      EXPECT_EQ(child["cgroup"]["cpu_file"], scope + (v1 ? "/cpuacct.usage" : "/cpu.stat"));
    } else {
      EXPECT_TRUE(child["cgroup"].is_null()) << "the knot of web.1 stays in the test's cgroup";
    }
  }
  auto text_run = run(ps_binary() + " --no-color");
  EXPECT_NE(text_run.out.find(" cgroup "), std::string::npos) << text_run.out;
}

TEST(PsIntegration, UsageErrorsAndHelp) {
  EXPECT_EQ(run(ps_binary() + " --bogus 2>/dev/null").status, 2);
  EXPECT_EQ(run(ps_binary() + " --format yaml 2>/dev/null").status, 2);
  EXPECT_EQ(run(ps_binary() + " positional 2>/dev/null").status, 2);
  auto help = run(ps_binary() + " --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--json"), std::string::npos);
  auto version = run(ps_binary() + " --version");
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out, "lithos_ps " + std::string(LITHOS_VERSION) + "\n");
}

}  // namespace
