#include "lithos/runtime/log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "lithos/runtime/safe_files.hpp"

namespace lithos::runtime {

std::optional<LogLevel> parse_log_level(std::string_view text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "error") return LogLevel::Error;
  if (lower == "warn" || lower == "warning") return LogLevel::Warn;
  if (lower == "info") return LogLevel::Info;
  if (lower == "debug") return LogLevel::Debug;
  if (lower == "trace") return LogLevel::Trace;
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return "ERROR";
    case LogLevel::Warn:
      return "WARN";
    case LogLevel::Info:
      return "INFO";
    case LogLevel::Debug:
      return "DEBUG";
    case LogLevel::Trace:
      return "TRACE";
  }
  return "ERROR";
}

std::string rfc3339_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

void write_all(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

namespace {

// write_all that says whether everything was written (errno set if not).
bool write_whole(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string file_line(LogLevel level, std::string_view message) {
  std::string line = "[" + rfc3339_now() + "][" + std::string(log_level_name(level)) + "] ";
  line += message;
  line += '\n';
  return line;
}

}  // namespace

std::string syslog_line(int facility, LogLevel level, std::string_view ident, long pid,
                        std::string_view message) {
  int severity = 7;  // debug, trace
  if (level == LogLevel::Error) severity = 3;
  if (level == LogLevel::Warn) severity = 4;
  if (level == LogLevel::Info) severity = 6;
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char stamp[32];
  std::size_t n = std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
  std::string line = "<" + std::to_string(facility * 8 + severity) + ">";
  line.append(stamp, n);
  line += ' ';
  line += ident;
  line += "[" + std::to_string(pid) + "]: ";
  line += message;
  return line;
}

Result<void> Logger::open(const std::string& path) {
  if (path.empty()) return {};
  auto fd = open_log(path);
  if (!fd) return fail(fd.error());
  fd_ = std::move(*fd);
  transport_ = Transport::File;
  return {};
}

namespace {

bool connect_unix(int fd, const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

bool connect_loopback(int fd, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace

Result<void> Logger::connect_syslog() const {
  const SyslogTarget& t = *syslog_;
  struct Try {
    int domain, type;
    Transport transport;
  };
  for (Try attempt :
       {Try{AF_UNIX, SOCK_DGRAM, Transport::UnixDatagram},
        Try{AF_UNIX, SOCK_STREAM, Transport::UnixStream}, Try{AF_INET, SOCK_STREAM, Transport::Tcp},
        Try{AF_INET, SOCK_DGRAM, Transport::Udp}}) {
    UniqueFd fd(::socket(attempt.domain, attempt.type | SOCK_CLOEXEC, 0));
    if (!fd) return step_error("open_syslog", t.socket_path, errno, "socket");
    bool connected = false;
    if (attempt.domain == AF_UNIX)
      connected = connect_unix(fd.get(), t.socket_path);
    else
      connected =
          connect_loopback(fd.get(), attempt.transport == Transport::Tcp ? t.tcp_port : t.udp_port);
    if (!connected) continue;
    fd_ = std::move(fd);
    transport_ = attempt.transport;
    return {};
  }
  return step_error("open_syslog", "127.0.0.1:" + std::to_string(t.udp_port), errno, "connect");
}

Result<void> Logger::open_syslog(SyslogTarget target, bool reconnect) {
  ::tzset();  // read the zone now: knots log after pivot_root
  // The host pid even in a new pid namespace, while /proc is still the host's.
  char self[32] = {};
  ssize_t n = ::readlink("/proc/self", self, sizeof self - 1);
  syslog_pid_ = n > 0 ? std::strtol(self, nullptr, 10) : static_cast<long>(::getpid());
  if (syslog_pid_ <= 0) syslog_pid_ = ::getpid();
  syslog_ = std::move(target);
  reconnect_ = reconnect;
  return connect_syslog();
}

void Logger::log(LogLevel level, std::string_view message) const {
  if (!enabled(level)) return;
  if (syslog_) {
    send_syslog(level, message);
  } else if (fd_) {
    // A full disk costs lines, not silence: they are counted, and the first
    // line that fits again says how many went missing and why.
    if (lost_lines_ > 0) {
      std::string note =
          file_line(LogLevel::Error, std::to_string(lost_lines_) +
                                         " log lines were lost: " + std::strerror(lost_errno_));
      if (write_whole(fd_.get(), note)) lost_lines_ = 0;
    }
    if (lost_lines_ > 0 || !write_whole(fd_.get(), file_line(level, message))) {
      if (lost_lines_ == 0) lost_errno_ = errno;
      ++lost_lines_;
    }
  }
  if (stderr_)
    write_all(STDERR_FILENO, stderr_journal_
                                 ? std::string(journal_priority(level)) + file_line(level, message)
                                 : file_line(level, message));
}

void Logger::set_stderr(bool on) {
  stderr_ = on;
  stderr_journal_ = on && is_journal_stream(STDERR_FILENO, std::getenv("JOURNAL_STREAM"));
}

bool is_journal_stream(int fd, const char* journal_stream) {
  if (!journal_stream) return false;
  std::uintmax_t device = 0, inode = 0;
  char rest = 0;
  if (std::sscanf(journal_stream, "%ju:%ju%c", &device, &inode, &rest) != 2) return false;
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_dev == device && st.st_ino == inode;
}

std::string_view journal_priority(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return "<3>";
    case LogLevel::Warn:
      return "<4>";
    case LogLevel::Info:
      return "<6>";
    default:
      return "<7>";
  }
}

void Logger::send_syslog(LogLevel level, std::string_view message) const {
  std::string line = syslog_line(syslog_->facility, level, syslog_->ident, syslog_pid_, message);
  for (int attempt = 0; attempt < 2 && fd_; ++attempt) {
    // Stream transports need a frame end; a datagram is one message.
    bool stream = transport_ == Transport::UnixStream || transport_ == Transport::Tcp;
    std::string frame = stream ? line + '\n' : line;
    ssize_t sent = ::send(fd_.get(), frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent == static_cast<ssize_t>(frame.size()) || !reconnect_ || attempt == 1) return;
    // Only a lost peer (a restarted syslog daemon) is worth a new connection.
    if (sent >= 0 ||
        (errno != ECONNREFUSED && errno != ENOTCONN && errno != EPIPE && errno != ECONNRESET))
      return;
    fd_.reset();
    if (!connect_syslog()) return;
  }
}

}  // namespace lithos::runtime
