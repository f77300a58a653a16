// The cgroup controls beside memory-limit, cpu-shares and pids-limit
// (docs/cgroups.md) on this host's real hierarchies: a command started
// through lithos_cmd, its scope's files read from outside. Which file a
// control writes depends on the hierarchy serving its controller, so every
// expectation is derived from the probed layout (v1, v2 or hybrid), and each
// layout has something to assert.

#include "block_device_support.hpp"
#include "test_knot_support.hpp"

namespace knot_test {
namespace {

class CgroupControlsLive : public KnotTest {
 protected:
  // The dir of this test's scope in the hierarchy serving `controller`.
  std::string scope_dir(const runtime::CgroupHost& host, const std::string& controller,
                        const std::string& scope) {
    if (const auto* v1 = host.find_v1(controller))
      return v1->mount + (v1->init_path == "/" ? "" : v1->init_path) + "/" + cgroup_name + "/" +
             scope;
    EXPECT_TRUE(host.v2) << controller;
    if (!host.v2) return "";
    return host.v2->mount + (host.v2->base == "/" ? "" : host.v2->base) + "/" + cgroup_name + "/" +
           scope;
  }
};

TEST_F(CgroupControlsLive, EachControlIsWrittenToTheFileOfItsHierarchy) {
  auto host = runtime::probe_cgroups();
  ASSERT_TRUE(host) << host.error().what();
  const std::string disk = lithos::test::whole_disk();
  ASSERT_FALSE(disk.empty()) << "no block device in /sys/block";
  const bool memory_v1 = host->find_v1("memory") != nullptr;
  // memory-high and memory-oom-group exist only on v2; on v1 they are
  // refused (the next test).
  add_command("controlled",
              "kind: Command\n"
              "executable: /bin/busybox\n"
              "arguments: [sh, -c, \"echo ready; read x; exit 0\"]\n"
              "interactive: true\n"
              "memory-low: 8Mi\n" +
                  std::string(memory_v1 ? ""
                                        : "memory-high: 32Mi\n"
                                          "memory-oom-group: true\n") +
                  "cpu-quota-us: 50000\n"
                  "cpu-period-us: 200000\n"
                  "io-max:\n"
                  "  \"" +
                  disk + "\": {read-bps: 1048576, write-iops: 100}\n");
  auto cmd = start_cmd("controlled");
  ASSERT_TRUE(read_until(cmd->output.get(), cmd->buffer, "ready\n")) << cmd->buffer << knot_log();
  const std::string scope = "box:cmd.controlled." + std::to_string(cmd->process.pid) + ".scope";

  std::string memory = scope_dir(*host, "memory", scope);
  if (memory_v1) {
    EXPECT_EQ(read_file(memory + "/memory.soft_limit_in_bytes"), "8388608\n");
  } else {
    EXPECT_EQ(read_file(memory + "/memory.low"), "8388608\n");
    EXPECT_EQ(read_file(memory + "/memory.high"), "33554432\n");
    EXPECT_EQ(read_file(memory + "/memory.oom.group"), "1\n");
  }
  std::string cpu = scope_dir(*host, "cpu", scope);
  if (host->find_v1("cpu")) {
    EXPECT_EQ(read_file(cpu + "/cpu.cfs_quota_us"), "50000\n");
    EXPECT_EQ(read_file(cpu + "/cpu.cfs_period_us"), "200000\n");
  } else {
    EXPECT_EQ(read_file(cpu + "/cpu.max"), "50000 200000\n");
  }
  if (host->find_v1("blkio")) {
    std::string blkio = scope_dir(*host, "blkio", scope);
    EXPECT_EQ(read_file(blkio + "/blkio.throttle.read_bps_device"), disk + " 1048576\n");
    EXPECT_EQ(read_file(blkio + "/blkio.throttle.write_iops_device"), disk + " 100\n");
    EXPECT_EQ(read_file(blkio + "/blkio.throttle.write_bps_device"), "");
  } else {
    EXPECT_EQ(read_file(scope_dir(*host, "io", scope) + "/io.max"),
              disk + " rbps=1048576 wbps=max riops=max wiops=100\n");
  }

  cmd->input.reset();
  EXPECT_EQ(finish(*cmd), 0) << cmd->buffer << knot_log();
}

// A control with no file in the hierarchy serving it stops the start, and
// lithos_check says the same beforehand. Which control that is depends on
// the layout: memory-high where memory is v1; io-weight where the v1 blkio
// hierarchy has no blkio.weight (no CFQ scheduler, Linux 5.0 and later); on
// a pure v2 host memory-high is applied, and that is what is asserted there.
TEST_F(CgroupControlsLive, AControlThisHostHasNoFileForRefusesTheStart) {
  auto host = runtime::probe_cgroups();
  ASSERT_TRUE(host) << host.error().what();
  std::string key, file;
  if (const auto* memory = host->find_v1("memory")) {
    key = "memory-high";
    file = "memory.high";
    (void)memory;
  } else if (const auto* blkio = host->find_v1("blkio");
             blkio && ::access((blkio->mount + "/blkio.weight").c_str(), F_OK) != 0) {
    key = "io-weight";
    file = "blkio.weight";
  }
  // On a pure v2 host only memory-high: io.weight exists only with iocost.
  add_command("refused",
              "kind: Command\n"
              "executable: /bin/busybox\n"
              "arguments: [sh, -c, \"echo ran\"]\n"
              "memory-high: 32Mi\n" +
                  std::string(key == "io-weight" ? "io-weight: 200\n" : ""));

  // What lithos_check asks of the host, as its --check does.
  policy::Diagnostics diags;
  auto tree = policy::load_tree(dir + "/master.yaml", {}, diags, nullptr);
  policy::CheckOptions options;
  options.inspect_images = true;
  options.cgroup_refusal = [](const policy::CgroupPlan& plan) {
    return runtime::cgroup_refusal(plan);
  };
  policy::check_tree(tree, options, diags, nullptr, nullptr);

  auto cmd = start_cmd("refused");
  int status = finish(*cmd);
  if (key.empty()) {
    EXPECT_FALSE(diags.has_errors()) << describe(diags);
    EXPECT_EQ(status, 0) << cmd->buffer << knot_log();
    EXPECT_NE(cmd->buffer.find("ran"), std::string::npos) << cmd->buffer;
    return;
  }
  ASSERT_TRUE(diags.has_errors());
  const auto& error = diags.items().front();
  EXPECT_EQ(error.code, policy::Code::Cgroup);
  EXPECT_EQ(error.message.rfind(key + " cannot be applied on this host: ", 0), 0u) << error.message;
  EXPECT_NE(error.message.find(file), std::string::npos) << error.message;

  EXPECT_NE(status, 0);
  EXPECT_EQ(cmd->buffer.find("ran"), std::string::npos) << cmd->buffer;
  std::string log = knot_log();
  EXPECT_NE(log.find(key + " cannot be applied: "), std::string::npos) << log;
  EXPECT_NE(log.find(file), std::string::npos) << log;
}

}  // namespace
}  // namespace knot_test
