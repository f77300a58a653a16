// The container's file view as the knot builds it, replayed with lstat: the
// image at /, the devfs at /dev (devpts at /dev/pts), sysfs and proc, then
// every volume in mount order, then /etc/resolv.conf and /etc/hosts. A path
// is looked up in the last mount whose mount point is a prefix of it, which
// is the mount that hides the others there (docs/lithos_check.md, "What
// passes is what runs").
// One file over 600 lines on purpose: the view, the resolver and the
// findings are one walk over one set of mounts.
#include "lithos/policy/image_inspect.hpp"
#include "lithos/policy/tree.hpp"

#include "lithos/common/fd.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <string_view>

#include "lithos/crypt/secrets.hpp"
#include "lithos/policy/check.hpp"

namespace lithos::policy {
namespace {

// What the kernel calls this machine's executables (the knot and the
// container run on the same host as the check).
#if defined(__x86_64__)
constexpr unsigned kNativeMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kNativeMachine = EM_AARCH64;
#elif defined(__i386__)
constexpr unsigned kNativeMachine = EM_386;
#elif defined(__arm__)
constexpr unsigned kNativeMachine = EM_ARM;
#elif defined(__riscv)
constexpr unsigned kNativeMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr unsigned kNativeMachine = EM_PPC64;
#elif defined(__s390x__)
constexpr unsigned kNativeMachine = EM_S390;
#else
constexpr unsigned kNativeMachine = EM_NONE;  // not checked
#endif

constexpr int kMaxSymlinkHops = 40;      // the kernel's own limit (ELOOP)
constexpr int kMaxInterpreterDepth = 4;  // binfmt_script's nesting limit

std::vector<std::string> split_components(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto piece = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!piece.empty()) parts.emplace_back(piece);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::string container_path(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

enum class NodeType { Missing, Directory, Regular, Symlink, Other, Kernel, Unreadable };

struct Node {
  NodeType type = NodeType::Missing;
  std::string host;  // host path, when the node is on a host file system
  // When below a mount's root: that root's descriptor (owned by the View)
  // and the path relative to it.
  int dir_fd = -1;
  std::string below;
  struct stat st {};
  int err = 0;  // Unreadable
};

// One mount of the view.
struct Layer {
  enum class Kind {
    HostDirectory,   // a host directory (image, devfs, bind volume)
    EmptyDirectory,  // a fresh tmpfs, or a bind source the knot will create
    Kernel,          // sysfs, proc, devpts: contents not checked
    HostFile,        // /etc/resolv.conf and /etc/hosts, written by the knot
  };
  std::vector<std::string> at;
  Kind kind = Kind::HostDirectory;
  std::string host;
  // HostDirectory: `host` opened O_PATH once a path below it is looked up,
  // so that each lookup walks from there and not from /.
  mutable UniqueFd dir{};
  mutable bool dir_tried = false;
};

struct Resolved {
  Node node;
  std::string path;  // the container path reached (after symlinks)
  std::string problem;
};

class View {
 public:
  View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  void mount(Layer layer) { layers_.push_back(std::move(layer)); }

  // Resolves `path` as open(2) would inside the container. With `follow`
  // false a symlink anywhere is a problem (the knot's RESOLVE_NO_SYMLINKS).
  Resolved resolve(std::string_view path, bool follow) const {
    std::deque<std::string> pending;
    for (auto& p : split_components(path)) pending.push_back(std::move(p));
    std::vector<std::string> done;
    int hops = 0;
    Node node;
    node.type = NodeType::Directory;
    while (!pending.empty()) {
      std::string name = std::move(pending.front());
      pending.pop_front();
      if (name == ".") continue;
      if (name == "..") {
        if (!done.empty()) done.pop_back();
        continue;
      }
      done.push_back(std::move(name));
      node = look(done);
      if (node.type == NodeType::Symlink) {
        if (!follow)
          return {
              node, container_path(done),
              container_path(done) + " is a symlink (the knot follows none inside the container)"};
        if (++hops > kMaxSymlinkHops)
          return {node, container_path(done), "too many levels of symbolic links"};
        auto target = read_link(node.host);
        if (!target) return {node, container_path(done), "cannot read the symlink"};
        done.pop_back();
        if (!target->empty() && target->front() == '/') done.clear();
        auto parts = split_components(*target);
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_front(*it);
        continue;
      }
      if (node.type == NodeType::Kernel) return {node, container_path(done), {}};
      if (node.type == NodeType::Unreadable)
        return {node, container_path(done),
                container_path(done) + " cannot be read (" + std::strerror(node.err) + ")"};
      if (node.type == NodeType::Missing)
        return {node, container_path(done), container_path(done) + " does not exist"};
      if (!pending.empty() && node.type != NodeType::Directory)
        return {node, container_path(done), container_path(done) + " is not a directory"};
    }
    return {node, container_path(done), {}};
  }

 private:
  static std::optional<std::string> read_link(const std::string& host) {
    std::array<char, 4096> buffer{};
    ssize_t n = ::readlink(host.c_str(), buffer.data(), buffer.size());
    if (n < 0 || static_cast<std::size_t>(n) >= buffer.size()) return std::nullopt;
    return std::string(buffer.data(), static_cast<std::size_t>(n));
  }

  Node look(const std::vector<std::string>& parts) const {
    const Layer* top = nullptr;
    for (const auto& layer : layers_) {
      if (layer.at.size() <= parts.size() &&
          std::equal(layer.at.begin(), layer.at.end(), parts.begin()))
        top = &layer;
    }
    Node node;
    if (!top) return node;
    const bool at_mount_point = top->at.size() == parts.size();
    switch (top->kind) {
      case Layer::Kind::EmptyDirectory:
        if (at_mount_point) node.type = NodeType::Directory;
        return node;
      case Layer::Kind::Kernel:
        node.type = at_mount_point ? NodeType::Directory : NodeType::Kernel;
        return node;
      case Layer::Kind::HostFile:
        if (at_mount_point) node.type = NodeType::Regular;
        return node;
      case Layer::Kind::HostDirectory:
        break;
    }
    node.host = top->host;
    std::string below;
    for (std::size_t i = top->at.size(); i < parts.size(); ++i)
      below += (below.empty() ? "" : "/") + parts[i];
    if (!below.empty()) node.host += "/" + below;
    // The mount's own root is opened by the knot following symlinks (the
    // operator's image-dir, devfs-dir); below it nothing is followed. The
    // components of `below` were each looked at on the way (resolve walks
    // one at a time), so the walk from the root's descriptor meets no link.
    int rc = 0;
    if (at_mount_point) {
      rc = ::stat(node.host.c_str(), &node.st);
    } else {
      if (!top->dir_tried) {
        top->dir_tried = true;
        top->dir.reset(::open(top->host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      }
      rc = top->dir ? ::fstatat(top->dir.get(), below.c_str(), &node.st, AT_SYMLINK_NOFOLLOW)
                    : ::lstat(node.host.c_str(), &node.st);
      node.dir_fd = top->dir.get();
      node.below = below;
    }
    if (rc != 0) {
      node.err = errno;
      node.type = (errno == ENOENT || errno == ENOTDIR) ? NodeType::Missing : NodeType::Unreadable;
      return node;
    }
    if (S_ISDIR(node.st.st_mode))
      node.type = NodeType::Directory;
    else if (S_ISREG(node.st.st_mode))
      node.type = NodeType::Regular;
    else if (S_ISLNK(node.st.st_mode))
      node.type = NodeType::Symlink;
    else
      node.type = NodeType::Other;
    return node;
  }

  std::vector<Layer> layers_;
};

const char* type_name(NodeType type) {
  switch (type) {
    case NodeType::Directory:
      return "a directory";
    case NodeType::Regular:
      return "a regular file";
    case NodeType::Symlink:
      return "a symlink";
    case NodeType::Other:
      return "a device, socket or FIFO";
    default:
      return "not there";
  }
}

// A file of the image opened for reading only once it is known to be a
// regular file: O_PATH without following a link, fstat, then the same inode
// reopened through /proc/self/fd. A name swapped for a device node since the
// lstat never gets a driver's open, a FIFO never blocks. Empty on failure.
UniqueFd open_regular(const Node& node) {
  UniqueFd path_fd(node.dir_fd >= 0
                       ? ::openat(node.dir_fd, node.below.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)
                       : ::open(node.host.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!path_fd) return {};
  struct stat st {};
  if (::fstat(path_fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  char proc_path[40];
  std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", path_fd.get());
  return UniqueFd(::open(proc_path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
}

class Inspector {
 public:
  Inspector(const InstancePlan& plan, HostLookups& host) : plan_(plan), host_(host) {}

  std::vector<ImageFinding> run() {
    if (!image_root()) return std::move(findings_);
    system_mounts();
    for (std::size_t i = 0; i < plan_.mounts.size(); ++i) volume(i);
    state_file(plan_.mount_resolv_conf && plan_.require_resolv_conf, "resolv.conf",
               ImageSubject::ResolvConf);
    state_file(plan_.mount_hosts && plan_.require_hosts, "hosts", ImageSubject::Hosts);
    host_file(plan_.resolv_conf_source, ImageSubject::ResolvSource);
    host_file(plan_.hosts_copy_source, ImageSubject::HostsSource);
    secrets();
    network();
    workdir();
    executable(plan_.executable, ImageSubject::Executable, 0);
    stdout_file();
    return std::move(findings_);
  }

 private:
  void add(ImageSubject subject, std::string message, std::size_t volume = 0,
           bool warning = false) {
    findings_.push_back(ImageFinding{subject, volume, warning, std::move(message)});
  }

  bool image_root() {
    struct stat st {};
    if (::stat(plan_.image_root.c_str(), &st) != 0) {
      int err = errno;
      add(ImageSubject::Image,
          "image " + plan_.image_root +
              (err == ENOENT ? " does not exist (not built or not unpacked yet)"
                             : " cannot be read (" + std::string(std::strerror(err)) + ")"));
      return false;
    }
    if (!S_ISDIR(st.st_mode)) {
      add(ImageSubject::Image, "image " + plan_.image_root + " is not a directory");
      return false;
    }
    view_.mount({{}, Layer::Kind::HostDirectory, plan_.image_root});
    return true;
  }

  // A mount point the knot opens with O_DIRECTORY and no symlinks.
  std::optional<std::string> directory_problem(const std::string& path) const {
    auto found = view_.resolve(path, false);
    if (!found.problem.empty()) return found.problem;
    if (found.node.type != NodeType::Directory && found.node.type != NodeType::Kernel)
      return path + " is " + type_name(found.node.type) + ", not a directory";
    return std::nullopt;
  }

  void system_mounts() {
    std::string missing;
    for (const char* dir : {"/dev", "/sys", "/proc"}) {
      if (auto problem = directory_problem(dir))
        missing += (missing.empty() ? "" : "; ") + *problem;
      auto parts = split_components(dir);
      if (std::string_view(dir) == "/dev") {
        view_.mount({parts, Layer::Kind::HostDirectory, plan_.devfs_dir});
        view_.mount({{"dev", "pts"}, Layer::Kind::Kernel, {}});
      } else {
        view_.mount({parts, Layer::Kind::Kernel, {}});
      }
    }
    if (!missing.empty())
      add(ImageSubject::Image, "image " + plan_.image_root +
                                   " is incomplete: the knot mounts /dev, /sys and /proc on "
                                   "directories of the image, and " +
                                   missing);
  }

  // A host directory, regular file or UNIX socket walked from / without
  // following any symlink, as the knot walks bind sources.
  enum class Source { Absent, Directory, File };
  Source host_source(std::size_t index, const MountPlan& m) {
    if (!m.confine_to.empty()) {  // !Statedir: below the state dir, always created
      struct stat st {};
      return ::lstat(m.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? Source::Directory
                                                                        : Source::Absent;
    }
    bool file = false;
    if (auto problem = bind_source_problem(m.source, m.create, &file)) {
      if (!problem->empty())
        add(ImageSubject::VolumeSource, "volume " + m.volume + ": " + *problem, index);
      return Source::Absent;
    }
    return file ? Source::File : Source::Directory;
  }

  // lstat of a host path, asked once per run (sources share prefixes).
  HostLookups::Entry host_lstat(const std::string& path) {
    auto known = host_.lstats.find(path);
    if (known != host_.lstats.end()) return known->second;
    HostLookups::Entry entry;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
      entry.err = errno;
    else
      entry.mode = st.st_mode;
    return host_.lstats.emplace(path, entry).first->second;
  }

  // Why the knot could not bind `source`: nullopt when it can (`*file`
  // set when it is a regular file or a UNIX socket), "" when it is absent
  // but created at start.
  std::optional<std::string> bind_source_problem(const std::string& source, bool create,
                                                 bool* file) {
    std::string shown;
    const auto parts = split_components(source);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto& part = parts[i];
      shown += "/" + part;
      const auto entry = host_lstat(shown);
      if (entry.err != 0) {
        if (entry.err == ENOENT && create) return std::string();
        return "host directory " + shown +
               (entry.err == ENOENT
                    ? " does not exist"
                    : " cannot be read (" + std::string(std::strerror(entry.err)) + ")");
      }
      if (S_ISLNK(entry.mode))
        return shown + " is a symlink; the knot refuses symlinks in a volume's host path";
      if (!S_ISDIR(entry.mode)) {
        if (i + 1 == parts.size() && (S_ISREG(entry.mode) || S_ISSOCK(entry.mode))) {
          *file = true;
          return std::nullopt;
        }
        return "host path " + shown + " is " +
               (S_ISREG(entry.mode)    ? std::string("a regular file")
                : S_ISSOCK(entry.mode) ? std::string("a socket")
                                       : std::string("a device or FIFO")) +
               (i + 1 == parts.size()
                    ? ": a volume binds a directory, a regular file or a UNIX socket"
                    : ", not a directory");
      }
    }
    return std::nullopt;
  }

  // A mount point for a file volume: a file of the image (or of a volume
  // mounted before), reached without symlinks.
  std::optional<std::string> file_problem(const std::string& path) const {
    auto found = view_.resolve(path, false);
    if (!found.problem.empty()) return found.problem;
    if (found.node.type != NodeType::Regular && found.node.type != NodeType::Other)
      return path + " is " + type_name(found.node.type) +
             ": a file or socket volume mounts on a file";
    return std::nullopt;
  }

  void volume(std::size_t index) {
    const MountPlan& m = plan_.mounts[index];
    const Source source = m.kind == MountPlan::Kind::Tmpfs ? Source::Absent : host_source(index, m);
    if (source == Source::File) {
      // The file stays as the image has it in this view: nothing can be
      // mounted below a file.
      if (auto problem = file_problem(m.target))
        add(ImageSubject::VolumeTarget,
            "volume " + m.volume + ": mount point " + *problem + " (host path " + m.source + ")",
            index);
      return;
    }
    if (auto problem = directory_problem(m.target))
      add(ImageSubject::VolumeTarget, "volume " + m.volume + ": mount point " + *problem, index);
    Layer layer{split_components(m.target), Layer::Kind::EmptyDirectory, {}};
    if (source == Source::Directory) {
      layer.kind = Layer::Kind::HostDirectory;
      layer.host = m.source;
    }
    view_.mount(std::move(layer));
  }

  void state_file(bool required, const char* name, ImageSubject subject) {
    if (!required) return;
    std::string path = std::string("/etc/") + name;
    auto found = view_.resolve(path, false);
    if (!found.problem.empty() || found.node.type != NodeType::Regular)
      add(subject,
          path + " must be a regular file in the image to mount the generated one on (" +
              (found.problem.empty() ? path + " is " + type_name(found.node.type) : found.problem) +
              ")");
    else
      view_.mount({split_components(path), Layer::Kind::HostFile, {}});
  }

  void host_file(const std::optional<std::string>& path, ImageSubject subject) {
    if (!path) return;
    auto known = host_.host_files.find(*path);
    if (known == host_.host_files.end())
      known = host_.host_files.emplace(*path, host_file_problem(*path)).first;
    if (known->second) add(subject, *known->second);
  }

  static std::optional<std::string> host_file_problem(const std::string& path) {
    // O_PATH: the type is all there is to check (root reads any regular
    // file), and nothing but a regular file is ever opened for reading.
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) return "host file " + path + " cannot be read (" + std::strerror(errno) + ")";
    struct stat st {};
    bool regular = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode);
    if (!regular) return "host file " + path + " is not a regular file";
    return std::nullopt;
  }

  // What decode_secrets in the knot does, with the same key policy: the
  // values are decrypted and dropped (SecureBuffer wipes them).
  void secrets() {
    if (!plan_.secrets) return;
    const auto& s = *plan_.secrets;
    if (s.private_key_path.empty()) {
      add(ImageSubject::Secrets,
          "the container uses secrets but the sandbox has no secrets-private-key");
      return;
    }
    auto keys = crypt::load_secrets_private_key(s.private_key_path);
    if (!keys) {
      add(ImageSubject::Secrets, keys.error());
      return;
    }
    auto decoded = crypt::decode_secrets(*keys, s.allowed_namespaces, {}, s.values);
    if (!decoded) add(ImageSubject::Secrets, decoded.error());
  }

  void network() {
    if (!plan_.network) return;
    if (plan_.network->bridge.find('/') != std::string::npos) return;  // not an interface name
    auto known = host_.bridges.find(plan_.network->bridge);
    if (known == host_.bridges.end()) {
      struct stat st {};
      known = host_.bridges
                  .emplace(plan_.network->bridge,
                           ::stat(("/sys/class/net/" + plan_.network->bridge).c_str(), &st) == 0)
                  .first;
    }
    if (!known->second)
      add(ImageSubject::Bridge,
          "bridge " + plan_.network->bridge +
              " does not exist on this host: starts fail until it is created",
          0, true);
  }

  void workdir() {
    auto found = view_.resolve(plan_.workdir, true);
    if (!found.problem.empty())
      add(ImageSubject::Workdir, "workdir " + plan_.workdir + ": " + found.problem);
    else if (found.node.type != NodeType::Directory && found.node.type != NodeType::Kernel)
      add(ImageSubject::Workdir,
          "workdir " + plan_.workdir + " is " + type_name(found.node.type) + ", not a directory");
  }

  // Whether the container's process (its outside ids, no supplementary
  // groups) may execute a file of this owner and mode.
  bool may_execute(const struct stat& st) const {
    std::uint32_t uid = plan_.uid, gid = plan_.gid;
    if (plan_.user_namespace) {
      uid = map_to_outside(plan_.uid_map, plan_.uid).value_or(0xffffffffU);
      gid = map_to_outside(plan_.gid_map, plan_.gid).value_or(0xffffffffU);
    }
    if (uid == 0 && !plan_.user_namespace) return (st.st_mode & 0111) != 0;
    if (st.st_uid == uid) return (st.st_mode & S_IXUSR) != 0;
    if (st.st_gid == gid) return (st.st_mode & S_IXGRP) != 0;
    return (st.st_mode & S_IXOTH) != 0;
  }

  // The executable as execve(2) finds it: symlinks followed inside the
  // container, then its #! interpreter or ELF loader, which must be there too.
  void executable(const std::string& path, ImageSubject subject, int depth) {
    const std::string what = depth == 0 ? "executable " + path : "interpreter " + path;
    if (path.empty() || path.front() != '/') {
      add(subject, what + " is not an absolute path");
      return;
    }
    auto found = view_.resolve(path, true);
    if (!found.problem.empty()) {
      add(subject, what + ": " + found.problem);
      return;
    }
    if (found.node.type == NodeType::Kernel) return;
    if (found.node.type != NodeType::Regular) {
      add(subject, what + " is " + type_name(found.node.type) + ", not a regular file");
      return;
    }
    if (found.node.host.empty()) return;  // a file the knot writes
    if (!may_execute(found.node.st)) {
      add(subject, what + " is not executable by uid " + std::to_string(plan_.uid) + " (mode " +
                       mode_text(found.node.st.st_mode) + ")");
      return;
    }
    auto header = read_header(found.node);
    if (!header) {
      add(subject, what + " cannot be read");
      return;
    }
    if (header->size() >= 2 && (*header)[0] == '#' && (*header)[1] == '!') {
      if (depth >= kMaxInterpreterDepth) {
        add(subject, what + ": #! interpreters nest too deep");
        return;
      }
      auto end = header->find('\n');
      std::string line = header->substr(2, end == std::string::npos ? std::string::npos : end - 2);
      auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos) {
        add(subject, what + " starts with #! but names no interpreter");
        return;
      }
      auto last = line.find_first_of(" \t", first);
      executable(line.substr(first, last == std::string::npos ? last : last - first), subject,
                 depth + 1);
      return;
    }
    if (header->size() >= SELFMAG && header->compare(0, SELFMAG, ELFMAG, SELFMAG) == 0) {
      elf(*header, found.node, what, subject, depth);
      return;
    }
    add(subject, what + " is neither an ELF program nor a #! script (exec would fail)");
  }

  static std::string mode_text(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
  }

  // The first bytes of a regular file of the image (see open_regular).
  static std::optional<std::string> read_header(const Node& node) {
    UniqueFd fd = open_regular(node);
    if (!fd) return std::nullopt;
    std::string bytes(1024, '\0');
    ssize_t n = ::pread(fd.get(), bytes.data(), bytes.size(), 0);
    if (n < 0) return std::nullopt;
    bytes.resize(static_cast<std::size_t>(n));
    return bytes;
  }

  // The machine it was built for, and the loader it names (PT_INTERP).
  void elf(const std::string& header, const Node& node, const std::string& what,
           ImageSubject subject, int depth) {
    if (header.size() < sizeof(Elf64_Ehdr) && header.size() < sizeof(Elf32_Ehdr)) {
      add(subject, what + " is a truncated ELF file");
      return;
    }
    const bool is64 = static_cast<unsigned char>(header[EI_CLASS]) == ELFCLASS64;
    std::uint16_t machine = 0;
    std::uint64_t phoff = 0;
    std::uint16_t phnum = 0, phentsize = 0;
    if (is64 && header.size() >= sizeof(Elf64_Ehdr)) {
      Elf64_Ehdr eh;
      std::memcpy(&eh, header.data(), sizeof eh);
      machine = eh.e_machine;
      phoff = eh.e_phoff;
      phnum = eh.e_phnum;
      phentsize = eh.e_phentsize;
    } else if (!is64 && header.size() >= sizeof(Elf32_Ehdr)) {
      Elf32_Ehdr eh;
      std::memcpy(&eh, header.data(), sizeof eh);
      machine = eh.e_machine;
      phoff = eh.e_phoff;
      phnum = eh.e_phnum;
      phentsize = eh.e_phentsize;
    }
    if (kNativeMachine != EM_NONE && machine != kNativeMachine &&
        !(kNativeMachine == EM_X86_64 && machine == EM_386)) {
      add(subject, what + " is built for another machine (ELF machine " + std::to_string(machine) +
                       ", this host runs " + std::to_string(kNativeMachine) + ")");
      return;
    }
    const std::size_t entry_size = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phentsize < entry_size || phnum == 0 || phnum > 256) return;
    // Program headers and the loader's name usually lie within the bytes
    // read already; the file is opened again only when they do not.
    UniqueFd fd;
    auto bytes_at = [&](std::uint64_t offset, std::size_t size, char* out) {
      if (offset + size <= header.size()) {
        std::memcpy(out, header.data() + offset, size);
        return true;
      }
      if (!fd) fd = open_regular(node);
      return fd &&
             ::pread(fd.get(), out, size, static_cast<off_t>(offset)) == static_cast<ssize_t>(size);
    };
    std::optional<std::string> interpreter;
    for (std::uint16_t i = 0; i < phnum && !interpreter; ++i) {
      std::array<char, sizeof(Elf64_Phdr)> raw{};
      if (!bytes_at(phoff + std::uint64_t{i} * phentsize, entry_size, raw.data())) break;
      std::uint32_t type = 0;
      std::uint64_t offset = 0, size = 0;
      if (is64) {
        Elf64_Phdr ph;
        std::memcpy(&ph, raw.data(), sizeof ph);
        type = ph.p_type, offset = ph.p_offset, size = ph.p_filesz;
      } else {
        Elf32_Phdr ph;
        std::memcpy(&ph, raw.data(), sizeof ph);
        type = ph.p_type, offset = ph.p_offset, size = ph.p_filesz;
      }
      if (type != PT_INTERP || size == 0 || size > 4096) continue;
      std::string path(size, '\0');
      if (bytes_at(offset, size, path.data())) interpreter = path.substr(0, path.find('\0'));
    }
    if (interpreter) executable(*interpreter, subject, depth + 1);
  }

  void stdout_file() {
    if (!plan_.stdout_stderr_file) return;
    const std::string& path = *plan_.stdout_stderr_file;
    auto slash = path.rfind('/');
    std::string parent = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    if (auto problem = directory_problem(parent)) {
      add(ImageSubject::StdoutFile, "stdout-stderr-file " + path + ": " + *problem);
      return;
    }
    auto found = view_.resolve(path, false);
    if (found.node.type == NodeType::Missing || found.node.type == NodeType::Regular ||
        found.node.type == NodeType::Kernel)
      return;
    add(ImageSubject::StdoutFile,
        "stdout-stderr-file " + path + ": " +
            (found.problem.empty()
                 ? path + " is " + type_name(found.node.type) + ", not a regular file"
                 : found.problem));
  }

  const InstancePlan& plan_;
  HostLookups& host_;
  View view_;
  std::vector<ImageFinding> findings_;
};

}  // namespace

std::vector<ImageFinding> inspect_plan_files(const InstancePlan& plan, HostLookups* host) {
  HostLookups own;
  return Inspector(plan, host ? *host : own).run();
}

std::vector<std::string> inspect_devfs(const std::string& devfs_dir) {
  std::vector<std::string> out;
  struct stat st {};
  if (::stat(devfs_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    out.push_back("Devfs dir (" + devfs_dir +
                  ") must exist and contain device nodes (see lithos_mkdev)");
    return out;
  }
  std::string pts = devfs_dir + "/pts";
  if (::lstat(pts.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    out.push_back("Devfs dir (" + devfs_dir +
                  ") has no pts directory, where the knot mounts the container's devpts "
                  "(lithos_mkdev creates it)");
  return out;
}

InstancePlan plan_under_root(InstancePlan plan, const std::string& root) {
  if (root.empty()) return plan;
  plan.image_root = under_root(root, plan.image_root);
  plan.devfs_dir = under_root(root, plan.devfs_dir);
  for (auto& m : plan.mounts) {
    if (m.kind == MountPlan::Kind::Tmpfs) continue;
    m.source = under_root(root, m.source);
    m.confine_to = under_root(root, m.confine_to);
  }
  for (auto* source : {&plan.resolv_conf_source, &plan.hosts_copy_source})
    if (*source) **source = under_root(root, **source);
  if (plan.secrets)
    plan.secrets->private_key_path = under_root(root, plan.secrets->private_key_path);
  return plan;
}

}  // namespace lithos::policy
