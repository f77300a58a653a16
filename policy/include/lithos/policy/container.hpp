// Container config, read from inside the image (docs/configs.md), with its
// tagged volumes and variables.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lithos/policy/sandbox.hpp"
#include "lithos/policy/schema.hpp"

namespace lithos::policy {

template <>
struct Schema<ContainerKind> {
  static constexpr std::pair<ContainerKind, std::string_view> names[] = {
      {ContainerKind::Daemon, "Daemon"},
      {ContainerKind::Command, "Command"},
      {ContainerKind::CommandOrDaemon, "CommandOrDaemon"}};
};

// ---- volumes

struct ReadonlyVolume {
  std::string path;
  friend bool operator==(const ReadonlyVolume&, const ReadonlyVolume&) = default;
};
struct PersistentVolume {
  std::string path = "/";
  bool mkdir = false;
  std::uint32_t mode = 0777;
  std::uint32_t user = 0;
  std::uint32_t group = 0;
  friend bool operator==(const PersistentVolume&, const PersistentVolume&) = default;
};
struct StatedirVolume {
  std::string path = "/";
  std::uint32_t mode = 0777;
  std::uint32_t user = 0;
  std::uint32_t group = 0;
  friend bool operator==(const StatedirVolume&, const StatedirVolume&) = default;
};
struct TmpfsVolume {
  std::uint64_t size = 100u << 20;
  std::uint32_t mode = 0777;
  friend bool operator==(const TmpfsVolume&, const TmpfsVolume&) = default;
};
using Volume = std::variant<ReadonlyVolume, PersistentVolume, StatedirVolume, TmpfsVolume>;

namespace schema {
// A non-empty string (`!Readonly ""` is an error).
struct NonEmptyStr : Validated<NonEmptyStr, Code::BadPath> {
  static bool accept(const std::string& s) { return !s.empty(); }
  static std::string complaint(const std::string&) { return "the path must not be empty"; }
  static std::string type_name() { return "non-empty path"; }
};
// Permission bits; decoded as any number is (a leading 0 is decimal).
struct Mode : Numeric<std::uint32_t, 0, 01777> {
  static std::string type_name() { return "mode 0 to 0o1777"; }
};
}  // namespace schema

template <>
struct Schema<ReadonlyVolume> {
  static constexpr std::string_view tag = "!Readonly";
  static constexpr std::string_view doc =
      "Host directory mapped through the sandbox's readonly-paths, mounted read-only.";
  using body = schema::NonEmptyStr;
  static constexpr auto member = &ReadonlyVolume::path;
};
template <>
struct Schema<PersistentVolume> {
  static constexpr std::string_view tag = "!Persistent";
  static constexpr std::string_view doc =
      "Host directory mapped through the sandbox's writable-paths, mounted writable.";
  static constexpr std::string_view name = "!Persistent volume";
  using S = PersistentVolume;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Path>("path", &S::path,
                                      "Directory mapped through the sandbox's writable-paths."),
      schema::defaulted<schema::Bool>("mkdir", &S::mkdir,
                                      "Creates the directory when it is missing."),
      schema::defaulted<schema::Mode>(
          "mode", &S::mode, "Permission bits of a created directory (printed in decimal)."),
      schema::defaulted<schema::Numeric<std::uint32_t>>("user", &S::user,
                                                        "Owner user id of a created directory."),
      schema::defaulted<schema::Numeric<std::uint32_t>>("group", &S::group,
                                                        "Owner group id of a created directory."));
};
template <>
struct Schema<StatedirVolume> {
  static constexpr std::string_view tag = "!Statedir";
  static constexpr std::string_view doc = "Directory inside the instance's state directory.";
  static constexpr std::string_view name = "!Statedir volume";
  using S = StatedirVolume;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Path>("path", &S::path,
                                      "Directory inside the instance's state directory."),
      schema::defaulted<schema::Mode>("mode", &S::mode,
                                      "Permission bits of the directory (printed in decimal)."),
      schema::defaulted<schema::Numeric<std::uint32_t>>("user", &S::user,
                                                        "Owner user id of the directory."),
      schema::defaulted<schema::Numeric<std::uint32_t>>("group", &S::group,
                                                        "Owner group id of the directory."));
};
template <>
struct Schema<TmpfsVolume> {
  static constexpr std::string_view tag = "!Tmpfs";
  static constexpr std::string_view doc = "A tmpfs, in memory.";
  static constexpr std::string_view name = "!Tmpfs volume";
  using S = TmpfsVolume;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Numeric<std::uint64_t>>(
          "size", &S::size, "Size limit of the tmpfs in bytes; 0 is refused."),
      schema::defaulted<schema::Mode>("mode", &S::mode,
                                      "Permission bits of the tmpfs root (printed in decimal)."));
};

