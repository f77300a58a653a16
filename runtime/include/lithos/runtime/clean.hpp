// lithos_clean's file system side (docs/lithos_clean.md): reading config
// logs and used-images-lists, listing image directories, finding the root
// directories of running processes, deleting. It runs as root in
// directories that images fill: no symlink is followed below image-dir, no
// file system is crossed while deleting, and a directory is deleted only if
// it is still the one that was decided on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lithos/policy/clean.hpp"
#include "lithos/runtime/error.hpp"

namespace lithos::runtime::clean {

// policy::clean::ReadFile over real files: a symlink at the last component,
// a FIFO or a device is an error, never opened for reading; at most 64 MiB.
policy::clean::FileText read_text(const std::string& path);

// The directories exactly `levels` below `image_dir`, sorted by name.
// Hidden and backup names, symlinks and other files are skipped at every
// level. `image_dir` itself may be reached through symlinks (the
// administrator's choice), but its last component may not be one.
Result<std::vector<policy::clean::Candidate>> list_images(const std::string& image_dir,
                                                          std::uint32_t levels);

// What each used image name of `dir` leads to below its image-dir, symlinks
// followed but never out of it (RESOLVE_BENEATH).
policy::clean::NamedTargets named_targets(const policy::clean::ImageDir& dir);

// The root directory of every process in `proc` that can be looked at.
policy::clean::RunningRoots running_roots(const std::string& proc = "/proc");

// Deletes `candidate` below `image_dir` and everything in it, if it is still
// the directory (dev, ino) it was listed as. Symlinks are removed, never
// followed; no mount is crossed (openat2 RESOLVE_NO_XDEV, so a bind mount of
// the same file system counts too): a mount point inside is left in place
// and reported. Deletes as much as it can and returns the first error.
Result<void> remove_image(const std::string& image_dir, const policy::clean::Candidate& candidate);

// Whether `path` is a regular file (not following a symlink at its name).
bool regular_file(const std::string& path);

// Deletes the regular file `path`; a symlink at its name is refused.
Result<void> remove_file(const std::string& path);

}  // namespace lithos::runtime::clean
