// Shared fixture of the knot integration tests: a busybox image built by
// scripts/make-example-image.sh into a temp dir, a devfs from lithos_mkdev,
// and a master/sandbox/process tree per test pointing at temp runtime and
// log dirs with a test-unique cgroup name. Containers are started through
// lithos_cmd (or lithos_knot directly) and inspected from outside via /proc.
// Every wait is on an event (pipe, pidfd, FIFO) with a deadline; the tests
// end only the processes they started, by pid or pidfd.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "lithos/policy/check.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/spawn.hpp"

namespace knot_test {

using namespace lithos;
using Clock = std::chrono::steady_clock;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline int run_shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// /proc/PID/status as field -> value (tabs collapsed to single spaces).
inline std::map<std::string, std::string> proc_status(pid_t pid) {
  std::map<std::string, std::string> out;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    std::string clean;
    for (char c : value) {
      if (c == '\t' || c == ' ') {
        if (!clean.empty() && clean.back() != ' ') clean += ' ';
      } else {
        clean += c;
      }
    }
    while (!clean.empty() && clean.back() == ' ') clean.pop_back();
    out[line.substr(0, colon)] = clean;
  }
  return out;
}

inline std::vector<std::string> proc_environ(pid_t pid) {
  std::string raw = read_file("/proc/" + std::to_string(pid) + "/environ");
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < raw.size()) {
    auto nul = raw.find('\0', start);
    if (nul == std::string::npos) nul = raw.size();
    out.push_back(raw.substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

// Children of a single-threaded process (/proc/PID/task/PID/children).
inline std::vector<pid_t> children_of(pid_t pid) {
  std::istringstream in(
      read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  std::vector<pid_t> out;
  pid_t child;
  while (in >> child) out.push_back(child);
  return out;
}

// Reads from `fd` until `needle` has been seen or the deadline passes.
inline bool read_until(int fd, std::string& buffer, const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = Clock::now() + timeout;
  while (buffer.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    buffer.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

// Waits for a spawned process with a deadline; nullopt on timeout.
inline std::optional<int> wait_for(runtime::Spawned& p,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  pollfd pfd{p.pidfd.get(), POLLIN, 0};
  int r;
  do {
    r = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return std::nullopt;
  int status = 0;
  if (::waitpid(p.pid, &status, 0) != p.pid) return std::nullopt;
  p.pidfd.reset();
  return status;
}

inline void kill_and_reap(runtime::Spawned& p) {
  if (!p.pidfd) return;
  ::syscall(SYS_pidfd_send_signal, p.pidfd.get(), SIGKILL, nullptr, 0);
  wait_for(p, std::chrono::seconds(10));
}

// A running lithos_cmd (or knot) with its stdout+stderr on a pipe.
struct Running {
  runtime::Spawned process;
  runtime::UniqueFd output;
  runtime::UniqueFd input;  // the process's stdin
  std::string buffer;
  ~Running() { kill_and_reap(process); }
};

class KnotTest : public ::testing::Test {
 protected:
  static inline std::string base;  // per test binary: image, devfs
  static inline int counter = 0;

  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/lithos-knot-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base = tmpl;
    ASSERT_EQ(run_shell(std::string(LITHOS_SOURCE_DIR) + "/scripts/make-example-image.sh " + base +
                        "/images/box.v1 >/dev/null"),
              0);
    ASSERT_EQ(run_shell(std::string(LITHOS_BIN_DIR) + "/lithos_mkdev " + base + "/dev 2>/dev/null"),
              0);
    ::mkdir((base + "/images/box.v1/ro").c_str(), 0755);
    ::mkdir((base + "/images/box.v1/data2").c_str(), 0755);
  }
  static void TearDownTestSuite() { run_shell("rm -rf " + base); }

  std::string dir;  // this test's tree
  std::string cgroup_name;

  void SetUp() override {
    dir = base + "/t" + std::to_string(++counter);
    cgroup_name =
        "lithos-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter) + ".slice";
    for (auto sub :
         {"", "/sandboxes", "/processes", "/run", "/log", "/log/stderr", "/data-host", "/ro-host"})
      ::mkdir((dir + sub).c_str(), 0755);
    write_file(dir + "/ro-host/marker", "read only\n");
    write_master("");
    write_sandbox("");
  }

  void TearDown() override {
    // Scope cgroups are removed by lithos_cmd; the per-test parent here.
    auto host = runtime::probe_cgroups();
    if (!host) return;
    policy::CgroupPlan plan;
    plan.parent = cgroup_name;
    plan.scope = "x.scope";
    plan.controllers = {"name", "cpu", "cpuacct", "memory", "blkio", "pids"};
    auto placed = runtime::place_cgroup(*host, plan);
    if (!placed) return;
    // Scopes of knots started directly (no lithos_cmd to remove them): their
    // processes are gone, so the directories can go.
    for (const auto& p : *placed) {
      if (DIR* d = ::opendir(p.parent.c_str())) {
        while (dirent* e = ::readdir(d)) {
          std::string entry = e->d_name;
          if (entry.size() > 6 && entry.substr(entry.size() - 6) == ".scope")
            ::rmdir((p.parent + "/" + entry).c_str());
        }
        ::closedir(d);
      }
      ::rmdir(p.parent.c_str());
    }
  }

  void write_master(const std::string& extra) {
    write_file(dir + "/master.yaml", "runtime-dir: " + dir + "/run\n" + "devfs-dir: " + base +
                                         "/dev\n" + "default-log-dir: " + dir + "/log\n" +
                                         "config-log-dir: " + dir + "/log/config\n" +
                                         "stdio-log-dir: " + dir + "/log/stderr\n" +
                                         "cgroup-name: " + cgroup_name + "\n" + extra);
  }

  void write_sandbox(const std::string& extra) {
    write_file(dir + "/sandboxes/box.yaml",
               "image-dir: " + base + "/images\n" + "allow-users: [0-65535]\n" +
                   "allow-groups: [0-65535]\n" + "default-user: 1000\n" + "default-group: 1000\n" +
                   "readonly-paths:\n" + "  /ro: " + dir + "/ro-host\n" + "writable-paths:\n" +
                   "  /data: " + dir + "/data-host\n" + extra);
  }

  // A container config in the shared image and a Command entry for it.
  void add_command(const std::string& name, const std::string& container,
                   const std::string& entry_extra = "") {
    write_file(base + "/images/box.v1/config/" + name + ".yaml", container);
    std::string processes = read_file(dir + "/processes/box.yaml");
    processes += name + ":\n  kind: Command\n  image: box.v1\n  config: /config/" + name +
                 ".yaml\n" + entry_extra;
    write_file(dir + "/processes/box.yaml", processes);
  }

  std::string bin(const char* name) const { return std::string(LITHOS_BIN_DIR) + "/" + name; }

  // lithos_cmd --master M box NAME ARGS..., stdout+stderr on a pipe.
  std::unique_ptr<Running> start_cmd(const std::string& name,
                                     const std::vector<std::string>& args = {},
                                     const std::vector<std::pair<int, int>>& extra_fds = {}) {
    runtime::SpawnOptions options;
    options.path = bin("lithos_cmd");
    options.argv = {options.path, "--master", dir + "/master.yaml", "box", name};
    for (const auto& a : args) options.argv.push_back(a);
    return start(std::move(options), extra_fds);
  }

  // The launch plan the tree would hand to the knot of `name` running
  // `identity` (built here in the test process, as the tree's reader would),
  // or the plan builder's diagnostics.
  lithos::Result<std::string, std::string> plan_wire(const std::string& name,
                                                     const std::string& identity) {
    auto parsed = policy::InstanceName::parse(name);
    if (!parsed) return lithos::fail("bad instance name " + name);
    policy::Diagnostics diags;
    auto id = policy::parse_instance_identity(identity, diags);
    if (!id || diags.has_errors()) return lithos::fail(describe(diags));
    policy::InstanceRequest request;
    request.sandbox = parsed->sandbox;
    request.child = parsed->child;
    (parsed->command ? request.command_pid : request.index) = parsed->number;
    request.identity = *id;
    policy::LoadOptions load;
    load.only_sandbox = request.sandbox;
    load.skip_process_configs = true;
    auto tree = policy::load_tree(dir + "/master.yaml", load, diags, nullptr);
    if (diags.has_errors()) return lithos::fail(describe(diags));
    auto plan = policy::plan_instance(tree, request, diags, nullptr);
    if (!plan) return lithos::fail(describe(diags));
    return policy::encode_plan(*plan);
  }
  static std::string describe(const policy::Diagnostics& diags) {
    std::string out;
    for (const auto& d : diags.items()) out += d.file + ": " + d.message + "\n";
    return out;
  }

  // lithos_knot directly, in the knot's namespaces, with its plan on a
  // sealed memfd at kPlanFd (as the tree starts it).
  std::unique_ptr<Running> start_knot(const std::string& name, const std::string& identity) {
    auto wire = plan_wire(name, identity);
    EXPECT_TRUE(wire) << (wire ? "" : wire.error());
    auto sealed = runtime::seal_plan(wire ? *wire : std::string());
    EXPECT_TRUE(sealed);
    // --config carries the plan's identity in its canonical form, as the
    // tree passes it (the knot compares the two).
    auto plan = wire ? policy::decode_plan(*wire) : lithos::fail(std::string("no plan"));
    return start_knot_with_plan_fd(name, plan ? plan->identity : identity,
                                   sealed ? sealed->get() : -1);
  }

  // The same with whatever descriptor the test prepared at kPlanFd (-1: none).
  std::unique_ptr<Running> start_knot_with_plan_fd(const std::string& name,
                                                   const std::string& identity, int plan_fd) {
    ::mkdir((dir + "/run/mnt").c_str(), 0755);
    // What the tree does at startup: the parent cgroup of its instances.
    if (auto host = runtime::probe_cgroups()) {
      policy::CgroupPlan plan;
      plan.parent = cgroup_name;
      plan.scope = "x.scope";
      plan.controllers = {"name", "cpu", "cpuacct", "memory", "blkio"};
      if (auto placed = runtime::place_cgroup(*host, plan)) {
        EXPECT_TRUE(runtime::prepare_cgroup_parent(*placed));
      }
    }
    runtime::SpawnOptions options;
    options.path = bin("lithos_knot");
    options.argv = {options.path,         "--name",   name,    "--master",
                    dir + "/master.yaml", "--config", identity};
    options.namespaces = runtime::kKnotNamespaces;
    options.parent_death_signal = SIGKILL;
    options.blocked_signals = runtime::kKnotSignals;
    std::vector<std::pair<int, int>> fds;
    if (plan_fd >= 0) fds.emplace_back(plan_fd, policy::kPlanFd);
    return start(std::move(options), fds);
  }

  // `extra_fds` (source, target) are handed on as well: what a caller of
  // lithos_cmd may have left open.
  std::unique_ptr<Running> start(runtime::SpawnOptions options,
                                 const std::vector<std::pair<int, int>>& extra_fds = {}) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    auto running = std::make_unique<Running>();
    running->output.reset(fds[0]);
    runtime::UniqueFd write_end(fds[1]);
    int in[2];
    EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
    runtime::UniqueFd read_end(in[0]);
    running->input.reset(in[1]);
    options.env = {"TERM=lithos-test-term"};
    options.fds = {{read_end.get(), 0}, {write_end.get(), 1}, {write_end.get(), 2}};
    options.fds.insert(options.fds.end(), extra_fds.begin(), extra_fds.end());
    auto spawned = runtime::spawn_process(options);
    EXPECT_TRUE(spawned) << (spawned ? "" : spawned.error().what());
    if (spawned) running->process = std::move(*spawned);
    return running;
  }

  // Runs to completion; returns the exit code (-1: timeout or signal).
  int finish(Running& r, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    read_until(r.output.get(), r.buffer, "\x01never\x01", timeout);  // until EOF
    auto status = wait_for(r.process, timeout);
    if (!status || !WIFEXITED(*status)) return -1;
    return WEXITSTATUS(*status);
  }

  std::string knot_log() const { return read_file(dir + "/log/box.log"); }
  std::string stdio_log() const { return read_file(dir + "/log/stderr/box.log"); }
};

}  // namespace knot_test
