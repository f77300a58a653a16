// Reload by re-exec (docs/tree.md, "Reload: in-place re-exec"): the checks
// that refuse a reload, the execve, and the state codec both images share;
// separate because it is the one place where two versions of the tree meet.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <sstream>

#include "lithos/common/text.hpp"
#include "lithos/policy/config.hpp"
#include "lithos/runtime/spawn.hpp"
#include "tree_reexec_state.hpp"
#include "tree_support.hpp"
#include "tree_util.hpp"

namespace lithos::runtime::tree_detail {

std::string encode_reexec_state(const ReexecState& state) {
  std::string out = "v1\n";
  if (state.reload_token != 0) out += "reload " + std::to_string(state.reload_token) + "\n";
  if (state.reload_times)
    out += "timing " + std::to_string(state.reload_times->first) + " " +
           std::to_string(state.reload_times->second) + "\n";
  for (const auto& [name, t] : state.starts)
    out += "start " + name + " " + std::to_string(t) + "\n";
  if (state.children_only) out += "scan children\n";
  // Per pid, ascending, its kill line before its knot line: the order the
  // first writer, walking its children by pid, gave them.
  auto kill = state.kills.begin();
  auto knot = state.knots.begin();
  while (kill != state.kills.end() || knot != state.knots.end()) {
    bool kill_first =
        knot == state.knots.end() || (kill != state.kills.end() && kill->first <= knot->first);
    if (kill_first) {
      out += "kill " + std::to_string(kill->first) + " " + std::to_string(kill->second) + "\n";
      ++kill;
    } else {
      const auto& [name, identity] = knot->second;
      out += "knot " + std::to_string(knot->first) + " " + name + " " + identity + "\n";
      ++knot;
    }
  }
  return out;
}

ReexecState decode_reexec_state(std::string_view text) {
  ReexecState state;
  std::istringstream in{std::string(text)};
  std::string line;
  // One stream for every line: constructing one per line cost more than the
  // parsing (5000 knots, one line each).
  std::istringstream fields;
  while (std::getline(in, line)) {
    fields.clear();
    fields.str(line);
    std::string kind;
    fields >> kind;
    if (kind == "start") {
      std::string name;
      std::int64_t t = 0;
      if (fields >> name >> t) state.starts[name] = t;
    } else if (kind == "kill") {
      long pid = 0;
      std::int64_t t = 0;
      if (fields >> pid >> t) state.kills[static_cast<pid_t>(pid)] = t;
    } else if (kind == "timing") {
      std::int64_t began = 0, exec = 0;
      if (fields >> began >> exec) state.reload_times = {{began, exec}};
    } else if (kind == "reload") {
      fields >> state.reload_token;
    } else if (kind == "scan") {
      std::string what;
      if (fields >> what && what == "children") state.children_only = true;
    } else if (kind == "knot") {
      long pid = 0;
      std::string name, identity;
      if (fields >> pid >> name && fields.get() == ' ' && std::getline(fields, identity) &&
          pid > 0 && !identity.empty())
        state.knots[static_cast<pid_t>(pid)] = {name, identity};
    }
  }
  return state;
}

std::string encode_way_back(const WayBackText& way_back) {
  std::string out = std::to_string(way_back.exe_fd) + " ";
  for (const auto& arg : way_back.argv) {
    append_hex(out, arg);
    out += "00";
  }
  return out;
}

std::optional<WayBackText> decode_way_back(std::string_view text) {
  const auto space = text.find(' ');
  if (space == std::string_view::npos || space > 9) return std::nullopt;
  const std::string_view fd_text = text.substr(0, space);
  if (fd_text.size() > 1 && fd_text[0] == '0') return std::nullopt;  // one spelling per number
  const auto fd = to_u64(fd_text);
  const auto bytes = decode_hex(text.substr(space + 1));
  if (!fd || !bytes || bytes->empty() || bytes->back() != '\0')
    return std::nullopt;  // no final NUL: cut short
  WayBackText out;
  out.exe_fd = static_cast<int>(*fd);
  std::string_view rest = *bytes;
  while (!rest.empty()) {
    const auto end = rest.find('\0');
    out.argv.emplace_back(rest.substr(0, end));
    rest.remove_prefix(end + 1);
  }
  return out;
}

// What the new image needs to start at all, checked before execve: a reload
// that cannot start leaves the host unsupervised until the service manager
// starts a tree again (the knots keep running, docs/tree.md "Crash-only").
// "" when it can start.
std::string Tree::reload_blocker() const {
  policy::Diagnostics diags;
  auto master = policy::load_config<policy::MasterCodec>(opt_.master_path, diags, nullptr);
  if (!master) {
    std::string why;
    for (const auto& d : diags.items()) why += (why.empty() ? "" : "; ") + d.one_line();
    return "the master config cannot be read: " + why;
  }
  for (const auto& binary : {opt_.self_exe, opt_.knot_path}) {
    struct stat st {};
    if (::stat(binary.c_str(), &st) != 0) return binary + ": " + errno_text(errno);
    if (!S_ISREG(st.st_mode) || ::access(binary.c_str(), X_OK) != 0)
      return binary + " is not an executable file";
  }
  if (!is_directory(master->value.devfs_dir))
    return "devfs dir " + master->value.devfs_dir + " is missing";
  if (master->value.runtime_dir != runtime_dir_)
    return "runtime-dir changed from " + runtime_dir_ + " to " + master->value.runtime_dir +
           " (the lock and the state dir live there: restart the service instead)";
  return {};
}

// Runs the binary about to be exec'd as `lithos_tree ARGS --preflight`: a
// binary that does not run at all (a botched upgrade, a missing library, a
// script in its place) or refuses this master is found out while the
// current image can still keep supervising. "" when it passed.
std::string Tree::preflight_new_image() const {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return "pipe: " + errno_text(errno);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  SpawnOptions spawn;
  spawn.path = opt_.self_exe;
  spawn.argv = opt_.argv;
  if (spawn.argv.empty()) spawn.argv.push_back(opt_.self_exe);
  spawn.argv.push_back("--preflight");
  spawn.env = without_notify_socket(opt_.env);
  spawn.parent_death_signal = SIGKILL;
  spawn.fds = {{null_in.get(), 0}, {write_end.get(), 1}, {write_end.get(), 2}};
  // As for a knot: the child does not copy (and close again) every pidfd.
  spawn.fd_table_below = kLowDescriptors;
  auto spawned = spawn_process(spawn);
  write_end.reset();
  if (!spawned) return "it cannot run: " + spawned.error().what();
  std::string output;
  const Ns deadline = now_ns() + 10'000 * kMs;
  bool timed_out = false;
  while (true) {
    Ns left = deadline - now_ns();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left / kMs + 1));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[512];
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < 4096) output.append(buf, static_cast<std::size_t>(n));
  }
  if (timed_out) pidfd_signal(spawned->pidfd.get(), SIGKILL);
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(spawned->pid), &info, WEXITED) < 0 && errno == EINTR) {
  }
  if (timed_out) return "it did not finish within 10 s";
  if (info.si_code == CLD_EXITED && info.si_status == 0) return {};
  std::string first_line = output.substr(0, output.find('\n'));
  return status_text(info) + (first_line.empty() ? "" : ": " + first_line);
}

