// lithos_clean's decisions; docs/lithos_clean.md explains each rule.
#include "lithos/policy/clean.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <set>

#include "lithos/common/text.hpp"
#include "lithos/policy/check.hpp"

namespace lithos::policy::clean {

namespace {

struct Unit {
  std::string_view name;
  long double nanoseconds;
};

constexpr long double kSecond = 1e9L, kDay = 86400 * kSecond;
constexpr std::array<Unit, 35> kUnits{{
    {"ns", 1},
    {"nsec", 1},
    {"nanos", 1},
    {"us", 1e3L},
    {"usec", 1e3L},
    {"ms", 1e6L},
    {"msec", 1e6L},
    {"millis", 1e6L},
    {"s", kSecond},
    {"sec", kSecond},
    {"secs", kSecond},
    {"second", kSecond},
    {"seconds", kSecond},
    {"m", 60 * kSecond},
    {"min", 60 * kSecond},
    {"mins", 60 * kSecond},
    {"minute", 60 * kSecond},
    {"minutes", 60 * kSecond},
    {"h", 3600 * kSecond},
    {"hr", 3600 * kSecond},
    {"hrs", 3600 * kSecond},
    {"hour", 3600 * kSecond},
    {"hours", 3600 * kSecond},
    {"d", kDay},
    {"day", kDay},
    {"days", kDay},
    {"w", 7 * kDay},
    {"week", 7 * kDay},
    {"weeks", 7 * kDay},
    {"M", 30.44L * kDay},
    {"month", 30.44L * kDay},
    {"months", 30.44L * kDay},
    {"y", 365.25L * kDay},
    {"year", 365.25L * kDay},
    {"years", 365.25L * kDay},
}};

std::optional<long double> unit_nanoseconds(std::string_view name) {
  for (const auto& unit : kUnits)
    if (unit.name == name) return unit.nanoseconds;
  return std::nullopt;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int> number(std::string_view text) {
  if (!all_digits(text)) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// `app//v1/` and `./app/v1` name the same image as `app/v1`.
std::optional<std::string> normal_image(std::string_view image, std::uint32_t levels) {
  auto parts = image_components(image);
  if (!parts || parts->size() != levels) return std::nullopt;
  return join_components(*parts).substr(1);
}

std::string trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

bool same_config(const LogEntry& a, const LogEntry& b) {
  if (a.broken || b.broken) return a.broken && b.broken;
  return a.content == b.content;
}

// Runs of consecutive equal entries: [first, last) index pairs, newest first.
std::vector<std::pair<std::size_t, std::size_t>> runs_of(const std::vector<LogEntry>& entries) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!runs.empty() && same_config(entries[runs.back().first], entries[i]))
      runs.back().second = i + 1;
    else
      runs.emplace_back(i, i + 1);
  }
  return runs;
}

std::string log_path(const std::string& dir, const std::string& sandbox, int rotation) {
  std::string path = join_path(dir, sandbox + ".log");
  return rotation == 0 ? path : path + "." + std::to_string(rotation);
}

std::string utc_text(std::int64_t seconds) {
  auto days = std::chrono::floor<std::chrono::days>(
      std::chrono::sys_seconds{std::chrono::seconds{seconds}});
  std::chrono::year_month_day date{days};
  std::chrono::hh_mm_ss time{std::chrono::seconds{seconds} - days.time_since_epoch()};
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02ld:%02ld:%02ldZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<long>(time.hours().count()), static_cast<long>(time.minutes().count()),
                static_cast<long>(time.seconds().count()));
  return out;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_span(std::string_view text) {
  long double total = 0;
  std::size_t i = 0, spans = 0;
  auto skip_spaces = [&] {
    while (i < text.size() && text[i] == ' ') ++i;
  };
  skip_spaces();
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    std::string_view digits = text.substr(start, i - start);
    if (digits.empty() || digits.size() > 19) return std::nullopt;
    std::uint64_t value = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), value);
    skip_spaces();
    start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    auto unit = unit_nanoseconds(text.substr(start, i - start));
    if (!unit) return std::nullopt;
    total += static_cast<long double>(value) * *unit;
    ++spans;
    skip_spaces();
  }
  if (spans == 0 || total > static_cast<long double>(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  auto year = number(text.substr(0, 4)), month = number(text.substr(5, 2)),
       day = number(text.substr(8, 2)), hour = number(text.substr(11, 2)),
       minute = number(text.substr(14, 2)), second = number(text.substr(17, 2));
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  if (*hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  std::chrono::year_month_day date{std::chrono::year{*year},
                                   std::chrono::month{static_cast<unsigned>(*month)},
                                   std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok()) return std::nullopt;
  std::size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    std::size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  std::int64_t offset = 0;
  std::string_view zone = text.substr(i);
  if (zone == "Z" || zone == "z") {
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    auto oh = number(zone.substr(1, 2)), om = number(zone.substr(4, 2));
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = (*oh * 3600 + *om * 60) * (zone[0] == '+' ? 1 : -1);
  } else {
    return std::nullopt;
  }
  std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  return days * 86400 + *hour * 3600 + *minute * 60 + *second - offset;
}

LogEntry parse_log_line(std::string_view line) {
  LogEntry entry;
  auto space = line.find(' ');
  auto fail = [&](std::string why) {
    entry.broken = true;
    entry.error = std::move(why);
    entry.images.clear();
    entry.content.clear();
    return entry;
  };
  if (space == std::string_view::npos) return fail("no space between the time and the config");
  auto time = parse_rfc3339(line.substr(0, space));
  if (time) entry.time = *time;
  auto json = nlohmann::json::parse(line.substr(space + 1), nullptr, false);
  if (!time) return fail("the time is not RFC 3339");
  if (json.is_discarded()) return fail("the config is not JSON");
  if (!json.is_object()) return fail("the config is not a JSON object");
  for (const auto& [name, process] : json.items()) {
    if (!process.is_object()) return fail("process " + debug_quote(name) + " is not an object");
    auto kind = process.find("kind");
    if (kind == process.end() || !kind->is_string() || (*kind != "Daemon" && *kind != "Command"))
      return fail("process " + debug_quote(name) + " has no kind Daemon or Command");
    auto image = process.find("image");
    if (image != process.end()) {
      if (!image->is_string()) return fail("process " + debug_quote(name) + " has a bad image");
      entry.images.push_back(image->get<std::string>());
    }
  }
  // nlohmann::json keeps object members sorted: equal configs dump equal.
  entry.content = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return entry;
}

std::vector<LogEntry> log_entries_newest_first(std::string_view text, const std::string& file) {
  std::vector<LogEntry> entries;
  std::size_t number = 0, start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++number;
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (trim(line).empty()) continue;
    LogEntry entry = parse_log_line(line);
    entry.file = file;
    entry.line = number;
    entries.push_back(std::move(entry));
  }
  std::reverse(entries.begin(), entries.end());
  return entries;
}

std::vector<bool> history_window(const std::vector<LogEntry>& newest_first,
                                 const HistoryOptions& options) {
  auto runs = runs_of(newest_first);
  std::size_t in_use = runs.size();
  if (options.cutoff) {
    // A configuration is in use from its oldest line until the next newer one.
    for (std::size_t r = 0; r < runs.size(); ++r) {
      if (newest_first[runs[r].second - 1].time <= *options.cutoff) {
        in_use = r + 1;
        break;
      }
    }
  }
  std::size_t kept = std::min<std::size_t>(
      {runs.size(), options.versions_max, std::max<std::size_t>(options.versions_min, in_use)});
  std::vector<bool> keep(newest_first.size(), false);
  for (std::size_t r = 0; r < kept; ++r)
    for (std::size_t i = runs[r].first; i < runs[r].second; ++i) keep[i] = true;
  return keep;
}

bool history_needs_more(const std::vector<LogEntry>& newest_first, const HistoryOptions& options) {
  return runs_of(newest_first).size() <= options.versions_max;
}

UsedImages find_used_images(const ConfigTree& tree, const HistoryOptions& options,
                            const ReadFile& read) {
  UsedImages out;
  if (!tree.master) {
    out.errors.push_back("Can't parse config " + debug_quote(tree.master_path));
    return out;
  }
  const auto& master = tree.master->value;
  std::map<std::string, std::string> no_clean;  // image-dir -> sandbox with auto-clean: false
  auto dir_of = [&](const std::string& path) -> ImageDir* {
    for (auto& dir : out.dirs)
      if (dir.path == path) return &dir;
    return nullptr;
  };

  for (const auto& sandbox : tree.sandboxes) {
    if (!sandbox.config) {
      out.errors.push_back("Error finding out used images: sandbox config " +
                           debug_quote(sandbox.file) + " does not parse");
      continue;
    }
    const auto& config = sandbox.config->value;
    const std::string& path = config.image_dir;
    if (!config.auto_clean) {
      no_clean.emplace(path, sandbox.name);
      if (auto* dir = dir_of(path))
        dir->problems.push_back("sandbox " + debug_quote(sandbox.name) +
                                " sets auto-clean: false for the same image-dir");
      if (std::find(out.kept_dirs.begin(), out.kept_dirs.end(), path) == out.kept_dirs.end())
        out.kept_dirs.push_back(path);
      continue;
    }
    ImageDir* dir = dir_of(path);
    if (!dir) {
      dir = &out.dirs.emplace_back();
      dir->path = path;
      dir->levels = config.image_dir_levels;
    } else if (dir->levels != config.image_dir_levels) {
      dir->problems.push_back("sandbox " + debug_quote(sandbox.name) + " gives image-dir-levels " +
                              std::to_string(config.image_dir_levels) + ", another sandbox " +
                              std::to_string(dir->levels));
    }
    dir->sandboxes.push_back(sandbox.name);
    if (auto other = no_clean.find(path); other != no_clean.end())
      dir->problems.push_back("sandbox " + debug_quote(other->second) +
                              " sets auto-clean: false for the same image-dir");

    if (sandbox.processes) {
      for (const auto& [name, entry] : sandbox.processes->value) {
        if (auto image = normal_image(entry.image, config.image_dir_levels))
          dir->used.emplace(*image, "named by process " + debug_quote(name) + " of sandbox " +
                                        debug_quote(sandbox.name) + " (current config)");
        else
          out.warnings.push_back("Image " + debug_quote(entry.image) + " of process " +
                                 debug_quote(name) + " in sandbox " + debug_quote(sandbox.name) +
                                 " is invalid: ignored");
      }
    } else if (!sandbox.processes_missing) {
      out.errors.push_back("Error finding out used images: process config " +
                           debug_quote(sandbox.process_file) + " does not parse");
    }

    if (config.used_images_list) {
      const std::string& list = *config.used_images_list;
      FileText text = read(list);
      if (text.status != FileText::Status::Ok) {
        dir->problems.push_back(
            "used-images-list " + debug_quote(list) + " of sandbox " + debug_quote(sandbox.name) +
            " cannot be read: " +
            (text.status == FileText::Status::Missing ? std::string("missing") : text.error));
        continue;
      }
      std::size_t line_number = 0, start = 0;
      while (start < text.text.size()) {
        auto end = text.text.find('\n', start);
        if (end == std::string::npos) end = text.text.size();
        ++line_number;
        std::string line = trim(std::string_view(text.text).substr(start, end - start));
        start = end + 1;
        if (line.empty()) continue;
        if (auto image = normal_image(line, config.image_dir_levels))
          dir->used.emplace(*image, "listed in " + list + ":" + std::to_string(line_number));
        else
          out.warnings.push_back(list + ":" + std::to_string(line_number) + ": image " +
                                 debug_quote(line) + " is invalid for image-dir-levels " +
                                 std::to_string(config.image_dir_levels) + ": ignored");
      }
      continue;
    }
    if (!master.config_log_dir) {
      out.warnings.push_back("Neither config-log-dir nor used-images-list is set for sandbox " +
                             debug_quote(sandbox.name) +
                             ": only the images of its current config count as used");
      continue;
    }

    std::vector<LogEntry> entries;
    std::vector<int> file_of;  // rotation number per entry
    bool unreadable = false;
    for (int rotation = 0; rotation <= kMaxRotatedLog; ++rotation) {
      std::string file = log_path(*master.config_log_dir, sandbox.name, rotation);
      FileText text = read(file);
      if (text.status == FileText::Status::Missing) continue;
      if (text.status == FileText::Status::Error) {
        dir->problems.push_back("config log " + debug_quote(file) +
                                " cannot be read: " + text.error);
        unreadable = true;
        break;
      }
      for (auto& entry : log_entries_newest_first(text.text, file)) {
        if (entry.broken)
          out.warnings.push_back(file + ":" + std::to_string(entry.line) +
                                 ": broken config log line: " + entry.error);
        entries.push_back(std::move(entry));
        file_of.push_back(rotation);
      }
      if (!history_needs_more(entries, options)) break;
    }
    if (unreadable) continue;
    auto keep = history_window(entries, options);
    std::set<int> files_in_window;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (!keep[i]) continue;
      files_in_window.insert(file_of[i]);
      const auto& entry = entries[i];
      if (entry.broken) {
        dir->problems.push_back(entry.file + ":" + std::to_string(entry.line) +
                                ": a broken config log line is within the history window");
        continue;
      }
      for (const auto& image : entry.images)
        if (auto normal = normal_image(image, config.image_dir_levels))
          dir->used.emplace(*normal, "in the config log " + entry.file + ":" +
                                         std::to_string(entry.line) + " (" + utc_text(entry.time) +
                                         ")");
    }
    // Rotated files outside the window, read or not; the caller keeps the
    // ones that exist. The live log is never one of them.
    for (int rotation = 1; rotation <= kMaxRotatedLog; ++rotation)
      if (!files_in_window.count(rotation))
        out.unused_logs.push_back(log_path(*master.config_log_dir, sandbox.name, rotation));
  }
  return out;
}

