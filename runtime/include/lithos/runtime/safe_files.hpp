// Files that root writes in directories other users may be able to write
// (a metrics dir shared with node-exporter, a log dir, the runtime dir):
// no name in such a directory is trusted. Nothing here follows a symlink at
// the written name, a temp file is never an existing name, and a log that
// is not a regular file (a FIFO, a device) is refused without blocking.
// See docs/operations.md ("Files the tree writes").
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"

namespace lithos::runtime {

// Mode of newly created log files (stdio, knot, tree and config logs):
// container output often carries secrets, so other users get nothing.
inline constexpr mode_t kLogFileMode = 0640;

// Opens `path` as a directory handle (O_PATH|O_DIRECTORY) to create files
// in with the *_at functions. The last component must not be a symlink;
// earlier ones are the administrator's choice and are followed.
Result<UniqueFd> open_directory(const std::string& path);

// Replaces `name` in `dir_fd` with a regular file holding `content`, mode
// exactly `mode` (the umask does not apply), owned by the caller. Written
// to an unnamed O_TMPFILE linked under a random temp name (or, where the
// file system has no O_TMPFILE, a random name created O_EXCL|O_NOFOLLOW),
// then renamed over `name` within `dir_fd`: a symlink planted at `name` or
// at any temp name is replaced or ignored, never written through. With
// `durable` the data is fsync'ed before the rename. `display` names the
// directory in errors.
Result<void> replace_file_at(int dir_fd, const std::string& display, std::string_view name,
                             std::string_view content, mode_t mode, bool durable = false);

// replace_file_at in the parent directory of `path`.
Result<void> replace_file(const std::string& path, std::string_view content, mode_t mode,
                          bool durable = false);

// Opens `name` in `dir_fd` for appending (created with `mode` if missing;
// an existing file keeps its mode). Refused: a symlink at `name` (ELOOP),
// anything but a regular file ("not a regular file", checked before the
// first write, so a FIFO cannot block the caller), and a file with other
// hard links (it could be any file of the same file system). The returned
// descriptor is blocking, O_APPEND and close-on-exec.
Result<UniqueFd> open_log_at(int dir_fd, const std::string& display, std::string_view name,
                             mode_t mode = kLogFileMode);

// open_log_at in the parent directory of `path`; the directory itself may
// be reached through symlinks (only the file name is checked).
Result<UniqueFd> open_log(const std::string& path, mode_t mode = kLogFileMode);

// Reads a regular file `name` in `dir_fd` without following a symlink at
// `name` and without blocking on a FIFO; at most `max_bytes`.
Result<std::string> read_file_at(int dir_fd, const std::string& display, std::string_view name,
                                 std::size_t max_bytes = 1 << 20);

// Whether a directory lets other users plant names in it: writable by group
// or others and not sticky.
bool others_can_replace_names(int dir_fd);

}  // namespace lithos::runtime
