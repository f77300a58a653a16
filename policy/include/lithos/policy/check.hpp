// Cross-file rules (docs/configs.md, with this rebuild's fixes) and plan building.
// Every rule reports a Diagnostic pointing at the line that causes it; all
// problems of a tree are reported in one pass. The same code runs in
// lithos_check, lithos_switch, lithos_tree and lithos_knot.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/crypt/crypt.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/policy/hardening.hpp"
#include "lithos/policy/plan.hpp"
#include "lithos/policy/tree.hpp"

namespace lithos::policy {

// ------------------------------------------------------------------ id maps
// All arithmetic is 64-bit with exclusive ends: [inside, inside + count).

inline bool map_contains_inside(const std::vector<IdMapEntry>& map, std::uint32_t id) {
  return std::any_of(map.begin(), map.end(), [&](const IdMapEntry& e) {
    return id >= e.inside && std::uint64_t{id} < std::uint64_t{e.inside} + e.count;
  });
}

// The outside (host) id of an inside id, or nullopt when no entry maps it.
inline std::optional<std::uint32_t> map_to_outside(const std::vector<IdMapEntry>& map,
                                                   std::uint32_t id) {
  for (const auto& e : map) {
    if (id >= e.inside && std::uint64_t{id} < std::uint64_t{e.inside} + e.count) {
      std::uint64_t outside = std::uint64_t{e.outside} + (id - e.inside);
      if (outside > 0xffffffffULL) return std::nullopt;
      return static_cast<std::uint32_t>(outside);
    }
  }
  return std::nullopt;
}

inline bool ranges_contain(const std::vector<scalars::Range>& ranges, std::uint64_t id) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const scalars::Range& r) { return id >= r.start && id <= r.end; });
}

// An entry's outside span lies inside one single allowed range.
inline bool span_in_one_range(const IdMapEntry& e, const std::vector<scalars::Range>& ranges) {
  if (e.count == 0) return true;
  std::uint64_t first = e.outside;
  std::uint64_t last = std::uint64_t{e.outside} + e.count - 1;
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const scalars::Range& r) { return first >= r.start && last <= r.end; });
}

inline std::string format_ranges(const std::vector<scalars::Range>& ranges) {
  if (ranges.empty()) return "none";
  std::string out;
  for (const auto& r : ranges) out += (out.empty() ? "" : ", ") + scalars::format_range(r);
  return out;
}

inline std::string format_map(const std::vector<IdMapEntry>& map) {
  std::string out;
  for (const auto& e : map) {
    if (!out.empty()) out += ", ";
    out += "[" + std::to_string(e.inside) + ", " +
           std::to_string(std::uint64_t{e.inside} + e.count) + ")";
  }
  return out.empty() ? "none" : out;
}

// ------------------------------------------------------------------ paths

// Normal components of a relative path; nullopt if it is absolute, empty, or
// has a `.`/`..` component other than interior `./` (as in the original).
inline std::optional<std::vector<std::string>> image_components(std::string_view image) {
  if (image.empty() || image.front() == '/') return std::nullopt;
  std::vector<std::string> parts;
  std::size_t start = 0;
  bool first = true;
  while (start <= image.size()) {
    auto slash = image.find('/', start);
    std::string_view part = image.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") return std::nullopt;
    if (part == "." && first) return std::nullopt;
    if (!part.empty() && part != ".") parts.emplace_back(part);
    first = false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.empty()) return std::nullopt;
  return parts;
}

