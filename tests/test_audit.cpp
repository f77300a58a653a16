// The privilege audit (audit.hpp, docs/lithos_check.md "Audit"): built from
// the plans of real config trees in a temp dir, every field and every
// warning, and `lithos_check --audit` run as a program.
// One file over 600 lines on purpose: one audit, field by field.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "crypt_test_support.hpp"
#include "lithos/policy/audit.hpp"
#include "lithos/policy/check.hpp"

using namespace lithos::policy;
namespace fs = std::filesystem;

namespace {

struct AuditTree : ::testing::Test {
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lithos-audit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root = pattern;
    fs::create_directories(root / "dev/pts");  // what lithos_mkdev makes
    for (auto host : {"shared/sub", "ro", "a-data", "a-data2"}) fs::create_directories(root / host);
    // The key the secret below is encrypted for (lithos_check decodes it).
    write("key", crypt_test::kPrivateKeyFile);
    fs::permissions(root / "key", fs::perms::owner_read | fs::perms::owner_write);
    write_master("cgroup-name: audit.slice\n");
  }
  void TearDown() override { fs::remove_all(root); }

  std::string path(const std::string& rel) const { return (root / rel).string(); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
  void write_master(const std::string& extra) {
    write("master.yaml", "runtime-dir: " + path("run") + "\ndevfs-dir: " + path("dev") +
                             "\ndefault-log-dir: " + path("log") +
                             "\nstdio-log-dir: " + path("log/stderr") + "\n" + extra);
  }
  // A sandbox with its own image dir, one image "img" and a process config.
  void sandbox(const std::string& name, const std::string& config) {
    write("sandboxes/" + name + ".yaml", "image-dir: " + path("images-" + name) + "\n" + config);
  }
  // The container config `file` in the sandbox's image "img": a busybox
  // image (scripts/make-example-image.sh) with a /ro mount point added, so
  // that lithos_check finds what the knot needs.
  void container(const std::string& sandbox, const std::string& file, const std::string& text) {
    fs::path image = root / ("images-" + sandbox) / "img";
    if (!fs::exists(image / "bin/busybox")) {
      std::string make = std::string(LITHOS_SOURCE_DIR) + "/scripts/make-example-image.sh " +
                         image.string() + " >/dev/null";
      ASSERT_EQ(std::system(make.c_str()), 0);
      fs::create_directories(image / "ro");
    }
    write("images-" + sandbox + "/img/config/" + file + ".yaml", text);
  }
  void processes(const std::string& sandbox, const std::string& text) {
    write("processes/" + sandbox + ".yaml", text);
  }

  std::vector<InstancePlan> plans(Diagnostics& diags) {
    auto tree = load_tree(path("master.yaml"), {}, diags, nullptr);
    CheckOptions options;
    std::vector<InstancePlan> out;
    check_tree(tree, options, diags, nullptr, &out);
    return out;
  }
  Audit audit(const AuditHostFacts& facts = {}) {
    Diagnostics diags;
    auto built = plans(diags);
    std::string why;
    for (const auto& d : diags.items()) why += d.file + ": " + d.message + "\n";
    EXPECT_FALSE(diags.has_errors()) << why;
    return build_audit(built, facts);
  }

  // Three sandboxes: "web" (no maps, two instances, writes ROOT/shared),
  // "mapped" (uid map, root inside, writes ROOT/shared/sub, secrets) and
  // "other" (uid 1000 like web, limits set, nothing writable).
  void three_sandboxes() {
    sandbox("web",
            "allow-users: [1000-2000]\nallow-groups: [1000-2000]\ndefault-user: 1000\n"
            "default-group: 1001\nallow-tcp-ports: [8000-8999]\n"
            "writable-paths:\n  /data: " +
                path("shared") + "\nreadonly-paths:\n  /ro: " + path("ro") +
                "\nseccomp:\n  deny: [socketpair]\n");
    container("web", "web", R"(kind: Daemon
executable: /bin/busybox
arguments: [--port, "8080"]
volumes:
  /data: !Persistent {path: /data}
  /ro: !Readonly /ro
  /tmp: !Tmpfs {size: 1Mi, mode: 0o1777}
  /state: !Statedir {}
tcp-ports:
  "8080": {fd: 3}
fileno-limit: 4096
memory-limit: 64Mi
)");
    processes("web", "web:\n  instances: 2\n  image: img\n  config: /config/web.yaml\n");

    sandbox("mapped",
            "allow-users: [0-999]\nallow-groups: [0-999]\ndefault-user: 0\ndefault-group: 0\n"
            "uid-map:\n- {inside: 0, outside: 100000, count: 1000}\n"
            "gid-map:\n- {inside: 0, outside: 200000, count: 1000}\n"
            "writable-paths:\n  /data: " +
                path("shared/sub") + "\nsecrets-private-key: " + path("key") +
                "\nsecrets-namespaces: [myapp]\n"
                "seccomp:\n  profile: unconfined\nlandlock: false\n");
    container("mapped", "job",
              std::string(R"(kind: Daemon
executable: /bin/busybox
volumes:
  /data: !Persistent {path: /data}
pids-limit: 100
secret-environ:
  TOKEN: )") + crypt_test::kVector +
                  "\n");
    processes("mapped", "job:\n  image: img\n  config: /config/job.yaml\n");

    sandbox("other",
            "allow-users: [1000-2000]\nallow-groups: [1000-2000]\ndefault-user: 1000\n"
            "default-group: 1000\n");
    container("other", "tool", R"(kind: Command
executable: /bin/busybox
interactive: true
memory-limit: 32Mi
pids-limit: 10
)");
    processes("other", "tool:\n  kind: Command\n  image: img\n  config: /config/tool.yaml\n");
  }

  fs::path root;
};

const AuditInstance& find(const Audit& audit, const std::string& name) {
  for (const auto& a : audit.instances)
    if (a.name == name) return a;
  throw std::runtime_error("no instance " + name);
}

std::vector<const AuditWarning*> warnings(const Audit& audit, std::string_view code) {
  std::vector<const AuditWarning*> out;
  for (const auto& w : audit.warnings)
    if (w.code == code) out.push_back(&w);
  return out;
}

AuditHostFacts uid_1000_is(const std::string& account) {
  AuditHostFacts facts;
  facts.account_name = [account](std::uint32_t uid) -> std::optional<std::string> {
    if (uid == 1000) return account;
    return std::nullopt;
  };
  return facts;
}

}  // namespace

