// The tree's counters and the metrics file they are written to (docs/tree.md,
// "Metrics"): the loop says what happened (on_start, on_death, ...), this
// class keeps the counts, so that no counter is bumped by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/log.hpp"

namespace lithos::runtime::tree_detail {

// A process entry: (sandbox, process name).
using ProcessKey = std::pair<std::string, std::string>;

struct Counters {
  std::uint64_t started = 0, deaths = 0, failures = 0;
  std::int64_t running = 0;
};

// The gauges that are facts of the loop's state, counted when the file is
// written.
struct LoopGauges {
  std::size_t containers = 0;  // daemon instances configured
  std::size_t queue = 0;       // pending starts and kills
  std::int64_t unknown = 0;    // unidentified children being stopped
};

class Metrics {
 public:
  explicit Metrics(const Logger& log) : log_(log) {}

  // The master's metrics-dir; without one nothing is read or written.
  void set_dir(const std::string& dir);
  // The counters of the previous image or tree continue from its file.
  void read_previous();
  // Per-process counters exist for the entries configured now.
  void keep_only(const std::set<ProcessKey>& configured);

  void on_tree_start() { restarts_ += 1; }
  void on_sandboxes_read(std::int64_t sandboxes) { sandboxes_ = sandboxes; }
  // A start attempt that gets as far as spawning its knot.
  void on_start(const ProcessKey& key);
  // The knot could not be spawned or watched: a death and a failure.
  void on_spawn_failure(const ProcessKey& key);
  // A knot runs: started, or adopted from a previous tree or image.
  void on_running(const ProcessKey& key);
  // A counted knot is gone; `failure`: anything but a knot exit 0.
  void on_death(const ProcessKey& key, bool failure);
  // Something the file shows changed (a gauge of the loop's state too).
  void on_change() { dirty_ = true; }

  bool changed() const { return dirty_; }
  void write(const LoopGauges& gauges);

 private:
  int dir_fd();

  const Logger& log_;
  std::optional<std::string> dir_path_;
  std::string file_;  // for the messages; empty: no metrics-dir
  UniqueFd dir_fd_;   // opened once: names in it are never followed
  std::uint64_t restarts_ = 0;
  std::int64_t sandboxes_ = 0;
  Counters total_;
  std::map<ProcessKey, Counters> per_process_;
  bool dirty_ = true;
};

}  // namespace lithos::runtime::tree_detail
