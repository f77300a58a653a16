// image_inspect.hpp: what lithos_check replays of the knot's view of the
// disk. Examples pin each kind of finding; the properties hold the resolver
// inside the container (whatever symlinks an image holds, an executable is
// only ever found in the image, never on the host behind it) and the
// run-wide cache of host lookups (it never changes a finding).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lithos/policy/image_inspect.hpp"
#include "plan_test_access.hpp"

namespace {

using namespace lithos::policy;
namespace fs = std::filesystem;

std::string make_temp_dir() {
  char tmpl[] = "/tmp/lithos-inspect-XXXXXX";
  const char* made = ::mkdtemp(tmpl);
  return made ? made : "";
}

// The corpus's 129-byte static program (corpus/make-exit0-elf.sh).
void write_program(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::string command =
      std::string(LITHOS_SOURCE_DIR) + "/corpus/make-exit0-elf.sh '" + path.string() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
}

std::string text_of(const std::vector<ImageFinding>& findings) {
  std::string out;
  for (const auto& f : findings) out += f.message + "\n";
  return out;
}

// A complete image (dev, proc, sys, /bin/app), a devfs with pts, and a plan
// for it as the plan builder would make one.
struct Image {
  fs::path base = make_temp_dir();
  fs::path root = base / "image";
  InstancePlan plan = PlanTestAccess::blank();

