// lithos_cmd: runs a `kind: Command` process entry of a sandbox once, in a
// knot of its own (docs/knot.md, "lithos_cmd"). Unlike the original, the exit
// code is the command's own (docs/knot.md).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cli_convention.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/invocation.hpp"
#include "lithos/policy/names.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/confine.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/spawn.hpp"
#include "messages.hpp"

namespace {

using namespace lithos;

constexpr const char* kUsage =
    "Usage: lithos_cmd [--master FILE] [--log-stderr] [--log-level LEVEL] SANDBOX NAME [ARG...]\n"
    "       lithos_cmd --help | --version\n"
    "Runs the Command entry NAME of SANDBOX's process config once, in its container, and exits\n"
    "with the command's exit code.\n";

struct Args {
  std::string master = "/etc/lithos/master.yaml";
  bool log_stderr = false;
  std::optional<std::string> log_level;
  std::string sandbox;
  std::string name;
  std::vector<std::string> extra;
};

std::optional<Args> parse_args(int argc, char** argv, std::string& error) {
  Args args;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    auto take = [&](const std::string& opt, std::string& out) -> bool {
      if (arg == opt) {
        if (i + 1 >= argc) {
          error = "option " + opt + " needs a value";
          return false;
        }
        out = argv[++i];
      } else {
        out = arg.substr(opt.size() + 1);
      }
      return true;
    };
    auto is = [&](const std::string& opt) { return arg == opt || arg.rfind(opt + "=", 0) == 0; };
    if (arg == "--") {
      ++i;
      break;
    } else if (is("--master")) {
      if (!take("--master", args.master)) return std::nullopt;
    } else if (is("--log-level")) {
      std::string v;
      if (!take("--log-level", v)) return std::nullopt;
      if (!runtime::parse_log_level(v)) {
        error = "Bad value \"" + v + "\" for --log-level";
        return std::nullopt;
      }
      args.log_level = v;
    } else if (arg == "--log-stderr") {
      args.log_stderr = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      error = "Unknown option " + arg;
      return std::nullopt;
    } else {
      break;
    }
  }
  if (argc - i < 2) {
    error = "SANDBOX and NAME are required";
    return std::nullopt;
  }
  args.sandbox = argv[i++];
  args.name = argv[i++];
  for (; i < argc; ++i) args.extra.emplace_back(argv[i]);
  return args;
}

int fatal(const runtime::Logger* log, const std::string& message) {
  tools::print_error({"Fatal error: ", message, "\n"});
  if (log) log->error(message);
  return 1;
}

std::string own_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<std::size_t>(n));
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

