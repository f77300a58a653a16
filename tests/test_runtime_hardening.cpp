// The hardening steps for real: a forked child drops capabilities, sets
// no_new_privs and loads the compiled seccomp filter, then the parent reads
// /proc/<child>/status and the child reports what the kernel let it do.
// Runs as root (CI does); every wait has a deadline (poll on a pipe/pidfd).
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "lithos/policy/hardening.hpp"
#include "lithos/runtime/capabilities.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/seccomp.hpp"

using namespace lithos::runtime;

namespace {

constexpr int kDeadlineMs = 10000;

struct Pipe {
  UniqueFd read, write;
};
Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads exactly sizeof(T) bytes, waiting at most the deadline. False on EOF,
// error or timeout.
template <class T>
bool read_struct(int fd, T& out) {
  auto* bytes = reinterpret_cast<char*>(&out);
  std::size_t done = 0;
  while (done < sizeof(T)) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, kDeadlineMs);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t n = ::read(fd, bytes + done, sizeof(T) - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

template <class T>
void write_struct(int fd, const T& value) {
  const auto* bytes = reinterpret_cast<const char*>(&value);
  std::size_t done = 0;
  while (done < sizeof(T)) {
    ssize_t n = ::write(fd, bytes + done, sizeof(T) - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// Reads everything until EOF (deadline per read).
std::string read_until_eof(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kDeadlineMs) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Waits for `pid` to exit (pidfd + poll with a deadline); kills it (by pid,
// it is ours) if the deadline passes. Returns the wait status, or -1.
int reap(pid_t pid) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, kDeadlineMs) <= 0) ::kill(pid, SIGKILL);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

std::map<std::string, std::string> read_status(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = value;
  }
  return out;
}

std::uint64_t hex(const std::string& text) {
  return std::strtoull(text.c_str(), nullptr, 16);
}

// What the hardened child reports.
struct Ready {
  ChildStatus status;  // first failing hardening call, if any
};
struct Attempts {
  int mount = -1, unshare = -1, keyctl = -1, ptrace = -1, clone_newuser = -1, clone3 = -1;
  int fork = -1, thread = -1, bind_low = -1;
};

struct CloneArgs {  // struct clone_args, CLONE_ARGS_SIZE_VER0
  std::uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

void* thread_body(void*) {
  return nullptr;
}

int errno_of(long rc) {
  return rc == -1 ? errno : 0;
}

// Runs in the child after hardening; every call is harmless if it succeeds:
// the tmpfs goes on a fresh directory the parent unmounts, namespaces are
// the child's own, clone children exit at once, the ptrace victim is ours.
Attempts attempt_everything(const std::string& mount_dir, pid_t victim) {
  Attempts a;
  a.mount = errno_of(
      ::mount("lithos-test", mount_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64k"));
  a.unshare = errno_of(::unshare(CLONE_NEWNS));
  a.keyctl = errno_of(::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  long traced = ::ptrace(PTRACE_ATTACH, victim, nullptr, nullptr);
  a.ptrace = errno_of(traced);
  if (traced == 0) ::ptrace(PTRACE_DETACH, victim, nullptr, nullptr);

  long c = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (c == 0) ::_exit(0);
  a.clone_newuser = errno_of(c);
  if (c > 0) ::waitpid(static_cast<pid_t>(c), nullptr, 0);

  CloneArgs args{};
  args.exit_signal = SIGCHLD;
  long c3 = ::syscall(SYS_clone3, &args, sizeof args);
  if (c3 == 0) ::_exit(0);
  a.clone3 = errno_of(c3);
  if (c3 > 0) ::waitpid(static_cast<pid_t>(c3), nullptr, 0);

  pid_t f = ::fork();
  if (f == 0) ::_exit(0);
  a.fork = f < 0 ? errno : 0;
  if (f > 0) ::waitpid(f, nullptr, 0);

  pthread_t t;
  a.thread = ::pthread_create(&t, nullptr, thread_body, nullptr);
  if (a.thread == 0) ::pthread_join(t, nullptr);

  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(1);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.bind_low = errno_of(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  ::close(s);
  return a;
}

struct Hardening {
  bool drop_caps = true;
  bool nnp = true;
  bool seccomp = true;
};

// The launcher's order: capabilities, no_new_privs, seccomp (last).
ChildStatus harden(const Hardening& h, const CapabilitySet& caps, const SeccompProgram& program) {
  if (h.drop_caps) {
    auto s = drop_capabilities(caps);
    if (!s.ok()) return s;
  }
  if (h.nnp) {
    auto s = set_no_new_privs();
    if (!s.ok()) return s;
  }
  if (h.seccomp) {
    auto prog = program.fprog();
    if (int err = load_seccomp(prog)) return {"load_seccomp", err, -1};
  }
  return {};
}

struct Outcome {
  bool ready = false;
  ChildStatus status;
  std::map<std::string, std::string> proc_status;  // read while the child waited
  Attempts attempts;
  bool attempts_read = false;
  bool mounted = false;
  int wait_status = -1;
};

// Forks a victim (for ptrace) and the child under test; returns what happened.
Outcome run_child(const Hardening& h, const CapabilitySet& caps, const SeccompProgram& program) {
  Outcome out;
  char tmpl[] = "/tmp/lithos-hardening.XXXXXX";
  std::string dir = ::mkdtemp(tmpl) ? tmpl : "";
  EXPECT_FALSE(dir.empty());

  Pipe victim_pipe = make_pipe();
  pid_t victim = ::fork();
  if (victim == 0) {
    char c;
    victim_pipe.write.reset();
    while (::read(victim_pipe.read.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  victim_pipe.read.reset();

  Pipe report = make_pipe();
  Pipe go = make_pipe();
  pid_t pid = ::fork();
  if (pid == 0) {
    report.read.reset();
    go.write.reset();
    Ready ready{harden(h, caps, program)};
    write_struct(report.write.get(), ready);
    if (!ready.status.ok()) ::_exit(3);
    char c;
    if (::read(go.read.get(), &c, 1) != 1) ::_exit(4);
    write_struct(report.write.get(), attempt_everything(dir, victim));
    ::_exit(0);
  }
  report.write.reset();
  go.read.reset();

  Ready ready;
  out.ready = read_struct(report.read.get(), ready);
  out.status = ready.status;
  if (out.ready && ready.status.ok()) {
    out.proc_status = read_status("/proc/" + std::to_string(pid) + "/status");
    char c = 'g';
    EXPECT_EQ(::write(go.write.get(), &c, 1), 1);
    out.attempts_read = read_struct(report.read.get(), out.attempts);
  }
  go.write.reset();
  out.wait_status = reap(pid);

  victim_pipe.write.reset();  // lets the victim exit
  if (reap(victim) < 0) ADD_FAILURE() << "victim not reaped";

  if (out.attempts_read && out.attempts.mount == 0) {
    out.mounted = true;
    ::umount2(dir.c_str(), MNT_DETACH);
  }
  if (!dir.empty()) {
    EXPECT_EQ(::rmdir(dir.c_str()), 0) << dir;
  }
  return out;
}

SeccompProgram default_program() {
  lithos::policy::SeccompPlan plan;
  plan.denied = lithos::policy::denied_syscalls(lithos::policy::SeccompPolicy{});
  auto program = compile_seccomp(plan);
  EXPECT_TRUE(program.ok()) << (program.ok() ? "" : program.error().what());
  return program.ok() ? std::move(program.value()) : SeccompProgram{};
}

CapabilitySet caps_of(std::vector<std::string> names) {
  auto caps = resolve_capabilities(names);
  EXPECT_TRUE(caps.ok()) << (caps.ok() ? "" : caps.error().what());
  return caps.ok() ? caps.value() : CapabilitySet{};
}

std::string describe(const ChildStatus& s) {
  return std::string(s.op ? s.op : "?") + ": " + std::strerror(s.err) + " (arg " +
         std::to_string(s.arg) + ")";
}

class Hardened : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CI runs these as root)";
  }
};

}  // namespace

TEST_F(Hardened, ResolveCapabilities) {
  auto caps = resolve_capabilities({"CAP_NET_BIND_SERVICE", "cap_chown"});
  ASSERT_TRUE(caps.ok()) << caps.error().what();
  EXPECT_EQ(caps->kept, (1ULL << 10) | (1ULL << 0));
  EXPECT_TRUE(caps->has(10));
  EXPECT_FALSE(caps->has(21));
  std::ifstream last("/proc/sys/kernel/cap_last_cap");
  int expected = 0;
  ASSERT_TRUE(last >> expected);
  EXPECT_EQ(caps->last_cap, expected);
  EXPECT_FALSE(resolve_capabilities({"CAP_NO_SUCH_THING"}).ok());
}

TEST_F(Hardened, KeepingNothing) {
  auto out = run_child({}, caps_of({}), default_program());
  ASSERT_TRUE(out.ready) << "child did not report";
  ASSERT_TRUE(out.status.ok()) << describe(out.status);
  auto& st = out.proc_status;
  EXPECT_EQ(hex(st["CapInh"]), 0u);
  EXPECT_EQ(hex(st["CapPrm"]), 0u);
  EXPECT_EQ(hex(st["CapEff"]), 0u);
  EXPECT_EQ(hex(st["CapBnd"]), 0u);
  EXPECT_EQ(hex(st["CapAmb"]), 0u);
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");

  ASSERT_TRUE(out.attempts_read);
  const auto& a = out.attempts;
  EXPECT_EQ(a.mount, EPERM);
  EXPECT_FALSE(out.mounted);
  EXPECT_EQ(a.unshare, EPERM);
  EXPECT_EQ(a.keyctl, EPERM);
  EXPECT_EQ(a.ptrace, EPERM);
  EXPECT_EQ(a.clone_newuser, EPERM);
  EXPECT_EQ(a.clone3, ENOSYS);
  // Ordinary process and thread creation still work (clone without
  // namespace flags; pthread_create falls back from clone3 to clone).
  EXPECT_EQ(a.fork, 0);
  EXPECT_EQ(a.thread, 0);
  EXPECT_EQ(a.bind_low, EACCES);  // no CAP_NET_BIND_SERVICE
  EXPECT_TRUE(WIFEXITED(out.wait_status) && WEXITSTATUS(out.wait_status) == 0) << out.wait_status;
}

TEST_F(Hardened, KeepingNetBindService) {
  auto out = run_child({}, caps_of({"CAP_NET_BIND_SERVICE"}), default_program());
  ASSERT_TRUE(out.ready);
  ASSERT_TRUE(out.status.ok()) << describe(out.status);
  auto& st = out.proc_status;
  const std::uint64_t bit = 1ULL << 10;
  EXPECT_EQ(hex(st["CapInh"]), bit);
  EXPECT_EQ(hex(st["CapPrm"]), bit);
  EXPECT_EQ(hex(st["CapEff"]), bit);
  EXPECT_EQ(hex(st["CapBnd"]), bit);
  EXPECT_EQ(hex(st["CapAmb"]), bit);
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  ASSERT_TRUE(out.attempts_read);
  EXPECT_NE(out.attempts.bind_low, EACCES);  // 0, or EADDRINUSE if port 1 is taken
  EXPECT_EQ(out.attempts.mount, EPERM);
  EXPECT_EQ(out.attempts.clone_newuser, EPERM);
}

// With every capability still held (root), only the filter stands between
// the child and mount/unshare/keyctl: proves the EPERMs come from seccomp.
TEST_F(Hardened, SeccompAloneDeniesAsRoot) {
  Hardening h;
  h.drop_caps = false;
  auto out = run_child(h, caps_of({}), default_program());
  ASSERT_TRUE(out.ready);
  ASSERT_TRUE(out.status.ok()) << describe(out.status);
  EXPECT_NE(hex(out.proc_status["CapEff"]), 0u);
  ASSERT_TRUE(out.attempts_read);
  EXPECT_EQ(out.attempts.mount, EPERM);
  EXPECT_FALSE(out.mounted);
  EXPECT_EQ(out.attempts.unshare, EPERM);
  EXPECT_EQ(out.attempts.keyctl, EPERM);
  EXPECT_EQ(out.attempts.clone_newuser, EPERM);
  EXPECT_EQ(out.attempts.clone3, ENOSYS);
  EXPECT_EQ(out.attempts.fork, 0);
  EXPECT_EQ(out.attempts.bind_low, 0);  // root: port 1 binds (nothing listens on it)
}

// The control: nothing loaded, root may do all of it. Shows the kernel has
// the features (otherwise the tests above prove nothing).
TEST_F(Hardened, ControlWithoutHardening) {
  Hardening h{false, false, false};
  auto out = run_child(h, caps_of({}), SeccompProgram{});
  ASSERT_TRUE(out.ready);
  ASSERT_TRUE(out.attempts_read);
  EXPECT_EQ(out.proc_status["Seccomp"], "0");
  EXPECT_EQ(out.attempts.mount, 0);
  EXPECT_TRUE(out.mounted);
  EXPECT_EQ(out.attempts.unshare, 0);
  EXPECT_NE(out.attempts.keyctl, EPERM);
  EXPECT_EQ(out.attempts.clone3, 0);
  EXPECT_EQ(out.attempts.ptrace, 0);
}

// `allow: [unshare]` takes unshare out of the list, and with it the clone
// namespace rule: root can then create namespaces under the filter.
TEST_F(Hardened, AllowingUnshareLiftsTheNamespaceRules) {
  lithos::policy::SeccompPolicy policy;
  policy.allow = {"unshare"};
  lithos::policy::SeccompPlan plan;
  plan.denied = lithos::policy::denied_syscalls(policy);
  auto program = compile_seccomp(plan);
  ASSERT_TRUE(program.ok());
  EXPECT_FALSE(program->namespace_rules);
  Hardening h;
  h.drop_caps = false;
  auto out = run_child(h, caps_of({}), program.value());
  ASSERT_TRUE(out.attempts_read);
  EXPECT_EQ(out.attempts.unshare, 0);
  EXPECT_EQ(out.attempts.clone_newuser, 0);
  EXPECT_EQ(out.attempts.clone3, 0);
  EXPECT_EQ(out.attempts.mount, EPERM);  // still denied
}

// Kept capabilities survive setuid to a non-root uid and exec through the
// ambient set; dropped ones are gone for good.
TEST_F(Hardened, KeptCapabilitiesSurviveExecAsNonRoot) {
  for (bool keep : {true, false}) {
    SCOPED_TRACE(keep ? "keeping CAP_NET_BIND_SERVICE" : "keeping nothing");
    auto caps = caps_of(keep ? std::vector<std::string>{"CAP_NET_BIND_SERVICE"}
                             : std::vector<std::string>{});
    auto program = default_program();
    Pipe out = make_pipe();
    Pipe err = make_pipe();
    pid_t pid = ::fork();
    if (pid == 0) {
      out.read.reset();
      err.read.reset();
      auto fail = [&](ChildStatus s) {
        write_struct(err.write.get(), s);
        ::_exit(3);
      };
      if (auto s = keep_capabilities_across_setuid(); !s.ok()) fail(s);
      if (::setgroups(0, nullptr) != 0) fail({"setgroups", errno, -1});
      if (::setgid(65534) != 0) fail({"setgid", errno, -1});
      if (::setuid(65534) != 0) fail({"setuid", errno, -1});
      if (auto s = harden({}, caps, program); !s.ok()) fail(s);
      if (::dup2(out.write.get(), 1) < 0) fail({"dup2", errno, -1});
      const char* argv[] = {"cat", "/proc/self/status", nullptr};
      const char* envp[] = {nullptr};
      ::execve("/bin/cat", const_cast<char* const*>(argv), const_cast<char* const*>(envp));
      fail({"execve", errno, -1});
    }
    out.write.reset();
    err.write.reset();
    std::string text = read_until_eof(out.read.get());
    ChildStatus failure;
    bool failed = read_struct(err.read.get(), failure);
    int status = reap(pid);
    ASSERT_FALSE(failed) << describe(failure);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

    std::map<std::string, std::string> st;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      st[line.substr(0, colon)] = value;
    }
    const std::uint64_t expected = keep ? 1ULL << 10 : 0;
    EXPECT_EQ(st["Uid"].substr(0, 5), "65534");
    EXPECT_EQ(hex(st["CapEff"]), expected);
    EXPECT_EQ(hex(st["CapPrm"]), expected);
    EXPECT_EQ(hex(st["CapAmb"]), expected);
    EXPECT_EQ(hex(st["CapInh"]), expected);
    EXPECT_EQ(hex(st["CapBnd"]), expected);
    EXPECT_EQ(st["NoNewPrivs"], "1");
    EXPECT_EQ(st["Seccomp"], "2");
  }
}