// ---- variables

enum class Activation { None, Systemd };

template <>
struct Schema<Activation> {
  // `none` is accepted (the original rejected it).
  static constexpr std::pair<Activation, std::string_view> names[] = {
      {Activation::None, "none"}, {Activation::Systemd, "systemd"}};
};

struct TcpPortVariable {
  Activation activation = Activation::None;
  friend bool operator==(const TcpPortVariable&, const TcpPortVariable&) = default;
};
struct NameVariable {
  friend bool operator==(const NameVariable&, const NameVariable&) = default;
};
struct DottedNameVariable {
  friend bool operator==(const DottedNameVariable&, const DottedNameVariable&) = default;
};
struct ChoiceVariable {
  std::vector<std::string> choices;
  friend bool operator==(const ChoiceVariable&, const ChoiceVariable&) = default;
};
using Variable = std::variant<TcpPortVariable, NameVariable, DottedNameVariable, ChoiceVariable>;

template <>
struct Schema<TcpPortVariable> {
  static constexpr std::string_view tag = "!TcpPort";
  static constexpr std::string_view doc =
      "A TCP port number 0 to 65535, in the sandbox's allow-tcp-ports unless the network is "
      "bridged.";
  static constexpr std::string_view name = "!TcpPort variable";
  static constexpr auto fields = std::make_tuple(schema::defaulted<schema::Enum<Activation>>(
      "activation", &TcpPortVariable::activation,
      "With systemd the process is told about its socket through LISTEN_FDS and LISTEN_FDNAMES."));
};
template <>
struct Schema<NameVariable> {
  static constexpr std::string_view tag = "!Name";
  static constexpr std::string_view doc = "One or more ASCII letters, digits, - or _.";
};
template <>
struct Schema<DottedNameVariable> {
  static constexpr std::string_view tag = "!DottedName";
  static constexpr std::string_view doc =
      "Such names joined by dots, none empty and none starting or ending with -.";
};
template <>
struct Schema<ChoiceVariable> {
  static constexpr std::string_view tag = "!Choice";
  static constexpr std::string_view doc = "One of the listed strings.";
  using body = schema::Seq<schema::Str>;
  static constexpr auto member = &ChoiceVariable::choices;
};

// ---- resolv.conf, hosts, tcp ports

struct ResolvConfSettings {
  std::optional<bool> mount;
  bool copy_from_host = true;
  friend bool operator==(const ResolvConfSettings&, const ResolvConfSettings&) = default;
};
template <>
struct Schema<ResolvConfSettings> {
  static constexpr std::string_view name = "resolv-conf";
  using S = ResolvConfSettings;
  static constexpr auto fields = std::make_tuple(
      schema::optional<schema::Bool>("mount", &S::mount,
                                     "Binds the copy over the image's /etc/resolv.conf; unset: "
                                     "when copying and the image has the file, true: required."),
      schema::defaulted<schema::Bool>(
          "copy_from_host", &S::copy_from_host,
          "Copies the sandbox's resolv-conf file into the instance's state directory."));
};

