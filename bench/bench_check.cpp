// Benchmark of the whole policy check against a bare libyaml event parse.
//
// Generates, in a temporary directory, a tree with one sandbox, N process
// entries (default 1000) and N images, each image holding its own container
// config (N distinct files, so nothing is shared or cached between entries).
// Then, in the same run and on the same files, it measures:
//   (a) ours: load_tree + check_tree exactly as `lithos_check` calls them
//       (every check, no plan kept; the warm-up round keeps every plan to
//       prove the tree gives one per entry), and
//   (b) raw:  for every one of the same files, read it and run
//       yaml_parser_parse until the stream ends (no tree, no decoding).
// Both sides include reading the files (open + read, page cache warm after
// a warm-up round), so the comparison is like for like. Reported: configs/s
// for each (the master, sandbox and process files count as configs too), and
// the ratio of times ours / raw, all as the median of R repetitions. That
// figure is warm and in-process, and says so when printed.
//
// Then the cold figure, as a CI job sees it: C rounds, each spawning a cold
// `lithos_check --config TREE/master.yaml` process and a cold `check_floor`
// process (bench/check_floor.c: one read per file, libyaml events from
// memory), in alternating order, timed by the wall clock from spawn to reap;
// minor faults come from wait4. Peak RSS comes from a pass of its own
// through bench_rss_trampoline (rss_trampoline.cpp): a child spawned by this
// large process would report this process's size. `lithos_check --version`
// is timed too: the cost of starting the binary at all.
//
// Usage: bench_check [ENTRIES] [REPETITIONS] [COLD_ROUNDS]
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lithos/policy/check.hpp"
#include "lithos/policy/image_inspect.hpp"
#include "lithos/policy/tree.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lithos::policy;
using Clock = std::chrono::steady_clock;

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string container_text(int i) {
  std::string n = std::to_string(i);
  return "kind: Daemon\n"
         "executable: /bin/busybox\n"
         "arguments: [httpd, -f, -p, \"@{port}\", -h, /www]\n"
         "variables:\n"
         "  port: !TcpPort\n"
         "  greeting: !Name\n"
         "environ:\n"
         "  GREETING: \"@{greeting} from @{lithos:name}\"\n"
         "  INDEX: \"" +
         n +
         "\"\n"
         "  MY_PID: \"@{lithos:pid}\"\n"
         "volumes:\n"
         "  /tmp: !Tmpfs {size: 16Mi, mode: 0o1777}\n"
         "  /state: !Statedir {}\n"
         "  /data: !Persistent {path: /data/app" +
         n +
         ", mkdir: true, mode: 0o700, user: 1000, group: 1000}\n"
         "user-id: 1000\n"
         "group-id: 1000\n"
         "memory-limit: 64Mi\n"
         "fileno-limit: 4096\n"
         "restart-timeout: 0.5\n"
         "kill-timeout: 2\n"
         "normal-exit-codes: [0, 2]\n"
         "tcp-ports:\n"
         "  \"@{port}\":\n"
         "    fd: 0\n"
         "    listen-backlog: 1024\n";
}

