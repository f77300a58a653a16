// Master config (docs/configs.md).
#pragma once

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/schema.hpp"

namespace lithos::policy {

// syslog facilities accepted by `syslog-facility` (case-insensitive, each
// also with a `log_` prefix).
inline constexpr std::string_view kSyslogFacilities[] = {
    "kern",   "user",   "mail",   "daemon",   "auth",   "syslog", "lpr",
    "news",   "uucp",   "cron",   "authpriv", "ftp",    "local0", "local1",
    "local2", "local3", "local4", "local5",   "local6", "local7"};

inline constexpr std::string_view kLogLevels[] = {"error", "warn", "info", "debug", "trace"};

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The facility number of a `syslog-facility` value (as accepted by the
// decoder: any case, optional `log_` prefix): kern..ftp are 0..11 in the
// order above, local0..local7 are 16..23.
inline std::optional<int> syslog_facility_code(std::string_view text) {
  std::string name = ascii_lower(text);
  if (name.rfind("log_", 0) == 0) name = name.substr(4);
  for (int i = 0; i < static_cast<int>(std::size(kSyslogFacilities)); ++i)
    if (kSyslogFacilities[i] == name) return i < 12 ? i : 16 + (i - 12);
  return std::nullopt;
}

namespace schema {

// An unknown facility is a validation error (the original silently logged to
// files).
struct SyslogFacility : Validated<SyslogFacility, Code::BadEnum> {
  static bool accept(const std::string& s) { return syslog_facility_code(s).has_value(); }
  static std::string complaint(const std::string& s) {
    return "Can't parse syslog facility: " + quote(s);
  }
  static std::string type_name() { return "syslog facility"; }
};

// Log levels are case-insensitive; an unknown level is an error rather than a
// silent `warn`.
struct LogLevel : Validated<LogLevel, Code::BadEnum> {
  static bool accept(const std::string& s) {
    const std::string name = ascii_lower(s);
    return std::find(std::begin(kLogLevels), std::end(kLogLevels), name) != std::end(kLogLevels);
  }
  static std::string complaint(const std::string& s) {
    return "unknown log level " + quote(s) + ", expected one of error, warn, info, debug, trace";
  }
  static std::string type_name() {
    std::string out;
    for (auto level : kLogLevels) out += (out.empty() ? "" : "|") + std::string(level);
    return "one of " + out;
  }
};

}  // namespace schema

struct MasterConfig {
  std::string sandboxes_dir = "./sandboxes";
  std::string processes_dir = "./processes";
  std::string runtime_dir = "/run/lithos";
  std::string state_dir = "state";
  std::string mount_dir = "mnt";
  std::string devfs_dir = "/var/lib/lithos/dev";
  std::string default_log_dir = "/var/log/lithos";
  std::optional<std::string> config_log_dir = "/var/log/lithos/config";
  std::string stdio_log_dir = "/var/log/lithos/stderr";
  std::string log_file = "master.log";
  std::optional<std::string> syslog_facility;
  std::string syslog_app_name = "lithos";
  std::string log_level = "warn";
  std::optional<std::string> cgroup_name = "lithos.slice";
  std::vector<std::string> cgroup_controllers;
  std::optional<std::string> metrics_dir;  // new: Prometheus text file directory

  friend bool operator==(const MasterConfig&, const MasterConfig&) = default;
};

// The hierarchies instances (and the tree itself) join: `cgroup-controllers`,
// or when it is empty the original's default list.
inline std::vector<std::string> effective_cgroup_controllers(const MasterConfig& master) {
  if (!master.cgroup_controllers.empty()) return master.cgroup_controllers;
  return {"name", "cpu", "cpuacct", "memory", "blkio"};
}

template <>
struct Schema<MasterConfig> {
  static constexpr std::string_view name = "master config";
  using S = MasterConfig;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Path>("sandboxes_dir", &S::sandboxes_dir,
                                      "Directory of the sandbox configs, one NAME.yaml per "
                                      "sandbox, relative to the master config's directory."),
      schema::defaulted<schema::Path>(
          "processes_dir", &S::processes_dir,
          "Directory of the process configs, relative to the master config's directory."),
      schema::defaulted<schema::Path>("runtime_dir", &S::runtime_dir,
                                      "Directory of the tree's pid file and lock and of state-dir "
                                      "and mount-dir; must not be a symbolic link."),
      schema::defaulted<schema::Path>(
          "state_dir", &S::state_dir,
          "Directory of the per-instance state directories, relative to runtime-dir."),
      schema::defaulted<schema::Path>(
          "mount_dir", &S::mount_dir,
          "Where each knot mounts its container root, relative to runtime-dir."),
      schema::defaulted<schema::Path>(
          "devfs_dir", &S::devfs_dir,
          "Directory mounted read-only as /dev in every container, made by lithos_mkdev."),
      schema::defaulted<schema::Path>(
          "default_log_dir", &S::default_log_dir,
          "Directory of the tree's log and of the sandboxes' knot logs."),
      schema::optional<schema::Path>("config_log_dir", &S::config_log_dir,
                                     "Directory of the per-sandbox logs of the configurations read "
                                     "(SANDBOX.log); null turns them off."),
      schema::defaulted<schema::Path>(
          "stdio_log_dir", &S::stdio_log_dir,
          "Directory of the containers' standard output and error, one SANDBOX.log per sandbox."),
      schema::defaulted<schema::Path>("log_file", &S::log_file,
                                      "The tree's log file, relative to default-log-dir."),
      schema::optional<schema::SyslogFacility>(
          "syslog_facility", &S::syslog_facility,
          "When set, the tree and the knots log to syslog with this facility (kern, user, daemon, "
          "local0 to local7...) instead of to files."),
      schema::defaulted<schema::Str>("syslog_app_name", &S::syslog_app_name,
                                     "Syslog identifier of the tree; knots and commands append a "
                                     "hyphen and the sandbox name."),
      schema::defaulted<schema::LogLevel>(
          "log_level", &S::log_level,
          "Log level of the tree (any case), also the sandboxes' default."),
      schema::optional<schema::Str>("cgroup_name", &S::cgroup_name,
                                    "Cgroup under which every instance gets its own scope; null "
                                    "turns cgroups and the container limits off."),
      schema::defaulted<schema::Seq<schema::Str>>(
          "cgroup_controllers", &S::cgroup_controllers,
          "Cgroup controllers the instances join; empty means name, cpu, cpuacct, memory and blkio "
          "(add pids for pids-limit)."),
      schema::optional<schema::Path>("metrics_dir", &S::metrics_dir,
                                     "When set, the tree writes its metrics in the Prometheus text "
                                     "format to lithos_tree.prom in this directory."));
};

}  // namespace lithos::policy
