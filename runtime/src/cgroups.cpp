#include "lithos/runtime/cgroups.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <limits>

#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {
namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = text.find(sep, start);
    out.push_back(text.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::vector<std::string_view> lines(std::string_view text) {
  auto out = split(text, '\n');
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view in) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && in.size() - i > 3 && octal(in[i + 1]) && octal(in[i + 2]) &&
        octal(in[i + 3])) {
      out += static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += in[i];
  }
  return out;
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string join_path(std::string_view base, std::string_view rel) {
  std::string out(base);
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (rel.empty() || rel == "/") return out.empty() ? "/" : out;
  if (rel.front() != '/') out += '/';
  out += rel;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// A cgroup name below the base: relative, no empty, "." or ".." components.
bool safe_relative(std::string_view name, bool allow_slash) {
  if (name.empty() || name.front() == '/') return false;
  for (auto part : split(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return allow_slash || name.find('/') == std::string_view::npos;
}

Result<std::string> read_text(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return step_error("probe_cgroups", path, errno, "open");
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return step_error("probe_cgroups", path, errno, "read");
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Writes the whole value in one write(2): cgroup files take one value per call.
int write_text(const std::string& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  if (static_cast<std::size_t>(n) != value.size()) return EIO;
  return 0;
}

int make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return 0;
  int err = errno;
  if (err == EEXIST) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return ENOTDIR;
  }
  return err;
}

std::string hierarchy_dir_name(const std::vector<std::string>& controllers) {
  for (const auto& c : controllers)
    if (c.rfind("name=", 0) == 0) return c.substr(5);
  std::string out;
  for (const auto& c : controllers) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

// The v2 name of a requested controller; empty: nothing to enable (plain
// membership, or accounting v2 always provides).
std::string v2_name(std::string_view controller) {
  if (controller == "name" || controller.rfind("name=", 0) == 0) return "";
  if (controller == "cpuacct") return "";
  if (controller == "blkio") return "io";
  return std::string(controller);
}

}  // namespace

Result<std::vector<MountInfoEntry>> parse_mountinfo(std::string_view text) {
  std::vector<MountInfoEntry> out;
  std::size_t number = 0;
  for (auto line : lines(text)) {
    ++number;
    std::vector<std::string_view> fields;
    for (auto f : split(line, ' '))
      if (!f.empty()) fields.push_back(f);
    auto sep = std::find(fields.begin(), fields.end(), std::string_view("-"));
    if (fields.size() < 10 || sep == fields.end() || sep - fields.begin() < 6 ||
        fields.end() - sep < 4)
      return step_error("parse_mountinfo", "", 0,
                        "line " + std::to_string(number) + ": malformed: " + std::string(line));
    MountInfoEntry e;
    e.root = unescape_octal(fields[3]);
    e.mount_point = unescape_octal(fields[4]);
    e.fstype = std::string(sep[1]);
    e.source = unescape_octal(sep[2]);
    for (auto opt : split(sep[3], ',')) e.super_options.emplace_back(opt);
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<ProcCgroupLine>> parse_proc_cgroup(std::string_view text) {
  std::vector<ProcCgroupLine> out;
  std::size_t number = 0;
  for (auto line : lines(text)) {
    ++number;
    auto first = line.find(':');
    auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    unsigned id = 0;
    const char* id_end = line.data() + (first == std::string_view::npos ? 0 : first);
    auto [ptr, ec] = std::from_chars(line.data(), id_end, id);
    if (second == std::string_view::npos || first == 0 || ec != std::errc() || ptr != id_end)
      return step_error("parse_proc_cgroup", "", 0,
                        "line " + std::to_string(number) + ": malformed: " + std::string(line));
    ProcCgroupLine entry;
    entry.id = id;
    auto controllers = line.substr(first + 1, second - first - 1);
    if (!controllers.empty())
      for (auto c : split(controllers, ',')) entry.controllers.emplace_back(c);
    entry.path = std::string(line.substr(second + 1));
    if (entry.path.empty() || entry.path.front() != '/')
      return step_error("parse_proc_cgroup", "", 0,
                        "line " + std::to_string(number) + ": path is not absolute");
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<std::string> parse_controller_list(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

std::string_view layout_name(CgroupLayout layout) {
  switch (layout) {
    case CgroupLayout::None:
      return "none";
    case CgroupLayout::V1:
      return "v1";
    case CgroupLayout::V2:
      return "v2";
    case CgroupLayout::Hybrid:
      return "hybrid";
  }
  return "unknown";
}

const V1Hierarchy* CgroupHost::find_v1(std::string_view controller) const {
  for (const auto& h : v1) {
    for (const auto& c : h.controllers) {
      if (c == controller) return &h;
      if (controller == "name" && c.rfind("name=", 0) == 0) return &h;
    }
  }
  return nullptr;
}

Result<CgroupHost> describe_cgroups(std::string_view mountinfo, std::string_view pid1_cgroup,
                                    std::string_view v2_controllers) {
  auto mounts = parse_mountinfo(mountinfo);
  if (!mounts) return Failure<StepError>{std::move(mounts.error()).with("describe_cgroups")};
  auto lines1 = parse_proc_cgroup(pid1_cgroup);
  if (!lines1) return Failure<StepError>{std::move(lines1.error()).with("describe_cgroups")};

  // Prefer a mount of the hierarchy's own root; a bind mount of a subtree
  // (root != "/") shows paths relative to that subtree.
  auto pick = [&](auto&& matches) -> const MountInfoEntry* {
    const MountInfoEntry* found = nullptr;
    for (const auto& m : *mounts) {
      if (!matches(m)) continue;
      if (m.root == "/") return &m;
      if (!found) found = &m;
    }
    return found;
  };
  auto relative_to_root = [](const MountInfoEntry& m, const std::string& path) {
    if (m.root == "/" || path.rfind(m.root, 0) != 0) return path;
    std::string rest = path.substr(m.root.size());
    if (!rest.empty() && rest.front() != '/') return path;  // prefix, not a component
    return rest.empty() ? std::string("/") : rest;
  };

  CgroupHost host;
  for (const auto& line : *lines1) {
    if (line.id == 0 && line.controllers.empty()) {
      const auto* m = pick([](const MountInfoEntry& e) { return e.fstype == "cgroup2"; });
      if (!m) continue;  // a v2 line without a cgroup2 mount: v1-only host
      UnifiedHierarchy u;
      u.mount = m->mount_point;
      u.init_path = relative_to_root(*m, line.path);
      u.base = u.init_path;
      constexpr std::string_view kInit = "/init.scope";
      if (u.base.size() >= kInit.size() &&
          u.base.compare(u.base.size() - kInit.size(), kInit.size(), kInit) == 0) {
        u.base.resize(u.base.size() - kInit.size());
        if (u.base.empty()) u.base = "/";
      }
      u.controllers = parse_controller_list(v2_controllers);
      host.v2 = std::move(u);
      continue;
    }
    if (line.controllers.empty()) continue;
    const auto* m = pick([&](const MountInfoEntry& e) {
      if (e.fstype != "cgroup") return false;
      for (const auto& c : line.controllers)
        if (!contains(e.super_options, c)) return false;
      return true;
    });
    if (!m) continue;  // listed by the kernel but not mounted here
    V1Hierarchy h;
    h.controllers = line.controllers;
    h.dir_name = hierarchy_dir_name(line.controllers);
    h.mount = m->mount_point;
    h.init_path = relative_to_root(*m, line.path);
    host.v1.push_back(std::move(h));
  }
  if (!host.v1.empty())
    host.layout = host.v2 ? CgroupLayout::Hybrid : CgroupLayout::V1;
  else
    host.layout = host.v2 ? CgroupLayout::V2 : CgroupLayout::None;
  return host;
}

Result<CgroupHost> probe_cgroups() {
  auto mountinfo = read_text("/proc/self/mountinfo");
  if (!mountinfo) return Failure<StepError>{std::move(mountinfo.error())};
  auto pid1 = read_text("/proc/1/cgroup");
  if (!pid1) return Failure<StepError>{std::move(pid1.error())};
  auto host = describe_cgroups(*mountinfo, *pid1, "");
  if (!host) return host;
  if (host->v2) {
    auto path = join_path(join_path(host->v2->mount, host->v2->base), "cgroup.controllers");
    auto controllers = read_text(path);
    if (!controllers) return Failure<StepError>{std::move(controllers.error())};
    host->v2->controllers = parse_controller_list(*controllers);
  }
  return host;
}

std::optional<std::string> cgroup_refusal(const std::vector<std::string>& controllers) {
  auto host = probe_cgroups();
  if (!host) return host.error().what();
  policy::CgroupPlan plan;
  plan.parent = "lithos-check.slice";
  plan.scope = "check.scope";
  plan.controllers = controllers;
  auto placed = place_cgroup(*host, plan);
  if (!placed) return placed.error().what();
  return std::nullopt;
}

Result<std::vector<CgroupPlacement>> place_cgroup(const CgroupHost& host,
                                                  const policy::CgroupPlan& plan) {
  if (!safe_relative(plan.parent, true))
    return step_error("enter_cgroup", plan.parent, EINVAL, "bad parent cgroup name");
  if (!safe_relative(plan.scope, false))
    return step_error("enter_cgroup", plan.scope, EINVAL, "bad scope cgroup name");

  std::vector<CgroupPlacement> out;
  auto placement_for = [&](bool unified, const std::string& base) -> CgroupPlacement& {
    for (auto& p : out)
      if (p.unified == unified && p.base == base) return p;
    CgroupPlacement p;
    p.unified = unified;
    p.base = base;
    p.parent = join_path(base, plan.parent);
    p.scope = join_path(p.parent, plan.scope);
    out.push_back(std::move(p));
    return out.back();
  };

  for (const auto& controller : plan.controllers) {
    if (const auto* h = host.find_v1(controller)) {
      auto& p = placement_for(false, join_path(h->mount, h->init_path));
      if (!contains(p.controllers, controller)) p.controllers.push_back(controller);
      continue;
    }
    if (host.v2) {
      std::string name = v2_name(controller);
      if (name.empty() || contains(host.v2->controllers, name)) {
        auto& p = placement_for(true, join_path(host.v2->mount, host.v2->base));
        if (!name.empty() && !contains(p.controllers, name)) p.controllers.push_back(name);
        continue;
      }
      return step_error("enter_cgroup", join_path(host.v2->mount, host.v2->base), 0,
                        "CGroup " + controller +
                            " not mounted (neither a v1 hierarchy nor "
                            "enabled in the unified hierarchy)");
    }
    return step_error("enter_cgroup", "", 0, "CGroup " + controller + " not mounted");
  }
  return out;
}

std::uint64_t shares_to_weight(std::uint64_t shares) {
  shares = std::clamp<std::uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

CgroupWrites plan_cgroup_writes(const std::vector<CgroupPlacement>& placements,
                                const policy::CgroupPlan& plan) {
  CgroupWrites out;
  auto find = [&](std::string_view controller) -> const CgroupPlacement* {
    for (const auto& p : placements)
      if (contains(p.controllers, controller)) return &p;
    return nullptr;
  };
  auto skipped = [&](std::string_view controller, std::string_view key) {
    out.skipped.push_back(StepError{"enter_cgroup",
                                    "",
                                    0,
                                    std::string(key) + " not applied: the " +
                                        std::string(controller) + " controller is not joined",
                                    {}});
  };
  constexpr auto kUnlimited = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

  if (const auto* p = find("memory")) {
    auto file = [&](std::string_view name) { return join_path(p->scope, name); };
    if (p->unified) {
      bool limited = plan.memory_limit < kUnlimited;
      out.writes.push_back({"memory", file("memory.max"),
                            limited ? std::to_string(plan.memory_limit) : "max", false});
      // v1's memsw limit equal to the memory limit leaves no room for swap:
      // on v2 that is swap.max 0.
      out.writes.push_back({"memory", file("memory.swap.max"), limited ? "0" : "max", true});
    } else {
      out.writes.push_back(
          {"memory", file("memory.limit_in_bytes"), std::to_string(plan.memory_limit), false});
      out.writes.push_back(
          {"memory", file("memory.memsw.limit_in_bytes"), std::to_string(plan.memory_limit), true});
    }
  } else {
    skipped("memory", "memory-limit");
  }

  if (const auto* p = find("cpu")) {
    if (p->unified)
      out.writes.push_back({"cpu", join_path(p->scope, "cpu.weight"),
                            std::to_string(shares_to_weight(plan.cpu_shares)), false});
    else
      out.writes.push_back(
          {"cpu", join_path(p->scope, "cpu.shares"), std::to_string(plan.cpu_shares), false});
  } else {
    skipped("cpu", "cpu-shares");
  }

  if (plan.pids_limit) {
    if (const auto* p = find("pids"))
      out.writes.push_back(
          {"pids", join_path(p->scope, "pids.max"), std::to_string(*plan.pids_limit), false});
    else
      skipped("pids", "pids-limit");
  }
  return out;
}

Result<void> prepare_cgroup_parent(const std::vector<CgroupPlacement>& placements) {
  for (const auto& p : placements) {
    if (int err = make_dir(p.parent))
      return step_error("prepare_cgroup_parent", p.parent, err, "mkdir");
    if (!p.unified || p.controllers.empty()) continue;
    std::string enable;
    for (const auto& c : p.controllers) enable += (enable.empty() ? "+" : " +") + c;
    for (const auto& dir : {p.base, p.parent}) {
      auto file = join_path(dir, "cgroup.subtree_control");
      if (int err = write_text(file, enable))
        return step_error("prepare_cgroup_parent", file, err, "enable " + enable);
    }
  }
  return {};
}

// Whether `pid` is one of the pids of a cgroup.procs file.
static bool listed_in(const std::string& procs_file, pid_t pid) {
  auto text = read_text(procs_file);
  if (!text) return false;
  std::string wanted = std::to_string(pid);
  for (auto line : lines(*text))
    if (line == wanted) return true;
  return false;
}

Result<void> join_tree_cgroup(const std::vector<CgroupPlacement>& placements, pid_t pid) {
  std::string value = std::to_string(pid);
  for (const auto& p : placements) {
    std::string dir = p.parent;
    if (p.unified) {
      dir = join_path(p.parent, std::string(kTreeCgroupLeaf));
      if (int err = make_dir(dir)) return step_error("join_tree_cgroup", dir, err, "mkdir");
    }
    auto file = join_path(dir, "cgroup.procs");
    // A re-exec finds itself there already; a migration takes the kernel's
    // cgroup-wide lock and an RCU grace period, on every reload, for nothing.
    if (listed_in(file, pid)) continue;
    if (int err = write_text(file, value))
      return step_error("join_tree_cgroup", file, err, "join pid " + value);
  }
  return {};
}

Result<std::vector<StepError>> enter_cgroup(const std::vector<CgroupPlacement>& placements,
                                            const policy::CgroupPlan& plan, pid_t pid) {
  for (const auto& p : placements) {
    struct stat st {};
    if (::stat(p.parent.c_str(), &st) != 0)
      return step_error("enter_cgroup", p.parent, errno, "parent cgroup");
    if (int err = make_dir(p.scope)) return step_error("enter_cgroup", p.scope, err, "mkdir");
  }

  // Limits before the process is moved in, so it never runs unlimited. A
  // write can depend on another (v1: memsw >= limit_in_bytes, so lowering
  // needs limit first and raising memsw first): retry EINVAL once.
  auto writes = plan_cgroup_writes(placements, plan);
  std::vector<StepError> warnings = std::move(writes.skipped);
  std::vector<const CgroupWrite*> retry;
  for (const auto& w : writes.writes) {
    int err = write_text(w.file, w.value);
    if (err == ENOENT && w.only_if_exists) continue;
    if (err == EINVAL)
      retry.push_back(&w);
    else if (err != 0)
      warnings.push_back(StepError{"enter_cgroup", w.file, err, "write " + w.value, {}});
  }
  for (const auto* w : retry) {
    if (int err = write_text(w->file, w->value))
      warnings.push_back(StepError{"enter_cgroup", w->file, err, "write " + w->value, {}});
  }

  std::string value = std::to_string(pid);
  for (const auto& p : placements) {
    auto file = join_path(p.scope, "cgroup.procs");
    if (int err = write_text(file, value))
      return step_error("enter_cgroup", file, err, "join pid " + value);
  }
  return warnings;
}

Result<void> remove_cgroup(const std::vector<CgroupPlacement>& placements, bool parent_too) {
  for (const auto& p : placements) {
    if (::rmdir(p.scope.c_str()) != 0 && errno != ENOENT)
      return step_error("remove_cgroup", p.scope, errno, "rmdir");
  }
  if (!parent_too) return {};
  for (const auto& p : placements) {
    if (::rmdir(p.parent.c_str()) != 0 && errno != ENOENT)
      return step_error("remove_cgroup", p.parent, errno, "rmdir");
  }
  return {};
}

}  // namespace lithos::runtime
