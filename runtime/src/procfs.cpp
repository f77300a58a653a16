// /proc and cgroup accounting parsers (pure) and their thin readers.
#include "lithos/runtime/procfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "lithos/common/text.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/log.hpp"

namespace lithos::runtime::procfs {

namespace {

std::vector<std::string_view> split_ws(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
    std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r'))
    text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

auto parse_error(std::string what, std::string detail) {
  return step_error("procfs", std::move(what), 0, std::move(detail));
}

// "  1234 kB" → bytes.
std::optional<std::uint64_t> kb_value(std::string_view value) {
  auto words = split_ws(value);
  if (words.empty()) return std::nullopt;
  auto number = to_u64(words[0]);
  if (!number) return std::nullopt;
  std::uint64_t unit = 1;
  if (words.size() > 1) {
    if (words[1] == "kB")
      unit = 1024;
    else if (words[1] == "mB" || words[1] == "MB")
      unit = 1048576;
    else
      return std::nullopt;
  }
  return *number * unit;
}

// The kernel escapes '\n' and '\\' (and other space characters) in Name.
std::string unescape_name(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    char next = text[++i];
    switch (next) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
        out += '\\';
        break;
      default:
        out += '\\';
        out += next;
    }
  }
  return out;
}

// -C VALUE, -CVALUE, --opt VALUE, --opt=VALUE: the value of option `arg`
// (advancing i), or nullopt when it is missing.
std::optional<std::string> option_value(const std::vector<std::string>& argv, std::size_t& i,
                                        std::string_view name) {
  const std::string& arg = argv[i];
  if (arg.size() > name.size() && arg.compare(0, name.size(), name) == 0) {
    if (name.size() == 2 && name[0] == '-' && name[1] != '-') return arg.substr(2);  // -CVALUE
    if (arg[name.size()] == '=') return arg.substr(name.size() + 1);
    return std::nullopt;
  }
  if (i + 1 >= argv.size()) return std::nullopt;
  return argv[++i];
}

bool option_is(const std::string& arg, std::string_view name) {
  if (arg == name) return true;
  if (arg.size() <= name.size() || arg.compare(0, name.size(), name) != 0) return false;
  if (name.size() == 2 && name[0] == '-' && name[1] != '-') return true;  // -CVALUE
  return arg[name.size()] == '=';
}

}  // namespace

// ---- stat -------------------------------------------------------------------

Result<ProcStat> parse_stat(std::string_view text) {
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return parse_error("stat", "no (comm)");
  ProcStat stat;
  auto pid = to_i64(trim(text.substr(0, open)));
  if (!pid || *pid <= 0) return parse_error("stat", "bad pid");
  stat.pid = static_cast<pid_t>(*pid);
  stat.comm = std::string(text.substr(open + 1, close - open - 1));
  auto fields = split_ws(text.substr(close + 1));
  // fields[k] is proc(5) field k + 3.
  if (fields.size() < 22)
    return parse_error("stat", "only " + std::to_string(fields.size() + 2) + " fields");
  if (fields[0].size() != 1) return parse_error("stat", "bad state");
  stat.state = fields[0][0];
  auto ppid = to_i64(fields[1]);
  if (!ppid || *ppid < 0) return parse_error("stat", "bad ppid");
  stat.ppid = static_cast<pid_t>(*ppid);
  auto u64 = [&](std::size_t field, std::uint64_t& out) {
    auto v = to_u64(fields[field - 3]);
    if (!v) return false;
    out = *v;
    return true;
  };
  auto clamped = [&](std::size_t field, std::uint64_t& out) {
    auto v = to_i64(fields[field - 3]);
    if (!v) return false;
    out = *v < 0 ? 0 : static_cast<std::uint64_t>(*v);
    return true;
  };
  if (!u64(14, stat.utime) || !u64(15, stat.stime) || !clamped(16, stat.cutime) ||
      !clamped(17, stat.cstime) || !clamped(20, stat.num_threads) || !u64(22, stat.starttime) ||
      !u64(23, stat.vsize) || !clamped(24, stat.rss_pages))
    return parse_error("stat", "bad number");
  return stat;
}

