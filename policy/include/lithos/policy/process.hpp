// Process config (docs/configs.md): a mapping child-name -> entry.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lithos/policy/schema.hpp"

namespace lithos::policy {

template <>
struct Schema<ProcessKind> {
  static constexpr std::pair<ProcessKind, std::string_view> names[] = {
      {ProcessKind::Daemon, "Daemon"}, {ProcessKind::Command, "Command"}};
};

struct ProcessEntry {
  std::uint64_t instances = 1;
  std::string image;
  std::string config;
  std::map<std::string, std::string> variables;
  std::vector<std::string> extra_secrets_namespaces;
  ProcessKind kind = ProcessKind::Daemon;
  std::vector<scalars::IpAddress> ip_addresses;
  friend bool operator==(const ProcessEntry&, const ProcessEntry&) = default;
};

template <>
struct Schema<ProcessEntry> {
  static constexpr std::string_view name = "process entry";
  using S = ProcessEntry;
  static constexpr auto fields = std::make_tuple(
      schema::defaulted<schema::Numeric<std::uint64_t>>("instances", &S::instances),
      schema::required<schema::Str>("image", &S::image),
      schema::required<schema::Str>("config", &S::config),
      schema::defaulted<schema::Map<schema::Str>>("variables", &S::variables),
      schema::defaulted<schema::Seq<schema::Str>>("extra_secrets_namespaces",
                                                  &S::extra_secrets_namespaces),
      schema::defaulted<schema::Enum<ProcessKind>>("kind", &S::kind),
      schema::defaulted<schema::Seq<schema::IpCodec>>("ip_addresses", &S::ip_addresses));
};

using ProcessConfig = std::map<std::string, ProcessEntry>;
using ProcessConfigCodec = schema::Map<schema::Struct<ProcessEntry>>;

}  // namespace lithos::policy
