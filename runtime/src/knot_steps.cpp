// The knot's setup steps (docs/knot.md, "Steps"): mounts, state dir, cgroups,
// limits, secrets, pivot_root. All mounts use the new mount API: a detached
// tree (open_tree / fsmount) is configured, then attached with move_mount to
// a target opened with openat2 inside the container root, so no path is
// walked twice and no symlink planted by a container is ever followed.
// One file over 600 lines on purpose: the steps share the mount helpers and
// the KnotState they fill, and the file reads in table order.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "lithos/crypt/secrets.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/safe_files.hpp"
#include "lithos/runtime/spawn.hpp"

namespace lithos::runtime {

using policy::InstancePlan;
using policy::MountPlan;

namespace {

int sys_openat2(int dir_fd, const char* path, int flags, std::uint64_t resolve) {
  return open_at2(dir_fd, path, flags, resolve, 0644);
}

constexpr std::uint64_t kNoLinks = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// Opens a host path given by the operator (image, devfs, state dir).
Result<UniqueFd> open_host(const std::string& path, int flags, const char* step) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return step_error(step, path, errno);
  return UniqueFd(fd);
}

// Components of a path, empty ones and "." dropped; ".." is refused.
Result<std::vector<std::string>> components(const std::string& path, const char* step) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") return step_error(step, path, 0, "path contains ..");
    if (!part.empty() && part != ".") parts.push_back(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

struct CreateSpec {
  bool create = false;          // mkdir missing components
  bool chown_chmod = false;     // apply owner and mode to the last one
  bool only_if_created = true;  // ... only when it was created now
  std::uint32_t mode = 0755;
  std::uint32_t uid = 0, gid = 0;
};

// Walks `rel` below `base` one component at a time, never following a
// symlink (RESOLVE_NO_SYMLINKS on every step, RESOLVE_BENEATH so `..` and
// absolute links cannot leave `base`), creating directories when asked.
Result<UniqueFd> walk_dir(int base, const std::string& base_name, const std::string& rel,
                          const CreateSpec& spec, const char* step) {
  auto parts = components(rel, step);
  if (!parts) return Failure<StepError>{parts.error()};
  UniqueFd current(::fcntl(base, F_DUPFD_CLOEXEC, 3));
  if (!current) return step_error(step, base_name, errno, "dup");
  std::string shown = base_name;
  bool created = false;
  for (std::size_t i = 0; i < parts->size(); ++i) {
    const auto& part = (*parts)[i];
    shown += "/" + part;
    bool last = i + 1 == parts->size();
    int fd = sys_openat2(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY,
                         kNoLinks | RESOLVE_BENEATH);
    if (fd < 0 && errno == ENOENT && spec.create) {
      mode_t mode = last && spec.chown_chmod ? (spec.mode & 07777) : 0755;
      if (::mkdirat(current.get(), part.c_str(), mode) != 0 && errno != EEXIST)
        return step_error(step, shown, errno, "mkdir");
      created = last;
      fd = sys_openat2(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY,
                       kNoLinks | RESOLVE_BENEATH);
    }
    if (fd < 0) {
      int err = errno;
      return step_error(step, shown, err,
                        err == ELOOP ? "a symlink in a volume path is refused" : "open");
    }
    current.reset(fd);
  }
  if (spec.chown_chmod && !parts->empty() && !created && !spec.only_if_created) {
    // Adopting a directory that was there already: only if it is ours or
    // already the planned owner's, never one another user put there.
    struct stat st {};
    if (::fstat(current.get(), &st) != 0) return step_error(step, shown, errno, "fstat");
    if (st.st_uid != 0 && st.st_uid != spec.uid)
      return step_error(step, shown, 0,
                        "exists and is owned by uid " + std::to_string(st.st_uid) +
                            ", not root or the volume's owner");
  }
  if (spec.chown_chmod && !parts->empty() && (created || !spec.only_if_created)) {
    if (::fchown(current.get(), spec.uid, spec.gid) != 0)
      return step_error(step, shown, errno, "chown");
    if (::fchmod(current.get(), spec.mode & 07777) != 0)
      return step_error(step, shown, errno, "chmod");
  }
  return current;
}

// A detached recursive copy of the tree at `source` with `attrs` set on every
// mount of it, attached onto `target`.
Result<void> bind_onto(int source, int target, std::uint64_t attrs, bool recursive,
                       const std::string& what, const char* step) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH;
  if (recursive) flags |= AT_RECURSIVE;
  UniqueFd tree(::open_tree(source, "", flags));
  if (!tree) return step_error(step, what, errno, "open_tree");
  if (attrs != 0) {
    mount_attr attr{};
    attr.attr_set = attrs;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                        sizeof attr) != 0)
      return step_error(step, what, errno, "mount_setattr");
  }
  if (::move_mount(tree.get(), "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) !=
      0)
    return step_error(step, what, errno, "move_mount");
  return {};
}

