// Running the built lithos_check from a test: in a directory, with stdout
// and stderr through unlinked temporary files (no pipe can fill up) and
// stdin on /dev/null. Shared by the corpus and report tests.
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

inline RunResult run_check(const std::filesystem::path& dir, const std::vector<std::string>& args) {
  RunResult result;
  char out_name[] = "/tmp/lithos-check-out-XXXXXX";
  char err_name[] = "/tmp/lithos-check-err-XXXXXX";
  int out_fd = ::mkostemp(out_name, O_CLOEXEC);
  int err_fd = ::mkostemp(err_name, O_CLOEXEC);
  if (out_fd >= 0) ::unlink(out_name);
  if (err_fd >= 0) ::unlink(err_name);
  if (out_fd < 0 || err_fd < 0) {
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    return result;
  }
  std::vector<std::string> storage{std::string(LITHOS_BIN_DIR) + "/lithos_check"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::dup2(out_fd, 1);  // dup2 clears close-on-exec on the copy
    ::dup2(err_fd, 2);
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

}  // namespace lithos::test
