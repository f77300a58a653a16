// lithos_switch: all-or-nothing replacement of a process config, and the
// reload signal only ever reaches a real lithos_tree. Only the switched
// sandbox and the master veto; --dry-run changes nothing.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

struct Run {
  int status = -1;
  std::string err;
  std::string out;
};

Run run_switch(const fs::path& cwd, std::vector<std::string> args) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  // stdout goes to a memory file, read after the exit (no second pipe to drain).
  int out_fd = ::memfd_create("switch-stdout", MFD_CLOEXEC);
  EXPECT_GE(out_fd, 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 2);
    ::dup2(out_fd, 1);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> argv;
    std::string bin = LITHOS_BIN_DIR "/lithos_switch";
    argv.push_back(bin.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  Run r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0)
    r.err.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ::lseek(out_fd, 0, SEEK_SET);
  while ((n = ::read(out_fd, buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(out_fd);
  return r;
}

// The entries of a directory with their contents (dot files included).
std::map<std::string, std::string> listing(const fs::path& d) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::directory_iterator(d))
    out[entry.path().filename().string()] = entry.is_regular_file() ? slurp(entry.path()) : "";
  return out;
}

// Whether `sig` is pending for process `pid` (it blocks it, so a signal
// sent to it stays visible in ShdPnd/SigPnd until it exits).
bool signal_pending(pid_t pid, int sig) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  unsigned long long pending = 0;
  while (std::getline(status, line))
    if (line.rfind("ShdPnd:", 0) == 0 || line.rfind("SigPnd:", 0) == 0)
      pending |= std::stoull(line.substr(7), nullptr, 16);
  return (pending >> (sig - 1)) & 1;
}

// A process called lithos_tree (a copy of sleep) with SIGQUIT blocked: a
// reload signal sent to it stays pending, so its absence can be asserted
// without waiting.
pid_t spawn_blocked_tree(const fs::path& dir) {
  fs::copy_file("/bin/sleep", dir / "lithos_tree", fs::copy_options::overwrite_existing);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGQUIT);
  posix_spawnattr_setsigmask(&attr, &mask);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::string p = (dir / "lithos_tree").string(), arg = "600";
  char* argv[] = {p.data(), arg.data(), nullptr};
  pid_t child = 0;
  EXPECT_EQ(::posix_spawn(&child, p.c_str(), nullptr, &attr, argv, environ), 0);
  posix_spawnattr_destroy(&attr);
  spit(dir / "run/master.pid", std::to_string(child) + "\n");
  // glibc's posix_spawn returns once the child has exec'd.
  std::ifstream in("/proc/" + std::to_string(child) + "/comm");
  std::string comm;
  std::getline(in, comm);
  EXPECT_EQ(comm, "lithos_tree");
  return child;
}

void reap(pid_t child) {
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
}

// The stand-in tree for one test, killed and reaped at its end.
struct BlockedTree {
  explicit BlockedTree(const fs::path& dir) : pid(spawn_blocked_tree(dir)) {}
  ~BlockedTree() {
    if (pid > 0) reap(pid);
  }
  BlockedTree(const BlockedTree&) = delete;
  BlockedTree& operator=(const BlockedTree&) = delete;
  pid_t pid;
};

std::size_t line_count(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

class Switch : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("lithos-switch-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    // Only directories and regular files: example.sh fills dev/ with device nodes.
    const fs::path example = LITHOS_SOURCE_DIR "/examples/basic";
    for (const auto& entry : fs::recursive_directory_iterator(example)) {
      const auto rel = entry.path().lexically_relative(example);
      if (entry.is_symlink()) continue;
      // A lock file a run of lithos_switch (scripts/example.sh) left behind.
      if (entry.path().filename() == ".lithos_switch.lock") continue;
      if (entry.is_directory())
        fs::create_directories(dir / rel);
      else if (entry.is_regular_file()) {
        fs::create_directories((dir / rel).parent_path());
        fs::copy_file(entry.path(), dir / rel);
      }
    }
    // Keep the pid file inside the test directory.
    std::string master = slurp(dir / "master.yaml");
    master.replace(master.find("/run/lithos-example"), 19, (dir / "run").string());
    spit(dir / "master.yaml", master);
    fs::create_directories(dir / "run");
    original = slurp(dir / "processes/demo.yaml");
  }
  void TearDown() override { fs::remove_all(dir); }

  fs::path dir;
  std::string original;
};