// What the next image needs of this one's loop (tree_reexec_state.hpp).
ReexecState Tree::state_for_next_image(std::uint32_t token) const {
  ReexecState state;
  state.reload_token = token;
  for (const auto& [name, instance] : instances_)
    if (instance.last_start) state.starts[name] = *instance.last_start;
  // A tree that tracks only its own children has nothing else to find: the
  // new image lists its children instead of scanning every process.
  state.children_only =
      std::all_of(children_.begin(), children_.end(), [](const auto& c) { return c.second.ours; });
  for (const auto& [pid, child] : children_) {
    if (child.kill_at) state.kills[pid] = *child.kill_at;
    // Our knots and what they run: the new image needs no command lines,
    // and one that dies meanwhile (a zombie has none) is still accounted
    // as its instance's death. A knot being stopped is marked so ("-" is
    // no identity): the new image stops it again. One kept with an identity
    // we do not hold (its configuration unreadable) is left out: the new
    // image reads its command line.
    if (!child.ours || child.name.empty()) continue;
    auto it = instances_.find(child.name);
    std::string identity;
    if (child.term_sent)
      identity = "-";
    else if (child.configured_identity && it != instances_.end())
      identity = it->second.plan->identity;
    else
      continue;
    if (identity.find('\n') != std::string::npos || child.name.find(' ') != std::string::npos)
      continue;  // the new image reads its command line instead
    state.knots[pid] = {child.name, identity};
  }
  return state;
}