// Calls `part` with each non-empty component of an absolute path, as a
// view into it; false (early) if the path is relative or has a `.` or `..`
// component.
template <class F>
inline bool each_absolute_component(std::string_view path, F&& part) {
  if (path.empty() || path.front() != '/') return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    std::string_view piece = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (piece == "." || piece == "..") return false;
    if (!piece.empty()) part(piece);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

// Components of an absolute path; nullopt if relative or containing `.`/`..`.
inline std::optional<std::vector<std::string>> absolute_components(std::string_view path) {
  std::vector<std::string> parts;
  if (!each_absolute_component(path, [&](std::string_view p) { parts.emplace_back(p); }))
    return std::nullopt;
  return parts;
}

// Whether absolute_components(path) has a value, without building it.
inline bool absolute_clean(std::string_view path) {
  return each_absolute_component(path, [](std::string_view) {});
}

inline std::string join_components(const std::vector<std::string>& parts, std::size_t from = 0) {
  std::string out;
  for (std::size_t i = from; i < parts.size(); ++i) out += "/" + parts[i];
  return out.empty() ? "/" : out;
}

// Longest component-wise prefix of `virtual_path` among the keys of
// `table`, and the host path it maps to (the original took the first match).
inline std::optional<std::string> resolve_virtual(const std::map<std::string, std::string>& table,
                                                  std::string_view virtual_path) {
  // Components as views into the paths: no string per component.
  auto split = [](std::string_view path, std::vector<std::string_view>& parts) {
    parts.clear();
    return each_absolute_component(path, [&](std::string_view p) { parts.push_back(p); });
  };
  std::vector<std::string_view> parts, key_parts;
  if (!split(virtual_path, parts)) return std::nullopt;
  const std::map<std::string, std::string>::value_type* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& entry : table) {
    if (!split(entry.first, key_parts) || key_parts.size() > parts.size()) continue;
    if (!std::equal(key_parts.begin(), key_parts.end(), parts.begin())) continue;
    if (best && key_parts.size() <= best_len) continue;
    best = &entry;
    best_len = key_parts.size();
  }
  if (!best) return std::nullopt;
  if (best_len == parts.size()) return best->second;
  std::string rest;
  for (std::size_t i = best_len; i < parts.size(); ++i) {
    if (!rest.empty()) rest += '/';
    rest += parts[i];
  }
  return join_path(best->second, rest);
}

// ------------------------------------------------------------------ templates

// Views: the strings they name outlive every substitution.
struct Builtins {
  std::string_view name;             // lithos:name
  std::string_view config_filename;  // lithos:config_filename
};

inline bool is_builtin_variable(std::string_view name) {
  return name == "lithos:name" || name == "lithos:config_filename" || name == "lithos:pid";
}

// Substitutes `@{name}` (docs/configs.md, "Variables"): process variables first (they
// shadow built-ins), then lithos:name and lithos:config_filename. Errors are
// appended; the result is returned even when incomplete.
// Appends the substituted `text` to `out` (when given) and the errors of
// unknown variables to `errors`; checking alone needs no output.
inline void substitute_into(std::string_view text, const std::map<std::string, std::string>& vars,
                            const Builtins& builtins, std::vector<std::string>& errors,
                            std::string* out) {
  // Without "@{" the text is one literal part (or none when empty).
  if (text.find("@{") == std::string_view::npos) {
    if (out) out->append(text);
    return;
  }
  for (const auto& part : scalars::parse_template(text)) {
    if (!part.is_variable) {
      if (out) *out += part.text;
      continue;
    }
    const std::string_view name = part.text;
    if (auto it = vars.find(part.text); it != vars.end()) {
      if (out) *out += it->second;
    } else if (name == "lithos:name") {
      if (out) *out += builtins.name;
    } else if (name == "lithos:config_filename") {
      if (out) *out += builtins.config_filename;
    } else if (name == "lithos:pid") {
      errors.push_back("lithos:pid variable can only be used in environment as a sole value");
    } else {
      errors.push_back("unknown variable \"" + part.text + "\"");
    }
  }
}

inline std::string substitute(std::string_view text, const std::map<std::string, std::string>& vars,
                              const Builtins& builtins, std::vector<std::string>& errors) {
  std::string out;
  out.reserve(text.size() + 16);
  substitute_into(text, vars, builtins, errors, &out);
  return out;
}

inline constexpr std::string_view kPidVariable = "@{lithos:pid}";

// ------------------------------------------------------------------ variables

