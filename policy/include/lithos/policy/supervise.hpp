// Pure decisions of the supervisor (lithos_tree, docs/tree.md): which
// running knot is which desired instance, when a failed instance may start
// again, how a knot command line is recognised, how metric names are spelled.
// No system calls here: the runtime gathers facts (from /proc, the clock,
// wait statuses), these functions decide, and the properties in
// proptests/prop_supervise.cpp check them.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/check.hpp"
#include "lithos/policy/plan.hpp"

namespace lithos::policy::supervise {

// ---- knot command lines (docs/tree.md, "Adoption") ------------------------------

struct KnotCommandLine {
  std::string name;    // --name
  std::string master;  // --master (default /etc/lithos/master.yaml)
  std::string config;  // --config: the identity JSON
};

inline std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Recognises `lithos_knot --name N --master M --config J [--log-stderr]
// [--log-level L] [-- ARGS]` by option names, in any order, with `--opt V`
// or `--opt=V` (the original counted arguments). nullopt when argv[0]
// is not a lithos_knot or --name/--config is missing.
inline std::optional<KnotCommandLine> parse_knot_cmdline(const std::vector<std::string>& argv) {
  if (argv.empty() || base_name(argv[0]) != "lithos_knot") return std::nullopt;
  KnotCommandLine out;
  out.master = "/etc/lithos/master.yaml";
  bool have_name = false, have_config = false;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") break;
    auto take = [&](std::string_view option, std::string& into) -> int {
      if (arg == option) {
        if (i + 1 >= argv.size()) return -1;
        into = argv[++i];
        return 1;
      }
      if (arg.size() > option.size() && arg.compare(0, option.size(), option) == 0 &&
          arg[option.size()] == '=') {
        into = arg.substr(option.size() + 1);
        return 1;
      }
      return 0;
    };
    int r;
    if ((r = take("--name", out.name)) != 0) {
      if (r < 0) return std::nullopt;
      have_name = true;
    } else if ((r = take("--master", out.master)) != 0) {
      if (r < 0) return std::nullopt;
    } else if ((r = take("--config", out.config)) != 0) {
      if (r < 0) return std::nullopt;
      have_config = true;
    } else if (arg == "--log-level") {
      ++i;  // its value
    } else if (arg.rfind("--", 0) != 0) {
      break;  // first positional: the rest belongs to the container
    }
  }
  if (!have_name || !have_config || out.name.empty()) return std::nullopt;
  return out;
}

// Path equality by components: "a//b/./c/" == "a/b/c" (no symlink resolution;
// adoption compares the knot's --master with the tree's this way).
inline std::vector<std::string> path_components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!part.empty() && part != ".") out.emplace_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}
inline bool same_path(std::string_view a, std::string_view b) {
  return (a.substr(0, 1) == "/") == (b.substr(0, 1) == "/") &&
         path_components(a) == path_components(b);
}

// ---- matching running knots to desired instances ----------------------------

// A knot of this master found in /proc (or already recorded). Knots outlive
// the tree (docs/tree.md, "Crash-only"), so after a `kill -9` of the tree
// its successor finds knots that are not its children: they are adopted by
// the same rules, watched through their pidfd instead of waited for.
struct FoundKnot {
  pid_t pid = 0;
  std::string name;
  std::string identity;
  bool our_child = false;  // its parent is the tree: it can be waited for
};

enum class Verdict {
  Adopt,    // configured, same identity: keep supervising
  Upgrade,  // configured, identity changed: SIGTERM, restart with the new config
  Keep,     // its configuration cannot be read right now (docs/tree.md): leave running
  Retire,   // no longer configured: SIGTERM, then SIGKILL after the timeout
  Stop,     // a second knot of a name that already has one kept: stop it
};

struct Decision {
  // One verdict per found knot, in input order.
  std::vector<Verdict> verdicts;
  // Desired instances without an adopted/upgrading knot: to be started (the
  // runtime waits until no stopping knot of that name is alive).
  std::vector<std::string> start;
};

// `desired`: name -> identity of every instance that should run.
// `unreadable`: names (or sandbox prefixes "S/") whose configuration could
// not be read or checked: a running knot of such a name is kept as it is.
// Rules: per name at most one knot is kept (Adopt/Upgrade/Keep), preferring
// the configured identity, then our own child, then the lowest pid;
// everything else of that name is stopped; each desired name either has its
// kept knot or is started.
// In an unreadable set: every name (the sandbox list itself could not be read).
inline constexpr std::string_view kEverything = "*";

inline bool is_unreadable(const std::set<std::string>& unreadable, const std::string& name) {
  if (unreadable.count(name) || unreadable.count(std::string(kEverything))) return true;
  auto slash = name.find('/');
  return slash != std::string::npos && unreadable.count(name.substr(0, slash + 1)) > 0;
}

