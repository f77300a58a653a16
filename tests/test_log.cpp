// The logger's syslog transport (docs/tree.md, "Logging"): the RFC 3164 line, the
// facility numbers, and each fallback — local datagram socket, local stream
// socket, TCP, UDP — received by a real peer the test owns (a socket in a
// temp dir, or an ephemeral port on 127.0.0.1).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "lithos/policy/master.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/log.hpp"

using namespace lithos::runtime;

namespace {

class SyslogTest : public ::testing::Test {
 protected:
  std::string dir;
  std::string socket_path;

  void SetUp() override {
    char tmpl[] = "/tmp/lithos-log-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    socket_path = dir + "/log";
  }
  void TearDown() override {
    ::unlink(socket_path.c_str());
    ::rmdir(dir.c_str());
  }

  UniqueFd unix_listener(int type) const {
    UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    if (type == SOCK_STREAM) {
      EXPECT_EQ(::listen(fd.get(), 4), 0);
    }
    return fd;
  }

  // A socket on 127.0.0.1 with a port the kernel picks; `port` gets it.
  static UniqueFd loopback(int type, bool listening, std::uint16_t& port) {
    UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    if (listening) {
      EXPECT_EQ(::listen(fd.get(), 4), 0);
    }
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    return fd;
  }

  // What arrives on `fd` within 5 s (one read: a datagram, or a stream's
  // first chunk, which holds a whole short line).
  static std::string receive(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return "(nothing arrived)";
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "(read failed)";
  }

  SyslogTarget target(int facility) const {
    SyslogTarget t;
    t.facility = facility;
    t.ident = "lithos-box";
    t.socket_path = socket_path;
    return t;
  }

  static std::string expected_tail(const std::string& message) {
    return " lithos-box[" + std::to_string(::getpid()) + "]: " + message;
  }
};

TEST(SyslogFormat, LineIsRfc3164) {
  std::string line = syslog_line(1, LogLevel::Error, "lithos-box", 42, "it broke");
  EXPECT_TRUE(std::regex_match(
      line, std::regex(R"(<11>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d )"
                       R"(\d\d:\d\d:\d\d lithos-box\[42\]: it broke)")))
      << line;
  // PRI = facility * 8 + severity: warn 4, info 6, debug and trace 7.
  EXPECT_EQ(syslog_line(19, LogLevel::Warn, "x", 1, "m").substr(0, 5), "<156>");
  EXPECT_EQ(syslog_line(19, LogLevel::Info, "x", 1, "m").substr(0, 5), "<158>");
  EXPECT_EQ(syslog_line(0, LogLevel::Debug, "x", 1, "m").substr(0, 3), "<7>");
  EXPECT_EQ(syslog_line(23, LogLevel::Trace, "x", 1, "m").substr(0, 5), "<191>");
}

TEST(SyslogFormat, FacilityCodes) {
  using lithos::policy::syslog_facility_code;
  EXPECT_EQ(syslog_facility_code("kern"), 0);
  EXPECT_EQ(syslog_facility_code("daemon"), 3);
  EXPECT_EQ(syslog_facility_code("LOG_AUTHPRIV"), 10);
  EXPECT_EQ(syslog_facility_code("ftp"), 11);
  EXPECT_EQ(syslog_facility_code("local0"), 16);
  EXPECT_EQ(syslog_facility_code("Local7"), 23);
  EXPECT_EQ(syslog_facility_code("local8"), std::nullopt);
  EXPECT_EQ(syslog_facility_code(""), std::nullopt);
}

TEST_F(SyslogTest, LocalDatagramSocketFirst) {
  auto peer = unix_listener(SOCK_DGRAM);
  Logger log;
  log.set_level(LogLevel::Info);
  ASSERT_TRUE(log.open_syslog(target(16), false));
  EXPECT_EQ(log.transport(), Logger::Transport::UnixDatagram);
  log.debug("below the level: not sent");
  log.info("started");
  std::string got = receive(peer.get());
  EXPECT_EQ(got.substr(0, 5), "<134>") << got;
  EXPECT_TRUE(got.ends_with(expected_tail("started"))) << got;  // no newline in a datagram
}

TEST_F(SyslogTest, LocalStreamSocketWhenNotDatagram) {
  auto listener = unix_listener(SOCK_STREAM);
  Logger log;
  ASSERT_TRUE(log.open_syslog(target(3), false));
  EXPECT_EQ(log.transport(), Logger::Transport::UnixStream);
  UniqueFd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(peer);
  log.error("failed");
  std::string got = receive(peer.get());
  EXPECT_EQ(got.substr(0, 4), "<27>") << got;
  EXPECT_TRUE(got.ends_with(expected_tail("failed") + "\n")) << got;
}

TEST_F(SyslogTest, TcpWhenNoLocalSocket) {
  SyslogTarget t = target(1);
  auto listener = loopback(SOCK_STREAM, true, t.tcp_port);
  Logger log;
  ASSERT_TRUE(log.open_syslog(t, false));
  EXPECT_EQ(log.transport(), Logger::Transport::Tcp);
  UniqueFd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(peer);
  log.warn("over tcp");
  std::string got = receive(peer.get());
  EXPECT_TRUE(got.ends_with(expected_tail("over tcp") + "\n")) << got;
}

TEST_F(SyslogTest, UdpWhenTcpIsRefused) {
  SyslogTarget t = target(1);
  // A bound, non-listening TCP socket holds a port where connect is refused.
  auto refusing = loopback(SOCK_STREAM, false, t.tcp_port);
  auto peer = loopback(SOCK_DGRAM, false, t.udp_port);
  Logger log;
  ASSERT_TRUE(log.open_syslog(t, false));
  EXPECT_EQ(log.transport(), Logger::Transport::Udp);
  log.error("over udp");
  std::string got = receive(peer.get());
  EXPECT_TRUE(got.ends_with(expected_tail("over udp"))) << got;
}

TEST_F(SyslogTest, TreeReconnectsAfterTheDaemonRestarts) {
  auto first = unix_listener(SOCK_DGRAM);
  Logger log;
  ASSERT_TRUE(log.open_syslog(target(1), true));
  log.error("one");
  EXPECT_TRUE(receive(first.get()).ends_with(expected_tail("one")));
  // The daemon restarts: its socket is gone and made anew at the same path.
  first.reset();
  ::unlink(socket_path.c_str());
  auto second = unix_listener(SOCK_DGRAM);
  log.error("two");
  EXPECT_TRUE(receive(second.get()).ends_with(expected_tail("two")));
}

TEST_F(SyslogTest, StderrCopyKeepsTheFileFormat) {
  auto peer = unix_listener(SOCK_DGRAM);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]);
  int saved = ::dup(STDERR_FILENO);
  ASSERT_GE(::dup2(pipe_fds[1], STDERR_FILENO), 0);
  ::close(pipe_fds[1]);
  {
    Logger log;
    log.set_stderr(true);
    ASSERT_TRUE(log.open_syslog(target(1), false));
    log.error("both");
  }
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  EXPECT_TRUE(receive(peer.get()).ends_with(expected_tail("both")));
  std::string copy = receive(read_end.get());
  EXPECT_TRUE(
      std::regex_match(copy, std::regex(R"(\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\]\[ERROR\] both\n)")))
      << copy;
}

