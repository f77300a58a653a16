// lithos_knot: supervises one container process (docs/knot.md). Started by
// lithos_tree / lithos_cmd as PID 1 of new mount, UTS, IPC and PID
// namespaces, with its launch plan on a sealed memfd at policy::kPlanFd. It
// executes the plan and decides nothing: it links no config code (no YAML,
// no grammar, no JSON; a test checks the binary). Exit codes: 0 normal, 1
// fatal error, 2 abnormal death of the process or usage error, 3 kill
// timeout.
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "cli_convention.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/landlock.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/safe_files.hpp"

namespace {

using namespace lithos;
using runtime::LogLevel;

constexpr const char* kUsage =
    "Usage: lithos_knot --name SANDBOX/PROCESS.N [--master FILE] --config IDENTITY "
    "[--log-stderr] [--log-level LEVEL] [--] [ARG...]\n"
    "       lithos_knot --help | --version\n"
    "(the launch plan is read from descriptor 3: start the knot with lithos_tree or "
    "lithos_cmd)\n";

void print_error(std::initializer_list<std::string_view> parts) {
  std::string line;
  for (auto p : parts) line += p;
  runtime::write_all(2, line);
}

int fatal(const runtime::Logger* log, const std::string& name, const std::string& message) {
  print_error({"Fatal error: ", message, "\n"});
  if (log) log->error("Fatal error running \"" + name + "\": " + message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // First thing: no SIGTERM may be lost while the knot sets up. The
  // supervision loop reads them from a signalfd.
  runtime::block_knot_signals();
  // Before anything else: nothing inherited reaches the container, and no
  // core dump of a knot holding secrets (docs/hardening.md).
  auto caller_core_limit = runtime::knot_process_hygiene();
  if (!caller_core_limit) return fatal(nullptr, "", caller_core_limit.error().what());

  if (tools::answered_help_or_version(argc, argv, kUsage,
                                      {"--name", "--master", "--config", "--log-level"}))
    return 0;
  std::string error;
  auto args = policy::KnotInvocation::parse(std::vector<std::string>(argv, argv + argc), &error);
  if (!args) return tools::usage_error("lithos_knot", error);
  std::optional<LogLevel> level_override;
  if (args->log_level && !(level_override = runtime::parse_log_level(*args->log_level)))
    return tools::usage_error("lithos_knot",
                              "bad value \"" + *args->log_level + "\" for --log-level");
  const std::string name = args->name.format();
  // A tree's knot outlives its tree (docs/tree.md, "Crash-only"): the
  // parent-death signal only covered the moments before this exec. A
  // command's knot keeps it: it belongs to its lithos_cmd.
  if (!args->name.command) ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  // The container's /proc, the reaping of orphans and "the knot's exit ends
  // everything" all rely on being PID 1 of a fresh PID namespace.
  if (::getpid() != 1)
    return fatal(nullptr, name,
                 "lithos_knot must run as PID 1 of new mount, UTS, IPC and PID namespaces "
                 "(start it with lithos_tree or lithos_cmd)");

  // The plan: only its wire format is checked; a bad one ends the knot with
  // one line before anything privileged happens.
  auto plan = runtime::read_launch_plan(policy::kPlanFd);
  if (!plan) return fatal(nullptr, name, "launch plan: " + plan.error().what());
  if (plan->name != name || plan->identity != args->identity)
    return fatal(
        nullptr, name,
        "launch plan is for " + plan->name + ", not for this invocation (--name/--config)");

  runtime::Logger log;
  log.set_stderr(args->log_stderr);
  log.set_level(
      level_override.value_or(runtime::parse_log_level(plan->log_level).value_or(LogLevel::Warn)));
  if (auto opened = runtime::open_plan_log(log, *plan); !opened)
    return fatal(nullptr, name, opened.error().what());

  if (auto placed = runtime::place_host_sockets(*plan); !placed)
    return fatal(&log, name, placed.error().what());

  // No symlink followed, a regular file only (a FIFO fails at once), 0640.
  auto stdio_log = runtime::open_log(plan->stdio_log);
  if (!stdio_log) return fatal(&log, name, "Can't open stdio log: " + stdio_log.error().what());

  log.info("[" + plan->name + "] Starting container");
  runtime::KnotState state;
  if (auto steps = runtime::run_knot_steps(*plan, state, log); !steps)
    return fatal(&log, name, steps.error().what());
  for (const auto& w : state.warnings) log.error(w.what());

  const char* term = std::getenv("TERM");
  // After pivot_root: the plan's paths are the container's now.
  auto landlock = runtime::prepare_landlock(plan->landlock);
  if (!landlock) return fatal(&log, name, landlock.error().what());
  if (landlock->state == runtime::LandlockRuleset::State::Unsupported)
    log.warn("[" + plan->name + "] " + landlock->summary);
  else
    log.info("[" + plan->name + "] " + landlock->summary);
  runtime::ExecImage::KnotHandles handles;
  handles.null_device = state.null_device.get();
  handles.core_limit = *caller_core_limit;
  handles.landlock_ruleset = landlock->ready() ? landlock->fd.get() : -1;
  handles.host_root = state.host_root.get();
  auto image =
      runtime::ExecImage::prepare(*plan, term ? term : "dumb", args->extra, state.secrets, handles);
  state.secrets.clear();  // wiped: the image's environment block holds the only copy
  if (!image) return fatal(&log, name, image.error().what());

  auto outcome = runtime::supervise(*plan, *image, stdio_log->get(), log);
  if (outcome.exit_code == 1) print_error({"Fatal error: ", outcome.error, "\n"});
  if (plan->kind == policy::ProcessKind::Command && outcome.last_status)
    runtime::write_exit_status(state.state_dir.get(), *outcome.last_status);
  return outcome.exit_code;
}

// libstdc++'s default terminate handler prints the type of an uncaught
// exception through its demangler, 150 KiB of code every knot start would
// map. The knot throws nothing it does not catch; should it ever, one line
// and an abort say enough.
namespace __gnu_cxx {
void __verbose_terminate_handler() {
  static constexpr char kMessage[] = "lithos_knot: terminate called (uncaught exception)\n";
  (void)!::write(2, kMessage, sizeof kMessage - 1);
  std::abort();
}
}  // namespace __gnu_cxx
