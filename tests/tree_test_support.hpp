// The lithos_tree integration-test fixture (test_tree.cpp,
// test_tree_crash_only.cpp): a real tree with real knots and busybox
// containers, inspected from outside through /proc, its log and its metrics
// file. Tests end only the processes they started, by pidfd.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <climits>
#include <set>
#include <thread>

#include "lithos/policy/supervise.hpp"
#include "lithos/runtime/supervisor.hpp"
#include "test_knot_support.hpp"

namespace {

// When this binary runs as "lithos_knot" it is a fake knot for the tests of
// unidentified processes: it ignores SIGTERM and waits to be killed.
struct FakeKnot {
  FakeKnot() {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string argv0;
    std::getline(in, argv0, '\0');
    if (lithos::policy::supervise::base_name(argv0) != "lithos_knot") return;
    ::signal(SIGTERM, SIG_IGN);
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    while (true) ::pause();
  }
} fake_knot;

}  // namespace

namespace knot_test {
namespace {

namespace sv = lithos::policy::supervise;
using namespace std::chrono_literals;

struct KnotSeen {
  pid_t pid;
  pid_t ppid;
  std::string name;
};

class TreeTest : public KnotTest {
 protected:
  std::unique_ptr<Running> tree;
  pid_t tree_pid = 0;
  runtime::UniqueFd changes_;  // inotify on the test's dir, log/ and metrics/ (wait_until)

  void SetUp() override {
    KnotTest::SetUp();
    // Knots outlive a killed tree: they become this process's children
    // (not init's, which may never reap them) and TearDown reaps them.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    write_master("metrics-dir: " + dir + "/metrics\n");
    write_file(dir + "/processes/box.yaml", "");
    ::mkdir((dir + "/metrics").c_str(), 0755);
    changes_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    ASSERT_TRUE(changes_) << std::strerror(errno);
    for (auto sub : {"", "/log", "/metrics"})
      ASSERT_GE(
          ::inotify_add_watch(changes_.get(), (dir + sub).c_str(),
                              IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_CLOSE_WRITE),
          0)
          << dir + sub << ": " << std::strerror(errno);
  }

  void TearDown() override {
    if (tree && tree->process.pidfd) {
      ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGTERM, nullptr, 0);
      wait_for(tree->process, 20s);
    }
    tree.reset();
    // Anything still running with our master (a failed test): stop it.
    for (const auto& k : knots()) {
      int fd = static_cast<int>(::syscall(SYS_pidfd_open, k.pid, 0));
      if (fd >= 0) {
        ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
        ::close(fd);
      }
    }
    wait_until([&] { return knots().empty(); }, 10s);
    while (true) {  // knots left by a killed tree, reparented to us
      siginfo_t info{};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0) break;
    }
    KnotTest::TearDown();
  }