struct HostsFileSettings {
  std::optional<bool> mount;
  bool copy_from_host = true;
  std::optional<bool> localhost;
  std::optional<bool> public_hostname;
  friend bool operator==(const HostsFileSettings&, const HostsFileSettings&) = default;
};
template <>
struct Schema<HostsFileSettings> {
  static constexpr std::string_view name = "hosts-file";
  using S = HostsFileSettings;
  static constexpr auto fields = std::make_tuple(
      schema::optional<schema::Bool>("mount", &S::mount,
                                     "Binds the file over the image's /etc/hosts; unset: when "
                                     "copying and the image has the file, true: required."),
      schema::defaulted<schema::Bool>("copy_from_host", &S::copy_from_host,
                                      "Starts from the sandbox's hosts-file."),
      schema::optional<schema::Bool>(
          "localhost", &S::localhost,
          "Adds localhost lines (unset: the opposite of copy-from-host)."),
      schema::optional<schema::Bool>("public_hostname", &S::public_hostname,
                                     "Adds a line for the host name and its address (unset: the "
                                     "opposite of copy-from-host)."));
};

struct TcpPortSettings {
  scalars::IpAddress host{};  // 0.0.0.0
  std::uint32_t fd = 0;
  bool reuse_addr = true;
  bool reuse_port = false;
  bool set_non_block = false;
  std::uint32_t listen_backlog = 128;
  bool external = false;
  friend bool operator==(const TcpPortSettings&, const TcpPortSettings&) = default;
};
template <>
struct Schema<TcpPortSettings> {
  static constexpr std::string_view name = "tcp-ports entry";
  using S = TcpPortSettings;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::IpCodec>("host", &S::host, "Address to bind; IPv6 works."),
      schema::required<schema::Numeric<std::uint32_t, 0, 65535>>(
          "fd", &S::fd, "Descriptor number the process gets the socket as; 1 and 2 are refused."),
      schema::defaulted<schema::Bool>("reuse_addr", &S::reuse_addr, "Sets SO_REUSEADDR."),
      schema::defaulted<schema::Bool>("reuse_port", &S::reuse_port,
                                      "Sets SO_REUSEPORT and gives each instance its own socket."),
      schema::defaulted<schema::Bool>("set_non_block", &S::set_non_block,
                                      "Makes the socket non-blocking."),
      schema::defaulted<schema::PlainU32>("listen_backlog", &S::listen_backlog,
                                          "Length of the listen queue."),
      schema::defaulted<schema::Bool>("external", &S::external,
                                      "With a bridged network, the tree opens the socket on the "
                                      "host instead of in the container's network namespace."));
};

// ---- cgroup IO limits of one block device (docs/cgroups.md)

template <>
struct Schema<IoLimits> {
  static constexpr std::string_view name = "io-max entry";
  using S = IoLimits;
  // The kernel's bounds: v1 keeps IOPS in 32 bits (and divides by them), v2
  // reads UINT_MAX as "no limit"; some kernels refuse a limit of 1.
  using Bytes = schema::Numeric<std::uint64_t, 2>;
  using Operations = schema::Numeric<std::uint64_t, 2, 4294967294>;
  static constexpr auto fields = std::make_tuple(
      schema::optional<Bytes>("read_bps", &S::read_bps, "Bytes per second read, at most."),
      schema::optional<Bytes>("write_bps", &S::write_bps, "Bytes per second written, at most."),
      schema::optional<Operations>("read_iops", &S::read_iops,
                                   "Read operations per second, at most."),
      schema::optional<Operations>("write_iops", &S::write_iops,
                                   "Write operations per second, at most."));
};

// ---- the container config

