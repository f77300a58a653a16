// Cgroups on every layout (v1, v2, hybrid; docs/cgroups.md): probing the
// host, placing a plan's scope, planning the control writes, entering and
// removing. One file over 600 lines on purpose: placement and write planning
// answer the same question for lithos_check (cgroup_refusal) and for the
// knot, and keeping them together keeps the two from drifting apart.
#include "lithos/runtime/cgroups.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <limits>
#include <span>

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
  auto text = read_all(fd.get());
  if (!text) return step_error("probe_cgroups", path, text.error(), "read");
  return std::move(*text);
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
  if (!mounts) return forward_error(std::move(mounts), "describe_cgroups");
  auto lines1 = parse_proc_cgroup(pid1_cgroup);
  if (!lines1) return forward_error(std::move(lines1), "describe_cgroups");

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
  if (!mountinfo) return pass_error(std::move(mountinfo));
  auto pid1 = read_text("/proc/1/cgroup");
  if (!pid1) return pass_error(std::move(pid1));
  auto host = describe_cgroups(*mountinfo, *pid1, "");
  if (!host) return host;
  if (host->v2) {
    auto path = join_path(join_path(host->v2->mount, host->v2->base), "cgroup.controllers");
    auto controllers = read_text(path);
    if (!controllers) return pass_error(std::move(controllers));
    host->v2->controllers = parse_controller_list(*controllers);
  }
  return host;
}

std::optional<policy::CgroupRefusal> cgroup_refusal(const policy::CgroupPlan& plan) {
  auto host = probe_cgroups();
  if (!host) return policy::CgroupRefusal{"", host.error().what()};
  return cgroup_refusal(*host, plan);
}