TEST_F(AuditTree, OneBlockPerInstanceSortedByName) {
  three_sandboxes();
  auto a = audit();
  std::vector<std::string> got;
  for (const auto& i : a.instances) got.push_back(i.name);
  EXPECT_EQ(got, (std::vector<std::string>{"mapped/job.0", "other/cmd.tool.0", "web/web.0",
                                           "web/web.1"}));
  EXPECT_EQ(find(a, "web/web.1").sandbox, "web");
  EXPECT_EQ(find(a, "web/web.1").child, "web");
  EXPECT_EQ(find(a, "other/cmd.tool.0").kind, ProcessKind::Command);
  EXPECT_EQ(find(a, "web/web.0").argv,
            (std::vector<std::string>{"/bin/busybox", "--port", "8080"}));
}

TEST_F(AuditTree, IdsInsideAndOutside) {
  three_sandboxes();
  auto a = audit();
  const auto& web = find(a, "web/web.0");
  EXPECT_EQ(web.user.inside, 1000u);
  EXPECT_EQ(web.user.outside, 1000u);  // no user namespace: the same id
  EXPECT_EQ(web.group.inside, 1001u);
  EXPECT_EQ(web.group.outside, 1001u);
  EXPECT_TRUE(web.uid_map.empty());
  EXPECT_FALSE(web.user.host_account);  // no host facts given

  const auto& job = find(a, "mapped/job.0");
  EXPECT_EQ(job.user.inside, 0u);
  EXPECT_EQ(job.user.outside, 100000u);
  EXPECT_EQ(job.group.inside, 0u);
  EXPECT_EQ(job.group.outside, 200000u);
  ASSERT_EQ(job.uid_map.size(), 1u);
  EXPECT_EQ(job.uid_map[0], (IdMapEntry{0, 100000, 1000}));
  ASSERT_EQ(job.gid_map.size(), 1u);
  EXPECT_EQ(job.gid_map[0], (IdMapEntry{0, 200000, 1000}));
}

