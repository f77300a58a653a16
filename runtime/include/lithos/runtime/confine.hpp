// Confinement of a process that parses untrusted configuration (YAML from
// images) on behalf of root: the tree's config-reading child, and later
// lithos_cmd and lithos_switch. A parser bug exploited there must neither
// write to the host's files, nor signal or trace other processes, nor grow
// without bound. docs/tree.md ("The config reader") says what it keeps.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "lithos/runtime/error.hpp"

namespace lithos::runtime {

struct ConfineOptions {
  // The identity the reader continues as: "nobody" owns no file that
  // matters, so without CAP_DAC_OVERRIDE nothing of root's is writable.
  uid_t uid = 65534;
  gid_t gid = 65534;
  // CAP_DAC_READ_SEARCH: read any file and search any directory, as root
  // would (image dirs and configs may be private to another owner). It
  // grants no write. Every other capability is dropped.
  bool keep_read_search = true;
  // Descriptors kept besides 0, 1 and 2 (the result pipe, the log);
  // every other one is closed.
  std::vector<int> keep_fds;
  // RLIMIT_AS (not applied in sanitizer builds, whose shadow memory is
  // terabytes of address space) and RLIMIT_CPU (soft = hard: SIGKILL).
  // Both only ever lower: a stricter hard limit already set stays.
  rlim_t address_space_bytes = rlim_t{512} << 20;
  rlim_t cpu_seconds = 30;
};

// In the process to confine (single-threaded; it may allocate): closes the
// other descriptors, sets the limits (and no core dumps), changes to
// `uid`/`gid` without supplementary groups, keeps only CAP_DAC_READ_SEARCH
// (or nothing), sets no_new_privs, parent-death SIGKILL and not-dumpable,
// and installs a default-deny seccomp filter that allows what reading,
// parsing and reporting need (read-only opens, memory, write/send on open
// descriptors, exit); anything else fails with EPERM. Irreversible. On
// failure the process is partly confined and should exit.
Result<void> confine_config_reader(const ConfineOptions& options = {});

// The last file a config reader opened, in a page shared with its parent
// (policy::yaml::set_read_observer): when the reader crashes, hits a limit or
// times out, its parent reports the file it was reading. Only one reader
// page is installed per process (the child's).
class ReaderProgress {
 public:
  // An anonymous shared page, made before the reader is forked.
  static Result<ReaderProgress> create();
  ReaderProgress(ReaderProgress&& other) noexcept;
  ReaderProgress& operator=(ReaderProgress&&) = delete;
  ReaderProgress(const ReaderProgress&) = delete;
  ~ReaderProgress();
  // In the reader: record every file read from now on in this page.
  void install() const noexcept;
  // In the parent: the last file recorded ("" if none), printable bytes
  // only and bounded: the page is written by an untrusted process.
  std::string last_file() const;
  // " while reading FILE", or "" when nothing was recorded.
  std::string while_reading() const;

 private:
  explicit ReaderProgress(void* page) : page_(page) {}
  void* page_ = nullptr;
};

// Runs `read` in a child confined as above (plus `options`) and returns
// what it returned: its text, or its error as a StepError of step
// "config_reader". A child that crashes, is killed by a limit, exits
// otherwise or outlives `timeout` (then killed) is an error saying so and
// naming the last file it opened (ReaderProgress);
// the caller adds which sandbox and file it was reading. Used by
// lithos_cmd and lithos_switch (the tree has a reader of its own that runs
// alongside its start-up).
Result<std::string> run_confined_reader(
    const std::function<lithos::Result<std::string, std::string>()>& read,
    std::chrono::milliseconds timeout, const ConfineOptions& options = {});

}  // namespace lithos::runtime