  Image() {
    for (const char* dir : {"image/dev", "image/proc", "image/sys", "devfs/pts"})
      fs::create_directories(base / dir);
    write_program(root / "bin" / "app");
    plan.image_root = root;
    plan.devfs_dir = base / "devfs";
    plan.executable = "/bin/app";
    plan.workdir = "/";
    plan.uid = 1000;
    plan.gid = 1000;
  }
  ~Image() {
    std::error_code ignored;
    fs::remove_all(base, ignored);
  }
  MountPlan& mount(MountPlan::Kind kind, const std::string& target, const std::string& source) {
    MountPlan m;
    m.kind = kind;
    m.volume = target;
    m.target = target;
    m.source = source;
    plan.mounts.push_back(m);
    return plan.mounts.back();
  }
  std::vector<ImageFinding> findings() const { return inspect_plan_files(plan); }
};

TEST(ImageInspect, CompleteImageHasNoFinding) {
  Image image;
  EXPECT_EQ(text_of(image.findings()), "");
}

TEST(ImageInspect, DynamicProgramNeedsItsLoaderInTheImage) {
  Image image;
  // The host's own /bin/true names a loader (PT_INTERP) the image lacks.
  fs::copy_file("/bin/true", image.root / "bin" / "app", fs::copy_options::overwrite_existing);
  auto findings = image.findings();
  ASSERT_EQ(findings.size(), 1u) << text_of(findings);
  EXPECT_EQ(findings[0].subject, ImageSubject::Executable);
  EXPECT_NE(findings[0].message.find("interpreter /lib"), std::string::npos) << findings[0].message;
}

TEST(ImageInspect, ProgramForAnotherMachineIsRefused) {
  Image image;
  std::fstream file(image.root / "bin" / "app", std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(offsetof(Elf64_Ehdr, e_machine));
  const char other[2] = {static_cast<char>(EM_S390), 0};  // not this machine, not its 32-bit one
  file.write(other, 2);
  file.close();
  EXPECT_NE(text_of(image.findings()).find("built for another machine"), std::string::npos);
}

TEST(ImageInspect, ScriptNeedsItsInterpreter) {
  Image image;
  std::ofstream(image.root / "bin" / "script") << "#!/usr/bin/env python3\nprint(1)\n";
  fs::permissions(image.root / "bin" / "script", fs::perms(0755));
  image.plan.executable = "/bin/script";
  EXPECT_NE(text_of(image.findings()).find("interpreter /usr/bin/env: /usr does not exist"),
            std::string::npos)
      << text_of(image.findings());
  write_program(image.root / "usr" / "bin" / "env");
  EXPECT_EQ(text_of(image.findings()), "");
}

TEST(ImageInspect, ExecuteBitIsCheckedForTheOutsideIds) {
  Image image;
  fs::permissions(image.root / "bin" / "app", fs::perms(0700));  // root's only
  EXPECT_NE(text_of(image.findings()).find("not executable by uid 1000"), std::string::npos);
  // Mapped to host uid 0 (the owner here, root runs the tests), it may.
  if (::geteuid() == 0) {
    image.plan.user_namespace = true;
    image.plan.uid_map = {{1000, 0, 1}};
    image.plan.gid_map = {{1000, 0, 1}};
    EXPECT_EQ(text_of(image.findings()), "");
  }
}

TEST(ImageInspect, SymlinksResolveInsideTheImage) {
  Image image;
  // Absolute and climbing links stay in the image, as under pivot_root.
  fs::create_directories(image.root / "usr" / "bin");
  fs::create_symlink("/bin/app", image.root / "usr" / "bin" / "abs");
  fs::create_symlink("../../../../../../../bin/app", image.root / "usr" / "bin" / "climb");
  for (const char* path : {"/usr/bin/abs", "/usr/bin/climb"}) {
    image.plan.executable = path;
    EXPECT_EQ(text_of(image.findings()), "") << path;
  }
  // A link to a host file the image does not have finds nothing.
  fs::create_symlink("/etc/hostname", image.root / "usr" / "bin" / "host");
  image.plan.executable = "/usr/bin/host";
  EXPECT_NE(text_of(image.findings()).find("/etc does not exist"), std::string::npos);
}

TEST(ImageInspect, MountPointsAreSeenThroughEarlierVolumes) {
  Image image;
  fs::path data = image.base / "host-data";
  fs::create_directories(data / "inner");
  fs::create_directories(image.root / "data");
  fs::create_directories(image.root / "scratch");
  image.mount(MountPlan::Kind::BindReadWrite, "/data", data);
  image.mount(MountPlan::Kind::Tmpfs, "/data/inner", "tmpfs");  // in the host dir: there
  image.mount(MountPlan::Kind::Tmpfs, "/scratch", "tmpfs");
  image.mount(MountPlan::Kind::Tmpfs, "/scratch/sub", "tmpfs");  // in a fresh tmpfs: not
  auto findings = image.findings();
  ASSERT_EQ(findings.size(), 1u) << text_of(findings);
  EXPECT_EQ(findings[0].subject, ImageSubject::VolumeTarget);
  EXPECT_EQ(findings[0].volume, 3u);
  EXPECT_NE(findings[0].message.find("/scratch/sub does not exist"), std::string::npos);
}

TEST(ImageInspect, MountPointsAndSourcesFollowNoSymlink) {
  Image image;
  fs::create_symlink("/tmp", image.root / "data");
  fs::path host = image.base / "host-link";
  fs::create_symlink(image.base / "devfs", host);
  fs::create_directories(image.root / "ro");
  image.mount(MountPlan::Kind::Tmpfs, "/data", "tmpfs");
  image.mount(MountPlan::Kind::BindReadOnly, "/ro", host);
  auto text = text_of(image.findings());
  EXPECT_NE(text.find("/data is a symlink"), std::string::npos) << text;
  EXPECT_NE(text.find("is a symlink; the knot refuses symlinks in a volume's host path"),
            std::string::npos)
      << text;
}

TEST(ImageInspect, AFifoInPlaceOfTheProgramIsReportedNotOpened) {
  Image image;
  fs::remove(image.root / "bin" / "app");
  ASSERT_EQ(::mkfifo((image.root / "bin" / "app").c_str(), 0755), 0);
  // Opening a FIFO for reading would block: the check must return.
  EXPECT_NE(text_of(image.findings()).find("not a regular file"), std::string::npos);
}

TEST(ImageInspect, AbsentImageIsOneFinding) {
  Image image;
  image.plan.image_root = image.base / "no-such-image";
  auto findings = image.findings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].subject, ImageSubject::Image);
}

TEST(ImageInspect, DevfsNeedsPts) {
  Image image;
  EXPECT_TRUE(inspect_devfs(image.base / "devfs").empty());
  fs::remove(image.base / "devfs" / "pts");
  EXPECT_EQ(inspect_devfs(image.base / "devfs").size(), 1u);
  EXPECT_EQ(inspect_devfs(image.base / "absent").size(), 1u);
}

