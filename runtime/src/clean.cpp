#include "lithos/runtime/clean.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "lithos/policy/check.hpp"
#include "lithos/policy/tree.hpp"
#include "lithos/runtime/safe_files.hpp"

namespace lithos::runtime::clean {

using policy::clean::Candidate;
using policy::clean::FileText;

namespace {

constexpr std::size_t kMaxTextFile = 64u << 20;
// Below image-dir: no symlink, no `..` out, no other mount.
constexpr std::uint64_t kStayInside =
    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV;

int open_beneath(int dir_fd, const std::string& name, int flags, std::uint64_t resolve) {
  return open_at2(dir_fd, name.c_str(), flags, resolve);
}

std::optional<std::uint64_t> mount_id(int fd, const char* name, int flags) {
  struct statx stx {};
  if (::statx(fd, name, flags | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) return std::nullopt;
  if (!(stx.stx_mask & STATX_MNT_ID)) return std::nullopt;
  return stx.stx_mnt_id;
}
// Deeper than any real image; a bound keeps descriptors and stack finite.
constexpr int kMaxDepth = 256;

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string joined(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// The names in an open directory, "." and ".." left out.
Result<std::vector<std::string>> names_in(int dir_fd, const std::string& display) {
  int readable = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (readable < 0) return step_error("list_directory", display, errno);
  DIR* dir = ::fdopendir(readable);
  if (!dir) {
    int err = errno;
    ::close(readable);
    return step_error("list_directory", display, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return step_error("list_directory", display, err);
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::int64_t> ns_of(const statx_timestamp& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

Result<void> collect(int dir_fd, const std::string& display, const std::string& prefix,
                     std::uint32_t depth_left, std::vector<Candidate>& out) {
  auto names = names_in(dir_fd, display);
  if (!names) return Failure<StepError>{names.error()};
  const auto own_mount = mount_id(dir_fd, "", AT_EMPTY_PATH);
  for (const auto& name : *names) {
    if (policy::hidden_name(name)) continue;
    struct statx stx {};
    if (::statx(dir_fd, name.c_str(), AT_SYMLINK_NOFOLLOW,
                STATX_TYPE | STATX_INO | STATX_MTIME | STATX_BTIME, &stx) != 0)
      continue;                            // vanished since the listing
    if (!S_ISDIR(stx.stx_mode)) continue;  // symlinks and files are never images
    std::string image = prefix.empty() ? name : prefix + "/" + name;
    if (depth_left == 1) {
      Candidate candidate;
      candidate.image = image;
      candidate.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
      candidate.ino = stx.stx_ino;
      if (stx.stx_mask & STATX_MTIME) candidate.mtime_ns = ns_of(stx.stx_mtime);
      if (stx.stx_mask & STATX_BTIME) candidate.birth_ns = ns_of(stx.stx_btime);
      auto its_mount = mount_id(dir_fd, name.c_str(), 0);
      candidate.mount_point = !own_mount || !its_mount || *its_mount != *own_mount;
      out.push_back(std::move(candidate));
      continue;
    }
    UniqueFd child(open_beneath(dir_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, kStayInside));
    if (!child) continue;  // a mount point, replaced by a symlink or gone since the statx
    auto sub = collect(child.get(), joined(display, name), image, depth_left - 1, out);
    if (!sub) return sub;
  }
  return {};
}

// Empties the open directory `dir_fd` (file system `dev`), depth first.
Result<void> remove_contents(int dir_fd, const std::string& display, dev_t dev, int depth) {
  if (depth > kMaxDepth)
    return step_error("remove_image", display, ELOOP, "deeper than " + std::to_string(kMaxDepth));
  auto names = names_in(dir_fd, display);
  if (!names) return Failure<StepError>{names.error()};
  std::optional<StepError> first;
  auto note = [&](StepError e) {
    if (!first) first = std::move(e);
  };
  for (const auto& name : *names) {
    std::string path = joined(display, name);
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) note(StepError{"remove_image", path, errno, "stat", {}});
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) {
        note(StepError{"remove_image", path, EXDEV, "a mount point: left in place", {}});
        continue;
      }
      UniqueFd child(open_beneath(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kStayInside));
      if (!child) {
        note(errno == EXDEV
                 ? StepError{"remove_image", path, EXDEV, "a mount point: left in place", {}}
                 : StepError{"remove_image", path, errno, "open", {}});
        continue;
      }
      if (auto sub = remove_contents(child.get(), path, dev, depth + 1); !sub) {
        note(sub.error());
        continue;
      }
      if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        note(StepError{"remove_image", path, errno, "rmdir", {}});
    } else if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      note(StepError{"remove_image", path, errno, "unlink", {}});
    }
  }
  if (first) return Failure<StepError>{std::move(*first)};
  return {};
}

}  // namespace

FileText read_text(const std::string& path) {
  FileText out;
  auto fail = [&](const StepError& e) {
    out.status = e.err == ENOENT ? FileText::Status::Missing : FileText::Status::Error;
    out.error = e.what();
    return out;
  };
  auto dir = open_directory(policy::parent_dir(path));
  if (!dir) return fail(dir.error());
  // The type first: a device is never opened (its driver's open could act).
  struct stat st {};
  if (::fstatat(dir->get(), base_name(path).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(StepError{"read_file", path, errno, "", {}});
  if (!S_ISREG(st.st_mode)) return fail(StepError{"read_file", path, 0, "not a regular file", {}});
  auto text = read_file_at(dir->get(), policy::parent_dir(path), base_name(path), kMaxTextFile);
  if (!text) return fail(text.error());
  out.text = std::move(*text);
  return out;
}

Result<std::vector<Candidate>> list_images(const std::string& image_dir, std::uint32_t levels) {
  auto dir = open_directory(image_dir);
  if (!dir) return Failure<StepError>{dir.error()};
  std::vector<Candidate> out;
  if (levels == 0) return out;
  auto listed = collect(dir->get(), image_dir, "", levels, out);
  if (!listed) return Failure<StepError>{listed.error()};
  std::sort(out.begin(), out.end(),
            [](const Candidate& a, const Candidate& b) { return a.image < b.image; });
  return out;
}

policy::clean::NamedTargets named_targets(const policy::clean::ImageDir& dir) {
  policy::clean::NamedTargets out;
  auto top = open_directory(dir.path);
  if (!top) return out;
  for (const auto& [image, reason] : dir.used) {
    // Symlinks followed, but only within image-dir.
    UniqueFd target(open_beneath(top->get(), image, O_PATH | O_DIRECTORY, RESOLVE_BENEATH));
    if (!target) continue;
    struct stat st {};
    if (::fstat(target.get(), &st) == 0)
      out.emplace(std::pair<std::uint64_t, std::uint64_t>{st.st_dev, st.st_ino},
                  reason + ", through " + image);
  }
  return out;
}

policy::clean::RunningRoots running_roots(const std::string& proc) {
  policy::clean::RunningRoots roots;
  UniqueFd proc_fd(::open(proc.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!proc_fd) return roots;
  auto names = names_in(proc_fd.get(), proc);
  if (!names) return roots;
  for (const auto& name : *names) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    struct stat st {};
    // Follows the magic link: the process's root directory itself.
    if (::fstatat(proc_fd.get(), (name + "/root").c_str(), &st, 0) != 0) continue;
    roots.emplace(std::pair<std::uint64_t, std::uint64_t>{st.st_dev, st.st_ino}, std::stoi(name));
  }
  return roots;
}

Result<void> remove_image(const std::string& image_dir, const Candidate& candidate) {
  auto parts = policy::image_components(candidate.image);
  if (!parts) return step_error("remove_image", joined(image_dir, candidate.image), EINVAL);
  auto top = open_directory(image_dir);
  if (!top) return Failure<StepError>{top.error()};
  UniqueFd parent = std::move(*top);
  std::string display = image_dir;
  for (std::size_t i = 0; i + 1 < parts->size(); ++i) {
    display = joined(display, (*parts)[i]);
    UniqueFd next(
        open_beneath(parent.get(), (*parts)[i], O_PATH | O_DIRECTORY | O_NOFOLLOW, kStayInside));
    if (!next) return step_error("remove_image", display, errno, "open");
    parent = std::move(next);
  }
  const std::string& last = parts->back();
  std::string path = joined(display, last);
  UniqueFd image(
      open_beneath(parent.get(), last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kStayInside));
  if (!image)
    return step_error("remove_image", path, errno,
                      errno == EXDEV ? "a mount point: left in place" : "open");
  struct stat st {};
  if (::fstat(image.get(), &st) != 0) return step_error("remove_image", path, errno, "stat");
  if (st.st_dev != candidate.dev || st.st_ino != candidate.ino)
    return step_error("remove_image", path, 0, "replaced since it was listed: left in place");
  if (auto emptied = remove_contents(image.get(), path, st.st_dev, 0); !emptied) return emptied;
  if (::unlinkat(parent.get(), last.c_str(), AT_REMOVEDIR) != 0)
    return step_error("remove_image", path, errno, "rmdir");
  return {};
}

bool regular_file(const std::string& path) {
  struct stat st {};
  return ::fstatat(AT_FDCWD, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

Result<void> remove_file(const std::string& path) {
  auto dir = open_directory(policy::parent_dir(path));
  if (!dir) return Failure<StepError>{dir.error()};
  std::string name = base_name(path);
  struct stat st {};
  if (::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return step_error("remove_file", path, errno, "stat");
  if (!S_ISREG(st.st_mode)) return step_error("remove_file", path, 0, "not a regular file");
  if (::unlinkat(dir->get(), name.c_str(), 0) != 0)
    return step_error("remove_file", path, errno, "unlink");
  return {};
}

}  // namespace lithos::runtime::clean
