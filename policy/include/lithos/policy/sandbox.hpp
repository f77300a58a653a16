// Sandbox config (docs/configs.md) plus the hardening keys new in this project
// (docs/hardening.md): `seccomp`, `capabilities` and `landlock`.
#pragma once

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/master.hpp"
#include "lithos/policy/names.hpp"
#include "lithos/policy/schema.hpp"

namespace lithos::policy {

template <>
struct Schema<IdMapEntry> {
  static constexpr std::string_view name = "id map entry";
  using S = IdMapEntry;
  static constexpr auto fields = std::make_tuple(
      schema::required<schema::Numeric<std::uint32_t>>(
          "inside", &S::inside, "First id of the range inside the user namespace."),
      schema::required<schema::Numeric<std::uint32_t>>(
          "outside", &S::outside, "First id of the range outside the user namespace."),
      schema::required<schema::Numeric<std::uint32_t>>(
          "count", &S::count,
          "Number of ids mapped, from inside (and outside) up to inside + count - 1."));
};

struct BridgedNetwork {
  std::string bridge;
  scalars::Network network;
  std::optional<scalars::IpAddress> default_gateway;
  std::vector<std::string> after_setup_command;
  friend bool operator==(const BridgedNetwork&, const BridgedNetwork&) = default;
};

template <>
struct Schema<BridgedNetwork> {
  static constexpr std::string_view name = "bridged-network";
  using S = BridgedNetwork;
  static constexpr auto fields = std::make_tuple(
      schema::required<schema::Str>("bridge", &S::bridge,
                                    "Host bridge the instances' veth pairs are attached to."),
      schema::required<schema::NetworkCodec>("network", &S::network,
                                             "Network the instance addresses belong to."),
      schema::optional<schema::IpCodec>(
          "default_gateway", &S::default_gateway,
          "Default route of the instances, of the network's address family."),
      schema::defaulted<schema::Seq<schema::Str>>(
          "after_setup_command", &S::after_setup_command,
          "Program and arguments run in each instance's network namespace once its "
          "interface is up (10 s at most): a program of the host, a bare name looked up in "
          "/usr/sbin, /usr/bin, /sbin, /bin; @{container_ip} in the arguments is the "
          "instance's address. A failure stops the start."));
};

enum class SeccompProfile { Default, Unconfined };

template <>
struct Schema<SeccompProfile> {
  static constexpr std::pair<SeccompProfile, std::string_view> names[] = {
      {SeccompProfile::Default, "default"}, {SeccompProfile::Unconfined, "unconfined"}};
};

namespace schema {

struct SyscallName : Validated<SyscallName, Code::UnknownSyscall> {
  static bool accept(const std::string& s) { return names::syscall_number(s).has_value(); }
  static std::string complaint(const std::string& s) {
    static const std::vector<std::string> known = names::all_syscall_names();
    return "unknown system call " + quote(s) + did_you_mean(nearest_name(s, known));
  }
  static std::string type_name() { return "system call name"; }
};

// Capability names are stored canonically (CAP_NET_BIND_SERVICE).
struct CapabilityName : Validated<CapabilityName, Code::UnknownCapability> {
  static bool accept(std::string& s) {
    auto cap = names::capability(s);
    if (cap) s = cap->name;
    return cap.has_value();
  }
  static std::string complaint(const std::string& s) {
    static const std::vector<std::string> known = [] {
      std::vector<std::string> all;
      for (auto& cap : names::all_capabilities()) all.push_back(cap.name);
      return all;
    }();
    // Compared in the canonical spelling, so "net_bind_servic" finds
    // CAP_NET_BIND_SERVICE too.
    std::string canonical = s;
    for (char& c : canonical) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (canonical.rfind("CAP_", 0) != 0) canonical = "CAP_" + canonical;
    return "unknown capability " + quote(s) + did_you_mean(nearest_name(canonical, known));
  }
  static std::string type_name() { return "capability name"; }
};

}  // namespace schema

struct SeccompPolicy {
  SeccompProfile profile = SeccompProfile::Default;
  std::vector<std::string> allow;  // taken out of the profile's deny list
  std::vector<std::string> deny;   // denied in addition
  friend bool operator==(const SeccompPolicy&, const SeccompPolicy&) = default;
};

template <>
struct Schema<SeccompPolicy> {
  static constexpr std::string_view name = "seccomp";
  using S = SeccompPolicy;
  static constexpr auto fields =
      std::make_tuple(schema::defaulted<schema::Enum<SeccompProfile>>(
                          "profile", &S::profile,
                          "Base filter: default denies the system calls listed in "
                          "docs/hardening.md, unconfined denies none."),
                      schema::defaulted<schema::Seq<schema::SyscallName>>(
                          "allow", &S::allow, "System calls taken out of the profile's deny list."),
                      schema::defaulted<schema::Seq<schema::SyscallName>>(
                          "deny", &S::deny, "System calls denied in addition to the profile's."));
};

// The most a container config of the sandbox may ask for (docs/cgroups.md
// "Sandbox ceilings"). An unset ceiling allows anything; a container that
// leaves a limit unset asks for no limit, more than any ceiling.
struct CgroupCeilings {
  std::optional<std::uint64_t> memory_limit;
  std::optional<std::uint64_t> memory_high;
  std::optional<std::uint64_t> memory_low;
  std::optional<std::uint64_t> cpu_shares;
  std::optional<std::uint64_t> cpu_percent;
  std::optional<std::uint64_t> pids_limit;
  std::optional<std::uint64_t> io_weight;
  friend bool operator==(const CgroupCeilings&, const CgroupCeilings&) = default;
};

template <>
struct Schema<CgroupCeilings> {
  static constexpr std::string_view name = "cgroup-ceilings";
  using S = CgroupCeilings;
  using Number = schema::Numeric<std::uint64_t>;
  static constexpr auto fields = std::make_tuple(
      schema::optional<Number>("memory_limit", &S::memory_limit, "Largest memory-limit in bytes."),
      schema::optional<Number>("memory_high", &S::memory_high, "Largest memory-high in bytes."),
      schema::optional<Number>("memory_low", &S::memory_low, "Largest memory-low in bytes."),
      schema::optional<Number>("cpu_shares", &S::cpu_shares, "Largest cpu-shares."),
      schema::optional<schema::Numeric<std::uint64_t, 1>>(
          "cpu_percent", &S::cpu_percent,
          "Largest CPU quota, in percent of one CPU: cpu-quota-us × 100 / cpu-period-us."),
      schema::optional<Number>("pids_limit", &S::pids_limit, "Largest pids-limit."),
      schema::optional<schema::Numeric<std::uint64_t, 1, 10000>>(
          "io_weight", &S::io_weight, "Largest io-weight (unset there counts as 100)."));
};

struct SandboxConfig {
  std::optional<std::string> config_file;
  std::string image_dir = "/var/lib/lithos/containers";
  std::uint32_t image_dir_levels = 1;
  std::optional<std::string> used_images_list;
  std::optional<std::string> log_file;
  std::optional<std::string> log_level;
  std::map<std::string, std::string> readonly_paths;
  std::map<std::string, std::string> writable_paths;
  std::vector<scalars::Range> allow_users;
  std::optional<std::uint32_t> default_user;
  std::vector<scalars::Range> allow_groups;
  std::uint32_t default_group = 0;
  std::vector<scalars::Range> allow_tcp_ports;
  std::map<std::string, std::string> additional_hosts;
  std::vector<IdMapEntry> uid_map;
  std::vector<IdMapEntry> gid_map;
  bool auto_clean = true;
  std::string resolv_conf = "/etc/resolv.conf";
  std::string hosts_file = "/etc/hosts";
  std::optional<BridgedNetwork> bridged_network;
  std::optional<std::string> secrets_private_key;
  std::vector<std::string> secrets_namespaces;
  SeccompPolicy seccomp;
  std::vector<std::string> capabilities;
  bool landlock = true;                         // docs/hardening.md "Landlock"
  std::optional<std::string> apparmor_profile;  // docs/hardening.md "LSM labels"
  std::optional<std::string> selinux_label;
  bool allow_lsm_override = false;
  CgroupCeilings cgroup_ceilings;

