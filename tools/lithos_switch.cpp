// lithos_switch: replaces a sandbox's process config with a new file after
// the same checks as lithos_check, atomically, then asks the tree to reload.
// Only the switched sandbox (and the master) can veto the switch; problems
// of other sandboxes are printed as warnings. With --dry-run it checks the
// same way and prints what a reload would start, stop, restart and keep,
// changing nothing.
// Exit 0 replaced (also when no tree runs) or dry run passed, 1 check failed
// or I/O error, 2 usage error.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "cli.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/report.hpp"
#include "lithos/policy/supervise.hpp"
#include "lithos/runtime/confine.hpp"

using namespace lithos::policy;

namespace {

int fatal(const std::string& message) {
  std::cerr << "Fatal error: " << message << "\n";
  return 1;
}

std::string errno_text() {
  return std::strerror(errno);
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The tree's pid, if the pid file names a live process called lithos_tree.
// A stale pid that now belongs to another program is never signalled.
std::optional<pid_t> running_tree(const std::string& pid_file, std::string& why) {
  std::ifstream in(pid_file);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) {
    why = "Can't read pid file " + pid_file;
    return std::nullopt;
  }
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!std::getline(comm, name)) {
    why = "Process with pid " + std::to_string(pid) + " is not running";
    return std::nullopt;
  }
  if (name != "lithos_tree") {
    why = "Process with pid " + std::to_string(pid) + " is " + name + ", not lithos_tree";
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

// Signals through a pidfd so that the check above and the signal refer to
// the same process even if the pid is reused in between.
bool signal_tree(pid_t pid, const std::string& pid_file, std::string& why) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    why = "Process with pid " + std::to_string(pid) + " is not running";
    return false;
  }
  std::string again;
  auto still = running_tree(pid_file, again);
  bool ok =
      still && *still == pid && ::syscall(SYS_pidfd_send_signal, pidfd, SIGQUIT, nullptr, 0) == 0;
  if (!ok) why = again.empty() ? "cannot signal pid " + std::to_string(pid) : again;
  ::close(pidfd);
  return ok;
}

// ---- in the confined reader -------------------------------------------------

// Whether two process config paths name one file: the same inode when both
// exist, the same path (by components) when neither does.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {};
  struct stat sb {};
  const bool has_a = ::stat(a.c_str(), &sa) == 0;
  const bool has_b = ::stat(b.c_str(), &sb) == 0;
  if (has_a && has_b) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  return !has_a && !has_b && supervise::same_path(a, b);
}

// The host's configuration split by what a switch answers for.
struct Scope {
  // The master and every sandbox whose process config is the switched
  // file: the named sandbox, and any other whose `config-file` is the same
  // file (it runs what the switch installs). Their problems veto.
  ConfigTree switched;
  // Every other sandbox: its problems are only reported.
  std::vector<SandboxSource> neighbours;
  // The names of the sandboxes that share the switched file.
  std::vector<std::string> sharing;
};

// Splits a tree loaded with `candidate` as the named sandbox's process
// config. Diagnostics of loading go to `vetoing` or, for a neighbour's
// sandbox or process file, to `by_neighbour`.
Scope split_tree(ConfigTree tree, const std::string& sandbox, const std::string& target,
                 Diagnostics& loaded, Diagnostics& vetoing,
                 std::map<std::string, Diagnostics>& by_neighbour) {
  Scope scope;
  scope.switched.master_path = tree.master_path;
  scope.switched.master = tree.master;
  const SandboxSource* named = nullptr;
  for (const auto& s : tree.sandboxes)
    if (s.name == sandbox) named = &s;
  // A sandbox sharing the file runs what the switch installs: it reads the
  // candidate too (its reading of the old file is dropped with its findings).
  std::set<std::string> replaced;
  for (auto& s : tree.sandboxes) {
    if (&s == named || !named || !named->config || !s.config || s.process_file.empty() ||
        !same_file(s.process_file, target))
      continue;
    replaced.insert(s.process_file);
    scope.sharing.push_back(s.name);
    s.process_file = named->process_file;
    s.processes = named->processes;
    s.alternate = true;
  }
  std::vector<SandboxSource> switched;
  for (auto& s : tree.sandboxes) {
    if (&s == named || s.alternate)
      switched.push_back(std::move(s));
    else
      scope.neighbours.push_back(std::move(s));
  }
  if (tree.master && !named)
    vetoing.error(tree.sandboxes_dir(), {}, Code::Sandbox,
                  "sandbox \"" + sandbox + "\" is not in the sandboxes directory");
  for (auto& d : loaded.items()) {
    if (replaced.count(d.file)) continue;  // the file being replaced
    const SandboxSource* owner = nullptr;
    for (const auto& n : scope.neighbours)
      if (d.file == n.file || (!n.process_file.empty() && d.file == n.process_file)) owner = &n;
    if (owner)
      by_neighbour[owner->name].add(std::move(d));
    else
      vetoing.add(std::move(d));
  }
  scope.switched.sandboxes = std::move(switched);
  return scope;
}

