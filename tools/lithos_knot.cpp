// lithos_knot: supervises one container process (runtime.md §4, cli.md §2).
// Started by lithos_tree / lithos_cmd as PID 1 of new mount, UTS, IPC and
// PID namespaces. Exit codes: 0 normal, 1 fatal error, 2 abnormal death of
// the process or usage error, 3 kill timeout.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/check.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/landlock.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "messages.hpp"

namespace {

using namespace lithos;
using runtime::LogLevel;

struct Args {
  std::string name;
  std::string master = "/etc/lithos/master.yaml";
  std::optional<std::string> config;
  bool log_stderr = false;
  std::optional<std::string> log_level;
  std::vector<std::string> extra;
};

constexpr const char* kUsage =
    "Usage: lithos_knot --name SANDBOX/PROCESS.N [--master FILE] --config JSON [--log-stderr] "
    "[--log-level LEVEL] [--] [ARG...]\n";

// Options stop at the first positional argument (cli.md §2).
std::optional<Args> parse_args(int argc, char** argv, std::string& error) {
  Args args;
  int i = 1;
  auto value = [&](const std::string& arg, const std::string& opt,
                   std::optional<std::string>& out) -> bool {
    if (arg == opt) {
      if (i + 1 >= argc) {
        error = "option " + opt + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    }
    out = arg.substr(opt.size() + 1);
    return true;
  };
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> v;
    auto is = [&](const std::string& opt) { return arg == opt || arg.rfind(opt + "=", 0) == 0; };
    if (arg == "--") {
      ++i;
      break;
    } else if (is("--name")) {
      if (!value(arg, "--name", v)) return std::nullopt;
      args.name = *v;
    } else if (is("--master")) {
      if (!value(arg, "--master", v)) return std::nullopt;
      args.master = *v;
    } else if (is("--config")) {
      if (!value(arg, "--config", v)) return std::nullopt;
      args.config = *v;
    } else if (is("--log-level")) {
      if (!value(arg, "--log-level", v)) return std::nullopt;
      if (!runtime::parse_log_level(*v)) {
        error = "Bad value \"" + *v + "\" for --log-level";
        return std::nullopt;
      }
      args.log_level = *v;
    } else if (arg == "--log-stderr") {
      args.log_stderr = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      error = "Unknown option " + arg;
      return std::nullopt;
    } else {
      break;
    }
  }
  for (; i < argc; ++i) args.extra.emplace_back(argv[i]);
  if (!args.config) {
    error = "--config is required";
    return std::nullopt;
  }
  return args;
}

int fatal(const runtime::Logger* log, const std::string& name, const std::string& message) {
  tools::print_error({"Fatal error: ", message, "\n"});
  if (log) log->error("Fatal error running \"" + name + "\": " + message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // First thing: no SIGTERM may be lost while the knot sets up (§13.7). The
  // supervision loop reads them from a signalfd.
  runtime::block_knot_signals();
  // Before anything else: nothing inherited reaches the container, and no
  // core dump of a knot holding secrets (docs/hardening.md).
  auto caller_core_limit = runtime::knot_process_hygiene();
  if (!caller_core_limit) {
    tools::print_error({"Fatal error: ", caller_core_limit.error().what(), "\n"});
    return 1;
  }

  std::string error;
  auto args = parse_args(argc, argv, error);
  if (!args) {
    tools::print_error({error, "\n", kUsage});
    return 2;
  }
  // The container's /proc, the reaping of orphans and "the knot's exit ends
  // everything" all rely on being PID 1 of a fresh PID namespace.
  if (::getpid() != 1) {
    tools::print_error(
        {"Fatal error: lithos_knot must run as PID 1 of new mount, UTS, IPC and PID "
         "namespaces (start it with lithos_tree or lithos_cmd)\n"});
    return 1;
  }
  // NAME = SANDBOX/CHILD.N or SANDBOX/cmd.CHILD.PID
  auto slash = args->name.find('/');
  if (slash == std::string::npos || slash == 0) {
    tools::print_error({"Bad value \"", args->name, "\" for --name: expected SANDBOX/PROCESS.N\n"});
    return 2;
  }
  policy::InstanceRequest request;
  request.sandbox = args->name.substr(0, slash);
  std::string rest = args->name.substr(slash + 1);
  bool command = rest.rfind("cmd.", 0) == 0;
  if (command) rest = rest.substr(4);
  auto dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) {
    tools::print_error({"Bad value \"", args->name, "\" for --name: expected SANDBOX/PROCESS.N\n"});
    return 2;
  }
  request.child = rest.substr(0, dot);
  std::uint64_t number = 0;
  for (char c : rest.substr(dot + 1)) {
    if (c < '0' || c > '9' || number > 1'000'000'000'000ULL) {
      tools::print_error({"Bad value \"", args->name, "\" for --name: bad instance number\n"});
      return 2;
    }
    number = number * 10 + static_cast<std::uint64_t>(c - '0');
  }
  (command ? request.command_pid : request.index) = number;

  policy::Diagnostics id_diags;
  auto identity = policy::parse_instance_identity(*args->config, id_diags);
  if (!identity || id_diags.has_errors()) {
    tools::print_error({"Bad value for --config: ", tools::describe_errors(id_diags), "\n"});
    return 2;
  }
  request.identity = *identity;

  policy::Diagnostics diags;
  policy::LoadOptions load;
  load.only_sandbox = request.sandbox;
  load.skip_process_configs = true;
  auto tree = policy::load_tree(args->master, load, diags, nullptr);
  if (diags.has_errors() || !tree.master)
    return fatal(nullptr, args->name,
                 "Error reading configuration: " + tools::describe_errors(diags));
  // The log opens as soon as the sandbox is known, so that every later
  // failure (the plan's checks included) is in it.
  runtime::Logger log;
  log.set_stderr(args->log_stderr);
  if (tree.sandboxes.empty() || !tree.sandboxes.front().config)
    return fatal(nullptr, args->name,
                 "Error reading sandbox config: " + tools::describe_errors(diags));
  const auto& sandbox_config = tree.sandboxes.front().config->value;
  const auto& master_config = tree.master->value;
  auto level = runtime::parse_log_level(
      args->log_level.value_or(sandbox_config.log_level.value_or(master_config.log_level)));
  log.set_level(level.value_or(LogLevel::Warn));
  auto log_file = policy::join_path(master_config.default_log_dir,
                                    sandbox_config.log_file.value_or(request.sandbox + ".log"));
  if (auto opened = runtime::open_configured_log(log, master_config, log_file, request.sandbox);
      !opened)
    return fatal(nullptr, args->name, opened.error().what());

  auto plan = policy::plan_instance(tree, request, diags, nullptr);
  if (!plan) return fatal(&log, args->name, "Invalid instance: " + tools::describe_errors(diags));
  if (plan->name != args->name)
    return fatal(&log, args->name, "instance name mismatch: planned " + plan->name);

  // No symlink followed, a regular file only (a FIFO fails at once), 0640.
  auto stdio_log = runtime::open_log(plan->stdio_log);
  if (!stdio_log)
    return fatal(&log, args->name, "Can't open stdio log: " + stdio_log.error().what());

  log.info("[" + plan->name + "] Starting container");
  runtime::KnotState state;
  if (auto steps = runtime::run_knot_steps(*plan, state, log); !steps)
    return fatal(&log, args->name, steps.error().what());
  for (const auto& w : state.warnings) log.error(w.what());

  const char* term = std::getenv("TERM");
  // After pivot_root: the plan's paths are the container's now.
  auto landlock = runtime::prepare_landlock(plan->landlock);
  if (!landlock) return fatal(&log, args->name, landlock.error().what());
  if (landlock->state == runtime::LandlockRuleset::State::Unsupported)
    log.warn("[" + plan->name + "] " + landlock->summary);
  else
    log.info("[" + plan->name + "] " + landlock->summary);
  runtime::ExecImage::KnotHandles handles;
  handles.null_device = state.null_device.get();
  handles.core_limit = *caller_core_limit;
  handles.landlock_ruleset = landlock->ready() ? landlock->fd.get() : -1;
  auto image =
      runtime::ExecImage::prepare(*plan, term ? term : "dumb", args->extra, state.secrets, handles);
  state.secrets.clear();  // wiped: the image's environment block holds the only copy
  if (!image) return fatal(&log, args->name, image.error().what());

  auto outcome = runtime::supervise(*plan, *image, stdio_log->get(), log);
  if (outcome.exit_code == 1) tools::print_error({"Fatal error: ", outcome.error, "\n"});
  if (plan->kind == policy::ProcessKind::Command && outcome.last_status)
    runtime::write_exit_status(state.state_dir.get(), *outcome.last_status);
  return outcome.exit_code;
}
