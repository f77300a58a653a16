// enter_cgroup for real on this host (whatever its layout), and the v1/v2
// write paths against a fake cgroup tree in a temp dir (a v2 host is not
// needed to check that the v2 files get the v2 values).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "block_device_support.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/fd.hpp"

using namespace lithos::runtime;
namespace fs = std::filesystem;

namespace {

constexpr int kDeadlineMs = 10000;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Waits for `pid` through a pidfd with a deadline; kills it (ours) on timeout.
int reap(pid_t pid) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, kDeadlineMs) <= 0) ::kill(pid, SIGKILL);
  }
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid ? status : -1;
}

// A child that blocks until its pipe closes; killed and reaped on scope exit.
class Sleeper {
 public:
  Sleeper() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    read_.reset(fds[0]);
    write_.reset(fds[1]);
    pid_ = ::fork();
    if (pid_ == 0) {
      write_.reset();
      char c;
      while (::read(read_.get(), &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    read_.reset();
  }
  ~Sleeper() { stop(); }
  pid_t pid() const { return pid_; }
  void stop() {
    if (pid_ <= 0) return;
    write_.reset();
    EXPECT_GE(reap(pid_), 0);
    pid_ = -1;
  }

 private:
  UniqueFd read_, write_;
  pid_t pid_ = -1;
};

lithos::policy::CgroupPlan test_plan(std::vector<std::string> controllers) {
  lithos::policy::CgroupPlan plan;
  plan.parent = "lithos-test." + std::to_string(::getpid());
  plan.scope = "t:child.0.scope";
  plan.controllers = std::move(controllers);
  plan.memory_limit = 64ULL << 20;
  plan.cpu_shares = 512;
  plan.pids_limit = 32;
  return plan;
}

void touch(const fs::path& p) {
  std::ofstream(p.string()).flush();
}

// A fresh directory removed on scope exit, also when an assertion returns early.
struct TempTree {
  fs::path root;
  explicit TempTree(const std::string& name)
      : root(fs::temp_directory_path() / (name + "." + std::to_string(::getpid()))) {
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

}  // namespace

TEST(CgroupsFake, V2WritesIntoAFakeUnifiedTree) {
  TempTree tree("lithos-cg-v2");
  const fs::path& root = tree.root;
  fs::create_directories(root / "lithos.slice" / "web:app.0.scope");
  touch(root / "cgroup.subtree_control");
  touch(root / "lithos.slice" / "cgroup.subtree_control");
  const fs::path scope = root / "lithos.slice" / "web:app.0.scope";
  for (auto f : {"memory.max", "cpu.weight", "pids.max", "cgroup.procs"}) touch(scope / f);
  // memory.swap.max left out: no swap accounting -> skipped silently.

  std::string mountinfo = "30 22 0:26 / " + root.string() + " rw - cgroup2 cgroup2 rw\n";
  auto host = describe_cgroups(mountinfo, "0::/init.scope\n", "cpu io memory pids\n");
  ASSERT_TRUE(host.ok()) << host.error().what();
  lithos::policy::CgroupPlan plan;
  plan.parent = "lithos.slice";
  plan.scope = "web:app.0.scope";
  plan.controllers = {"name", "cpu", "cpuacct", "memory", "pids"};
  plan.memory_limit = 1 << 30;
  plan.cpu_shares = 1024;
  plan.pids_limit = 77;
  auto placed = place_cgroup(*host, plan);
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  auto prepared = prepare_cgroup_parent(*placed);
  ASSERT_TRUE(prepared.ok()) << prepared.error().what();
  EXPECT_EQ(slurp(root / "cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_EQ(slurp(root / "lithos.slice" / "cgroup.subtree_control"), "+cpu +memory +pids");

  auto entered = enter_cgroup(*placed, plan, 4242);
  ASSERT_TRUE(entered.ok()) << entered.error().what();
  EXPECT_TRUE(entered->empty()) << entered->front().what();
  EXPECT_EQ(slurp(scope / "memory.max"), "1073741824");
  EXPECT_EQ(slurp(scope / "cpu.weight"), "39");
  EXPECT_EQ(slurp(scope / "pids.max"), "77");
  EXPECT_EQ(slurp(scope / "cgroup.procs"), "4242");
  EXPECT_FALSE(fs::exists(scope / "memory.swap.max"));
}

TEST(CgroupsFake, V1MissingParentAndFailedWrites) {
  TempTree tree("lithos-cg-v1");
  const fs::path& root = tree.root;
  fs::create_directories(root / "memory");
  std::string mountinfo =
      "35 31 0:32 / " + (root / "memory").string() + " rw - cgroup cgroup rw,memory\n";
  auto host = describe_cgroups(mountinfo, "4:memory:/\n", "");
  ASSERT_TRUE(host.ok());
  auto plan = test_plan({"memory"});
  auto placed = place_cgroup(*host, plan);
  ASSERT_TRUE(placed.ok());
  // The tree has not created the parent: a fatal error naming it.
  auto missing = enter_cgroup(*placed, plan, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().path, (*placed)[0].parent);
  EXPECT_EQ(missing.error().err, ENOENT);

  ASSERT_TRUE(prepare_cgroup_parent(*placed).ok());
  // A plain directory has no limit files: writes fail as warnings (logged),
  // joining fails as an error.
  auto entered = enter_cgroup(*placed, plan, 1);
  ASSERT_FALSE(entered.ok());
  EXPECT_NE(entered.error().path.find("cgroup.procs"), std::string::npos);
  touch(fs::path((*placed)[0].scope) / "cgroup.procs");
  entered = enter_cgroup(*placed, plan, 1);
  ASSERT_TRUE(entered.ok()) << entered.error().what();
  // cpu and pids not joined; memory.limit_in_bytes missing (memsw is optional).
  ASSERT_EQ(entered->size(), 3u);
  EXPECT_NE((*entered)[0].what().find("cpu-shares"), std::string::npos) << (*entered)[0].what();
  EXPECT_NE((*entered)[1].what().find("pids-limit"), std::string::npos) << (*entered)[1].what();
  EXPECT_NE((*entered)[2].path.find("memory.limit_in_bytes"), std::string::npos);
  EXPECT_EQ((*entered)[2].err, ENOENT);
  EXPECT_EQ(slurp((*placed)[0].scope + "/cgroup.procs"), "1");
}

// Every control of the plan set, io-max on one device (a fake file keeps
// only the last write; the kernel keeps one line per device).
lithos::policy::CgroupPlan controls_plan() {
  lithos::policy::CgroupPlan plan;
  plan.parent = "lithos.slice";
  plan.scope = "web:app.0.scope";
  plan.controllers = {"memory", "cpu", "blkio"};
  plan.memory_limit = 1 << 30;
  plan.memory_high = 512 << 20;
  plan.memory_low = 64 << 20;
  plan.memory_oom_group = true;
  plan.cpu_quota_us = 150000;
  plan.cpu_period_us = 100000;
  plan.io_weight = 200;
  lithos::policy::IoMaxPlan disk;
  disk.major = 8;
  disk.minor = 16;
  disk.limits.read_bps = 1000000;
  disk.limits.write_iops = 50;
  plan.io_max.push_back(disk);
  return plan;
}

lithos::policy::CgroupPlan without_devices(lithos::policy::CgroupPlan plan) {
  plan.io_max.clear();
  return plan;
}

TEST(CgroupsFake, V2ControlsWriteTheirV2Files) {
  TempTree tree("lithos-cg-v2-controls");
  const fs::path& root = tree.root;
  const fs::path scope = root / "lithos.slice" / "web:app.0.scope";
  fs::create_directories(scope);
  for (auto f : {"memory.max", "memory.high", "memory.low", "memory.oom.group", "cpu.weight",
                 "cpu.max", "io.weight", "io.max", "cgroup.procs"})
    touch(scope / f);
  std::string mountinfo = "30 22 0:26 / " + root.string() + " rw - cgroup2 cgroup2 rw\n";
  auto host = describe_cgroups(mountinfo, "0::/\n", "cpu io memory pids\n");
  ASSERT_TRUE(host.ok()) << host.error().what();
  auto plan = controls_plan();
  auto placed = place_cgroup(*host, plan);
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  // v2 files below the root are not looked for. (io-max devices are looked
  // for in this host's /sys: CgroupsHost.IoMaxNamesADeviceThisHostHas.)
  EXPECT_FALSE(cgroup_refusal(*host, without_devices(plan)));

  auto entered = enter_cgroup(*placed, plan, 4242);
  ASSERT_TRUE(entered.ok()) << entered.error().what();
  EXPECT_TRUE(entered->empty()) << entered->front().what();
  EXPECT_EQ(slurp(scope / "memory.high"), "536870912");
  EXPECT_EQ(slurp(scope / "memory.low"), "67108864");
  EXPECT_EQ(slurp(scope / "memory.oom.group"), "1");
  EXPECT_EQ(slurp(scope / "cpu.max"), "150000 100000");
  EXPECT_EQ(slurp(scope / "io.weight"), "default 200");
  EXPECT_EQ(slurp(scope / "io.max"), "8:16 rbps=1000000 wbps=max riops=max wiops=50");

  // A required control whose file is missing stops the start, naming the
  // key and the file; the process is not moved in.
  fs::remove(scope / "io.weight");
  fs::remove(scope / "cgroup.procs");
  touch(scope / "cgroup.procs");
  auto refused = enter_cgroup(*placed, plan, 4243);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().path, (scope / "io.weight").string());
  EXPECT_EQ(refused.error().err, ENOENT);
  EXPECT_NE(refused.error().what().find("io-weight: write default 200"), std::string::npos)
      << refused.error().what();
  EXPECT_EQ(slurp(scope / "cgroup.procs"), "");
}

TEST(CgroupsFake, V1ControlsWriteTheirEquivalents) {
  TempTree tree("lithos-cg-v1-controls");
  const fs::path& root = tree.root;
  std::string mountinfo;
  int next_id = 40;
  for (auto controller : {"memory", "cpu", "blkio"}) {
    fs::create_directories(root / controller);
    const int id = next_id++;
    mountinfo += std::to_string(id) + " 31 0:" + std::to_string(id) + " / " +
                 (root / controller).string() + " rw - cgroup cgroup rw," + controller + "\n";
  }
  auto host = describe_cgroups(mountinfo, "4:memory:/\n3:cpu:/\n2:blkio:/\n", "");
  ASSERT_TRUE(host.ok()) << host.error().what();
  auto plan = controls_plan();
  plan.memory_high.reset();
  plan.memory_oom_group = false;
  auto placed = place_cgroup(*host, plan);
  ASSERT_TRUE(placed.ok()) << placed.error().what();

  // What lithos_check asks: a v1 hierarchy has its files at its root too.
  // Without blkio.weight there (no CFQ/BFQ scheduler), io-weight is refused.
  for (auto f : {"memory.limit_in_bytes", "memory.soft_limit_in_bytes"}) touch(root / "memory" / f);
  for (auto f : {"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"}) touch(root / "cpu" / f);
  for (auto f : {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                 "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"})
    touch(root / "blkio" / f);
  auto refusal = cgroup_refusal(*host, without_devices(plan));
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->key, "io-weight");
  EXPECT_EQ(refusal->why, "the blkio hierarchy here (cgroup v1, " + (root / "blkio").string() +
                              ") has no blkio.weight, and the unified hierarchy does not serve "
                              "blkio");
  touch(root / "blkio" / "blkio.weight");
  EXPECT_FALSE(cgroup_refusal(*host, without_devices(plan)));

  ASSERT_TRUE(prepare_cgroup_parent(*placed).ok());
  for (const auto& p : *placed) {
    fs::create_directories(p.scope);
    for (const auto& entry : fs::directory_iterator(fs::path(p.base)))
      if (entry.is_regular_file()) touch(fs::path(p.scope) / entry.path().filename());
    touch(fs::path(p.scope) / "cgroup.procs");
  }
  auto entered = enter_cgroup(*placed, plan, 4242);
  ASSERT_TRUE(entered.ok()) << entered.error().what();
  EXPECT_TRUE(entered->empty()) << entered->front().what();
  auto scope = [&](const char* controller) {
    return root / controller / "lithos.slice" / "web:app.0.scope";
  };
  EXPECT_EQ(slurp(scope("memory") / "memory.soft_limit_in_bytes"), "67108864");
  EXPECT_EQ(slurp(scope("cpu") / "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(slurp(scope("cpu") / "cpu.cfs_quota_us"), "150000");
  EXPECT_EQ(slurp(scope("blkio") / "blkio.weight"), "1000");  // 200 x 5
  EXPECT_EQ(slurp(scope("blkio") / "blkio.throttle.read_bps_device"), "8:16 1000000");
  EXPECT_EQ(slurp(scope("blkio") / "blkio.throttle.write_iops_device"), "8:16 50");
  // Limits not given are written as none: the kernel keeps what is not named.
  EXPECT_EQ(slurp(scope("blkio") / "blkio.throttle.write_bps_device"), "8:16 0");
  EXPECT_EQ(slurp(scope("blkio") / "blkio.throttle.read_iops_device"), "8:16 0");

  // memory-high and memory-oom-group have no v1 file: refused at check and
  // at start, before anything is written or joined.
  plan.memory_high = 1 << 20;
  refusal = cgroup_refusal(*host, without_devices(plan));
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->key, "memory-high");
  EXPECT_NE(refusal->why.find("memory.high exists only in cgroup v2"), std::string::npos)
      << refusal->why;
  auto refused = enter_cgroup(*placed, plan, 4243);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().what().find("memory-high cannot be applied: memory.high exists only"),
            std::string::npos)
      << refused.error().what();
  EXPECT_EQ(slurp(scope("memory") / "cgroup.procs"), "4242");
}

TEST(CgroupsFake, AControlWhoseControllerIsNotJoinedIsUnsupported) {
  CgroupPlacement memory_only;
  memory_only.base = "/cg/memory";
  memory_only.parent = "/cg/memory/lithos.slice";
  memory_only.scope = "/cg/memory/lithos.slice/x.scope";
  memory_only.controllers = {"memory"};
  auto plan = controls_plan();
  plan.controllers = {"memory"};
  auto writes = plan_cgroup_writes({memory_only}, plan);
  std::vector<std::string> keys;
  for (const auto& u : writes.unsupported) keys.push_back(u.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"memory-high", "memory-oom-group", "cpu-quota-us",
                                            "io-weight", "io-max"}));
  EXPECT_NE(writes.unsupported[2].why.find("the cpu controller is not joined"), std::string::npos);
}

TEST(CgroupsPure, IoWeightAsBlkioWeight) {
  EXPECT_EQ(io_weight_to_blkio(100), 500u);  // both defaults
  EXPECT_EQ(io_weight_to_blkio(1), 10u);     // the v1 minimum
  EXPECT_EQ(io_weight_to_blkio(200), 1000u);
  EXPECT_EQ(io_weight_to_blkio(10000), 1000u);  // the v1 maximum
  for (std::uint64_t w = 1; w < 10000; ++w)
    ASSERT_LE(io_weight_to_blkio(w), io_weight_to_blkio(w + 1)) << w;
}

// A scope the tree kept for a restart is entered by a knot with a changed
// config: every control the new plan leaves out is back at the kernel's
// default, and a device the old io-max limited is unlimited again. On this
// host's real hierarchies, whichever layout serves each controller.
TEST(CgroupsHost, AReusedScopeKeepsNothingTheNewPlanDrops) {
  auto host = probe_cgroups();
  ASSERT_TRUE(host.ok()) << host.error().what();
  ASSERT_NE(host->layout, CgroupLayout::None);
  auto found = lithos::test::whole_disk_device();
  ASSERT_TRUE(found) << "no block device in /sys/block";
  const std::string disk = lithos::test::whole_disk();
  lithos::policy::IoMaxPlan device = *found;
  device.limits.read_bps = 1048576;

  auto before = test_plan({"memory", "cpu", "blkio"});
  before.pids_limit.reset();
  before.memory_low = 8 << 20;
  before.cpu_quota_us = 50000;
  before.io_max.push_back(device);
  auto after = test_plan({"memory", "cpu", "blkio"});
  after.pids_limit.reset();
  auto placed = place_cgroup(*host, before);
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  struct Cleanup {
    const std::vector<CgroupPlacement>& placements;
    ~Cleanup() { EXPECT_TRUE(remove_cgroup(placements, true).ok()); }
  } cleanup{*placed};
  ASSERT_TRUE(prepare_cgroup_parent(*placed).ok());
  auto dir = [&](const char* controller) {
    for (const auto& p : *placed)
      for (const auto& c : p.controllers)
        if (c == controller || (c == "io" && std::string(controller) == "blkio")) return p.scope;
    ADD_FAILURE() << "no placement for " << controller;
    return std::string();
  };

  for (const auto* plan : {&before, &after}) {
    Sleeper child;
    ASSERT_GT(child.pid(), 0);
    auto entered = enter_cgroup(*placed, *plan, child.pid());
    ASSERT_TRUE(entered.ok()) << entered.error().what();
    for (const auto& w : *entered) ADD_FAILURE() << "warning: " << w.what();
    const bool set = plan == &before;
    const bool memory_v1 = host->find_v1("memory") != nullptr;
    EXPECT_EQ(
        trimmed(slurp(dir("memory") + (memory_v1 ? "/memory.soft_limit_in_bytes" : "/memory.low"))),
        set ? "8388608" : (memory_v1 ? "9223372036854771712" : "0"));
    if (host->find_v1("cpu"))
      EXPECT_EQ(trimmed(slurp(dir("cpu") + "/cpu.cfs_quota_us")), set ? "50000" : "-1");
    else
      EXPECT_EQ(trimmed(slurp(dir("cpu") + "/cpu.max")), set ? "50000 100000" : "max 100000");
    if (host->find_v1("blkio"))
      EXPECT_EQ(trimmed(slurp(dir("blkio") + "/blkio.throttle.read_bps_device")),
                set ? disk + " 1048576" : "");
    else
      EXPECT_EQ(slurp(dir("blkio") + "/io.max").find(disk) != std::string::npos, set);
    child.stop();
  }
}

// lithos_check's question about io-max devices, asked of this host: a whole
// disk that exists passes, a device number nothing has is refused by name.
TEST(CgroupsHost, IoMaxNamesADeviceThisHostHas) {
  auto host = probe_cgroups();
  ASSERT_TRUE(host.ok()) << host.error().what();
  auto found = lithos::test::whole_disk_device();
  ASSERT_TRUE(found) << "no block device in /sys/block";
  lithos::policy::CgroupPlan plan;
  plan.controllers = {"blkio"};
  lithos::policy::IoMaxPlan device = *found;
  device.limits.write_iops = 100;
  plan.io_max.push_back(device);
  auto whole = cgroup_refusal(*host, plan);
  EXPECT_FALSE(whole) << whole->key << ": " << whole->why;

  plan.io_max[0].major = 4095;
  plan.io_max[0].minor = 1048575;
  auto absent = cgroup_refusal(*host, plan);
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->key, "io-max");
  EXPECT_EQ(absent->why,
            "no block device 4095:1048575 on this host (/sys/dev/block/4095:1048575 does not "
            "exist)");
}