TEST_F(AuditTree, NamespacesFollowTheKnot) {
  three_sandboxes();
  auto a = audit();
  EXPECT_EQ(find(a, "web/web.0").namespaces,
            (std::vector<std::string>{"mount", "pid", "ipc", "uts", "cgroup"}));
  EXPECT_EQ(find(a, "mapped/job.0").namespaces,
            (std::vector<std::string>{"mount", "pid", "ipc", "uts", "cgroup", "user"}));
}

TEST_F(AuditTree, CapabilitiesSeccompAndLandlock) {
  three_sandboxes();
  auto a = audit();
  const auto& web = find(a, "web/web.0");
  EXPECT_TRUE(web.capabilities.empty());
  EXPECT_EQ(web.capability_mask, 0u);
  EXPECT_TRUE(web.seccomp.enabled);
  EXPECT_TRUE(std::is_sorted(web.seccomp.denied.begin(), web.seccomp.denied.end()));
  auto denies = [&](const std::string& call) {
    return std::binary_search(web.seccomp.denied.begin(), web.seccomp.denied.end(), call);
  };
  EXPECT_TRUE(denies("mount"));
  EXPECT_TRUE(denies("socketpair"));  // the sandbox's extra deny
  EXPECT_FALSE(denies("read"));
  EXPECT_TRUE(web.seccomp.argument_rules);
  EXPECT_TRUE(web.landlock.enabled);
  EXPECT_EQ(web.landlock.writable, (std::vector<std::string>{"/data", "/state", "/tmp"}));
  EXPECT_EQ(web.landlock.write_files, (std::vector<std::string>{"/dev", "/proc"}));
  EXPECT_TRUE(web.landlock.restrict_bind);
  EXPECT_EQ(web.landlock.bind_ports, std::vector<std::uint16_t>{8080});
  EXPECT_TRUE(web.landlock.scope_abstract_unix);
  EXPECT_TRUE(web.landlock.scope_signals);

  const auto& job = find(a, "mapped/job.0");
  EXPECT_TRUE(job.seccomp.denied.empty());  // profile: unconfined denies only `deny`
  EXPECT_FALSE(job.landlock.enabled);
  EXPECT_TRUE(job.bind.any);
}

TEST_F(AuditTree, HostPathsWritableAndReadOnly) {
  three_sandboxes();
  auto a = audit();
  const auto& web = find(a, "web/web.1");
  ASSERT_EQ(web.writable_host_paths.size(), 2u);
  EXPECT_EQ(web.writable_host_paths[0].host, path("shared"));
  EXPECT_EQ(web.writable_host_paths[0].target, "/data");
  EXPECT_EQ(web.writable_host_paths[0].what, "persistent");
  EXPECT_EQ(web.writable_host_paths[1].host, path("run") + "/state/web/web.1");
  EXPECT_EQ(web.writable_host_paths[1].target, "/state");
  EXPECT_EQ(web.writable_host_paths[1].what, "statedir");
  // The stdio log is written by the knot, never by the process.
  for (const auto& p : web.writable_host_paths) EXPECT_EQ(p.host.find("/log"), std::string::npos);
  EXPECT_NE(web.output.find(path("log/stderr") + "/web.log"), std::string::npos) << web.output;

  std::vector<std::string> ro;
  for (const auto& p : web.readonly_host_paths) ro.push_back(p.host + " -> " + p.target);
  EXPECT_NE(std::find(ro.begin(), ro.end(), path("images-web") + "/img -> /"), ro.end());
  EXPECT_NE(std::find(ro.begin(), ro.end(), path("ro") + " -> /ro"), ro.end());
  EXPECT_NE(std::find(ro.begin(), ro.end(), path("dev") + " -> /dev"), ro.end());
  EXPECT_EQ(web.devices, path("dev"));
  ASSERT_EQ(web.tmpfs.size(), 1u);
  EXPECT_EQ(web.tmpfs[0].target, "/tmp");

  const auto& tool = find(a, "other/cmd.tool.0");
  EXPECT_TRUE(tool.writable_host_paths.empty());
  EXPECT_EQ(tool.output, "inherited from the caller (interactive)");
}

TEST_F(AuditTree, NetworkSocketsAndBindPorts) {
  three_sandboxes();
  auto a = audit();
  const auto& web = find(a, "web/web.0");
  EXPECT_FALSE(web.network.bridged);
  ASSERT_EQ(web.sockets.size(), 1u);
  EXPECT_EQ(web.sockets[0].port, 8080);
  EXPECT_EQ(web.sockets[0].fd, 3u);
  EXPECT_EQ(web.sockets[0].address, "0.0.0.0");
  EXPECT_TRUE(web.sockets[0].host_side);
  EXPECT_FALSE(web.bind.any);
  EXPECT_EQ(web.bind.ports, std::vector<std::uint16_t>{8080});
}

