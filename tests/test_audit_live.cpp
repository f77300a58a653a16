// The audit's claims (audit.hpp) checked against a real container: a busybox
// command started through lithos_cmd in a sandbox with id maps, a memory and
// a pids limit, inspected from outside through /proc and its cgroup. Runs as
// root, like the other knot tests (CI has namespaces and cgroups).
#include <sstream>

#include "lithos/policy/audit.hpp"
#include "test_knot_support.hpp"

namespace knot_test {
namespace {

// The options field of the visible mount at `point` in a mountinfo text.
std::optional<std::string> mount_options(const std::string& mountinfo, const std::string& point) {
  std::istringstream in(mountinfo);
  std::optional<std::string> found;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, options;
    fields >> id >> parent >> device >> root >> mount_point >> options;
    if (mount_point == point) found = options;  // the last one is the visible one
  }
  return found;
}

bool has_option(const std::string& options, const std::string& option) {
  return ("," + options + ",").find("," + option + ",") != std::string::npos;
}

std::string hex16(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string repeated(std::uint32_t id) {
  std::string one = std::to_string(id);
  return one + " " + one + " " + one + " " + one;
}

std::string namespace_of(const std::string& pid, const char* kind) {
  char target[128] = {};
  std::string link = "/proc/" + pid + "/ns/" + kind;
  if (::readlink(link.c_str(), target, sizeof target - 1) <= 0) return "unreadable " + link;
  return target;
}

class AuditLive : public KnotTest {
 protected:
  // The plan lithos_cmd built for `name` (its pid makes the instance name),
  // built again here the way lithos_check --audit builds it.
  std::optional<policy::AuditInstance> audited(const std::string& child, pid_t cmd_pid) {
    policy::Diagnostics diags;
    auto tree = policy::load_tree(dir + "/master.yaml", {}, diags, nullptr);
    policy::CheckOptions options;
    options.command_pid = static_cast<std::uint64_t>(cmd_pid);
    std::vector<policy::InstancePlan> plans;
    policy::check_tree(tree, options, diags, nullptr, &plans);
    EXPECT_FALSE(diags.has_errors()) << describe(diags);
    auto audit = policy::build_audit(plans);
    std::string name = "box/cmd." + child + "." + std::to_string(cmd_pid);
    for (const auto& instance : audit.instances)
      if (instance.name == name) return instance;
    ADD_FAILURE() << "no audited instance " << name << "\n" << policy::format_audit_text(audit);
    return std::nullopt;
  }
};

TEST_F(AuditLive, ClaimsMatchTheRunningContainer) {
  write_sandbox(
      "uid-map: [{inside: 0, outside: 200000, count: 65536}]\n"
      "gid-map: [{inside: 0, outside: 300000, count: 65536}]\n");
  add_command("audited", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "echo ready; read x; exit 0"]
interactive: true
user-id: 1000
group-id: 1001
fileno-limit: 777
memory-limit: 48Mi
pids-limit: 40
volumes:
  /data: !Persistent {path: /data}
  /ro: !Readonly /ro
  /tmp: !Tmpfs {size: 1Mi, mode: 0o1777}
)");
  auto cmd = start_cmd("audited");
  ASSERT_TRUE(read_until(cmd->output.get(), cmd->buffer, "ready\n")) << cmd->buffer << knot_log();
  auto knots = children_of(cmd->process.pid);
  ASSERT_EQ(knots.size(), 1u);
  auto inside = children_of(knots[0]);
  ASSERT_EQ(inside.size(), 1u);
  const std::string pid = std::to_string(inside[0]);

  auto audit = audited("audited", cmd->process.pid);
  ASSERT_TRUE(audit);

  // Users and groups: the audit's outside ids are what the host sees.
  EXPECT_EQ(audit->user.inside, 1000u);
  EXPECT_EQ(audit->user.outside, 201000u);
  EXPECT_EQ(audit->group.outside, 301001u);
  auto status = proc_status(inside[0]);
  EXPECT_EQ(status["Uid"], repeated(*audit->user.outside));
  EXPECT_EQ(status["Gid"], repeated(*audit->group.outside));
  ASSERT_EQ(audit->uid_map.size(), 1u);
  std::istringstream uid_map(read_file("/proc/" + pid + "/uid_map"));
  std::uint64_t map_inside = 1, map_outside = 0, map_count = 0;
  uid_map >> map_inside >> map_outside >> map_count;
  EXPECT_EQ(map_inside, audit->uid_map[0].inside);
  EXPECT_EQ(map_outside, audit->uid_map[0].outside);
  EXPECT_EQ(map_count, audit->uid_map[0].count);

  // Capabilities, no_new_privs, seccomp.
  for (auto set : {"CapEff", "CapPrm", "CapBnd"})
    EXPECT_EQ(status[set], hex16(audit->capability_mask)) << set;
  EXPECT_EQ(status["NoNewPrivs"], "1");
  EXPECT_TRUE(audit->seccomp.enabled);
  EXPECT_EQ(status["Seccomp"], "2");

  // Namespaces: exactly the audited ones differ from the test's own.
  for (const char* kind : {"mnt", "pid", "ipc", "uts", "cgroup", "user", "net"}) {
    std::string audit_name = std::string(kind) == "mnt" ? "mount" : kind;
    bool claimed = std::find(audit->namespaces.begin(), audit->namespaces.end(), audit_name) !=
                   audit->namespaces.end();
    bool own = namespace_of(pid, kind) != namespace_of("self", kind);
    EXPECT_EQ(claimed, own) << kind;
  }

  // RLIMIT_NOFILE.
  std::string limits = read_file("/proc/" + pid + "/limits");
  std::string nofile = std::to_string(audit->open_files);
  EXPECT_EQ(audit->open_files, 777u);
  EXPECT_NE(limits.find("Max open files            " + nofile +
                        std::string(21 - nofile.size(), ' ') + nofile),
            std::string::npos)
      << limits;

  // Writable host paths are read-write mounts, read-only ones are read-only.
  std::string mountinfo = read_file("/proc/" + pid + "/mountinfo");
  ASSERT_EQ(audit->writable_host_paths.size(), 1u);
  EXPECT_EQ(audit->writable_host_paths[0].host, dir + "/data-host");
  for (const auto& p : audit->writable_host_paths) {
    auto options = mount_options(mountinfo, p.target);
    ASSERT_TRUE(options) << p.target << "\n" << mountinfo;
    EXPECT_TRUE(has_option(*options, "rw")) << p.target << ": " << *options;
  }
  std::size_t readonly_checked = 0;
  for (const auto& p : audit->readonly_host_paths) {
    auto options = mount_options(mountinfo, p.target);
    // resolv.conf and hosts are bound only where the image has the file.
    if (!options && (p.what == "resolv.conf" || p.what == "hosts")) continue;
    ASSERT_TRUE(options) << p.target << "\n" << mountinfo;
    EXPECT_TRUE(has_option(*options, "ro")) << p.target << ": " << *options;
    ++readonly_checked;
  }
  EXPECT_GE(readonly_checked, 3u);  // image, /ro, /dev

  // Cgroup limits, in whichever hierarchy serves each controller.
  ASSERT_TRUE(audit->cgroup);
  EXPECT_EQ(audit->cgroup->memory_limit, 48u << 20);
  EXPECT_EQ(audit->cgroup->pids_limit, 40u);
  std::string scope = "/" + audit->cgroup->path;
  EXPECT_NE(read_file("/proc/" + pid + "/cgroup").find(scope), std::string::npos);
  auto host = runtime::probe_cgroups();
  ASSERT_TRUE(host);
  std::string v2 = host->v2 ? host->v2->mount + host->v2->base + scope : std::string();
  if (const auto* memory = host->find_v1("memory")) {
    EXPECT_EQ(read_file(memory->mount + scope + "/memory.limit_in_bytes"),
              std::to_string(*audit->cgroup->memory_limit) + "\n");
  } else {
    ASSERT_TRUE(host->v2);
    EXPECT_EQ(read_file(v2 + "/memory.max"), std::to_string(*audit->cgroup->memory_limit) + "\n");
  }
  if (const auto* pids = host->find_v1("pids")) {
    EXPECT_EQ(read_file(pids->mount + scope + "/pids.max"),
              std::to_string(*audit->cgroup->pids_limit) + "\n");
  } else {
    ASSERT_TRUE(host->v2);
    EXPECT_EQ(read_file(v2 + "/pids.max"), std::to_string(*audit->cgroup->pids_limit) + "\n");
  }

  cmd->input.reset();  // `read` ends, the command exits 0
  EXPECT_EQ(finish(*cmd), 0) << cmd->buffer << knot_log();
}

}  // namespace
}  // namespace knot_test