struct ContainerConfig {
  ContainerKind kind = ContainerKind::Daemon;
  std::map<std::string, Variable> variables;
  schema::Ignored metadata;
  std::map<std::string, Volume> volumes;
  std::optional<std::uint32_t> user_id;
  std::optional<std::uint32_t> group_id;
  std::uint64_t memory_limit = 0x7fffffffffffffffULL;
  std::uint64_t fileno_limit = 1024;
  std::uint64_t cpu_shares = 1024;
  std::optional<std::uint64_t> pids_limit;  // new: pids.max / pids.limit
  // New cgroup controls; docs/cgroups.md lists the file each one writes.
  std::optional<std::uint64_t> memory_high;
  std::optional<std::uint64_t> memory_low;
  bool memory_oom_group = false;
  std::optional<std::uint64_t> cpu_quota_us;
  std::uint64_t cpu_period_us = 100000;
  std::optional<std::uint64_t> io_weight;
  std::map<std::string, IoLimits> io_max;  // by "MAJOR:MINOR"
  schema::Milliseconds restart_timeout{1000};
  schema::Milliseconds kill_timeout{5000};
  std::string executable;
  std::vector<std::string> arguments;
  std::map<std::string, std::string> environ;
  std::map<std::string, std::vector<std::string>> secret_environ;
  std::optional<std::string> secret_environ_file;
  std::string workdir = "/";
  ResolvConfSettings resolv_conf;
  HostsFileSettings hosts_file;
  std::vector<IdMapEntry> uid_map;
  std::vector<IdMapEntry> gid_map;
  std::optional<std::string> stdout_stderr_file;
  bool interactive = false;
  bool restart_process_only = false;
  std::vector<std::int32_t> normal_exit_codes;
  std::map<std::string, TcpPortSettings> tcp_ports;
  std::optional<std::string> apparmor_profile;
  std::optional<std::string> selinux_label;

  friend bool operator==(const ContainerConfig&, const ContainerConfig&) = default;
};

