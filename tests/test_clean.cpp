// lithos_clean (docs/lithos_clean.md): the pure decisions of
// policy/clean.hpp, and the tool run as root against a tree of its own with
// current, logged, old and running images and symlinks planted in image-dir.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "check_run_support.hpp"
#include "lithos/policy/clean.hpp"
#include "lithos/runtime/clean.hpp"

namespace fs = std::filesystem;
using namespace lithos::policy::clean;
using lithos::test::run_tool;

namespace {

std::string utc(std::int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A config log line naming one daemon on `image`.
std::string log_line(std::int64_t time, const std::string& image) {
  return utc(time) + " {\"app\":{\"instances\":1,\"image\":\"" + image +
         "\",\"config\":\"/c.yaml\",\"kind\":\"Daemon\"}}\n";
}

LogEntry entry(std::int64_t time, const std::string& image) {
  LogEntry e = parse_log_line(log_line(time, image).substr(0, log_line(time, image).size() - 1));
  EXPECT_FALSE(e.broken) << e.error;
  return e;
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

// ------------------------------------------------------------ pure rules

TEST(CleanSpan, UnitsAndSums) {
  using namespace std::chrono;
  EXPECT_EQ(parse_span("1h"), nanoseconds(hours(1)));
  EXPECT_EQ(parse_span("2d 12h"), nanoseconds(hours(60)));
  EXPECT_EQ(parse_span("2d12h"), nanoseconds(hours(60)));
  EXPECT_EQ(parse_span("90s"), nanoseconds(seconds(90)));
  EXPECT_EQ(parse_span("5 min"), nanoseconds(minutes(5)));
  EXPECT_EQ(parse_span("15ms"), nanoseconds(milliseconds(15)));
  EXPECT_EQ(parse_span("3usec 2ns"), nanoseconds(3002));
  EXPECT_EQ(parse_span("1w"), nanoseconds(hours(24 * 7)));
  EXPECT_EQ(parse_span("1M"), nanoseconds(static_cast<std::int64_t>(30.44L * 86400 * 1e9L)));
  EXPECT_EQ(parse_span("1m"), nanoseconds(minutes(1)));
  EXPECT_EQ(parse_span("1y"), nanoseconds(static_cast<std::int64_t>(365.25L * 86400 * 1e9L)));
  for (const char* bad : {"", " ", "h", "1", "1x", "-1h", "1.5h", "1h,2m", "1 h x", "999y"})
    EXPECT_FALSE(parse_span(bad)) << bad;
}

TEST(CleanTime, Rfc3339) {
  EXPECT_EQ(parse_rfc3339("2018-09-11T10:20:30Z"), 1536661230);
  EXPECT_EQ(parse_rfc3339("2018-09-11T10:20:30.123456Z"), 1536661230);
  EXPECT_EQ(parse_rfc3339("2018-09-11T11:20:30+01:00"), 1536661230);
  EXPECT_EQ(parse_rfc3339("2018-09-11T09:20:30-01:00"), 1536661230);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  for (const char* bad : {"", "2018-09-11", "2018-09-11T10:20:30", "2018-13-11T10:20:30Z",
                          "2018-02-30T10:20:30Z", "2018-09-11T24:20:30Z", "2018-09-11T10:20:30.Z",
                          "2018-09-11 10:20:30Z", "20x8-09-11T10:20:30Z"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(CleanLog, LinesOfTheTreeParseAndBrokenOnesSayWhy) {
  auto good = parse_log_line(
      "2018-09-11T10:20:30Z {\"b\":{\"image\":\"x/1\",\"kind\":\"Command\"},"
      "\"a\":{\"instances\":2,\"image\":\"y/2\",\"config\":\"/c\",\"kind\":\"Daemon\"}}");
  ASSERT_FALSE(good.broken) << good.error;
  EXPECT_EQ(good.time, 1536661230);
  EXPECT_EQ(good.images, (std::vector<std::string>{"y/2", "x/1"}));
  // The same config with members in another order is the same configuration.
  auto reordered = parse_log_line(
      "2019-01-01T00:00:00Z {\"a\":{\"kind\":\"Daemon\",\"config\":\"/c\",\"image\":\"y/2\","
      "\"instances\":2},\"b\":{\"kind\":\"Command\",\"image\":\"x/1\"}}");
  EXPECT_EQ(good.content, reordered.content);

  EXPECT_EQ(parse_log_line("nonsense").error, "no space between the time and the config");
  EXPECT_EQ(parse_log_line("yesterday {}").error, "the time is not RFC 3339");
  EXPECT_EQ(parse_log_line("2018-09-11T10:20:30Z {\"a\":").error, "the config is not JSON");
  EXPECT_EQ(parse_log_line("2018-09-11T10:20:30Z []").error, "the config is not a JSON object");
  EXPECT_EQ(parse_log_line("2018-09-11T10:20:30Z {\"a\":{\"image\":\"x\"}}").error,
            "process \"a\" has no kind Daemon or Command");
  EXPECT_TRUE(
      parse_log_line("2018-09-11T10:20:30Z {\"a\":{\"image\":1,\"kind\":\"Daemon\"}}").broken);
}

TEST(CleanLog, EntriesOfAFileAreNewestFirstWithTheirLineNumbers) {
  std::string text = log_line(100, "a") + "\n" + log_line(200, "b");
  auto entries = log_entries_newest_first(text, "s.log");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].images, std::vector<std::string>{"b"});
  EXPECT_EQ(entries[0].line, 3u);
  EXPECT_EQ(entries[1].line, 1u);
  EXPECT_EQ(entries[1].file, "s.log");
}

TEST(CleanHistory, VersionsMaxKeepsTheNewest) {
  std::vector<LogEntry> entries{entry(400, "d"), entry(300, "c"), entry(200, "b"), entry(100, "a")};
  EXPECT_EQ(history_window(entries, {0, 2, std::nullopt}),
            (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(history_window(entries, {0, 1000, std::nullopt}), std::vector<bool>(4, true));
  EXPECT_EQ(history_window(entries, {0, 0, std::nullopt}), std::vector<bool>(4, false));
}

TEST(CleanHistory, TheConfigCurrentAtTheCutOffIsKeptOlderOnesAreNot) {
  std::vector<LogEntry> entries{entry(400, "d"), entry(300, "c"), entry(200, "b"), entry(100, "a")};
  // c was current from 300 until d came at 400: in use after a cut-off at 350.
  EXPECT_EQ(history_window(entries, {0, 1000, 350}), (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(history_window(entries, {0, 1000, 450}),
            (std::vector<bool>{true, false, false, false}));
  // versions-min keeps more than the cut-off does, versions-max caps both.
  EXPECT_EQ(history_window(entries, {3, 1000, 450}), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(history_window(entries, {3, 2, 450}), (std::vector<bool>{true, true, false, false}));
}

TEST(CleanHistory, RepeatedLinesAreOneConfigurationInUseSinceItsOldestLine) {
  // b was logged at 150 (and again at each tree restart): in use since 150.
  std::vector<LogEntry> entries{entry(400, "c"), entry(300, "b"), entry(200, "b"), entry(150, "b"),
                                entry(100, "a")};
  EXPECT_EQ(history_window(entries, {0, 2, std::nullopt}),
            (std::vector<bool>{true, true, true, true, false}));
  // a was replaced at 150: not in use after 175, although later lines exist.
  EXPECT_EQ(history_window(entries, {0, 1000, 175}),
            (std::vector<bool>{true, true, true, true, false}));
  EXPECT_FALSE(history_needs_more(entries, {0, 2, std::nullopt}));
  EXPECT_TRUE(history_needs_more(entries, {0, 3, std::nullopt}));
}

TEST(CleanDecide, EveryReasonToKeep) {
  ImageDir dir;
  dir.path = "/images";
  dir.used = {{"named", "named by process \"web\""}};
  const std::int64_t now = 1'000'000'000'000'000'000;
  const std::int64_t hour = 3'600'000'000'000;
  std::vector<Candidate> candidates{
      {"named", 1, 1, std::nullopt, now - 100 * hour},
      {"running", 1, 2, std::nullopt, now - 100 * hour},
      {"fresh", 1, 3, std::nullopt, now - hour / 2},
      {"born-recently", 1, 4, now - hour / 2, now - 100 * hour},
      {"no-mtime", 1, 5, std::nullopt, std::nullopt},
      {"old", 1, 6, now - 100 * hour, now - 100 * hour},
  };
  RunningRoots running{{{1, 2}, 4242}};
  auto decisions = decide(dir, candidates, {}, running, std::chrono::hours(1), now);
  ASSERT_EQ(decisions.size(), 6u);
  EXPECT_EQ(decisions[0].reason, "named by process \"web\"");
  EXPECT_EQ(decisions[1].reason, "the root directory of running process 4242");
  EXPECT_EQ(decisions[2].reason, "created or modified within --keep-recent");
  EXPECT_EQ(decisions[3].reason, "created or modified within --keep-recent");
  EXPECT_EQ(decisions[4].reason, "its modification time is unknown (--keep-recent)");
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(decisions[i].unused) << i;
  EXPECT_TRUE(decisions[5].unused);
  // Without --keep-recent, age does not matter.
  auto plain = decide(dir, candidates, {}, running, std::nullopt, now);
  EXPECT_TRUE(plain[2].unused);
  EXPECT_TRUE(plain[4].unused);
}

TEST(CleanDecide, WhatAUsedNameLeadsToAndMountPointsAreKept) {
  ImageDir dir;
  dir.path = "/images";
  dir.used = {{"app/current", "named by process \"web\""}};
  std::vector<Candidate> candidates{{"app/v7", 1, 7, std::nullopt, 0},
                                    {"app/v6", 1, 6, std::nullopt, 0},
                                    {"app/mounted", 1, 5, std::nullopt, 0}};
  candidates[2].mount_point = true;
  NamedTargets named{{{1, 7}, "named by process \"web\", through app/current"}};
  auto decisions = decide(dir, candidates, named, {}, std::nullopt, 0);
  EXPECT_EQ(decisions[0].reason, "named by process \"web\", through app/current");
  EXPECT_FALSE(decisions[0].unused);
  EXPECT_TRUE(decisions[1].unused);
  EXPECT_EQ(decisions[2].reason, "a mount point (something is mounted on it)");
  EXPECT_FALSE(decisions[2].unused);
}

// ------------------------------------------------------------ find_used_images

class CleanTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lithos-clean-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    write(root_ / "master.yaml", "sandboxes-dir: " + (root_ / "sandboxes").string() +
                                     "\nprocesses-dir: " + (root_ / "processes").string() +
                                     "\nconfig-log-dir: " + (root_ / "log").string() + "\n");
    fs::create_directories(root_ / "sandboxes");
    fs::create_directories(root_ / "processes");
    fs::create_directories(root_ / "log");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void sandbox(const std::string& name, const std::string& extra = "") {
    write(root_ / "sandboxes" / (name + ".yaml"),
          "image-dir: " + (root_ / "images").string() + "\n" + extra);
  }
  void processes(const std::string& sandbox, const std::string& image) {
    write(root_ / "processes" / (sandbox + ".yaml"),
          "app:\n  image: " + image + "\n  config: /c.yaml\n");
  }
  UsedImages used(HistoryOptions options = {}) {
    lithos::policy::Diagnostics diags;
    auto tree = lithos::policy::load_tree((root_ / "master.yaml").string(), {}, diags, nullptr);
    return find_used_images(tree, options, lithos::runtime::clean::read_text);
  }
  void image(const std::string& name) { fs::create_directories(root_ / "images" / name); }
  lithos::test::RunResult clean(const std::vector<std::string>& args) {
    std::vector<std::string> all{"-C", (root_ / "master.yaml").string()};
    all.insert(all.end(), args.begin(), args.end());
    return run_tool(root_, "lithos_clean", all);
  }
  std::string quoted(const std::string& image) {
    return "\"" + (root_ / "images" / image).string() + "\"\n";
  }
  fs::path root_;
};

TEST_F(CleanTree, CurrentConfigAndConfigLogNameImages) {
  sandbox("s");
  processes("s", "v3");
  const auto now = now_s();
  write(root_ / "log" / "s.log",
        log_line(now - 20 * 86400, "v1") + log_line(now - 10 * 86400, "v2") + log_line(now, "v3"));
  write(root_ / "log" / "s.log.1", log_line(now - 30 * 86400, "v0"));
  auto all = used();
  ASSERT_TRUE(all.errors.empty());
  ASSERT_EQ(all.dirs.size(), 1u);
  EXPECT_EQ(all.dirs[0].used.size(), 4u);
  EXPECT_EQ(all.dirs[0].used.at("v3").find("named by process \"app\" of sandbox \"s\""), 0u);
  EXPECT_NE(all.dirs[0].used.at("v0").find("s.log.1:1"), std::string::npos);
  EXPECT_EQ(all.unused_logs.size(), static_cast<std::size_t>(kMaxRotatedLog - 1));

  // One day back: v3 and v2 (current until v3 came, today).
  auto day = used({0, 1000, now - 86400});
  EXPECT_EQ(day.dirs[0].used.count("v1"), 0u);
  EXPECT_EQ(day.dirs[0].used.count("v0"), 0u);
  EXPECT_EQ(day.dirs[0].used.count("v2"), 1u);
  EXPECT_EQ(day.unused_logs.front(), (root_ / "log" / "s.log.1").string());
}

TEST_F(CleanTree, UsedImagesListReplacesTheLogAndBadLinesAreWarnedAbout) {
  sandbox("s", "used-images-list: " + (root_ / "used.txt").string() + "\nimage-dir-levels: 2\n");
  write(root_ / "used.txt", "  app/v1  \n\napp\n../etc/x\napp//v2/\n");
  write(root_ / "log" / "s.log", log_line(now_s(), "app/v9"));
  auto all = used();
  ASSERT_TRUE(all.errors.empty());
  EXPECT_EQ(all.dirs[0].used.size(), 2u);
  EXPECT_EQ(all.dirs[0].used.at("app/v1"), "listed in " + (root_ / "used.txt").string() + ":1");
  EXPECT_EQ(all.dirs[0].used.count("app/v2"), 1u);
  ASSERT_EQ(all.warnings.size(), 2u);
  EXPECT_NE(all.warnings[0].find("used.txt:3: image \"app\" is invalid"), std::string::npos);
  fs::remove(root_ / "used.txt");
  auto missing = used();
  ASSERT_EQ(missing.dirs[0].problems.size(), 1u);
  EXPECT_NE(missing.dirs[0].problems[0].find("cannot be read"), std::string::npos);
}

TEST_F(CleanTree, AutoCleanConflictsAndBrokenLogLinesProtectTheWholeDir) {
  sandbox("a");
  sandbox("b", "auto-clean: false\n");
  auto conflict = used();
  ASSERT_EQ(conflict.dirs.size(), 1u);
  ASSERT_EQ(conflict.dirs[0].problems.size(), 1u);
  EXPECT_EQ(conflict.dirs[0].problems[0],
            "sandbox \"b\" sets auto-clean: false for the same image-dir");
  EXPECT_EQ(conflict.kept_dirs, std::vector<std::string>{(root_ / "images").string()});

  fs::remove(root_ / "sandboxes" / "b.yaml");
  write(root_ / "log" / "a.log", log_line(now_s() - 100, "v1") + "garbage\n");
  auto broken = used();
  ASSERT_EQ(broken.dirs[0].problems.size(), 1u);
  EXPECT_NE(broken.dirs[0].problems[0].find("a.log:2: a broken config log line"),
            std::string::npos);
  // Out of the window (vmax 0 … only the newest would be it), no problem.
  auto none = used({0, 0, std::nullopt});
  EXPECT_TRUE(none.dirs[0].problems.empty());
}

TEST_F(CleanTree, AProcessConfigThatDoesNotParseIsFatal) {
  sandbox("s");
  write(root_ / "processes" / "s.yaml", "app: [\n");
  auto all = used();
  ASSERT_EQ(all.errors.size(), 1u);
  EXPECT_NE(all.errors[0].find("does not parse"), std::string::npos);
  image("v0");
  auto run = clean({"--delete-unused"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(fs::exists(root_ / "images" / "v0"));
}

// ------------------------------------------------------------ the tool

TEST_F(CleanTree, DeletesOnlyUnusedAndFollowsNoSymlink) {
  sandbox("s");
  processes("s", "v1");
  image("v1");
  image("v0/etc");
  image(".hidden");
  write(root_ / "images" / "v0" / "etc" / "hosts", "x\n");
  // Planted: a symlink in image-dir to a directory outside, and symlinks in
  // the unused image to a file and a directory outside.
  write(root_ / "outside" / "precious", "keep me\n");
  fs::create_directory_symlink(root_ / "outside", root_ / "images" / "evil");
  fs::create_symlink(root_ / "outside" / "precious", root_ / "images" / "v0" / "link");
  fs::create_directory_symlink(root_ / "outside", root_ / "images" / "v0" / "dirlink");

  auto listed = clean({"--unused"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, quoted("v0"));
  auto in_use = clean({});
  EXPECT_EQ(in_use.out, quoted("v1"));

  auto deleted = clean({"--delete-unused", "-v"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_NE(deleted.out.find(": Deleting " + quoted("v0")), std::string::npos) << deleted.out;
  EXPECT_NE(deleted.err.find("kept " + quoted("v1").substr(0, quoted("v1").size() - 1) +
                             ": named by process \"app\""),
            std::string::npos)
      << deleted.err;
  EXPECT_NE(deleted.err.find("deleted 1 image directory and 0 logs, kept 1, 0 failed"),
            std::string::npos)
      << deleted.err;
  EXPECT_FALSE(fs::exists(root_ / "images" / "v0"));
  EXPECT_TRUE(fs::exists(root_ / "images" / "v1"));
  EXPECT_TRUE(fs::exists(root_ / "images" / ".hidden"));
  EXPECT_TRUE(fs::is_symlink(root_ / "images" / "evil"));
  std::ifstream precious(root_ / "outside" / "precious");
  std::string text;
  std::getline(precious, text);
  EXPECT_EQ(text, "keep me");
}

TEST_F(CleanTree, NeverDeletesTheRootOfARunningProcess) {
  sandbox("s");
  processes("s", "v1");
  image("v1");
  image("old");
  int ready[2], release[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(release, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    // Like a container: its root is the image directory.
    if (::chroot((root_ / "images" / "old").c_str()) != 0 || ::chdir("/") != 0) ::_exit(1);
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) ::_exit(1);
    ::read(release[0], &c, 1);  // until the test closes its end
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  auto run = clean({"--delete-unused", "-v"});
  ::close(release[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(fs::exists(root_ / "images" / "old"));
  EXPECT_NE(run.err.find("the root directory of running process " + std::to_string(child)),
            std::string::npos)
      << run.err;
  // Once it has ended, the image is unused.
  auto after = clean({"--unused"});
  EXPECT_EQ(after.out, quoted("old"));
}

TEST_F(CleanTree, KeepRecentAndTheLogHistoryWindow) {
  sandbox("s");
  processes("s", "v3");
  const auto now = now_s();
  write(root_ / "log" / "s.log", log_line(now - 10 * 86400, "v2") + log_line(now, "v3"));
  write(root_ / "log" / "s.log.1", log_line(now - 30 * 86400, "v1"));
  for (auto name : {"v1", "v2", "v3"}) image(name);

  auto recent = clean({"--unused", "--keep-recent", "1h", "-D", "1", "--clean-logs"});
  EXPECT_EQ(recent.exit_code, 0) << recent.err;
  EXPECT_EQ(recent.out, "\"" + (root_ / "log" / "s.log.1").string() + "\"\n");

  auto day = clean({"--unused", "-D", "1"});
  EXPECT_EQ(day.out, quoted("v1"));
  auto month = clean({"--unused", "-D", "40"});
  EXPECT_EQ(month.out, "");
  auto logs = clean({"--delete-unused", "-D", "1", "--clean-logs", "-v"});
  EXPECT_NE(logs.out.find("Deleting log \"" + (root_ / "log" / "s.log.1").string()),
            std::string::npos)
      << logs.out;
  EXPECT_FALSE(fs::exists(root_ / "log" / "s.log.1"));
  EXPECT_TRUE(fs::exists(root_ / "log" / "s.log"));
  EXPECT_FALSE(fs::exists(root_ / "images" / "v1"));
  EXPECT_TRUE(fs::exists(root_ / "images" / "v2"));
}

// Bind mounts of the same file system (same st_dev): one inside an unused
// image, one on an image directory itself. Neither is crossed or deleted.
TEST_F(CleanTree, MountsAreNeverCrossedOrDeleted) {
  sandbox("s");
  processes("s", "v1");
  image("v1");
  image("v0/mnt");
  image("v2");
  write(root_ / "outside" / "keep.txt", "inside a bind mount\n");
  write(root_ / "outside2" / "keep.txt", "mounted on an image\n");
  // In a mount namespace of its own: the host's mounts are not touched.
  const std::string err = (root_ / "err.txt").string();
  std::string script = "mount --bind " + (root_ / "outside").string() + " " +
                       (root_ / "images/v0/mnt").string() + " && mount --bind " +
                       (root_ / "outside2").string() + " " + (root_ / "images/v2").string() +
                       " && " LITHOS_BIN_DIR "/lithos_clean -C " +
                       (root_ / "master.yaml").string() + " --delete-unused -v 2>" + err;
  int status =
      std::system(("unshare --mount --propagation private sh -c '" + script + "'").c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("a mount point: left in place"), std::string::npos) << text;
  EXPECT_NE(
      text.find("kept " + quoted("v2").substr(0, quoted("v2").size() - 1) + ": a mount point"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("1 failed"), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(root_ / "outside" / "keep.txt"));
  EXPECT_TRUE(fs::exists(root_ / "outside2" / "keep.txt"));
  EXPECT_TRUE(fs::exists(root_ / "images" / "v2"));
}

// A used name that is a symlink to a versioned directory keeps that directory.
TEST_F(CleanTree, AnImageNamedThroughASymlinkIsKept) {
  sandbox("s");
  processes("s", "current");
  image("v7");
  image("v6");
  fs::create_directory_symlink("v7", root_ / "images" / "current");
  auto run = clean({"--unused"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, quoted("v6"));
}

// One directory written two ways, or one inside another: not cleaned.
TEST_F(CleanTree, ImageDirsThatAreTheSameOrNestedAreNotCleaned) {
  sandbox("a");
  processes("a", "v1");
  write(root_ / "sandboxes" / "b.yaml",
        "image-dir: " + (root_ / "images").string() + "/\nauto-clean: false\n");
  image("v1");
  image("v0");
  auto same = clean({"--delete-unused"});
  EXPECT_EQ(same.exit_code, 0) << same.err;
  EXPECT_NE(same.err.find("is, contains or lies in image-dir"), std::string::npos) << same.err;
  EXPECT_TRUE(fs::exists(root_ / "images" / "v0"));

  write(root_ / "sandboxes" / "b.yaml",
        "image-dir: " + (root_ / "images" / "v0").string() + "\nauto-clean: false\n");
  auto nested = clean({"--delete-unused"});
  EXPECT_NE(nested.err.find("is, contains or lies in image-dir"), std::string::npos) << nested.err;
  EXPECT_TRUE(fs::exists(root_ / "images" / "v0"));
}

TEST_F(CleanTree, FlagsThatMakeNoSenseAreUsageErrors) {
  sandbox("s");
  for (auto args : std::vector<std::vector<std::string>>{{"--used", "--unused"},
                                                         {"--unused", "--delete-unused"},
                                                         {"--clean-logs"},
                                                         {"--vmin", "5", "--vmax", "2"},
                                                         {"--keep-recent", "soon"},
                                                         {"-D", "-1"}}) {
    auto run = clean(args);
    EXPECT_EQ(run.exit_code, 2) << args[0];
    EXPECT_NE(run.err.find("lithos_clean: usage error: "), std::string::npos) << run.err;
  }
}
