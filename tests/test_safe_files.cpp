// safe_files.hpp: root writes in directories others may write, so names
// planted there (symlinks at the file or at a temp name, FIFOs, hard
// links) are never written through and never block. Everything happens in
// a temp dir; the "victims" are files of this test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include "lithos/runtime/safe_files.hpp"

using namespace lithos::runtime;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path);
    out << text;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename());
  return out;
}

class SafeFiles : public ::testing::Test {
 protected:
  std::string dir, victim;

  void SetUp() override {
    char tmpl[] = "/tmp/lithos-safe-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    ASSERT_EQ(::mkdir((dir + "/w").c_str(), 0755), 0);
    victim = dir + "/victim";
    spit(victim, "precious\n", 0600);
  }
  void TearDown() override { fs::remove_all(dir); }

  void expect_victim_untouched() const {
    EXPECT_EQ(slurp(victim), "precious\n");
    EXPECT_EQ(mode_of(victim) & 07777, 0600u);
  }

  // Runs `fn` in a child with a 5 s alarm: a call that blocks (a FIFO
  // opened for writing) fails the test instead of hanging it. Returns the
  // child's exit code, or -signal.
  static int in_child(const std::function<int()>& fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::alarm(5);
      ::_exit(fn());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
};

TEST_F(SafeFiles, ReplaceIgnoresSymlinksAtTempNames) {
  const std::string w = dir + "/w";
  // The names a naive writer would use, and ours with a guessed suffix.
  for (const char* name : {"/out.prom.tmp", "/.out.prom.tmp", "/out.prom~"})
    ASSERT_EQ(::symlink(victim.c_str(), (w + name).c_str()), 0);
  auto dir_fd = open_directory(w);
  ASSERT_TRUE(dir_fd) << dir_fd.error().what();
  auto written = replace_file_at(dir_fd->get(), w, "out.prom", "metrics 1\n", 0644);
  ASSERT_TRUE(written) << written.error().what();
  expect_victim_untouched();
  EXPECT_EQ(slurp(w + "/out.prom"), "metrics 1\n");
  EXPECT_TRUE(S_ISREG(mode_of(w + "/out.prom")));
  EXPECT_TRUE(S_ISLNK(mode_of(w + "/out.prom.tmp")));
  // No temp file is left behind.
  EXPECT_EQ(names_in(w),
            (std::set<std::string>{"out.prom", "out.prom.tmp", ".out.prom.tmp", "out.prom~"}));
}

TEST_F(SafeFiles, ReplaceReplacesASymlinkAtTheFinalNameItself) {
  const std::string w = dir + "/w";
  ASSERT_EQ(::symlink(victim.c_str(), (w + "/master.pid").c_str()), 0);
  auto written = replace_file(w + "/master.pid", "42\n", 0644);
  ASSERT_TRUE(written) << written.error().what();
  expect_victim_untouched();
  EXPECT_TRUE(S_ISREG(mode_of(w + "/master.pid")));
  EXPECT_EQ(slurp(w + "/master.pid"), "42\n");
  EXPECT_EQ(names_in(w), std::set<std::string>{"master.pid"});
}

TEST_F(SafeFiles, ReplaceSetsTheExactModeWhateverTheUmask) {
  const std::string w = dir + "/w";
  mode_t old = ::umask(077);
  auto written = replace_file(w + "/a", "x", 0644);
  auto again = replace_file(w + "/a", "yy", 0640);  // over an existing file
  ::umask(old);
  ASSERT_TRUE(written) << written.error().what();
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_EQ(mode_of(w + "/a") & 07777, 0640u);
  EXPECT_EQ(slurp(w + "/a"), "yy");
}

TEST_F(SafeFiles, OpenDirectoryRefusesASymlinkedDirectory) {
  ASSERT_EQ(::symlink((dir + "/w").c_str(), (dir + "/link").c_str()), 0);
  auto opened = open_directory(dir + "/link");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().step, "open_directory");
  EXPECT_EQ(opened.error().path, dir + "/link");
  EXPECT_TRUE(opened.error().err == ELOOP || opened.error().err == ENOTDIR)
      << opened.error().what();
  auto written = replace_file(dir + "/link/m.prom", "x", 0644);
  EXPECT_FALSE(written);
  EXPECT_FALSE(fs::exists(dir + "/w/m.prom"));
}

TEST_F(SafeFiles, ReplaceReportsStepPathAndErrno) {
  auto written = replace_file(dir + "/missing/m.prom", "x", 0644);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().err, ENOENT);
  EXPECT_EQ(written.error().path, dir + "/missing");
  // A directory at the final name: the rename fails, nothing is left.
  ASSERT_EQ(::mkdir((dir + "/w/d").c_str(), 0755), 0);
  auto over_dir = replace_file(dir + "/w/d", "x", 0644);
  ASSERT_FALSE(over_dir);
  EXPECT_EQ(over_dir.error().step, "replace_file");
  EXPECT_EQ(over_dir.error().err, EISDIR) << over_dir.error().what();
  EXPECT_EQ(names_in(dir + "/w"), std::set<std::string>{"d"});
}

