// lithos_check on a config repository rather than a host (--root,
// --offline), --strict, the no-processes warning, a broken sandbox that
// still gets its containers checked, and "did you mean" for capability,
// system call and variable names (docs/lithos_check.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lithos/policy/check.hpp"
#include "lithos/policy/config.hpp"

namespace fs = std::filesystem;
using namespace lithos::policy;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

struct Output {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

// A repository laid out as a host's /: etc/lithos holds the configs, whose
// paths are absolute host paths; var/lib/lithos holds what a host has.
class ConfigRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lithos-repo-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    scratch_ = root_.string() + ".out";
    fs::create_directories(scratch_);
    write("etc/lithos/master.yaml",
          "sandboxes-dir: /etc/lithos/sandboxes\n"
          "processes-dir: /etc/lithos/processes\n"
          "runtime-dir: /run/lithos-repo-test\n"
          "devfs-dir: /var/lib/lithos/dev\n"
          "cgroup-name: ~\n");
    write("etc/lithos/sandboxes/app.yaml",
          "image-dir: /var/lib/lithos/images/app\n"
          "image-dir-levels: 1\n"
          "allow-users: [1000-1999]\n"
          "allow-groups: [1000-1999]\n"
          "default-user: 1000\n"
          "default-group: 1000\n");
    write("etc/lithos/processes/app.yaml",
          "web:\n"
          "  image: v1\n"
          "  config: /config/web.yaml\n");
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
    fs::remove_all(scratch_, ignored);
  }

  void write(const std::string& relative, const std::string& text) {
    fs::path file = root_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }

  // What a host has below /var/lib/lithos: the devfs with its pts, and the
  // image v1 with its mount points and an executable that exits 0.
  void add_host_state(const std::string& executable = "/bin/true") {
    fs::create_directories(root_ / "var/lib/lithos/dev/pts");
    fs::path image = root_ / "var/lib/lithos/images/app/v1";
    for (const char* dir : {"dev", "proc", "sys", "bin"}) fs::create_directories(image / dir);
    fs::copy_file(
        fs::path(LITHOS_SOURCE_DIR) / "corpus/cases/bad-name-with-value/images/app/bin/true",
        image / "bin/true", fs::copy_options::overwrite_existing);
    fs::permissions(image / "bin/true", fs::perms(0755));
    write("var/lib/lithos/images/app/v1/config/web.yaml", "executable: " + executable + "\n");
    // The host files a sandbox copies into its containers by default.
    write("etc/resolv.conf", "nameserver 127.0.0.1\n");
    write("etc/hosts", "127.0.0.1 localhost\n");
  }

  // lithos_check ARGS, run in `cwd` (the test's own directory when empty).
  Output check(const std::string& args, const fs::path& cwd = {}) {
    std::string command = (cwd.empty() ? "" : "cd " + quoted(cwd) + " && ") +
                          std::string(LITHOS_BIN_DIR) + "/lithos_check " + args + " >" +
                          quoted(scratch_ / "out") + " 2>" + quoted(scratch_ / "err");
    int raw = std::system(command.c_str());
    Output result;
    result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    result.out = slurp(scratch_ / "out");
    result.err = slurp(scratch_ / "err");
    return result;
  }
  std::string master() const { return quoted(root_ / "etc/lithos/master.yaml"); }
  std::string root_arg() const { return "--root " + quoted(root_); }

  fs::path root_, scratch_;
};

}  // namespace

TEST_F(ConfigRepo, WithoutRootTheAbsolutePathsAreTheHostsAndAreMissing) {
  auto r = check("-C " + master());
  EXPECT_EQ(r.status, 1);
  // /etc/lithos/sandboxes of this machine: not the repository's.
  EXPECT_THAT(r.err, Not(HasSubstr(root_.string() + "/etc/lithos/sandboxes")));
}

TEST_F(ConfigRepo, RootFindsEveryHostPathInTheRepository) {
  add_host_state();
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("error[")));
}

// As docs/ci.md runs it: from the repository, `--root .` and a relative
// master path. The absolute paths of the configs are found below the
// current directory, not below the master's own directory. A config-file
// key naming an absolute path too.
TEST_F(ConfigRepo, ARelativeRootAndMasterAsInTheCiRecipe) {
  add_host_state();
  write("etc/lithos/sandboxes/app.yaml",
        "image-dir: /var/lib/lithos/images/app\n"
        "image-dir-levels: 1\n"
        "config-file: /etc/lithos/processes/app.yaml\n"
        "allow-users: [1000-1999]\n"
        "allow-groups: [1000-1999]\n"
        "default-user: 1000\n"
        "default-group: 1000\n");
  auto r = check("--root . -C etc/lithos/master.yaml", root_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("error[")));
  EXPECT_THAT(r.err, Not(HasSubstr("etc/lithos/./etc")));
  EXPECT_THAT(r.err, Not(HasSubstr("no-processes")));
}

