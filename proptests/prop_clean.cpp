// Properties of lithos_clean's decisions (policy/clean.hpp):
//  * what the tree writes to the config log (process_config_json), the
//    cleaner reads back: not broken, the same images, equal configs equal;
//  * the history window is a prefix of the newest-first entries, keeps
//    between min(versions-min, all) and versions-max configurations, every
//    configuration in use after the cut-off within versions-max, and all
//    lines of one configuration alike;
//  * parse_span adds up what it is given; parse_rfc3339 reads every UTC time;
//  * decide never calls unused an image that a config names (directly or
//    through a symlink), a running process has as its root or something is
//    mounted on, nor, with --keep-recent, one changed within it.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <ctime>
#include <set>

#include "generators.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/clean.hpp"

namespace {

using namespace lithos::policy;
using namespace lithos::policy::clean;
using lithos::proptest::gen_value;

std::string utc(std::int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[40];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// Entries of configurations "0".."3" (equal number, equal config) at
// non-increasing times, newest first, as the log files hold them.
rc::Gen<std::vector<LogEntry>> history() {
  return rc::gen::map(rc::gen::container<std::vector<std::pair<int, int>>>(
                          rc::gen::pair(rc::gen::inRange(0, 4), rc::gen::inRange(0, 50))),
                      [](const std::vector<std::pair<int, int>>& steps) {
                        std::vector<LogEntry> out;
                        std::int64_t time = 10000;
                        for (const auto& [config, gap] : steps) {
                          time -= gap;
                          LogEntry e;
                          e.time = time;
                          e.content = std::to_string(config);
                          e.images = {"img" + std::to_string(config)};
                          out.push_back(e);
                        }
                        return out;
                      });
}

// Index of the configuration (run of equal consecutive entries) of each entry.
std::vector<std::size_t> run_index(const std::vector<LogEntry>& entries) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < entries.size(); ++i)
    out.push_back(i == 0 ? 0 : out.back() + (entries[i].content != entries[i - 1].content));
  return out;
}

}  // namespace

RC_GTEST_PROP(CleanLog, WhatTheTreeWritesTheCleanerReads, ()) {
  auto config = *gen_value<ProcessConfigCodec>();
  auto time = *rc::gen::inRange<std::int64_t>(0, 4102444800);  // up to 2100
  auto entry = parse_log_line(utc(time) + " " + process_config_json(config));
  RC_ASSERT(!entry.broken);
  RC_ASSERT(entry.time == time);
  std::multiset<std::string> expected, got(entry.images.begin(), entry.images.end());
  for (const auto& [name, process] : config) expected.insert(process.image);
  RC_ASSERT(got == expected);
  auto again = parse_log_line(utc(time + 1) + " " + process_config_json(config));
  RC_ASSERT(again.content == entry.content);
}

RC_GTEST_PROP(CleanHistory, TheWindowIsAPrefixWithinTheLimits, ()) {
  auto entries = *history();
  HistoryOptions options;
  options.versions_min = *rc::gen::inRange<std::uint32_t>(0, 6);
  options.versions_max = *rc::gen::inRange<std::uint32_t>(0, 8);
  if (*rc::gen::arbitrary<bool>()) options.cutoff = *rc::gen::inRange<std::int64_t>(9000, 10100);
  auto keep = history_window(entries, options);
  RC_ASSERT(keep.size() == entries.size());
  auto runs = run_index(entries);
  std::size_t run_count = entries.empty() ? 0 : runs.back() + 1;
  std::size_t kept_runs = 0;
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (i > 0) RC_ASSERT(!keep[i] || keep[i - 1]);                           // a prefix
    if (i > 0 && runs[i] == runs[i - 1]) RC_ASSERT(keep[i] == keep[i - 1]);  // runs alike
    if (keep[i]) kept_runs = runs[i] + 1;
  }
  RC_ASSERT(kept_runs <= options.versions_max);
  RC_ASSERT(kept_runs >=
            std::min<std::size_t>({options.versions_min, run_count, options.versions_max}));
  if (!options.cutoff)
    RC_ASSERT(kept_runs == std::min<std::size_t>(run_count, options.versions_max));
  // In use after the cut-off: the newest one, and each whose successor
  // (first logged at that one's oldest line) came after it.
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::optional<std::int64_t> successor_since;
    for (std::size_t j = 0; j < i; ++j)
      if (runs[j] + 1 == runs[i]) successor_since = entries[j].time;  // the oldest line wins
    bool in_use = !successor_since || (options.cutoff && *successor_since > *options.cutoff);
    if (in_use && runs[i] < options.versions_max) RC_ASSERT(keep[i]);
  }
  // Reading stops only once reading more cannot change what is kept.
  if (!history_needs_more(entries, options)) {
    auto more = entries;
    LogEntry older = entries.back();
    older.time -= 1;
    older.content = "older";
    more.push_back(older);
    auto with_more = history_window(more, options);
    RC_ASSERT(std::vector<bool>(with_more.begin(), with_more.end() - 1) == keep);
  }
}