// A fresh filesystem instance (proc, sysfs, tmpfs, devpts) onto `target`.
// `options` is "key=value,flag,..." as in mount(8).
Result<void> mount_fs(const char* type, const std::string& options, std::uint64_t attrs, int target,
                      const std::string& what, const char* step) {
  UniqueFd fs(::fsopen(type, FSOPEN_CLOEXEC));
  if (!fs) return step_error(step, what, errno, std::string("fsopen ") + type);
  std::size_t start = 0;
  while (start < options.size()) {
    auto comma = options.find(',', start);
    std::string opt =
        options.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? options.size() : comma + 1;
    if (opt.empty()) continue;
    auto eq = opt.find('=');
    int r = eq == std::string::npos
                ? ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0)
                : ::fsconfig(fs.get(), FSCONFIG_SET_STRING, opt.substr(0, eq).c_str(),
                             opt.c_str() + eq + 1, 0);
    if (r != 0) return step_error(step, what, errno, "option " + opt);
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return step_error(step, what, errno, std::string("create ") + type);
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, static_cast<unsigned>(attrs)));
  if (!mnt) return step_error(step, what, errno, "fsmount");
  if (::move_mount(mnt.get(), "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) !=
      0)
    return step_error(step, what, errno, "move_mount");
  return {};
}

// ---- the steps ----------------------------------------------------------------

Result<void> step_private_mounts(const InstancePlan&, KnotState&) {
  if (::unshare(CLONE_NEWNS) != 0) return step_error("unshare_mount_ns", "", errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return step_error("unshare_mount_ns", "/", errno, "MS_REC|MS_PRIVATE");
  return {};
}

Result<void> step_bind_image(const InstancePlan& plan, KnotState& state) {
  auto image = open_host(plan.image_root, O_PATH | O_DIRECTORY, "bind_image_ro");
  if (!image) return Failure<StepError>{image.error()};
  auto target = open_host(plan.mount_root, O_PATH | O_DIRECTORY, "bind_image_ro");
  if (!target) return Failure<StepError>{target.error()};
  auto bound = bind_onto(image->get(), target->get(),
                         MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true,
                         plan.image_root + " -> " + plan.mount_root, "bind_image_ro");
  if (!bound) return bound;
  auto root = open_host(plan.mount_root, O_PATH | O_DIRECTORY, "bind_image_ro");
  if (!root) return Failure<StepError>{root.error()};
  state.root = std::move(*root);
  return {};
}

// A file the knot generates in the state dir: written to a new inode and
// renamed over the name (replace_file_at), so a file planted there by
// someone else (foreign-owned, or a hard link to a file elsewhere) is
// replaced, never written through.
Result<void> write_state_file(const InstancePlan& plan, KnotState& state, const char* name,
                              std::string_view content, mode_t mode, const char* step) {
  auto written = replace_file_at(state.state_dir.get(), plan.state_dir, name, content, mode);
  if (!written) {
    StepError error = std::move(written.error());
    error.step = step;
    return Failure<StepError>{std::move(error)};
  }
  return {};
}

Result<std::string> read_source(int fd, const std::string& shown, const char* step) {
  auto text = read_all(fd);
  if (!text) return step_error(step, shown, text.error(), "read");
  return std::move(*text);
}

// The first IPv4 address of HOST as the host's name service sees it
// (getaddrinfo with AF_INET, as the original), asked of glibc's `getent
// ahostsv4`: the knot is linked statically, and a static glibc cannot load
// the host's NSS modules safely, so name lookups run in a host program.
std::optional<std::string> resolve_ipv4(const char* host) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  sigset_t none;
  sigemptyset(&none);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  char getent[] = "getent", database[] = "ahostsv4";
  std::string name(host);
  char* argv[] = {getent, database, name.data(), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = -1;
  int spawned = ::posix_spawn(&pid, "/usr/bin/getent", &actions, &attr, argv, envp);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  write_end.reset();
  if (spawned != 0) return std::nullopt;
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n > 0 && out.size() < 65536) out.append(buf, static_cast<std::size_t>(n));
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  // "ADDRESS  STREAM NAME\n...": the first word of the first line.
  auto end = out.find_first_of(" \t\n");
  in_addr addr{};
  std::string first = out.substr(0, end);
  if (::inet_pton(AF_INET, first.c_str(), &addr) != 1) return std::nullopt;
  return first;
}

