// How check_tree reads container configs and finds marks: the one-openat2
// fast path below image-dir must open exactly what the RESOLVE_IN_ROOT route
// opens (symlinks resolved inside the image, `..` clamped at its root), marks
// recorded on demand must point where eager ones did, and a check that keeps
// no plan must report what a check that keeps them reports.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "lithos/policy/check.hpp"

using namespace lithos::policy;
namespace fs = std::filesystem;

namespace {

const char* kContainer =
    "kind: Daemon\n"
    "executable: /bin/true\n"
    "user-id: 1000\n"
    "group-id: 1000\n";

struct TempTree : ::testing::Test {
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lithos-check-read-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root = pattern;
    write("master.yaml",
          "runtime-dir: /run/lithos-test\ndevfs-dir: /dev\ndefault-log-dir: /tmp/lithos-test\n");
    write("sandboxes/app.yaml", "image-dir: " + (root / "images").string() +
                                    "\n"
                                    "allow-users: [1000-2000]\n"
                                    "allow-groups: [1000-2000]\n"
                                    "allow-tcp-ports: [8000-8999]\n");
  }
  void TearDown() override { fs::remove_all(root); }

  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
  void link(const std::string& target, const std::string& rel) {
    fs::create_directories((root / rel).parent_path());
    fs::create_symlink(target, root / rel);
  }
  void processes(const std::string& text) { write("processes/app.yaml", text); }
  std::string entry(const std::string& name, const std::string& image) {
    return name + ":\n  instances: 1\n  image: " + image + "\n  config: /config/app.yaml\n";
  }

  Diagnostics run_check(std::vector<InstancePlan>* plans) {
    Diagnostics diags;
    auto tree = load_tree((root / "master.yaml").string(), {}, diags, nullptr);
    CheckOptions options;
    options.check_devfs = false;
    check_tree(tree, options, diags, nullptr, plans);
    return diags;
  }
  std::string relative(const std::string& file) const {
    if (file.rfind(root.string(), 0) != 0) return file;
    std::string rel = file.substr(root.string().size() + 1);
    // Host configs are named as joined: "./processes/app.yaml".
    return rel.rfind("./", 0) == 0 ? rel.substr(2) : rel;
  }
  // Diagnostics as "file-name-relative-to-root:line:CODE" lines, and plans.
  std::vector<std::string> check(std::vector<InstancePlan>* plans) {
    std::vector<std::string> out;
    const Diagnostics diags = run_check(plans);  // kept: items() refers into it
    for (const auto& d : diags.items())
      out.push_back(relative(d.file) + ":" + std::to_string(d.mark.line) + ":" +
                    std::string(code_id(d.code)));
    return out;
  }
  // The same with line:column and the message.
  std::vector<std::string> check_messages() {
    std::vector<std::string> out;
    const Diagnostics diags = run_check(nullptr);
    for (const auto& d : diags.items())
      out.push_back(relative(d.file) + ":" + std::to_string(d.mark.line) + ":" +
                    std::to_string(d.mark.column) + ":" + std::string(code_id(d.code)) + ": " +
                    d.message);
    return out;
  }

  fs::path root;
};

}  // namespace

TEST_F(TempTree, SymlinksInsideTheImageResolveInsideIt) {
  write("images/plain/config/app.yaml", kContainer);
  // /config is an absolute symlink: it names /etc/lithos of the image, not
  // of the host.
  write("images/linked/etc/lithos/app.yaml", kContainer);
  link("/etc/lithos", "images/linked/config");
  // The image directory itself is a symlink to another image.
  link("plain", "images/alias");
  processes(entry("plain", "plain") + entry("linked", "linked") + entry("alias", "alias"));

  std::vector<InstancePlan> plans;
  EXPECT_TRUE(check(&plans).empty());
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_TRUE(check(nullptr).empty());
}