// Whatever links an image holds (absolute, relative, climbing, chained,
// looping), the executable is found only when the image itself has a
// program where the links lead: never the host's copy next to it.
RC_GTEST_PROP(ImageInspect, ExecutablesAreNeverFoundOutsideTheImage, ()) {
  Image image;
  // A program on the host, at the same absolute path as the executable
  // the plan names: found there only by escaping the image.
  const fs::path decoy = image.base / "decoy" / "prog";
  write_program(decoy);
  fs::remove(image.root / "bin" / "app");
  const std::vector<std::string> targets = {decoy.string(),
                                            "../" + decoy.string(),
                                            "../../../../../../.." + decoy.string(),
                                            "a",
                                            "b",
                                            "/l/a",
                                            "../l/b",
                                            "/bin/app",
                                            "c"};
  fs::create_directories(image.root / "l");
  for (const char* name : {"a", "b", "c"}) {
    auto target = *rc::gen::elementOf(targets);
    fs::create_symlink(target, image.root / "l" / name);
  }
  const bool real_program = *rc::gen::arbitrary<bool>();
  if (real_program) write_program(image.root / "bin" / "app");
  image.plan.executable = "/l/" + *rc::gen::elementOf(std::vector<std::string>{"a", "b", "c"});
  auto findings = image.findings();
  // Found (no finding) only if the image has the program: the decoy alone
  // never satisfies it.
  if (!real_program) RC_ASSERT(!findings.empty());
}

// lithos_check shares one HostLookups between every plan of a run: the
// findings of any sequence of plans over host paths of every kind (present,
// absent and created at start, a file, a symlink, shared prefixes) are the
// same as when each plan looks everything up afresh. The image is reached
// directly or through a symlink (the mount root follows it; below it the
// lookups are relative to its descriptor).
RC_GTEST_PROP(ImageInspect, SharedHostLookupsNeverChangeAFinding, ()) {
  Image image;
  const fs::path host = image.base / "host";
  fs::create_directories(host / "srv" / "data");
  fs::create_directories(host / "srv" / "logs");
  std::ofstream(host / "srv" / "file") << "x";
  std::ofstream(host / "resolv.conf") << "nameserver 127.0.0.1\n";
  fs::create_symlink(host / "srv", host / "link");
  fs::create_symlink(image.root, image.base / "image-link");
  for (const char* dir : {"a", "b", "c"}) fs::create_directories(image.root / dir);
  const std::vector<std::string> sources = {
      (host / "srv" / "data").string(),      (host / "srv" / "logs").string(),
      (host / "srv" / "file").string(),      (host / "link" / "data").string(),
      (host / "absent" / "x").string(),      (host / "srv" / "absent").string(),
      (host / "srv" / "file" / "x").string()};
  const std::vector<std::string> host_files = {
      (host / "resolv.conf").string(), (host / "srv").string(), (host / "no-such-file").string()};
  const std::vector<std::string> programs = {"/bin/app", "/a", "/no-such-program"};
  HostLookups shared;
  const auto plans = *rc::gen::inRange(1, 6);
  for (int p = 0; p < plans; ++p) {
    InstancePlan plan = image.plan;
    plan.mounts.clear();
    if (*rc::gen::arbitrary<bool>()) plan.image_root = (image.base / "image-link").string();
    plan.executable = *rc::gen::elementOf(programs);
    for (const char* target : {"/a", "/b", "/c"}) {
      if (!*rc::gen::arbitrary<bool>()) continue;
      MountPlan m;
      m.kind = MountPlan::Kind::BindReadWrite;
      m.volume = m.target = target;
      m.source = *rc::gen::elementOf(sources);
      m.create = *rc::gen::arbitrary<bool>();
      plan.mounts.push_back(m);
    }
    if (*rc::gen::arbitrary<bool>()) plan.resolv_conf_source = *rc::gen::elementOf(host_files);
    const auto fresh = inspect_plan_files(plan);
    const auto cached = inspect_plan_files(plan, &shared);
    RC_ASSERT(text_of(cached) == text_of(fresh));
    RC_ASSERT(cached.size() == fresh.size());
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      RC_ASSERT(cached[i].subject == fresh[i].subject);
      RC_ASSERT(cached[i].volume == fresh[i].volume);
      RC_ASSERT(cached[i].warning == fresh[i].warning);
    }
  }
}

}  // namespace
