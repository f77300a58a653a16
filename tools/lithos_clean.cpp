// lithos_clean: lists or deletes the image directories no current config,
// used-images-list or config-log history names and no running process uses
// (docs/lithos_clean.md). Exit 0 (also when a directory was left out or a
// deletion failed: both are reported); 1 when a config does not parse;
// 2 usage error.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>

#include "cli.hpp"
#include "lithos/common/text.hpp"
#include "lithos/policy/clean.hpp"
#include "lithos/policy/report.hpp"
#include "lithos/runtime/clean.hpp"
#include "lithos/runtime/log.hpp"

using namespace lithos;
namespace pc = lithos::policy::clean;
namespace rc = lithos::runtime::clean;

namespace {

enum class Action { Used, Unused, Delete };

struct Options {
  std::string master = "/etc/lithos/master.yaml";
  Action action = Action::Used;
  bool clean_logs = false;
  std::optional<std::uint32_t> history_days;
  std::uint32_t versions_min = 0, versions_max = 1000;
  std::optional<std::chrono::nanoseconds> keep_recent;
  bool verbose = false;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string image_path(const pc::ImageDir& dir, const std::string& image) {
  return policy::join_path(dir.path, image);
}

// Image-dirs written differently may be one directory (a trailing slash, a
// symlink, a relative path) or nested in each other. Such a dir is not
// cleaned: what the other sandbox uses, or protects with auto-clean: false,
// would not be seen.
void protect_aliases(pc::UsedImages& used) {
  auto real = [](const std::string& path) -> std::optional<std::string> {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved) return std::nullopt;
    std::string out = resolved;
    std::free(resolved);
    return out;
  };
  std::vector<std::pair<std::string, std::string>> all;  // configured, resolved
  for (const auto& dir : used.dirs)
    if (auto r = real(dir.path)) all.emplace_back(dir.path, *r);
  for (const auto& dir : used.kept_dirs)
    if (auto r = real(dir)) all.emplace_back(dir, *r);
  auto within = [](const std::string& inner, const std::string& outer) {
    return inner == outer || outer == "/" ||
           (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
            inner[outer.size()] == '/');
  };
  for (auto& dir : used.dirs) {
    auto mine = real(dir.path);
    if (!mine) continue;
    for (const auto& [configured, resolved] : all) {
      if (configured == dir.path) continue;
      if (within(*mine, resolved) || within(resolved, *mine))
        dir.problems.push_back("it is, contains or lies in image-dir " + debug_quote(configured) +
                               " of another sandbox");
    }
  }
}

int run(const Options& options) {
  policy::Diagnostics diags;
  policy::Sources sources;
  policy::ConfigTree tree = policy::load_tree(options.master, {}, diags, &sources);
  pc::HistoryOptions history{options.versions_min, options.versions_max, std::nullopt};
  if (options.history_days)
    history.cutoff =
        now_ns() / 1000000000 - static_cast<std::int64_t>(*options.history_days) * 86400;
  pc::UsedImages used = pc::find_used_images(tree, history, rc::read_text);
  protect_aliases(used);
  if (!used.errors.empty()) {
    policy::Diagnostics errors;
    for (const auto& d : diags.items())
      if (d.severity == policy::Severity::Error) errors.add(d);
    std::cerr << policy::format_text(errors, sources);
    for (const auto& error : used.errors) std::cerr << "Fatal error: " << error << "\n";
    return 1;
  }
  for (const auto& warning : used.warnings) std::cerr << "warning: " << warning << "\n";
  if (options.verbose)
    for (const auto& dir : used.kept_dirs)
      std::cerr << "kept image-dir " << debug_quote(dir)
                << ": a sandbox sets auto-clean: false for it\n";

  const std::int64_t now = now_ns();
  const auto running = rc::running_roots();
  std::set<std::string> used_paths;
  std::size_t removed = 0, kept = 0, failed = 0;
  for (const auto& dir : used.dirs) {
    for (const auto& [image, reason] : dir.used) used_paths.insert(image_path(dir, image));
    if (!dir.problems.empty()) {
      std::cerr << "warning: image-dir " << debug_quote(dir.path) << " is not cleaned:";
      for (const auto& problem : dir.problems) std::cerr << " " << problem << ";";
      std::cerr << "\n";
      continue;
    }
    auto candidates = rc::list_images(dir.path, dir.levels);
    if (!candidates) {
      if (candidates.error().err != ENOENT)
        std::cerr << "warning: image-dir " << debug_quote(dir.path)
                  << " is not cleaned: " << candidates.error().what() << "\n";
      continue;
    }
    auto decisions =
        pc::decide(dir, *candidates, rc::named_targets(dir), running, options.keep_recent, now);
    for (std::size_t i = 0; i < decisions.size(); ++i) {
      const auto& decision = decisions[i];
      std::string path = image_path(dir, decision.image);
      if (!decision.unused) {
        used_paths.insert(path);
        ++kept;
        if (options.verbose)
          std::cerr << "kept " << debug_quote(path) << ": " << decision.reason << "\n";
        continue;
      }
      if (options.verbose && options.action != Action::Delete)
        std::cerr << "unused " << debug_quote(path) << ": " << decision.reason << "\n";
      if (options.action == Action::Unused) std::cout << debug_quote(path) << "\n";
      if (options.action != Action::Delete) continue;
      if (options.verbose)
        std::cout << runtime::rfc3339_now() << ": Deleting " << debug_quote(path) << std::endl;
      if (auto gone = rc::remove_image(dir.path, (*candidates)[i]); !gone) {
        ++failed;
        std::cerr << "error: can't delete " << debug_quote(path) << ": " << gone.error().what()
                  << "\n";
      } else {
        ++removed;
      }
    }
  }
  if (options.action == Action::Used)
    for (const auto& path : used_paths) std::cout << debug_quote(path) << "\n";

  std::size_t logs_removed = 0;
  if (options.clean_logs) {
    for (const auto& log : used.unused_logs) {
      if (!rc::regular_file(log)) continue;
      if (options.action == Action::Unused) std::cout << debug_quote(log) << "\n";
      if (options.action != Action::Delete) continue;
      if (options.verbose) std::cout << "Deleting log " << debug_quote(log) << std::endl;
      if (auto gone = rc::remove_file(log); !gone) {
        ++failed;
        std::cerr << "error: can't delete log " << debug_quote(log) << ": " << gone.error().what()
                  << "\n";
      } else {
        ++logs_removed;
      }
    }
  }
  if (options.action == Action::Delete)
    std::cerr << "lithos_clean: deleted " << removed << " image director"
              << (removed == 1 ? "y" : "ies") << " and " << logs_removed << " log"
              << (logs_removed == 1 ? "" : "s") << ", kept " << kept << ", " << failed << " failed"
              << (options.verbose ? "" : " (-v says why each was kept)") << "\n";
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "Fatal error: cannot write to stdout\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Lists or deletes the image directories that no current config, used-images-list or "
      "config log within the history window names and no running process uses."};
  tools::set_version(app, "lithos_clean");
  Options options;
  bool used = false, unused = false, delete_unused = false;
  std::string keep_recent;
  app.add_option("-C,--config", options.master, "Master config (default /etc/lithos/master.yaml)");
  auto* used_flag = app.add_flag("--used", used, "Print the image directories in use (default)");
  auto* unused_flag = app.add_flag("--unused", unused, "Print the unused image directories");
  auto* delete_flag =
      app.add_flag("--delete-unused", delete_unused, "Delete the unused image directories");
  used_flag->excludes(unused_flag, delete_flag);
  unused_flag->excludes(delete_flag);
  auto* logs_flag =
      app.add_flag("--clean-logs", options.clean_logs,
                   "Also print or delete rotated config logs outside the history window");
  auto* days_opt = app.add_option("-D,--history-days", options.history_days,
                                  "Keep images of configs in use within the last DAYS days");
  auto* vmin_opt = app.add_option("--vmin,--versions-min", options.versions_min,
                                  "Keep at least N configurations of the history (default 0)");
  app.add_option("--vmax,--versions-max", options.versions_max,
                 "Look at most at the N newest configurations (default 1000)");
  auto* recent_opt =
      app.add_option("--keep-recent", keep_recent,
                     "Keep directories created or modified within DELTA (e.g. 1h, 2d 12h)");
  app.add_flag("-v,--verbose", options.verbose,
               "Say why each directory is kept or unused; print each deletion");
  if (auto exit_code = tools::parse_command_line(app, argc, argv)) return *exit_code;
  auto name = tools::program_name(argv[0]);
  if (unused) options.action = Action::Unused;
  if (delete_unused) options.action = Action::Delete;
  if (logs_flag->count() && options.action == Action::Used)
    return tools::usage_error(name, "--clean-logs needs --unused or --delete-unused");
  if (options.versions_min > options.versions_max)
    return tools::usage_error(name, "--versions-min is larger than --versions-max");
  if (vmin_opt->count() && !days_opt->count())
    std::cerr << "warning: --versions-min only matters with --history-days\n";
  if (recent_opt->count()) {
    options.keep_recent = pc::parse_span(keep_recent);
    if (!options.keep_recent) return tools::usage_error(name, "Bad value " + keep_recent);
  }
  return run(options);
}