Result<void> step_state_dir(const InstancePlan& plan, KnotState& state) {
  const char* step = "prepare_state_dir";
  struct stat st {};
  bool existed = ::lstat(plan.state_dir.c_str(), &st) == 0;
  if (!existed) {
    // mkdir -p: the parents are lithos' own directories (runtime-dir/state-dir).
    std::string prefix;
    auto parts = components(plan.state_dir, step);
    if (!parts) return Failure<StepError>{parts.error()};
    if (!plan.state_dir.empty() && plan.state_dir.front() == '/')
      prefix = "";
    else
      prefix = ".";
    for (std::size_t i = 0; i < parts->size(); ++i) {
      prefix += "/" + (*parts)[i];
      // The instance's own directory stays private until it is complete.
      mode_t mode = i + 1 == parts->size() ? 0700 : 0755;
      if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST)
        return step_error(step, prefix, errno, "mkdir");
    }
  }
  auto dir = open_host(plan.state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, step);
  if (!dir) return Failure<StepError>{dir.error()};
  if (::fstat(dir->get(), &st) != 0) return step_error(step, plan.state_dir, errno, "fstat");
  if (st.st_uid != 0)
    return step_error(step, plan.state_dir, 0,
                      "owned by uid " + std::to_string(st.st_uid) + ", not root");
  // Closed to others while the knot writes into it; seal_state_dir sets the
  // final mode last.
  if (::fchmod(dir->get(), 0700) != 0) return step_error(step, plan.state_dir, errno, "chmod 0700");
  state.state_dir = std::move(*dir);

  if (plan.resolv_conf_source) {
    auto src = open_host(*plan.resolv_conf_source, O_RDONLY, step);
    if (!src) return Failure<StepError>{src.error()};
    struct stat sst {};
    if (::fstat(src->get(), &sst) != 0) return step_error(step, *plan.resolv_conf_source, errno);
    auto text = read_source(src->get(), *plan.resolv_conf_source, step);
    if (!text) return Failure<StepError>{text.error()};
    auto written = write_state_file(plan, state, "resolv.conf", *text, sst.st_mode & 07777, step);
    if (!written) return written;
  }
  if (plan.write_hosts) {
    std::string copied;
    if (plan.hosts_copy_source) {
      auto src = open_host(*plan.hosts_copy_source, O_RDONLY, step);
      if (!src) return Failure<StepError>{src.error()};
      auto text = read_source(src->get(), *plan.hosts_copy_source, step);
      if (!text) return Failure<StepError>{text.error()};
      copied = std::move(*text);
    }
    char host[256] = {};
    std::optional<std::string> ip;
    if (plan.hosts_public_hostname) {
      if (::gethostname(host, sizeof host - 1) != 0)
        return step_error(step, "", errno, "gethostname");
      ip = resolve_ipv4(host);
      if (!ip)
        state.warnings.push_back(StepError{step, host, 0, "cannot resolve the host name", {}});
    }
    auto content = hosts_file_content(plan, copied, host, ip);
    auto written = write_state_file(plan, state, "hosts", content, 0644, step);
    if (!written) return written;
  }
  return {};
}

