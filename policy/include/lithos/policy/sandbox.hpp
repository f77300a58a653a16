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
  static constexpr auto fields =
      std::make_tuple(schema::required<schema::Numeric<std::uint32_t>>("inside", &S::inside),
                      schema::required<schema::Numeric<std::uint32_t>>("outside", &S::outside),
                      schema::required<schema::Numeric<std::uint32_t>>("count", &S::count));
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
      schema::required<schema::Str>("bridge", &S::bridge),
      schema::required<schema::NetworkCodec>("network", &S::network),
      schema::optional<schema::IpCodec>("default_gateway", &S::default_gateway),
      schema::defaulted<schema::Seq<schema::Str>>("after_setup_command", &S::after_setup_command));
};

enum class SeccompProfile { Default, Unconfined };

template <>
struct Schema<SeccompProfile> {
  static constexpr std::pair<SeccompProfile, std::string_view> names[] = {
      {SeccompProfile::Default, "default"}, {SeccompProfile::Unconfined, "unconfined"}};
};

namespace schema {

struct SyscallName {
  using value_type = std::string;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!Str::decode(n, ctx, out)) return false;
    if (names::syscall_number(out)) return true;
    std::string message = "unknown system call " + quote(out);
    static const std::vector<std::string> known = names::all_syscall_names();
    if (auto hint = nearest_name(out, known); !hint.empty())
      message += " (did you mean " + quote(hint) + "?)";
    ctx.error(n.mark, Code::UnknownSyscall, std::move(message));
    return false;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) { return Str::encode(v, arena); }
};

// Capability names are stored canonically (CAP_NET_BIND_SERVICE).
struct CapabilityName {
  using value_type = std::string;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!Str::decode(n, ctx, out)) return false;
    if (auto cap = names::capability(out)) {
      out = cap->name;
      return true;
    }
    std::string message = "unknown capability " + quote(out);
    static const std::vector<std::string> known = [] {
      std::vector<std::string> all;
      for (auto& cap : names::all_capabilities()) all.push_back(cap.name);
      return all;
    }();
    // Compared in the canonical spelling, so "net_bind_servic" finds
    // CAP_NET_BIND_SERVICE too.
    std::string canonical = out;
    for (char& c : canonical) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (canonical.rfind("CAP_", 0) != 0) canonical = "CAP_" + canonical;
    if (auto hint = nearest_name(canonical, known); !hint.empty())
      message += " (did you mean " + quote(hint) + "?)";
    ctx.error(n.mark, Code::UnknownCapability, std::move(message));
    return false;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) { return Str::encode(v, arena); }
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
      std::make_tuple(schema::defaulted<schema::Enum<SeccompProfile>>("profile", &S::profile),
                      schema::defaulted<schema::Seq<schema::SyscallName>>("allow", &S::allow),
                      schema::defaulted<schema::Seq<schema::SyscallName>>("deny", &S::deny));
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
  bool landlock = true;  // docs/hardening.md "Landlock"

  friend bool operator==(const SandboxConfig&, const SandboxConfig&) = default;
};

template <>
struct Schema<SandboxConfig> {
  static constexpr std::string_view name = "sandbox config";
  using S = SandboxConfig;
  using Ranges = schema::Seq<schema::RangeCodec>;
  using IdMaps = schema::Seq<schema::Struct<IdMapEntry>>;
  static constexpr auto fields = std::make_tuple(
      schema::optional<schema::Path>("config_file", &S::config_file),
      schema::defaulted<schema::Path>("image_dir", &S::image_dir),
      schema::defaulted<schema::Numeric<std::uint32_t, 1, 16>>("image_dir_levels",
                                                               &S::image_dir_levels),
      schema::optional<schema::Path>("used_images_list", &S::used_images_list),
      schema::optional<schema::Path>("log_file", &S::log_file),
      schema::optional<schema::LogLevel>("log_level", &S::log_level),
      schema::defaulted<schema::Map<schema::Path>>("readonly_paths", &S::readonly_paths),
      schema::defaulted<schema::Map<schema::Path>>("writable_paths", &S::writable_paths),
      schema::defaulted<Ranges>("allow_users", &S::allow_users),
      schema::optional<schema::PlainU32>("default_user", &S::default_user),
      schema::defaulted<Ranges>("allow_groups", &S::allow_groups),
      schema::defaulted<schema::PlainU32>("default_group", &S::default_group),
      schema::defaulted<Ranges>("allow_tcp_ports", &S::allow_tcp_ports),
      schema::defaulted<schema::Map<schema::Str>>("additional_hosts", &S::additional_hosts),
      schema::defaulted<IdMaps>("uid_map", &S::uid_map),
      schema::defaulted<IdMaps>("gid_map", &S::gid_map),
      schema::defaulted<schema::Bool>("auto_clean", &S::auto_clean),
      schema::defaulted<schema::Path>("resolv_conf", &S::resolv_conf),
      schema::defaulted<schema::Path>("hosts_file", &S::hosts_file),
      schema::optional<schema::Struct<BridgedNetwork>>("bridged_network", &S::bridged_network),
      schema::optional<schema::Path>("secrets_private_key", &S::secrets_private_key),
      schema::defaulted<schema::Seq<schema::Str>>("secrets_namespaces", &S::secrets_namespaces),
      schema::defaulted<schema::Struct<SeccompPolicy>>("seccomp", &S::seccomp),
      schema::defaulted<schema::Seq<schema::CapabilityName>>("capabilities", &S::capabilities),
      schema::defaulted<schema::Bool>("landlock", &S::landlock));
};

}  // namespace lithos::policy
