// bench_rss_trampoline RESULT PROGRAM [ARG...]: runs PROGRAM, waits for it and
// writes "MAXRSS_KIB STATUS\n" (ru_maxrss of wait4, raw wait status) to
// RESULT. Linked statically and using only libc, so the fork child is a few
// pages: the kernel records the peak RSS of a process's old memory map at
// execve, and a child of a large process would report that process's size.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  pid_t pid = ::fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    ::execv(argv[2], argv + 2);
    ::_exit(127);
  }
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) return 1;
  }
  FILE* out = std::fopen(argv[1], "w");
  if (!out) return 1;
  std::fprintf(out, "%ld %d\n", ru.ru_maxrss, status);
  return std::fclose(out) == 0 ? 0 : 1;
}