template <>
struct Schema<ContainerConfig> {
  static constexpr std::string_view name = "container config";
  using S = ContainerConfig;
  using IdMaps = schema::Seq<schema::Struct<IdMapEntry>>;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Enum<ContainerKind>>(
          "kind", &S::kind, "Which kinds of process entry may use this config."),
      schema::defaulted<schema::Map<schema::Tagged<Variable>>>(
          "variables", &S::variables,
          "Variables the process entry must give values for, each tagged with its type."),
      schema::defaulted<schema::AnyNode>("metadata", &S::metadata,
                                         "Ignored by lithos; free for other tools."),
      schema::defaulted<schema::Map<schema::Tagged<Volume>>>(
          "volumes", &S::volumes, "Mounts made in the container, by absolute mount point."),
      schema::optional<schema::Numeric<std::uint32_t>>(
          "user_id", &S::user_id, "User the process runs as (unset: the sandbox's default-user)."),
      schema::optional<schema::Numeric<std::uint32_t>>(
          "group_id", &S::group_id,
          "Group the process runs as (unset: the sandbox's default-group)."),
      schema::defaulted<schema::Numeric<std::uint64_t>>(
          "memory_limit", &S::memory_limit,
          "Memory limit of the instance's cgroup in bytes; the default means no limit."),
      schema::defaulted<schema::Numeric<std::uint64_t>>("fileno_limit", &S::fileno_limit,
                                                        "Limit on open files (RLIMIT_NOFILE)."),
      schema::defaulted<schema::Numeric<std::uint64_t>>("cpu_shares", &S::cpu_shares,
                                                        "CPU weight of the instance's cgroup."),
      schema::optional<schema::Numeric<std::uint64_t>>(
          "pids_limit", &S::pids_limit,
          "Maximum number of tasks in the instance's cgroup; needs the pids controller."),
      schema::optional<schema::Numeric<std::uint64_t>>(
          "memory_high", &S::memory_high,
          "Bytes above which the instance's memory is reclaimed hard and its tasks slowed "
          "down (cgroup v2 only)."),
      schema::optional<schema::Numeric<std::uint64_t>>(
          "memory_low", &S::memory_low,
          "Bytes of the instance's memory kept from reclaim while the host is short of memory "
          "(v1: the soft limit)."),
      schema::defaulted<schema::Bool>(
          "memory_oom_group", &S::memory_oom_group,
          "When the kernel's OOM killer picks a task of the instance, it kills all of them "
          "(cgroup v2 only)."),
      // 1 ms to 2^44 - 1 µs: the kernel's bounds (above, v2 overflows silently).
      schema::optional<schema::Numeric<std::uint64_t, 1000, 17592186044415>>(
          "cpu_quota_us", &S::cpu_quota_us,
          "Microseconds of CPU time the instance may use per cpu-period-us; twice the period is "
          "two CPUs (unset: no quota)."),
      schema::defaulted<schema::Numeric<std::uint64_t, 1000, 1000000>>(
          "cpu_period_us", &S::cpu_period_us, "Period of cpu-quota-us in microseconds."),
      schema::optional<schema::Numeric<std::uint64_t, 1, 10000>>(
          "io_weight", &S::io_weight,
          "IO weight of the instance, 1 to 10000 (unset: the kernel's 100)."),
      schema::defaulted<schema::Map<schema::Struct<IoLimits>>>(
          "io_max", &S::io_max,
          "IO limits per block device, keyed by its MAJOR:MINOR numbers (lsblk shows them)."),
      schema::defaulted<schema::Seconds<86400>>(
          "restart_timeout", &S::restart_timeout,
          "Minimum time in seconds between two starts of the process."),
      schema::defaulted<schema::Seconds<86400>>(
          "kill_timeout", &S::kill_timeout,
          "Time in seconds between SIGTERM and SIGKILL when the process is stopped."),
      schema::required<schema::Str>("executable", &S::executable,
                                    "Program to run, a path inside the image."),
      schema::defaulted<schema::Seq<schema::Str>>(
          "arguments", &S::arguments, "Arguments of the program; @{NAME} is substituted."),
      schema::defaulted<schema::Map<schema::Str>>(
          "environ", &S::environ,
          "Environment of the program; @{NAME} is substituted in the values."),
      schema::defaulted<schema::Map<schema::OneOrMany>>(
          "secret_environ", &S::secret_environ,
          "Environment variables whose values are v2: secrets made with lithos_crypt, decrypted by "
          "the knot."),
      schema::optional<schema::Path>(
          "secret_environ_file", &S::secret_environ_file,
          "File inside the container with more secret environment variables."),
      schema::defaulted<schema::Path>("workdir", &S::workdir,
                                      "Working directory, an absolute path."),
      schema::defaulted<schema::Struct<ResolvConfSettings>>("resolv_conf", &S::resolv_conf,
                                                            "How /etc/resolv.conf is provided."),
      schema::defaulted<schema::Struct<HostsFileSettings>>("hosts_file", &S::hosts_file,
                                                           "How /etc/hosts is provided."),
      schema::defaulted<IdMaps>("uid_map", &S::uid_map,
                                "User id map of a user namespace for this container, allowed only "
                                "when the sandbox has none."),
      schema::defaulted<IdMaps>("gid_map", &S::gid_map,
                                "Group id map, like uid-map, checked against allow-groups."),
      schema::optional<schema::Path>("stdout_stderr_file", &S::stdout_stderr_file,
                                     "File inside the container for the standard output and error, "
                                     "instead of the sandbox's stdio log."),
      schema::defaulted<schema::Bool>("interactive", &S::interactive,
                                      "Keeps the caller's terminal (commands run with lithos_cmd); "
                                      "otherwise a new session with /dev/null as input."),
      schema::defaulted<schema::Bool>(
          "restart_process_only", &S::restart_process_only,
          "Restarts the process inside the same knot instead of starting a new knot."),
      schema::defaulted<schema::Seq<schema::Numeric<std::int32_t>>>(
          "normal_exit_codes", &S::normal_exit_codes,
          "Exit codes that count as a normal end; empty: 0 for containers that are not Daemon."),
      schema::defaulted<schema::Map<schema::Struct<TcpPortSettings>>>(
          "tcp_ports", &S::tcp_ports,
          "Listening TCP sockets the process gets as open descriptors, by port (which may use a "
          "variable)."),
      schema::optional<schema::Str>("apparmor_profile", &S::apparmor_profile,
                                    "AppArmor profile instead of the sandbox's; only where the "
                                    "sandbox sets allow-lsm-override."),
      schema::optional<schema::Str>("selinux_label", &S::selinux_label,
                                    "SELinux context instead of the sandbox's; only where the "
                                    "sandbox sets allow-lsm-override."));
};

}  // namespace lithos::policy