RC_GTEST_PROP(CleanSpan, SpansAddUp, ()) {
  static const std::vector<std::pair<std::string, std::int64_t>> units{{"ns", 1},
                                                                       {"us", 1000},
                                                                       {"ms", 1000000},
                                                                       {"s", 1000000000},
                                                                       {"min", 60000000000},
                                                                       {"h", 3600000000000},
                                                                       {"d", 86400000000000},
                                                                       {"w", 604800000000000}};
  auto spans = *rc::gen::nonEmpty(rc::gen::container<std::vector<std::pair<std::size_t, int>>>(
      rc::gen::pair(rc::gen::inRange<std::size_t>(0, units.size()), rc::gen::inRange(0, 1000))));
  std::string text;
  std::int64_t total = 0;
  for (const auto& [unit, count] : spans) {
    text +=
        std::to_string(count) + (*rc::gen::arbitrary<bool>() ? " " : "") + units[unit].first + " ";
    total += count * units[unit].second;
  }
  auto parsed = parse_span(text);
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(parsed->count() == total);
}

RC_GTEST_PROP(CleanTime, EveryUtcTimeReadsBack, ()) {
  auto time = *rc::gen::inRange<std::int64_t>(0, 253402300799);  // up to 9999-12-31
  RC_ASSERT(parse_rfc3339(utc(time)) == std::optional<std::int64_t>(time));
}

RC_GTEST_PROP(CleanDecide, NamedRunningAndRecentImagesAreNeverUnused, ()) {
  const std::int64_t now = 2'000'000'000'000'000'000;
  const std::int64_t hour = 3'600'000'000'000;
  auto count = *rc::gen::inRange<std::size_t>(0, 12);
  ImageDir dir;
  NamedTargets named;
  RunningRoots running;
  std::vector<Candidate> candidates;
  for (std::size_t i = 0; i < count; ++i) {
    Candidate c;
    c.image = "img" + std::to_string(i);
    c.dev = 1;
    c.ino = i;
    if (*rc::gen::arbitrary<bool>())
      c.mtime_ns = now - *rc::gen::inRange<std::int64_t>(0, 100) * hour;
    if (*rc::gen::arbitrary<bool>())
      c.birth_ns = now - *rc::gen::inRange<std::int64_t>(0, 100) * hour;
    if (*rc::gen::arbitrary<bool>()) dir.used[c.image] = "named";
    if (*rc::gen::arbitrary<bool>()) running[{1, i}] = static_cast<int>(i + 100);
    if (*rc::gen::arbitrary<bool>()) named[{1, i}] = "through a symlink";
    c.mount_point = *rc::gen::arbitrary<bool>();
    candidates.push_back(c);
  }
  std::optional<std::chrono::nanoseconds> keep_recent;
  if (*rc::gen::arbitrary<bool>()) keep_recent = std::chrono::hours(*rc::gen::inRange(1, 50));
  auto decisions = decide(dir, candidates, named, running, keep_recent, now);
  RC_ASSERT(decisions.size() == candidates.size());
  for (std::size_t i = 0; i < count; ++i) {
    const auto& c = candidates[i];
    bool recent = keep_recent && (!c.mtime_ns || now - *c.mtime_ns < keep_recent->count() ||
                                  (c.birth_ns && now - *c.birth_ns < keep_recent->count()));
    bool protected_ = dir.used.count(c.image) || named.count({1, i}) || running.count({1, i}) ||
                      c.mount_point || recent;
    RC_ASSERT(decisions[i].image == c.image);
    RC_ASSERT(decisions[i].unused == !protected_);
  }
}