// The real thing on this host: parent + scope created, limits written and
// read back, a child moved in, everything removed again.
TEST(CgroupsHost, EnterScopeWithLimits) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (CI runs these as root)";
  auto host = probe_cgroups();
  ASSERT_TRUE(host.ok()) << host.error().what();
  if (host->layout == CgroupLayout::None) GTEST_SKIP() << "no cgroup filesystem mounted";
  std::cout << "cgroup layout: " << layout_name(host->layout) << "\n";

  std::vector<std::string> controllers = {"memory", "pids", "cpu"};
  auto plan = test_plan(controllers);
  auto placed = place_cgroup(*host, plan);
  ASSERT_TRUE(placed.ok()) << placed.error().what();

  struct Cleanup {
    const std::vector<CgroupPlacement>& placements;
    ~Cleanup() {
      auto removed = remove_cgroup(placements, true);
      EXPECT_TRUE(removed.ok()) << (removed.ok() ? "" : removed.error().what());
      for (const auto& p : placements) EXPECT_FALSE(fs::exists(p.parent)) << p.parent;
    }
  } cleanup{*placed};

  auto prepared = prepare_cgroup_parent(*placed);
  ASSERT_TRUE(prepared.ok()) << prepared.error().what();
  {
    Sleeper child;
    ASSERT_GT(child.pid(), 0);
    auto entered = enter_cgroup(*placed, plan, child.pid());
    ASSERT_TRUE(entered.ok()) << entered.error().what();
    for (const auto& w : *entered) ADD_FAILURE() << "warning: " << w.what();

    std::string own = slurp("/proc/" + std::to_string(child.pid()) + "/cgroup");
    for (const auto& p : *placed) {
      // The child is listed in every scope it joined.
      std::string procs = slurp(p.scope + "/cgroup.procs");
      EXPECT_NE(("\n" + procs).find("\n" + std::to_string(child.pid()) + "\n"), std::string::npos)
          << p.scope << ": " << procs;
      std::vector<std::pair<std::string, std::string>> expected;  // file, value
      for (const auto& c : p.controllers) {
        if (c == "memory" && p.unified) expected.emplace_back("memory.max", "67108864");
        if (c == "memory" && !p.unified) {
          expected.emplace_back("memory.limit_in_bytes", "67108864");
          if (fs::exists(p.scope + "/memory.memsw.limit_in_bytes"))
            expected.emplace_back("memory.memsw.limit_in_bytes", "67108864");
        }
        if (c == "pids") expected.emplace_back("pids.max", "32");
        if (c == "cpu")
          expected.emplace_back(p.unified ? "cpu.weight" : "cpu.shares", p.unified ? "20" : "512");
      }
      for (const auto& [file, value] : expected)
        EXPECT_EQ(trimmed(slurp(p.scope + "/" + file)), value) << p.scope << "/" << file;
      EXPECT_NE(own.find(plan.parent + "/" + plan.scope), std::string::npos) << own;
    }
    // Scope busy while the child lives.
    EXPECT_FALSE(remove_cgroup(*placed, false).ok());
    child.stop();
  }
  auto removed = remove_cgroup(*placed, false);
  ASSERT_TRUE(removed.ok()) << removed.error().what();
  for (const auto& p : *placed) EXPECT_FALSE(fs::exists(p.scope)) << p.scope;
}
