// lithos_switch: all-or-nothing replacement of a process config, and the
// reload signal only ever reaches a real lithos_tree.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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
};

Run run_switch(const fs::path& cwd, std::vector<std::string> args) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 2);
    ::dup2(::open("/dev/null", O_WRONLY), 1);
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
  return r;
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