TEST_F(AuditTree, BridgedNetworkGetsANetNamespace) {
  sandbox("br",
          "allow-users: [1000]\nallow-groups: [1000]\ndefault-user: 1000\ndefault-group: 1000\n"
          "bridged-network: {bridge: br0, network: 10.9.0.0/24, default-gateway: 10.9.0.1,\n"
          "  after-setup-command: [true, \"@{container_ip}\", \"@{container_interface}\"]}\n"
          "capabilities: [CAP_NET_BIND_SERVICE]\n");
  container("br", "srv", "kind: Daemon\nexecutable: /bin/busybox\n");
  processes("br", "srv:\n  image: img\n  config: /config/srv.yaml\n  ip-addresses: [10.9.0.7]\n");
  auto a = audit();
  const auto& srv = find(a, "br/srv.0");
  EXPECT_EQ(srv.namespaces.back(), "net");
  EXPECT_TRUE(srv.network.bridged);
  EXPECT_EQ(srv.network.bridge, "br0");
  EXPECT_EQ(srv.network.address, "10.9.0.7/24");
  EXPECT_EQ(srv.network.gateway, "10.9.0.1");
  // What runs as host root at every start is named, resolved and substituted.
  ASSERT_EQ(srv.network.after_setup_command.size(), 3u);
  EXPECT_EQ(
      srv.network.after_setup_command[0].substr(srv.network.after_setup_command[0].size() - 5),
      "/true");
  EXPECT_EQ(srv.network.after_setup_command[1], "10.9.0.7");
  lithos::policy::scalars::IpAddress ip{};
  ip.bytes = {10, 9, 0, 7};
  std::string interface = lithos::policy::veth_host_name("br0", ip);
  std::replace(interface.begin(), interface.end(), '_', '-');
  EXPECT_EQ(srv.network.after_setup_command[2], interface);
  EXPECT_NE(format_audit_text(a).find("after setup:    as host root, all capabilities: \""),
            std::string::npos);
  EXPECT_EQ(srv.capabilities, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(srv.capability_mask, std::uint64_t{1} << 10);
  EXPECT_TRUE(srv.bind.any);  // its own network namespace: Landlock leaves bind alone
}

// The LSM label each instance is executed under: the sandbox's, or the
// container's own where the sandbox allows it.
TEST_F(AuditTree, LsmLabelOfSandboxOrContainer) {
  sandbox("lsm",
          "allow-users: [1000]\nallow-groups: [1000]\ndefault-user: 1000\ndefault-group: 1000\n"
          "apparmor-profile: lithos-web\nallow-lsm-override: true\n");
  container("lsm", "plain", "kind: Daemon\nexecutable: /bin/busybox\n");
  container("lsm", "own",
            "kind: Daemon\nexecutable: /bin/busybox\nselinux-label: system_u:system_r:web_t:s0\n");
  processes("lsm",
            "plain:\n  image: img\n  config: /config/plain.yaml\n"
            "own:\n  image: img\n  config: /config/own.yaml\n");
  // Offline, whether this host runs AppArmor or SELinux is a note, not an
  // error that would keep the plans from being built.
  Diagnostics diags;
  auto tree = load_tree(path("master.yaml"), {}, diags, nullptr);
  CheckOptions options;
  options.offline = true;
  std::vector<InstancePlan> built;
  check_tree(tree, options, diags, nullptr, &built);
  EXPECT_FALSE(diags.has_errors());
  auto a = build_audit(built, {});
  EXPECT_EQ(find(a, "lsm/plain.0").lsm_label, "apparmor lithos-web");
  EXPECT_EQ(find(a, "lsm/own.0").lsm_label, "selinux system_u:system_r:web_t:s0");
  EXPECT_NE(format_audit_text(a).find("lsm label:      apparmor lithos-web\n"), std::string::npos);
  auto j = nlohmann::json::parse(format_audit_json(a));
  ASSERT_EQ(j["instances"].size(), 2u);
  for (const auto& instance : j["instances"])
    EXPECT_EQ(instance["lsm_label"], instance["name"] == "lsm/own.0"
                                         ? "selinux system_u:system_r:web_t:s0"
                                         : "apparmor lithos-web");
}

TEST_F(AuditTree, RlimitsCgroupAndSecretNames) {
  three_sandboxes();
  auto a = audit();
  const auto& web = find(a, "web/web.0");
  EXPECT_EQ(web.open_files, 4096u);
  ASSERT_TRUE(web.cgroup);
  EXPECT_EQ(web.cgroup->path, "audit.slice/web:web.0.scope");
  EXPECT_EQ(web.cgroup->memory_limit, 64u << 20);
  EXPECT_EQ(web.cgroup->cpu_shares, 1024u);
  EXPECT_FALSE(web.cgroup->pids_limit);
  EXPECT_FALSE(web.secrets);

  const auto& job = find(a, "mapped/job.0");
  ASSERT_TRUE(job.cgroup);
  EXPECT_FALSE(job.cgroup->memory_limit);  // the default is unlimited
  EXPECT_EQ(job.cgroup->pids_limit, 100u);
  ASSERT_TRUE(job.secrets);
  EXPECT_EQ(job.secrets->names, std::vector<std::string>{"TOKEN"});
  EXPECT_EQ(job.secrets->allowed_namespaces, std::vector<std::string>{"myapp"});

  // The secret's value is in no output.
  std::string text = format_audit_text(a), json = format_audit_json(a);
  EXPECT_NE(text.find("TOKEN"), std::string::npos);
  EXPECT_EQ(text.find("i4+dWTpg"), std::string::npos);
  EXPECT_EQ(json.find("i4+dWTpg"), std::string::npos);
}

// The controls beside the three limits are shown by key, as the knot
// applies them, in the text and the JSON.
TEST_F(AuditTree, CgroupControlsByKey) {
  sandbox("ctl",
          "allow-users: [1000]\nallow-groups: [1000]\ndefault-user: 1000\n"
          "default-group: 1000\n");
  container("ctl", "app",
            "kind: Daemon\nexecutable: /bin/busybox\nmemory-low: 1Mi\nmemory-oom-group: true\n"
            "cpu-quota-us: 250000\ncpu-period-us: 100000\nio-weight: 300\n"
            "io-max:\n  \"8:16\": {write-iops: 10}\n  \"8:0\": {read-bps: 1000, read-iops: 5}\n");
  processes("ctl", "app:\n  image: img\n  config: /config/app.yaml\n");
  auto a = audit();
  const auto& app = find(a, "ctl/app.0");
  ASSERT_TRUE(app.cgroup);
  std::map<std::string, std::string> expected{
      {"memory-low", "1048576"},
      {"memory-oom-group", "true"},
      {"cpu-quota-us", "250000 per 100000"},
      {"io-weight", "300"},
      {"io-max", "8:0 rbps=1000 riops=5, 8:16 wiops=10"}};  // by device number
  EXPECT_EQ(app.cgroup->controls, expected);
  EXPECT_NE(format_audit_text(a).find(
                "pids none, cpu-quota-us 250000 per 100000, io-max 8:0 rbps=1000 riops=5, 8:16 "
                "wiops=10, io-weight 300, memory-low 1048576, memory-oom-group true\n"),
            std::string::npos)
      << format_audit_text(a);
  auto j = nlohmann::json::parse(format_audit_json(a));
  std::size_t seen = 0;
  for (const auto& instance : j["instances"]) {
    if (instance["name"] != "ctl/app.0") continue;
    ++seen;
    EXPECT_EQ(instance["cgroup"]["controls"], nlohmann::json(expected));
  }
  EXPECT_EQ(seen, 1u);
}

TEST_F(AuditTree, NoCgroupNameMeansNoLimits) {
  write_master("cgroup-name: ~\n");
  three_sandboxes();
  auto a = audit();
  EXPECT_FALSE(find(a, "other/cmd.tool.0").cgroup);
  auto memory = warnings(a, kAuditNoMemoryLimit);
  ASSERT_EQ(memory.size(), 1u);
  EXPECT_EQ(memory[0]->instances.size(), 4u);
  EXPECT_NE(memory[0]->message.find("cgroup-name"), std::string::npos);
  EXPECT_EQ(warnings(a, kAuditNoPidsLimit).size(), 1u);
}

TEST_F(AuditTree, WarningsFireWhereTheyShould) {
  three_sandboxes();
  auto a = audit(uid_1000_is("svc"));

  auto as_root = warnings(a, kAuditRootInside);
  ASSERT_EQ(as_root.size(), 1u);
  EXPECT_EQ(as_root[0]->instances, std::vector<std::string>{"mapped/job.0"});
  EXPECT_NE(as_root[0]->message.find("host uid 100000"), std::string::npos) << as_root[0]->message;

  // web (nested: ROOT/shared contains mapped's ROOT/shared/sub).
  auto shared = warnings(a, kAuditSharedWritablePath);
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0]->instances,
            (std::vector<std::string>{"mapped/job.0", "web/web.0", "web/web.1"}));
  EXPECT_NE(shared[0]->message.find("host path " + path("shared") + " "), std::string::npos)
      << shared[0]->message;

  auto uid = warnings(a, kAuditSharedUid);
  ASSERT_EQ(uid.size(), 1u);
  EXPECT_EQ(uid[0]->instances,
            (std::vector<std::string>{"other/cmd.tool.0", "web/web.0", "web/web.1"}));
  EXPECT_NE(uid[0]->message.find("host uid 1000 "), std::string::npos);

  auto account = warnings(a, kAuditHostAccount);
  ASSERT_EQ(account.size(), 1u);
  EXPECT_EQ(account[0]->instances,
            (std::vector<std::string>{"other/cmd.tool.0", "web/web.0", "web/web.1"}));
  EXPECT_NE(account[0]->message.find("\"svc\""), std::string::npos);
  EXPECT_EQ(find(a, "web/web.0").user.host_account, "svc");

  auto memory = warnings(a, kAuditNoMemoryLimit);
  ASSERT_EQ(memory.size(), 1u);
  EXPECT_EQ(memory[0]->instances, std::vector<std::string>{"mapped/job.0"});
  auto pids = warnings(a, kAuditNoPidsLimit);
  ASSERT_EQ(pids.size(), 1u);
  EXPECT_EQ(pids[0]->instances, (std::vector<std::string>{"web/web.0", "web/web.1"}));

  // Ordered by code as documented, then by instance.
  std::vector<std::string> codes;
  for (const auto& w : a.warnings) codes.push_back(w.code);
  EXPECT_EQ(codes,
            (std::vector<std::string>{"root-inside", "host-account", "shared-uid",
                                      "shared-writable-path", "no-memory-limit", "no-pids-limit"}));
}