Result<void> step_devfs(const InstancePlan& plan, KnotState& state) {
  const char* step = "mount_devfs";
  auto src = open_host(plan.devfs_dir, O_PATH | O_DIRECTORY, step);
  if (!src) return Failure<StepError>{src.error()};
  auto target = open_in_root(state.root.get(), "/dev", O_PATH | O_DIRECTORY, step);
  if (!target) return Failure<StepError>{target.error()};
  auto bound = bind_onto(src->get(), target->get(), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, true,
                         plan.devfs_dir + " -> /dev", step);
  if (!bound) return bound;
  auto pts = open_in_root(state.root.get(), "/dev/pts", O_PATH | O_DIRECTORY, step);
  if (!pts) return Failure<StepError>{pts.error()};
  return mount_fs("devpts", "newinstance,ptmxmode=0666,mode=0620",
                  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOATIME, pts->get(),
                  "/dev/pts", step);
}

// Hidden from containers as OCI runtimes hide them: kernel memory, keys,
// timers and scheduler internals, firmware tables (root-only files that a
// uid-0 container without capabilities could otherwise read), and triggers.
// A file is covered by the null device, a directory by an empty read-only
// tmpfs. Paths this kernel does not have are skipped.
constexpr const char* kMaskedProcPaths[] = {
    "/proc/acpi",          "/proc/kcore",      "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug",   "/proc/scsi",       "/proc/sysrq-trigger",
};
constexpr const char* kMaskedSysPaths[] = {"/sys/firmware"};
constexpr const char* kReadOnlyProcPaths[] = {"/proc/sys", "/proc/irq", "/proc/bus"};

template <std::size_t N>
Result<void> mask_paths(KnotState& state, const char* const (&paths)[N], const char* step) {
  for (const char* path : paths) {
    int fd = sys_openat2(state.root.get(), path, O_PATH | O_NOFOLLOW, RESOLVE_IN_ROOT | kNoLinks);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return step_error(step, path, errno, "open for masking");
    }
    UniqueFd node(fd);
    struct stat st {};
    if (::fstat(node.get(), &st) != 0) return step_error(step, path, errno, "fstat");
    auto masked =
        S_ISDIR(st.st_mode)
            ? mount_fs("tmpfs", "size=4k,nr_inodes=1,mode=0555",
                       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                       node.get(), std::string("mask ") + path, step)
            : bind_onto(state.null_device.get(), node.get(),
                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false,
                        std::string("mask ") + path, step);
    if (!masked) return masked;
  }
  return {};
}

Result<void> step_sysfs(const InstancePlan&, KnotState& state) {
  auto target = open_in_root(state.root.get(), "/sys", O_PATH | O_DIRECTORY, "mount_sysfs");
  if (!target) return Failure<StepError>{target.error()};
  auto mounted = mount_fs("sysfs", "",
                          MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC |
                              MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME,
                          target->get(), "/sys", "mount_sysfs");
  if (!mounted) return mounted;
  return mask_paths(state, kMaskedSysPaths, "mount_sysfs");
}

Result<void> step_proc(const InstancePlan&, KnotState& state) {
  auto target = open_in_root(state.root.get(), "/proc", O_PATH | O_DIRECTORY, "mount_proc");
  if (!target) return Failure<StepError>{target.error()};
  // hidepid=ptraceable: the container cannot even see the knot (PID 1, full
  // capabilities, descriptors of host directories) in its /proc.
  auto mounted =
      mount_fs("proc", "hidepid=ptraceable",
               MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME,
               target->get(), "/proc", "mount_proc");
  if (!mounted) return mounted;
  // Kernel knobs stay read-only: uid 0 without capabilities still passes the
  // owner check of most /proc/sys files (new in this rebuild, docs/knot.md).
  for (const char* path : kReadOnlyProcPaths) {
    int fd = sys_openat2(state.root.get(), path, O_PATH, RESOLVE_IN_ROOT | kNoLinks);
    if (fd < 0) continue;  // not present in this kernel
    UniqueFd node(fd);
    auto bound =
        bind_onto(node.get(), node.get(),
                  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                  true, path, "mount_proc");
    if (!bound) return bound;
  }
  return mask_paths(state, kMaskedProcPaths, "mount_proc");
}

