// How check_tree reads container configs and finds marks: the one-openat2
// fast path below image-dir must open exactly what the RESOLVE_IN_ROOT route
// opens (symlinks resolved inside the image, `..` clamped at its root), marks
// recorded on demand must point where eager ones did, and a check that keeps
// no plan must report what a check that keeps them reports.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "lithos/policy/check.hpp"

using namespace lithos::policy;
namespace fs = std::filesystem;

namespace {

const char* kContainer =
    "kind: Daemon\n"
    "executable: /bin/true\n"
    "user-id: 1000\n"
    "group-id: 1000\n";

struct TempTree : ::testing::Test {
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lithos-check-read-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root = pattern;
    write("master.yaml",
          "runtime-dir: /run/lithos-test\ndevfs-dir: /dev\ndefault-log-dir: /tmp/lithos-test\n");
    write("sandboxes/app.yaml", "image-dir: " + (root / "images").string() +
                                    "\n"
                                    "allow-users: [1000-2000]\n"
                                    "allow-groups: [1000-2000]\n"
                                    "allow-tcp-ports: [8000-8999]\n");
  }
  void TearDown() override { fs::remove_all(root); }

  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
  void link(const std::string& target, const std::string& rel) {
    fs::create_directories((root / rel).parent_path());
    fs::create_symlink(target, root / rel);
  }
  void processes(const std::string& text) { write("processes/app.yaml", text); }
  std::string entry(const std::string& name, const std::string& image) {
    return name + ":\n  instances: 1\n  image: " + image + "\n  config: /config/app.yaml\n";
  }

  // Diagnostics as "file-name-relative-to-root:line:CODE" lines, and plans.
  std::vector<std::string> check(std::vector<InstancePlan>* plans) {
    Diagnostics diags;
    auto tree = load_tree((root / "master.yaml").string(), {}, diags, nullptr);
    CheckOptions options;
    options.check_devfs = false;
    check_tree(tree, options, diags, nullptr, plans);
    std::vector<std::string> out;
    for (const auto& d : diags.items()) {
      std::string file = d.file;
      if (file.rfind(root.string(), 0) == 0) file = file.substr(root.string().size() + 1);
      out.push_back(file + ":" + std::to_string(d.mark.line) + ":" + std::string(code_id(d.code)));
    }
    return out;
  }

  fs::path root;
};

}  // namespace

TEST_F(TempTree, SymlinksInsideTheImageResolveInsideIt) {
  write("images/plain/config/app.yaml", kContainer);
  // /config is an absolute symlink: it names /etc/lithos of the image, not
  // of the host.
  write("images/linked/etc/lithos/app.yaml", kContainer);
  link("/etc/lithos", "images/linked/config");
  // The image directory itself is a symlink to another image.
  link("plain", "images/alias");
  processes(entry("plain", "plain") + entry("linked", "linked") + entry("alias", "alias"));

  std::vector<InstancePlan> plans;
  EXPECT_TRUE(check(&plans).empty());
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_TRUE(check(nullptr).empty());
}

TEST_F(TempTree, DotDotAndAbsoluteSymlinksCannotLeaveTheImage) {
  // A readable config outside the image that must never be read: it would
  // fail with an unknown key if it were.
  write("outside.yaml", "this-key-is-unknown: 1\n");
  write("images/up/config/.keep", "");
  link("../../../outside.yaml", "images/up/config/app.yaml");
  write("images/abs/config/.keep", "");
  link((root / "outside.yaml").string(), "images/abs/config/app.yaml");
  processes(entry("up", "up") + entry("abs", "abs"));

  for (auto* plans : {static_cast<std::vector<InstancePlan>*>(nullptr),
                      std::make_unique<std::vector<InstancePlan>>().release()}) {
    auto diags = check(plans);
    ASSERT_EQ(diags.size(), 2u) << ::testing::PrintToString(diags);
    for (const auto& d : diags)
      EXPECT_NE(d.find(std::string(code_id(Code::FileUnreadable))), std::string::npos) << d;
    delete plans;
  }
}

TEST_F(TempTree, MarksRecordedOnDemandPointAtTheKey) {
  write("images/bad/config/app.yaml",
        "kind: Daemon\n"
        "executable: /bin/true\n"
        "group-id: 1000\n"
        "user-id: 5000\n");
  processes(entry("bad", "bad"));
  const auto fills_before = schema::MarkTable::demand_fills();
  auto diags = check(nullptr);
  ASSERT_EQ(diags.size(), 1u) << ::testing::PrintToString(diags);
  EXPECT_EQ(diags[0], "images/bad/config/app.yaml:4:" + std::string(code_id(Code::UserId)));
  EXPECT_GT(schema::MarkTable::demand_fills(), fills_before);
}

TEST_F(TempTree, CleanTreeFillsNoMarks) {
  write("images/plain/config/app.yaml", kContainer);
  processes(entry("plain", "plain"));
  const auto fills_before = schema::MarkTable::demand_fills();
  EXPECT_TRUE(check(nullptr).empty());
  std::vector<InstancePlan> plans;
  EXPECT_TRUE(check(&plans).empty());
  EXPECT_EQ(schema::MarkTable::demand_fills(), fills_before);
}

TEST_F(TempTree, ChecksThatKeepNoPlanReportWhatPlanBuildingReports) {
  // The port only exists after substitution; it is outside allow-tcp-ports.
  write("images/port/config/app.yaml",
        "kind: Daemon\n"
        "executable: /bin/true\n"
        "user-id: 1000\n"
        "group-id: 1000\n"
        "tcp-ports:\n"
        "  \"9@{tail}\":\n"
        "    fd: 3\n"
        "variables:\n"
        "  tail: !Name\n");
  processes(entry("port", "port") + "  variables:\n    tail: \"100\"\n");
  std::vector<InstancePlan> plans;
  auto kept = check(&plans);
  auto checked = check(nullptr);
  ASSERT_EQ(kept.size(), 1u) << ::testing::PrintToString(kept);
  EXPECT_EQ(kept[0], "images/port/config/app.yaml:6:" + std::string(code_id(Code::Port)));
  EXPECT_EQ(kept, checked);
  EXPECT_TRUE(plans.empty());
}