std::string format_stat(const ProcStat& s) {
  auto n = [](auto v) { return std::to_string(v); };
  std::string out = n(s.pid) + " (" + s.comm + ") " + std::string(1, s.state) + " " + n(s.ppid);
  // pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  out += " 0 0 0 -1 4194304 0 0 0 0";
  out += " " + n(s.utime) + " " + n(s.stime) + " " + n(s.cutime) + " " + n(s.cstime);
  // priority nice num_threads itrealvalue
  out += " 20 0 " + n(s.num_threads) + " 0";
  out += " " + n(s.starttime) + " " + n(s.vsize) + " " + n(s.rss_pages);
  // rsslim and the rest, as the kernel writes them
  out += " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
  return out;
}

// ---- status, cmdline, statm, /proc/stat -----------------------------------------

Result<ProcStatus> parse_status(std::string_view text) {
  ProcStatus status;
  bool have_name = false;
  for (auto line : lines_of(text)) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto key = line.substr(0, colon);
    auto value = line.substr(colon + 1);
    if (key == "Name") {
      // Exactly one tab follows the colon; the name itself may start with spaces.
      if (!value.empty() && value.front() == '\t') value.remove_prefix(1);
      status.name = unescape_name(value);
      have_name = true;
    } else if (key == "PPid") {
      auto v = to_i64(trim(value));
      if (!v || *v < 0) return parse_error("status", "bad PPid");
      status.ppid = static_cast<pid_t>(*v);
    } else if (key == "Threads") {
      auto v = to_u64(trim(value));
      if (!v) return parse_error("status", "bad Threads");
      status.threads = *v;
    } else if (key == "VmRSS" || key == "VmSwap") {
      auto v = kb_value(trim(value));
      if (!v) return parse_error("status", "bad " + std::string(key));
      (key == "VmRSS" ? status.vm_rss : status.vm_swap) = *v;
    }
  }
  if (!have_name) return parse_error("status", "no Name");
  return status;
}

std::vector<std::string> parse_cmdline(std::string_view bytes) {
  std::vector<std::string> out;
  while (!bytes.empty()) {
    auto nul = bytes.find('\0');
    out.emplace_back(bytes.substr(0, nul));
    if (nul == std::string_view::npos) break;
    bytes.remove_prefix(nul + 1);
  }
  return out;
}

Result<std::uint64_t> parse_statm_resident(std::string_view text) {
  auto fields = split_ws(text);
  if (fields.size() < 2) return parse_error("statm", "fewer than 2 fields");
  auto v = to_u64(fields[1]);
  if (!v) return parse_error("statm", "bad resident");
  return *v;
}

Result<std::uint64_t> parse_boot_time(std::string_view proc_stat) {
  for (auto line : lines_of(proc_stat)) {
    auto words = split_ws(line);
    if (words.size() == 2 && words[0] == "btime") {
      if (auto v = to_u64(words[1])) return *v;
      return parse_error("/proc/stat", "bad btime");
    }
  }
  return parse_error("/proc/stat", "no btime");
}

// ---- argv -------------------------------------------------------------------

std::optional<TreeArgs> parse_tree_argv(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::nullopt;
  TreeArgs args;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      if (i + 1 != argv.size()) return std::nullopt;  // the tree takes no positionals
      break;
    }
    if (option_is(arg, "-C") || option_is(arg, "--config")) {
      auto v = option_value(argv, i, arg.rfind("--", 0) == 0 ? "--config" : "-C");
      if (!v) return std::nullopt;
      args.config = *v;
    } else if (option_is(arg, "--log-level")) {
      auto v = option_value(argv, i, "--log-level");
      if (!v || !parse_log_level(*v)) return std::nullopt;
    } else if (arg != "--log-stderr") {
      return std::nullopt;
    }
  }
  return args;
}

std::optional<policy::KnotInvocation> parse_knot_argv(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::nullopt;
  auto args = policy::KnotInvocation::parse(argv);
  if (!args) return std::nullopt;
  if (args->log_level && !parse_log_level(*args->log_level)) return std::nullopt;
  policy::Diagnostics diags;
  auto identity = policy::parse_instance_identity(args->identity, diags);
  if (!identity || diags.has_errors()) return std::nullopt;
  return args;
}

