// `lithos_tree --reload` (the unit's ExecReload): asks the running tree of a
// master to reload and waits for its answer, so that a refused reload is a
// failed `systemctl reload` with the tree's reason, not a silent no-op.
// The request is a SIGQUIT queued with a random token (sigqueue's value);
// the tree answers `TOKEN ok|refused MESSAGE` in <runtime-dir>/reload.answer,
// from the old image when it refuses, from the new one once it supervises.
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "lithos/policy/tree.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "lithos/runtime/supervisor.hpp"
#include "tree_support.hpp"

namespace lithos::runtime {

namespace {

using tree_detail::kReloadAnswerName;
using tree_detail::kTreeLockName;

// The tree's answer so far ("" when there is none yet).
std::string read_answer(int dir) {
  auto text = read_file_at(dir, "runtime dir", kReloadAnswerName, 4096);
  return text ? *text : std::string();
}

// The pid the lock holder wrote, while the lock is held; nullopt when no
// tree holds it.
std::optional<pid_t> lock_holder(int dir) {
  UniqueFd lock(::openat(dir, std::string(kTreeLockName).c_str(),
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st {};
  if (!lock || ::fstat(lock.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (::flock(lock.get(), LOCK_SH | LOCK_NB) == 0) return std::nullopt;  // nobody holds it
  long pid = tree_detail::lock_holder_pid(lock.get());
  if (pid == 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

int fail(const std::string& message) {
  std::cerr << "lithos_tree --reload: " << message << "\n";
  return 1;
}

}  // namespace

int reload_tree(const std::string& master_path, int timeout_ms) {
  policy::Diagnostics diags;
  auto master = policy::load_config<policy::MasterCodec>(master_path, diags, nullptr);
  if (!master) {
    std::string why;
    for (const auto& d : diags.items()) why += (why.empty() ? "" : "; ") + d.message;
    return fail("master config " + master_path + ": " + why);
  }
  const std::string& runtime_dir = master->value.runtime_dir;
  auto dir = open_directory(runtime_dir);
  if (!dir) return fail(dir.error().what());

  auto holder = lock_holder(dir->get());
  if (!holder)
    return fail("no lithos_tree runs for this master (" + runtime_dir + "/" +
                std::string(kTreeLockName) + " is not held)");
  // The pidfd pins the process: the lock, checked again after it, proves it
  // is the holder and not a process that got a dead tree's pid.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, *holder, 0)));
  if (!pidfd || lock_holder(dir->get()) != holder)
    return fail("the lithos_tree holding the lock (pid " + std::to_string(*holder) + ") went away");

  UniqueFd watch(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!watch ||
      ::inotify_add_watch(watch.get(), runtime_dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
    return fail("inotify on " + runtime_dir + ": " + std::strerror(errno));

  std::uint32_t token = 0;
  while (token == 0) {
    if (::getrandom(&token, sizeof token, 0) != static_cast<ssize_t>(sizeof token))
      return fail(std::string("getrandom: ") + std::strerror(errno));
    token &= 0x7fffffffU;  // sigqueue carries an int
  }
  siginfo_t info{};
  info.si_signo = SIGQUIT;
  info.si_code = SI_QUEUE;
  info.si_pid = ::getpid();
  info.si_uid = ::getuid();
  info.si_value.sival_int = static_cast<int>(token);
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGQUIT, &info, 0) != 0)
    return fail("can't signal lithos_tree (pid " + std::to_string(*holder) +
                "): " + std::strerror(errno));

  const std::string mine = std::to_string(token) + " ";
  int left_ms = timeout_ms;
  while (true) {
    std::string answer = read_answer(dir->get());
    if (answer.rfind(mine, 0) == 0) {
      std::istringstream fields(answer.substr(mine.size()));
      std::string verdict, message;
      fields >> verdict;
      std::getline(fields >> std::ws, message);
      if (verdict == "ok") {
        std::cout << "lithos_tree (pid " << *holder << "): " << message << "\n";
        return 0;
      }
      return fail("refused: " + message + " (the running image keeps supervising)");
    }
    if (left_ms <= 0)
      return fail("no answer from lithos_tree (pid " + std::to_string(*holder) + ") within " +
                  std::to_string(timeout_ms / 1000) + " s; see its log");
    pollfd fds[2] = {{watch.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    const auto started = std::chrono::steady_clock::now();
    if (::poll(fds, 2, left_ms) < 0 && errno != EINTR)
      return fail(std::string("poll: ") + std::strerror(errno));
    if (fds[1].revents & POLLIN) {
      // The answer may have come just before the exit.
      answer = read_answer(dir->get());
      if (answer.rfind(mine, 0) == 0) continue;
      return fail("lithos_tree (pid " + std::to_string(*holder) + ") exited during the reload");
    }
    char events[4096];
    while (::read(watch.get(), events, sizeof events) > 0) {
    }
    left_ms -= static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count());
  }
}

}  // namespace lithos::runtime
