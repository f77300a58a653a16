// The logger of lithos_tree, lithos_knot and lithos_cmd (docs/tree.md, "Logging").
// File: one line per message, `[TS][LEVEL] MSG`, appended with a single
// write(2) so concurrent knots of one sandbox do not interleave inside a line.
// Syslog (master `syslog-facility`): RFC 3164 `<PRI>Mmm dd hh:mm:ss
// IDENT[PID]: MSG` to the local socket, else TCP, else UDP on 127.0.0.1.
// The descriptor is opened once (before pivot_root) and kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"

namespace lithos::policy {
struct MasterConfig;
}

namespace lithos::runtime {

enum class LogLevel { Error = 1, Warn = 2, Info = 3, Debug = 4, Trace = 5 };

// "error", "WARN", "Info", ... (case-insensitive); nullopt when unknown.
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view log_level_name(LogLevel level);  // upper case

// Whether `fd` is the stream that JOURNAL_STREAM ("DEV:INODE", set by
// systemd for a service whose output goes to the journal) names.
bool is_journal_stream(int fd, const char* journal_stream);
// The journal's priority prefix of a level: "<3>" (error) to "<7>" (debug and trace).
std::string_view journal_priority(LogLevel level);

// RFC 3339 UTC with seconds: 2026-11-23T19:38:53Z.
std::string rfc3339_now();

// Where syslog messages go; the defaults are the original's (docs/tree.md,
// "Logging").
struct SyslogTarget {
  int facility = 1;  // policy::syslog_facility_code
  std::string ident;
  std::string socket_path = "/dev/log";
  std::uint16_t tcp_port = 601;  // on 127.0.0.1, when the socket is absent
  std::uint16_t udp_port = 514;  // on 127.0.0.1, when TCP is refused too
};

// `<PRI>Mmm dd hh:mm:ss IDENT[PID]: MSG` (local time, day padded with a space).
std::string syslog_line(int facility, LogLevel level, std::string_view ident, long pid,
                        std::string_view message);

class Logger {
 public:
  Logger() = default;
  // Opens `path` for appending with open_log (safe_files.hpp: created 0640,
  // no symlink at the name, regular files only); an empty path logs to
  // stderr only when `to_stderr`, or nowhere.
  Result<void> open(const std::string& path);
  // Logs to syslog instead of a file. Only a failure to create a socket is
  // an error: UDP, the last resort, needs no listener to connect. `reconnect`
  // (the tree, which outlives syslog daemon restarts) reconnects once when a
  // send fails; knots never do (after pivot_root the path is the container's).
  Result<void> open_syslog(SyslogTarget target, bool reconnect);
  void set_level(LogLevel level) { level_ = level; }
  // Also to stderr. When stderr is the journal (JOURNAL_STREAM names its
  // device and inode), each line starts with its priority, `<3>` for errors
  // to `<7>` for debug, so `journalctl -p` filters them.
  void set_stderr(bool on);
  LogLevel level() const { return level_; }
  bool enabled(LogLevel level) const { return level <= level_; }

  void log(LogLevel level, std::string_view message) const;
  void error(std::string_view m) const { log(LogLevel::Error, m); }
  void warn(std::string_view m) const { log(LogLevel::Warn, m); }
  void info(std::string_view m) const { log(LogLevel::Info, m); }
  void debug(std::string_view m) const { log(LogLevel::Debug, m); }

  enum class Transport { None, File, UnixDatagram, UnixStream, Tcp, Udp };
  Transport transport() const { return transport_; }
  // The file or socket written to (-1: none), for a child that must keep it.
  int descriptor() const noexcept { return fd_.get(); }

 private:
  Result<void> connect_syslog() const;
  void send_syslog(LogLevel level, std::string_view message) const;

  mutable UniqueFd fd_;
  mutable Transport transport_ = Transport::None;
  std::optional<SyslogTarget> syslog_;
  long syslog_pid_ = 0;
  bool reconnect_ = false;
  LogLevel level_ = LogLevel::Warn;
  bool stderr_ = false;
  bool stderr_journal_ = false;
  // Lines the log file did not take (ENOSPC, EFBIG), reported by the next
  // line that fits.
  mutable std::uint64_t lost_lines_ = 0;
  mutable int lost_errno_ = 0;
};

// Syslog when the master sets `syslog-facility` (ident
// `syslog-app-name`, or `syslog-app-name-SANDBOX` for a knot or command),
// else the log file `file`. An empty `sandbox` is the tree.
Result<void> open_configured_log(Logger& log, const policy::MasterConfig& master,
                                 const std::string& file, std::string_view sandbox);

// Appends `text` to `fd` with one write(2) (retried on EINTR / short writes).
void write_all(int fd, std::string_view text) noexcept;

}  // namespace lithos::runtime
