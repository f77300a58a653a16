// Running the built tools from a test: in a directory, with stdout and
// stderr through unlinked temporary files (no pipe can fill up) and stdin
// on /dev/null. Shared by the corpus, report and command-line tests.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace lithos::test {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp_fd(int fd) {
  std::string text;
  ::lseek(fd, 0, SEEK_SET);
  char buffer[8192];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

// Runs BIN_DIR/`tool` with `args` in `dir`, stdin /dev/null, `env` added
// to the environment (NAME=VALUE); stdout and stderr kept apart. `err_fd`,
// when not -1, is the child's stderr instead (a terminal, say): then
// result.err stays empty.
inline RunResult run_tool(const std::filesystem::path& dir, const std::string& tool,
                          const std::vector<std::string>& args,
                          const std::vector<std::string>& env = {}, int err_fd_override = -1) {
  RunResult result;
  char out_name[] = "/tmp/lithos-tool-out-XXXXXX";
  char err_name[] = "/tmp/lithos-tool-err-XXXXXX";
  int out_fd = ::mkostemp(out_name, O_CLOEXEC);
  int err_fd = ::mkostemp(err_name, O_CLOEXEC);
  if (out_fd >= 0) ::unlink(out_name);
  if (err_fd >= 0) ::unlink(err_name);
  if (out_fd < 0 || err_fd < 0) {
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    return result;
  }
  std::vector<std::string> storage{std::string(LITHOS_BIN_DIR) + "/" + tool};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = env;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    for (auto& e : env_storage) ::putenv(e.data());
    ::dup2(out_fd, 1);  // dup2 clears close-on-exec on the copy
    ::dup2(err_fd_override >= 0 ? err_fd_override : err_fd, 2);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  result.out = slurp_fd(out_fd);
  result.err = slurp_fd(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return result;
}

inline RunResult run_check(const std::filesystem::path& dir, const std::vector<std::string>& args) {
  return run_tool(dir, "lithos_check", args);
}

}  // namespace lithos::test