  // Re-checks `pred` whenever a file of this test's tree changes: the tree
  // and the knots log every start, stop and adoption, and the tree rewrites
  // its metrics, so a condition usually turns true right after an inotify
  // event. A process state that no write announces (a knot gone) is
  // re-checked at the latest every kRecheck: the kernel has no event for it.
  bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) const {
    static constexpr auto kRecheck = 100ms;
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (pred()) return true;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return pred();
      pollfd p{changes_.get(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min(left, std::chrono::milliseconds(kRecheck)).count()));
      drain_changes();
    }
  }

  void drain_changes() const {
    alignas(inotify_event) char events[4096];
    while (::read(changes_.get(), events, sizeof events) > 0) {
    }
  }

  std::string master_path() const { return dir + "/master.yaml"; }

  // A daemon entry and its container config (in the shared image).
  void add_daemon(const std::string& name, const std::string& container, int instances) {
    write_file(
        base + "/images/box.v1/config/" + dir.substr(dir.rfind('/') + 1) + "-" + name + ".yaml",
        container);
    std::string processes = read_file(dir + "/processes/box.yaml");
    processes += daemon_entry(name, instances);
    write_file(dir + "/processes/box.yaml", processes);
  }
  std::string daemon_entry(const std::string& name, int instances) const {
    return name + ":\n  kind: Daemon\n  instances: " + std::to_string(instances) +
           "\n  image: box.v1\n  config: /config/" + dir.substr(dir.rfind('/') + 1) + "-" + name +
           ".yaml\n";
  }

  static std::string sleeper(const std::string& extra = "") {
    return "kind: Daemon\nexecutable: /bin/busybox\narguments: [sleep, \"1000\"]\n"
           "restart-timeout: 1\nkill-timeout: 1\n" +
           extra;
  }

  void start_tree(std::vector<std::pair<int, int>> extra_fds = {}, std::string binary = {},
                  std::vector<std::string> extra_env = {}) {
    runtime::SpawnOptions options;
    options.path = binary.empty() ? bin("lithos_tree") : binary;
    options.argv = {options.path,     "-C", master_path(), "--log-level", "info",
                    "--kill-timeout", "1"};
    options.parent_death_signal = SIGKILL;  // a crashed test leaves nothing behind
    int out = ::open((dir + "/tree.out").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    options.fds = {{in, 0}, {out, 1}, {out, 2}};
    options.fds.insert(options.fds.end(), extra_fds.begin(), extra_fds.end());
    options.env = {"TERM=dumb"};
    options.env.insert(options.env.end(), extra_env.begin(), extra_env.end());
    tree = std::make_unique<Running>();
    auto spawned = runtime::spawn_process(options);
    ::close(out);
    ::close(in);
    ASSERT_TRUE(spawned) << spawned.error().what();
    tree->process = std::move(*spawned);
    tree_pid = tree->process.pid;
  }

  std::string tree_log() const { return read_file(dir + "/log/master.log"); }
  // The tree writes a line after the action it reports (a knot is visible
  // before "Forked" is logged), so a line is waited for, not read once.
  bool log_shows(const std::string& line) const {
    return wait_until([&] { return tree_log().find(line) != std::string::npos; }, 5s);
  }
  std::string diagnostics() const {
    return "--- master.log:\n" + tree_log() + "--- tree.out:\n" + read_file(dir + "/tree.out") +
           "--- box.log:\n" + knot_log();
  }

  // Live knots (zombies excluded) whose --master is ours. A knot's container
  // process shows the knot's command line until it execs: not a knot.
  std::vector<KnotSeen> knots() const {
    std::vector<KnotSeen> out;
    auto processes = runtime::scan_processes();
    std::set<pid_t> knot_pids;
    for (const auto& p : processes)
      if (sv::parse_knot_cmdline(p.argv)) knot_pids.insert(p.pid);
    for (const auto& p : processes) {
      auto k = sv::parse_knot_cmdline(p.argv);
      if (k && k->master == master_path() && !knot_pids.count(p.ppid))
        out.push_back({p.pid, p.ppid, k->name});
    }
    return out;
  }
  // name -> pid, failing the test if a name has two knots.
  std::map<std::string, pid_t> knot_map() const {
    std::map<std::string, pid_t> out;
    for (const auto& k : knots()) {
      EXPECT_EQ(out.count(k.name), 0u) << "two knots named " << k.name;
      out[k.name] = k.pid;
    }
    return out;
  }
  // Holds for `window` on the processes' pidfds (the tree's among them where
  // it matters): false as soon as one of them exits, true when the window
  // passes with all alive. Used where a test's point is that nothing dies.
  bool stay_alive(const std::vector<pid_t>& pids, std::chrono::milliseconds window) const {
    std::vector<pollfd> fds;
    for (pid_t pid : pids) {
      int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (fd < 0) return false;
      fds.push_back({fd, POLLIN, 0});
    }
    auto deadline = Clock::now() + window;
    bool alive = true;
    while (alive) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
      if (ready > 0) alive = false;
    }
    for (auto& f : fds) ::close(f.fd);
    return alive;
  }
  static std::vector<pid_t> pids_of(const std::map<std::string, pid_t>& knots_now) {
    std::vector<pid_t> out;
    for (const auto& [name, pid] : knots_now) out.push_back(pid);
    return out;
  }

  // dir/fake/lithos_knot: this test binary under a knot's name, so that the
  // kernel names the process lithos_knot as it names a real knot.
  void make_fake_knot_binary() const {
    ::mkdir((dir + "/fake").c_str(), 0755);
    char self[PATH_MAX] = {};
    ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
    ASSERT_EQ(::symlink(self, (dir + "/fake/lithos_knot").c_str()), 0);
  }

  // True once every knot of `knots_now` has a child that has exec'd its
  // program: the knot's setup (which reads the configs) is over.
  static bool containers_running(const std::map<std::string, pid_t>& knots_now) {
    auto processes = runtime::scan_processes();
    for (const auto& [name, knot] : knots_now) {
      bool running = false;
      for (const auto& p : processes)
        if (p.ppid == knot && p.comm != "lithos_knot") running = true;
      if (!running) return false;
    }
    return true;
  }

  // Waits until exactly `names` run as children of the tree (or, with
  // `children_only` false, as knots of our master whatever their parent:
  // a previous tree's, adopted); returns them.
  std::map<std::string, pid_t> wait_for_knots(const std::set<std::string>& names,
                                              std::chrono::milliseconds timeout = 15s,
                                              bool children_only = true) {
    std::map<std::string, pid_t> seen;
    bool ok = wait_until(
        [&] {
          seen = knot_map();
          if (seen.size() != names.size()) return false;
          for (const auto& k : knots())
            if (!names.count(k.name) || (children_only && k.ppid != tree_pid)) return false;
          return true;
        },
        timeout);
    EXPECT_TRUE(ok) << diagnostics();
    return seen;
  }

  std::optional<std::uint64_t> metric(const std::string& line_prefix) const {
    std::istringstream in(read_file(dir + "/metrics/lithos_tree.prom"));
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(line_prefix + " ", 0) == 0)
        return std::stoull(line.substr(line_prefix.size() + 1));
    return std::nullopt;
  }

  static void kill_pid(pid_t pid, int sig) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    ASSERT_GE(fd, 0);
    ::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
    ::close(fd);
  }

  int stop_tree() {
    ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGTERM, nullptr, 0);
    auto status = wait_for(tree->process, 30s);
    if (!status || !WIFEXITED(*status)) return -1;
    return WEXITSTATUS(*status);
  }

  static std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
};

}  // namespace
}  // namespace knot_test
