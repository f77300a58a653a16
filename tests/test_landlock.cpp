// Landlock (docs/hardening.md "Landlock"): the plan's LandlockPlan, and the
// ruleset applied in a forked child of this test (no container): writes only
// below the writable directory, TCP bind only to the allowed port, no
// abstract UNIX socket and no signal outside the domain.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "lithos/policy/check.hpp"
#include "lithos/runtime/landlock.hpp"

using namespace lithos::policy;
using namespace lithos::runtime;
namespace fs = std::filesystem;

namespace {

// ---- the sandbox key ------------------------------------------------------------

TEST(LandlockKey, DefaultsToOnAndDecodesAndPrints) {
  Diagnostics diags;
  auto on = decode_text<SandboxCodec>("", "test.yaml", diags);
  ASSERT_TRUE(on);
  EXPECT_TRUE(on->value.landlock);
  auto off = decode_text<SandboxCodec>("landlock: false\n", "test.yaml", diags);
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->value.landlock);
  EXPECT_NE(print<SandboxCodec>(off->value).find("landlock: false"), std::string::npos);
  EXPECT_NE(print<SandboxCodec>(on->value).find("landlock: true"), std::string::npos);
  EXPECT_FALSE(diags.has_errors());
  auto bad = decode_text<SandboxCodec>("landlock: maybe\n", "test.yaml", diags);
  EXPECT_FALSE(bad);
  EXPECT_TRUE(diags.has_errors());
}

// ---- plans ------------------------------------------------------------------