std::vector<Decision> decide(const ImageDir& dir, const std::vector<Candidate>& candidates,
                             const NamedTargets& named, const RunningRoots& running,
                             std::optional<std::chrono::nanoseconds> keep_recent,
                             std::int64_t now_ns) {
  std::vector<Decision> out;
  out.reserve(candidates.size());
  for (const auto& candidate : candidates) {
    Decision decision{candidate.image, false, {}};
    if (auto used = dir.used.find(candidate.image); used != dir.used.end()) {
      decision.reason = used->second;
    } else if (auto target = named.find({candidate.dev, candidate.ino}); target != named.end()) {
      decision.reason = target->second;
    } else if (candidate.mount_point) {
      decision.reason = "a mount point (something is mounted on it)";
    } else if (auto pid = running.find({candidate.dev, candidate.ino}); pid != running.end()) {
      decision.reason = "the root directory of running process " + std::to_string(pid->second);
    } else if (keep_recent && !candidate.mtime_ns) {
      decision.reason = "its modification time is unknown (--keep-recent)";
    } else if (keep_recent &&
               (now_ns - *candidate.mtime_ns < keep_recent->count() ||
                (candidate.birth_ns && now_ns - *candidate.birth_ns < keep_recent->count()))) {
      decision.reason = "created or modified within --keep-recent";
    } else {
      decision.unused = true;
      decision.reason = "named by no current config, used-images-list or config log in the window";
    }
    out.push_back(std::move(decision));
  }
  return out;
}

}  // namespace lithos::policy::clean