TEST_F(TempTree, DotDotAndAbsoluteSymlinksCannotLeaveTheImage) {
  // A readable config outside the image that must never be read: it would
  // fail with an unknown key if it were.
  write("outside.yaml", "this-key-is-unknown: 1\n");
  write("images/up/config/.keep", "");
  link("../../../outside.yaml", "images/up/config/app.yaml");
  write("images/abs/config/.keep", "");
  link((root / "outside.yaml").string(), "images/abs/config/app.yaml");
  processes(entry("up", "up") + entry("abs", "abs"));

  for (auto* plans : {static_cast<std::vector<InstancePlan>*>(nullptr),
                      std::make_unique<std::vector<InstancePlan>>().release()}) {
    auto diags = check(plans);
    ASSERT_EQ(diags.size(), 2u) << ::testing::PrintToString(diags);
    for (const auto& d : diags)
      EXPECT_NE(d.find(std::string(code_id(Code::FileUnreadable))), std::string::npos) << d;
    delete plans;
  }
}

TEST_F(TempTree, MarksRecordedOnDemandPointAtTheKey) {
  write("images/bad/config/app.yaml",
        "kind: Daemon\n"
        "executable: /bin/true\n"
        "group-id: 1000\n"
        "user-id: 5000\n");
  processes(entry("bad", "bad"));
  const auto fills_before = schema::MarkTable::demand_fills();
  auto diags = check(nullptr);
  ASSERT_EQ(diags.size(), 1u) << ::testing::PrintToString(diags);
  EXPECT_EQ(diags[0], "images/bad/config/app.yaml:4:" + std::string(code_id(Code::UserId)));
  EXPECT_GT(schema::MarkTable::demand_fills(), fills_before);
}

TEST_F(TempTree, CleanTreeFillsNoMarks) {
  write("images/plain/config/app.yaml", kContainer);
  processes(entry("plain", "plain"));
  const auto fills_before = schema::MarkTable::demand_fills();
  EXPECT_TRUE(check(nullptr).empty());
  std::vector<InstancePlan> plans;
  EXPECT_TRUE(check(&plans).empty());
  EXPECT_EQ(schema::MarkTable::demand_fills(), fills_before);
}

TEST_F(TempTree, ChecksThatKeepNoPlanReportWhatPlanBuildingReports) {
  // The port only exists after substitution; it is outside allow-tcp-ports.
  write("images/port/config/app.yaml",
        "kind: Daemon\n"
        "executable: /bin/true\n"
        "user-id: 1000\n"
        "group-id: 1000\n"
        "tcp-ports:\n"
        "  \"9@{tail}\":\n"
        "    fd: 3\n"
        "variables:\n"
        "  tail: !Name\n");
  processes(entry("port", "port") + "  variables:\n    tail: \"100\"\n");
  std::vector<InstancePlan> plans;
  auto kept = check(&plans);
  auto checked = check(nullptr);
  ASSERT_EQ(kept.size(), 1u) << ::testing::PrintToString(kept);
  EXPECT_EQ(kept[0], "images/port/config/app.yaml:6:" + std::string(code_id(Code::Port)));
  EXPECT_EQ(kept, checked);
  EXPECT_TRUE(plans.empty());
}

namespace {

bool contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& line : lines)
    if (line.find(part) != std::string::npos) return true;
  return false;
}

// Runs `body` in a child process and waits at most `limit` for it: a read
// that blocks (a FIFO opened for reading) must fail the test, not hang it.
// The child's exit status is the body's result (0 = its expectations held).
struct Bounded {
  bool finished = false;
  int status = -1;
};
template <class F>
Bounded run_bounded(std::chrono::milliseconds limit, F body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  Bounded out;
  if (pid < 0) return out;
  // Wait on the child's pidfd with the deadline, not in slices of time.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  pollfd pfd{pidfd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, static_cast<int>(limit.count()));
  } while (ready < 0 && errno == EINTR);
  if (pidfd >= 0) ::close(pidfd);
  if (ready <= 0) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (ready > 0) {
    out.finished = true;
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return out;
}

double thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

