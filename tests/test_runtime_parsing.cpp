// Pure parts of the runtime: host cgroup layout detection from fixture files
// (v1, v2, hybrid), controller placement, limit files and values, shares ->
// weight, the error formatter, UniqueFd, and seccomp compilation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "../proptests/plan_test_access.hpp"
#include "lithos/policy/hardening.hpp"
#include "lithos/runtime/cgroups.hpp"
#include "lithos/runtime/error.hpp"
#include "lithos/runtime/fd.hpp"
#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/seccomp.hpp"

using namespace lithos::runtime;
using lithos::policy::CgroupPlan;
using lithos::policy::SeccompPlan;

namespace {

// Debian 10 style: legacy v1 under systemd, two co-mounted controllers.
constexpr const char* kV1Mountinfo =
    "21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "26 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "27 21 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "28 27 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "31 27 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "32 27 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup "
    "cgroup rw,memory\n"
    "33 27 0:29 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup "
    "rw,blkio\n"
    "34 27 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup "
    "rw,pids\n"
    "40 26 0:40 / /mnt/with\\040space rw,relatime shared:20 - tmpfs my\\040tmp rw\n";
constexpr const char* kV1Pid1 =
    "12:hugetlb:/\n"
    "11:pids:/init.scope\n"
    "6:blkio:/\n"
    "5:memory:/\n"
    "3:cpu,cpuacct:/\n"
    "1:name=systemd:/init.scope\n";

// Pure v2 under systemd (Debian 11+).
constexpr const char* kV2Mountinfo =
    "22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
    "27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
constexpr const char* kV2Pid1 = "0::/init.scope\n";
constexpr const char* kV2Controllers = "cpuset cpu io memory hugetlb pids rdma misc\n";

// Hybrid: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified, with no
// optional fields (as on this build machine).
constexpr const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr const char* kHybridPid1 =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "4:memory:/\n"
    "2:cpuacct:/\n"
    "1:cpu:/\n"
    "0::/\n";
constexpr const char* kHybridControllers = "hugetlb io\n";

CgroupHost describe(const char* mountinfo, const char* pid1, const char* controllers) {
  auto host = describe_cgroups(mountinfo, pid1, controllers);
  EXPECT_TRUE(host.ok()) << (host.ok() ? "" : host.error().what());
  return host.ok() ? std::move(host.value()) : CgroupHost{};
}

CgroupPlan plan_with(std::vector<std::string> controllers) {
  CgroupPlan plan;
  plan.parent = "lithos.slice";
  plan.scope = "web:app.0.scope";
  plan.controllers = std::move(controllers);
  plan.memory_limit = 268435456;
  plan.cpu_shares = 512;
  plan.pids_limit = 100;
  return plan;
}

const CgroupPlacement* placement_with(const std::vector<CgroupPlacement>& ps,
                                      const std::string& c) {
  for (const auto& p : ps)
    for (const auto& name : p.controllers)
      if (name == c) return &p;
  return nullptr;
}

std::string write_value(const CgroupWrites& w, const std::string& file) {
  for (const auto& x : w.writes)
    if (x.file == file) return x.value;
  return "<none>";
}

}  // namespace

// ---- mountinfo / proc cgroup -------------------------------------------------

