// Descriptors for every module: one owner type and one read-to-the-end, so
// policy and runtime neither close by hand nor loop over read(2) each in
// their own way (docs/errors.md says how the errno travels up).
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "lithos/common/result.hpp"

namespace lithos {

// RAII owner of one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the current descriptor (errors from close are not reportable
  // here; the descriptor is gone either way on Linux) and takes `fd`.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// openat2(2) (glibc 2.36 has no wrapper), always close-on-exec: `resolve`
// is the RESOLVE_* set that keeps a walk where it belongs. -1 with errno
// on failure, as open(2).
inline int open_at2(int dir_fd, const char* path, int flags, std::uint64_t resolve,
                    mode_t mode = 0) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  // The kernel refuses a mode without O_CREAT or O_TMPFILE, and O_TMPFILE
  // contains O_DIRECTORY's bit: test the whole of it.
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) how.mode = mode;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dir_fd, path, &how, sizeof how));
}

// How much read_all may take and how it may shortcut.
struct ReadLimits {
  std::size_t max_bytes = std::size_t{16} << 20;
  // The size fstat reported, 0 if unknown (procfs, pipes). With a size, a
  // regular file usually takes one read: asked for one byte more than its
  // size, a short read is its end.
  std::size_t expected_size = 0;
};

// Reads `fd` to its end (retrying EINTR). The failure is the errno of the
// read, or EFBIG once more than `max_bytes` arrived (the file may grow
// after an fstat). Nothing is logged here: the caller knows which step and
// which path it was reading.
inline Result<std::string, int> read_all(int fd, ReadLimits limits = {}) {
  std::string text;
  char buffer[65536];
  const bool sized = limits.expected_size > 0 && limits.expected_size < sizeof buffer;
  while (true) {
    const std::size_t want = sized && text.empty() ? limits.expected_size + 1 : sizeof buffer;
    const ssize_t n = ::read(fd, buffer, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno);
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limits.max_bytes) return fail(EFBIG);
    if (sized && static_cast<std::size_t>(n) < want) break;
  }
  return text;
}

}  // namespace lithos
