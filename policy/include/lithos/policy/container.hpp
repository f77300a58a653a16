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
struct NonEmptyStr {
  using value_type = std::string;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!Str::decode(n, ctx, out)) return false;
    if (!out.empty()) return true;
    ctx.error(n.mark, Code::BadPath, "the path must not be empty");
    return false;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) { return Str::encode(v, arena); }
};
using Mode = Numeric<std::uint32_t, 0, 01777>;
}  // namespace schema

template <>
struct Schema<ReadonlyVolume> {
  static constexpr std::string_view tag = "!Readonly";
  using body = schema::NonEmptyStr;
  static constexpr auto member = &ReadonlyVolume::path;
};
template <>
struct Schema<PersistentVolume> {
  static constexpr std::string_view tag = "!Persistent";
  static constexpr std::string_view name = "!Persistent volume";
  using S = PersistentVolume;
  static constexpr auto fields =
      std::make_tuple(schema::defaulted<schema::Path>("path", &S::path),
                      schema::defaulted<schema::Bool>("mkdir", &S::mkdir),
                      schema::defaulted<schema::Mode>("mode", &S::mode),
                      schema::defaulted<schema::Numeric<std::uint32_t>>("user", &S::user),
                      schema::defaulted<schema::Numeric<std::uint32_t>>("group", &S::group));
};
template <>
struct Schema<StatedirVolume> {
  static constexpr std::string_view tag = "!Statedir";
  static constexpr std::string_view name = "!Statedir volume";
  using S = StatedirVolume;
  static constexpr auto fields =
      std::make_tuple(schema::defaulted<schema::Path>("path", &S::path),
                      schema::defaulted<schema::Mode>("mode", &S::mode),
                      schema::defaulted<schema::Numeric<std::uint32_t>>("user", &S::user),
                      schema::defaulted<schema::Numeric<std::uint32_t>>("group", &S::group));
};
template <>
struct Schema<TmpfsVolume> {
  static constexpr std::string_view tag = "!Tmpfs";
  static constexpr std::string_view name = "!Tmpfs volume";
  using S = TmpfsVolume;
  static constexpr auto fields =
      std::make_tuple(schema::defaulted<schema::Numeric<std::uint64_t>>("size", &S::size),
                      schema::defaulted<schema::Mode>("mode", &S::mode));
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
  static constexpr std::string_view name = "!TcpPort variable";
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Enum<Activation>>("activation", &TcpPortVariable::activation));
};
template <>
struct Schema<NameVariable> {
  static constexpr std::string_view tag = "!Name";
};
template <>
struct Schema<DottedNameVariable> {
  static constexpr std::string_view tag = "!DottedName";
};
template <>
struct Schema<ChoiceVariable> {
  static constexpr std::string_view tag = "!Choice";
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
  static constexpr auto fields =
      std::make_tuple(schema::optional<schema::Bool>("mount", &S::mount),
                      schema::defaulted<schema::Bool>("copy_from_host", &S::copy_from_host));
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
  static constexpr auto fields =
      std::make_tuple(schema::optional<schema::Bool>("mount", &S::mount),
                      schema::defaulted<schema::Bool>("copy_from_host", &S::copy_from_host),
                      schema::optional<schema::Bool>("localhost", &S::localhost),
                      schema::optional<schema::Bool>("public_hostname", &S::public_hostname));
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
  static constexpr auto fields =
      std::make_tuple(schema::defaulted<schema::IpCodec>("host", &S::host),
                      schema::required<schema::Numeric<std::uint32_t, 0, 65535>>("fd", &S::fd),
                      schema::defaulted<schema::Bool>("reuse_addr", &S::reuse_addr),
                      schema::defaulted<schema::Bool>("reuse_port", &S::reuse_port),
                      schema::defaulted<schema::Bool>("set_non_block", &S::set_non_block),
                      schema::defaulted<schema::PlainU32>("listen_backlog", &S::listen_backlog),
                      schema::defaulted<schema::Bool>("external", &S::external));
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

  friend bool operator==(const ContainerConfig&, const ContainerConfig&) = default;
};

template <>
struct Schema<ContainerConfig> {
  static constexpr std::string_view name = "container config";
  using S = ContainerConfig;
  using IdMaps = schema::Seq<schema::Struct<IdMapEntry>>;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Enum<ContainerKind>>("kind", &S::kind),
      schema::defaulted<schema::Map<schema::Tagged<Variable>>>("variables", &S::variables),
      schema::defaulted<schema::AnyNode>("metadata", &S::metadata),
      schema::defaulted<schema::Map<schema::Tagged<Volume>>>("volumes", &S::volumes),
      schema::optional<schema::Numeric<std::uint32_t>>("user_id", &S::user_id),
      schema::optional<schema::Numeric<std::uint32_t>>("group_id", &S::group_id),
      schema::defaulted<schema::Numeric<std::uint64_t>>("memory_limit", &S::memory_limit),
      schema::defaulted<schema::Numeric<std::uint64_t>>("fileno_limit", &S::fileno_limit),
      schema::defaulted<schema::Numeric<std::uint64_t>>("cpu_shares", &S::cpu_shares),
      schema::optional<schema::Numeric<std::uint64_t>>("pids_limit", &S::pids_limit),
      schema::defaulted<schema::Seconds<86400>>("restart_timeout", &S::restart_timeout),
      schema::defaulted<schema::Seconds<86400>>("kill_timeout", &S::kill_timeout),
      schema::required<schema::Str>("executable", &S::executable),
      schema::defaulted<schema::Seq<schema::Str>>("arguments", &S::arguments),
      schema::defaulted<schema::Map<schema::Str>>("environ", &S::environ),
      schema::defaulted<schema::Map<schema::OneOrMany>>("secret_environ", &S::secret_environ),
      schema::optional<schema::Path>("secret_environ_file", &S::secret_environ_file),
      schema::defaulted<schema::Path>("workdir", &S::workdir),
      schema::defaulted<schema::Struct<ResolvConfSettings>>("resolv_conf", &S::resolv_conf),
      schema::defaulted<schema::Struct<HostsFileSettings>>("hosts_file", &S::hosts_file),
      schema::defaulted<IdMaps>("uid_map", &S::uid_map),
      schema::defaulted<IdMaps>("gid_map", &S::gid_map),
      schema::optional<schema::Path>("stdout_stderr_file", &S::stdout_stderr_file),
      schema::defaulted<schema::Bool>("interactive", &S::interactive),
      schema::defaulted<schema::Bool>("restart_process_only", &S::restart_process_only),
      schema::defaulted<schema::Seq<schema::Numeric<std::int32_t>>>("normal_exit_codes",
                                                                    &S::normal_exit_codes),
      schema::defaulted<schema::Map<schema::Struct<TcpPortSettings>>>("tcp_ports", &S::tcp_ports));
};

}  // namespace lithos::policy