// ---- cgroups ------------------------------------------------------------------

namespace {

// `path` (as in /proc/PID/cgroup) seen through `mount`: nullopt when the
// mount shows another subtree.
std::optional<std::string> through_mount(const MountInfoEntry& mount, const std::string& path) {
  std::string root = mount.root == "/" ? "" : mount.root;
  if (!root.empty()) {
    if (path.compare(0, root.size(), root) != 0) return std::nullopt;
    if (path.size() > root.size() && path[root.size()] != '/') return std::nullopt;
  }
  return mount.mount_point + path.substr(root.size());
}

std::optional<std::string> cgroup_dir(const std::vector<MountInfoEntry>& mounts,
                                      const ProcCgroupLine& line, std::string_view controller) {
  std::optional<std::string> best;
  std::size_t best_root = 0;
  for (const auto& m : mounts) {
    bool fits = controller.empty() ? m.fstype == "cgroup2"
                                   : m.fstype == "cgroup" &&
                                         std::find(m.super_options.begin(), m.super_options.end(),
                                                   controller) != m.super_options.end();
    if (!fits) continue;
    auto dir = through_mount(m, line.path);
    // The mount of the hierarchy's root wins over bind mounts of subtrees.
    std::size_t root_len = m.root == "/" ? 0 : m.root.size() + 1;
    if (dir && (!best || root_len < best_root)) {
      best = dir;
      best_root = root_len;
    }
  }
  return best;
}

std::string_view leaf_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

CgroupFiles instance_cgroup_files(const std::vector<MountInfoEntry>& mounts,
                                  const std::vector<ProcCgroupLine>& lines,
                                  std::string_view instance_name) {
  const std::string scope = policy::scope_name(instance_name);
  CgroupFiles files;
  for (const auto& line : lines) {
    if (leaf_of(line.path) != scope) continue;
    auto has = [&](std::string_view c) {
      return std::find(line.controllers.begin(), line.controllers.end(), c) !=
             line.controllers.end();
    };
    if (line.controllers.empty()) {
      if (line.id != 0) continue;
      if (auto dir = cgroup_dir(mounts, line, {})) {
        files.cpu_stat = *dir + "/cpu.stat";
        files.memory_current = *dir + "/memory.current";
      }
      continue;
    }
    if (has("cpuacct"))
      if (auto dir = cgroup_dir(mounts, line, "cpuacct"))
        files.cpuacct_usage = *dir + "/cpuacct.usage";
    if (has("memory"))
      if (auto dir = cgroup_dir(mounts, line, "memory"))
        files.memory_usage_in_bytes = *dir + "/memory.usage_in_bytes";
  }
  return files;
}

Result<std::uint64_t> parse_single_value(std::string_view text) {
  auto v = to_u64(trim(text));
  if (!v) return parse_error("cgroup", "not a number: " + std::string(trim(text).substr(0, 40)));
  return *v;
}

Result<std::uint64_t> parse_cpu_stat_usage_usec(std::string_view text) {
  for (auto line : lines_of(text)) {
    auto words = split_ws(line);
    if (words.size() == 2 && words[0] == "usage_usec") {
      if (auto v = to_u64(words[1])) return *v;
      return parse_error("cpu.stat", "bad usage_usec");
    }
  }
  return parse_error("cpu.stat", "no usage_usec");
}

CgroupUsage read_cgroup_usage(const CgroupFiles& files) {
  CgroupUsage usage;
  if (files.cpuacct_usage)
    if (auto text = read_file(*files.cpuacct_usage))
      if (auto ns = parse_single_value(*text)) {
        usage.cpu_usec = *ns / 1000;
        usage.cpu_file = *files.cpuacct_usage;
      }
  if (!usage.cpu_usec && files.cpu_stat)
    if (auto text = read_file(*files.cpu_stat))
      if (auto us = parse_cpu_stat_usage_usec(*text)) {
        usage.cpu_usec = *us;
        usage.cpu_file = *files.cpu_stat;
      }
  if (files.memory_usage_in_bytes)
    if (auto text = read_file(*files.memory_usage_in_bytes))
      if (auto bytes = parse_single_value(*text)) {
        usage.memory_bytes = *bytes;
        usage.memory_file = *files.memory_usage_in_bytes;
      }
  if (!usage.memory_bytes && files.memory_current)
    if (auto text = read_file(*files.memory_current))
      if (auto bytes = parse_single_value(*text)) {
        usage.memory_bytes = *bytes;
        usage.memory_file = *files.memory_current;
      }
  return usage;
}

// ---- Prometheus text ---------------------------------------------------------------

std::vector<MetricSample> parse_prometheus_text(std::string_view text) {
  std::vector<MetricSample> out;
  for (auto raw : lines_of(text)) {
    auto line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    MetricSample sample;
    std::size_t i = 0;
    auto name_char = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == ':';
    };
    while (i < line.size() && name_char(line[i])) ++i;
    if (i == 0) continue;
    sample.name = std::string(line.substr(0, i));
    bool ok = true;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (ok) {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        std::size_t start = i;
        while (i < line.size() && name_char(line[i])) ++i;
        std::string label(line.substr(start, i - start));
        if (label.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          ok = false;
          break;
        }
        i += 2;
        std::string value;
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) {
            char next = line[++i];
            value += next == 'n' ? '\n' : next;
          } else {
            value += line[i];
          }
        }
        if (i >= line.size()) {
          ok = false;
          break;
        }
        ++i;  // closing quote
        sample.labels[label] = value;
      }
    }
    if (!ok) continue;
    auto rest = split_ws(line.substr(std::min(i, line.size())));
    if (rest.empty() || rest.size() > 2) continue;
    std::string number(rest[0]);
    char* end = nullptr;
    sample.value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) continue;
    out.push_back(std::move(sample));
  }
  return out;
}

