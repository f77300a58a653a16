#include "lithos/runtime/safe_files.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "lithos/common/text.hpp"

namespace lithos::runtime {
namespace {

std::string joined(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

// "dir" and "name" of a path; "." for a bare name, "/" for "/name".
std::pair<std::string, std::string> split_path(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// A name no one else knows in advance: ".NAME.<16 hex digits>.tmp".
Result<std::string> random_temp_name(std::string_view name, const std::string& display) {
  unsigned char bytes[8];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return step_error("replace_file", joined(display, name), errno, "getrandom");
    got += static_cast<std::size_t>(n);
  }
  std::string out = ".";
  out += name;
  out += '.';
  append_hex(out, std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
  out += ".tmp";
  return out;
}

bool write_fully(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = ENOSPC;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Gives the unnamed file `fd` the name `temp` in `dir_fd`. linkat with
// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd works without it.
int link_unnamed(int fd, int dir_fd, const std::string& temp) {
  if (::linkat(fd, "", dir_fd, temp.c_str(), AT_EMPTY_PATH) == 0) return 0;
  if (errno != EPERM && errno != ENOENT) return errno;
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, self.c_str(), dir_fd, temp.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
  return errno;
}

}  // namespace

Result<UniqueFd> open_directory(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return step_error("open_directory", path, errno);
  return fd;
}

Result<void> replace_file_at(int dir_fd, const std::string& display, std::string_view name,
                             std::string_view content, mode_t mode, bool durable) {
  const std::string target(name);
  auto temp = random_temp_name(name, display);
  if (!temp) return fail(temp.error());
  // Mode 0 until written: nobody can open the file half-written.
  UniqueFd fd(::openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0));
  bool unnamed = fd.valid();
  if (!unnamed) {
    // No O_TMPFILE on this file system (EOPNOTSUPP, or EISDIR on old kernels).
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return step_error("replace_file", joined(display, name), errno, "open O_TMPFILE");
    fd.reset(
        ::openat(dir_fd, temp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0));
    if (!fd) return step_error("replace_file", joined(display, *temp), errno, "create temp file");
  }
  auto fail_with = [&](const char* what, int err) -> Result<void> {
    if (!unnamed) ::unlinkat(dir_fd, temp->c_str(), 0);
    return step_error("replace_file", joined(display, unnamed ? target : *temp), err, what);
  };
  if (!write_fully(fd.get(), content)) return fail_with("write", errno);
  if (::fchmod(fd.get(), mode) != 0) return fail_with("fchmod", errno);
  if (durable && ::fsync(fd.get()) != 0) return fail_with("fsync", errno);
  if (unnamed) {
    if (int err = link_unnamed(fd.get(), dir_fd, *temp); err != 0)
      return step_error("replace_file", joined(display, *temp), err, "link temp file");
  }
  if (::renameat(dir_fd, temp->c_str(), dir_fd, target.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dir_fd, temp->c_str(), 0);
    return step_error("replace_file", joined(display, target), err, "rename over");
  }
  return {};
}

Result<void> replace_file(const std::string& path, std::string_view content, mode_t mode,
                          bool durable) {
  auto [dir, name] = split_path(path);
  auto dir_fd = open_directory(dir);
  if (!dir_fd) return fail(dir_fd.error());
  return replace_file_at(dir_fd->get(), dir, name, content, mode, durable);
}

Result<UniqueFd> open_log_at(int dir_fd, const std::string& display, std::string_view name,
                             mode_t mode) {
  const std::string file(name);
  const std::string shown = joined(display, name);
  // O_NONBLOCK: opening a FIFO for writing would wait for a reader.
  UniqueFd fd(::openat(
      dir_fd, file.c_str(),
      O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode));
  if (!fd) {
    // Without a reader a FIFO gives ENXIO; say what the name is.
    if (errno == ENXIO) return step_error("open_log", shown, 0, "not a regular file");
    return step_error("open_log", shown, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return step_error("open_log", shown, errno, "fstat");
  if (!S_ISREG(st.st_mode)) return step_error("open_log", shown, 0, "not a regular file");
  if (st.st_nlink > 1)
    return step_error("open_log", shown, 0,
                      "has " + std::to_string(st.st_nlink) + " hard links; refusing to append");
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0)
    return step_error("open_log", shown, errno, "clear O_NONBLOCK");
  return fd;
}

Result<UniqueFd> open_log(const std::string& path, mode_t mode) {
  auto [dir, name] = split_path(path);
  // O_PATH without O_NOFOLLOW: a symlinked log directory is configuration.
  UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return step_error("open_log", dir, errno, "open directory");
  auto fd = open_log_at(dir_fd.get(), dir, name, mode);
  if (!fd) return fail(fd.error());
  return std::move(*fd);
}

Result<std::string> read_file_at(int dir_fd, const std::string& display, std::string_view name,
                                 std::size_t max_bytes) {
  const std::string file(name);
  const std::string shown = joined(display, name);
  UniqueFd fd(
      ::openat(dir_fd, file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) return step_error("read_file", shown, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return step_error("read_file", shown, errno, "fstat");
  if (!S_ISREG(st.st_mode)) return step_error("read_file", shown, 0, "not a regular file");
  auto text = read_all(
      fd.get(), {.max_bytes = max_bytes, .expected_size = static_cast<std::size_t>(st.st_size)});
  if (!text) {
    if (text.error() == EFBIG) return step_error("read_file", shown, EFBIG);
    return step_error("read_file", shown, text.error(), "read");
  }
  return std::move(*text);
}

bool others_can_replace_names(int dir_fd) {
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) return false;
  return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0;
}

}  // namespace lithos::runtime