std::optional<policy::CgroupRefusal> cgroup_refusal(const CgroupHost& host,
                                                    const policy::CgroupPlan& plan) {
  policy::CgroupPlan named = plan;
  named.parent = "lithos-check.slice";
  named.scope = "check.scope";
  auto placed = place_cgroup(host, named);
  if (!placed) return policy::CgroupRefusal{"", placed.error().what()};
  auto writes = plan_cgroup_writes(*placed, named);
  if (!writes.unsupported.empty()) return writes.unsupported.front();
  // A v1 hierarchy has every file of its controller in every cgroup, its
  // root included: what PID 1's cgroup lacks, the scope will lack.
  for (const auto& w : writes.writes) {
    if (!w.required) continue;
    for (const auto& p : *placed) {
      if (p.unified || w.file.rfind(p.scope + "/", 0) != 0) continue;
      std::string name = w.file.substr(p.scope.size() + 1);
      struct stat st {};
      if (::stat(join_path(p.base, name).c_str(), &st) == 0) continue;
      return policy::CgroupRefusal{
          w.key, "the " + w.controller + " hierarchy here (cgroup v1, " + p.base + ") has no " +
                     name + ", and the unified hierarchy does not serve " + w.controller};
    }
  }
  // The kernel limits whole disks that exist: a partition or an absent
  // device is refused at the write.
  for (const auto& device : plan.io_max) {
    std::string numbers = std::to_string(device.major) + ":" + std::to_string(device.minor);
    std::string sysfs = "/sys/dev/block/" + numbers;
    struct stat st {};
    if (::stat(sysfs.c_str(), &st) != 0)
      return policy::CgroupRefusal{
          "io-max", "no block device " + numbers + " on this host (" + sysfs + " does not exist)"};
    if (::stat((sysfs + "/partition").c_str(), &st) == 0)
      return policy::CgroupRefusal{
          "io-max", numbers + " is a partition; the kernel limits only whole disks (" + sysfs +
                        "/partition exists)"};
  }
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

std::uint64_t io_weight_to_blkio(std::uint64_t weight) {
  return std::clamp<std::uint64_t>(weight, 2, 200) * 5;
}

namespace {

// The controls added since the original: each write is required, and a
// control with no file in the hierarchy serving it is unsupported. A
// control the plan leaves unset is written back to the kernel's default
// where its controller is joined (optional, skipped where the file is
// absent): the tree keeps a scope across restarts and upgrades, so a value
// an earlier config set would otherwise stay.
template <class Find>
void plan_control_writes(const Find& find, const policy::CgroupPlan& plan, CgroupWrites& out) {
  auto unsupported = [&](std::string key, std::string why) {
    out.unsupported.push_back({std::move(key), std::move(why)});
  };
  auto write = [&](const CgroupPlacement& p, std::string_view controller, std::string_view key,
                   std::string_view file, std::string value) {
    CgroupWrite w;
    w.controller = std::string(controller);
    w.file = join_path(p.scope, file);
    w.value = std::move(value);
    w.required = true;
    w.key = std::string(key);
    out.writes.push_back(std::move(w));
  };
  auto reset = [&](const CgroupPlacement& p, std::string_view controller, std::string_view file,
                   std::string value) {
    CgroupWrite w;
    w.controller = std::string(controller);
    w.file = join_path(p.scope, file);
    w.value = std::move(value);
    w.only_if_exists = true;
    out.writes.push_back(std::move(w));
  };
  auto not_joined = [&](std::string_view key, std::string_view controller) {
    unsupported(std::string(key), "the " + std::string(controller) +
                                      " controller is not joined (cgroup-controllers)");
  };
  auto v1_only = [&](std::string_view key, std::string_view v2_file, const CgroupPlacement& p) {
    unsupported(std::string(key), std::string(v2_file) +
                                      " exists only in cgroup v2, and memory is a v1 hierarchy "
                                      "here (" +
                                      p.base + ") with no equivalent");
  };

  if (const auto* p = find("memory")) {
    if (p->unified) {
      if (plan.memory_low)
        write(*p, "memory", "memory-low", "memory.low", std::to_string(*plan.memory_low));
      else
        reset(*p, "memory", "memory.low", "0");
      if (plan.memory_high)
        write(*p, "memory", "memory-high", "memory.high", std::to_string(*plan.memory_high));
      else
        reset(*p, "memory", "memory.high", "max");
      if (plan.memory_oom_group)
        write(*p, "memory", "memory-oom-group", "memory.oom.group", "1");
      else
        reset(*p, "memory", "memory.oom.group", "0");
    } else {
      if (plan.memory_low)
        write(*p, "memory", "memory-low", "memory.soft_limit_in_bytes",
              std::to_string(*plan.memory_low));
      else
        reset(*p, "memory", "memory.soft_limit_in_bytes", "-1");
      if (plan.memory_high) v1_only("memory-high", "memory.high", *p);
      if (plan.memory_oom_group) v1_only("memory-oom-group", "memory.oom.group", *p);
    }
  } else {
    if (plan.memory_low) not_joined("memory-low", "memory");
    if (plan.memory_high) not_joined("memory-high", "memory");
    if (plan.memory_oom_group) not_joined("memory-oom-group", "memory");
  }

  if (const auto* p = find("cpu")) {
    const std::string period = std::to_string(plan.cpu_period_us);
    if (p->unified) {
      if (plan.cpu_quota_us)
        write(*p, "cpu", "cpu-quota-us", "cpu.max",
              std::to_string(*plan.cpu_quota_us) + " " + period);
      else
        reset(*p, "cpu", "cpu.max", "max " + period);
    } else if (plan.cpu_quota_us) {
      // The period first: the quota is checked against it.
      write(*p, "cpu", "cpu-quota-us", "cpu.cfs_period_us", period);
      write(*p, "cpu", "cpu-quota-us", "cpu.cfs_quota_us", std::to_string(*plan.cpu_quota_us));
    } else {
      reset(*p, "cpu", "cpu.cfs_quota_us", "-1");
    }
  } else if (plan.cpu_quota_us) {
    not_joined("cpu-quota-us", "cpu");
  }

  const auto* io = find("io");
  if (!io) io = find("blkio");
  if (!io) {
    if (plan.io_weight) not_joined("io-weight", "blkio");
    if (!plan.io_max.empty()) not_joined("io-max", "blkio");
    return;
  }
  const std::string controller = io->unified ? "io" : "blkio";
  if (io->unified) {
    if (plan.io_weight)
      write(*io, controller, "io-weight", "io.weight",
            "default " + std::to_string(*plan.io_weight));
    else
      reset(*io, controller, "io.weight", "default 100");
  } else {
    if (plan.io_weight)
      write(*io, controller, "io-weight", "blkio.weight",
            std::to_string(io_weight_to_blkio(*plan.io_weight)));
    else
      reset(*io, controller, "blkio.weight", "500");
  }
  // Every limit of a device is written, unset ones as no limit: the
  // kernel keeps what a write does not name.
  for (const auto& device : plan.io_max) {
    if (io->unified) {
      write(*io, controller, "io-max", "io.max", policy::io_max_line(device, true));
      continue;
    }
    std::string numbers = std::to_string(device.major) + ":" + std::to_string(device.minor);
    auto add = [&](const char* file, const std::optional<std::uint64_t>& limit) {
      write(*io, controller, "io-max", file, numbers + " " + std::to_string(limit.value_or(0)));
    };
    add("blkio.throttle.read_bps_device", device.limits.read_bps);
    add("blkio.throttle.write_bps_device", device.limits.write_bps);
    add("blkio.throttle.read_iops_device", device.limits.read_iops);
    add("blkio.throttle.write_iops_device", device.limits.write_iops);
  }
}

}  // namespace

CgroupWrites plan_cgroup_writes(const std::vector<CgroupPlacement>& placements,
                                const policy::CgroupPlan& plan) {
  CgroupWrites out;
  auto limit = [&](std::string_view controller, std::string file, std::string value,
                   bool only_if_exists) {
    CgroupWrite w;
    w.controller = std::string(controller);
    w.file = std::move(file);
    w.value = std::move(value);
    w.only_if_exists = only_if_exists;
    out.writes.push_back(std::move(w));
  };
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
      limit("memory", file("memory.max"), limited ? std::to_string(plan.memory_limit) : "max",
            false);
      // v1's memsw limit equal to the memory limit leaves no room for swap:
      // on v2 that is swap.max 0.
      limit("memory", file("memory.swap.max"), limited ? "0" : "max", true);
    } else {
      limit("memory", file("memory.limit_in_bytes"), std::to_string(plan.memory_limit), false);
      limit("memory", file("memory.memsw.limit_in_bytes"), std::to_string(plan.memory_limit), true);
    }
  } else {
    skipped("memory", "memory-limit");
  }

  if (const auto* p = find("cpu")) {
    if (p->unified)
      limit("cpu", join_path(p->scope, "cpu.weight"),
            std::to_string(shares_to_weight(plan.cpu_shares)), false);
    else
      limit("cpu", join_path(p->scope, "cpu.shares"), std::to_string(plan.cpu_shares), false);
  } else {
    skipped("cpu", "cpu-shares");
  }

  if (plan.pids_limit) {
    if (const auto* p = find("pids"))
      limit("pids", join_path(p->scope, "pids.max"), std::to_string(*plan.pids_limit), false);
    else
      skipped("pids", "pids-limit");
  }
  plan_control_writes(find, plan, out);
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