const char* kOneInstance = R"(web:
  instances: 1
  image: demo.v1
  config: /config/web.yaml
  variables: {port: "8081", greeting: hi}
)";

}  // namespace

TEST_F(Switch, ValidConfigReplacesTheTarget) {
  spit(dir / "new.yaml", kOneInstance);
  auto r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), kOneInstance);
  EXPECT_FALSE(fs::exists(dir / "processes/.tmp.demo"));
  EXPECT_NE(r.err.find("Can't read pid file"), std::string::npos) << r.err;
}

// The lock file's name is not followed: a symlink planted there (to a file
// the switch would otherwise create or lock) or a FIFO (which would block the
// open) is refused, and nothing is installed.
TEST_F(Switch, APlantedLockFileIsNotFollowed) {
  spit(dir / "new.yaml", kOneInstance);
  const std::string live = slurp(dir / "processes/demo.yaml");
  fs::create_symlink(dir / "elsewhere", dir / "processes/.lithos_switch.lock");
  auto r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("Can't open lock file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "elsewhere"));
  fs::remove(dir / "processes/.lithos_switch.lock");
  ASSERT_EQ(::mkfifo((dir / "processes/.lithos_switch.lock").c_str(), 0600), 0);
  r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("is not a regular file"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), live);
}

// The installed file is root's and 0644 whatever the candidate is: a
// world-writable or set-id candidate owned by someone else must not become
// a live config others can edit before the next reload.
TEST_F(Switch, InstalledFileIsRootOwned0644WhateverTheCandidate) {
  for (mode_t mode : {mode_t{0666}, mode_t{04666}, mode_t{0600}}) {
    SCOPED_TRACE(mode);
    spit(dir / "new.yaml", kOneInstance);
    ASSERT_EQ(::chown((dir / "new.yaml").c_str(), 1000, 1000), 0);
    ASSERT_EQ(::chmod((dir / "new.yaml").c_str(), mode), 0);
    auto r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
    EXPECT_EQ(r.status, 0) << r.err;
    struct stat st {};
    ASSERT_EQ(::stat((dir / "processes/demo.yaml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, 0u);
    EXPECT_EQ(slurp(dir / "processes/demo.yaml"), kOneInstance);
    fs::remove(dir / "new.yaml");
  }
}

TEST_F(Switch, InvalidConfigChangesNothing) {
  spit(dir / "bad.yaml", "web:\n  image: ../x\n  config: /config/web.yaml\n");
  auto r = run_switch(dir, {"--master", "master.yaml", "demo", "bad.yaml"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), original);
  EXPECT_FALSE(fs::exists(dir / "processes/.tmp.demo"));
  EXPECT_NE(r.err.find("bad.yaml:2:10: error[image-path]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Fatal error: Configuration check failed"), std::string::npos) << r.err;
}

TEST_F(Switch, UsageAndNames) {
  EXPECT_EQ(run_switch(dir, {"--master", "master.yaml", "demo"}).status, 2);
  auto r = run_switch(dir, {"--master", "master.yaml", "../etc", "x.yaml"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("Wrong sandbox name"), std::string::npos);
  EXPECT_EQ(run_switch(dir, {"--master", "master.yaml", "demo", "missing.yaml"}).status, 1);
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), original);
}

TEST_F(Switch, SignalsOnlyARealTree) {
  // A process named lithos_tree (a copy of sleep) stands in for the tree.
  fs::copy_file("/bin/sleep", dir / "lithos_tree");
  for (const char* name : {"lithos_tree", "sleep"}) {
    fs::path program = std::string(name) == "sleep" ? fs::path("/bin/sleep") : dir / name;
    pid_t child = 0;
    std::string p = program.string(), arg = "30";
    char* argv[] = {p.data(), arg.data(), nullptr};
    ASSERT_EQ(::posix_spawn(&child, p.c_str(), nullptr, nullptr, argv, environ), 0);
    spit(dir / "run/master.pid", std::to_string(child) + "\n");
    spit(dir / "new.yaml", kOneInstance);
    auto r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
    EXPECT_EQ(r.status, 0) << r.err;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
    ASSERT_GE(pidfd, 0);
    pollfd pfd{pidfd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, std::string(name) == "lithos_tree" ? 5000 : 300);
    if (std::string(name) == "lithos_tree") {
      EXPECT_EQ(ready, 1) << "the tree was not signalled: " << r.err;
    } else {
      EXPECT_EQ(ready, 0) << "a process that is not lithos_tree was signalled";
      ::kill(child, SIGKILL);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (std::string(name) == "lithos_tree") {
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGQUIT);
    }
    ::close(pidfd);
  }
}

TEST_F(Switch, ConcurrentSwitchesLeaveOneWholeFile) {
  std::string other = std::string(kOneInstance);
  other.replace(other.find("8081"), 4, "8082");
  spit(dir / "a.yaml", kOneInstance);
  spit(dir / "b.yaml", other);
  std::vector<pid_t> children;
  for (int i = 0; i < 6; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      auto r = run_switch(dir, {"--master", "master.yaml", "demo", i % 2 ? "a.yaml" : "b.yaml"});
      ::_exit(r.status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string final_text = slurp(dir / "processes/demo.yaml");
  EXPECT_TRUE(final_text == kOneInstance || final_text == other) << final_text;
}

// ---- what vetoes a switch: the switched sandbox and the master only ---------

namespace {

// A second sandbox like demo (same image dir and ranges), with `extra`
// appended to its config.
void add_sandbox(const fs::path& dir, const std::string& name, const std::string& extra = "") {
  spit(dir / "sandboxes" / (name + ".yaml"), slurp(dir / "sandboxes/demo.yaml") + extra);
}

const char* kBadImage = "web:\n  image: ../x\n  config: /config/web.yaml\n";

}  // namespace

// A neighbour with a broken process config, one whose sandbox config is not
// even YAML, and one whose container config is broken: the switch of demo
// goes through, and each problem is printed as a warning naming its sandbox.
TEST_F(Switch, BrokenNeighboursDoNotBlockTheSwitch) {
  add_sandbox(dir, "other");
  spit(dir / "processes/other.yaml", kBadImage);
  spit(dir / "sandboxes/garbled.yaml", "allow-users: [1-65535\n");
  spit(dir / "processes/garbled.yaml", kOneInstance);
  add_sandbox(dir, "third");
  spit(dir / "images/demo.v1/config/broken.yaml",
       "kind: Daemon\nexecutable: /bin/busybox\narguments: [\"@{nope}\"]\n");
  spit(dir / "processes/third.yaml", "broken:\n  image: demo.v1\n  config: /config/broken.yaml\n");
  spit(dir / "new.yaml", kOneInstance);

  auto r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), kOneInstance);
  EXPECT_EQ(r.err.find("error["), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("processes/other.yaml:2:10: warning[image-path]: neighbour sandbox "
                       "\"other\": Image \"../x\""),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("sandboxes/garbled.yaml"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("neighbour sandbox \"garbled\": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("config/broken.yaml:3:13: warning[template]: neighbour sandbox \"third\": "
                       "undefined variable \"nope\""),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("lithos_switch: warning: 3 error(s) of other sandboxes (above, as "
                       "warnings) do not block this switch"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("replaced by new.yaml"), std::string::npos) << r.err;
}

// What the switched sandbox depends on still vetoes: its sandbox config,
// a container config the candidate uses (even one a neighbour uses too),
// the master. Nothing is installed, no temporary copy is left.
TEST_F(Switch, BrokenSwitchedSandboxStillBlocks) {
  add_sandbox(dir, "other");
  spit(dir / "processes/other.yaml", kBadImage);
  spit(dir / "new.yaml", kOneInstance);
  auto expect_refused = [&](const std::string& what, const std::string& file = "new.yaml") {
    SCOPED_TRACE(what);
    auto r = run_switch(dir, {"--master", "master.yaml", "demo", file});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Fatal error: Configuration check failed: "), std::string::npos) << r.err;
    // The neighbour's problem is still only a warning.
    EXPECT_NE(r.err.find("warning[image-path]: neighbour sandbox \"other\""), std::string::npos)
        << r.err;
    EXPECT_EQ(slurp(dir / "processes/demo.yaml"), original);
    EXPECT_FALSE(fs::exists(dir / "processes/.tmp.demo"));
  };

  // Its sandbox config.
  const std::string sandbox = slurp(dir / "sandboxes/demo.yaml");
  std::string no_users = sandbox;
  no_users.replace(no_users.find("allow-users: [1-65535]"), 22, "allow-users: []");
  spit(dir / "sandboxes/demo.yaml", no_users);
  expect_refused("sandboxes/demo.yaml:1:1: error[allow-list]: No allowed users range");
  spit(dir / "sandboxes/demo.yaml", sandbox);

  // A container config the candidate uses, also used by the neighbour.
  spit(dir / "images/demo.v1/config/broken.yaml",
       "kind: Daemon\nexecutable: /bin/busybox\narguments: [\"@{nope}\"]\n");
  spit(dir / "processes/other.yaml",
       std::string(kBadImage) + "broken:\n  image: demo.v1\n  config: /config/broken.yaml\n");
  spit(dir / "broken-user.yaml", "broken:\n  image: demo.v1\n  config: /config/broken.yaml\n");
  expect_refused("config/broken.yaml:3:13: error[template]: undefined variable \"nope\"",
                 "broken-user.yaml");

  // The master: its devfs dir is gone.
  fs::remove_all(dir / "dev");
  expect_refused("error[devfs]");
}

// A sandbox whose `config-file` is demo's process config runs what a switch
// of demo installs: its problems with the candidate veto like demo's. The
// same sandbox with a file of its own is a neighbour again.
TEST_F(Switch, SandboxSharingTheProcessFileIsCheckedAsSwitched) {
  const std::string narrow = slurp(dir / "sandboxes/demo.yaml");
  std::string twin = narrow;
  twin.replace(twin.find("allow-tcp-ports: [8000-8999]"), 28, "allow-tcp-ports: [9000-9999]");
  spit(dir / "sandboxes/twin.yaml", twin + "config-file: demo.yaml\n");
  spit(dir / "new.yaml", kOneInstance);
  auto r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("new.yaml:5:21: error[port]: TcpPort 8081 (variable \"port\") is not in "
                       "allowed range (sandbox allow-tcp-ports: 9000-9999)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("note: sandbox \"twin\" has the same process config"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("neighbour sandbox"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), original);

  spit(dir / "sandboxes/twin.yaml", twin);
  spit(dir / "processes/twin.yaml", kOneInstance);
  r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("processes/twin.yaml:5:21: warning[port]: neighbour sandbox \"twin\": "
                       "TcpPort 8081 (variable \"port\") is not in allowed range (sandbox "
                       "allow-tcp-ports: 9000-9999)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("has the same process config"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), kOneInstance);
}

// ---- --dry-run ---------------------------------------------------------------

namespace {

// Installed: web (port 8080), worker x2, old, and a command.
const char* kInstalled = R"(web:
  instances: 1
  image: demo.v1
  config: /config/web.yaml
  variables: {port: "8080", greeting: hello}
worker:
  instances: 2
  image: demo.v1
  config: /config/worker.yaml
  variables: {greeting: hi}
old:
  instances: 1
  image: demo.v1
  config: /config/worker.yaml
  variables: {greeting: bye}
hello:
  kind: Command
  image: demo.v1
  config: /config/hello.yaml
)";

// Candidate: web's port changed, worker grown to 11, old removed, new added,
// the command kept (commands are not the tree's).
const char* kCandidate = R"(web:
  instances: 1
  image: demo.v1
  config: /config/web.yaml
  variables: {port: "8081", greeting: hello}
worker:
  instances: 11
  image: demo.v1
  config: /config/worker.yaml
  variables: {greeting: hi}
new:
  instances: 1
  image: demo.v1
  config: /config/worker.yaml
  variables: {greeting: yo}
hello:
  kind: Command
  image: demo.v1
  config: /config/hello.yaml
)";

}  // namespace

// One line per instance, sorted by process name and instance number; the
// target byte-identical, no lock file or temporary copy, no signal to a
// running tree (which a real switch then does signal).
TEST_F(Switch, DryRunPrintsWhatAReloadWouldDoAndChangesNothing) {
  spit(dir / "processes/demo.yaml", kInstalled);
  spit(dir / "new.yaml", kCandidate);
  const auto before = listing(dir / "processes");
  struct stat st_before {};
  ASSERT_EQ(::stat((dir / "processes/demo.yaml").c_str(), &st_before), 0);
  BlockedTree tree(dir);

  auto r = run_switch(dir, {"--dry-run", "--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::string expected =
      "start demo/new.0\n"
      "stop demo/old.0\n"
      "restart demo/web.0 (variables port)\n"
      "keep demo/worker.0\n"
      "keep demo/worker.1\n";
  for (int i = 2; i <= 10; ++i) expected += "start demo/worker." + std::to_string(i) + "\n";
  EXPECT_EQ(r.out, expected) << r.err;
  EXPECT_NE(r.err.find("dry run: check passed"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir / "processes"), before);
  struct stat st_after {};
  EXPECT_EQ(::stat((dir / "processes/demo.yaml").c_str(), &st_after), 0);
  EXPECT_EQ(st_after.st_ino, st_before.st_ino);
  EXPECT_EQ(st_after.st_mtim.tv_sec, st_before.st_mtim.tv_sec);
  EXPECT_EQ(st_after.st_mtim.tv_nsec, st_before.st_mtim.tv_nsec);
  EXPECT_FALSE(signal_pending(tree.pid, SIGQUIT));

  // The same without --dry-run: installed, and the tree is signalled.
  r = run_switch(dir, {"--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), kCandidate);
  EXPECT_TRUE(signal_pending(tree.pid, SIGQUIT)) << r.err;
}

// Restart reasons name what changed in the identity; a sandbox with no
// process config yet starts everything.
TEST_F(Switch, DryRunReasonsAndAFirstDeployment) {
  fs::create_directories(dir / "images/demo.v2");
  fs::copy(dir / "images/demo.v1", dir / "images/demo.v2", fs::copy_options::recursive);
  spit(dir / "processes/demo.yaml", kOneInstance);
  std::string moved = kOneInstance;
  moved.replace(moved.find("demo.v1"), 7, "demo.v2");
  moved.replace(moved.find("greeting: hi"), 12, "greeting: ho");
  spit(dir / "new.yaml", moved);
  auto r = run_switch(dir, {"--dry-run", "--master", "master.yaml", "demo", "new.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "restart demo/web.0 (image demo.v1 -> demo.v2; variables greeting)\n");

  add_sandbox(dir, "fresh");
  spit(dir / "fresh.yaml",
       "worker:\n  instances: 2\n  image: demo.v1\n"
       "  config: /config/worker.yaml\n  variables: {greeting: hi}\n");
  r = run_switch(dir, {"--dry-run", "--master", "master.yaml", "fresh", "fresh.yaml"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "start fresh/worker.0\nstart fresh/worker.1\n");
  EXPECT_FALSE(fs::exists(dir / "processes/fresh.yaml"));
  EXPECT_FALSE(fs::exists(dir / "processes/.lithos_switch.lock"));
}

// A candidate that fails the check: exit 1, the errors, no plan lines.
TEST_F(Switch, DryRunOfABadConfigFailsWithoutAPlan) {
  spit(dir / "bad.yaml", kBadImage);
  auto r = run_switch(dir, {"--dry-run", "--master", "master.yaml", "demo", "bad.yaml"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("bad.yaml:2:10: error[image-path]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Fatal error: Configuration check failed"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir / "processes/demo.yaml"), original);
  EXPECT_FALSE(fs::exists(dir / "processes/.lithos_switch.lock"));
}

// Usage errors: exit 2, one line on stderr, nothing on stdout, nothing done.
TEST_F(Switch, BadFlagCombinationsAreOneLineUsageErrors) {
  spit(dir / "new.yaml", kOneInstance);
  const std::vector<std::vector<std::string>> cases = {
      {"--dry-run", "--master", "master.yaml", "demo"},                    // NEWFILE missing
      {"--dry-run=false", "--master", "master.yaml", "demo", "new.yaml"},  // a value on the flag
      {"--dry-run", "--master", "master.yaml", "--master", "master.yaml", "demo", "new.yaml"},
      {"--dry-run", "--force", "--master", "master.yaml", "demo", "new.yaml"},  // unknown option
      {"--dry-run", "--master", "master.yaml", "demo", "new.yaml", "more.yaml"},
      {"--master", "master.yaml"},
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    SCOPED_TRACE(joined);
    auto r = run_switch(dir, args);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("lithos_switch: usage error: ", 0), 0u) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(slurp(dir / "processes/demo.yaml"), original);
    EXPECT_FALSE(fs::exists(dir / "processes/.lithos_switch.lock"));
  }
}
