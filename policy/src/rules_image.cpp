// What the knot will find when it starts an instance (docs/lithos_check.md,
// "What passes is what runs"): the image itself, and the findings of
// image_inspect.hpp, each reported on the key that causes it.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "check_internal.hpp"

namespace lithos::policy::check_internal {

// An absent or unreadable image is one error per sandbox and image, on
// the first entry that names it; its entries are not checked further.
bool TreeChecker::image_present(const EntryContext& e) {
  auto key = e.sandbox.name + "\n" + e.image_root;
  auto known = image_present_.find(key);
  if (known != image_present_.end()) return known->second;
  struct stat st {};
  std::string problem;
  if (::stat(e.image_on_disk.c_str(), &st) != 0)
    problem = errno == ENOENT ? " does not exist (not built or not unpacked yet)"
                              : " cannot be read (" + std::string(std::strerror(errno)) + ")";
  else if (!S_ISDIR(st.st_mode))
    problem = " is not a directory";
  if (!problem.empty() && options_.offline)
    report_.add(
        Severity::Note, e.sandbox.processes->file, pmark(e, ".image"), Code::Image,
        "image " + e.image_on_disk + problem + ": its container config is not checked (--offline)");
  else if (!problem.empty())
    perror(e, ".image", Code::Image, "image " + e.image_on_disk + problem);
  return image_present_.emplace(key, problem.empty()).first->second;
}

// Findings of image_inspect.hpp, each on the key that causes it. False
// when one of them is an error (reported now or already, for the image).
bool TreeChecker::report_image_findings(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                        const InstancePlan& plan) {
  const auto& sandbox = *e.sandbox.config;
  auto on_container = [&](const std::string& key, Code code, std::string message) {
    // A defaulted key is not in the file: point at the config as a whole.
    Mark mark = doc.marks.has(key) ? doc.marks.find(key) : Mark{};
    report_.error(doc.file, mark, code, std::move(message));
  };
  bool startable = true;
  for (auto& f : inspect_plan_files(plan_under_root(plan, options_.host_root), &host_lookups_)) {
    // Offline, what lies outside the image is not there to look at.
    const bool on_host = f.subject == ImageSubject::VolumeSource ||
                         f.subject == ImageSubject::ResolvSource ||
                         f.subject == ImageSubject::HostsSource ||
                         f.subject == ImageSubject::Bridge || f.subject == ImageSubject::Secrets;
    if (on_host && options_.offline) {
      report_.add(Severity::Note, f.subject == ImageSubject::Secrets ? doc.file : sandbox.file, {},
                  Code::HostFile, "not verified (--offline): " + f.message);
      continue;
    }
    if (!f.warning) startable = false;
    switch (f.subject) {
      case ImageSubject::Image:
        // Once per sandbox and image, like an absent one (image_present).
        if (image_reported_.insert(e.sandbox.name + "\n" + e.image_root + "\n" + f.message).second)
          perror(e, ".image", Code::Image, std::move(f.message));
        break;
      case ImageSubject::Executable:
        on_container(".executable", Code::Executable, std::move(f.message));
        break;
      case ImageSubject::Workdir:
        on_container(".workdir", Code::Workdir, std::move(f.message));
        break;
      case ImageSubject::VolumeTarget:
      case ImageSubject::VolumeSource: {
        const std::string& volume = plan.mounts[f.volume].volume;
        std::string key = key_path(".volumes", volume);
        if (doc.marks.has(key)) {
          report_.error(doc.file, doc.marks.find(key), Code::Volume, std::move(f.message));
        } else {  // a sandbox's readonly-paths/writable-paths entry
          report_.error(doc.file, {}, Code::Volume, std::move(f.message));
        }
        break;
      }
      case ImageSubject::StdoutFile:
        on_container(".stdout-stderr-file", Code::StdoutFile, std::move(f.message));
        break;
      case ImageSubject::ResolvConf:
        on_container(".resolv-conf.mount", Code::Image, std::move(f.message));
        break;
      case ImageSubject::Hosts:
        on_container(".hosts-file.mount", Code::Image, std::move(f.message));
        break;
      case ImageSubject::ResolvSource:
        report_.error(sandbox.file, sandbox.marks.find(".resolv-conf"), Code::HostFile,
                      std::move(f.message));
        break;
      case ImageSubject::HostsSource:
        report_.error(sandbox.file, sandbox.marks.find(".hosts-file"), Code::HostFile,
                      std::move(f.message));
        break;
      case ImageSubject::Secrets: {
        const char* key =
            doc.marks.has(".secret-environ") ? ".secret-environ" : ".secret-environ-file";
        on_container(key, Code::SecretConfig, std::move(f.message));
        break;
      }
      case ImageSubject::Bridge:
        report_.warning(sandbox.file, sandbox.marks.find(".bridged-network.bridge"), Code::Bridge,
                        std::move(f.message));
        break;
    }
  }
  return startable;
}

}  // namespace lithos::policy::check_internal
