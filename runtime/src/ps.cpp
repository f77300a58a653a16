// Grouping and rendering for lithos_ps (docs/lithos_ps.md).
#include "lithos/runtime/ps.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

namespace lithos::runtime::ps {

void Totals::add(const Totals& o) {
  processes += o.processes;
  threads += o.threads;
  mem_rss += o.mem_rss;
  mem_swap += o.mem_swap;
  user += o.user;
  system += o.system;
  child_user += o.child_user;
  child_system += o.child_system;
}

void Totals::add(const procfs::ProcessInfo& p) {
  processes += 1;
  threads += p.threads;
  mem_rss += p.mem_rss;
  mem_swap += p.mem_swap;
  user += p.utime;
  system += p.stime;
  child_user += p.cutime;
  child_system += p.cstime;
}

// ---- grouping ---------------------------------------------------------------------

std::vector<Tree> group(const procfs::ProcessTable& input) {
  // A pid read twice (reused while /proc was being scanned) counts once.
  procfs::ProcessTable table;
  table.reserve(input.size());
  {
    std::set<pid_t> pids;
    for (const auto& p : input)
      if (pids.insert(p.pid).second) table.push_back(p);
  }
  std::unordered_map<pid_t, std::vector<std::size_t>> children;
  for (std::size_t i = 0; i < table.size(); ++i) children[table[i].ppid].push_back(i);
  auto kids = [&](pid_t pid) -> const std::vector<std::size_t>& {
    static const std::vector<std::size_t> none;
    auto it = children.find(pid);
    return it == children.end() ? none : it->second;
  };
  // Sum of a subtree; `seen` guards against a pid cycle in an inconsistent
  // snapshot (pids reused while /proc was being read).
  auto subtree = [&](std::size_t root) {
    Totals totals;
    std::set<pid_t> seen;
    std::vector<std::size_t> stack{root};
    while (!stack.empty()) {
      std::size_t i = stack.back();
      stack.pop_back();
      if (!seen.insert(table[i].pid).second) continue;
      totals.add(table[i]);
      for (std::size_t k : kids(table[i].pid)) stack.push_back(k);
    }
    return totals;
  };

  // With one entry per pid every process has one parent, so a knot belongs
  // to one tree and a head to one knot. (A tree may also be the head of an
  // outer knot — lithos inside a container — and is shown in both roles.)
  std::vector<Tree> trees;
  for (const auto& process : table) {
    if (process.name != "lithos_tree") continue;
    auto tree_args = procfs::parse_tree_argv(process.argv);
    if (!tree_args) continue;
    Tree tree;
    tree.pid = process.pid;
    tree.config = tree_args->config;
    std::map<std::string, std::map<std::string, std::vector<Instance>>> by_name;
    for (std::size_t k : kids(process.pid)) {
      const auto& knot = table[k];
      if (knot.name != "lithos_knot") continue;
      auto knot_args = procfs::parse_knot_argv(knot.argv);
      if (!knot_args) continue;
      Instance instance;
      instance.name = knot_args->name.format();
      instance.parsed = knot_args->name;
      instance.knot_pid = knot.pid;
      for (std::size_t h : kids(knot.pid)) {
        Head head{table[h], subtree(h)};
        instance.totals.add(head.totals);
        instance.heads.push_back(std::move(head));
      }
      std::sort(instance.heads.begin(), instance.heads.end(),
                [](const Head& a, const Head& b) { return a.process.pid < b.process.pid; });
      std::string child_name =
          instance.parsed.command ? "cmd." + instance.parsed.child : instance.parsed.child;
      by_name[instance.parsed.sandbox][child_name].push_back(std::move(instance));
    }
    for (auto& [sandbox_name, child_map] : by_name) {
      Sandbox sandbox;
      sandbox.name = sandbox_name;
      for (auto& [child_name, list] : child_map) {
        Child child;
        child.name = child_name;
        std::sort(list.begin(), list.end(), [](const Instance& a, const Instance& b) {
          return std::pair(a.parsed.number, a.knot_pid) < std::pair(b.parsed.number, b.knot_pid);
        });
        for (const auto& instance : list) child.totals.add(instance.totals);
        child.instances = std::move(list);
        sandbox.totals.add(child.totals);
        sandbox.children.push_back(std::move(child));
      }
      tree.totals.add(sandbox.totals);
      tree.sandboxes.push_back(std::move(sandbox));
    }
    trees.push_back(std::move(tree));
  }
  std::sort(trees.begin(), trees.end(), [](const Tree& a, const Tree& b) { return a.pid < b.pid; });
  return trees;
}

std::vector<Instance*> instances(std::vector<Tree>& trees) {
  std::vector<Instance*> out;
  for (auto& tree : trees)
    for (auto& sandbox : tree.sandboxes)
      for (auto& child : sandbox.children)
        for (auto& instance : child.instances) out.push_back(&instance);
  return out;
}

void apply_restarts(Tree& tree, const std::vector<procfs::MetricSample>& samples) {
  for (auto& sandbox : tree.sandboxes)
    for (auto& child : sandbox.children)
      for (const auto& s : samples) {
        if (s.name != "lithos_process_deaths_total" || !(s.value >= 0) || s.value > 1e18) continue;
        auto sb = s.labels.find("sandbox");
        auto pr = s.labels.find("process");
        if (sb == s.labels.end() || pr == s.labels.end()) continue;
        if (sb->second != sandbox.name || pr->second != child.name) continue;
        child.restarts = static_cast<std::uint64_t>(s.value);
        break;
      }
}

// ---- formatting -----------------------------------------------------------------

namespace {

std::string one_decimal(double value, const char* unit) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f%s", value, unit);
  return buffer;
}

struct Paint {
  bool on;
  std::string red(const std::string& s) const {
    return on ? "\x1b[31m\x1b[1m" + s + "\x1b[0m\x1b[22m" : s;
  }
  std::string blue(const std::string& s) const { return on ? "\x1b[34m" + s + "\x1b[0m" : s; }
  std::string green(const std::string& s) const { return on ? "\x1b[32m" + s + "\x1b[0m" : s; }
};

std::string counts(const Totals& t) {
  return "[" + std::to_string(t.processes) + "/" + std::to_string(t.threads) + "]";
}

std::string uptime_text(std::uint64_t seconds, const Paint& paint) {
  std::string text = format_uptime(seconds);
  if (seconds < 30) return paint.red(text);
  if (seconds >= 3 * 86400) return paint.blue(text);
  return text;
}

}  // namespace