// A neighbour's findings: every error becomes a warning, every message
// names the sandbox; findings about the master file are the master's
// (already checked with the switched sandbox) and dropped. Returns the
// number of errors turned into warnings.
std::size_t add_as_neighbour(const std::string& name, const std::string& master_file,
                             Diagnostics from, Diagnostics& to) {
  std::size_t errors = 0;
  for (auto& d : from.items()) {
    if (d.file == master_file) continue;
    if (d.severity == Severity::Error) {
      d.severity = Severity::Warning;
      ++errors;
    }
    d.message = "neighbour sandbox \"" + name + "\": " + d.message;
    to.add(std::move(d));
  }
  return errors;
}

// "image a -> b; variables port" for a restart: which identity fields
// (docs/tree.md, reloads) differ. Variable values are not printed.
std::string identity_change(const std::string& before, const std::string& after) {
  Diagnostics ignored;
  auto a = parse_instance_identity(before, ignored);
  auto b = parse_instance_identity(after, ignored);
  if (!a || !b) return "identity changed";
  std::vector<std::string> parts;
  if (a->image != b->image) parts.push_back("image " + a->image + " -> " + b->image);
  if (a->config != b->config) parts.push_back("config " + a->config + " -> " + b->config);
  if (a->variables != b->variables) {
    std::set<std::string> changed;
    for (const auto& [k, v] : a->variables)
      if (auto it = b->variables.find(k); it == b->variables.end() || it->second != v)
        changed.insert(k);
    for (const auto& [k, v] : b->variables)
      if (!a->variables.count(k)) changed.insert(k);
    std::string names;
    for (const auto& k : changed) names += (names.empty() ? "" : ", ") + k;
    parts.push_back("variables " + names);
  }
  if (a->extra_secrets_namespaces != b->extra_secrets_namespaces)
    parts.push_back("extra-secrets-namespaces");
  if (a->ip_address != b->ip_address) {
    auto text = [](const std::optional<scalars::IpAddress>& ip) {
      return ip ? scalars::format_ip(*ip) : std::string("none");
    };
    parts.push_back("ip " + text(a->ip_address) + " -> " + text(b->ip_address));
  }
  if (a->kind != b->kind) parts.push_back("kind");
  if (a->instances != b->instances) parts.push_back("instances");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out.empty() ? "identity changed" : out;
}

struct PlanLine {
  std::string sandbox, child;
  std::uint64_t index = 0;
  std::string text;
  bool operator<(const PlanLine& o) const {
    return std::tie(sandbox, child, index, text) < std::tie(o.sandbox, o.child, o.index, o.text);
  }
};