TEST(Mountinfo, ParsesFieldsAfterOptionalSeparatorAndUnescapes) {
  auto entries = parse_mountinfo(kV1Mountinfo);
  ASSERT_TRUE(entries.ok()) << entries.error().what();
  ASSERT_EQ(entries->size(), 9u);
  const auto& cpu = (*entries)[4];
  EXPECT_EQ(cpu.mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(cpu.fstype, "cgroup");
  EXPECT_EQ(cpu.root, "/");
  EXPECT_EQ(cpu.super_options, (std::vector<std::string>{"rw", "cpu", "cpuacct"}));
  const auto& spaced = entries->back();
  EXPECT_EQ(spaced.mount_point, "/mnt/with space");
  EXPECT_EQ(spaced.source, "my tmp");
  EXPECT_EQ(spaced.fstype, "tmpfs");
}

TEST(Mountinfo, MalformedLineIsAnErrorNamingTheLine) {
  auto bad = parse_mountinfo(std::string(kV2Mountinfo) + "99 1 0:1 / /x rw shared:1 cgroup2\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("line 4"), std::string::npos) << bad.error().what();
  EXPECT_FALSE(parse_mountinfo("garbage\n").ok());
}

TEST(ProcCgroup, ParsesV1AndV2Lines) {
  auto lines = parse_proc_cgroup(kV1Pid1);
  ASSERT_TRUE(lines.ok()) << lines.error().what();
  ASSERT_EQ(lines->size(), 6u);
  EXPECT_EQ((*lines)[4].id, 3u);
  EXPECT_EQ((*lines)[4].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*lines)[5].controllers, (std::vector<std::string>{"name=systemd"}));
  EXPECT_EQ((*lines)[5].path, "/init.scope");
  auto v2 = parse_proc_cgroup(kV2Pid1);
  ASSERT_TRUE(v2.ok());
  ASSERT_EQ(v2->size(), 1u);
  EXPECT_EQ((*v2)[0].id, 0u);
  EXPECT_TRUE((*v2)[0].controllers.empty());
  EXPECT_EQ((*v2)[0].path, "/init.scope");
  // A path may contain ':' (only the first two separate fields).
  auto colon = parse_proc_cgroup("4:memory:/lithos.slice/web:app.0.scope\n");
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ((*colon)[0].path, "/lithos.slice/web:app.0.scope");
}

TEST(ProcCgroup, RejectsMalformedLines) {
  EXPECT_FALSE(parse_proc_cgroup("memory:/\n").ok());
  EXPECT_FALSE(parse_proc_cgroup("x:memory:/\n").ok());
  EXPECT_FALSE(parse_proc_cgroup("4:memory:relative\n").ok());
  EXPECT_FALSE(parse_proc_cgroup(":memory:/\n").ok());
}

TEST(ControllerList, SplitsOnWhitespace) {
  EXPECT_EQ(parse_controller_list(kV2Controllers).size(), 8u);
  EXPECT_EQ(parse_controller_list("  memory\tpids\n"),
            (std::vector<std::string>{"memory", "pids"}));
  EXPECT_TRUE(parse_controller_list("\n").empty());
}

// ---- layouts -------------------------------------------------------------------

TEST(CgroupLayout, PureV1) {
  auto host = describe(kV1Mountinfo, kV1Pid1, "");
  EXPECT_EQ(host.layout, CgroupLayout::V1);
  EXPECT_FALSE(host.v2.has_value());
  ASSERT_EQ(host.v1.size(), 5u);  // hugetlb is listed but not mounted
  const auto* cpu = host.find_v1("cpuacct");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->mount, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(cpu->dir_name, "cpu,cpuacct");
  EXPECT_EQ(host.find_v1("cpu"), cpu);
  const auto* named = host.find_v1("name");
  ASSERT_NE(named, nullptr);
  EXPECT_EQ(named, host.find_v1("name=systemd"));
  EXPECT_EQ(named->dir_name, "systemd");
  EXPECT_EQ(named->init_path, "/init.scope");
  EXPECT_EQ(host.find_v1("pids")->init_path, "/init.scope");
  EXPECT_EQ(host.find_v1("memory")->init_path, "/");
  EXPECT_EQ(host.find_v1("hugetlb"), nullptr);
}

TEST(CgroupLayout, PureV2StripsInitScope) {
  auto host = describe(kV2Mountinfo, kV2Pid1, kV2Controllers);
  EXPECT_EQ(host.layout, CgroupLayout::V2);
  EXPECT_TRUE(host.v1.empty());
  ASSERT_TRUE(host.v2.has_value());
  EXPECT_EQ(host.v2->mount, "/sys/fs/cgroup");
  EXPECT_EQ(host.v2->init_path, "/init.scope");
  EXPECT_EQ(host.v2->base, "/");
  EXPECT_EQ(host.v2->controllers.size(), 8u);
  // Not systemd: PID 1's path is kept.
  auto other = describe(kV2Mountinfo, "0::/machine/init\n", kV2Controllers);
  ASSERT_TRUE(other.v2.has_value());
  EXPECT_EQ(other.v2->base, "/machine/init");
  EXPECT_EQ(describe(kV2Mountinfo, "0::/a/init.scope\n", "").v2->base, "/a");
}

TEST(CgroupLayout, Hybrid) {
  auto host = describe(kHybridMountinfo, kHybridPid1, kHybridControllers);
  EXPECT_EQ(host.layout, CgroupLayout::Hybrid);
  EXPECT_EQ(host.v1.size(), 5u);
  ASSERT_TRUE(host.v2.has_value());
  EXPECT_EQ(host.v2->mount, "/sys/fs/cgroup/unified");
  EXPECT_EQ(host.v2->base, "/");
  EXPECT_EQ(host.find_v1("cpu")->mount, "/sys/fs/cgroup/cpu");
  EXPECT_EQ(host.find_v1("cpuacct")->mount, "/sys/fs/cgroup/cpuacct");
}

TEST(CgroupLayout, NoCgroupsAtAllAndV2LineWithoutMount) {
  auto none = describe("26 0 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/\n", "");
  EXPECT_EQ(none.layout, CgroupLayout::None);
  EXPECT_FALSE(none.v2.has_value());
  // A bind-mounted subtree (container): paths are relative to its root.
  auto sub = describe("50 1 0:30 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                      "4:memory:/lxc/c1/init\n", "");
  ASSERT_EQ(sub.layout, CgroupLayout::V1);
  EXPECT_EQ(sub.find_v1("memory")->init_path, "/init");
  EXPECT_EQ(layout_name(CgroupLayout::Hybrid), "hybrid");
}

TEST(CgroupLayout, BadInputIsAnError) {
  EXPECT_FALSE(describe_cgroups("bad\n", kV2Pid1, "").ok());
  EXPECT_FALSE(describe_cgroups(kV2Mountinfo, "nonsense\n", "").ok());
}

// ---- placement ----------------------------------------------------------------

TEST(CgroupPlacement, V1DefaultControllersOnePlacementPerHierarchy) {
  auto host = describe(kV1Mountinfo, kV1Pid1, "");
  auto placed = place_cgroup(host, plan_with({"name", "cpu", "cpuacct", "memory", "blkio"}));
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  ASSERT_EQ(placed->size(), 4u);  // cpu and cpuacct share a hierarchy
  const auto* named = placement_with(*placed, "name");
  ASSERT_NE(named, nullptr);
  EXPECT_FALSE(named->unified);
  EXPECT_EQ(named->base, "/sys/fs/cgroup/systemd/init.scope");
  EXPECT_EQ(named->scope, "/sys/fs/cgroup/systemd/init.scope/lithos.slice/web:app.0.scope");
  const auto* cpu = placement_with(*placed, "cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu, placement_with(*placed, "cpuacct"));
  EXPECT_EQ(cpu->parent, "/sys/fs/cgroup/cpu,cpuacct/lithos.slice");
  EXPECT_EQ(placement_with(*placed, "memory")->scope,
            "/sys/fs/cgroup/memory/lithos.slice/web:app.0.scope");
}

TEST(CgroupPlacement, V1MissingControllerIsNamed) {
  auto host = describe(kV1Mountinfo, kV1Pid1, "");
  auto placed = place_cgroup(host, plan_with({"memory", "hugetlb"}));
  ASSERT_FALSE(placed.ok());
  EXPECT_NE(placed.error().what().find("CGroup hugetlb not mounted"), std::string::npos)
      << placed.error().what();
}

TEST(CgroupPlacement, V2MapsNamesAndChecksEnabledControllers) {
  auto host = describe(kV2Mountinfo, kV2Pid1, kV2Controllers);
  auto placed =
      place_cgroup(host, plan_with({"name", "cpu", "cpuacct", "memory", "blkio", "pids"}));
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  ASSERT_EQ(placed->size(), 1u);
  const auto& p = placed->front();
  EXPECT_TRUE(p.unified);
  EXPECT_EQ(p.base, "/sys/fs/cgroup");
  EXPECT_EQ(p.scope, "/sys/fs/cgroup/lithos.slice/web:app.0.scope");
  EXPECT_EQ(p.controllers, (std::vector<std::string>{"cpu", "memory", "io", "pids"}));

  auto limited = describe(kV2Mountinfo, kV2Pid1, "cpu io pids\n");
  auto missing = place_cgroup(limited, plan_with({"cpu", "memory"}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().what().find("CGroup memory not mounted"), std::string::npos)
      << missing.error().what();
}

TEST(CgroupPlacement, HybridPrefersV1AndFallsBackToUnified) {
  auto host = describe(kHybridMountinfo, kHybridPid1, kHybridControllers);
  auto placed = place_cgroup(host, plan_with({"name", "memory", "pids", "blkio", "hugetlb"}));
  ASSERT_TRUE(placed.ok()) << placed.error().what();
  ASSERT_EQ(placed->size(), 4u);
  EXPECT_FALSE(placement_with(*placed, "name")->unified);
  EXPECT_EQ(placement_with(*placed, "name")->base, "/sys/fs/cgroup/systemd");
  EXPECT_FALSE(placement_with(*placed, "memory")->unified);
  EXPECT_FALSE(placement_with(*placed, "pids")->unified);
  // blkio is not a v1 mount in this fixture: it lands on v2 as "io".
  const auto* io = placement_with(*placed, "io");
  ASSERT_NE(io, nullptr);
  EXPECT_TRUE(io->unified);
  EXPECT_EQ(io, placement_with(*placed, "hugetlb"));
  EXPECT_EQ(io->scope, "/sys/fs/cgroup/unified/lithos.slice/web:app.0.scope");
  // cpuset is nowhere.
  EXPECT_FALSE(place_cgroup(host, plan_with({"cpuset"})).ok());
}

TEST(CgroupPlacement, RejectsEscapingNames) {
  auto host = describe(kV2Mountinfo, kV2Pid1, kV2Controllers);
  auto plan = plan_with({"memory"});
  plan.parent = "../etc";
  EXPECT_FALSE(place_cgroup(host, plan).ok());
  plan.parent = "/abs";
  EXPECT_FALSE(place_cgroup(host, plan).ok());
  plan.parent = "lithos.slice/sub";
  EXPECT_TRUE(place_cgroup(host, plan).ok());
  plan.scope = "a/b";
  EXPECT_FALSE(place_cgroup(host, plan).ok());
  plan.scope = "..";
  EXPECT_FALSE(place_cgroup(host, plan).ok());
}

// ---- limit files ----------------------------------------------------------------

TEST(SharesToWeight, MatchesSystemdConversion) {
  EXPECT_EQ(shares_to_weight(2), 1u);
  EXPECT_EQ(shares_to_weight(262144), 10000u);
  EXPECT_EQ(shares_to_weight(1024), 39u);  // systemd: CPUShares=1024 <-> CPUWeight=39
  EXPECT_EQ(shares_to_weight(512), 20u);   // 1 + 510*9999/262142 = 1 + 19.45
  EXPECT_EQ(shares_to_weight(0), 1u);      // clamped
  EXPECT_EQ(shares_to_weight(1u << 30), 10000u);
  for (std::uint64_t s = 2; s < 262144; s += 997)
    EXPECT_LE(shares_to_weight(s), shares_to_weight(s + 997)) << s;
}

TEST(CgroupWrites, V1Files) {
  auto host = describe(kV1Mountinfo, kV1Pid1, "");
  auto plan = plan_with({"cpu", "memory", "pids"});
  auto placed = place_cgroup(host, plan);
  ASSERT_TRUE(placed.ok());
  auto w = plan_cgroup_writes(*placed, plan);
  EXPECT_TRUE(w.skipped.empty());
  const std::string mem = "/sys/fs/cgroup/memory/lithos.slice/web:app.0.scope/";
  EXPECT_EQ(write_value(w, mem + "memory.limit_in_bytes"), "268435456");
  EXPECT_EQ(write_value(w, mem + "memory.memsw.limit_in_bytes"), "268435456");
  EXPECT_EQ(write_value(w, "/sys/fs/cgroup/cpu,cpuacct/lithos.slice/web:app.0.scope/cpu.shares"),
            "512");
  EXPECT_EQ(write_value(w, "/sys/fs/cgroup/pids/init.scope/lithos.slice/web:app.0.scope/pids.max"),
            "100");
  // The new controls this plan leaves unset go back to their defaults (a
  // scope can be reused), optional writes like memsw.
  EXPECT_EQ(write_value(w, mem + "memory.soft_limit_in_bytes"), "-1");
  EXPECT_EQ(write_value(w,
                        "/sys/fs/cgroup/cpu,cpuacct/lithos.slice/web:app.0.scope/"
                        "cpu.cfs_quota_us"),
            "-1");
  ASSERT_EQ(w.writes.size(), 6u);
  EXPECT_FALSE(w.writes[0].only_if_exists);
  EXPECT_TRUE(w.writes[1].only_if_exists);  // memsw only with swap accounting
  for (std::size_t i = 4; i < w.writes.size(); ++i) {
    EXPECT_TRUE(w.writes[i].only_if_exists) << w.writes[i].file;
    EXPECT_FALSE(w.writes[i].required) << w.writes[i].file;
  }
}

TEST(CgroupWrites, V2Files) {
  auto host = describe(kV2Mountinfo, kV2Pid1, kV2Controllers);
  auto plan = plan_with({"cpu", "memory", "pids"});
  auto placed = place_cgroup(host, plan);
  ASSERT_TRUE(placed.ok());
  auto w = plan_cgroup_writes(*placed, plan);
  const std::string dir = "/sys/fs/cgroup/lithos.slice/web:app.0.scope/";
  EXPECT_EQ(write_value(w, dir + "memory.max"), "268435456");
  EXPECT_EQ(write_value(w, dir + "memory.swap.max"), "0");
  EXPECT_EQ(write_value(w, dir + "cpu.weight"), "20");
  EXPECT_EQ(write_value(w, dir + "pids.max"), "100");
  EXPECT_EQ(write_value(w, dir + "memory.limit_in_bytes"), "<none>");

  // The default (unlimited) memory limit is "max" on v2.
  plan.memory_limit = 9223372036854775807ULL;
  plan.pids_limit.reset();
  auto unlimited = plan_cgroup_writes(*placed, plan);
  EXPECT_EQ(write_value(unlimited, dir + "memory.max"), "max");
  EXPECT_EQ(write_value(unlimited, dir + "memory.swap.max"), "max");
  EXPECT_EQ(write_value(unlimited, dir + "pids.max"), "<none>");
}

TEST(CgroupWrites, LimitsWithoutTheirControllerAreReportedNotWritten) {
  auto host = describe(kV1Mountinfo, kV1Pid1, "");
  auto plan = plan_with({"name", "blkio"});
  auto placed = place_cgroup(host, plan);
  ASSERT_TRUE(placed.ok());
  auto w = plan_cgroup_writes(*placed, plan);
  // Only the optional reset of io-weight, for the controller joined.
  ASSERT_EQ(w.writes.size(), 1u);
  EXPECT_EQ(w.writes[0].file, "/sys/fs/cgroup/blkio/lithos.slice/web:app.0.scope/blkio.weight");
  EXPECT_EQ(w.writes[0].value, "500");
  EXPECT_TRUE(w.writes[0].only_if_exists);
  ASSERT_EQ(w.skipped.size(), 3u);
  EXPECT_NE(w.skipped[0].what().find("memory controller"), std::string::npos)
      << w.skipped[0].what();
  EXPECT_NE(w.skipped[1].what().find("cpu controller"), std::string::npos);
  EXPECT_NE(w.skipped[2].what().find("pids-limit"), std::string::npos);
}

// ---- errors and fds ---------------------------------------------------------------

TEST(StepError, FormatsStepPathErrnoMessageAndContext) {
  StepError e{"enter_cgroup", "/sys/fs/cgroup/memory/x", ENOENT, "mkdir", {}};
  EXPECT_EQ(e.what(), "enter_cgroup: /sys/fs/cgroup/memory/x: No such file or directory (mkdir)");
  e.with("knot").with("instance web/app.0");
  EXPECT_EQ(e.what(),
            "instance web/app.0: knot: enter_cgroup: /sys/fs/cgroup/memory/x: "
            "No such file or directory (mkdir)");
  StepError bare{"compile_seccomp", "", 0, "bad program", {}};
  EXPECT_EQ(bare.what(), "compile_seccomp: bad program");

  Result<int> failed = step_error("mount_volumes", "/data", EACCES, "bind");
  ASSERT_FALSE(failed.ok());
  Result<void> up = forward_error(std::move(failed), "volume /data");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().what(), "volume /data: mount_volumes: /data: Permission denied (bind)");
}

TEST(UniqueFd, ClosesOnceAndTransfersOwnership) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    EXPECT_TRUE(a.valid());
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(b.get(), raw);
    EXPECT_NE(::fcntl(raw, F_GETFD), -1);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);

  int other = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  UniqueFd c(other);
  int released = c.release();
  EXPECT_FALSE(c.valid());
  EXPECT_NE(::fcntl(released, F_GETFD), -1);
  c.reset(released);
  c.reset();
  EXPECT_EQ(::fcntl(released, F_GETFD), -1);
}

TEST(ReadAll, ReadsAPipeToItsEndAcrossManyReads) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // More than one read's buffer, written in pieces, so the loop must go on.
  std::string sent;
  for (int i = 0; i < 3000; ++i) sent += "line " + std::to_string(i) + "\n";
  ASSERT_LT(sent.size(), 65536u);  // fits the pipe: no writer thread needed
  for (std::size_t at = 0; at < sent.size(); at += 1000)
    ASSERT_GT(
        ::write(write_end.get(), sent.data() + at, std::min<std::size_t>(1000, sent.size() - at)),
        0);
  write_end.reset();
  auto got = read_all(read_end.get());
  ASSERT_TRUE(got.ok()) << got.error();
  EXPECT_EQ(*got, sent);
}

