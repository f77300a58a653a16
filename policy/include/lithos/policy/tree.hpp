// Finding and reading the configuration files of one host: the master
// config, every sandbox config and its process config (docs/configs.md).
// Container configs are read per process entry by check.hpp, confined to
// their image directory.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/common/fd.hpp"
#include "lithos/policy/config.hpp"

namespace lithos::policy {

// Path "join": an absolute `path` replaces `base`, a relative one is appended.
std::string join_path(const std::string& base, const std::string& path);
// `path` as found under `root` (lithos_check --root): absolute paths are
// prefixed, relative ones and an empty root leave it as it is.
std::string under_root(const std::string& root, const std::string& path);
// The directory part of a path as given ("." for a bare file name).
std::string parent_dir(const std::string& path);

// Hidden (`.x`), backup (`x~`, `x.bak`) and editor (`#x#`) names: never a
// sandbox, never an image directory (lithos_clean).
bool hidden_name(std::string_view name);

// Sandbox names from the `.yaml` files of a directory, sorted, skipping hidden
// (`.x`), backup (`x~`, `x.bak`) and editor (`#x#`) names and directories.
std::optional<std::vector<std::string>> discover_sandboxes(const std::string& dir,
                                                           Diagnostics& diags);

struct SandboxSource {
  std::string name;
  std::string file;
  std::optional<Loaded<SandboxCodec>> config;  // nullopt when it has errors
  // What decoded of a sandbox config with errors: its process config and
  // container configs are still checked on their own (check.hpp).
  std::optional<Loaded<SandboxCodec>> partial;
  std::string process_file;
  std::optional<Loaded<ProcessConfigCodec>> processes;  // nullopt when it has errors
  // What decoded of a process config with errors: its clean entries are
  // still checked (one bad entry must not hide the others), never started.
  std::optional<Loaded<ProcessConfigCodec>> processes_partial;
  bool alternate = false;  // process config given by --alternate-config
  // The process config does not exist: a sandbox with nothing deployed yet
  // (a warning, not an error; its running instances are kept all the same).
  bool processes_missing = false;
};

struct ConfigTree {
  std::string master_path;
  std::optional<Loaded<MasterCodec>> master;
  std::vector<SandboxSource> sandboxes;
  std::string host_root;  // LoadOptions::host_root

  std::string sandboxes_dir() const;
  std::string processes_dir() const;
};

struct LoadOptions {
  // Use `alternate_file` as the process config of `alternate_sandbox`.
  std::optional<std::string> alternate_sandbox;
  std::optional<std::string> alternate_file;
  // Only this sandbox (knot, cmd): its file is opened directly, no scan.
  std::optional<std::string> only_sandbox;
  // Do not read process configs (the knot gets its entry as --config).
  bool skip_process_configs = false;
  // Absolute sandboxes-dir and processes-dir are looked for below this
  // directory (lithos_check --root); empty: as written.
  std::string host_root;
};

ConfigTree load_tree(const std::string& master_path, const LoadOptions& options, Diagnostics& diags,
                     Sources* sources);

// Reads a container config at `config` (absolute or relative, as written in the
// process config) with `image_root` as the root directory: `..` and symlinks
// cannot leave the image (openat2 RESOLVE_IN_ROOT), exactly as if chroot-ed.
// The file is opened O_PATH and read only if it is a regular file within the
// size limit (yaml::read_opened): a device node or FIFO in an image is never
// opened. `display` is the file name used in diagnostics.
// `beneath` (optional) names `image_root` as a relative path below an open
// directory (the sandbox's image-dir): a path without symlinks, `.` or `..`
// is then opened with one openat2 from there; any other path, or any error,
// takes the general route above, so the result and the diagnostics are the same.
struct BeneathDir {
  int dir_fd = -1;              // O_PATH descriptor of the directory
  std::string_view root_below;  // image_root relative to it, e.g. "img0"
};
std::optional<Loaded<ContainerCodec>> load_container(const std::string& image_root,
                                                     const std::string& config,
                                                     const std::string& display, Diagnostics& diags,
                                                     Sources* sources, BeneathDir beneath = {});

// The sandbox's image-dir held open for BeneathDir (closed on destruction;
// fd() is -1 when it could not be opened, which only disables the fast path).
class OpenDir {
 public:
  explicit OpenDir(const std::string& path);
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

// Reads any file inside `root` with the same confinement and checks
// (secret-environ-file).
std::optional<std::string> read_in_root(const std::string& root, const std::string& path,
                                        const std::string& display, Diagnostics& diags);

}  // namespace lithos::policy