// io-max devices that an earlier config of a reused scope limited and this
// plan does not name, written back to no limit.
static void reset_dropped_devices(const std::vector<CgroupPlacement>& placements,
                                  const policy::CgroupPlan& plan, CgroupWrites& out) {
  std::vector<std::string> named;
  for (const auto& d : plan.io_max)
    named.push_back(std::to_string(d.major) + ":" + std::to_string(d.minor));
  static constexpr std::string_view kV1Files[] = {
      "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
      "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
  static constexpr std::string_view kV2Files[] = {"io.max"};
  for (const auto& p : placements) {
    const bool v2 = p.unified && contains(p.controllers, "io");
    if (!v2 && (p.unified || !contains(p.controllers, "blkio"))) continue;
    for (auto file : v2 ? std::span<const std::string_view>(kV2Files)
                        : std::span<const std::string_view>(kV1Files)) {
      auto path = join_path(p.scope, file);
      auto text = read_text(path);
      if (!text) continue;  // a new scope, or no such file here
      for (auto line : lines(*text)) {
        std::string device(line.substr(0, line.find(' ')));
        if (device.empty() || contains(named, device)) continue;
        CgroupWrite w;
        w.controller = v2 ? "io" : "blkio";
        w.file = path;
        w.value = device + (v2 ? " rbps=max wbps=max riops=max wiops=max" : " 0");
        w.only_if_exists = true;
        out.writes.push_back(std::move(w));
      }
    }
  }
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
  if (!writes.unsupported.empty()) {
    const auto& first = writes.unsupported.front();
    return step_error("enter_cgroup", "", 0, first.key + " cannot be applied: " + first.why);
  }
  reset_dropped_devices(placements, plan, writes);
  std::vector<StepError> warnings = std::move(writes.skipped);
  std::vector<const CgroupWrite*> retry;
  auto failed = [&](const CgroupWrite& w, int err) -> std::optional<StepError> {
    if (w.required) return StepError{"enter_cgroup", w.file, err, w.key + ": write " + w.value, {}};
    warnings.push_back(StepError{"enter_cgroup", w.file, err, "write " + w.value, {}});
    return std::nullopt;
  };
  for (const auto& w : writes.writes) {
    int err = write_text(w.file, w.value);
    if (err == ENOENT && w.only_if_exists) continue;
    if (err == EINVAL)
      retry.push_back(&w);
    else if (err != 0)
      if (auto fatal = failed(w, err)) return Failure<StepError>{std::move(*fatal)};
  }
  for (const auto* w : retry) {
    if (int err = write_text(w->file, w->value))
      if (auto fatal = failed(*w, err)) return Failure<StepError>{std::move(*fatal)};
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
