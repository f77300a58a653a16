#include "lithos/runtime/confine.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "lithos/policy/yaml.hpp"
#include "lithos/runtime/capabilities.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/seccomp.hpp"
#include "lithos/runtime/spawn.hpp"

// Sanitizer builds (tests only): their runtimes reserve terabytes of shadow
// memory and make system calls outside the reader's allow-list, so neither
// RLIMIT_AS nor the seccomp filter is applied there.
#if defined(__SANITIZE_ADDRESS__)
#define LITHOS_CONFINE_NO_AS_LIMIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LITHOS_CONFINE_NO_AS_LIMIT 1
#endif
#endif

namespace lithos::runtime {
namespace {

Failure<StepError> child_failure(const ChildStatus& status) {
  return step_error("confine_config_reader", "", status.err, status.what());
}

// What reading files, parsing, and reporting over already-open descriptors
// need. Names this architecture lacks are skipped.
constexpr const char* kAllowed[] = {
    // files, read-only (open/openat are restricted further below; openat2
    // carries its flags in memory a filter cannot see, and the uid without
    // CAP_DAC_OVERRIDE is what keeps it from writing)
    "openat2", "read", "pread64", "readv", "close", "close_range", "fstat", "newfstatat",
    "fstatat64", "stat", "lstat", "statx", "fstatfs", "statfs", "lseek", "_llseek", "getdents64",
    "getdents", "readlink", "readlinkat", "access", "faccessat", "faccessat2", "fcntl", "fcntl64",
    "getcwd",
    // the plan builder compiles each sandbox's seccomp program: libseccomp
    // exports the BPF into a memfd (anonymous memory, nothing on disk)
    "memfd_create",
    // reporting: the result pipe, the log file or syslog socket
    "write", "writev", "sendto", "sendmsg", "send",
    // memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise",
    // the C and C++ runtime
    "futex", "rt_sigreturn", "sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
    "restart_syscall", "exit", "exit_group", "getpid", "gettid", "getuid", "geteuid", "getgid",
    "getegid", "getresuid", "getresgid", "getgroups", "uname", "getrandom", "clock_gettime",
    "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep", "getrlimit",
    "ugetrlimit", "sched_yield", "sched_getaffinity"};

[[maybe_unused]] Result<void> install_filter() {
  struct CtxDeleter {
    void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
  };
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return step_error("confine_config_reader", "", ENOMEM, "seccomp_init");
  // A foreign ABI would index a different syscall table: kill.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
    return step_error("confine_config_reader", "", -rc, "seccomp bad-architecture action");
  for (const char* name : kAllowed) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR || nr < 0) continue;
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc < 0)
      return step_error("confine_config_reader", name, -rc, "seccomp_rule_add");
  }
  // open/openat only for reading: no O_WRONLY/O_RDWR (so no O_TMPFILE),
  // no O_CREAT, no O_TRUNC.
  constexpr scmp_datum_t kWriteFlags = O_ACCMODE | O_CREAT | O_TRUNC;
  struct Open {
    const char* name;
    unsigned flags_arg;
  };
  for (Open open : {Open{"openat", 2}, Open{"open", 1}}) {
    int nr = seccomp_syscall_resolve_name(open.name);
    if (nr == __NR_SCMP_ERROR || nr < 0) continue;
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                                  SCMP_CMP(open.flags_arg, SCMP_CMP_MASKED_EQ, kWriteFlags, 0));
        rc < 0)
      return step_error("confine_config_reader", open.name, -rc, "seccomp_rule_add");
  }
  // getrlimit is prlimit64(0, resource, NULL, old) in glibc: reading
  // one's own limits only, never setting them or another process's.
  if (int nr = seccomp_syscall_resolve_name("prlimit64"); nr >= 0) {
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 2, SCMP_A0(SCMP_CMP_EQ, 0),
                                  SCMP_A2(SCMP_CMP_EQ, 0));
        rc < 0)
      return step_error("confine_config_reader", "prlimit64", -rc, "seccomp_rule_add");
  }
  // abort() raises SIGABRT at itself: a crash then reads as one, not as
  // the SIGSEGV of glibc's last resort. Only this thread of this process.
  if (int nr = seccomp_syscall_resolve_name("tgkill"); nr >= 0) {
    auto self = static_cast<scmp_datum_t>(::getpid());
    auto thread = static_cast<scmp_datum_t>(::gettid());
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 2, SCMP_A0(SCMP_CMP_EQ, self),
                                  SCMP_A1(SCMP_CMP_EQ, thread));
        rc < 0)
      return step_error("confine_config_reader", "tgkill", -rc, "seccomp_rule_add");
  }
  if (int rc = seccomp_load(ctx.get()); rc < 0)
    return step_error("confine_config_reader", "", -rc, "seccomp_load");
  return {};
}

