// procfs: what lithos_ps (and anything else that inspects running lithos
// processes) reads from /proc and from cgroup files.
//
// Every parser takes the file's contents and is pure, so the odd cases
// (a comm with spaces and parentheses, kernel threads without VmRSS, v1, v2
// and hybrid cgroup lines) are tested from fixture strings. The readers at
// the end are thin: open, read, call the parser. A process that disappears
// while it is being read is not an error; it is simply not in the table.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/invocation.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/error.hpp"

namespace lithos::runtime::procfs {

// ---- /proc/PID/stat ----------------------------------------------------------

// The fields of /proc/PID/stat that lithos uses (proc(5) numbering in brackets).
struct ProcStat {
  pid_t pid = 0;                  // (1)
  std::string comm;               // (2) without the parentheses; may contain ' ', ')' and '('
  char state = '?';               // (3)
  pid_t ppid = 0;                 // (4)
  std::uint64_t utime = 0;        // (14) clock ticks
  std::uint64_t stime = 0;        // (15)
  std::uint64_t cutime = 0;       // (16) waited-for children, clock ticks
  std::uint64_t cstime = 0;       // (17)
  std::uint64_t num_threads = 0;  // (20)
  std::uint64_t starttime = 0;    // (22) clock ticks after boot
  std::uint64_t vsize = 0;        // (23) bytes
  std::uint64_t rss_pages = 0;    // (24) pages
  friend bool operator==(const ProcStat&, const ProcStat&) = default;
};
// The comm is taken between the first '(' and the *last* ')', so a process
// name like "a) (b" cannot shift the fields. Negative values of the child
// times (never seen in practice) read as 0.
Result<ProcStat> parse_stat(std::string_view text);
// The inverse, with zeros for the fields not kept (fixtures, properties).
std::string format_stat(const ProcStat& stat);

// ---- /proc/PID/status ----------------------------------------------------------

struct ProcStatus {
  std::string name;  // "Name:" with the kernel's escapes (\n, \\) decoded
  pid_t ppid = 0;
  std::uint64_t threads = 0;
  std::uint64_t vm_rss = 0;   // bytes (the file says kB = 1024 bytes); 0 if absent
  std::uint64_t vm_swap = 0;  // bytes; 0 if absent (kernel threads have neither)
  friend bool operator==(const ProcStatus&, const ProcStatus&) = default;
};
// A status without "Name:" is an error; unknown lines are ignored.
Result<ProcStatus> parse_status(std::string_view text);

// /proc/PID/cmdline: NUL-separated; a missing final NUL is tolerated; empty
// for kernel threads and zombies.
std::vector<std::string> parse_cmdline(std::string_view bytes);

// /proc/PID/statm: resident pages (second field).
Result<std::uint64_t> parse_statm_resident(std::string_view text);

// /proc/stat "btime" (seconds since the epoch at boot).
Result<std::uint64_t> parse_boot_time(std::string_view proc_stat);

// ---- recognising lithos processes by their argv -------------------------------

// lithos_tree [-C FILE | --config FILE] [--log-stderr] [--log-level LEVEL]
// (`--opt V` or `--opt=V`, `-CFILE`, `--` ends the options). nullopt when
// the argv does not parse.
struct TreeArgs {
  std::string config = "/etc/lithos/master.yaml";
};
std::optional<TreeArgs> parse_tree_argv(const std::vector<std::string>& argv);

// A knot's argv (policy::KnotInvocation), accepted only when `--config` is a
// valid instance identity and `--log-level` a known level.
std::optional<policy::KnotInvocation> parse_knot_argv(const std::vector<std::string>& argv);

// ---- cgroups of an instance ---------------------------------------------------

// The accounting files of an instance's own cgroup (docs/cgroups.md: the
// knot joins <cgroup-name>/SANDBOX:CHILD.N.scope). Only hierarchies where the
// knot's path ends in that scope count: a knot left in the tree's cgroup has
// no numbers of its own.
struct CgroupFiles {
  std::optional<std::string> cpuacct_usage;          // v1, nanoseconds
  std::optional<std::string> cpu_stat;               // v2, "usage_usec N"
  std::optional<std::string> memory_usage_in_bytes;  // v1, bytes
  std::optional<std::string> memory_current;         // v2, bytes
  bool any() const { return cpuacct_usage || cpu_stat || memory_usage_in_bytes || memory_current; }
};
// `mounts`: the reader's /proc/self/mountinfo; `lines`: /proc/KNOT/cgroup.
CgroupFiles instance_cgroup_files(const std::vector<MountInfoEntry>& mounts,
                                  const std::vector<ProcCgroupLine>& lines,
                                  std::string_view instance_name);

// A file holding one unsigned decimal (cpuacct.usage, memory.current, ...).
Result<std::uint64_t> parse_single_value(std::string_view text);
// cpu.stat: the value of "usage_usec".
Result<std::uint64_t> parse_cpu_stat_usage_usec(std::string_view text);

struct CgroupUsage {
  std::optional<std::uint64_t> cpu_usec;
  std::string cpu_file;
  std::optional<std::uint64_t> memory_bytes;
  std::string memory_file;
};
// Reads the files found by instance_cgroup_files: v1 first (on a hybrid host
// the v1 hierarchy is the one lithos places cpu and memory in), then v2.
CgroupUsage read_cgroup_usage(const CgroupFiles& files);

// ---- Prometheus text files (master `metrics-dir`) -------------------------------

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  friend bool operator==(const MetricSample&, const MetricSample&) = default;
};
// The text exposition format: comments and blank lines skipped; a malformed
// line is skipped too (one bad line must not hide the rest).
std::vector<MetricSample> parse_prometheus_text(std::string_view text);

// ---- readers (touch /proc) ------------------------------------------------------

struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::string name;                                            // status Name
  std::vector<std::string> argv;                               // cmdline
  std::uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;  // clock ticks
  std::uint64_t starttime = 0;                                 // ticks after boot
  std::uint64_t threads = 0;
  std::uint64_t mem_rss = 0, mem_swap = 0;  // bytes
};
using ProcessTable = std::vector<ProcessInfo>;

// The contents of a file as a string (procfs files report size 0, so this
// reads until EOF). A failure carries the path and errno.
Result<std::string> read_file(const std::string& path);

// One process; nullopt when it vanished or is unreadable.
std::optional<ProcessInfo> read_process(const std::string& proc_root, pid_t pid);
// Every numeric entry of `proc_root`, sorted by pid. Failing to open the
// directory is an error; processes that vanish meanwhile are left out.
Result<ProcessTable> read_process_table(const std::string& proc_root = "/proc");

// The instance's cgroup usage, from /proc/self/mountinfo and /proc/PID/cgroup.
CgroupUsage read_instance_cgroup(const std::vector<MountInfoEntry>& mounts, pid_t knot_pid,
                                 std::string_view instance_name,
                                 const std::string& proc_root = "/proc");

}  // namespace lithos::runtime::procfs
