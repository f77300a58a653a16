// lithos_tree: the per-host supervisor (docs/tree.md). Thin main: arguments,
// sibling binaries, then run_tree().
#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/supervisor.hpp"

extern char** environ;

namespace {

std::string own_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<std::size_t>(n));
  // After a package upgrade the old inode is "(deleted)": re-exec the new file.
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() &&
      path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

bool regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else (docs/tree.md, "Startup"): reload/stop signals stay
  // pending until the loop reads them, and the command line and environment
  // to re-exec with are captured now.
  lithos::runtime::block_tree_signals();
  // A log reader that goes away must not kill the tree (and with it, by the
  // parent-death signal, every knot); knots get default dispositions back.
  ::signal(SIGPIPE, SIG_IGN);
  // One pidfd per child: lift the soft descriptor limit to the hard one.
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  lithos::runtime::TreeOptions options;
  options.inherited_state = lithos::runtime::take_inherited_state();
  for (int i = 0; i < argc; ++i) options.argv.emplace_back(argv[i]);
  for (char** e = environ; e && *e; ++e) options.env.emplace_back(*e);
  // An image a reload started can still go back to the previous one until
  // it supervises (docs/tree.md, "Going back").
  lithos::runtime::take_way_back(options);

  CLI::App app{"lithos_tree: starts and supervises the configured process instances."};
  lithos::tools::set_version(app, "lithos_tree");
  options.master_path = "/etc/lithos/master.yaml";
  std::string log_level;
  double kill_timeout = 5.0;
  app.add_option("-C,--config", options.master_path, "Master config")->capture_default_str();
  app.add_flag("--log-stderr", options.log_stderr, "Also log to stderr (forwarded to knots)");
  app.add_option("--log-level", log_level, "error, warn, info, debug or trace (forwarded to knots)")
      ->check([](const std::string& v) {
        return lithos::runtime::parse_log_level(v) ? std::string() : "Bad value " + v;
      });
  app.add_option("--kill-timeout", kill_timeout,
                 "Seconds between SIGTERM and SIGKILL for children whose kill-timeout is unknown")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  bool reload = false;
  app.add_flag("--reload", reload,
               "Ask the running tree of this master to reload, wait for its answer; exit 1 if "
               "it refused (the reason on stderr)");
  bool preflight = false;
  // Internal: run by a reloading tree on the binary it is about to exec.
  app.add_flag("--preflight", preflight, "Check that this binary can start, then exit")->group("");
  if (auto exit_code = lithos::tools::parse_command_line(app, argc, argv)) {
    if (*exit_code != 0)
      lithos::runtime::go_back_to_previous_image("refused its command line (exit code " +
                                                 std::to_string(*exit_code) + ")");
    return *exit_code;
  }
  if (reload) return lithos::runtime::reload_tree(options.master_path, 60'000);
  if (!log_level.empty()) options.log_level = log_level;
  options.default_kill_timeout_ms = static_cast<std::int64_t>(kill_timeout * 1000.0);

  std::string self = own_exe();
  std::string dir = self.substr(0, self.rfind('/') == std::string::npos ? 0 : self.rfind('/'));
  options.self_exe = dir + "/lithos_tree";
  options.knot_path = dir + "/lithos_knot";
  if (!regular_file(options.self_exe)) {
    std::cerr << "Can't find lithos_tree binary";
    lithos::runtime::go_back_to_previous_image("could not find itself at " + options.self_exe);
    return 127;
  }
  if (!regular_file(options.knot_path)) {
    // After a reload the knots run already: a tree that exits supervises
    // nothing. It stays, and every start fails with this in its error.
    std::cerr << "Can't find lithos_knot binary\n";
    if (!options.inherited_state) return 127;
  }
  if (preflight) return lithos::runtime::preflight_tree(options);
  lithos::runtime::install_crash_reexec(options);
  return lithos::runtime::run_tree(options);
}
