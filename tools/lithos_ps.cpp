// lithos_ps: shows what the lithos trees of this host are running — trees,
// sandboxes, processes, instances with their pids, uptime, CPU and memory
// (docs/lithos_ps.md). Exit 0; 1 when /proc cannot
// be read; 2 usage error.
#include <CLI/CLI.hpp>

#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <iostream>

#include "cli.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/runtime/ps.hpp"

using namespace lithos;
using namespace lithos::runtime;

namespace {

int fatal(const std::string& message) {
  std::cerr << "Fatal error: " << message << "\n";
  return 1;
}

// The tree's master config, resolved against the tree's working directory
// when relative (it was given relative to that).
std::string tree_relative(pid_t tree_pid, const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  return "/proc/" + std::to_string(tree_pid) + "/cwd/" + path;
}

// Samples of <metrics-dir>/lithos_tree.prom, the file the tree writes
// (docs/tree.md); none when the master config cannot be read, has no
// metrics-dir or the file does not exist. A relative metrics-dir is taken
// from the tree's working directory, as the tree does.
std::vector<procfs::MetricSample> tree_metrics(const ps::Tree& tree) {
  policy::Diagnostics diags;
  auto master =
      policy::load_config<policy::MasterCodec>(tree_relative(tree.pid, tree.config), diags);
  if (!master || !master->value.metrics_dir || master->value.metrics_dir->empty()) return {};
  auto text =
      procfs::read_file(tree_relative(tree.pid, *master->value.metrics_dir + "/lithos_tree.prom"));
  if (!text) return {};
  return procfs::parse_prometheus_text(*text);
}

struct Snapshot {
  std::vector<ps::Tree> trees;
  ps::Clock clock;
};

lithos::Result<Snapshot, std::string> snapshot() {
  Snapshot snap;
  auto table = procfs::read_process_table("/proc");
  if (!table) return fail(table.error().what());
  auto stat = procfs::read_file("/proc/stat");
  if (!stat) return fail(stat.error().what());
  auto boot = procfs::parse_boot_time(*stat);
  if (!boot) return fail(boot.error().what());
  snap.clock.boot_time = *boot;
  snap.clock.now = static_cast<std::uint64_t>(std::time(nullptr));
  long ticks = ::sysconf(_SC_CLK_TCK);
  snap.clock.ticks = ticks > 0 ? static_cast<std::uint64_t>(ticks) : 100;
  snap.trees = ps::group(*table);

  std::vector<MountInfoEntry> mounts;
  if (auto text = procfs::read_file("/proc/self/mountinfo"))
    if (auto parsed = parse_mountinfo(*text)) mounts = std::move(*parsed);
  for (auto* instance : ps::instances(snap.trees))
    instance->cgroup = procfs::read_instance_cgroup(mounts, instance->knot_pid, instance->name);
  for (auto& tree : snap.trees) ps::apply_restarts(tree, tree_metrics(tree));
  return snap;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Shows the processes of the running lithos trees."};
  lithos::tools::set_version(app, "lithos_ps");
  bool json = false, monitor = false, force_color = false, no_color = false;
  std::string format;
  auto* json_flag = app.add_flag("--json", json, "One JSON document on stdout");
  auto* monitor_flag = app.add_flag("--monitor", monitor, "Refresh a table every second");
  auto* format_opt =
      app.add_option("--format", format, "Output format: text or json (same as --json)")
          ->check(CLI::IsMember({"text", "json"}));
  auto* force_flag = app.add_flag("--force-color", force_color,
                                  "Colours on, even when stdout is no terminal or NO_COLOR is set");
  auto* no_color_flag = app.add_flag("--no-color", no_color, "Plain text");
  if (auto exit_code = lithos::tools::parse_command_line(app, argc, argv)) return *exit_code;
  // The pairs overwrite each other: the last one given wins, as in the original.
  enum class Mode { Tree, Json, Monitor } mode = Mode::Tree;
  // Colour by default only on a terminal, never with NO_COLOR (docs/cli.md).
  bool color = lithos::tools::colour_wanted(STDOUT_FILENO);
  for (const CLI::Option* opt : app.parse_order()) {
    if (opt == json_flag) mode = Mode::Json;
    if (opt == monitor_flag) mode = Mode::Monitor;
    if (opt == format_opt) mode = format == "json" ? Mode::Json : Mode::Tree;
    if (opt == force_flag) color = true;
    if (opt == no_color_flag) color = false;
  }

  if (mode == Mode::Monitor) {
    std::vector<ps::Tree> previous;
    auto last = std::chrono::steady_clock::now();
    // A periodic timerfd ticks on whole seconds from the start: the refresh
    // does not drift by the time a snapshot takes, as a sleep after it would.
    int ticker = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    itimerspec every_second{{1, 0}, {1, 0}};
    if (ticker < 0 || ::timerfd_settime(ticker, 0, &every_second, nullptr) != 0)
      return fatal(std::string("timerfd: ") + std::strerror(errno));
    for (;;) {
      auto snap = snapshot();
      if (!snap) return fatal(snap.error());
      auto now = std::chrono::steady_clock::now();
      double interval = std::chrono::duration<double>(now - last).count();
      last = now;
      std::cout << "\x1b[2J\x1b[;H"
                << ps::render_monitor(previous, snap->trees, interval, snap->clock.ticks)
                << std::flush;
      if (!std::cout) return fatal("cannot write to stdout");
      previous = std::move(snap->trees);
      std::uint64_t ticks = 0;
      while (::read(ticker, &ticks, sizeof ticks) < 0 && errno == EINTR) {
      }
    }
  }

  auto snap = snapshot();
  if (!snap) return fatal(snap.error());
  if (mode == Mode::Json)
    std::cout << ps::render_json(snap->trees, snap->clock);
  else
    std::cout << ps::render_text(snap->trees, snap->clock, color);
  std::cout.flush();
  if (!std::cout) return fatal("cannot write to stdout");
  return 0;
}