// A host file a volume binds: the last component of `path`, a regular file
// or a UNIX socket, its directories walked without symlinks.
Result<UniqueFd> open_file_source(int base, const std::string& base_name, const std::string& path,
                                  const char* step) {
  auto slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  auto dir = walk_dir(base, base_name, parent, CreateSpec{}, step);
  if (!dir) return dir;
  int fd = sys_openat2(dir->get(), name.c_str(), O_PATH | O_NOFOLLOW, kNoLinks | RESOLVE_BENEATH);
  if (fd < 0) return step_error(step, path, errno, "open");
  UniqueFd file(fd);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return step_error(step, path, errno, "fstat");
  if (!S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode))
    return step_error(step, path, 0,
                      S_ISLNK(st.st_mode) ? "a symlink in a volume path is refused"
                                          : "a volume binds a directory, a regular file or a "
                                            "UNIX socket");
  return file;
}

// The mount point: it must exist in the image (or a volume mounted before),
// reached without symlinks, a directory for a directory and a file for a
// file or socket (a bind mount joins like to like).
Result<UniqueFd> open_mount_point(KnotState& state, const std::string& target, bool directory,
                                  const char* step) {
  if (directory) return open_in_root(state.root.get(), target, O_PATH | O_DIRECTORY, step);
  auto point = open_in_root(state.root.get(), target, O_PATH, step);
  if (!point) return point;
  struct stat st {};
  if (::fstat(point->get(), &st) != 0) return step_error(step, target, errno, "fstat");
  if (S_ISDIR(st.st_mode))
    return step_error(step, target, EISDIR, "a file or socket volume mounts on a file");
  return point;
}

