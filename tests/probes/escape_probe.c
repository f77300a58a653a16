/* escape_probe: a static program run inside test containers
 * (tests/test_escapes.cpp). Each mode tries one thing a container must not
 * be able to do (or reports one property of its own process) and prints one
 * line "MODE result" that the test matches. It never harms the host even if
 * the attempt succeeds: TIOCSTI writes only into the test's own pty, the
 * signals go to pids the test names, sockets are loopback or abstract. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void result(const char* mode, long rc) {
  if (rc < 0)
    printf("%s errno=%d\n", mode, errno);
  else
    printf("%s ok\n", mode);
}

/* Pushes a command line into the terminal's input queue, one byte at a time. */
static void tiocsti(int fd, unsigned long request, const char* mode) {
  const char* line = "echo INJECTED_BY_CONTAINER\n";
  long rc = 0;
  for (const char* p = line; *p && rc == 0; ++p) rc = syscall(SYS_ioctl, fd, request, p);
  result(mode, rc);
}

static void list_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) {
    printf("fds errno=%d\n", errno);
    return;
  }
  int own = dirfd(d);
  printf("fds");
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == own) continue;
    printf(" %s", e->d_name);
  }
  printf("\n");
  closedir(d);
}

/* Runs fn in a child and reports how the child ended (for calls that kill). */
static void in_child(const char* mode, long (*fn)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    long rc = fn();
    _exit(rc < 0 ? 100 + (errno & 0x3f) : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    printf("%s signal=%d\n", mode, WTERMSIG(status));
  else if (WEXITSTATUS(status) >= 100)
    printf("%s errno=%d\n", mode, WEXITSTATUS(status) - 100);
  else
    printf("%s ok\n", mode);
}

static long x32_getpid(void) {
  return syscall(0x40000000 | SYS_getpid);
}
static long clone_newuser(void) {
  long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
  if (pid == 0) _exit(0);
  return pid;
}
static long clone3_plain(void) {
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) _exit(0);
  return pid;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  const char* mode = argv[1];
  if (!strcmp(mode, "fds")) {
    list_fds();
  } else if (!strcmp(mode, "tiocsti-stdin")) {
    tiocsti(0, TIOCSTI, mode);
  } else if (!strcmp(mode, "tiocsti-stdin-high")) {
    /* CVE-2019-10063: the kernel truncates the request to 32 bits. */
    tiocsti(0, TIOCSTI | (1UL << 32), mode);
  } else if (!strcmp(mode, "tiocsti-tty")) {
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      printf("%s open errno=%d\n", mode, errno);
    } else {
      tiocsti(fd, TIOCSTI, mode);
    }
  } else if (!strcmp(mode, "tioclinux")) {
    char sub = 6; /* TIOCL_GETSHIFTSTATE: harmless if it ever passed */
    result(mode, syscall(SYS_ioctl, 0, TIOCLINUX, &sub));
  } else if (!strcmp(mode, "personality") && argc > 2) {
    unsigned long value = strtoul(argv[2], NULL, 0);
    result(mode, syscall(SYS_personality, value));
  } else if (!strcmp(mode, "vsock")) {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    result(mode, fd);
  } else if (!strcmp(mode, "pdeathsig")) {
    int sig = -1;
    prctl(PR_GET_PDEATHSIG, &sig);
    printf("pdeathsig %d\n", sig);
  } else if (!strcmp(mode, "kill-knot")) {
    /* The test waits for the knot's verdict on both signals, then lets the
     * container go on (see SignalsFromInsideDoNotStopTheKnot). */
    result(mode, kill(1, SIGTERM));
    result("kill-knot-int", kill(1, SIGINT));
  } else if (!strcmp(mode, "kill") && argc > 2) {
    result(mode, kill((pid_t)atoi(argv[2]), SIGUSR1));
  } else if (!strcmp(mode, "ftruncate-stdout")) {
    result(mode, ftruncate(1, 0));
  } else if (!strcmp(mode, "euid")) {
    printf("euid %d\n", (int)geteuid());
  } else if (!strcmp(mode, "open") && argc > 2) {
    result(mode, open(argv[2], O_RDONLY | O_CLOEXEC));
  } else if (!strcmp(mode, "held")) {
    /* Attacks the security review found blocked: they stay blocked. */
    in_child("x32", x32_getpid);
    in_child("clone-newuser", clone_newuser);
    in_child("clone3", clone3_plain);
    result("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    result("userfaultfd", syscall(SYS_userfaultfd, 0));
    result("bpf", syscall(SYS_bpf, 0, NULL, 0));
    result("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    result("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
  } else if (!strcmp(mode, "bind") && argc > 2) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    result(mode, fd < 0 ? fd : bind(fd, (struct sockaddr*)&addr, sizeof addr));
  } else if (!strcmp(mode, "connect-abstract") && argc > 2) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(argv[2]);
    if (len > sizeof addr.sun_path - 1) len = sizeof addr.sun_path - 1;
    memcpy(addr.sun_path + 1, argv[2], len); /* sun_path[0] = 0: abstract */
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    result(mode, fd < 0 ? fd : connect(fd, (struct sockaddr*)&addr, size));
  } else if (!strcmp(mode, "write") && argc > 2) {
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    result(mode, fd);
  } else {
    printf("unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