TEST_F(AuditTree, WarningsStayQuietWhenNothingIsShared) {
  sandbox("a",
          "allow-users: [1000]\nallow-groups: [1000]\ndefault-user: 1000\ndefault-group: 1000\n"
          "writable-paths:\n  /data: " +
              path("a-data") + "\n");
  sandbox("b",
          "allow-users: [2000]\nallow-groups: [2000]\ndefault-user: 2000\ndefault-group: 2000\n"
          "writable-paths:\n  /data: " +
              path("a-data2") + "\n");
  for (std::string s : {"a", "b"}) {
    container(s, "p", R"(kind: Daemon
executable: /bin/busybox
volumes:
  /data: !Persistent {path: /data}
memory-limit: 1Gi
pids-limit: 64
)");
    processes(s, "p:\n  instances: 2\n  image: img\n  config: /config/p.yaml\n");
  }
  // uid 1000 is an account, but host facts name only uid 0 here.
  AuditHostFacts facts;
  facts.account_name = [](std::uint32_t uid) -> std::optional<std::string> {
    if (uid == 0) return "root";
    return std::nullopt;
  };
  auto a = audit(facts);
  EXPECT_EQ(a.instances.size(), 4u);
  // "a-data" is a prefix of "a-data2" as text but not as a path; the two
  // instances of one sandbox share their volume, which is not a warning.
  EXPECT_TRUE(a.warnings.empty()) << format_audit_text(a);
}

