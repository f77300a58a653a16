// The knot's invocation and instance names: one type each, with parse and
// format, used by everything that builds or reads a knot's argv (the tree,
// lithos_cmd, lithos_knot itself, lithos_ps and the tree's adoption).
// Free of the config code: lithos_knot links it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lithos::policy {

// SANDBOX/CHILD.N (a daemon's instance N) or SANDBOX/cmd.CHILD.PID (a
// command run by lithos_cmd with pid PID). SANDBOX and CHILD follow
// names::valid_name (no '/', no '.'), so the split is unambiguous.
struct InstanceName {
  std::string sandbox;
  std::string child;
  bool command = false;
  std::uint64_t number = 0;  // the instance index, or the caller's pid for a command

  // nullopt unless the text is exactly one of the two forms with valid
  // names and a decimal number without sign or leading zeros (below 2^63).
  static std::optional<InstanceName> parse(std::string_view text);
  std::string format() const;
  friend bool operator==(const InstanceName&, const InstanceName&) = default;
};

// The cgroup scope directory of an instance: SANDBOX/CHILD.N becomes
// SANDBOX:CHILD.N.scope (a cgroup name cannot hold '/').
std::string scope_name(std::string_view instance_name);
// The instance name a scope directory stands for, as scope_name wrote it;
// nullopt for a directory that is not one (no ".scope" suffix or no ':').
std::optional<std::string> instance_of_scope(std::string_view scope);

// The descriptor a knot reads its launch plan from (a sealed memfd,
// docs/knot.md "The launch plan"). Host-side sockets follow it at
// kPlanFd + 1 + i, in the plan's order; the knot moves them to their planned
// numbers.
inline constexpr int kPlanFd = 3;

// lithos_knot --name NAME [--master FILE] --config IDENTITY [--log-stderr]
// [--log-level LEVEL] [--] [ARG...]. Options are found by name in any order
// and stop at the first positional; `--config` is required (the instance
// identity, compact JSON, compared with the plan's by the knot and read by
// the tree's adoption).
struct KnotInvocation {
  InstanceName name;
  std::string master = "/etc/lithos/master.yaml";
  std::string identity;
  bool log_stderr = false;
  std::optional<std::string> log_level;  // as given; the knot checks it
  std::vector<std::string> extra;        // positionals after the options

  // argv[0] is skipped. On failure `error` says why (usage text).
  static std::optional<KnotInvocation> parse(const std::vector<std::string>& argv,
                                             std::string* error = nullptr);
  // argv with `program` as argv[0]; a "--" is written before `extra`.
  std::vector<std::string> format(const std::string& program) const;
  friend bool operator==(const KnotInvocation&, const KnotInvocation&) = default;
};

}  // namespace lithos::policy