Result<void> mount_volume(const InstancePlan& plan, const MountPlan& m, KnotState& state) {
  const char* step = "mount_volumes";
  const std::string what = m.source + " -> " + m.target;
  auto in_volume = [&](Result<UniqueFd>& r) {
    return forward_error(std::move(r), "volume " + m.volume);
  };
  switch (m.kind) {
    case MountPlan::Kind::Tmpfs: {
      auto target = open_mount_point(state, m.target, true, step);
      if (!target) return in_volume(target);
      return mount_fs("tmpfs", m.data, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, target->get(), what,
                      step);
    }
    case MountPlan::Kind::BindReadOnly:
    case MountPlan::Kind::BindReadWrite: {
      CreateSpec spec;
      spec.create = m.create;
      spec.chown_chmod = m.create;
      spec.mode = m.mode;
      spec.uid = m.owner_uid;
      spec.gid = m.owner_gid;
      Result<UniqueFd> source = UniqueFd();
      bool directory = true;
      if (!m.confine_to.empty()) {
        // !Statedir: below the state dir, always created, owner and mode
        // applied each time -- except on the state dir itself, which keeps 01777.
        std::string rel = m.source.substr(std::min(m.source.size(), m.confine_to.size()));
        if (m.source.compare(0, m.confine_to.size(), m.confine_to) != 0)
          return step_error(step, m.source, 0, "outside " + m.confine_to);
        spec.create = true;
        spec.chown_chmod = true;
        spec.only_if_created = false;
        source = walk_dir(state.state_dir.get(), plan.state_dir, rel, spec, step);
      } else {
        // Host paths: no symlink anywhere, the whole path is walked
        // component by component (a container may have planted one).
        bool absolute = !m.source.empty() && m.source.front() == '/';
        UniqueFd base(::open(absolute ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!base) return step_error(step, absolute ? "/" : ".", errno);
        source = walk_dir(base.get(), absolute ? "" : ".", m.source, spec, step);
        // Not a directory at the last component: a single file or a socket.
        if (!source && source.error().err == ENOTDIR) {
          directory = false;
          source = open_file_source(base.get(), absolute ? "" : ".", m.source, step);
        }
      }
      if (!source) return in_volume(source);
      auto target = open_mount_point(state, m.target, directory, step);
      if (!target) return in_volume(target);
      std::uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
      if (m.kind == MountPlan::Kind::BindReadOnly) attrs |= MOUNT_ATTR_RDONLY;
      auto bound = bind_onto(source->get(), target->get(), attrs, true, what, step);
      if (!bound) return forward_error(std::move(bound), "volume " + m.volume);
      return {};
    }
  }
  return {};
}

Result<void> step_volumes(const InstancePlan& plan, KnotState& state) {
  for (const auto& m : plan.mounts) {
    auto r = mount_volume(plan, m, state);
    if (!r) return r;
  }
  return {};
}

// /etc/resolv.conf and /etc/hosts, bound from the state dir.
Result<void> bind_state_file(const InstancePlan&, KnotState& state, const char* name, bool required,
                             const char* step) {
  std::string target_path = std::string("/etc/") + name;
  auto etc = open_in_root(state.root.get(), "/etc", O_PATH | O_DIRECTORY, step);
  Result<UniqueFd> target = UniqueFd();
  struct stat st {};
  bool valid = false;
  if (etc) {
    target = open_in_root(state.root.get(), target_path, O_PATH, step);
    valid = target && ::fstat(target->get(), &st) == 0 && S_ISREG(st.st_mode);
  }
  if (!valid) {
    if (required) return step_error(step, target_path, 0, "is not a valid mount point");
    return {};
  }
  UniqueFd source(::openat(state.state_dir.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!source) return step_error(step, std::string("<state>/") + name, errno);
  // Only the file this knot just wrote: root's, regular, not linked elsewhere.
  struct stat sst {};
  if (::fstat(source.get(), &sst) != 0)
    return step_error(step, std::string("<state>/") + name, errno, "fstat");
  if (!S_ISREG(sst.st_mode) || sst.st_uid != 0 || sst.st_nlink != 1)
    return step_error(step, std::string("<state>/") + name, 0,
                      "not a root-owned regular file with one link");
  return bind_onto(source.get(), target->get(),
                   MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                   false, target_path, step);
}

Result<void> step_resolv_conf(const InstancePlan& plan, KnotState& state) {
  if (!plan.mount_resolv_conf) return {};
  return bind_state_file(plan, state, "resolv.conf", plan.require_resolv_conf, "mount_resolv_conf");
}

Result<void> step_hosts(const InstancePlan& plan, KnotState& state) {
  if (!plan.mount_hosts) return {};
  return bind_state_file(plan, state, "hosts", plan.require_hosts, "mount_hosts");
}

// The original's mode of the state dir (01777), set once everything the knot
// puts there exists (docs/knot.md, State directory).
Result<void> step_seal_state_dir(const InstancePlan& plan, KnotState& state) {
  if (::fchmod(state.state_dir.get(), 01777) != 0)
    return step_error("seal_state_dir", plan.state_dir, errno, "chmod 01777");
  return {};
}

// The host's /dev/null, opened before anything else is mounted: the source
// of the masks over /proc files and the stdin of non-interactive containers.
Result<void> step_null_device(const InstancePlan&, KnotState& state) {
  const char* step = "open_null_device";
  UniqueFd fd(::open("/dev/null", O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
  if (!fd) return step_error(step, "/dev/null", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return step_error(step, "/dev/null", errno, "fstat");
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    return step_error(step, "/dev/null", 0, "not the null device (char 1:3)");
  state.null_device = std::move(fd);
  return {};
}

Result<void> step_cgroup(const InstancePlan& plan, KnotState& state) {
  if (!plan.cgroup) return {};
  auto host = probe_cgroups();
  if (!host) return Failure<StepError>{host.error()};
  auto placed = place_cgroup(*host, *plan.cgroup);
  if (!placed) return Failure<StepError>{placed.error()};
  auto entered = enter_cgroup(*placed, *plan.cgroup, 0);
  if (!entered) return Failure<StepError>{entered.error()};
  for (auto& w : *entered) state.warnings.push_back(std::move(w));
  return {};
}

Result<void> step_rlimits(const InstancePlan& plan, KnotState&) {
  rlimit limit{plan.fileno_limit, plan.fileno_limit};
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
    return step_error("set_rlimits", "RLIMIT_NOFILE", errno, std::to_string(plan.fileno_limit));
  return {};
}

Result<void> step_secrets(const InstancePlan& plan, KnotState& state) {
  if (!plan.secrets) return {};
  const char* step = "decode_secrets";
  const auto& s = *plan.secrets;
  if (s.private_key_path.empty())
    return step_error(step, "", 0,
                      "Error decoding private keys: No secrets key file defined to decode secrets");
  auto keys = crypt::load_secrets_private_key(s.private_key_path);
  if (!keys) return step_error(step, s.private_key_path, 0, keys.error());
  // secret-environ-file was read by the plan builder, unprivileged
  // (docs/knot.md, Secrets): its values are in the plan, still encrypted.
  auto decoded = crypt::decode_secrets(*keys, s.allowed_namespaces, {}, s.values);
  if (!decoded) return step_error(step, "", 0, decoded.error());
  for (auto& d : *decoded) state.secrets.emplace_back(d.name, std::move(d.value));
  return {};
}

// A label for an LSM the host does not run is refused here, before anything
// is mounted, with a message that says so (the kernel would only say EINVAL
// at the last moment).
Result<void> step_lsm(const InstancePlan& plan, KnotState&) {
  const char* step = "check_lsm";
  if (!plan.apparmor_profile.empty()) {
    const char* flag = "/sys/module/apparmor/parameters/enabled";
    UniqueFd fd(::open(flag, O_RDONLY | O_CLOEXEC));
    char enabled = 0;
    if (!fd || ::read(fd.get(), &enabled, 1) != 1 || enabled != 'Y')
      return step_error(step, flag, 0,
                        "AppArmor is not enabled on this host: apparmor-profile \"" +
                            plan.apparmor_profile + "\" cannot apply");
  }
  if (!plan.selinux_label.empty()) {
    struct stat st {};
    if (::stat("/sys/fs/selinux/enforce", &st) != 0)
      return step_error(step, "/sys/fs/selinux", 0,
                        "SELinux is not enabled on this host: selinux-label \"" +
                            plan.selinux_label + "\" cannot apply");
  }
  return {};
}

// The veth pair is made per start (Container::start); here only what can be
// refused before anything runs.
Result<void> step_network(const InstancePlan& plan, KnotState& state) {
  if (!plan.network) return {};
  if (!plan.network->after_setup_command.empty()) {
    // The whole host tree, submounts included (a lazily detached old root
    // would lose them), before pivot_root hides it.
    int fd = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, "/",
                                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (fd < 0)
      return step_error("bridged_network", "/", errno, "open_tree for after-setup-command");
    state.host_root.reset(fd);
  }
  if (::if_nametoindex(plan.network->bridge.c_str()) == 0)
    return step_error("bridged_network", plan.network->bridge, errno, "bridge not found");
  return {};
}

Result<void> step_pivot_root(const InstancePlan& plan, KnotState& state) {
  const char* step = "pivot_root";
  if (::fchdir(state.root.get()) != 0) return step_error(step, plan.mount_root, errno, "chdir");
  // pivot_root(".", "."): the old root ends up stacked on the new one and is
  // detached right away; no directory of the image is needed for it.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return step_error(step, plan.mount_root, errno);
  if (::umount2(".", MNT_DETACH) != 0) return step_error(step, "old root", errno, "umount2");
  if (::chdir("/") != 0) return step_error(step, "/", errno, "chdir");
  state.pivoted = true;
  return {};
}

}  // namespace

Result<UniqueFd> open_in_root(int dir_fd, const std::string& path, int flags, const char* step) {
  int fd = sys_openat2(dir_fd, path.c_str(), flags, RESOLVE_IN_ROOT | kNoLinks);
  if (fd < 0) {
    int err = errno;
    return step_error(step, path, err,
                      err == ELOOP ? "symlinks are not followed inside the container" : "");
  }
  return UniqueFd(fd);
}

Result<UniqueFd> open_regular_in_root(int dir_fd, const std::string& path, int flags,
                                      const char* step) {
  // The type is checked on an O_PATH descriptor first, so that nothing but a
  // regular file is ever opened for I/O; the real open (non-blocking, in
  // case the name was swapped meanwhile) must then find the same inode.
  struct stat before {};
  if (auto probe = open_in_root(dir_fd, path, O_PATH, step); probe) {
    if (::fstat(probe->get(), &before) != 0) return step_error(step, path, errno, "fstat");
    if (!S_ISREG(before.st_mode)) return step_error(step, path, 0, "not a regular file");
  } else if (probe.error().err != ENOENT || (flags & O_CREAT) == 0) {
    return probe;
  }
  auto fd = open_in_root(dir_fd, path, flags | O_NONBLOCK, step);
  if (!fd) return fd;
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return step_error(step, path, errno, "fstat");
  if (!S_ISREG(st.st_mode) ||
      (before.st_ino != 0 && (st.st_ino != before.st_ino || st.st_dev != before.st_dev)))
    return step_error(step, path, 0, "not a regular file");
  if (::fcntl(fd->get(), F_SETFL, flags & (O_APPEND)) != 0)
    return step_error(step, path, errno, "clear O_NONBLOCK");
  return fd;
}

Result<rlimit> knot_process_hygiene() {
  if (int err = close_inherited_on_exec(3); err != 0)
    return step_error("knot_hygiene", "", err, "mark inherited descriptors close-on-exec");
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return step_error("knot_hygiene", "", errno, "prctl(PR_SET_DUMPABLE, 0)");
  rlimit caller{};
  if (::getrlimit(RLIMIT_CORE, &caller) != 0)
    return step_error("knot_hygiene", "RLIMIT_CORE", errno, "getrlimit");
  rlimit none = caller;
  none.rlim_cur = 0;
  if (::setrlimit(RLIMIT_CORE, &none) != 0)
    return step_error("knot_hygiene", "RLIMIT_CORE", errno, "setrlimit 0");
  return caller;
}

std::string hosts_file_content(const InstancePlan& plan, const std::string& copied,
                               const std::string& hostname,
                               const std::optional<std::string>& hostname_ip) {
  std::string out;
  if (plan.hosts_copy_source) out += copied + "\n";
  if (plan.hosts_localhost) out += "127.0.0.1 localhost.localdomain localhost\n";
  if (plan.hosts_public_hostname && hostname_ip) out += *hostname_ip + " " + hostname + "\n";
  auto extra = plan.additional_hosts;
  std::stable_sort(extra.begin(), extra.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [ip, name] : extra) out += ip + " " + name + "\n";
  return out;
}

const std::vector<KnotStep>& knot_steps() {
  static const std::vector<KnotStep> steps = {
      {"check_lsm", step_lsm},
      {"unshare_mount_ns", step_private_mounts},
      // After the unshare: a mount can only be cloned from the caller's own
      // mount namespace.
      {"open_null_device", step_null_device},
      {"bind_image_ro", step_bind_image},
      {"prepare_state_dir", step_state_dir},
      {"mount_devfs", step_devfs},
      {"mount_sysfs", step_sysfs},
      {"mount_proc", step_proc},
      {"mount_volumes", step_volumes},
      {"mount_resolv_conf", step_resolv_conf},
      {"mount_hosts", step_hosts},
      {"seal_state_dir", step_seal_state_dir},
      {"enter_cgroup", step_cgroup},
      {"set_rlimits", step_rlimits},
      {"decode_secrets", step_secrets},
      {"bridged_network", step_network},
      {"pivot_root", step_pivot_root},
  };
  return steps;
}

Result<void> run_knot_steps(const InstancePlan& plan, KnotState& state, const Logger& log) {
  return run_steps(knot_steps(), plan, state, log);
}

Result<void> run_steps(std::span<const KnotStep> steps, const InstancePlan& plan, KnotState& state,
                       const Logger& log) {
  for (const auto& step : steps) {
    log.debug(std::string("step ") + step.name);
    auto r = step.run(plan, state);
    if (!r) {
      // The table names the step a reader looks up in docs/knot.md; a helper's
      // own name (probe_cgroups inside enter_cgroup) stays as detail.
      StepError& error = r.error();
      if (!error.step.empty() && error.step != step.name)
        error.message = error.message.empty() ? error.step : error.step + " " + error.message;
      error.step = step.name;
      return r;
    }
  }
  return {};
}

}  // namespace lithos::runtime
