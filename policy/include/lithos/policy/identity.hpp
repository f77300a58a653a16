// The instance identity given to the knot with `--config` (docs/tree.md, "The
// loop") and the config-log JSON of a process config (docs/operations.md,
// "Logs"): both written by one encoder walking the schema field tables.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/config.hpp"

namespace lithos::policy {

// The instance identity passed to the knot with `--config` (docs/tree.md,
// "The loop"): a JSON (or YAML) mapping; dashed spellings are accepted too.
struct InstanceIdentity {
  std::uint64_t instances = 1;
  std::string image;
  std::string config;
  std::map<std::string, std::string> variables;
  std::vector<std::string> extra_secrets_namespaces;
  std::optional<scalars::IpAddress> ip_address;
  ProcessKind kind = ProcessKind::Daemon;
  friend bool operator==(const InstanceIdentity&, const InstanceIdentity&) = default;
};

template <>
struct Schema<InstanceIdentity> {
  static constexpr std::string_view name = "instance identity";
  using S = InstanceIdentity;
  static constexpr auto fields =
      std::make_tuple(schema::defaulted<schema::Numeric<std::uint64_t>>("instances", &S::instances),
                      schema::required<schema::Str>("image", &S::image),
                      schema::required<schema::Str>("config", &S::config),
                      schema::defaulted<schema::Map<schema::Str>>("variables", &S::variables),
                      schema::defaulted<schema::Seq<schema::Str>>("extra_secrets_namespaces",
                                                                  &S::extra_secrets_namespaces),
                      schema::optional<schema::IpCodec>("ip_address", &S::ip_address),
                      schema::defaulted<schema::Enum<ProcessKind>>("kind", &S::kind));
};

std::optional<InstanceIdentity> parse_instance_identity(std::string_view text, Diagnostics& diags);

// Identity JSON of an instance, byte-stable: the tree compares it on adoption.
std::string instance_identity(const ProcessEntry& entry, std::optional<scalars::IpAddress> ip,
                              ProcessKind kind);

// The config-log JSON of a whole process config (docs/operations.md, "Logs").
std::string process_config_json(const ProcessConfig& config);

}  // namespace lithos::policy