void close_other_fds(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int fd : keep) {
    if (fd < 3 || static_cast<unsigned>(fd) < from) continue;
    if (static_cast<unsigned>(fd) > from) ::syscall(SYS_close_range, from, fd - 1u, 0u);
    from = static_cast<unsigned>(fd) + 1;
  }
  ::syscall(SYS_close_range, from, ~0u, 0u);
}

// Lowers `resource` to `limit`; a stricter hard limit already set (by the
// operator) stays.
Result<void> lower_limit(int resource, rlim_t limit, const char* name) {
  rlimit current{};
  if (::getrlimit(resource, &current) != 0)
    return step_error("confine_config_reader", "", errno, name);
  rlim_t value = std::min(limit, current.rlim_max);
  rlimit lowered{value, value};
  if (::setrlimit(resource, &lowered) != 0)
    return step_error("confine_config_reader", "", errno, name);
  return {};
}

}  // namespace

Result<void> confine_config_reader(const ConfineOptions& options) {
  close_other_fds(options.keep_fds);

  // A core dump of a process that read secrets' configs stays off disk.
  if (auto set = lower_limit(RLIMIT_CORE, 0, "RLIMIT_CORE"); !set) return set;
  if (auto set = lower_limit(RLIMIT_CPU, options.cpu_seconds, "RLIMIT_CPU"); !set) return set;
#ifndef LITHOS_CONFINE_NO_AS_LIMIT
  if (auto set = lower_limit(RLIMIT_AS, options.address_space_bytes, "RLIMIT_AS"); !set) return set;
#endif

  auto caps = resolve_capabilities({});
  if (!caps) return fail(caps.error());
  if (options.keep_read_search) caps->kept |= std::uint64_t{1} << CAP_DAC_READ_SEARCH;
  if (::setgroups(0, nullptr) != 0)
    return step_error("confine_config_reader", "", errno, "setgroups");
  if (auto kept = keep_capabilities_across_setuid(); !kept.ok()) return child_failure(kept);
  if (::setresgid(options.gid, options.gid, options.gid) != 0)
    return step_error("confine_config_reader", "", errno,
                      "setresgid " + std::to_string(options.gid));
  if (::setresuid(options.uid, options.uid, options.uid) != 0)
    return step_error("confine_config_reader", "", errno,
                      "setresuid " + std::to_string(options.uid));
  if (auto dropped = drop_capabilities(*caps); !dropped.ok()) return child_failure(dropped);
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
    return step_error("confine_config_reader", "", errno, "PR_SET_KEEPCAPS 0");
  // The uid change reset both; same-uid processes must not trace or read us.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return step_error("confine_config_reader", "", errno, "PR_SET_DUMPABLE");
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    return step_error("confine_config_reader", "", errno, "PR_SET_PDEATHSIG");
  if (auto nnp = set_no_new_privs(); !nnp.ok()) return child_failure(nnp);
#if defined(LITHOS_CONFINE_NO_AS_LIMIT)
  return {};
#else
  return install_filter();
#endif
}

