// spawn_process: errors before exec reach the caller, whatever descriptor
// numbers the caller asks for; the parent-death signal is armed.
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
