// spawn_process: errors before exec reach the caller, whatever descriptor
// numbers the caller asks for; the parent-death signal is armed; a small
// descriptor table leaves the caller's alone.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "lithos/runtime/spawn.hpp"

using namespace lithos::runtime;

namespace {

// The two lowest free descriptor numbers: where the next pipe2 lands.
std::pair<int, int> next_free_pair() {
  int a = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int b = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(a);
  ::close(b);
  return {a, b};
}

}  // namespace

TEST(Spawn, ExecFailureIsReportedEvenWhenATargetIsTheReportPipe) {
  int source = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(source, 0);
  auto [first, second] = next_free_pair();
  SpawnOptions options;
  options.path = "/nonexistent/program";
  options.argv = {options.path};
  // Both numbers the report pipe will get are descriptor targets.
  options.fds = {{source, first}, {source, second}};
  options.parent_death_signal = SIGKILL;
  auto spawned = spawn_process(options);
  ::close(source);
  ASSERT_FALSE(spawned) << "an exec failure was reported as a start";
  EXPECT_NE(spawned.error().what().find("execve"), std::string::npos) << spawned.error().what();
}

TEST(Spawn, DescriptorsArriveAtTheirNumbersAndTheExitStatusIsReturned) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  SpawnOptions options;
  options.path = "/bin/sh";
  options.argv = {"sh", "-c", "echo hello >&7; exit 3"};
  options.fds = {{pipe_fds[1], 7}};
  options.parent_death_signal = SIGKILL;
  auto spawned = spawn_process(options);
  ::close(pipe_fds[1]);
  ASSERT_TRUE(spawned) << spawned.error().what();
  auto status = wait_process(*spawned);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  char buf[16] = {};
  EXPECT_EQ(::read(pipe_fds[0], buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf), "hello\n");
  ::close(pipe_fds[0]);
}

// fd_table_below: the child keeps only descriptors below the limit (a
// descriptor above it, even one without close-on-exec, does not reach the
// program), gets its descriptors at their numbers, and the caller's table is
// untouched (the child's dup2 happened in a table of its own). With a
// descriptor it needs above the limit, the whole table is copied as before.
class SpawnSmallTable : public ::testing::TestWithParam<bool> {};

TEST_P(SpawnSmallTable, OnlyDescriptorsBelowTheLimitReachTheChild) {
  const bool needed_above_limit = GetParam();
  constexpr int kLimit = 64;
  // A descriptor above the limit that a plain copy would hand on.
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  const int high = ::fcntl(null_fd, F_DUPFD, kLimit + 10);
  ::close(null_fd);
  ASSERT_GE(high, kLimit);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  int writer = pipe_fds[1];
  if (needed_above_limit) {
    writer = ::fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, kLimit + 20);
    ::close(pipe_fds[1]);
  }
  // The caller's own descriptor 9, which the child's dup2 replaces in its
  // table only.
  const int zero_fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero_fd, 0);
  ASSERT_EQ(::dup3(zero_fd, 9, O_CLOEXEC), 9);
  ::close(zero_fd);
  SpawnOptions options;
  options.path = "/bin/sh";
  const std::string check = "/proc/self/fd/" + std::to_string(high);
  options.argv = {"sh", "-c",
                  "if [ -e " + check + " ]; then echo inherited >&9; else echo absent >&9; fi"};
  options.fds = {{writer, 9}};
  options.fd_table_below = kLimit;
  auto spawned = spawn_process(options);
  ::close(writer);
  ASSERT_TRUE(spawned) << spawned.error().what();
  ASSERT_TRUE(wait_process(*spawned));
  char buf[32] = {};
  EXPECT_GT(::read(pipe_fds[0], buf, sizeof buf - 1), 0);
  EXPECT_EQ(std::string(buf), needed_above_limit ? "inherited\n" : "absent\n");
  // The caller's table: descriptor 9 is still /dev/zero, `high` still open.
  char target[64] = {};
  EXPECT_GT(::readlink("/proc/self/fd/9", target, sizeof target - 1), 0);
  EXPECT_EQ(std::string(target), "/dev/zero");
  EXPECT_GE(::fcntl(high, F_GETFD), 0);
  ::close(9);
  ::close(high);
  ::close(pipe_fds[0]);
}

INSTANTIATE_TEST_SUITE_P(NeededDescriptorAboveTheLimit, SpawnSmallTable, ::testing::Bool());