namespace {

// The shared page: a length and the bytes of the last file name. The
// length is written last, so a reader killed mid-copy leaves the previous
// name or a bounded prefix, never an unbounded one.
struct ProgressPage {
  std::atomic<std::uint32_t> length;
  char text[4096 - sizeof(std::atomic<std::uint32_t>)];
};
static_assert(sizeof(ProgressPage) == 4096);

ProgressPage* g_progress = nullptr;

void record_file(std::string_view display) noexcept {
  if (g_progress == nullptr) return;
  const std::size_t n = std::min(display.size(), sizeof g_progress->text);
  g_progress->length.store(0, std::memory_order_relaxed);
  std::memcpy(g_progress->text, display.data(), n);
  g_progress->length.store(static_cast<std::uint32_t>(n), std::memory_order_release);
}

}  // namespace

Result<ReaderProgress> ReaderProgress::create() {
  void* page = ::mmap(nullptr, sizeof(ProgressPage), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return step_error("config_reader", "", errno, "mmap");
  return ReaderProgress(page);
}

ReaderProgress::ReaderProgress(ReaderProgress&& other) noexcept
    : page_(std::exchange(other.page_, nullptr)) {}

ReaderProgress::~ReaderProgress() {
  if (page_ != nullptr) ::munmap(page_, sizeof(ProgressPage));
}

void ReaderProgress::install() const noexcept {
  g_progress = static_cast<ProgressPage*>(page_);
  if (g_progress != nullptr) policy::yaml::set_read_observer(record_file);
}

std::string ReaderProgress::last_file() const {
  if (page_ == nullptr) return {};
  const auto* page = static_cast<const ProgressPage*>(page_);
  const std::size_t n =
      std::min<std::size_t>(page->length.load(std::memory_order_acquire), sizeof page->text);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(page->text[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return out;
}

std::string ReaderProgress::while_reading() const {
  std::string file = last_file();
  return file.empty() ? std::string() : " while reading " + file;
}

Result<std::string> run_confined_reader(
    const std::function<lithos::Result<std::string, std::string>()>& read,
    std::chrono::milliseconds timeout, const ConfineOptions& options) {
  const char* step = "config_reader";
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return step_error(step, "", errno, "pipe");
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  auto progress = ReaderProgress::create();
  if (!progress) return lithos::fail(progress.error());
  int pidfd_raw = -1;
  pid_t pid = clone_with_pidfd(0, &pidfd_raw);
  if (pid < 0) return step_error(step, "", errno, "clone");
  if (pid == 0) {
    read_end.reset();
    progress->install();
    ConfineOptions confine = options;
    confine.keep_fds.push_back(write_end.get());
    std::string out;
    if (auto confined = confine_config_reader(confine); !confined) {
      out = "E" + confined.error().what();
    } else {
      auto result = read();
      out = result ? "O" + *result : "E" + result.error();
    }
    write_all(write_end.get(), out);
    ::_exit(0);
  }
  UniqueFd pidfd(pidfd_raw);
  write_end.reset();
  auto drained = read_until_closed(read_end.get(), std::chrono::steady_clock::now() + timeout,
                                   std::string::npos);
  const bool timed_out = drained.timed_out;
  std::string& wire = drained.bytes;
  if (timed_out) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return step_error(step, "", 0,
                      "did not finish within " + std::to_string(timeout.count() / 1000) +
                          " s and was killed" + progress->while_reading());
  if (info.si_code != CLD_EXITED || info.si_status != 0) {
    std::string how = info.si_code == CLD_EXITED
                          ? "exited with code " + std::to_string(info.si_status)
                          : "was killed by signal " + std::to_string(info.si_status);
    return step_error(step, "", 0, how + progress->while_reading());
  }
  if (wire.empty()) return step_error(step, "", 0, "sent nothing" + progress->while_reading());
  if (wire[0] == 'E') return step_error(step, "", 0, wire.substr(1));
  if (wire[0] != 'O') return step_error(step, "", 0, "sent a malformed answer");
  return wire.substr(1);
}

}  // namespace lithos::runtime