TEST_F(ConfigRepo, RootAloneStillWantsTheHostStateThere) {
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("error[devfs]"));
  EXPECT_THAT(r.err, HasSubstr("error[image]"));
  EXPECT_THAT(r.err, HasSubstr(root_.string() + "/var/lib/lithos/images/app/v1"));
}

TEST_F(ConfigRepo, OfflineTurnsAbsentHostStateIntoNotes) {
  auto r = check(root_arg() + " --offline -C " + master());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("note[devfs]"));
  EXPECT_THAT(r.err, HasSubstr("note[image]"));
  EXPECT_THAT(r.err, HasSubstr("(--offline)"));
  EXPECT_THAT(r.err, Not(HasSubstr("error[")));
  EXPECT_THAT(r.err, HasSubstr("note(s)"));
}

TEST_F(ConfigRepo, OfflineStillFailsOnWhatIsInThePresentImage) {
  add_host_state("/bin/nothing-here");
  auto r = check(root_arg() + " --offline -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("error[executable]"));
}

TEST_F(ConfigRepo, OfflineStillFailsOnConfigErrors) {
  write("etc/lithos/processes/app.yaml", "web:\n  image: v1\n  config: relative.yaml\n");
  auto r = check(root_arg() + " --offline -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("error[config-path]"));
}

TEST_F(ConfigRepo, AMissingProcessConfigIsAWarningAndStrictFailsOnIt) {
  add_host_state();
  fs::remove(root_ / "etc/lithos/processes/app.yaml");
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning[no-processes]"));
  auto strict = check(root_arg() + " --strict -C " + master());
  EXPECT_EQ(strict.status, 1);
  EXPECT_THAT(strict.err, HasSubstr("warning[no-processes]"));
}

TEST_F(ConfigRepo, AnUnreadableProcessConfigIsStillAnError) {
  add_host_state();
  fs::remove(root_ / "etc/lithos/processes/app.yaml");
  fs::create_directories(root_ / "etc/lithos/processes/app.yaml");  // a directory: unreadable
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("error[file-unreadable]"));
}

TEST_F(ConfigRepo, NotesNeverFailEvenWithStrict) {
  add_host_state();
  fs::remove_all(root_ / "var/lib/lithos/dev");
  auto r = check(root_arg() + " --offline --strict -C " + master());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("note[devfs]"));
}

TEST_F(ConfigRepo, ABrokenSandboxStillHasItsProcessAndContainerConfigsChecked) {
  add_host_state();
  write("etc/lithos/sandboxes/app.yaml",
        "image-dir: /var/lib/lithos/images/app\n"
        "image-dir-levels: 1\n"
        "allow-users: [1000-1999]\n"
        "allow-groups: [1000-1999]\n"
        "default-user: 1000\n"
        "default-group: 1000\n"
        "allow-user: [1]\n");
  // web is broken itself; api is clean and its container is checked.
  write("etc/lithos/processes/app.yaml",
        "web:\n  image: v1\n  config: /config/web.yaml\n  instance: 2\n"
        "api:\n  image: v1\n  config: /config/api.yaml\n");
  write("var/lib/lithos/images/app/v1/config/web.yaml",
        "executable: /bin/true\narguments: [\"@{from-web}\"]\n");
  write("var/lib/lithos/images/app/v1/config/api.yaml",
        "executable: /bin/true\narguments: [\"@{from-api}\"]\n");
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("sandboxes/app.yaml:7:1: error[unknown-key]"));
  EXPECT_THAT(r.err, HasSubstr("processes/app.yaml:4:3: error[unknown-key]"));
  EXPECT_THAT(r.err, HasSubstr("config/api.yaml:2:13: error[template]"));
  // A broken entry names nothing trustworthy: its container is not read.
  EXPECT_THAT(r.err, Not(HasSubstr("from-web")));
}