std::string format_memory(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + "B";
  if (bytes < 1048576) return one_decimal(static_cast<double>(bytes) / 1024.0, "kiB");
  if (bytes < 1073741824) return one_decimal(static_cast<double>(bytes) / 1048576.0, "MiB");
  return one_decimal(static_cast<double>(bytes) / 1073741824.0, "GiB");
}

std::string format_uptime(std::uint64_t s) {
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  if (s < 60) return n(s) + "s";
  if (s < 3600) return n(s / 60) + "m" + n(s % 60) + "s";
  if (s < 86400) return n(s / 3600) + "h" + n(s / 60 % 60) + "m" + n(s % 60) + "s";
  if (s < 3 * 86400) return n(s / 86400) + "d" + n(s / 3600 % 24) + "h" + n(s / 60 % 60) + "m";
  return n(s / 86400) + "days";
}

std::string format_cpu_seconds(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  char buffer[64];
  if (seconds < 10) {
    std::snprintf(buffer, sizeof buffer, "%.2fs", seconds);
    return buffer;
  }
  if (seconds < 60) return one_decimal(seconds, "s");
  auto s = static_cast<std::uint64_t>(seconds);
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
}

// ---- text -----------------------------------------------------------------------

namespace {

struct TextWriter {
  const Clock& clock;
  Paint paint;
  std::string out;

  std::string cpu(const Totals& t) const {
    return "cpu " + format_cpu_seconds(static_cast<double>(t.cpu_ticks()) /
                                       static_cast<double>(clock.ticks ? clock.ticks : 100));
  }
  static std::string restarts(const std::optional<std::uint64_t>& r) {
    return "restarts " + (r ? std::to_string(*r) : std::string("-"));
  }
  static std::string cgroup(const procfs::CgroupUsage& c) {
    if (!c.cpu_usec && !c.memory_bytes) return {};
    std::string mem = c.memory_bytes ? format_memory(*c.memory_bytes) : "-";
    std::string cpu = c.cpu_usec ? format_cpu_seconds(static_cast<double>(*c.cpu_usec) / 1e6) : "-";
    return " cgroup " + mem + "/" + cpu;
  }