// A device node where the container config should be is refused by type
// without ever being opened: 1:3 is /dev/null's numbers (harmless here), but
// in an image it could as well be a watchdog or a tape. inotify sees every
// open of the node; it must see none. Both routes are covered: the one-openat2
// fast path (/config/app.yaml) and RESOLVE_IN_ROOT (through a symlink).
TEST_F(TempTree, DeviceNodeConfigIsRefusedWithoutBeingOpened) {
  write("images/dev/etc/.keep", "");
  const fs::path node = root / "images/dev/etc/app.yaml";
  // The tests run as root (CI too): mknod must work here.
  ASSERT_EQ(::mknod(node.c_str(), S_IFCHR | 0644, ::makedev(1, 3)), 0) << std::strerror(errno);
  link("etc", "images/dev/config");  // symlink: the general route
  write("images/dev/plain/.keep", "");
  ASSERT_EQ(::link(node.c_str(), (root / "images/dev/plain/app.yaml").c_str()), 0);
  processes(
      "fast:\n  image: dev\n  config: /plain/app.yaml\n"
      "routed:\n  image: dev\n  config: /config/app.yaml\n");

  int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  ASSERT_GE(::inotify_add_watch(watch, node.c_str(), IN_OPEN | IN_ACCESS | IN_CLOSE), 0);
  auto diags = check_messages();
  char events[4096];
  ssize_t got = ::read(watch, events, sizeof events);
  const int read_errno = errno;
  ::close(watch);

  ASSERT_EQ(diags.size(), 2u) << ::testing::PrintToString(diags);
  EXPECT_TRUE(contains(diags,
                       "images/dev/plain/app.yaml:0:0:file-unreadable: Error reading file: "
                       "not a regular file (a character device)"))
      << ::testing::PrintToString(diags);
  EXPECT_TRUE(contains(diags,
                       "images/dev/config/app.yaml:0:0:file-unreadable: Error reading "
                       "file: not a regular file (a character device)"))
      << ::testing::PrintToString(diags);
  EXPECT_EQ(got, -1) << "the node saw " << got << " bytes of inotify events (it was opened)";
  EXPECT_EQ(read_errno, EAGAIN);
}

// A FIFO as a container config, as a process config and as a sandbox
// config: refused by type, and nothing blocks on an open for reading (which
// waits for a writer forever).
TEST_F(TempTree, FifoConfigsAreRefusedWithoutBlocking) {
  write("images/fifo/config/.keep", "");
  ASSERT_EQ(::mkfifo((root / "images/fifo/config/app.yaml").c_str(), 0644), 0);
  processes(entry("fifo", "fifo"));
  ASSERT_EQ(::mkfifo((root / "sandboxes/other.yaml").c_str(), 0644), 0);
  ASSERT_EQ(::mkfifo((root / "processes/app2.yaml").c_str(), 0644), 0);
  write("sandboxes/app2.yaml", "image-dir: " + (root / "images").string() +
                                   "\nallow-users: [1000-2000]\nallow-groups: [1000-2000]\n");

  auto result = run_bounded(std::chrono::seconds(10), [&] {
    auto diags = check_messages();
    bool ok = diags.size() == 3 &&
              contains(diags,
                       "images/fifo/config/app.yaml:0:0:file-unreadable: Error reading "
                       "file: not a regular file (a FIFO)") &&
              contains(diags,
                       "sandboxes/other.yaml:0:0:file-unreadable: Error reading file: not "
                       "a regular file (a FIFO)") &&
              contains(diags,
                       "processes/app2.yaml:0:0:file-unreadable: Error reading file: not "
                       "a regular file (a FIFO)");
    if (!ok) std::fprintf(stderr, "%s\n", ::testing::PrintToString(diags).c_str());
    return ok ? 0 : 1;
  });
  ASSERT_TRUE(result.finished) << "the check blocked on a FIFO";
  EXPECT_EQ(result.status, 0);
}