TEST_F(ConfigRepo, OneBadEntryDoesNotHideTheOthers) {
  add_host_state();
  write("etc/lithos/processes/app.yaml",
        "web:\n  image: v1\n  config: /config/web.yaml\n  instance: 2\n"
        "api:\n  image: v1\n  config: relative.yaml\n"
        "db:\n  image: v1\n  config: /config/db.yaml\n");
  write("var/lib/lithos/images/app/v1/config/db.yaml", "executable: /bin/missing\n");
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("processes/app.yaml:4:3: error[unknown-key]"));
  EXPECT_THAT(r.err, HasSubstr("processes/app.yaml:7:11: error[config-path]"));
  EXPECT_THAT(r.err, HasSubstr("config/db.yaml:1:13: error[executable]"));
}

TEST_F(ConfigRepo, ABrokenImageDirNamesNoContainerToRead) {
  add_host_state();
  write("etc/lithos/sandboxes/app.yaml",
        "image-dir: [not, a, path]\n"
        "image-dir-levels: 1\n"
        "allow-users: [1000-1999]\n"
        "allow-groups: [1000-1999]\n");
  write("var/lib/lithos/images/app/v1/config/web.yaml",
        "executable: /bin/true\narguments: [\"@{undeclared}\"]\n");
  auto r = check(root_arg() + " -C " + master());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("sandboxes/app.yaml:1:12: error[wrong-type]"));
  EXPECT_THAT(r.err, Not(HasSubstr("error[template]")));
}

TEST_F(ConfigRepo, UsageErrorsAreOneLineAndExitTwo) {
  for (const std::string& args : {"--root " + quoted(root_ / "nowhere") + " -C " + master(),
                                  "--root " + master() + " -C " + master(),
                                  "--root " + quoted(root_) + " --check-container " + master()}) {
    auto r = check(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("--root")) << r.err;
  }
}

// ---- did you mean -----------------------------------------------------------

namespace {

std::string messages_of(const Diagnostics& diags) {
  std::string all;
  for (const auto& d : diags.items()) all += d.message + "\n";
  return all;
}

}  // namespace

TEST(DidYouMean, CapabilityNames) {
  Diagnostics diags;
  auto doc = decode_text<SandboxCodec>(
      "image-dir: /x\nallow-users: [1]\nallow-groups: [1]\n"
      "capabilities: [CAP_NET_BIND_SERIVCE, net_admn, CAP_TOTALLY_MADE_UP_THING]\n",
      "sandbox.yaml", diags);
  EXPECT_FALSE(doc);
  std::string all = messages_of(diags);
  EXPECT_THAT(all, HasSubstr("\"CAP_NET_BIND_SERIVCE\" (did you mean \"CAP_NET_BIND_SERVICE\"?)"));
  EXPECT_THAT(all, HasSubstr("\"net_admn\" (did you mean \"CAP_NET_ADMIN\"?)"));
  EXPECT_THAT(all, HasSubstr("unknown capability \"CAP_TOTALLY_MADE_UP_THING\"\n"));
}

TEST(DidYouMean, SystemCallNames) {
  Diagnostics diags;
  auto doc = decode_text<SandboxCodec>(
      "image-dir: /x\nallow-users: [1]\nallow-groups: [1]\n"
      "seccomp: {deny: [ptrac, unshare, qqqqqqqqqqqqqqqqqqqq]}\n",
      "sandbox.yaml", diags);
  EXPECT_FALSE(doc);
  std::string all = messages_of(diags);
  EXPECT_THAT(all, HasSubstr("\"ptrac\" (did you mean \"ptrace\"?)"));
  EXPECT_THAT(all, HasSubstr("unknown system call \"qqqqqqqqqqqqqqqqqqqq\"\n"));
  EXPECT_THAT(all, Not(HasSubstr("\"unshare\"")));
}

TEST(DidYouMean, TemplateVariables) {
  Diagnostics diags;
  auto doc = decode_text<ContainerCodec>(
      "executable: /bin/true\n"
      "variables: {port: !TcpPort }\n"
      "arguments: [\"--port=@{prot}\", \"@{lithos:nmae}\", \"@{zzzzzzzzzz}\"]\n",
      "container.yaml", diags);
  ASSERT_TRUE(doc) << messages_of(diags);
  check_container_alone(*doc, diags);
  std::string all = messages_of(diags);
  EXPECT_THAT(all, HasSubstr("\"prot\" (did you mean \"port\"?"));
  EXPECT_THAT(all, HasSubstr("\"lithos:nmae\" (did you mean \"lithos:name\"?"));
  EXPECT_THAT(all, HasSubstr("\"zzzzzzzzzz\" (declare it in `variables`)"));
}
