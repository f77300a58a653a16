// What the service manager sees of the tree. The readiness protocol
// (runtime/notify.hpp): the notifier's address rules, and a real tree
// telling a socket of ours that it is ready, reloading (then ready again
// from the new image) and stopping, without handing the socket's name to
// its knots. `lithos_tree --reload` (ExecReload): it waits for the tree's
// answer and fails, with the reason, when the tree refuses.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <random>

#include "lithos/runtime/notify.hpp"
#include "tree_test_support.hpp"

namespace knot_test {
namespace {

using lithos::runtime::ServiceNotifier;
using lithos::runtime::UniqueFd;
using lithos::runtime::without_notify_socket;

// A datagram socket of ours with an abstract name, as systemd makes one
// (nothing to clean up on disk).
class Listener {
 public:
  Listener() {
    std::random_device random;
    name_ = "@lithos-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(random());
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name_.data() + 1, name_.size() - 1);
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    bound_ = fd_ && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), length) == 0;
  }
  bool bound() const { return bound_; }
  const std::string& name() const { return name_; }

  // The next message, or "" when none came within `timeout` (poll: no sleep).
  std::string next(std::chrono::milliseconds timeout) const {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buffer[4096];
    ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }
  // Messages until one contains `needle` (returned), or "" after `timeout`.
  std::string until(const std::string& needle, std::chrono::milliseconds timeout,
                    std::string* skipped = nullptr) const {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      std::string message = next(left);
      if (message.find(needle) != std::string::npos) return message;
      if (skipped) *skipped += message + "|";
    }
    return "";
  }

 private:
  std::string name_;
  UniqueFd fd_;
  bool bound_ = false;
};

TEST(ServiceNotifier, OnlyAbsolutePathsAndAbstractNamesAreAddresses) {
  EXPECT_FALSE(ServiceNotifier::from_environment({}).enabled());
  EXPECT_FALSE(ServiceNotifier::from_environment({"NOTIFY_SOCKET="}).enabled());
  EXPECT_FALSE(ServiceNotifier::from_environment({"NOTIFY_SOCKET=relative/sock"}).enabled());
  EXPECT_FALSE(ServiceNotifier::from_environment({"NOTIFY_SOCKET=@"}).enabled());
  EXPECT_FALSE(
      ServiceNotifier::from_environment({"NOTIFY_SOCKET=/" + std::string(200, 'x')}).enabled());
  EXPECT_TRUE(ServiceNotifier::from_environment({"NOTIFY_SOCKET=/run/systemd/notify"}).enabled());
  EXPECT_TRUE(ServiceNotifier::from_environment({"PATH=/bin", "NOTIFY_SOCKET=@x"}).enabled());
  // Without a manager every send succeeds as a no-op.
  EXPECT_TRUE(ServiceNotifier::from_environment({}).send("READY=1"));
}

TEST(ServiceNotifier, SendsOneDatagramToAnAbstractSocket) {
  Listener listener;
  ASSERT_TRUE(listener.bound());
  auto notifier = ServiceNotifier::from_environment({"NOTIFY_SOCKET=" + listener.name()});
  ASSERT_TRUE(notifier.send("READY=1\nSTATUS=x"));
  EXPECT_EQ(listener.next(5s), "READY=1\nSTATUS=x");
}

TEST(ServiceNotifier, SendsToASocketPath) {
  char dir_template[] = "/tmp/lithos-notify-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/notify";
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  auto notifier = ServiceNotifier::from_environment({"NOTIFY_SOCKET=" + path});
  EXPECT_TRUE(notifier.send("STOPPING=1"));
  char buffer[64] = {};
  EXPECT_EQ(::recv(fd.get(), buffer, sizeof buffer, MSG_DONTWAIT), 10);
  EXPECT_EQ(std::string(buffer), "STOPPING=1");
  ::unlink(path.c_str());
  ::rmdir(dir_template);
  // Nobody listening any more: the send fails, and says so.
  EXPECT_FALSE(notifier.send("READY=1"));
}

TEST(ServiceNotifier, ChildrenGetNoNotifySocket) {
  EXPECT_EQ(without_notify_socket({"A=1", "NOTIFY_SOCKET=@x", "B=2"}),
            (std::vector<std::string>{"A=1", "B=2"}));
}

class NotifyTest : public TreeTest {};

