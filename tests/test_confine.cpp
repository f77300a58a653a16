// confine.hpp: the process that parses image-supplied configuration for
// root. Each test forks a child, confines it, and has it report what it
// can still do over a pipe (the child runs no gtest code). Files live in a
// temp dir; the only process signalled is the test's own child.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "lithos/policy/yaml.hpp"
#include "lithos/runtime/confine.hpp"

using namespace lithos::runtime;
namespace fs = std::filesystem;

namespace {

struct Outcome {
  int status = -1;  // raw wait status
  std::map<std::string, std::string> seen;
};

// "field:" of /proc/self/status, trimmed.
std::string status_field(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      auto value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  return "?";
}

// errno of a call that returned -1, "ok" otherwise.
std::string outcome(long rc) {
  return rc < 0 ? std::string(strerrorname_np(errno)) : "ok";
}

class Confine : public ::testing::Test {
 protected:
  std::string dir;

  void SetUp() override {
    char tmpl[] = "/tmp/lithos-confine-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
    std::ofstream(dir + "/secret") << "root only\n";
    ASSERT_EQ(::chmod((dir + "/secret").c_str(), 0600), 0);
  }
  void TearDown() override { fs::remove_all(dir); }

  // Forks; the child confines itself with `options` (keeping the pipe),
  // then `probe` fills key=value pairs that come back over the pipe.
  static Outcome run_confined(ConfineOptions options,
                              const std::function<void(std::map<std::string, std::string>&)>& probe,
                              int extra_fd = -1) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      ::alarm(10);
      options.keep_fds.push_back(fds[1]);
      std::map<std::string, std::string> seen;
      auto confined = confine_config_reader(options);
      seen["confined"] = confined ? "ok" : confined.error().what();
      // Before the probe, whose opens could reuse the number.
      if (extra_fd >= 0) seen["extra_fd"] = outcome(::fcntl(extra_fd, F_GETFD));
      if (confined) probe(seen);
      std::string text;
      for (const auto& [k, v] : seen) text += k + "=" + v + "\n";
      ssize_t n = ::write(fds[1], text.data(), text.size());
      ::_exit(n == static_cast<ssize_t>(text.size()) ? 0 : 1);
    }
    ::close(fds[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    Outcome out;
    ::waitpid(pid, &out.status, 0);
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) out.seen[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }
};

// Sanitizer builds install no filter (confine.cpp): there the calls only the
// filter refuses (socket, ptrace, fork, prctl) are not made -- PTRACE_TRACEME
// would really stop the child -- and what the uid and capabilities refuse
// fails with EACCES instead of the filter's EPERM. Everything else holds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kFiltered = false;
#else
constexpr bool kFiltered = true;
#endif

TEST_F(Confine, ReaderCanReadButNotWriteSignalTraceOrConnect) {
  int extra = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);  // inheritable on purpose
  ASSERT_GE(extra, 0);
  const std::string secret = dir + "/secret";
  auto out = run_confined(
      {},
      [&](auto& seen) {
        seen["CapEff"] = status_field("CapEff");
        seen["CapPrm"] = status_field("CapPrm");
        seen["CapBnd"] = status_field("CapBnd");
        seen["NoNewPrivs"] = status_field("NoNewPrivs");
        seen["Seccomp"] = status_field("Seccomp");
        seen["Uid"] = status_field("Uid");
        seen["Groups"] = status_field("Groups");
        // Reading a root-only file works (CAP_DAC_READ_SEARCH) ...
        int fd = ::open(secret.c_str(), O_RDONLY | O_CLOEXEC);
        char buf[64] = {};
        seen["read_secret"] = fd >= 0 && ::read(fd, buf, sizeof buf - 1) > 0
                                  ? std::string(buf, std::strlen(buf) - 1)
                                  : outcome(fd);
        // ... writing, creating or changing anything does not.
        seen["open_write"] = outcome(::open(secret.c_str(), O_WRONLY | O_CLOEXEC));
        seen["open_create"] =
            outcome(::open((dir + "/new").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
        seen["unlink"] = outcome(::unlink(secret.c_str()));
        seen["mkdir"] = outcome(::mkdir((dir + "/d").c_str(), 0755));
        if (kFiltered) {
          seen["socket"] = outcome(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
          seen["ptrace"] = outcome(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
          pid_t forked = ::fork();
          if (forked == 0) ::_exit(0);
          seen["fork"] = outcome(forked);
          seen["prctl"] = outcome(::prctl(PR_GET_DUMPABLE));
        }
        seen["kill_parent"] = outcome(::kill(::getppid(), 0));
        // Not dumpable: the kernel then gives its /proc entries to root.
        struct stat proc {};
        seen["proc_owner"] =
            ::stat("/proc/self/status", &proc) == 0 ? std::to_string(proc.st_uid) : outcome(-1);
        rlimit cpu{}, as{};
        ::getrlimit(RLIMIT_CPU, &cpu);
        ::getrlimit(RLIMIT_AS, &as);
        seen["cpu"] = std::to_string(cpu.rlim_cur) + "/" + std::to_string(cpu.rlim_max);
        seen["as_mib"] = std::to_string(as.rlim_cur >> 20);
        rlimit more{60, 60};
        seen["raise_cpu"] = outcome(::setrlimit(RLIMIT_CPU, &more));
        // Memory still grows (parsing needs it).
        std::string big(64 << 20, 'x');
        seen["alloc"] = big.size() == (64u << 20) ? "ok" : "short";
      },
      extra);
  ::close(extra);
  ASSERT_TRUE(WIFEXITED(out.status)) << out.status;
  EXPECT_EQ(WEXITSTATUS(out.status), 0);
  auto& s = out.seen;
  EXPECT_EQ(s["confined"], "ok");
  EXPECT_EQ(s["CapEff"], "0000000000000004");  // CAP_DAC_READ_SEARCH only
  EXPECT_EQ(s["CapPrm"], "0000000000000004");
  EXPECT_EQ(s["CapBnd"], "0000000000000004");
  EXPECT_EQ(s["NoNewPrivs"], "1");
  EXPECT_EQ(s["Seccomp"], kFiltered ? "2" : "0");
  EXPECT_EQ(s["Uid"], "65534\t65534\t65534\t65534");
  EXPECT_EQ(s["Groups"], "");
  EXPECT_EQ(s["read_secret"], "root only");  // the report is line-based
  const char* refused = kFiltered ? "EPERM" : "EACCES";
  EXPECT_EQ(s["open_write"], refused);
  EXPECT_EQ(s["open_create"], refused);
  EXPECT_EQ(s["unlink"], refused);
  EXPECT_EQ(s["mkdir"], refused);
  if (kFiltered) {
    EXPECT_EQ(s["socket"], "EPERM");
    EXPECT_EQ(s["ptrace"], "EPERM");
    EXPECT_EQ(s["fork"], "EPERM");
    EXPECT_EQ(s["prctl"], "EPERM");
  }
  EXPECT_EQ(s["kill_parent"], "EPERM");
  EXPECT_EQ(s["proc_owner"], "0");
  EXPECT_EQ(s["cpu"], "30/30");
  EXPECT_EQ(s["raise_cpu"], "EPERM");
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_EQ(s["as_mib"], "512");
#endif
  EXPECT_EQ(s["alloc"], "ok");
  EXPECT_EQ(s["extra_fd"], "EBADF");  // not in keep_fds: closed
}

TEST_F(Confine, WithoutReadSearchNoCapabilityIsLeft) {
  ConfineOptions options;
  options.keep_read_search = false;
  const std::string secret = dir + "/secret";
  auto out = run_confined(options, [&](auto& seen) {
    seen["CapEff"] = status_field("CapEff");
    seen["CapPrm"] = status_field("CapPrm");
    seen["read_secret"] = outcome(::open(secret.c_str(), O_RDONLY | O_CLOEXEC));
  });
  auto& s = out.seen;
  EXPECT_EQ(s["confined"], "ok");
  EXPECT_EQ(s["CapEff"], "0000000000000000");
  EXPECT_EQ(s["CapPrm"], "0000000000000000");
  EXPECT_EQ(s["read_secret"], "EACCES");
}

// A crash of the confined reader reads as the crash it is (abort -> SIGABRT),
// which is what the tree logs; and running past the memory limit fails.
TEST_F(Confine, AbortIsReportedAsSigabrtAndMemoryIsLimited) {
  auto aborted = run_confined({}, [](auto&) { std::abort(); });
  ASSERT_TRUE(WIFSIGNALED(aborted.status)) << aborted.status;
  EXPECT_EQ(WTERMSIG(aborted.status), SIGABRT);
#if !defined(__SANITIZE_ADDRESS__)
  ConfineOptions small;
  small.address_space_bytes = rlim_t{256} << 20;
  auto out = run_confined(small, [](auto& seen) {
    void* p = ::malloc(std::size_t{512} << 20);
    seen["malloc_512mib"] = p ? "ok" : "failed";
    ::free(p);
  });
  EXPECT_EQ(out.seen["confined"], "ok");
  EXPECT_EQ(out.seen["malloc_512mib"], "failed");
#endif
}

// A reader that dies or outlives its time is an error naming how it ended
// and the last file it opened; one that finishes hands its text back.
TEST_F(Confine, RunConfinedReaderReportsTheFileADeadReaderWasReading) {
  const std::string config = dir + "/config.yaml";
  std::ofstream(config) << "key: value\n";
  ASSERT_EQ(::chmod(config.c_str(), 0644), 0);
  auto read_config = [&] {
    lithos::policy::Diagnostics diags;
    return lithos::policy::yaml::read_text(config, diags);
  };

  auto fine = run_confined_reader(
      [&]() -> lithos::Result<std::string, std::string> {
        auto text = read_config();
        if (!text) return lithos::fail(std::string("unreadable"));
        return *text;
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(fine) << fine.error().what();
  EXPECT_EQ(*fine, "key: value\n");

  auto crashed = run_confined_reader(
      [&]() -> lithos::Result<std::string, std::string> {
        (void)read_config();
        __builtin_trap();
      },
      std::chrono::seconds(10));
  ASSERT_FALSE(crashed);
  EXPECT_NE(crashed.error().what().find("was killed by signal"), std::string::npos)
      << crashed.error().what();
  EXPECT_NE(crashed.error().what().find("while reading " + config), std::string::npos)
      << crashed.error().what();

  auto stuck = run_confined_reader(
      [&]() -> lithos::Result<std::string, std::string> {
        (void)read_config();
        for (;;) ::pause();
      },
      std::chrono::milliseconds(300));
  ASSERT_FALSE(stuck);
  EXPECT_NE(stuck.error().what().find("and was killed while reading " + config), std::string::npos)
      << stuck.error().what();

  // Nothing read, nothing named.
  auto silent = run_confined_reader(
      []() -> lithos::Result<std::string, std::string> { ::_exit(3); }, std::chrono::seconds(10));
  ASSERT_FALSE(silent);
  EXPECT_NE(silent.error().what().find("exited with code 3"), std::string::npos)
      << silent.error().what();
  EXPECT_EQ(silent.error().what().find("while reading"), std::string::npos)
      << silent.error().what();
}

}  // namespace