TEST_F(AuditTree, OverlappingUidMapsOfTwoSandboxesAreAWarning) {
  // x and y map [100000, 101000) and [100500, 102000): they share 100500-100999,
  // although their processes run as different host uids (100001, 101001).
  auto mapped = [&](const std::string& name, const std::string& outside) {
    sandbox(name,
            "allow-users: [0-2000]\nallow-groups: [0-2000]\ndefault-user: 1\ndefault-group: 1\n"
            "uid-map:\n- {inside: 0, outside: " +
                outside +
                ", count: 1500}\n"
                "gid-map:\n- {inside: 0, outside: " +
                outside + ", count: 1500}\n");
    container(name, "p",
              "kind: Daemon\nexecutable: /bin/busybox\nmemory-limit: 1Gi\npids-limit: 9\n");
    processes(name, "p:\n  image: img\n  config: /config/p.yaml\n");
  };
  mapped("x", "100000");
  mapped("y", "100500");
  mapped("z", "200000");  // overlaps nobody
  auto a = audit();
  auto shared = warnings(a, kAuditSharedUidRange);
  ASSERT_EQ(shared.size(), 1u) << format_audit_text(a);
  EXPECT_EQ(shared[0]->instances, (std::vector<std::string>{"x/p.0", "y/p.0"}));
  EXPECT_NE(shared[0]->message.find("host uids 100500-101499"), std::string::npos)
      << shared[0]->message;
  EXPECT_TRUE(warnings(a, kAuditSharedUid).empty());
}

