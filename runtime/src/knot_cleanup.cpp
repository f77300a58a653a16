#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "lithos/runtime/knot.hpp"

namespace lithos::runtime {

namespace {

Result<void> remove_children(int dir_fd, const std::string& shown, int depth) {
  if (depth > 256) return step_error("remove_tree", shown, ELOOP, "too deep");
  int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return step_error("remove_tree", shown, errno, "dup");
  DIR* dir = ::fdopendir(dup);
  if (!dir) {
    ::close(dup);
    return step_error("remove_tree", shown, errno, "opendir");
  }
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    entries.emplace_back(name, S_ISDIR(st.st_mode));
  }
  ::closedir(dir);
  for (const auto& [name, is_dir] : entries) {
    std::string child = shown + "/" + name;
    if (is_dir) {
      UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return step_error("remove_tree", child, errno, "open");
      auto r = remove_children(sub.get(), child, depth + 1);
      if (!r) return r;
      if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return step_error("remove_tree", child, errno, "rmdir");
    } else if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return step_error("remove_tree", child, errno, "unlink");
    }
  }
  return {};
}

}  // namespace

Result<void> remove_tree(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return {};
    return step_error("remove_tree", path, errno, "open");
  }
  auto r = remove_children(fd.get(), path, 0);
  if (!r) return r;
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT)
    return step_error("remove_tree", path, errno, "rmdir");
  return {};
}

void write_exit_status(int state_dir_fd, int wait_status) noexcept {
  if (state_dir_fd < 0) return;
  char text[32];
  int n = WIFEXITED(wait_status)
              ? std::snprintf(text, sizeof text, "exited %d\n", WEXITSTATUS(wait_status))
              : std::snprintf(text, sizeof text, "signal %d\n", WTERMSIG(wait_status));
  ::unlinkat(state_dir_fd, kExitStatusFile, 0);
  int fd = ::openat(state_dir_fd, kExitStatusFile,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, std::string_view(text, static_cast<std::size_t>(n)));
  ::close(fd);
}

std::optional<int> read_exit_status(const std::string& state_dir) {
  std::string path = state_dir + "/" + kExitStatusFile;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(n));
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto kind = text.substr(0, space);
  auto number = text.substr(space + 1);
  int value = -1;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size()) return std::nullopt;
  if (kind == "exited" && value >= 0 && value <= 255) return value << 8;
  if (kind == "signal" && value > 0 && value < 128) return value;
  return std::nullopt;
}

}  // namespace lithos::runtime