// Config files are capped at 1 MiB (docs/lithos_check.md "Limits"), told by
// fstat before anything is read; a file of exactly the limit is read.
TEST_F(TempTree, OversizedConfigIsRefused) {
  const std::size_t limit = 1u << 20;
  std::string body = std::string(kContainer) + "# ";
  auto padded = [&](std::size_t size) {
    std::string text = body + std::string(size - body.size() - 1, 'x') + "\n";
    return text;
  };
  write("images/big/config/app.yaml", padded(limit + 1));
  write("images/edge/config/app.yaml", padded(limit));
  processes(entry("big", "big") + entry("edge", "edge"));
  auto diags = check_messages();
  ASSERT_EQ(diags.size(), 1u) << ::testing::PrintToString(diags);
  EXPECT_EQ(diags[0].rfind("images/big/config/app.yaml:0:0:file-too-large:", 0), 0u) << diags[0];
}

// The byte-amplifying alias bomb of the security review, as an image's
// container config under the 1 MiB cap: one scalar of ~1000 KiB aliased 200
// times (~200 MiB expanded) fails with yaml-alias, fast.
TEST_F(TempTree, ByteAliasBombInAnImageFailsFast) {
  std::string text =
      "kind: Daemon\nexecutable: /bin/true\nuser-id: 1000\ngroup-id: 1000\n"
      "arguments: [&s \"" +
      std::string(1000 * 1024, 'l') + "\"";
  for (int i = 0; i < 200; ++i) text += ", *s";
  text += "]\n";
  ASSERT_LT(text.size(), 1u << 20);
  write("images/bomb/config/app.yaml", text);
  processes(entry("bomb", "bomb"));
  const double start = thread_cpu_ms();
  auto diags = check(nullptr);
  const double cpu_ms = thread_cpu_ms() - start;
  ASSERT_EQ(diags.size(), 1u) << ::testing::PrintToString(diags);
  EXPECT_EQ(diags[0], "images/bomb/config/app.yaml:5:yaml-alias");
  // Unbounded, decoding alone took seconds; the budget stops it within the
  // parse of the one big scalar. (Thread CPU time: a busy machine must not
  // fail it; generous for sanitizer builds.)
  EXPECT_LT(cpu_ms, 1000);
}

// Process names become path components, cgroup scopes, metric labels and
// log fields: `/`, `..`, spaces and control characters are errors at the
// key (file:line:col), and the entry keeps no plan. Non-ASCII names pass
// (^[\w-]+$ with bytes >= 0x80 as letters).
TEST_F(TempTree, ProcessNamesAreValidated) {
  write("images/plain/config/app.yaml", kContainer);
  processes(entry("a/b", "plain") + entry("..", "plain") + entry("x y", "plain") +
            "\"x\\ny\":\n  instances: 1\n  image: plain\n  config: /config/app.yaml\n" +
            entry("ok_name-2", "plain") + entry("\xc3\xa9t\xc3\xa9", "plain"));
  std::vector<InstancePlan> plans;
  auto all = run_check(&plans);
  // Entries are checked in key order; compare in file order.
  std::stable_sort(
      all.items().begin(), all.items().end(),
      [](const Diagnostic& a, const Diagnostic& b) { return a.mark.line < b.mark.line; });
  std::vector<std::string> diags;
  for (const auto& d : all.items())
    diags.push_back(relative(d.file) + ":" + std::to_string(d.mark.line) + ":" +
                    std::to_string(d.mark.column) + ":" + std::string(code_id(d.code)) + ": " +
                    d.message);
  ASSERT_EQ(diags.size(), 4u) << ::testing::PrintToString(diags);
  EXPECT_EQ(diags[0].rfind("processes/app.yaml:1:1:bad-name: process name \"a/b\"", 0), 0u)
      << diags[0];
  EXPECT_EQ(diags[1].rfind("processes/app.yaml:5:1:bad-name: process name \"..\"", 0), 0u)
      << diags[1];
  EXPECT_EQ(diags[2].rfind("processes/app.yaml:9:1:bad-name: process name \"x y\"", 0), 0u)
      << diags[2];
  // The newline is escaped in the message: one diagnostic, one line.
  EXPECT_EQ(diags[3].rfind("processes/app.yaml:13:1:bad-name: process name \"x\\ny\"", 0), 0u)
      << diags[3];
  EXPECT_EQ(diags[3].find('\n'), std::string::npos);
  // Only the two valid entries give plans.
  ASSERT_EQ(plans.size(), 2u);
}