  std::string instance_line(const Instance& instance, const std::string& name,
                            const std::optional<std::uint64_t>* restarts_here) const {
    std::string line;
    if (instance.ok()) {
      const auto& head = instance.heads.front();
      std::uint64_t start = clock.start_time(head.process);
      std::uint64_t up = clock.now > start ? clock.now - start : 0;
      line = paint.green(std::to_string(head.process.pid)) + " " + name + " " +
             uptime_text(up, paint) + " " + paint.blue(counts(head.totals)) + " " +
             paint.blue(format_memory(head.totals.memory())) + " " + cpu(head.totals);
    } else {
      line = paint.red("(" + std::to_string(instance.knot_pid) + ")") + " " + name + " ";
      if (instance.heads.empty())
        line += paint.red("failing");
      else
        line += paint.red(std::to_string(instance.heads.size())) + " " +
                paint.blue(counts(instance.totals)) + " " +
                paint.blue(format_memory(instance.totals.memory())) + " " + cpu(instance.totals);
    }
    line += cgroup(instance.cgroup);
    if (restarts_here) line += " " + restarts(*restarts_here);
    if (instance.ok()) line += " knot " + std::to_string(instance.knot_pid);
    return line;
  }

  void write(const std::vector<Tree>& trees) {
    for (const auto& tree : trees) {
      out += paint.blue(std::to_string(tree.pid)) + " tree " + paint.blue(tree.config) + " " +
             paint.blue(counts(tree.totals)) + " " +
             paint.blue(format_memory(tree.totals.memory())) + " " + cpu(tree.totals) + "\n";
      for (std::size_t s = 0; s < tree.sandboxes.size(); ++s) {
        const auto& sandbox = tree.sandboxes[s];
        bool last_sandbox = s + 1 == tree.sandboxes.size();
        out += std::string("  ") + (last_sandbox ? "└─" : "├─") + sandbox.name + " " +
               paint.blue(counts(sandbox.totals)) + " " +
               paint.blue(format_memory(sandbox.totals.memory())) + "\n";
        std::string indent = std::string("  ") + (last_sandbox ? "    " : "│   ");
        for (std::size_t c = 0; c < sandbox.children.size(); ++c) {
          const auto& child = sandbox.children[c];
          bool last_child = c + 1 == sandbox.children.size();
          std::string branch = indent + (last_child ? "└─" : "├─");
          if (child.instances.size() == 1 && child.instances.front().parsed.number == 0) {
            const auto& instance = child.instances.front();
            out += branch + instance_line(instance, child.name + ".0", &child.restarts) + "\n";
            continue;
          }
          out += branch + child.name + " " + paint.blue(counts(child.totals)) + " " +
                 paint.blue(format_memory(child.totals.memory())) + " " + cpu(child.totals) + " " +
                 restarts(child.restarts) + "\n";
          std::string inner = indent + (last_child ? "    " : "│   ");
          for (std::size_t i = 0; i < child.instances.size(); ++i) {
            const auto& instance = child.instances[i];
            bool last = i + 1 == child.instances.size();
            out +=
                inner + (last ? "└─" : "├─") +
                instance_line(instance, child.name + "." + std::to_string(instance.parsed.number),
                              nullptr) +
                "\n";
          }
        }
      }
    }
  }
};

}  // namespace

std::string render_text(const std::vector<Tree>& trees, const Clock& clock, bool color) {
  TextWriter writer{clock, Paint{color}, {}};
  writer.write(trees);
  return writer.out;
}

// ---- JSON -----------------------------------------------------------------------