inline Decision reconcile(const std::map<std::string, std::string>& desired,
                          const std::vector<FoundKnot>& found,
                          const std::set<std::string>& unreadable = {}) {
  Decision out;
  out.verdicts.assign(found.size(), Verdict::Stop);
  std::map<std::string, std::size_t> kept;           // name -> index into found
  auto better = [&](std::size_t a, std::size_t b) {  // is a a better keeper than b?
    auto want = desired.find(found[a].name);
    bool a_same = want != desired.end() && found[a].identity == want->second;
    bool b_same = want != desired.end() && found[b].identity == want->second;
    if (a_same != b_same) return a_same;
    if (found[a].our_child != found[b].our_child) return found[a].our_child;
    return found[a].pid < found[b].pid;
  };
  for (std::size_t i = 0; i < found.size(); ++i) {
    const auto& k = found[i];
    bool wanted = desired.count(k.name) > 0;
    if (!wanted && !is_unreadable(unreadable, k.name)) {
      out.verdicts[i] = Verdict::Retire;
      continue;
    }
    auto [it, inserted] = kept.emplace(k.name, i);
    if (!inserted && better(i, it->second)) it->second = i;
  }
  for (const auto& [name, index] : kept) {
    auto want = desired.find(name);
    if (want == desired.end())
      out.verdicts[index] = Verdict::Keep;
    else if (found[index].identity == want->second)
      out.verdicts[index] = Verdict::Adopt;
    else if (is_unreadable(unreadable, name))
      out.verdicts[index] = Verdict::Keep;
    else
      out.verdicts[index] = Verdict::Upgrade;
  }
  for (const auto& [name, identity] : desired)
    if (!kept.count(name)) out.start.push_back(name);
  return out;
}

// ---- restart throttling (docs/tree.md, "The loop") ---------------------------------

// When an instance that died at `death` (started last at `last_start`, if
// ever) may start again: at most one start per `restart_timeout`, never
// before its death. All times in the same monotonic unit.
inline std::int64_t next_start(std::int64_t death, std::optional<std::int64_t> last_start,
                               std::int64_t restart_timeout) {
  if (!last_start) return death;
  return std::max(death, *last_start + std::max<std::int64_t>(restart_timeout, 0));
}

// After `errors` starts in a row that failed before a knot ran (no
// descriptor left, a socket that cannot be bound, a limit the tree cannot
// give): the delay before the next attempt. It doubles from restart-timeout
// (at least 1 s) up to a minute, so that a host fault costs a log line a
// minute, not one a second forever (docs/tree.md, "Crash-only").
inline constexpr std::int64_t kMaxStartErrorBackoffMs = 60'000;
inline std::int64_t start_error_backoff_ms(std::uint32_t errors, std::int64_t restart_timeout_ms) {
  std::int64_t base = std::max<std::int64_t>(restart_timeout_ms, 1000);
  std::int64_t cap = std::max(base, kMaxStartErrorBackoffMs);
  std::int64_t delay = base;
  for (std::uint32_t i = 1; i < errors && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

// Failure accounting (one rule for the loop and shutdown): a knot status is a failure unless the
// knot exited 0 (the knot has already applied normal-exit-codes to its
// container's status and exits 0 for a normal one).
inline bool is_failure(bool exited, int code) {
  return !(exited && code == 0);
}

// ---- host-side listening sockets (docs/tree.md, "Host-side sockets") -----------------

// The host uid/gid the tree creates an instance's listening sockets as (so
// netfilter owner matches see the service's user): the process's uid/gid
// through the id maps applied to it; an id no entry maps gives 0.
struct SocketCredentials {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  friend bool operator==(const SocketCredentials&, const SocketCredentials&) = default;
};

inline SocketCredentials socket_credentials(std::uint32_t uid, std::uint32_t gid,
                                            const std::vector<IdMapEntry>& uid_map,
                                            const std::vector<IdMapEntry>& gid_map) {
  auto host = [](const std::vector<IdMapEntry>& map, std::uint32_t id) {
    return map.empty() ? id : map_to_outside(map, id).value_or(0);
  };
  return {host(uid_map, uid), host(gid_map, gid)};
}

inline SocketCredentials socket_credentials(const InstancePlan& plan) {
  return socket_credentials(plan.uid, plan.gid, plan.uid_map, plan.gid_map);
}

// ---- metrics names (docs/tree.md, "Metrics") -------------------------------------

// Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; every other byte
// becomes '_', a leading digit gets a '_' in front.
inline std::string prometheus_name(std::string_view text) {
  std::string out;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

// Label values: `\`, `"` and newline escaped.
inline std::string prometheus_label(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace lithos::policy::supervise