inline bool valid_name_value(std::string_view v) {
  if (v.empty()) return false;  // the original accepted an empty !Name
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

inline bool valid_dotted_name_value(std::string_view v) {
  if (v.empty()) return false;
  std::size_t start = 0;
  while (true) {
    auto dot = v.find('.', start);
    std::string_view part =
        v.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.front() == '-' || part.back() == '-') return false;
    if (!valid_name_value(part)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

inline std::optional<std::uint16_t> parse_port(std::string_view text) {
  auto r = scalars::parse_plain_u32(text);
  if (!r || *r > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*r);
}

// ------------------------------------------------------------------ checks

struct CheckOptions {
  bool check_devfs = true;  // devfs-dir must exist
  // Process kinds for which plans are built (tree: daemons; cmd: commands).
  bool plans_for_daemons = true;
  bool plans_for_commands = true;
  // `cmd.CHILD.PID` names of commands use this pid (lithos_cmd's own).
  std::uint64_t command_pid = 0;
  // Check only this process entry (knot, cmd).
  std::optional<std::string> only_child;
  // Build the entry's single instance under this index (plan_instance).
  std::optional<std::uint64_t> instance_index;
  // When set, receives every container config read (display path -> value),
  // for `lithos_check --print-effective`.
  std::map<std::string, ContainerConfig>* effective_containers = nullptr;
  // The largest RLIMIT_NOFILE a knot can set on this host, and why (a host
  // fact the caller reads: fs.nr_open, or the tree's own hard limit when it
  // lacks CAP_SYS_RESOURCE). A container asking for more is a warning.
  std::optional<std::uint64_t> max_fileno_limit;
  std::string max_fileno_limit_reason;
  // Replay what the knot will find on disk (image_inspect.hpp) for the
  // first instance of every entry that has no other error: lithos_check's
  // "What passes is what runs". Off where plans are built for a start (the
  // knot refuses by itself there) and in the unprivileged reader.
  bool inspect_images = false;
  // What of an instance's cgroup settings this host cannot apply (nullopt:
  // all of it). Given by lithos_check, which asks the runtime's probe; the
  // knot's enter_cgroup step refuses the same.
  std::function<std::optional<CgroupRefusal>(const CgroupPlan& plan)> cgroup_refusal;
  // Checking a config repository rather than a host (lithos_check --root,
  // --offline; docs/lithos_check.md "Config repositories"). Every absolute
  // host path the configs name is looked for under `host_root` (empty: /);
  // plans and messages keep the host path as written.
  std::string host_root;
  // What needs the host or an image that is not there (devfs, absent
  // images, volume sources, host files, the secrets key, bridges) is a note,
  // not an error.
  bool offline = false;
};

// The checks of one container config that need nothing else (also the whole
// of `lithos_check --check-container`): activation conflicts and template
// references to undeclared variables.
void check_container_alone(const Loaded<ContainerCodec>& container, Diagnostics& diags);

// All rules for a loaded tree. Plans for valid instances are appended to
// `plans` when given. Reads container configs (confined to their images).
void check_tree(const ConfigTree& tree, const CheckOptions& options, Diagnostics& diags,
                Sources* sources, std::vector<InstancePlan>* plans);

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

// What the knot and lithos_cmd re-derive: one instance of one process entry
// of one sandbox, from the identity it was started with.
struct InstanceRequest {
  std::string sandbox;
  std::string child;
  std::uint64_t index = 0;        // N of SANDBOX/CHILD.N (daemons)
  std::uint64_t command_pid = 0;  // PID of SANDBOX/cmd.CHILD.PID (commands)
  InstanceIdentity identity;
};

// Runs every check of check_tree on that one instance (the tree must hold the
// master and the sandbox: load_tree with LoadOptions::only_sandbox) and
// returns its plan, or nullopt with the reasons in `diags`.
std::optional<InstancePlan> plan_instance(const ConfigTree& tree, const InstanceRequest& request,
                                          Diagnostics& diags, Sources* sources);

// Identity JSON of an instance, byte-stable: the tree compares it on adoption.
std::string instance_identity(const ProcessEntry& entry, std::optional<scalars::IpAddress> ip,
                              ProcessKind kind);

// The config-log JSON of a whole process config (docs/operations.md, "Logs").
std::string process_config_json(const ProcessConfig& config);

// The host side of an instance's veth pair, as the original names it: "li_" +
// the first 3 bytes of BLAKE2b-512 of {"bridge":B,"ip":IP} + "_" + the last two
// address bytes, in hex. The container side is the same with "-" for "_".
std::string veth_host_name(const std::string& bridge, const scalars::IpAddress& ip);

}  // namespace lithos::policy
