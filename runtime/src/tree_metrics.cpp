// The metrics file (docs/tree.md, "Metrics"): a Prometheus text file the
// tree rewrites when something in it changed, read back at each start so
// that the counters continue across restarts and re-execs.
#include "tree_metrics.hpp"

#include <cerrno>
#include <cmath>
#include <limits>
#include <sstream>

#include "lithos/policy/supervise.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/procfs.hpp"
#include "lithos/runtime/safe_files.hpp"

namespace lithos::runtime::tree_detail {

namespace sv = lithos::policy::supervise;

namespace {

constexpr const char* kMetricsFile = "lithos_tree.prom";

// The file holds integers; the parser reads doubles, exact up to 2^53 (a
// counter that large would take centuries of restarts).
std::uint64_t counter_value(double value) {
  if (!(value >= 0)) return 0;
  if (value >= static_cast<double>(std::numeric_limits<std::uint64_t>::max()))
    return std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(value);
}

}  // namespace

void Metrics::set_dir(const std::string& dir) {
  dir_path_ = dir;
  file_ = policy::join_path(dir, kMetricsFile);
}

// The metrics dir is opened once; a group- or world-writable one that is
// not sticky lets others swap names in it, which is worth one warning
// (nothing is written or read through a name there, see safe_files.hpp).
int Metrics::dir_fd() {
  if (!dir_fd_ && dir_path_) {
    auto fd = open_directory(*dir_path_);
    if (!fd) {
      log_.error("Can't open metrics dir: " + fd.error().what());
      return -1;
    }
    dir_fd_ = std::move(*fd);
    if (others_can_replace_names(dir_fd_.get()))
      log_.warn("Metrics dir " + *dir_path_ +
                " is writable by group or others and not sticky: they can replace " + file_ +
                " (chmod +t or 0755 it)");
  }
  return dir_fd_.get();
}

void Metrics::read_previous() {
  if (file_.empty()) return;
  int dir = dir_fd();
  if (dir < 0) return;
  auto text = read_file_at(dir, *dir_path_, kMetricsFile);
  if (!text) {
    if (text.error().err != ENOENT) log_.warn("Counters start from 0: " + text.error().what());
    return;
  }
  for (const auto& sample : procfs::parse_prometheus_text(*text)) {
    const std::string& metric = sample.name;
    std::uint64_t value = counter_value(sample.value);
    if (metric == "lithos_master_restarts_total")
      restarts_ = value;
    else if (metric == "lithos_containers_started_total")
      total_.started = value;
    else if (metric == "lithos_containers_deaths_total")
      total_.deaths = value;
    else if (metric == "lithos_containers_failures_total")
      total_.failures = value;
    else if (metric.rfind("lithos_process_", 0) == 0) {
      auto sandbox = sample.labels.find("sandbox");
      auto process = sample.labels.find("process");
      if (sandbox == sample.labels.end() || process == sample.labels.end()) continue;
      auto& pc = per_process_[{sandbox->second, process->second}];
      if (metric == "lithos_process_started_total")
        pc.started = value;
      else if (metric == "lithos_process_deaths_total")
        pc.deaths = value;
      else if (metric == "lithos_process_failures_total")
        pc.failures = value;
    }
  }
}

// The counters read back continue; running counts start at 0 (the loop
// counts its knots again as it adopts them).
void Metrics::keep_only(const std::set<ProcessKey>& configured) {
  std::map<ProcessKey, Counters> kept;
  for (const auto& key : configured) {
    auto previous = per_process_.find(key);
    kept[key] = previous != per_process_.end() ? previous->second : Counters{};
    kept[key].running = 0;
  }
  per_process_ = std::move(kept);
  dirty_ = true;
}

void Metrics::on_start(const ProcessKey& key) {
  auto& pc = per_process_[key];
  total_.started += 1;
  pc.started += 1;
  dirty_ = true;
}

void Metrics::on_spawn_failure(const ProcessKey& key) {
  auto& pc = per_process_[key];
  total_.failures += 1;
  total_.deaths += 1;
  pc.failures += 1;
  pc.deaths += 1;
  dirty_ = true;
}

void Metrics::on_running(const ProcessKey& key) {
  auto& pc = per_process_[key];
  pc.running += 1;
  total_.running += 1;
  dirty_ = true;
}

void Metrics::on_death(const ProcessKey& key, bool failure) {
  auto& pc = per_process_[key];
  total_.deaths += 1;
  pc.deaths += 1;
  if (failure) {
    total_.failures += 1;
    pc.failures += 1;
  }
  total_.running -= 1;
  pc.running -= 1;
  dirty_ = true;
}

void Metrics::write(const LoopGauges& gauges) {
  dirty_ = false;
  if (file_.empty()) return;
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << " " << value << "\n";
  };
  metric("lithos_master_restarts_total", "counter", "tree starts, re-executions included",
         restarts_);
  metric("lithos_master_sandboxes", "gauge", "sandbox configs read successfully", sandboxes_);
  metric("lithos_master_containers", "gauge", "daemon instances configured", gauges.containers);
  metric("lithos_master_queue", "gauge", "pending starts and kills", gauges.queue);
  metric("lithos_containers_started_total", "counter", "start attempts", total_.started);
  metric("lithos_containers_deaths_total", "counter", "knot deaths and spawn failures",
         total_.deaths);
  metric("lithos_containers_failures_total", "counter", "deaths other than a knot exit 0",
         total_.failures);
  metric("lithos_containers_running", "gauge", "live knots", total_.running);
  metric("lithos_containers_unknown", "gauge", "unidentified children being stopped",
         gauges.unknown);
  struct Family {
    const char* name;
    const char* type;
    const char* help;
  };
  const Family families[] = {
      {"lithos_process_started_total", "counter", "start attempts per process entry"},
      {"lithos_process_deaths_total", "counter", "deaths per process entry"},
      {"lithos_process_failures_total", "counter", "failures per process entry"},
      {"lithos_process_running", "gauge", "live knots per process entry"}};
  for (std::size_t f = 0; f < 4; ++f) {
    out << "# HELP " << families[f].name << " " << families[f].help << "\n# TYPE "
        << families[f].name << " " << families[f].type << "\n";
    for (const auto& [key, pc] : per_process_) {
      out << families[f].name << "{sandbox=\"" << sv::prometheus_label(key.first) << "\",process=\""
          << sv::prometheus_label(key.second) << "\"} ";
      if (f == 0)
        out << pc.started;
      else if (f == 1)
        out << pc.deaths;
      else if (f == 2)
        out << pc.failures;
      else
        out << pc.running;
      out << "\n";
    }
  }
  int dir = dir_fd();
  if (dir < 0) return;
  if (auto written = replace_file_at(dir, *dir_path_, kMetricsFile, out.str(), 0644); !written)
    log_.error("Can't write metrics: " + written.error().what());
}

}  // namespace lithos::runtime::tree_detail
