#include "lithos/policy/tree.hpp"

#include "lithos/policy/check.hpp"  // absolute_clean

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lithos::policy {

std::string join_path(const std::string& base, const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  if (base.empty() || base == ".") return path;
  if (path.empty()) return base;
  std::string out;
  out.reserve(base.size() + 1 + path.size());
  out += base;
  if (base.back() != '/') out += '/';
  out += path;
  return out;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool hidden_name(std::string_view name) {
  if (name.empty() || name.front() == '.') return true;
  if (name.back() == '~') return true;
  if (name.size() >= 4 && name.compare(name.size() - 4, 4, ".bak") == 0) return true;
  if (name.size() >= 2 && name.front() == '#' && name.back() == '#') return true;
  return false;
}

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

std::optional<std::vector<std::string>> discover_sandboxes(const std::string& dir,
                                                           Diagnostics& diags) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    diags.error(dir, {}, Code::FileUnreadable,
                "cannot read the sandboxes directory: " + errno_text(errno));
    return std::nullopt;
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(d)) {
    std::string file = entry->d_name;
    if (hidden_name(file)) continue;
    if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".yaml") != 0) continue;
    struct stat st {};
    if (::stat(join_path(dir, file).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    names.push_back(file.substr(0, file.size() - 5));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string under_root(const std::string& root, const std::string& path) {
  if (root.empty() || path.empty() || path.front() != '/') return path;
  return root.back() == '/' ? root + path.substr(1) : root + path;
}

namespace {
// A path of a config: an absolute one is the host's (below --root), a
// relative one is relative to `base`. Not under_root then join_path: with a
// relative --root the rooted path is relative to the current directory,
// not to `base`.
std::string config_path(const std::string& base, const std::string& root, const std::string& path) {
  if (!path.empty() && path.front() == '/') return under_root(root, path);
  return join_path(base, path);
}
}  // namespace

std::string ConfigTree::sandboxes_dir() const {
  return config_path(parent_dir(master_path), host_root,
                     master ? master->value.sandboxes_dir : "./sandboxes");
}
std::string ConfigTree::processes_dir() const {
  return config_path(parent_dir(master_path), host_root,
                     master ? master->value.processes_dir : "./processes");
}

ConfigTree load_tree(const std::string& master_path, const LoadOptions& options, Diagnostics& diags,
                     Sources* sources) {
  ConfigTree tree;
  tree.master_path = master_path;
  tree.host_root = options.host_root;
  tree.master = load_config<MasterCodec>(master_path, diags, sources);
  if (!tree.master) return tree;

  std::vector<std::string> names;
  if (options.only_sandbox) {
    names.push_back(*options.only_sandbox);
  } else if (auto found = discover_sandboxes(tree.sandboxes_dir(), diags)) {
    names = std::move(*found);
  } else {
    return tree;
  }
  for (const auto& name : names) {
    SandboxSource sandbox;
    sandbox.name = name;
    sandbox.file = join_path(tree.sandboxes_dir(), name + ".yaml");
    if (auto root = yaml::load_file(sandbox.file, diags, sources)) {
      bool complete = false;
      auto doc = decode_node_keeping<SandboxCodec>(std::move(*root), sandbox.file, diags, complete);
      (complete ? sandbox.config : sandbox.partial) = std::move(doc);
    }
    // A broken config-file key names no file: guessing one would only add
    // a misleading error.
    const bool process_file_known =
        sandbox.config || (sandbox.partial && (sandbox.partial->value.config_file ||
                                               !sandbox.partial->marks.has(".config-file")));
    if (process_file_known) {
      const auto& cfg = (sandbox.config ? sandbox.config : sandbox.partial)->value;
      sandbox.process_file = config_path(tree.processes_dir(), tree.host_root,
                                         cfg.config_file ? *cfg.config_file : name + ".yaml");
      if (options.alternate_sandbox && *options.alternate_sandbox == name &&
          options.alternate_file) {
        sandbox.process_file = *options.alternate_file;
        sandbox.alternate = true;
      }
      struct stat st {};
      bool missing = !options.skip_process_configs && !sandbox.alternate &&
                     ::lstat(sandbox.process_file.c_str(), &st) != 0 && errno == ENOENT;
      if (missing) {
        sandbox.processes_missing = true;
        diags.warning(sandbox.process_file, {}, Code::NoProcesses,
                      "sandbox \"" + name + "\" has no process config: " + sandbox.process_file +
                          " does not exist, so nothing of it runs");
      } else if (!options.skip_process_configs) {
        if (auto root = yaml::load_file(sandbox.process_file, diags, sources)) {
          bool complete = false;
          auto doc = decode_node_keeping<ProcessConfigCodec>(std::move(*root), sandbox.process_file,
                                                             diags, complete);
          (complete ? sandbox.processes : sandbox.processes_partial) = std::move(doc);
        }
      }
    }
    tree.sandboxes.push_back(std::move(sandbox));
  }
  return tree;
}

namespace {

// Opens `path` beneath `root` as if `root` were "/": absolute paths, `..` and
// symlinks all stay inside. An O_PATH descriptor: nothing is opened for
// reading before read_opened has checked the type (a device node in an
// image must never see an open).
int open_in_root(const std::string& root, const std::string& path, int& err) {
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    err = errno;
    return -1;
  }
  std::string rel = path.empty() ? "." : path;
  // O_PATH: not opened for reading yet (see yaml::read_opened).
  int fd = open_at2(root_fd.get(), rel.c_str(), O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  err = fd < 0 ? errno : 0;
  return fd;
}

// One openat2 below `beneath` when neither the image path nor `path` can
// involve a symlink, `.` or `..` (RESOLVE_NO_SYMLINKS refuses the first,
// the text check the others): the same file RESOLVE_IN_ROOT would open.
// -1 means "take the general route".
int open_beneath_plainly(BeneathDir beneath, const std::string& path) {
  if (beneath.dir_fd < 0 || beneath.root_below.empty() || !absolute_clean(path)) return -1;
  std::string_view rest(path);
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (rest.empty()) return -1;
  std::string rel(beneath.root_below);
  rel += '/';
  rel += rest;
  return open_at2(beneath.dir_fd, rel.c_str(), O_PATH,
                  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

}  // namespace

OpenDir::OpenDir(const std::string& path)
    : fd_(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)) {}

std::optional<std::string> read_in_root(const std::string& root, const std::string& path,
                                        const std::string& display, Diagnostics& diags) {
  int err = 0;
  int fd = open_in_root(root, path, err);
  if (fd < 0) {
    diags.error(display, {}, Code::FileUnreadable, "Error reading file: " + errno_text(err));
    return std::nullopt;
  }
  return yaml::read_opened(fd, display, diags);
}

std::optional<Loaded<ContainerCodec>> load_container(const std::string& image_root,
                                                     const std::string& config,
                                                     const std::string& display, Diagnostics& diags,
                                                     Sources* sources, BeneathDir beneath) {
  int fd = open_beneath_plainly(beneath, config);
  auto text = fd >= 0 ? yaml::read_opened(fd, display, diags)
                      : read_in_root(image_root, config, display, diags);
  if (!text) return std::nullopt;
  auto root = yaml::parse(*text, display, diags);
  if (sources) sources->add(display, *text);
  if (!root) return std::nullopt;
  return decode_node<ContainerCodec>(std::move(*root), display, diags);
}

}  // namespace lithos::policy