TEST_F(NotifyTest, TheTreeSaysReadyReloadingReadyAndStopping) {
  Listener listener;
  ASSERT_TRUE(listener.bound());
  add_daemon("web", sleeper(), 2);
  start_tree({}, {}, {"NOTIFY_SOCKET=" + listener.name()});

  std::string ready = listener.until("READY=1", 20s);
  ASSERT_NE(ready, "") << diagnostics();
  EXPECT_NE(ready.find("STATUS=supervising 2 instances"), std::string::npos) << ready;
  ASSERT_TRUE(
      wait_until([&] { return knot_map().size() == 2 && containers_running(knot_map()); }, 20s))
      << diagnostics();

  // The knots and their containers never see the service's socket.
  for (const auto& knot : knots()) {
    std::string environ = read_file("/proc/" + std::to_string(knot.pid) + "/environ");
    EXPECT_EQ(environ.find("NOTIFY_SOCKET"), std::string::npos) << knot.name;
  }

  // A reload: RELOADING=1 from the old image, READY=1 from the new one.
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  std::string skipped;
  ASSERT_NE(listener.until("RELOADING=1", 20s, &skipped), "") << skipped << diagnostics();
  ASSERT_NE(listener.until("READY=1", 20s, &skipped), "") << skipped << diagnostics();

  // A shutdown: STOPPING=1 as it begins, once.
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGTERM, nullptr, 0);
  ASSERT_NE(listener.until("STOPPING=1", 20s, &skipped), "") << skipped << diagnostics();
  auto status = wait_for(tree->process, 30s);
  ASSERT_TRUE(status && WIFEXITED(*status)) << diagnostics();
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_EQ(listener.next(100ms), "") << "nothing after STOPPING=1";
}

class ReloadTest : public TreeTest {
 protected:
  struct Answer {
    int status = -1;
    std::string out, err;
  };
  Answer reload() {
    Answer answer;
    answer.status = run_shell(bin("lithos_tree") + " -C " + master_path() + " --reload >" + dir +
                              "/reload.out 2>" + dir + "/reload.err");
    answer.out = read_file(dir + "/reload.out");
    answer.err = read_file(dir + "/reload.err");
    return answer;
  }
};

TEST_F(ReloadTest, ReloadReturnsOnceTheNewImageSupervises) {
  add_daemon("web", sleeper(), 1);
  start_tree();
  ASSERT_TRUE(log_shows("lithos_tree started")) << diagnostics();
  ASSERT_TRUE(wait_until([&] { return knot_map().size() == 1; }, 20s)) << diagnostics();
  const auto before = knot_map();

  Answer answer = reload();
  EXPECT_EQ(answer.status, 0) << answer.err << diagnostics();
  EXPECT_NE(answer.out.find("reloaded, 1 instances configured"), std::string::npos) << answer.out;
  // Answered by the new image: it has logged its start already.
  EXPECT_EQ(count(tree_log(), "lithos_tree started"), 2u) << diagnostics();
  EXPECT_EQ(knot_map(), before) << "a reload restarts nothing that did not change";
}

TEST_F(ReloadTest, ARefusedReloadFailsWithTheTreesReason) {
  add_daemon("web", sleeper(), 1);
  start_tree();
  ASSERT_TRUE(log_shows("lithos_tree started")) << diagnostics();
  // A devfs that is gone: the tree refuses to re-exec (reload_blocker).
  std::string master = read_file(master_path());
  const std::string devfs = "devfs-dir: " + base + "/dev\n";
  ASSERT_NE(master.find(devfs), std::string::npos);
  master.replace(master.find(devfs), devfs.size(), "devfs-dir: " + dir + "/no-such-devfs\n");
  write_file(master_path(), master);

  Answer answer = reload();
  EXPECT_EQ(answer.status, 1) << answer.out;
  EXPECT_NE(answer.err.find("refused: devfs dir " + dir + "/no-such-devfs is missing"),
            std::string::npos)
      << answer.err;
  EXPECT_EQ(count(tree_log(), "lithos_tree started"), 1u) << "the running image stays";
  EXPECT_TRUE(tree->process.pidfd && !wait_for(tree->process, 0ms)) << "the tree still runs";
}

TEST_F(ReloadTest, WithoutATreeThereIsNothingToReload) {
  ::mkdir((dir + "/run").c_str(), 0755);
  Answer answer = reload();
  EXPECT_EQ(answer.status, 1);
  EXPECT_NE(answer.err.find("no lithos_tree runs for this master"), std::string::npos)
      << answer.err;
}

}  // namespace
}  // namespace knot_test