// ---- readers ---------------------------------------------------------------------

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return step_error("read", path, errno);
  auto out = read_all(fd.get());
  if (!out) return step_error("read", path, out.error());
  return std::move(*out);
}

std::optional<ProcessInfo> read_process(const std::string& proc_root, pid_t pid) {
  std::string dir = proc_root + "/" + std::to_string(pid);
  auto stat_text = read_file(dir + "/stat");
  if (!stat_text) return std::nullopt;
  auto stat = parse_stat(*stat_text);
  if (!stat) return std::nullopt;
  ProcessInfo info;
  info.pid = stat->pid;
  info.ppid = stat->ppid;
  info.name = stat->comm;
  info.utime = stat->utime;
  info.stime = stat->stime;
  info.cutime = stat->cutime;
  info.cstime = stat->cstime;
  info.starttime = stat->starttime;
  info.threads = stat->num_threads;
  if (auto text = read_file(dir + "/status"))
    if (auto status = parse_status(*text)) {
      info.name = status->name;
      info.mem_rss = status->vm_rss;
      info.mem_swap = status->vm_swap;
      if (status->threads) info.threads = status->threads;
    }
  if (auto text = read_file(dir + "/cmdline")) info.argv = parse_cmdline(*text);
  return info;
}

Result<ProcessTable> read_process_table(const std::string& proc_root) {
  DIR* dir = ::opendir(proc_root.c_str());
  if (!dir) return step_error("scan", proc_root, errno);
  std::vector<pid_t> pids;
  while (dirent* entry = ::readdir(dir)) {
    auto pid = to_u64(entry->d_name);
    if (pid && *pid > 0 && *pid < (1u << 30)) pids.push_back(static_cast<pid_t>(*pid));
  }
  ::closedir(dir);
  std::sort(pids.begin(), pids.end());
  ProcessTable table;
  table.reserve(pids.size());
  for (pid_t pid : pids)
    if (auto info = read_process(proc_root, pid)) table.push_back(std::move(*info));
  return table;
}

CgroupUsage read_instance_cgroup(const std::vector<MountInfoEntry>& mounts, pid_t knot_pid,
                                 std::string_view instance_name, const std::string& proc_root) {
  auto text = read_file(proc_root + "/" + std::to_string(knot_pid) + "/cgroup");
  if (!text) return {};
  auto lines = parse_proc_cgroup(*text);
  if (!lines) return {};
  return read_cgroup_usage(instance_cgroup_files(mounts, *lines, instance_name));
}

}  // namespace lithos::runtime::procfs