TEST_F(AuditTree, RootWithoutAUserNamespaceIsHostRoot) {
  sandbox("r", "allow-users: [0]\nallow-groups: [0]\ndefault-user: 0\ndefault-group: 0\n");
  container("r", "p", "kind: Daemon\nexecutable: /bin/busybox\nmemory-limit: 1Gi\npids-limit: 9\n");
  processes("r", "p:\n  image: img\n  config: /config/p.yaml\n");
  AuditHostFacts facts;
  facts.account_name = [](std::uint32_t uid) -> std::optional<std::string> {
    if (uid == 0) return "root";
    return std::nullopt;
  };
  auto a = audit(facts);
  auto as_root = warnings(a, kAuditRootInside);
  ASSERT_EQ(as_root.size(), 1u);
  EXPECT_NE(as_root[0]->message.find("host root"), std::string::npos);
  ASSERT_EQ(warnings(a, kAuditHostAccount).size(), 1u);
  EXPECT_NE(warnings(a, kAuditHostAccount)[0]->message.find("\"root\""), std::string::npos);
}

TEST_F(AuditTree, TextAndJsonShapes) {
  three_sandboxes();
  auto a = audit(uid_1000_is("svc"));
  std::string text = format_audit_text(a);
  EXPECT_EQ(text.rfind("mapped/job.0 (daemon mapped/job)\n", 0), 0u) << text;
  EXPECT_NE(text.find("  user:           uid 0 inside, host uid 100000\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  namespaces:     mount, pid, ipc, uts, cgroup, user\n"), std::string::npos);
  EXPECT_NE(text.find("warnings: 6\n"), std::string::npos);
  EXPECT_NE(text.find("  warning[no-pids-limit]: web/web.0, web/web.1: no pids limit\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(format_audit_text(a), text);  // stable

  auto j = nlohmann::json::parse(format_audit_json(a));
  EXPECT_EQ(j["version"], 1);
  ASSERT_EQ(j["instances"].size(), 4u);
  const auto& job = j["instances"][0];
  EXPECT_EQ(job["name"], "mapped/job.0");
  EXPECT_EQ(job["user"]["inside"], 0);
  EXPECT_EQ(job["user"]["outside"], 100000);
  EXPECT_EQ(job["uid_map"][0]["outside"], 100000);
  EXPECT_EQ(job["seccomp"]["denied_count"], 0);
  EXPECT_EQ(job["cgroup"]["memory_limit"], nullptr);
  EXPECT_EQ(job["cgroup"]["pids_limit"], 100);
  EXPECT_EQ(job["secrets"]["names"][0], "TOKEN");
  const auto& web = j["instances"][2];
  EXPECT_EQ(web["name"], "web/web.0");
  EXPECT_EQ(web["network"]["mode"], "host");
  EXPECT_EQ(web["rlimits"]["nofile"], 4096);
  EXPECT_EQ(web["bind"]["ports"][0], 8080);
  EXPECT_EQ(web["writable_host_paths"][0]["host"], path("shared"));
  EXPECT_EQ(web["seccomp"]["denied_count"], web["seccomp"]["denied"].size());
  EXPECT_EQ(j["warnings"].size(), 6u);
  EXPECT_EQ(j["warnings"][0]["code"], "root-inside");
  EXPECT_FALSE(j.contains("diagnostics"));

  Diagnostics diags;
  diags.warning("x.yaml", {}, Code::Binaries, "a warning");
  auto with = nlohmann::json::parse(format_audit_json(a, &diags));
  ASSERT_EQ(with["diagnostics"].size(), 1u);
  EXPECT_EQ(with["diagnostics"][0]["message"], "a warning");
}

TEST(Audit, EmptyPlansGiveAnEmptyAudit) {
  auto a = build_audit({});
  EXPECT_TRUE(a.instances.empty());
  EXPECT_TRUE(a.warnings.empty());
  EXPECT_EQ(format_audit_text(a), "no process instances\n\nwarnings: 0\n");
}

// ---- the program ----------------------------------------------------------

namespace {

struct Output {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs lithos_check with `args`; stdout and stderr captured through files.
Output run_check(const std::string& args, const fs::path& scratch) {
  std::string out_file = (scratch / "out").string(), err_file = (scratch / "err").string();
  std::string command =
      std::string(LITHOS_BIN_DIR) + "/lithos_check " + args + " >" + out_file + " 2>" + err_file;
  Output result;
  int raw = std::system(command.c_str());
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  auto slurp = [](const std::string& file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  result.out = slurp(out_file);
  result.err = slurp(err_file);
  return result;
}

}  // namespace

TEST_F(AuditTree, ProgramPrintsTheAuditAsJson) {
  three_sandboxes();
  auto r = run_check("-C " + path("master.yaml") + " --audit --format json", root);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);  // stdout is one JSON document
  EXPECT_EQ(j["version"], 1);
  ASSERT_EQ(j["instances"].size(), 4u);
  EXPECT_EQ(j["instances"][0]["name"], "mapped/job.0");
  EXPECT_EQ(j["instances"][0]["user"]["outside"], 100000);
  // The diagnostics are the per-diagnostic objects of `--format json`: a
  // line and column only for a position in the file.
  ASSERT_TRUE(j["diagnostics"].is_array());
  for (const auto& d : j["diagnostics"]) {
    for (const char* key : {"file", "code", "severity", "message"})
      EXPECT_TRUE(d[key].is_string()) << key << " in " << d;
    EXPECT_EQ(d.contains("line"), d.contains("column")) << d;
    if (d.contains("line")) {
      EXPECT_GE(d["line"].get<int>(), 1) << d;
    }
  }
  bool root_warning = false;
  for (const auto& w : j["warnings"]) root_warning |= w["code"] == "root-inside";
  EXPECT_TRUE(root_warning);
  EXPECT_EQ(r.out.find("i4+dWTpg"), std::string::npos);
}

TEST_F(AuditTree, ProgramPrintsTextAndKeepsItsExitStatus) {
  three_sandboxes();
  auto r = run_check("-C " + path("master.yaml") + " --audit", root);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("mapped/job.0 (daemon mapped/job)\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("warning[root-inside]"), std::string::npos);

  // An invalid entry: exit 1, its diagnostics on stderr, the valid rest audited.
  processes("other", "tool:\n  kind: Command\n  image: ../escape\n  config: /config/tool.yaml\n");
  auto bad = run_check("-C " + path("master.yaml") + " --audit", root);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("error["), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out.find("other/cmd.tool.0"), std::string::npos);
  EXPECT_NE(bad.out.find("web/web.0"), std::string::npos);
}

TEST_F(AuditTree, ProgramUsageErrors) {
  three_sandboxes();
  auto with_container =
      run_check("--audit --check-container " + path("images-web/img/config/web.yaml"), root);
  EXPECT_EQ(with_container.status, 2);
  EXPECT_EQ(std::count(with_container.err.begin(), with_container.err.end(), '\n'), 1)
      << with_container.err;
  EXPECT_TRUE(with_container.out.empty());
  for (const char* format : {"sarif", "github", "gitlab"}) {
    auto ci = run_check("-C " + path("master.yaml") + " --audit --format " + format, root);
    EXPECT_EQ(ci.status, 2) << format;
    EXPECT_EQ(std::count(ci.err.begin(), ci.err.end(), '\n'), 1) << ci.err;
    EXPECT_NE(ci.err.find(std::string("not ") + format), std::string::npos) << ci.err;
    EXPECT_TRUE(ci.out.empty()) << ci.out;
  }
}