// Builds the tree; returns every file of it (the raw side parses these).
std::vector<fs::path> make_tree(const fs::path& root, int entries) {
  std::vector<fs::path> files;
  auto add = [&](const fs::path& p, const std::string& text) {
    write_file(p, text);
    files.push_back(p);
  };
  fs::create_directories(root / "dev" / "pts");
  add(root / "master.yaml",
      "runtime-dir: /run/lithos-bench\n"
      "devfs-dir: " +
          (root / "dev").string() +
          "\n"
          "default-log-dir: /tmp/lithos-bench/log\n"
          "cgroup-name: lithos.slice\n");
  add(root / "sandboxes" / "bench.yaml", "image-dir: " + (root / "images").string() +
                                             "\n"
                                             "allow-users: [1-65535]\n"
                                             "allow-groups: [1-65535]\n"
                                             "allow-tcp-ports: [8000-9999]\n"
                                             "default-user: 1000\n"
                                             "default-group: 1000\n"
                                             "writable-paths:\n"
                                             "  /data: /srv/bench/data\n");
  std::string processes;
  for (int i = 0; i < entries; ++i) {
    std::string n = std::to_string(i);
    processes += "app" + n + ":\n  instances: 1\n  image: img" + n +
                 "\n  config: /config/app.yaml\n  variables:\n    port: \"" +
                 std::to_string(8000 + i % 2000) + "\"\n    greeting: hello" + n + "\n";
  }
  add(root / "processes" / "bench.yaml", processes);
  // Images the knot could start (lithos_check inspects them): the mount
  // points, and a small static program as /bin/busybox, linked into each.
  const fs::path program = root / "exit0";
  std::string make =
      std::string(LITHOS_SOURCE_DIR) + "/corpus/make-exit0-elf.sh '" + program.string() + "'";
  if (std::system(make.c_str()) != 0) std::fprintf(stderr, "cannot run %s\n", make.c_str());
  for (int i = 0; i < entries; ++i) {
    const fs::path image = root / "images" / ("img" + std::to_string(i));
    add(image / "config" / "app.yaml", container_text(i));
    for (const char* dir : {"dev", "proc", "sys", "tmp", "state", "data", "bin"})
      fs::create_directories(image / dir);
    fs::create_hard_link(program, image / "bin" / "busybox");
  }
  return files;
}

struct OursResult {
  double seconds = 0;
  std::size_t plans = 0;
  std::size_t errors = 0;
  double inspection_seconds = 0;  // warm run only: inspection of its plans, again
};

