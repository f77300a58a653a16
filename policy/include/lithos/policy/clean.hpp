// lithos_clean's decisions (docs/lithos_clean.md): which image directories
// the host still needs and why, from the current process configs, each
// sandbox's used-images-list and the config log's history window; and, for
// the directories found on disk, which are unused. Pure: the caller reads
// the files (runtime/clean.hpp) and hands their text in.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/tree.hpp"

namespace lithos::policy::clean {

// --keep-recent DELTA: one or more `<integer><unit>` spans, spaces allowed
// around the units (`1h`, `2d 12h`, `5 min`). Units: ns nsec nanos, us usec,
// ms msec millis, s sec secs second seconds, m min mins minute minutes,
// h hr hrs hour hours, d day days, w week weeks, M month months (30.44 d),
// y year years (365.25 d). nullopt when malformed or beyond ~292 years.
std::optional<std::chrono::nanoseconds> parse_span(std::string_view text);

// An RFC 3339 time (`2018-09-11T10:20:30Z`, fractions and offsets allowed)
// as seconds since the epoch; nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

// One line of a config log (`<config-log-dir>/<sandbox>.log[.N]`):
// `TIME JSON`, the JSON an object of process entries each with a `kind`.
struct LogEntry {
  bool broken = false;
  std::int64_t time = 0;            // 0 when the time does not parse
  std::string content;              // canonical JSON: equal configs compare equal
  std::vector<std::string> images;  // the image of every entry, any kind
  std::string error;                // why it is broken
  std::string file;                 // where it was read, for messages
  std::size_t line = 0;
};
LogEntry parse_log_line(std::string_view line);

// Entries of one log file text, newest (last line) first; blank lines skipped.
std::vector<LogEntry> log_entries_newest_first(std::string_view text, const std::string& file);

struct HistoryOptions {
  std::uint32_t versions_min = 0;      // --versions-min
  std::uint32_t versions_max = 1000;   // --versions-max
  std::optional<std::int64_t> cutoff;  // now - --history-days, seconds since the epoch
};

// The history window over all entries of a sandbox's log files, newest
// first (the original mixed the order of its files; see docs/lithos_clean.md).
// Runs of consecutive equal entries count as one configuration, in use
// from its oldest line on. Kept: the newest `versions_max` configurations;
// with a cut-off only those in use after it (every one newer than it and
// the one that was current at it), but never fewer than `versions_min`.
// The kept ones are always a prefix. Returns, per entry, whether it is kept.
std::vector<bool> history_window(const std::vector<LogEntry>& newest_first,
                                 const HistoryOptions& options);

// Whether reading older files can still change history_window: false once
// more than `versions_max` configurations are known.
bool history_needs_more(const std::vector<LogEntry>& newest_first, const HistoryOptions& options);

// The oldest rotated config log the tree writes: `<sandbox>.log.100`.
inline constexpr int kMaxRotatedLog = 100;

// What a file read returns to find_used_images.
struct FileText {
  enum class Status { Ok, Missing, Error } status = Status::Ok;
  std::string text;
  std::string error;  // Status::Error: why it cannot be read
};
using ReadFile = std::function<FileText(const std::string& path)>;

// One image-dir of the host and what of it is in use.
struct ImageDir {
  std::string path;                    // as configured (image-dir)
  std::uint32_t levels = 1;            // image-dir-levels
  std::vector<std::string> sandboxes;  // the sandboxes that name it
  // Why nothing of it may be cleaned (auto-clean conflicts, a broken config
  // log line in the window, an unreadable used-images-list); empty: cleanable.
  std::vector<std::string> problems;
  // Image (relative, normalised: `app/v1`) -> why it is in use (the first reason found).
  std::map<std::string, std::string> used;
};

struct UsedImages {
  std::vector<ImageDir> dirs;            // auto-clean dirs, in the order first named
  std::vector<std::string> kept_dirs;    // auto-clean: false dirs, never looked into
  std::vector<std::string> unused_logs;  // rotated logs outside every window
  std::vector<std::string> errors;       // fatal: nothing may be cleaned (exit 1)
  std::vector<std::string> warnings;
};

// Every sandbox of `tree`: its current process config (every entry, any kind),
// then its used-images-list if set, else its config log history (master
// config-log-dir). A master, sandbox or process config that does not parse
// is an error: nothing can be known to be unused then. A missing process
// config is a sandbox with nothing deployed.
UsedImages find_used_images(const ConfigTree& tree, const HistoryOptions& options,
                            const ReadFile& read);

// One directory found at depth `levels` below an image-dir.
struct Candidate {
  std::string image;  // relative: `app/v1`
  std::uint64_t dev = 0, ino = 0;
  // Birth time if the file system reports one, and modification time, in
  // ns since the epoch; nullopt when unknown (an unknown mtime keeps it).
  std::optional<std::int64_t> birth_ns, mtime_ns;
  // Another mount sits on it (a bind mount, even of the same file system):
  // never deleted.
  bool mount_point = false;
};

struct Decision {
  std::string image;
  bool unused = false;
  std::string reason;  // why it is kept, or "not named anywhere"
};

// The root directories of running processes: (dev, ino) -> a pid using it.
using RunningRoots = std::map<std::pair<std::uint64_t, std::uint64_t>, int>;
// The directories the used image names lead to when followed (a name may be
// a symlink to a versioned directory): (dev, ino) -> why it is used.
using NamedTargets = std::map<std::pair<std::uint64_t, std::uint64_t>, std::string>;

// Unused: not in `dir.used`, not what a used name leads to, not the root of
// a running process, not a mount point, not changed within `keep_recent` of
// `now_ns`. One decision per candidate, same order.
std::vector<Decision> decide(const ImageDir& dir, const std::vector<Candidate>& candidates,
                             const NamedTargets& named, const RunningRoots& running,
                             std::optional<std::chrono::nanoseconds> keep_recent,
                             std::int64_t now_ns);

}  // namespace lithos::policy::clean