TEST_F(SafeFiles, LogIsCreated0640AndAppendedBlocking) {
  const std::string log = dir + "/w/box.log";
  mode_t old = ::umask(022);
  auto fd = open_log(log);
  ::umask(old);
  ASSERT_TRUE(fd) << fd.error().what();
  EXPECT_EQ(mode_of(log) & 07777, 0640u);
  int flags = ::fcntl(fd->get(), F_GETFL);
  EXPECT_EQ(flags & O_NONBLOCK, 0);
  EXPECT_NE(flags & O_APPEND, 0);
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
  ASSERT_EQ(::write(fd->get(), "one\n", 4), 4);
  // An existing log keeps its mode and is appended to.
  ASSERT_EQ(::chmod(log.c_str(), 0600), 0);
  auto again = open_log(log);
  ASSERT_TRUE(again) << again.error().what();
  ASSERT_EQ(::write(again->get(), "two\n", 4), 4);
  EXPECT_EQ(slurp(log), "one\ntwo\n");
  EXPECT_EQ(mode_of(log) & 07777, 0600u);
}

TEST_F(SafeFiles, LogRefusesASymlinkAtItsName) {
  const std::string log = dir + "/w/box.log";
  ASSERT_EQ(::symlink(victim.c_str(), log.c_str()), 0);
  auto fd = open_log(log);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().step, "open_log");
  EXPECT_EQ(fd.error().path, log);
  EXPECT_EQ(fd.error().err, ELOOP) << fd.error().what();
  expect_victim_untouched();
}

TEST_F(SafeFiles, LogRefusesAHardLinkedFile) {
  const std::string log = dir + "/w/box.log";
  ASSERT_EQ(::link(victim.c_str(), log.c_str()), 0);
  auto fd = open_log(log);
  ASSERT_FALSE(fd);
  EXPECT_NE(fd.error().what().find("hard links"), std::string::npos) << fd.error().what();
  expect_victim_untouched();
}

TEST_F(SafeFiles, FifoAtTheLogPathFailsFastWithAClearError) {
  const std::string log = dir + "/w/box.log";
  ASSERT_EQ(::mkfifo(log.c_str(), 0644), 0);
  // Without a reader (a plain open would block for ever) ...
  int code = in_child([&] {
    auto fd = open_log(log);
    if (fd) return 2;
    return fd.error().what().find("not a regular file") != std::string::npos ? 0 : 3;
  });
  EXPECT_EQ(code, 0) << "0: refused as not a regular file, 2: opened, 3: other error, -14: hung";
  // ... and with one (the open itself succeeds: the type check refuses).
  int reader = ::open(log.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto fd = open_log(log);
  ::close(reader);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().path, log);
  EXPECT_NE(fd.error().what().find("not a regular file"), std::string::npos) << fd.error().what();
}

TEST_F(SafeFiles, ReadFileAtRefusesSymlinksAndFifos) {
  const std::string w = dir + "/w";
  auto dir_fd = open_directory(w);
  ASSERT_TRUE(dir_fd) << dir_fd.error().what();
  ASSERT_EQ(::symlink(victim.c_str(), (w + "/link").c_str()), 0);
  ASSERT_EQ(::mkfifo((w + "/fifo").c_str(), 0644), 0);
  spit(w + "/plain", "text", 0644);
  auto link = read_file_at(dir_fd->get(), w, "link");
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().err, ELOOP);
  int code = in_child([&] { return read_file_at(dir_fd->get(), w, "fifo") ? 1 : 0; });
  EXPECT_EQ(code, 0);
  auto plain = read_file_at(dir_fd->get(), w, "plain");
  ASSERT_TRUE(plain) << plain.error().what();
  EXPECT_EQ(*plain, "text");
  auto big = read_file_at(dir_fd->get(), w, "plain", 3);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().err, EFBIG);
}

TEST_F(SafeFiles, OthersCanReplaceNamesInWritableNonStickyDirs) {
  const std::string w = dir + "/w";
  auto check = [&](mode_t mode) {
    EXPECT_EQ(::chmod(w.c_str(), mode), 0);
    auto dir_fd = open_directory(w);
    EXPECT_TRUE(dir_fd);
    return dir_fd && others_can_replace_names(dir_fd->get());
  };
  EXPECT_FALSE(check(0755));
  EXPECT_TRUE(check(0777));
  EXPECT_TRUE(check(0775));
  EXPECT_FALSE(check(01777));
}

}  // namespace
