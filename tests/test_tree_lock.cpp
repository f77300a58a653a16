// One tree per master (docs/tree.md, "One tree per master"): the lock a
// killed tree leaves open in a child for a moment (its config reader before
// its first act, a knot between clone and exec) delays the next tree
// instead of refusing it; a live holder is refused at once.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>

#include "../runtime/src/tree_support.hpp"

namespace {

using lithos::runtime::tree_detail::kLockLeftoverWait;
using lithos::runtime::tree_detail::take_tree_lock;
using namespace std::chrono_literals;

class TreeLock : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/lithos-lock-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir = pattern;
    ASSERT_EQ(::pipe2(release, O_CLOEXEC), 0);
  }
  void TearDown() override {
    if (release[1] >= 0) ::close(release[1]);
    ::close(release[0]);
    if (leftover > 0) ::waitpid(leftover, nullptr, 0);
    std::string command = "rm -rf '" + dir + "'";
    EXPECT_EQ(std::system(command.c_str()), 0);
  }

  // A "tree" (a child) takes the lock and starts a process that keeps the
  // lock's description open until `release` is written or closed; the tree
  // exits at once (when `tree_exits`) or stays until then too.
  pid_t start_holder(bool tree_exits) {
    const pid_t tree = ::fork();
    if (tree == 0) {
      ::close(release[1]);  // else this end keeps the pipe from ever closing
      auto lock = take_tree_lock(dir);
      if (!lock) ::_exit(3);
      if (!tree_exits) {
        char byte;
        (void)::read(release[0], &byte, 1);
        ::_exit(0);
      }
      if (::fork() == 0) {  // the child it leaves behind, holding the lock
        char byte;
        (void)::read(release[0], &byte, 1);
        ::_exit(0);
      }
      ::_exit(0);
    }
    return tree;
  }

  void let_go() {
    ::close(release[1]);
    release[1] = -1;
  }

  std::string dir;
  int release[2] = {-1, -1};
  pid_t leftover = -1;
};

TEST_F(TreeLock, ALockLeftInAChildOfAnExitedTreeIsWaitedFor) {
  const pid_t tree = start_holder(true);
  int status = 0;
  ASSERT_EQ(::waitpid(tree, &status, 0), tree);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto taking = std::async(std::launch::async, [&] { return take_tree_lock(dir); });
  // The tree is gone, its child still holds the lock: the next one waits.
  EXPECT_EQ(taking.wait_for(300ms), std::future_status::timeout);
  let_go();
  ASSERT_EQ(taking.wait_for(5s), std::future_status::ready);
  auto lock = taking.get();
  EXPECT_TRUE(lock.ok()) << (lock.ok() ? "" : lock.error().what());
}

TEST_F(TreeLock, ALiveHolderIsRefusedAtOnce) {
  const pid_t tree = start_holder(false);
  leftover = tree;
  // The holder has written its pid once the lock is taken.
  const std::string pid_text = std::to_string(tree) + "\n";
  for (int i = 0; i < 500; ++i) {
    std::FILE* f = std::fopen((dir + "/master.lock").c_str(), "re");
    char text[32] = {};
    if (f) {
      (void)std::fread(text, 1, sizeof text - 1, f);
      std::fclose(f);
    }
    if (pid_text == text) break;
    struct timespec pause {
      0, 10'000'000
    };
    ::nanosleep(&pause, nullptr);
  }
  const auto start = std::chrono::steady_clock::now();
  auto lock = take_tree_lock(dir);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.error().what().find("another lithos_tree runs for this master (pid " +
                                     std::to_string(tree) + ")"),
            std::string::npos)
      << lock.error().what();
  EXPECT_LT(took, kLockLeftoverWait / 2);
  let_go();
}

TEST_F(TreeLock, ALeftoverThatStaysIsRefusedAfterTheWait) {
  const pid_t tree = start_holder(true);
  ASSERT_EQ(::waitpid(tree, nullptr, 0), tree);
  const auto start = std::chrono::steady_clock::now();
  auto lock = take_tree_lock(dir);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.error().what().find("that tree has exited"), std::string::npos)
      << lock.error().what();
  EXPECT_GE(took, kLockLeftoverWait);
  let_go();
}

}  // namespace