// A full disk costs log lines, not silence: the lines the file did not take
// are counted and the next line that fits says how many and why. The disk is
// "full" through RLIMIT_FSIZE (EFBIG), in a child so that the limit and
// SIGXFSZ stay there.
TEST(LogFile, LostLinesAreCountedAndReportedOnceSpaceReturns) {
  char tmpl[] = "/tmp/lithos-log-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/tree.log";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    Logger log;
    log.set_level(LogLevel::Info);
    if (!log.open(path)) ::_exit(10);
    log.info("before");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) ::_exit(11);
    rlimit full{static_cast<rlim_t>(st.st_size), RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &full) != 0) ::_exit(12);
    log.info("lost one");
    log.error("lost two");
    full.rlim_cur = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &full) != 0) ::_exit(13);
    log.info("after");
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("[INFO] before"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("[ERROR] 2 log lines were lost: File too large"), std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find("[INFO] after"), std::string::npos) << lines[2];
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

}  // namespace

namespace {

std::string device_inode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

TEST(JournalStream, OnlyTheStreamItNamesIsTheJournal) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  const std::string mine = device_inode(write_end.get());
  EXPECT_TRUE(is_journal_stream(write_end.get(), mine.c_str()));
  EXPECT_FALSE(is_journal_stream(write_end.get(), nullptr));
  EXPECT_FALSE(is_journal_stream(write_end.get(), "1:2"));
  EXPECT_FALSE(is_journal_stream(write_end.get(), (mine + "x").c_str()));
  EXPECT_FALSE(is_journal_stream(write_end.get(), "garbage"));
  int other[2];
  ASSERT_EQ(::pipe2(other, O_CLOEXEC), 0);
  UniqueFd other_read(other[0]), other_write(other[1]);
  EXPECT_FALSE(is_journal_stream(other_write.get(), mine.c_str()));
}

// stderr swapped for a pipe of ours for the length of a test.
class StderrCapture {
 public:
  StderrCapture() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    read_end_ = UniqueFd(fds[0]);
    saved_ = UniqueFd(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
  }
  ~StderrCapture() { restore(); }
  void restore() {
    if (saved_) ::dup2(saved_.get(), STDERR_FILENO);
    saved_.reset();
  }
  std::string text() {
    restore();  // the only write end is gone: read to the end
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(read_end_.get(), buffer, sizeof buffer)) > 0)
      out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }

 private:
  UniqueFd read_end_, saved_;
};

TEST(JournalStream, LinesToTheJournalCarryTheirPriority) {
  StderrCapture capture;
  ::setenv("JOURNAL_STREAM", device_inode(STDERR_FILENO).c_str(), 1);
  Logger logger;
  logger.set_level(LogLevel::Debug);
  logger.set_stderr(true);
  logger.error("e");
  logger.warn("w");
  logger.info("i");
  logger.debug("d");
  ::unsetenv("JOURNAL_STREAM");
  std::string text = capture.text();
  EXPECT_EQ(text.rfind("<3>[", 0), 0u) << text;
  EXPECT_NE(text.find("][ERROR] e\n"), std::string::npos) << text;
  EXPECT_NE(text.find("<4>["), std::string::npos) << text;
  EXPECT_NE(text.find("<6>["), std::string::npos) << text;
  EXPECT_NE(text.find("<7>["), std::string::npos) << text;
}

TEST(JournalStream, PlainStderrHasNoPriorityPrefix) {
  StderrCapture capture;
  ::setenv("JOURNAL_STREAM", "1:2", 1);  // some other stream
  Logger logger;
  logger.set_stderr(true);
  logger.error("e");
  ::unsetenv("JOURNAL_STREAM");
  std::string text = capture.text();
  EXPECT_EQ(text.rfind("[", 0), 0u) << text;
  EXPECT_EQ(text.find("<3>"), std::string::npos) << text;
}

}  // namespace