std::string render_json(const std::vector<Tree>& trees, const Clock& clock) {
  using nlohmann::json;
  json out = json::object();
  json tree_list = json::array();
  for (const auto& tree : trees) {
    json children = json::array();
    for (const auto& sandbox : tree.sandboxes)
      for (const auto& child : sandbox.children)
        for (const auto& instance : child.instances) {
          json heads = json::array();
          for (const auto& head : instance.heads) {
            const auto& t = head.totals;
            heads.push_back({{"child_system_time", t.child_system},
                             {"child_user_time", t.child_user},
                             {"mem_rss", t.mem_rss},
                             {"mem_swap", t.mem_swap},
                             {"pid", head.process.pid},
                             {"processes", t.processes},
                             {"start_time", clock.start_time(head.process)},
                             {"system_time", t.system},
                             {"threads", t.threads},
                             {"user_time", t.user}});
          }
          json cgroup = nullptr;
          if (instance.cgroup.cpu_usec || instance.cgroup.memory_bytes) {
            cgroup = json::object();
            const auto& c = instance.cgroup;
            cgroup["cpu_usage_usec"] = c.cpu_usec ? json(*c.cpu_usec) : json(nullptr);
            cgroup["cpu_file"] = c.cpu_usec ? json(c.cpu_file) : json(nullptr);
            cgroup["memory_bytes"] = c.memory_bytes ? json(*c.memory_bytes) : json(nullptr);
            cgroup["memory_file"] = c.memory_bytes ? json(c.memory_file) : json(nullptr);
          }
          children.push_back({{"name", instance.name},
                              {"ok", instance.ok()},
                              {"pid", instance.knot_pid},
                              {"processes", std::move(heads)},
                              {"sandbox", sandbox.name},
                              {"process", child.name},
                              {"index", instance.parsed.number},
                              {"restarts", child.restarts ? json(*child.restarts) : json(nullptr)},
                              {"cgroup", std::move(cgroup)}});
        }
    tree_list.push_back(
        {{"children", std::move(children)}, {"config", tree.config}, {"pid", tree.pid}});
  }
  out["trees"] = std::move(tree_list);
  out["clock_ticks"] = clock.ticks;
  // Paths are bytes: invalid UTF-8 is replaced, never thrown on.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- monitor ----------------------------------------------------------------------

std::string render_monitor(const std::vector<Tree>& previous, const std::vector<Tree>& current,
                           double interval, std::uint64_t ticks) {
  struct Row {
    std::string name;
    pid_t pid;
    double cpu;
    std::uint64_t threads, processes, memory;
  };
  std::map<std::pair<pid_t, std::string>, std::uint64_t> before;  // (knot, name) → ticks
  for (const auto& tree : previous)
    for (const auto& sandbox : tree.sandboxes)
      for (const auto& child : sandbox.children)
        for (const auto& instance : child.instances)
          before[{instance.knot_pid, instance.name}] = instance.totals.cpu_ticks();
  std::vector<Row> rows;
  std::uint64_t max_memory = 0;
  for (const auto& tree : current)
    for (const auto& sandbox : tree.sandboxes)
      for (const auto& child : sandbox.children)
        for (const auto& instance : child.instances) {
          Row row{instance.name,
                  instance.ok() ? instance.heads.front().process.pid : 0,
                  0.0,
                  instance.totals.threads,
                  instance.totals.processes,
                  instance.totals.memory()};
          auto it = before.find({instance.knot_pid, instance.name});
          std::uint64_t now_ticks = instance.totals.cpu_ticks();
          if (it != before.end() && now_ticks >= it->second && interval > 0 && ticks > 0)
            row.cpu = static_cast<double>(now_ticks - it->second) / static_cast<double>(ticks) /
                      interval * 100.0;
          max_memory = std::max(max_memory, row.memory);
          rows.push_back(std::move(row));
        }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::pair(a.name, a.pid) < std::pair(b.name, b.pid);
  });
  const char* unit = "GiB";
  double divisor = 1073741824.0;
  if (max_memory >= 1 && max_memory <= 10240) {
    unit = "B";
    divisor = 1;
  } else if (max_memory > 10240 && max_memory <= 10ULL * 1048576) {
    unit = "kiB";
    divisor = 1024;
  } else if (max_memory > 10ULL * 1048576 && max_memory <= 10ULL * 1073741824) {
    unit = "MiB";
    divisor = 1048576;
  }
  std::vector<std::vector<std::string>> cells{{"PID", "NAME", "CPU", "THR", "PRC", "MEM"}};
  for (const auto& row : rows) {
    char cpu[32], mem[48];
    std::snprintf(cpu, sizeof cpu, "%5.1f", row.cpu);
    std::snprintf(mem, sizeof mem, "%7.1f%s", static_cast<double>(row.memory) / divisor, unit);
    cells.push_back({std::to_string(row.pid), row.name, cpu, std::to_string(row.threads),
                     std::to_string(row.processes), mem});
  }
  std::size_t widths[6] = {};
  for (const auto& line : cells)
    for (std::size_t c = 0; c < 6; ++c) widths[c] = std::max(widths[c], line[c].size());
  std::string out;
  for (const auto& line : cells) {
    for (std::size_t c = 0; c < 6; ++c) {
      std::string pad(widths[c] - line[c].size(), ' ');
      out += c == 1 ? line[c] + pad : pad + line[c];  // text left, numbers right
      out += ' ';
    }
    out += '\n';
  }
  return out;
}

}  // namespace lithos::runtime::ps