// What the tree does on the reload after the switch, for the switched
// sandboxes: the running knots are taken to be the daemon instances of the
// process config installed now (a tree that applied it runs exactly those,
// with those identities), the desired ones those of the candidate; the tree's
// own decision (supervise::reconcile) says which is adopted (keep),
// upgraded (restart), retired (stop) or started. Notes for the operator are
// appended to `notes`.
std::vector<PlanLine> dry_run_lines(const ConfigTree& switched, const std::string& target,
                                    std::string& notes) {
  CheckOptions options;
  options.plans_for_commands = false;  // as the tree: it runs daemons only
  // The candidate's plans (its check has passed: this adds no finding the
  // switch would act on, see docs/operations.md).
  Diagnostics scratch;
  std::vector<InstancePlan> desired_plans;
  check_tree(switched, options, scratch, nullptr, &desired_plans);

  // The installed file, as the tree reads it now.
  ConfigTree installed;
  installed.master_path = switched.master_path;
  installed.master = switched.master;
  std::optional<Loaded<ProcessConfigCodec>> current;
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0) {
    Diagnostics old_diags;
    current = load_config<ProcessConfigCodec>(target, old_diags, nullptr);
    if (!current)
      notes += "lithos_switch: note: the installed " + target +
               " cannot be read; its instances are taken as not running\n";
  }
  for (const auto& s : switched.sandboxes) {
    SandboxSource old = s;
    old.process_file = target;
    old.alternate = false;
    old.processes = current;
    installed.sandboxes.push_back(std::move(old));
  }
  std::vector<InstancePlan> running_plans;
  Diagnostics old_scratch;
  check_tree(installed, options, old_scratch, nullptr, &running_plans);

  // Instances with no valid configuration now: the tree keeps a knot of
  // theirs that an earlier configuration left running, whatever it is.
  std::set<std::string> invalid_now;
  if (current)
    for (const auto& s : installed.sandboxes)
      for (const auto& [child, entry] : current->value)
        if (entry.kind == ProcessKind::Daemon)
          for (std::uint64_t i = 0; i < entry.instances; ++i)
            invalid_now.insert(s.name + "/" + child + "." + std::to_string(i));
  for (const auto& p : running_plans) invalid_now.erase(p.name);

  // The tree's inputs: found knots, desired identities, unreadable names.
  std::vector<supervise::FoundKnot> found;
  std::map<std::string, const InstancePlan*> by_name;
  for (const auto& p : running_plans) {
    if (p.kind != ProcessKind::Daemon) continue;
    found.push_back({static_cast<pid_t>(found.size() + 1), p.name, p.identity, true});
    by_name[p.name] = &p;
  }
  std::map<std::string, std::string> desired;
  std::set<std::string> unreadable;
  for (const auto& s : switched.sandboxes) {
    if (!s.processes) {
      unreadable.insert(s.name + "/");
      continue;
    }
    for (const auto& [child, entry] : s.processes->value)
      if (entry.kind == ProcessKind::Daemon)
        for (std::uint64_t i = 0; i < entry.instances; ++i)
          unreadable.insert(s.name + "/" + child + "." + std::to_string(i));
  }
  std::map<std::string, const InstancePlan*> desired_by_name;
  for (const auto& p : desired_plans) {
    if (p.kind != ProcessKind::Daemon) continue;
    desired[p.name] = p.identity;
    desired_by_name[p.name] = &p;
    unreadable.erase(p.name);
  }
  auto decision = supervise::reconcile(desired, found, unreadable);

  std::vector<PlanLine> lines;
  auto add = [&](const InstancePlan& p, std::string text) {
    lines.push_back({p.sandbox, p.child, p.index, std::move(text)});
  };
  for (std::size_t i = 0; i < found.size(); ++i) {
    const auto& k = found[i];
    const InstancePlan& p = *by_name.at(k.name);
    switch (decision.verdicts[i]) {
      case supervise::Verdict::Adopt:
        add(p, "keep " + k.name);
        break;
      case supervise::Verdict::Upgrade:
        add(p, "restart " + k.name + " (" + identity_change(k.identity, desired.at(k.name)) + ")");
        break;
      case supervise::Verdict::Keep:
        add(p, "keep " + k.name + " (no valid configuration: left running as it is)");
        break;
      case supervise::Verdict::Retire:
        add(p, "stop " + k.name);
        break;
      case supervise::Verdict::Stop:
        add(p, "stop " + k.name + " (duplicate)");
        break;
    }
  }
  for (const auto& name : decision.start) {
    const InstancePlan& p = *desired_by_name.at(name);
    add(p, invalid_now.count(name)
               ? "start " + name +
                     " (invalid in the installed config: a knot of it still running is adopted "
                     "or restarted instead)"
               : "start " + name);
  }
  for (const auto& name : unreadable)
    if (name.back() != '/')
      notes += "lithos_switch: note: instance " + name +
               " would have no valid configuration: a running one is kept, none is started\n";
  std::sort(lines.begin(), lines.end());
  return lines;
}

// The reader's answer: "ERRORS NEIGHBOUR_ERRORS LINES\n", LINES lines of the
// dry run, then the report. Parsed strictly: the reader parsed image YAML.
struct Answer {
  std::uint64_t errors = 0;
  std::uint64_t neighbour_errors = 0;
  std::vector<std::string> lines;
  std::string report;
};