TEST(ReadAll, MoreThanTheLimitIsEfbigAndABadDescriptorItsErrno) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  ASSERT_EQ(::write(write_end.get(), "0123456789", 10), 10);
  write_end.reset();
  auto over = read_all(read_end.get(), {.max_bytes = 9});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error(), EFBIG);

  UniqueFd closed;
  auto bad = read_all(closed.get());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), EBADF);
}

TEST(ReadAll, ASizeHintThatIsTooSmallStillReadsTheWholeFile) {
  char path[] = "/tmp/lithos-read-all-XXXXXX";
  UniqueFd file(::mkostemp(path, O_CLOEXEC));
  ASSERT_TRUE(file);
  ::unlink(path);
  const std::string text(5000, 'x');
  ASSERT_EQ(::write(file.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(::lseek(file.get(), 0, SEEK_SET), 0);
  // A file that grew since its fstat: the first read fills the hint + 1, so
  // read_all cannot take it as the end.
  auto got = read_all(file.get(), {.expected_size = 100});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), text.size());
  ASSERT_EQ(::lseek(file.get(), 0, SEEK_SET), 0);
  auto exact = read_all(file.get(), {.expected_size = text.size()});
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, text);
}

TEST(OpenAt2, AModeIsPassedOnlyWhereTheKernelTakesOne) {
  // O_DIRECTORY shares a bit with O_TMPFILE; a mode sent with it is EINVAL.
  UniqueFd dir(
      lithos::open_at2(AT_FDCWD, "/tmp", O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS, 0644));
  ASSERT_TRUE(dir) << std::strerror(errno);
  EXPECT_NE(::fcntl(dir.get(), F_GETFD) & FD_CLOEXEC, 0);
  UniqueFd made(lithos::open_at2(dir.get(), ".", O_RDWR | O_TMPFILE, RESOLVE_BENEATH, 0600));
  ASSERT_TRUE(made) << std::strerror(errno);
  struct stat st {};
  ASSERT_EQ(::fstat(made.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

// ---- the step table names the step -------------------------------------------------

Result<void> step_that_passes(const lithos::policy::InstancePlan&, KnotState&) {
  return {};
}
Result<void> step_failing_in_a_helper(const lithos::policy::InstancePlan&, KnotState&) {
  // As enter_cgroup's placement does when it probes the host first.
  return step_error("probe_cgroups", "/proc/self/mountinfo", ENOENT, "open");
}
Result<void> step_failing_unnamed(const lithos::policy::InstancePlan&, KnotState&) {
  return step_error("", "/x", EACCES, "bind");
}

TEST(RunSteps, AFailureIsNamedAfterTheTableStepNotTheHelperBelowIt) {
  const KnotStep steps[] = {{"mount_proc", step_that_passes},
                            {"enter_cgroup", step_failing_in_a_helper},
                            {"never_reached", step_failing_unnamed}};
  const auto plan = lithos::policy::PlanTestAccess::blank();
  KnotState state;
  Logger log;
  auto r = run_steps(steps, plan, state, log);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().step, "enter_cgroup");
  EXPECT_EQ(r.error().what(),
            "enter_cgroup: /proc/self/mountinfo: No such file or directory (probe_cgroups open)");

  const KnotStep unnamed[] = {{"mount_volumes", step_failing_unnamed}};
  auto u = run_steps(unnamed, plan, state, log);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().what(), "mount_volumes: /x: Permission denied (bind)");
}

// ---- seccomp compilation -------------------------------------------------------------

TEST(SeccompCompile, DefaultProfileCompilesToANonEmptyProgram) {
  SeccompPlan plan;
  plan.denied = lithos::policy::denied_syscalls(lithos::policy::SeccompPolicy{});
  ASSERT_FALSE(plan.denied.empty());
  auto program = compile_seccomp(plan);
  ASSERT_TRUE(program.ok()) << program.error().what();
  // At least one comparison per denied syscall plus the architecture check.
  EXPECT_GT(program->filter.size(), plan.denied.size());
  EXPECT_TRUE(program->namespace_rules);
  auto fprog = program->fprog();
  EXPECT_EQ(fprog.len, program->filter.size());
  EXPECT_EQ(fprog.filter, program->filter.data());
  // The first instruction loads the architecture (seccomp_data.arch, offset 4).
  EXPECT_EQ(program->filter.front().code, BPF_LD | BPF_W | BPF_ABS);
  EXPECT_EQ(program->filter.front().k, 4u);
}

TEST(SeccompCompile, UnknownNamesAreSkippedAndReported) {
  SeccompPlan plan;
  plan.denied = {"keyctl", "lithos_no_such_call", "mount"};
  auto program = compile_seccomp(plan);
  ASSERT_TRUE(program.ok()) << program.error().what();
  EXPECT_EQ(program->skipped, (std::vector<std::string>{"lithos_no_such_call"}));
  EXPECT_FALSE(program->namespace_rules);  // unshare is allowed: so is clone with CLONE_NEW*
#if defined(__x86_64__)
  // An ARM-only call is a libseccomp pseudo-syscall (negative number) on x86_64.
  plan.denied = {"arm_fadvise64_64", "mount"};
  auto arm = compile_seccomp(plan);
  ASSERT_TRUE(arm.ok());
  EXPECT_EQ(arm->skipped, (std::vector<std::string>{"arm_fadvise64_64"}));
#endif
}

TEST(SeccompCompile, MoreDeniedCallsMeanALongerProgram) {
  SeccompPlan small;
  small.denied = {"mount"};
  SeccompPlan large;
  large.denied = {"mount", "pivot_root", "swapon", "swapoff", "reboot"};
  auto a = compile_seccomp(small);
  auto b = compile_seccomp(large);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(a->filter.size(), b->filter.size());
}

TEST(SeccompCompile, DisabledPlanIsAnEmptyProgramAndLoadIsANoOp) {
  SeccompPlan plan;
  plan.enabled = false;
  plan.denied = {"mount"};
  auto program = compile_seccomp(plan);
  ASSERT_TRUE(program.ok());
  EXPECT_TRUE(program->filter.empty());
  EXPECT_EQ(load_seccomp(program->fprog()), 0);  // nothing installed in this process
}
