// What the knot will find on disk when it executes a plan: the image, the
// devfs, the volume sources, the mount points, the executable. lithos_check
// runs this on every plan it builds so that a config it passes is one the
// knot starts ("What passes is what runs", docs/lithos_check.md): each
// refusal the knot can make from these inputs has a finding here.
//
// Read-only: lstat, readlink and reading the first bytes of the executable;
// no symlink is followed on the host except the image and devfs roots the
// operator configured (the knot opens those the same way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/plan.hpp"

namespace lithos::policy {

// What a finding is about, so that the caller can point at the config key
// that causes it.
enum class ImageSubject : std::uint8_t {
  Image,         // the image directory itself, or /dev, /proc, /sys in it
  Executable,    // the executable, or the interpreter it needs
  Workdir,       // workdir
  VolumeTarget,  // plan.mounts[volume]'s mount point
  VolumeSource,  // plan.mounts[volume]'s host directory
  StdoutFile,    // stdout-stderr-file
  ResolvConf,    // /etc/resolv.conf with `mount: true`
  ResolvSource,  // the sandbox's resolv-conf host file
  Hosts,         // /etc/hosts with `mount: true`
  HostsSource,   // the sandbox's hosts-file host file
  Bridge,        // the bridge of a bridged network (host state: a warning)
  Secrets,       // the private key, or the secrets it must decrypt
};

struct ImageFinding {
  ImageSubject subject = ImageSubject::Image;
  std::size_t volume = 0;  // index into plan.mounts (Volume* subjects)
  bool warning = false;    // host state that may yet change, not a refusal
  std::string message;
};

// Answers about host paths outside any image (bind sources, the resolv.conf
// and hosts sources, bridges): the same for every plan of one check run, so
// a run that inspects many plans passes one of these to look each up once.
// Empty optional = no problem.
struct HostLookups {
  struct Entry {
    int err = 0;  // of lstat; 0: `mode` is the type
    unsigned mode = 0;
  };
  std::map<std::string, Entry> lstats;  // bind sources' path prefixes
  std::map<std::string, std::optional<std::string>> host_files;
  std::map<std::string, bool> bridges;
};

// Every finding for one plan, in the knot's step order. An absent or
// unreadable image gives one Image finding and nothing else. `host` may be
// shared by the calls of one run (see HostLookups); null looks up afresh.
std::vector<ImageFinding> inspect_plan_files(const InstancePlan& plan, HostLookups* host = nullptr);

// The plan with every host path it names (image, devfs, bind sources, the
// resolv.conf and hosts sources, the secrets key) looked for below `root`
// instead of / (lithos_check --root). Container paths are unchanged.
InstancePlan plan_under_root(InstancePlan plan, const std::string& root);

// The devfs directory's own findings (checked once per master): it must be a
// directory with a `pts` directory, where the knot mounts the container's
// devpts. Empty when it is complete.
std::vector<std::string> inspect_devfs(const std::string& devfs_dir);

}  // namespace lithos::policy