std::optional<std::uint64_t> parse_count(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<Answer> parse_answer(std::string_view text) {
  Answer out;
  auto newline = text.find('\n');
  if (newline == std::string_view::npos) return std::nullopt;
  std::string_view header = text.substr(0, newline);
  text.remove_prefix(newline + 1);
  auto first = header.find(' ');
  auto second = first == std::string_view::npos ? first : header.find(' ', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto errors = parse_count(header.substr(0, first));
  auto neighbour = parse_count(header.substr(first + 1, second - first - 1));
  auto count = parse_count(header.substr(second + 1));
  if (!errors || !neighbour || !count) return std::nullopt;
  out.errors = *errors;
  out.neighbour_errors = *neighbour;
  for (std::uint64_t i = 0; i < *count; ++i) {
    newline = text.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    std::string line(text.substr(0, newline));
    // Printable only: it goes to a terminal.
    for (char& c : line)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    out.lines.push_back(std::move(line));
    text.remove_prefix(newline + 1);
  }
  out.report = std::string(text);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Replaces a sandbox's process config after checking it, then reloads lithos_tree. "
      "With --dry-run: checks and prints what a reload would start, stop, restart and keep."};
  lithos::tools::set_version(app, "lithos_switch");
  std::string master_path = "/etc/lithos/master.yaml";
  std::string sandbox, new_file;
  bool verbose = false;
  bool dry_run = false;
  app.add_option("--master", master_path, "Master config")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Accepted for compatibility");
  app.add_flag("--dry-run", dry_run,
               "Check, then print one line per instance (start, stop, restart, keep) for a "
               "reload with NEWFILE installed; write nothing, signal nothing")
      ->disable_flag_override();
  app.add_option("SANDBOX", sandbox, "Sandbox whose process config is replaced")->required();
  app.add_option("NEWFILE", new_file, "Candidate process config")->required();
  if (auto exit_code = lithos::tools::parse_command_line(app, argc, argv)) return *exit_code;
  // Names become paths: no traversal (the original did not check).
  const bool name_ok = !sandbox.empty() && std::all_of(sandbox.begin(), sandbox.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (!name_ok) return fatal("Wrong sandbox name: " + sandbox);

  Diagnostics diags;
  Sources sources;
  auto master = load_config<MasterCodec>(master_path, diags, &sources);
  if (!master) {
    std::cerr << format_text(diags, sources);
    return fatal("Error reading master config " + master_path);
  }
  ConfigTree probe;
  probe.master_path = master_path;
  probe.master = master;
  std::string sandbox_file = join_path(probe.sandboxes_dir(), sandbox + ".yaml");
  auto sandbox_config = load_config<SandboxCodec>(sandbox_file, diags, &sources);
  if (!sandbox_config) {
    std::cerr << format_text(diags, sources);
    return fatal("Error reading sandbox config " + sandbox_file);
  }
  const auto& sb = sandbox_config->value;
  std::string target =
      join_path(probe.processes_dir(), sb.config_file ? *sb.config_file : sandbox + ".yaml");
  std::string target_dir = parent_dir(target);

  // One switch at a time per directory: the check, the write and the rename
  // happen under the lock. A dry run changes nothing and takes no lock.
  if (!dry_run) {
    std::string lock_path = join_path(target_dir, ".lithos_switch.lock");
    // No symlink or FIFO planted at the name is followed or waited on.
    int lock_fd =
        ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (lock_fd < 0) return fatal("Can't open lock file " + lock_path + ": " + errno_text());
    if (struct stat st{}; ::fstat(lock_fd, &st) != 0 || !S_ISREG(st.st_mode))
      return fatal("Lock file " + lock_path + " is not a regular file");
    if (::flock(lock_fd, LOCK_EX) != 0)
      return fatal("Can't lock " + lock_path + ": " + errno_text());
  }

  // Read the candidate once; the bytes checked are the bytes installed.
  auto bytes = yaml::read_text(new_file, diags);
  if (!bytes) {
    std::cerr << format_text(diags, sources);
    return fatal("Can't read " + new_file);
  }
  // What the check reads as the sandbox's process config: the copy that
  // will be renamed into place, or (dry run, nothing written) NEWFILE.
  std::string candidate = new_file;
  std::string temp;
  if (!dry_run) {
    temp = join_path(target_dir, ".tmp." + sandbox);
    candidate = temp;
    ::unlink(temp.c_str());
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fatal("Can't create " + temp + ": " + errno_text());
    // The live file is root's and 0644 whatever the candidate's owner and
    // mode: a writable or set-id candidate must not become a live config
    // that others can change before the tree's next reload.
    bool written = write_all(fd, *bytes) && ::fchown(fd, 0, 0) == 0 && ::fchmod(fd, 0644) == 0 &&
                   ::fsync(fd) == 0;
    ::close(fd);
    if (!written) {
      ::unlink(temp.c_str());
      return fatal("Can't write " + temp + ": " + errno_text());
    }
  }
  auto discard = [&] {
    if (!temp.empty()) ::unlink(temp.c_str());
  };

  // The check reads every image's container configs, which image authors
  // write: it runs in a confined child (nobody, read-only seccomp allow-list,
  // limits; confine.hpp) that sends back the error counts, the dry run's
  // lines and the report.
  auto check = [&]() -> lithos::Result<std::string, std::string> {
    LoadOptions load;
    load.alternate_sandbox = sandbox;
    load.alternate_file = candidate;
    Diagnostics loaded, vetoing;
    std::map<std::string, Diagnostics> by_neighbour;
    Scope scope = split_tree(load_tree(master_path, load, loaded, &sources), sandbox, target,
                             loaded, vetoing, by_neighbour);
    // The master and the switched sandbox(es): every rule, as before.
    check_tree(scope.switched, {}, vetoing, &sources, nullptr);
    // Each neighbour on its own, so that each finding is known to be its:
    // check_tree has no rule across sandboxes (docs/operations.md).
    const std::string master_file = scope.switched.master ? scope.switched.master->file : "";
    Diagnostics report;
    std::size_t neighbour_errors = 0;
    for (auto& n : scope.neighbours) {
      const std::string name = n.name;
      Diagnostics found = std::move(by_neighbour[name]);
      if (scope.switched.master) {
        ConfigTree one;
        one.master_path = scope.switched.master_path;
        one.master = scope.switched.master;
        one.sandboxes.push_back(std::move(n));
        CheckOptions options;
        options.check_devfs = false;  // the master's: checked above
        check_tree(one, options, found, &sources, nullptr);
      }
      neighbour_errors += add_as_neighbour(name, master_file, std::move(found), report);
    }
    const std::size_t errors = vetoing.error_count();
    report.append(vetoing);
    // Diagnostics about the temporary copy are about NEWFILE.
    for (auto& d : report.items())
      if (!temp.empty() && d.file == temp) d.file = new_file;
    sources.add(new_file, *bytes);
    std::string notes;
    for (const auto& name : scope.sharing)
      notes += "lithos_switch: note: sandbox \"" + name + "\" has the same process config (" +
               target + "): it is checked with " + new_file + " too, and its errors veto\n";
    std::vector<PlanLine> lines;
    if (dry_run && errors == 0) lines = dry_run_lines(scope.switched, target, notes);
    std::string out = std::to_string(errors) + " " + std::to_string(neighbour_errors) + " " +
                      std::to_string(lines.size()) + "\n";
    for (const auto& l : lines) out += l.text + "\n";
    return out + format_text(report, sources) + notes;
  };
  auto checked = lithos::runtime::run_confined_reader(check, std::chrono::seconds(60));
  if (!checked) {
    discard();
    return fatal("Configuration check of sandbox " + sandbox +
                 " failed: " + checked.error().what() + "; " + target + " is unchanged");
  }
  auto answer = parse_answer(*checked);
  if (!answer) {
    discard();
    return fatal("Configuration check of sandbox " + sandbox + " sent a malformed answer; " +
                 target + " is unchanged");
  }
  std::cerr << answer->report;
  if (answer->neighbour_errors > 0)
    std::cerr << "lithos_switch: warning: " << answer->neighbour_errors
              << " error(s) of other sandboxes (above, as warnings) do not block this switch\n";
  if (answer->errors != 0) {
    discard();
    return fatal("Configuration check failed: " + std::to_string(answer->errors) + " error(s); " +
                 target + " is unchanged");
  }

  if (dry_run) {
    for (const auto& line : answer->lines) std::cout << line << "\n";
    std::cout.flush();
    std::cerr << "lithos_switch: dry run: check passed; " << target
              << " is unchanged and no signal was sent\n";
    return std::cout ? 0 : 1;
  }

  if (::rename(temp.c_str(), target.c_str()) != 0) {
    int err = errno;
    discard();
    return fatal("Can't replace " + target + ": " + std::strerror(err));
  }
  int dir_fd = ::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  std::cerr << "lithos_switch: " << target << " replaced by " << new_file << "\n";

  std::string pid_file = join_path(master->value.runtime_dir, "master.pid");
  std::string why;
  if (auto pid = running_tree(pid_file, why)) {
    if (signal_tree(*pid, pid_file, why)) {
      std::cerr << "lithos_switch: sent SIGQUIT to lithos_tree (pid " << *pid << ")\n";
      return 0;
    }
  }
  std::cerr << "lithos_switch: warning: " << why
            << "; the tree will use the new config when it starts\n";
  return 0;
}