void Tree::reexec(std::uint32_t token) {
  const Ns began = now_ns();
  if (std::string blocker = reload_blocker(); !blocker.empty()) {
    log_.error("Reload refused, " + blocker + "; still running the current image");
    notify("STATUS=reload refused, " + blocker);
    answer_reload(token, false, blocker);
    return;
  }
  if (std::string failed = preflight_new_image(); !failed.empty()) {
    log_.error("Reload refused, " + opt_.self_exe + " --preflight " + failed +
               "; still running the current image");
    notify("STATUS=reload refused, " + opt_.self_exe + " --preflight " + failed);
    answer_reload(token, false, opt_.self_exe + " --preflight " + failed);
    return;
  }
  log_.info("Reloading: re-executing " + opt_.self_exe);
  write_metrics();
  ReexecState next = state_for_next_image(token);
  next.reload_times = {{began, now_ns()}};
  std::string state = encode_reexec_state(next);
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "lithos_tree_state", 0));
  if (fd < 0 || ::write(fd, state.data(), state.size()) != static_cast<ssize_t>(state.size())) {
    log_.error("Can't keep state across re-exec: " + errno_text(errno) + "; re-executing anyway");
  }
  std::vector<std::string> env = opt_.env;
  if (fd >= 0) env.push_back(std::string(kTreeStateEnv) + "=" + std::to_string(fd));
  // The way back (docs/tree.md, "Going back"): should the new image fail
  // its start-up after all, it execs this executable again, by descriptor
  // (a package upgrade has replaced the file at its path by now).
  UniqueFd running(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
  struct stat running_stat {};
  std::string no_way_back;
  if (!running)
    no_way_back = "/proc/self/exe: " + errno_text(errno);
  else if (::fstat(running.get(), &running_stat) != 0)
    no_way_back = "fstat /proc/self/exe: " + errno_text(errno);
  else if (!S_ISREG(running_stat.st_mode))
    no_way_back = "/proc/self/exe is not a regular file";
  if (no_way_back.empty())
    env.push_back(std::string(kPreviousImageEnv) + "=" +
                  encode_way_back({running.get(), opt_.argv}));
  else
    log_.warn("Can't keep the running image for a way back: " + no_way_back);
  std::vector<char*> argv, envp;
  std::vector<std::string> args = opt_.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  sockets_.set_cloexec(false);
  // The lock passes to the new image: no moment without it (tree_lock.cpp).
  ::fcntl(lock_.get(), F_SETFD, 0);
  if (running) ::fcntl(running.get(), F_SETFD, 0);
  notify("RELOADING=1\nSTATUS=re-executing " + opt_.self_exe);
  ::execve(opt_.self_exe.c_str(), argv.data(), envp.data());
  int err = errno;
  notify("READY=1\nSTATUS=re-exec failed (" + errno_text(err) + "), still supervising");
  answer_reload(token, false, "can't re-execute " + opt_.self_exe + ": " + errno_text(err));
  ::fcntl(lock_.get(), F_SETFD, FD_CLOEXEC);
  sockets_.set_cloexec(true);
  running.reset();
  if (fd >= 0) ::close(fd);
  log_.error("Can't re-execute " + opt_.self_exe + ": " + errno_text(err) + "; continuing");
}

}  // namespace lithos::runtime::tree_detail
