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
      schema::defaulted<schema::Numeric<std::uint64_t>>(
          "instances", &S::instances, "Number of instances of a Daemon entry, numbered from 0."),
      schema::required<schema::Str>("image", &S::image,
                                    "Image directory, relative to the sandbox's image-dir, with "
                                    "image-dir-levels components."),
      schema::required<schema::Str>("config", &S::config,
                                    "Path of the container config inside the image."),
      schema::defaulted<schema::Map<schema::Str>>(
          "variables", &S::variables,
          "Values of the variables the container config declares, each checked against its type."),
      schema::defaulted<schema::Seq<schema::Str>>(
          "extra_secrets_namespaces", &S::extra_secrets_namespaces,
          "Secret namespaces this entry may use besides the sandbox's secrets-namespaces."),
      schema::defaulted<schema::Enum<ProcessKind>>(
          "kind", &S::kind,
          "Daemon entries are kept running by lithos_tree; Command entries run once, with "
          "lithos_cmd."),
      schema::defaulted<schema::Seq<schema::IpCodec>>(
          "ip_addresses", &S::ip_addresses,
          "With a bridged-network sandbox, one address per instance, inside the sandbox's "
          "network."));
};

using ProcessConfig = std::map<std::string, ProcessEntry>;
using ProcessConfigCodec = schema::Map<schema::Struct<ProcessEntry>>;

}  // namespace lithos::policy
