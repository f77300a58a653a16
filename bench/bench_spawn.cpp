// What a start costs the tree for the descriptors it holds (docs/tree.md,
// "The loop"): the tree keeps one pidfd per knot, all at 1024 and up, and
// spawns each knot in new namespaces. A plain clone copies the whole
// descriptor table and the exec closes the copies again; with
// SpawnOptions::fd_table_below the child shares the table and its first act
// keeps only the descriptors below the limit.
//
// For each count of held descriptors (0, 1000, 5000 by default) this times
// runtime::spawn_process of /bin/true in the knot namespaces, copying the
// table and sharing it, alternately in one run, wall clock from the call to
// its return (the child has exec'd by then); the child is reaped outside the
// timing. The 0-descriptor rows are the floor: a start with nothing to copy.
//
// Usage: bench_spawn [SPAWNS] [COUNT...]   (SPAWNS default 300, as root)
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/spawn.hpp"

namespace {

using lithos::runtime::SpawnOptions;
using lithos::runtime::UniqueFd;

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

// Milliseconds for one spawn to exec, or a negative value when it failed.
double time_spawn(bool share_table) {
  SpawnOptions options;
  options.path = "/bin/true";
  options.argv = {"true"};
  options.namespaces = lithos::runtime::kKnotNamespaces;
  options.new_session = true;
  options.fd_table_below = share_table ? 1024 : 0;
  const auto start = std::chrono::steady_clock::now();
  auto spawned = lithos::runtime::spawn_process(options);
  const auto end = std::chrono::steady_clock::now();
  if (!spawned) {
    std::fprintf(stderr, "bench_spawn: %s\n", spawned.error().message.c_str());
    return -1;
  }
  (void)lithos::runtime::wait_process(*spawned);
  return std::chrono::duration<double, std::milli>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_spawn: run as root (new namespaces)\n");
    return 2;
  }
  const int spawns = argc > 1 ? std::atoi(argv[1]) : 300;
  std::vector<int> counts;
  for (int i = 2; i < argc; ++i) counts.push_back(std::atoi(argv[i]));
  if (counts.empty()) counts = {0, 1000, 5000};
  if (spawns <= 0) {
    std::fprintf(stderr, "usage: bench_spawn [SPAWNS] [COUNT...]\n");
    return 2;
  }
  const int most = *std::max_element(counts.begin(), counts.end());
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < static_cast<rlim_t>(1024 + most + 16)) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, static_cast<rlim_t>(1024 + most + 16));
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }

  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf(
      "%d spawns of /bin/true per row in the knot namespaces (%s), copy and share "
      "alternating\n",
      spawns, when);
  std::printf("%-22s %-10s %9s %9s %9s\n", "descriptors held", "table", "median", "p90", "mean");
  std::printf("%-22s %-10s %9s %9s %9s\n", "", "", "ms", "ms", "ms");
  for (int count : counts) {
    UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    std::vector<UniqueFd> held;
    for (int i = 0; i < count; ++i) {
      UniqueFd copy(::fcntl(null.get(), F_DUPFD_CLOEXEC, 1024));
      if (!copy) {
        std::fprintf(stderr, "bench_spawn: cannot hold %d descriptors\n", count);
        return 1;
      }
      held.push_back(std::move(copy));
    }
    std::vector<double> copied, shared;
    for (int warm = 0; warm < 5; ++warm) (void)time_spawn(warm % 2 == 0);
    for (int round = 0; round < spawns; ++round) {
      const bool share_first = round % 2 == 0;
      for (bool share : {share_first, !share_first}) {
        const double ms = time_spawn(share);
        if (ms < 0) return 1;
        (share ? shared : copied).push_back(ms);
      }
    }
    auto row = [&](const char* how, const std::vector<double>& ms) {
      double sum = 0;
      for (double v : ms) sum += v;
      std::printf("%-22d %-10s %9.3f %9.3f %9.3f\n", count, how, percentile(ms, 0.5),
                  percentile(ms, 0.9), sum / static_cast<double>(ms.size()));
    };
    row("copied", copied);
    row("shared", shared);
  }
  return 0;
}
