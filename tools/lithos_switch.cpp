// lithos_switch: replaces a sandbox's process config with a new file after
// the same checks as lithos_check, atomically, then asks the tree to reload.
// Exit 0 replaced (also when no tree runs), 1 check failed or I/O error,
// 2 usage error.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/report.hpp"
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Replaces a sandbox's process config after checking it, then reloads lithos_tree."};
  app.set_version_flag("--version", std::string(LITHOS_VERSION));
  std::string master_path = "/etc/lithos/master.yaml";
  std::string sandbox, new_file;
  bool verbose = false;
  app.add_option("--master", master_path, "Master config")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Accepted for compatibility");
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
  // happen under the lock.
  std::string lock_path = join_path(target_dir, ".lithos_switch.lock");
  // No symlink or FIFO planted at the name is followed or waited on.
  int lock_fd =
      ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (lock_fd < 0) return fatal("Can't open lock file " + lock_path + ": " + errno_text());
  if (struct stat st{}; ::fstat(lock_fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fatal("Lock file " + lock_path + " is not a regular file");
  if (::flock(lock_fd, LOCK_EX) != 0) return fatal("Can't lock " + lock_path + ": " + errno_text());

  // Read the candidate once; the bytes checked are the bytes installed.
  auto bytes = yaml::read_text(new_file, diags);
  if (!bytes) {
    std::cerr << format_text(diags, sources);
    return fatal("Can't read " + new_file);
  }
  std::string temp = join_path(target_dir, ".tmp." + sandbox);
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

  // The check reads every image's container configs, which image authors
  // write: it runs in a confined child (nobody, read-only seccomp allow-list,
  // limits; confine.hpp) that sends back the error count and the report.
  auto check = [&]() -> lithos::Result<std::string, std::string> {
    LoadOptions load;
    load.alternate_sandbox = sandbox;
    load.alternate_file = temp;
    ConfigTree tree = load_tree(master_path, load, diags, &sources);
    check_tree(tree, {}, diags, &sources, nullptr);
    // Diagnostics about the temporary copy are about NEWFILE.
    for (auto& d : diags.items())
      if (d.file == temp) d.file = new_file;
    sources.add(new_file, *bytes);
    return std::to_string(diags.error_count()) + "\n" + format_text(diags, sources);
  };
  auto checked = lithos::runtime::run_confined_reader(check, std::chrono::seconds(60));
  if (!checked) {
    ::unlink(temp.c_str());
    return fatal("Configuration check of sandbox " + sandbox +
                 " failed: " + checked.error().what() + "; " + target + " is unchanged");
  }
  const auto newline = checked->find('\n');
  const std::string count = checked->substr(0, newline);
  const bool count_ok =
      newline != std::string::npos && !count.empty() && count.size() < 10 &&
      std::all_of(count.begin(), count.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!count_ok) {
    ::unlink(temp.c_str());
    return fatal("Configuration check of sandbox " + sandbox + " sent a malformed answer; " +
                 target + " is unchanged");
  }
  std::cerr << checked->substr(newline + 1);
  if (count != "0") {
    ::unlink(temp.c_str());
    return fatal("Configuration check failed: " + count + " error(s); " + target + " is unchanged");
  }

  if (::rename(temp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
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