// `keep_plans`: the warm-up keeps every plan to prove that all were built;
// timed runs call check_tree as lithos_check does, which builds each plan
// (that is part of checking) and keeps none.
// The share of the image inspection (image_inspect.hpp) in a check: the
// same calls on plans already built, warm and in-process.
double time_inspection(const std::vector<InstancePlan>& plans) {
  auto start = Clock::now();
  std::size_t findings = 0;
  HostLookups host;  // shared by the plans of one run, as check_tree does
  for (const auto& plan : plans) findings += inspect_plan_files(plan, &host).size();
  if (findings != 0) std::fprintf(stderr, "image inspection found %zu problems\n", findings);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

OursResult run_ours(const fs::path& root, bool keep_plans) {
  auto start = Clock::now();
  Diagnostics diags;
  auto tree = load_tree((root / "master.yaml").string(), LoadOptions{}, diags, nullptr);
  std::vector<InstancePlan> plans;
  CheckOptions options;
  options.inspect_images = true;  // as lithos_check sets it
  check_tree(tree, options, diags, nullptr, keep_plans ? &plans : nullptr);
  OursResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.plans = plans.size();
  r.errors = diags.error_count();
  if (keep_plans) r.inspection_seconds = time_inspection(plans);
  if (r.errors) {
    for (const auto& d : diags.items())
      std::fprintf(stderr, "%s:%d:%d: %s\n", d.file.c_str(), d.mark.line, d.mark.column,
                   d.message.c_str());
  }
  return r;
}

std::string read_all(const fs::path& path) {
  std::string text;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[65536];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

// Read + event parse of every file; returns seconds and the event count.
double run_raw(const std::vector<fs::path>& files, std::size_t& events) {
  events = 0;
  auto start = Clock::now();
  for (const auto& f : files) {
    std::string text = read_all(f);
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    bool done = false;
    while (!done) {
      yaml_event_t event;
      if (!yaml_parser_parse(&parser, &event)) break;
      done = event.type == YAML_STREAM_END_EVENT;
      ++events;
      yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of this thread: unlike wall time it leaves out what other
// tenants of a virtual machine take (steal), which is noise here.
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

long minor_faults() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct ColdRun {
  double seconds = 0;
  double minor_faults = 0;
  int status = -1;
};

extern "C" char** environ;

// One cold process, stdout and stderr to /dev/null: wall clock from
// posix_spawn to wait4, and the child's own rusage.
ColdRun run_cold(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  ColdRun run;
  auto start = Clock::now();
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) == 0) {
    rusage usage{};
    int status = 0;
    if (::wait4(pid, &status, 0, &usage) == pid) {
      run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      run.minor_faults = static_cast<double>(usage.ru_minflt);
      run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  return run;
}

struct ColdSide {
  ColdSide(std::string side_name, std::vector<std::string> side_argv)
      : name(std::move(side_name)), argv(std::move(side_argv)) {}
  std::string name;
  std::vector<std::string> argv;
  std::vector<double> seconds, rss, faults;
  int failures = 0;
};

// Peak RSS of one run of `argv`, through the small static trampoline.
double peak_rss_kib(const fs::path& trampoline, const fs::path& result,
                    const std::vector<std::string>& argv) {
  std::vector<std::string> wrapped = {trampoline.string(), result.string()};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  if (run_cold(wrapped).status != 0) return -1;
  std::ifstream in(result);
  long kib = -1;
  int status = -1;
  in >> kib >> status;
  return status == 0 ? static_cast<double>(kib) : -1;
}

// Alternating cold rounds; returns false when a side failed to run cleanly.
bool measure_cold(std::vector<ColdSide>& sides, int rounds, const fs::path& trampoline,
                  const fs::path& scratch) {
  for (auto& side : sides)
    for (int w = 0; w < 3; ++w) run_cold(side.argv);  // page cache, dentries
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t k = 0; k < sides.size(); ++k) {
      auto& side = sides[(k + static_cast<std::size_t>(r)) % sides.size()];
      ColdRun run = run_cold(side.argv);
      if (run.status != 0) {
        ++side.failures;
        continue;
      }
      side.seconds.push_back(run.seconds);
      side.faults.push_back(run.minor_faults);
    }
  }
  for (auto& side : sides) {
    for (int r = 0; r < 5; ++r) {
      double kib = peak_rss_kib(trampoline, scratch / "rss.result", side.argv);
      if (kib < 0)
        ++side.failures;
      else
        side.rss.push_back(kib);
    }
  }
  bool clean = true;
  for (const auto& side : sides) {
    if (side.failures != 0) {
      std::fprintf(stderr, "%s: %d runs did not exit 0\n", side.name.c_str(), side.failures);
      clean = false;
    }
  }
  return clean;
}

fs::path own_directory() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path();
}

}  // namespace

int main(int argc, char** argv) {
  const int entries = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1000;
  const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 9;
  const int cold_rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 31;

  std::string pattern = (fs::temp_directory_path() / "lithos-bench-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path root = pattern;
  const auto files = make_tree(root, entries);
  std::uintmax_t bytes = 0;
  for (const auto& f : files) bytes += fs::file_size(f);

  // Warm-up (page cache, allocator) and a correctness check of the tree.
  auto warm = run_ours(root, true);
  std::size_t events = 0;
  run_raw(files, events);
  if (warm.errors != 0 || warm.plans != static_cast<std::size_t>(entries)) {
    std::fprintf(stderr, "bench tree is not valid: %zu errors, %zu plans\n", warm.errors,
                 warm.plans);
    fs::remove_all(root);
    return 1;
  }

  // Minor page faults are counted per side: on virtual machines a fault
  // can cost more than parsing a small file.
  std::vector<double> ours, raw, ratios, ours_faults, raw_faults, ours_cpu, raw_cpu, cpu_ratios;
  auto timed_ours = [&] {
    long before = minor_faults();
    double cpu = thread_cpu_seconds();
    double seconds = run_ours(root, false).seconds;
    ours_cpu.push_back(thread_cpu_seconds() - cpu);
    ours_faults.push_back(static_cast<double>(minor_faults() - before));
    return seconds;
  };
  auto timed_raw = [&] {
    long before = minor_faults();
    double cpu = thread_cpu_seconds();
    double seconds = run_raw(files, events);
    raw_cpu.push_back(thread_cpu_seconds() - cpu);
    raw_faults.push_back(static_cast<double>(minor_faults() - before));
    return seconds;
  };
  for (int r = 0; r < reps; ++r) {
    // Alternate the order so that neither side always runs on a warmer cache.
    double a = 0, b = 0;
    if (r % 2 == 0) {
      a = timed_ours();
      b = timed_raw();
    } else {
      b = timed_raw();
      a = timed_ours();
    }
    ours.push_back(a);
    raw.push_back(b);
    ratios.push_back(a / b);
    cpu_ratios.push_back(ours_cpu.back() / raw_cpu.back());
  }

  // Cold processes, as CI runs them.
  const fs::path bin = own_directory();
  const fs::path list = root / "files.list";
  {
    std::string text;
    for (const auto& f : files) text += f.string() + "\n";
    write_file(list, text);
  }
  std::vector<ColdSide> cold = {
      {"lithos_check",
       {(bin / "lithos_check").string(), "--config", (root / "master.yaml").string()}},
      {"check_floor", {(bin / "check_floor").string(), list.string()}},
      {"lithos_check --version", {(bin / "lithos_check").string(), "--version"}},
  };
  const bool cold_clean = measure_cold(cold, cold_rounds, bin / "bench_rss_trampoline", root);
  if (std::getenv("BENCH_CHECK_KEEP_TREE"))  // to profile lithos_check on it
    std::printf("tree kept in %s\n", root.c_str());
  else
    fs::remove_all(root);
  if (!cold_clean) return 1;

  const double configs = static_cast<double>(files.size());
  const double t_ours = median(ours), t_raw = median(raw);
  std::printf(
      "tree: 1 master, 1 sandbox, 1 process config with %d entries, %d images with one "
      "container config each\n",
      entries, entries);
  std::printf(
      "files: %zu (%ju bytes, %zu libyaml events), file reads included on both sides, "
      "median of %d runs\n",
      files.size(), bytes, events, reps);
  std::printf("ours (load_tree + check_tree, %d entries): %8.2f ms  %10.0f configs/s\n", entries,
              t_ours * 1e3, configs / t_ours);
  std::printf("raw libyaml (read + yaml_parser_parse):   %8.2f ms  %10.0f configs/s\n", t_raw * 1e3,
              configs / t_raw);
  std::printf("  of ours, image inspection (warm, in-process, once): %8.2f ms\n",
              warm.inspection_seconds * 1e3);
  std::printf("mark tables filled on demand (0 for a clean tree): %zu\n",
              schema::MarkTable::demand_fills());
  std::printf("minor page faults per run (median): ours %.0f, raw libyaml %.0f\n",
              median(ours_faults), median(raw_faults));
  std::printf(
      "thread CPU time: ours %.2f ms, raw libyaml %.2f ms, ratio %.2f (median of per-run "
      "ratios %.2f)\n",
      median(ours_cpu) * 1e3, median(raw_cpu) * 1e3, median(ours_cpu) / median(raw_cpu),
      median(cpu_ratios));
  std::printf("warm, in-process ratio ours/raw: %.2f (median of per-run ratios %.2f)\n",
              t_ours / t_raw, median(ratios));
  std::printf("\ncold processes, wall clock spawn to reap, %d alternating rounds (medians):\n",
              cold_rounds);
  for (const auto& side : cold)
    std::printf("  %-24s %8.2f ms  peak RSS %7.0f KiB  minor faults %6.0f\n", side.name.c_str(),
                median(side.seconds) * 1e3, median(side.rss), median(side.faults));
  std::printf("  (peak RSS: median of 5 more runs each through bench_rss_trampoline)\n");
  const double time_ratio = median(cold[0].seconds) / median(cold[1].seconds);
  const double rss_ratio = median(cold[0].rss) / median(cold[1].rss);
  std::printf(
      "cold ratio lithos_check/floor: time %.2f (target <= 1.5), peak RSS %.2f (target <= 2)\n",
      time_ratio, rss_ratio);
  return 0;
}
