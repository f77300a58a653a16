// The knot's and lithos_cmd's file logger (runtime.md §12): one line per
// message, `[TS][LEVEL] MSG`, appended with a single write(2) so concurrent
// knots of one sandbox do not interleave inside a line. The descriptor is
// opened once (before pivot_root) and kept.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {

enum class LogLevel { Error = 1, Warn = 2, Info = 3, Debug = 4, Trace = 5 };

// "error", "WARN", "Info", ... (case-insensitive); nullopt when unknown.
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view log_level_name(LogLevel level);  // upper case

// RFC 3339 UTC with seconds: 2026-11-23T19:38:53Z.
std::string rfc3339_now();

class Logger {
 public:
  Logger() = default;
  // Opens (create, append, 0644) `path`; an empty path logs to stderr only
  // when `to_stderr`, or nowhere.
  Result<void> open(const std::string& path);
  void set_level(LogLevel level) { level_ = level; }
  void set_stderr(bool on) { stderr_ = on; }
  LogLevel level() const { return level_; }
  bool enabled(LogLevel level) const { return level <= level_; }

  void log(LogLevel level, std::string_view message) const;
  void error(std::string_view m) const { log(LogLevel::Error, m); }
  void warn(std::string_view m) const { log(LogLevel::Warn, m); }
  void info(std::string_view m) const { log(LogLevel::Info, m); }
  void debug(std::string_view m) const { log(LogLevel::Debug, m); }

 private:
  UniqueFd fd_;
  LogLevel level_ = LogLevel::Warn;
  bool stderr_ = false;
};

// Appends `text` to `fd` with one write(2) (retried on EINTR / short writes).
void write_all(int fd, std::string_view text) noexcept;

}  // namespace lithos::runtime
