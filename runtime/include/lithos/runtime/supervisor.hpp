// lithos_tree's supervisor (docs/tree.md): one thread around
// epoll with a signalfd, a timerfd and one pidfd per knot. It starts the
// instances the policy layer planned, restarts them with throttling, stops
// retired/unknown ones (SIGTERM, then SIGKILL after a timeout), re-executes
// itself in place on SIGQUIT/SIGHUP/SIGUSR1/SIGUSR2 keeping its children, and
// shuts down on SIGTERM/SIGINT. Decisions come from policy/supervise.hpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lithos/runtime/error.hpp"

namespace lithos::runtime {

// Environment variable naming the inherited memfd that carries the state of
// the previous image across an in-place re-exec (throttles, kill timers).
inline constexpr const char* kTreeStateEnv = "LITHOS_TREE_STATE_FD";
// The way back to the image that re-executed us, should this one fail its
// start-up (docs/tree.md, "Going back"): its executable as an inherited
// O_PATH descriptor and its command line (tree_reexec_state.hpp).
inline constexpr const char* kPreviousImageEnv = "LITHOS_TREE_PREVIOUS_IMAGE";
// Set by a new image that went back: why it gave up.
inline constexpr const char* kWentBackEnv = "LITHOS_TREE_WENT_BACK";

struct TreeOptions {
  std::string master_path;               // -C, verbatim (passed to knots as --master)
  bool log_stderr = false;               // forwarded to knots
  std::optional<std::string> log_level;  // forwarded to knots upper-cased
  std::string knot_path;                 // <own dir>/lithos_knot
  std::string self_exe;                  // re-exec target: <own dir>/lithos_tree
  std::vector<std::string> argv;         // the original command line
  std::vector<std::string> env;          // the startup environment (no kTreeStateEnv)
  // SIGTERM -> SIGKILL grace for children whose container kill-timeout is
  // not known (unknown children, retired knots, knots of another tree).
  std::int64_t default_kill_timeout_ms = 5000;
  std::optional<std::string> inherited_state;  // from take_inherited_state()
  // Why the image a reload started went back to this one (kWentBackEnv).
  std::optional<std::string> went_back;
};

// Signals the tree reads from its signalfd; main() blocks them first thing so
// none is lost (the mask survives the re-exec).
std::vector<int> tree_signals();
void block_tree_signals() noexcept;

// Reads and closes the memfd named by kTreeStateEnv (if any) and removes the
// variable from the environment.
std::optional<std::string> take_inherited_state();

// Takes kPreviousImageEnv and kWentBackEnv out of the environment and of
// options.env (once argv and env are captured): the reason goes to
// options.went_back; an image that a reload started (inherited state and a
// valid way back) keeps the way back open until close_way_back().
void take_way_back(TreeOptions& options);
// A start-up failure of an image that a reload started: exec the previous
// image again with its command line and the inherited state, telling it
// why. Returns only when there is no way back or the exec failed.
void go_back_to_previous_image(const std::string& why);
// The image supervises: no way back from here on.
void close_way_back();

// SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE: re-exec in place from the signal
// handler (docs/tree.md, "Reload"), unless the image crashed within a second of
// starting (no crash loop).
void install_crash_reexec(const TreeOptions& options);

// Runs the tree; returns the process exit code (0 after an orderly
// shutdown, 1 for a fatal startup error, already reported on stderr).
int run_tree(const TreeOptions& options);

// `lithos_tree --preflight`: what a reload runs of the new binary before it
// execs it (docs/tree.md, "Crash-only"). Reads the master config and checks
// the devfs dir like a start, touches nothing (no lock, no pid file, no
// knot); 0 when a start would get past them, else 1 with the reason on
// stderr.
int preflight_tree(const TreeOptions& options);

// `lithos_tree --reload` (the systemd unit's ExecReload; docs/operations.md):
// asks the tree that holds this master's lock to reload and waits up to
// `timeout_ms` for its answer. 0 once the new image supervises (one line on
// stdout); 1 when the reload was refused, no tree runs, or no answer came
// (the reason on stderr).
int reload_tree(const std::string& master_path, int timeout_ms);

// ---- pieces exposed for tests ---------------------------------------------------

struct ProcEntry {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';               // R, S, Z, ... of /proc/PID/stat
  std::string comm;               // the kernel's name of the process (15 bytes at most)
  std::vector<std::string> argv;  // empty: zombie, kernel thread, or not read
};
// Every process of /proc (two passes, union), with its parent and name.
// With `adoption_by`, the command line is read only where adoption needs
// it — processes named lithos_knot or lithos_tree (a fork not yet exec'd)
// and children of that pid — so a thousand containers cost no reads.
// Children of `adoption_by` in `known` are not read either: a re-exec knows
// its own knots already (their pids cannot be reused before it reaps them).
std::vector<ProcEntry> scan_processes(std::optional<pid_t> adoption_by = std::nullopt,
                                      const std::set<pid_t>& known = {});
// Only the children of the calling process (/proc/self/task/*/children), for
// a re-exec that tracked no other process: `known` ones are not read at all
// (pid and parent only), the others as by scan_processes. nullopt when the
// kernel has no children files (CONFIG_PROC_CHILDREN).
std::optional<std::vector<ProcEntry>> scan_own_children(const std::set<pid_t>& known);

}  // namespace lithos::runtime