  friend bool operator==(const SandboxConfig&, const SandboxConfig&) = default;
};

template <>
struct Schema<SandboxConfig> {
  static constexpr std::string_view name = "sandbox config";
  using S = SandboxConfig;
  using Ranges = schema::Seq<schema::RangeCodec>;
  using IdMaps = schema::Seq<schema::Struct<IdMapEntry>>;
  static constexpr auto fields = std::make_tuple(
      schema::optional<schema::Path>("config_file", &S::config_file,
                                     "The sandbox's process config, relative to the master's "
                                     "processes-dir (unset: NAME.yaml)."),
      schema::defaulted<schema::Path>("image_dir", &S::image_dir,
                                      "Directory of the images the process entries may use."),
      schema::defaulted<schema::Numeric<std::uint32_t, 1, 16>>(
          "image_dir_levels", &S::image_dir_levels,
          "Number of path components an entry's image has below image-dir."),
      schema::optional<schema::Path>(
          "used_images_list", &S::used_images_list,
          "Text file naming one used image per line: lithos_clean keeps those instead of "
          "reading the config log's history."),
      schema::optional<schema::Path>("log_file", &S::log_file,
                                     "Log of the sandbox's knots, relative to the master's "
                                     "default-log-dir (unset: SANDBOX.log)."),
      schema::optional<schema::LogLevel>("log_level", &S::log_level,
                                         "Log level of the knots (unset: the master's log-level)."),
      schema::defaulted<schema::Map<schema::Path>>(
          "readonly_paths", &S::readonly_paths,
          "Host directories !Readonly volumes may mount, from the name used in container configs "
          "to the host path; the longest prefix wins."),
      schema::defaulted<schema::Map<schema::Path>>(
          "writable_paths", &S::writable_paths,
          "Host directories !Persistent volumes may mount writable, from the name used in "
          "container configs to the host path."),
      schema::defaulted<Ranges>(
          "allow_users", &S::allow_users,
          "User ids the processes may run as (host ids when no uid-map applies)."),
      schema::optional<schema::PlainU32>(
          "default_user", &S::default_user,
          "User of the processes whose container config sets no user-id."),
      schema::defaulted<Ranges>("allow_groups", &S::allow_groups,
                                "Group ids the processes may run as, like allow-users."),
      schema::defaulted<schema::PlainU32>(
          "default_group", &S::default_group,
          "Group of the processes whose container config sets no group-id."),
      schema::defaulted<Ranges>("allow_tcp_ports", &S::allow_tcp_ports,
                                "Host ports the containers' tcp-ports may listen on."),
      schema::defaulted<schema::Map<schema::Str>>(
          "additional_hosts", &S::additional_hosts,
          "Extra host name to address lines for the containers' /etc/hosts."),
      schema::defaulted<IdMaps>("uid_map", &S::uid_map,
                                "User id map of a user namespace for the processes; a container "
                                "uid-map is then an error."),
      schema::defaulted<IdMaps>("gid_map", &S::gid_map, "Group id map, like uid-map."),
      schema::defaulted<schema::Bool>(
          "auto_clean", &S::auto_clean,
          "Whether lithos_clean may delete unused images of this image-dir; false protects the "
          "whole directory."),
      schema::defaulted<schema::Path>(
          "resolv_conf", &S::resolv_conf,
          "Host file copied into each instance as its /etc/resolv.conf."),
      schema::defaulted<schema::Path>("hosts_file", &S::hosts_file,
                                      "Host file each instance's /etc/hosts starts from."),
      schema::optional<schema::Struct<BridgedNetwork>>(
          "bridged_network", &S::bridged_network,
          "Gives every instance its own network namespace with a veth pair on a host bridge."),
      schema::optional<schema::Path>("secrets_private_key", &S::secrets_private_key,
                                     "OpenSSH ed25519 private key that decrypts secret-environ "
                                     "values; root-owned, no access for group or others."),
      schema::defaulted<schema::Seq<schema::Str>>(
          "secrets_namespaces", &S::secrets_namespaces,
          "Secret namespaces the processes may use; empty means only the empty namespace."),
      schema::defaulted<schema::Struct<SeccompPolicy>>(
          "seccomp", &S::seccomp, "System call filter of the container processes."),
      schema::defaulted<schema::Seq<schema::CapabilityName>>(
          "capabilities", &S::capabilities,
          "Capabilities the container process keeps (CAP_NET_BIND_SERVICE or net_bind_service); "
          "all others are dropped."),
      schema::defaulted<schema::Bool>("landlock", &S::landlock,
                                      "Confines every container process with Landlock where the "
                                      "kernel supports it; false turns it off."),
      schema::optional<schema::Str>(
          "apparmor_profile", &S::apparmor_profile,
          "AppArmor profile the container processes run under (set through "
          "/proc/thread-self/attr/exec just before exec); the host must run AppArmor."),
      schema::optional<schema::Str>(
          "selinux_label", &S::selinux_label,
          "SELinux context user:role:type[:level] the container processes run under; the host "
          "must run SELinux."),
      schema::defaulted<schema::Bool>(
          "allow_lsm_override", &S::allow_lsm_override,
          "Whether a container config may set its own apparmor-profile or selinux-label."),
      schema::defaulted<schema::Struct<CgroupCeilings>>(
          "cgroup_ceilings", &S::cgroup_ceilings,
          "The most the sandbox's container configs may ask for of each cgroup control."));
};

}  // namespace lithos::policy