void mkdir_p(const std::string& path) {
  std::string prefix;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    prefix = path.substr(0, slash);
    if (!prefix.empty()) ::mkdir(prefix.c_str(), 0755);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Defence in depth (the knot does the same): nothing the caller left open
  // -- a shell's directory descriptor, an agent socket -- goes further.
  if (int err = runtime::close_inherited_on_exec(3); err != 0)
    return fatal(nullptr, std::string("close_range(CLOEXEC): ") + std::strerror(err));
  std::string error;
  if (tools::answered_help_or_version(argc, argv, kUsage, {"--master", "--log-level"})) return 0;
  auto args = parse_args(argc, argv, error);
  if (!args) return tools::usage_error("lithos_cmd", error);
  if (!policy::names::valid_name(args->sandbox))
    return fatal(nullptr, "Wrong sandbox name: " + args->sandbox);
  if (!policy::names::valid_name(args->name))
    return fatal(nullptr, "Wrong command name: " + args->name);

  // The configs (the container's comes from the image, which its author
  // controls) are read and the plan is built in a confined, unprivileged
  // child; only the encoded plan comes back (docs/knot.md, "The launch plan").
  pid_t self = ::getpid();
  auto build = [&]() -> Result<std::string, std::string> {
    policy::Diagnostics diags;
    policy::LoadOptions load;
    load.only_sandbox = args->sandbox;
    auto tree = policy::load_tree(args->master, load, diags, nullptr);
    if (diags.has_errors() || !tree.master || tree.sandboxes.empty() ||
        !tree.sandboxes.front().config)
      return fail("Error reading configuration: " + diags.errors_one_line());
    const auto& sandbox = tree.sandboxes.front();
    if (!sandbox.processes)
      return fail("Error reading children config: " + diags.errors_one_line());
    auto found = sandbox.processes->value.find(args->name);
    if (found == sandbox.processes->value.end())
      return fail("Command \"" + args->name + "\" not found");
    const auto& entry = found->second;
    if (entry.kind != policy::ProcessKind::Command)
      return fail(std::string("The target container is: Daemon"));
    std::optional<policy::scalars::IpAddress> ip;
    if (!entry.ip_addresses.empty()) ip = entry.ip_addresses.front();
    std::string identity_json = policy::instance_identity(entry, ip, policy::ProcessKind::Command);
    auto identity = policy::parse_instance_identity(identity_json, diags);
    if (!identity) return fail("Bad identity: " + diags.errors_one_line());
    policy::InstanceRequest request{args->sandbox, args->name, 0, static_cast<std::uint64_t>(self),
                                    *identity};
    auto plan = policy::plan_instance(tree, request, diags, nullptr);
    if (!plan) return fail("Invalid command: " + diags.errors_one_line());
    return policy::encode_plan(*plan);
  };
  auto wire = runtime::run_confined_reader(build, std::chrono::seconds(60));
  if (!wire)
    return fatal(nullptr, "Error reading configuration of sandbox " + args->sandbox + " (master " +
                              args->master + "): " + wire.error().what());
  auto decoded = policy::decode_plan(*wire);
  if (!decoded) return fatal(nullptr, "Bad launch plan from the config reader: " + decoded.error());
  const policy::InstancePlan* plan = &decoded.value();

  mkdir_p(parent_of(plan->log_file));
  mkdir_p(parent_of(plan->stdio_log));
  runtime::Logger log;
  log.set_stderr(args->log_stderr);
  log.set_level(runtime::parse_log_level(args->log_level.value_or(plan->log_level))
                    .value_or(runtime::LogLevel::Warn));
  if (auto opened = runtime::open_plan_log(log, *plan); !opened)
    return fatal(nullptr, opened.error().what());

  // Master directories (docs/operations.md, "Directories"): runtime, mount and state dirs.
  mkdir_p(plan->mount_root);
  mkdir_p(parent_of(plan->state_dir));

  std::optional<std::vector<runtime::CgroupPlacement>> placements;
  if (plan->cgroup) {
    auto host = runtime::probe_cgroups();
    if (!host) return fatal(&log, host.error().what());
    auto placed = runtime::place_cgroup(*host, *plan->cgroup);
    if (!placed) return fatal(&log, placed.error().what());
    if (auto prepared = runtime::prepare_cgroup_parent(*placed); !prepared)
      return fatal(&log, prepared.error().what());
    placements = std::move(*placed);
  }

  auto sealed = runtime::seal_plan(*wire);
  if (!sealed) return fatal(&log, sealed.error().what());
  runtime::SpawnOptions spawn;
  spawn.path = own_dir() + "/lithos_knot";
  policy::KnotInvocation invocation;
  invocation.name =
      policy::InstanceName{args->sandbox, args->name, true, static_cast<std::uint64_t>(self)};
  invocation.master = args->master;
  invocation.identity = plan->identity;
  invocation.extra = args->extra;
  spawn.argv = invocation.format(spawn.path);
  spawn.fds.emplace_back(sealed->get(), policy::kPlanFd);
  const char* term = std::getenv("TERM");
  spawn.env.push_back(std::string("TERM=") + (term ? term : "dumb"));
  for (const char* var : {"RUST_LOG", "RUST_BACKTRACE"})
    if (const char* v = std::getenv(var)) spawn.env.push_back(std::string(var) + "=" + v);
  spawn.namespaces = runtime::kKnotNamespaces;
  spawn.parent_death_signal = SIGKILL;
  spawn.blocked_signals = runtime::kKnotSignals;

  log.info("Running " + plan->name);
  auto knot = runtime::spawn_process(spawn);
  if (!knot) return fatal(&log, knot.error().what());
  auto waited = runtime::wait_process(*knot);
  if (!waited) return fatal(&log, waited.error().what());
  int knot_status = *waited;
  auto command_status = runtime::read_exit_status(plan->state_dir);

  if (auto removed = runtime::remove_tree(plan->state_dir); !removed)
    log.error(removed.error().what());
  if (placements) {
    if (auto removed = runtime::remove_cgroup(*placements, false); !removed)
      log.error(removed.error().what());
  }

  std::string description = "lithos_knot --name " + plan->name;
  bool knot_ok = WIFEXITED(knot_status) && WEXITSTATUS(knot_status) == 0;
  if (command_status) {
    // The command ran: its own exit code (128 + N for a signal).
    int st = *command_status;
    if (WIFEXITED(st)) {
      if (!knot_ok)
        log.error("Command " + description + ": the command " + runtime::describe_status(st));
      return WEXITSTATUS(st);
    }
    tools::print_error(
        {"Fatal error: Command ", description, " ", runtime::describe_status(st), "\n"});
    return 128 + WTERMSIG(st);
  }
  if (knot_ok) return 0;
  return fatal(&log, "Command " + description + " " + runtime::describe_status(knot_status));
}