struct ExampleCopy : ::testing::Test {
  void SetUp() override {
    char tmpl[] = "/tmp/lithos-landlock-plan-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    // Configs and images only: scripts/example.sh leaves a device directory
    // (device nodes, links into /proc) in the example, which is not needed here.
    for (const auto& entry : fs::directory_iterator(LITHOS_SOURCE_DIR "/examples/basic")) {
      if (entry.path().filename() == "dev") {
        fs::create_directories(dir + "/dev/pts");  // a devfs needs pts (lithos_mkdev)
        continue;
      }
      fs::copy(entry.path(), dir / entry.path().filename(),
               fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
  }
  void TearDown() override {
    if (::chdir("/") != 0) ADD_FAILURE() << "chdir /";
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  void append(const std::string& file, const std::string& text) {
    std::ofstream out(dir + "/" + file, std::ios::app);
    out << text;
  }
  std::vector<InstancePlan> build() {
    EXPECT_EQ(::chdir(dir.c_str()), 0);
    Diagnostics diags;
    auto tree = load_tree("master.yaml", {}, diags, nullptr);
    std::vector<InstancePlan> plans;
    check_tree(tree, {}, diags, nullptr, &plans);
    EXPECT_FALSE(diags.has_errors());
    return plans;
  }
  static const InstancePlan& find(const std::vector<InstancePlan>& plans, const std::string& name) {
    for (const auto& p : plans)
      if (p.name == name) return p;
    throw std::runtime_error("no plan " + name);
  }
  std::string dir;
};

TEST_F(ExampleCopy, PlanListsWritableVolumesAndDeclaredPorts) {
  auto plans = build();
  const auto& ll = find(plans, "demo/web.0").landlock;
  EXPECT_TRUE(ll.enabled);
  // !Tmpfs /tmp and !Statedir /state; the image itself stays unwritable.
  EXPECT_EQ(ll.writable, (std::vector<std::string>{"/state", "/tmp"}));
  EXPECT_EQ(ll.write_files, (std::vector<std::string>{"/dev", "/proc"}));
  // Not bridged: bind restricted to the !TcpPort variable's value.
  EXPECT_TRUE(ll.restrict_bind);
  EXPECT_EQ(ll.bind_ports, (std::vector<std::uint16_t>{8080}));
  EXPECT_TRUE(ll.scope_abstract_unix);
  EXPECT_TRUE(ll.scope_signals);
  // worker declares no port: it may bind none.
  EXPECT_TRUE(find(plans, "demo/worker.0").landlock.bind_ports.empty());
  EXPECT_TRUE(find(plans, "demo/worker.0").landlock.restrict_bind);
}

TEST_F(ExampleCopy, TcpPortsKeysAreBindPorts) {
  append("images/demo.v1/config/web.yaml", "tcp-ports:\n  \"8001\": {fd: 3}\n");
  auto plans = build();
  // The tcp-ports key and the !TcpPort variable's value, sorted.
  EXPECT_EQ(find(plans, "demo/web.0").landlock.bind_ports,
            (std::vector<std::uint16_t>{8001, 8080}));
}

TEST_F(ExampleCopy, SandboxKeyTurnsItOff) {
  append("sandboxes/demo.yaml", "landlock: false\n");
  auto plans = build();
  ASSERT_FALSE(plans.empty());
  for (const auto& p : plans) {
    EXPECT_FALSE(p.landlock.enabled) << p.name;
    EXPECT_TRUE(p.landlock.writable.empty()) << p.name;
    EXPECT_FALSE(p.landlock.restrict_bind) << p.name;
  }
  auto r = prepare_landlock(find(plans, "demo/web.0").landlock);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->state, LandlockRuleset::State::Disabled);
  EXPECT_FALSE(r->ready());
  EXPECT_NE(r->summary.find("landlock: false"), std::string::npos) << r->summary;
}

TEST_F(ExampleCopy, BridgedSandboxLeavesBindUnrestricted) {
  append("sandboxes/demo.yaml", "bridged-network:\n  bridge: br-test\n  network: 10.9.0.0/24\n");
  std::ofstream(dir + "/processes/demo.yaml")
      << "web:\n  instances: 1\n  image: demo.v1\n  config: /config/web.yaml\n"
         "  ip-addresses: [10.9.0.2]\n  variables: {port: \"8080\", greeting: hello}\n";
  auto plans = build();
  const auto& ll = find(plans, "demo/web.0").landlock;
  EXPECT_TRUE(ll.enabled);
  EXPECT_FALSE(ll.restrict_bind);
  EXPECT_TRUE(ll.bind_ports.empty());
  EXPECT_TRUE(ll.scope_abstract_unix);
}

// ---- rights masks -------------------------------------------------------------

TEST(LandlockRights, MaskedByAbi) {
  using namespace landlock;
  EXPECT_EQ(handled_fs(0), 0u);
  EXPECT_EQ(handled_fs(1) & (kFsRefer | kFsTruncate), 0u);
  EXPECT_EQ(handled_fs(2) & kFsRefer, kFsRefer);
  EXPECT_EQ(handled_fs(2) & kFsTruncate, 0u);
  EXPECT_EQ(handled_fs(3) & kFsTruncate, kFsTruncate);
  // Read and execute are never handled: the image stays readable.
  EXPECT_EQ(handled_fs(99) & (kFsReadFile | kFsReadDir | kFsExecute | kFsIoctlDev), 0u);
  EXPECT_EQ(write_files_rights(2), kFsWriteFile);
  EXPECT_EQ(write_files_rights(6), kFsWriteFile | kFsTruncate);
  EXPECT_EQ(supported_net(3), 0u);
  EXPECT_EQ(supported_net(4), kNetBindTcp | kNetConnectTcp);
  EXPECT_EQ(supported_scopes(5), 0u);
  EXPECT_EQ(supported_scopes(6), kScopeAbstractUnixSocket | kScopeSignal);
}

TEST(LandlockRuleset, OldOrMissingKernelDegrades) {
  LandlockPlan plan;
  plan.enabled = true;
  for (int abi : {0, 1}) {
    auto r = prepare_landlock(plan, abi);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->state, LandlockRuleset::State::Unsupported);
    EXPECT_FALSE(r->ready());
    EXPECT_FALSE(r->summary.empty());
  }
  EXPECT_EQ(apply_landlock(-1), 0);  // not ready: nothing to apply
}

// ---- the ruleset in a child ---------------------------------------------------

int bind_port(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int err = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// A port nobody listens on right now (the kernel's choice, then released).
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return 0;
  ::close(fd);
  return ntohs(a.sin_port);
}

sockaddr_un abstract_address(const std::string& name, socklen_t* len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

int connect_abstract(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  socklen_t len = 0;
  sockaddr_un a = abstract_address(name, &len);
  int err = ::connect(fd, reinterpret_cast<sockaddr*>(&a), len) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

int create_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

int open_file(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// What the restricted child saw: an errno per probe (0: it worked).
struct Probes {
  int applied = -1;
  int create_in_writable = -1;
  int rename_in_writable = -1;  // across directories: REFER
  int create_elsewhere = -1;
  int write_existing_elsewhere = -1;
  int read_elsewhere = -1;
  int write_in_write_files = -1;
  int create_in_write_files = -1;
  int dev_null = -1;
  int bind_allowed = -1;
  int bind_other = -1;
  int connect_abstract = -1;
  int kill_sibling = -1;
  int kill_own_child = -1;
};

struct RulesetInChild : ::testing::Test {
  void SetUp() override {
    abi = landlock_abi();
    char tmpl[] = "/tmp/lithos-landlock-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    for (const char* sub : {"/rw", "/rw/a", "/rw/b", "/ro", "/files"})
      ASSERT_EQ(::mkdir((dir + sub).c_str(), 0755), 0) << sub;
    std::ofstream(dir + "/ro/existing") << "x";
    std::ofstream(dir + "/files/existing") << "x";
    std::ofstream(dir + "/rw/a/moved") << "x";
    allowed_port = free_port();
    other_port = free_port();
    ASSERT_NE(allowed_port, 0);
    ASSERT_NE(other_port, 0);
    if (other_port == allowed_port) other_port = free_port();
    ASSERT_NE(other_port, allowed_port);

    // An abstract socket in the host's network namespace, as a host daemon
    // would have.
    abstract_name = "lithos-landlock-test-" + std::to_string(::getpid());
    listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    socklen_t len = 0;
    sockaddr_un a = abstract_address(abstract_name, &len);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), len), 0) << std::strerror(errno);
    ASSERT_EQ(::listen(listener, 8), 0);

    // A process of the same uid outside the domain; SIGUSR1 is ignored so a
    // signal that gets through does not end it.
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    sibling = ::fork();
    ASSERT_GE(sibling, 0);
    if (sibling == 0) {
      ::signal(SIGUSR1, SIG_IGN);
      char c = 'r';
      (void)!::write(ready[1], &c, 1);
      while (true) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);

    plan.enabled = true;
    plan.writable = {dir + "/rw"};
    plan.write_files = {dir + "/files", "/dev"};
    plan.restrict_bind = true;
    plan.bind_ports = {allowed_port};
    plan.scope_abstract_unix = true;
    plan.scope_signals = true;
  }

  void TearDown() override {
    if (sibling > 0) {
      ::kill(sibling, SIGKILL);
      int st = 0;
      ::waitpid(sibling, &st, 0);
    }
    if (listener >= 0) ::close(listener);
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  // Forks, restricts the child with `ruleset` and runs every probe there.
  Probes run_restricted(const LandlockRuleset& ruleset) {
    Probes out;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return out;
    pid_t pid = ::fork();
    if (pid < 0) return out;
    if (pid == 0) {
      ::close(pipefd[0]);
      Probes p;
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(2);
      p.applied = apply_landlock(ruleset.fd.get());
      p.create_in_writable = create_file(dir + "/rw/new");
      p.rename_in_writable =
          ::rename((dir + "/rw/a/moved").c_str(), (dir + "/rw/b/moved").c_str()) == 0 ? 0 : errno;
      p.create_elsewhere = create_file(dir + "/ro/new");
      p.write_existing_elsewhere = open_file(dir + "/ro/existing", O_WRONLY);
      p.read_elsewhere = open_file(dir + "/ro/existing", O_RDONLY);
      p.write_in_write_files = open_file(dir + "/files/existing", O_WRONLY | O_TRUNC);
      p.create_in_write_files = create_file(dir + "/files/new");
      p.dev_null = open_file("/dev/null", O_WRONLY | O_TRUNC);
      p.bind_allowed = bind_port(allowed_port);
      p.bind_other = bind_port(other_port);
      p.connect_abstract = connect_abstract(abstract_name);
      p.kill_sibling = ::kill(sibling, SIGUSR1) == 0 ? 0 : errno;
      // Inside the domain signals still work (a shell and its jobs).
      pid_t own = ::fork();
      if (own == 0) {
        ::signal(SIGUSR1, SIG_IGN);
        ::_exit(0);
      }
      p.kill_own_child = own < 0 ? errno : ::kill(own, 0) == 0 ? 0 : errno;
      if (own > 0) ::waitpid(own, nullptr, 0);
      (void)!::write(pipefd[1], &p, sizeof p);
      ::_exit(0);
    }
    ::close(pipefd[1]);
    ssize_t n = ::read(pipefd[0], &out, sizeof out);
    ::close(pipefd[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_EQ(n, static_cast<ssize_t>(sizeof out));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    return out;
  }

  int abi = 0;
  std::string dir;
  std::uint16_t allowed_port = 0, other_port = 0;
  std::string abstract_name;
  int listener = -1;
  pid_t sibling = -1;
  LandlockPlan plan;
};

TEST_F(RulesetInChild, KernelHasAbi6) {
  // This host runs 6.18; a lower ABI here means the tests below skip parts.
  EXPECT_GE(abi, 6);
}

TEST_F(RulesetInChild, WritesBindsUnixSocketsAndSignalsAreConfined) {
  if (abi < 6) GTEST_SKIP() << "kernel Landlock ABI " << abi << " < 6";
  // Controls: without Landlock every probe that must fail below works.
  EXPECT_EQ(connect_abstract(abstract_name), 0);
  EXPECT_EQ(::kill(sibling, SIGUSR1), 0);
  EXPECT_EQ(bind_port(other_port), 0);

  auto r = prepare_landlock(plan);
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_TRUE(r->ready()) << r->summary;
  EXPECT_EQ(r->abi, abi);
  EXPECT_TRUE(::fcntl(r->fd.get(), F_GETFD) & FD_CLOEXEC);  // never reaches the container
  EXPECT_EQ(r->handled_net, landlock::kNetBindTcp);
  EXPECT_EQ(r->scoped, landlock::kScopeAbstractUnixSocket | landlock::kScopeSignal);
  EXPECT_NE(r->summary.find(std::to_string(allowed_port)), std::string::npos) << r->summary;

  Probes p = run_restricted(*r);
  EXPECT_EQ(p.applied, 0);
  EXPECT_EQ(p.create_in_writable, 0);
  EXPECT_EQ(p.rename_in_writable, 0);
  EXPECT_EQ(p.create_elsewhere, EACCES);
  EXPECT_EQ(p.write_existing_elsewhere, EACCES);
  EXPECT_EQ(p.read_elsewhere, 0);
  EXPECT_EQ(p.write_in_write_files, 0);
  EXPECT_EQ(p.create_in_write_files, EACCES);
  EXPECT_EQ(p.dev_null, 0);
  EXPECT_EQ(p.bind_allowed, 0);
  EXPECT_EQ(p.bind_other, EACCES);
  EXPECT_EQ(p.connect_abstract, EPERM);
  EXPECT_EQ(p.kill_sibling, EPERM);
  EXPECT_EQ(p.kill_own_child, 0);
  // The sibling is still there (nothing got through to end it).
  EXPECT_EQ(::kill(sibling, 0), 0);
}

TEST_F(RulesetInChild, LowerAbiLeavesOutWhatItCannotEnforce) {
  if (abi < 3) GTEST_SKIP() << "kernel Landlock ABI " << abi << " < 3";
  // As on a 6.2 kernel (ABI 3): files only; bind and scopes untouched.
  auto r = prepare_landlock(plan, 3);
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_TRUE(r->ready()) << r->summary;
  EXPECT_EQ(r->handled_net, 0u);
  EXPECT_EQ(r->scoped, 0u);
  EXPECT_NE(r->summary.find("needs ABI 4"), std::string::npos) << r->summary;
  Probes p = run_restricted(*r);
  EXPECT_EQ(p.applied, 0);
  EXPECT_EQ(p.create_in_writable, 0);
  EXPECT_EQ(p.create_elsewhere, EACCES);
  EXPECT_EQ(p.bind_other, 0);
  EXPECT_EQ(p.connect_abstract, 0);
  EXPECT_EQ(p.kill_sibling, 0);
}

TEST_F(RulesetInChild, BridgedPlanDoesNotHandleBind) {
  if (abi < 4) GTEST_SKIP() << "kernel Landlock ABI " << abi << " < 4";
  plan.restrict_bind = false;
  plan.bind_ports.clear();
  auto r = prepare_landlock(plan);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->handled_net, 0u);
  Probes p = run_restricted(*r);
  EXPECT_EQ(p.bind_other, 0);
  EXPECT_EQ(p.create_elsewhere, EACCES);
}

TEST_F(RulesetInChild, SymlinkedWritablePathIsRefused) {
  if (abi < kLandlockMinAbi) GTEST_SKIP() << "kernel Landlock ABI " << abi;
  // A container replacing its volume's directory by a link to elsewhere
  // must not get that elsewhere writable.
  ASSERT_EQ(::symlink((dir + "/ro").c_str(), (dir + "/rw/link").c_str()), 0);
  plan.writable = {dir + "/rw/link"};
  auto r = prepare_landlock(plan);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ELOOP);
  EXPECT_EQ(r.error().path, dir + "/rw/link");
  // A missing path is an error as well (the knot mounted it: something is wrong).
  plan.writable = {dir + "/missing"};
  auto missing = prepare_landlock(plan);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err, ENOENT);
}

}  // namespace
