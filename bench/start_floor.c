/* start_floor: the C floor of bench_knot_start. It does the kernel steps of a
 * lithos container start (lithos_cmd -> lithos_knot -> command) as cheaply as
 * C can: no supervisor, no config reading, no plan, no logging, no state dir.
 * What lithos costs on top of this is lithos' own overhead.
 *
 *   start_floor IMAGE_DIR DEVFS_DIR CGROUP_PARENT_NAME -- COMMAND [ARG...]
 *
 * Steps, in the order of the knot's start (runtime/src/knot_steps.cpp):
 *   1. scope cgroups: mkdir PARENT/start-floor-PID under the memory, cpu and
 *      pids controllers (v1 hierarchy /sys/fs/cgroup/C if mounted, else the
 *      cgroup2 mount: /sys/fs/cgroup or, hybrid, /sys/fs/cgroup/unified, with
 *      the controllers enabled in subtree_control when the parent is new);
 *      memory limit 64 MiB (v1 memsw too / v2 swap.max 0), cpu shares 512 (v2
 *      weight), pids.max 4096
 *   2. clone with new mount, PID, IPC and UTS namespaces: the child is PID 1
 *      of the new pid namespace; it moves itself into the scopes first
 *   3. / rprivate; IMAGE bound recursively onto itself, remounted
 *      ro,nosuid,nodev; proc at IMAGE/proc, DEVFS bound at IMAGE/dev, tmpfs at
 *      IMAGE/tmp; pivot_root(".", ".") and the old root detached
 *   4. RLIMIT_NOFILE 1024
 *   5. capabilities (libcap): bounding set dropped cap by cap, ambient set
 *      cleared, no_new_privs, every set cleared
 *   6. seccomp (libseccomp, compiled per start): default allow, the default
 *      deny list of policy/hardening.hpp -> EPERM, clone with a CLONE_NEW*
 *      flag -> EPERM, clone3 -> ENOSYS, ioctl TIOCSTI/TIOCLINUX and socket
 *      AF_VSOCK -> EPERM, foreign ABI -> kill
 *   7. execve COMMAND
 * The parent waits, removes the scope cgroups and exits with the child's exit
 * status (128 + signal if killed). Any failed step: perror, exit 1.
 * Build: cc -O2 start_floor.c -lseccomp -lcap (bench/CMakeLists.txt). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(what) \
  do {             \
    perror(what);  \
    exit(1);       \
  } while (0)
/* libseccomp returns -errno instead of setting errno. */
#define SCMP_CHECK(call, what) \
  do {                         \
    int rc_ = (call);          \
    if (rc_ < 0) {             \
      errno = -rc_;            \
      FAIL(what);              \
    }                          \
  } while (0)

/* policy/hardening.hpp kDefaultDeniedSyscalls */
/* clang-format off */
static const char* const kDenied[] = {
    "acct", "add_key", "adjtimex", "bpf", "chroot", "clock_adjtime", "clock_settime",
    "create_module", "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "init_module", "io_uring_enter", "io_uring_register", "io_uring_setup",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount",
    "mount_setattr", "move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "open_tree", "perf_event_open", "pidfd_getfd", "pivot_root", "process_vm_readv",
    "process_vm_writev", "ptrace", "query_module", "quotactl", "quotactl_fd", "reboot",
    "request_key", "setdomainname", "sethostname", "setns", "settimeofday", "swapoff", "swapon",
    "syslog", "umount2", "unshare", "uselib", "userfaultfd", "vhangup",
};
/* clang-format on */

enum { kControllers = 3 };
static const char* const kController[kControllers] = {"memory", "cpu", "pids"};
static char scope[kControllers][512]; /* "": the controller is in another v2 scope */
static pid_t owner;                   /* the parent: the one that removes the scopes */

/* At exit of the parent, also after a failed step: no scope is left behind. */
static void remove_scopes(void) {
  if (getpid() != owner) return;
  for (int i = 0; i < kControllers; ++i)
    if (scope[i][0] && rmdir(scope[i]) != 0 && errno != ENOENT) perror(scope[i]);
}

/* snprintf that fails on truncation. */
static char* format(char* out, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, size, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= size) {
    fprintf(stderr, "start_floor: path too long\n");
    exit(1);
  }
  return out;
}

static void write_file(const char* path, const char* value, int optional) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && optional && errno == ENOENT) return;
  if (fd < 0 || write(fd, value, strlen(value)) < 0) FAIL(path);
  close(fd);
}

static int fs_is(const char* path, long magic) {
  struct statfs st;
  return statfs(path, &st) == 0 && (long)st.f_type == magic;
}

/* Whether `name` is a word of a cgroup.controllers list. */
static int listed(const char* list, const char* name) {
  size_t n = strlen(name);
  for (const char* p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) return 1;
  return 0;
}

/* Scope dirs and limits (step 1). */
static void make_scopes(const char* parent) {
  const char* v2 = fs_is("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)           ? "/sys/fs/cgroup"
                   : fs_is("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC) ? "/sys/fs/cgroup/unified"
                                                                          : NULL;
  char v2_controllers[256] = "", enable[64] = "", base[kControllers][128], file[600];
  int on_v2[kControllers] = {0}, v2_scope = -1;
  for (int i = 0; i < kControllers; ++i) {
    const char* c = kController[i];
    format(base[i], sizeof base[i], "/sys/fs/cgroup/%s", i == 1 ? "cpu,cpuacct" : c);
    if (fs_is(base[i], CGROUP_SUPER_MAGIC)) continue;
    if (i == 1 && fs_is(strcpy(base[i], "/sys/fs/cgroup/cpu"), CGROUP_SUPER_MAGIC)) continue;
    if (v2 && !v2_controllers[0]) { /* not a v1 hierarchy: read the v2 list once */
      int fd = open(format(file, sizeof file, "%s/cgroup.controllers", v2), O_RDONLY | O_CLOEXEC);
      ssize_t n = fd < 0 ? -1 : read(fd, v2_controllers, sizeof v2_controllers - 1);
      if (n < 0) FAIL(file);
      v2_controllers[n] = 0;
      close(fd);
    }
    if (!v2 || !listed(v2_controllers, c)) {
      fprintf(stderr, "start_floor: no %s controller\n", c);
      exit(1);
    }
    on_v2[i] = 1;
    strcat(strcat(enable, enable[0] ? " +" : "+"), c);
    if (v2_scope < 0) v2_scope = i; /* one v2 scope dir for every v2 controller */
    strcpy(base[i], v2);
  }
  for (int i = 0; i < kControllers; ++i) {
    if (on_v2[i] && i != v2_scope) continue;
    char dir[300];
    format(dir, sizeof dir, "%s/%s", base[i], parent);
    int made = mkdir(dir, 0755) == 0;
    if (!made && errno != EEXIST) FAIL(dir);
    if (made && on_v2[i]) { /* a new v2 parent: enable the controllers */
      format(file, sizeof file, "%s/cgroup.subtree_control", base[i]);
      write_file(file, enable, 0);
      format(file, sizeof file, "%s/cgroup.subtree_control", dir);
      write_file(file, enable, 0);
    }
    char name[sizeof scope[i]];
    format(name, sizeof name, "%s/start-floor-%d", dir, (int)owner);
    if (mkdir(name, 0755) != 0) FAIL(name);
    strcpy(scope[i], name); /* only now one to remove */
  }
  /* Limits before anything joins, so the command never runs unlimited. */
#define SCOPE_FILE(i, name) format(file, sizeof file, "%s/%s", scope[i], name)
  if (on_v2[0]) {
    write_file(SCOPE_FILE(v2_scope, "memory.max"), "67108864", 0);
    write_file(SCOPE_FILE(v2_scope, "memory.swap.max"), "0", 1);
  } else {
    write_file(SCOPE_FILE(0, "memory.limit_in_bytes"), "67108864", 0);
    write_file(SCOPE_FILE(0, "memory.memsw.limit_in_bytes"), "67108864", 1);
  }
  if (on_v2[1]) /* shares 512 as cpu.weight: 1 + (512 - 2) * 9999 / 262142 */
    write_file(SCOPE_FILE(v2_scope, "cpu.weight"), "20", 0);
  else
    write_file(SCOPE_FILE(1, "cpu.shares"), "512", 0);
  write_file(SCOPE_FILE(on_v2[2] ? v2_scope : 2, "pids.max"), "4096", 0);
#undef SCOPE_FILE
}

/* Steps 3-7, in the child (PID 1 of the new pid namespace). */
static void child(const char* image, const char* devfs, char** argv) {
  char path[600];
  for (int i = 0; i < kControllers; ++i) {
    if (!scope[i][0]) continue;
    format(path, sizeof path, "%s/cgroup.procs", scope[i]);
    write_file(path, "0", 0);
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) FAIL("mount / rprivate");
  if (mount(image, image, NULL, MS_BIND | MS_REC, NULL) != 0) FAIL("bind image");
  if (mount(NULL, image, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
    FAIL("remount image ro");
  format(path, sizeof path, "%s/proc", image);
  if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) FAIL(path);
  format(path, sizeof path, "%s/dev", image);
  if (mount(devfs, path, NULL, MS_BIND, NULL) != 0) FAIL(path);
  format(path, sizeof path, "%s/tmp", image);
  if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777") != 0) FAIL(path);
  if (chdir(image) != 0) FAIL("chdir image");
  if (syscall(SYS_pivot_root, ".", ".") != 0) FAIL("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) FAIL("umount old root");
  if (chdir("/") != 0) FAIL("chdir /");

  struct rlimit nofile = {1024, 1024};
  if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) FAIL("setrlimit RLIMIT_NOFILE");

  for (cap_value_t cap = 0, bits = cap_max_bits(); cap < bits; ++cap)
    if (cap_drop_bound(cap) != 0) FAIL("cap_drop_bound");
  /* libcap's cap_reset_ambient() probes every cap first: one prctl instead */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) FAIL("PR_CAP_AMBIENT");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) FAIL("PR_SET_NO_NEW_PRIVS");
  cap_t caps = cap_init();
  if (!caps || cap_clear(caps) != 0 || cap_set_proc(caps) != 0) FAIL("cap_set_proc");
  cap_free(caps);

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) FAIL("seccomp_init");
  SCMP_CHECK(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch");
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (size_t i = 0; i < sizeof kDenied / sizeof *kDenied; ++i) {
    int nr = seccomp_syscall_resolve_name(kDenied[i]);
    if (nr != __NR_SCMP_ERROR) SCMP_CHECK(seccomp_rule_add(ctx, eperm, nr, 0), kDenied[i]);
  }
  const uint32_t clone_new[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};
  for (size_t i = 0; i < sizeof clone_new / sizeof *clone_new; ++i)
    SCMP_CHECK(seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
                                SCMP_A0_32(SCMP_CMP_MASKED_EQ, clone_new[i], clone_new[i])),
               "clone");
  SCMP_CHECK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");
  SCMP_CHECK(seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1, SCMP_A1_32(SCMP_CMP_EQ, 0x5412)),
             "ioctl TIOCSTI");
  SCMP_CHECK(seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1, SCMP_A1_32(SCMP_CMP_EQ, 0x541c)),
             "ioctl TIOCLINUX");
  SCMP_CHECK(seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 1, SCMP_A0_32(SCMP_CMP_EQ, 40)),
             "socket AF_VSOCK");
  SCMP_CHECK(seccomp_load(ctx), "seccomp_load");
  seccomp_release(ctx);

  execvp(argv[0], argv);
  FAIL(argv[0]);
}

int main(int argc, char** argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "usage: start_floor IMAGE_DIR DEVFS_DIR CGROUP_PARENT_NAME -- COMMAND...\n");
    return 2;
  }
  owner = getpid();
  atexit(remove_scopes);
  make_scopes(argv[3]);
  /* fork-like clone (no stack: the child returns here on a copy of this one;
   * with every pointer argument 0 the argument order of the arch is moot). */
  pid_t pid = (pid_t)syscall(
      SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) FAIL("clone");
  if (pid == 0) child(argv[1], argv[2], argv + 5);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) FAIL("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
