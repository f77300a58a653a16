// Decoding of the four config kinds: defaults, spellings, null forms, tags
// and the diagnostics (code, line, column) of bad input.
#include <gtest/gtest.h>

#include "lithos/policy/config.hpp"

using namespace lithos::policy;

namespace {

template <class C>
std::optional<Loaded<C>> decode(std::string_view text, Diagnostics& diags) {
  return decode_text<C>(text, "test.yaml", diags);
}

// The first diagnostic, for assertions on bad input.
struct First {
  Code code;
  int line;
  int column;
  std::string message;
};

template <class C>
First first_error(std::string_view text) {
  Diagnostics diags;
  auto doc = decode<C>(text, diags);
  EXPECT_FALSE(doc.has_value()) << text;
  EXPECT_FALSE(diags.empty()) << text;
  if (diags.empty()) return {Code::YamlSyntax, 0, 0, ""};
  const auto& d = diags.items().front();
  return {d.code, d.mark.line, d.mark.column, d.message};
}

}  // namespace

TEST(MasterConfig, EmptyFileMeansAllDefaults) {
  Diagnostics diags;
  auto doc = decode<MasterCodec>("", diags);
  ASSERT_TRUE(doc) << diags.size();
  EXPECT_EQ(doc->value, MasterConfig{});
  EXPECT_EQ(doc->value.runtime_dir, "/run/lithos");
  EXPECT_EQ(doc->value.config_log_dir, std::optional<std::string>("/var/log/lithos/config"));
}

TEST(MasterConfig, DashedAndUnderscoreSpellings) {
  Diagnostics diags;
  auto doc = decode<MasterCodec>("runtime-dir: /a\nstate_dir: s\n", diags);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->value.runtime_dir, "/a");
  EXPECT_EQ(doc->value.state_dir, "s");
}

TEST(MasterConfig, MixedSpellingIsUnknown) {
  auto e = first_error<MasterCodec>("runtime-dir: /a\ndefault-log_dir: /x\n");
  EXPECT_EQ(e.code, Code::UnknownKey);
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 1);
}

TEST(MasterConfig, ExplicitNullDisablesOptional) {
  Diagnostics diags;
  auto doc = decode<MasterCodec>("config-log-dir: null\ncgroup-name: ~\n", diags);
  ASSERT_TRUE(doc);
  EXPECT_FALSE(doc->value.config_log_dir.has_value());
  EXPECT_FALSE(doc->value.cgroup_name.has_value());
}

TEST(MasterConfig, QuotedNullIsAString) {
  Diagnostics diags;
  auto doc = decode<MasterCodec>("cgroup-name: \"null\"\n", diags);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->value.cgroup_name, std::optional<std::string>("null"));
}

TEST(MasterConfig, UnknownKeySuggestsTheRightOne) {
  auto e = first_error<MasterCodec>("syslog-name: x\n");
  EXPECT_EQ(e.code, Code::UnknownKey);
  EXPECT_NE(e.message.find("syslog-app-name"), std::string::npos) << e.message;
}

TEST(MasterConfig, UnderscoreKeysAreIgnored) {
  Diagnostics diags;
  auto doc = decode<MasterCodec>("_anchor: &x /tmp\nruntime-dir: *x\n", diags);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->value.runtime_dir, "/tmp");
}

TEST(MasterConfig, BadSyslogFacilityIsAnError) {
  auto e = first_error<MasterCodec>("syslog-facility: nope\n");
  EXPECT_EQ(e.code, Code::BadEnum);
  EXPECT_EQ(e.line, 1);
  EXPECT_EQ(e.column, 18);
}

TEST(MasterConfig, AllErrorsReportedTogether) {
  Diagnostics diags;
  auto doc = decode<MasterCodec>("a: 1\nb: 2\nlog-level: loud\n", diags);
  EXPECT_FALSE(doc);
  EXPECT_EQ(diags.error_count(), 3u);
}

TEST(SandboxConfig, Defaults) {
  Diagnostics diags;
  auto doc = decode<SandboxCodec>("", diags);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->value.image_dir, "/var/lib/lithos/containers");
  EXPECT_EQ(doc->value.image_dir_levels, 1u);
  EXPECT_TRUE(doc->value.auto_clean);
  EXPECT_FALSE(doc->value.bridged_network);
}

TEST(SandboxConfig, FullExample) {
  Diagnostics diags;
  auto doc = decode<SandboxCodec>(R"(
image-dir: /var/lib/images
image-dir-levels: 2
allow-users: [1-99, 1000]
allow-groups: ["0-10"]
default-user: 5
readonly-paths:
  /etc/app: /etc/app-host
uid-map:
- {inside: 0, outside: 100000, count: 65536}
bridged-network:
  bridge: br0
  network: 10.0.0.0/24
  default-gateway: 10.0.0.1
secrets-namespaces: [a, b]
seccomp: {allow: [ptrace], deny: [socket]}
capabilities: [net_bind_service]
)",
                                  diags);
  ASSERT_TRUE(doc) << (diags.empty() ? "" : diags.items()[0].message);
  const auto& s = doc->value;
  EXPECT_EQ(s.image_dir_levels, 2u);
  ASSERT_EQ(s.allow_users.size(), 2u);
  EXPECT_EQ(s.allow_users[0].start, 1u);
  EXPECT_EQ(s.allow_users[0].end, 99u);
  EXPECT_EQ(s.default_user, std::optional<std::uint32_t>(5));
  ASSERT_EQ(s.uid_map.size(), 1u);
  EXPECT_EQ(s.uid_map[0].outside, 100000u);
  ASSERT_TRUE(s.bridged_network);
  EXPECT_EQ(s.bridged_network->bridge, "br0");
  EXPECT_EQ(s.bridged_network->network.prefix, 24);
  EXPECT_EQ(s.capabilities, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(s.seccomp.allow, std::vector<std::string>{"ptrace"});
}

TEST(SandboxConfig, EmptyBridgedNetworkMeansNone) {
  Diagnostics diags;
  auto doc = decode<SandboxCodec>("bridged-network:\n", diags);
  ASSERT_TRUE(doc);
  EXPECT_FALSE(doc->value.bridged_network);
}

TEST(SandboxConfig, ImageDirLevelsBounded) {
  auto e = first_error<SandboxCodec>("image-dir-levels: 17\n");
  EXPECT_EQ(e.code, Code::BadNumber);
  EXPECT_EQ(e.message, "Value must be at most 16");
}

TEST(SandboxConfig, UnknownSyscallAndCapability) {
  Diagnostics diags;
  auto doc =
      decode<SandboxCodec>("seccomp: {deny: [not_a_call]}\ncapabilities: [CAP_FLY]\n", diags);
  EXPECT_FALSE(doc);
  ASSERT_EQ(diags.error_count(), 2u);
  EXPECT_EQ(diags.items()[0].code, Code::UnknownSyscall);
  EXPECT_EQ(diags.items()[1].code, Code::UnknownCapability);
  EXPECT_EQ(diags.items()[1].mark.line, 2);
}

TEST(ProcessConfig, EmptyFileMeansNoProcesses) {
  Diagnostics diags;
  auto doc = decode<ProcessConfigCodec>("", diags);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->value.empty());
}

TEST(ProcessConfig, Entries) {
  Diagnostics diags;
  auto doc = decode<ProcessConfigCodec>(R"(
web:
  instances: 2
  image: app.v1
  config: /config/web.yaml
  variables: {port: "8080"}
  ip-addresses: [10.0.0.5, "::1"]
cron:
  kind: Command
  image: app.v1
  config: /config/cron.yaml
)",
                                        diags);
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->value.size(), 2u);
  const auto& web = doc->value.at("web");
  EXPECT_EQ(web.instances, 2u);
  EXPECT_EQ(web.variables.at("port"), "8080");
  EXPECT_EQ(web.ip_addresses.size(), 2u);
  EXPECT_EQ(doc->value.at("cron").kind, ProcessKind::Command);
  EXPECT_EQ(doc->marks.find("[web].image").line, 4);
}

TEST(ProcessConfig, MissingRequiredKeysEachReported) {
  Diagnostics diags;
  auto doc = decode<ProcessConfigCodec>("web:\n  instances: 1\n", diags);
  EXPECT_FALSE(doc);
  ASSERT_EQ(diags.error_count(), 2u);
  EXPECT_EQ(diags.items()[0].code, Code::MissingKey);
  EXPECT_EQ(diags.items()[0].mark.line, 2);
}

TEST(ProcessConfig, CommandOrDaemonIsNotAProcessKind) {
  auto e = first_error<ProcessConfigCodec>("a: {image: i, config: /c, kind: CommandOrDaemon}\n");
  EXPECT_EQ(e.code, Code::BadEnum);
}

TEST(ContainerConfig, MinimalAndDefaults) {
  Diagnostics diags;
  auto doc = decode<ContainerCodec>("executable: /bin/true\n", diags);
  ASSERT_TRUE(doc);
  const auto& c = doc->value;
  EXPECT_EQ(c.kind, ContainerKind::Daemon);
  EXPECT_EQ(c.restart_timeout.count, 1000);
  EXPECT_EQ(c.kill_timeout.count, 5000);
  EXPECT_EQ(c.fileno_limit, 1024u);
  EXPECT_EQ(c.workdir, "/");
  EXPECT_TRUE(c.resolv_conf.copy_from_host);
  EXPECT_FALSE(c.hosts_file.localhost.has_value());
}

TEST(ContainerConfig, EmptyFileFailsWithMissingExecutable) {
  auto e = first_error<ContainerCodec>("");
  EXPECT_EQ(e.code, Code::MissingKey);
}

TEST(ContainerConfig, VolumesAndVariables) {
  Diagnostics diags;
  auto doc = decode<ContainerCodec>(R"(
executable: /bin/app
volumes:
  /data: !Persistent {path: /db, mkdir: true, mode: 0o700, user: 1}
  /etc/app: !Readonly /etc/app
  /state: !Statedir
  /tmp: !Tmpfs {size: 10Mi}
variables:
  port: !TcpPort {activation: systemd}
  port2: !TcpPort
  name: !Name
  dn: !DottedName
  mode: !Choice [a, b]
restart-timeout: 0.5
)",
                                    diags);
  ASSERT_TRUE(doc) << (diags.empty() ? "" : diags.items()[0].message);
  const auto& c = doc->value;
  auto& data = std::get<PersistentVolume>(c.volumes.at("/data"));
  EXPECT_EQ(data.path, "/db");
  EXPECT_TRUE(data.mkdir);
  EXPECT_EQ(data.mode, 0700u);
  EXPECT_EQ(std::get<ReadonlyVolume>(c.volumes.at("/etc/app")).path, "/etc/app");
  EXPECT_EQ(std::get<StatedirVolume>(c.volumes.at("/state")).path, "/");
  EXPECT_EQ(std::get<TmpfsVolume>(c.volumes.at("/tmp")).size, 10u << 20);
  EXPECT_EQ(std::get<TcpPortVariable>(c.variables.at("port")).activation, Activation::Systemd);
  EXPECT_EQ(std::get<TcpPortVariable>(c.variables.at("port2")).activation, Activation::None);
  EXPECT_EQ(std::get<ChoiceVariable>(c.variables.at("mode")).choices,
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.restart_timeout.count, 500);
}

TEST(ContainerConfig, PersistentScalarShorthandRejected) {
  auto e = first_error<ContainerCodec>("executable: /x\nvolumes:\n  /d: !Persistent /db\n");
  EXPECT_EQ(e.code, Code::WrongType);
  EXPECT_EQ(e.line, 3);
}

TEST(ContainerConfig, UntaggedVolumeRejected) {
  auto e = first_error<ContainerCodec>("executable: /x\nvolumes:\n  /d: /db\n");
  EXPECT_EQ(e.code, Code::BadTag);
}

TEST(ContainerConfig, NameWithValueRejected) {
  auto e = first_error<ContainerCodec>("executable: /x\nvariables:\n  n: !Name foo\n");
  EXPECT_EQ(e.code, Code::BadTag);
}

TEST(ContainerConfig, WorkDirIsNotWorkdir) {
  auto e = first_error<ContainerCodec>("executable: /x\nwork-dir: /a\n");
  EXPECT_EQ(e.code, Code::UnknownKey);
  EXPECT_NE(e.message.find("workdir"), std::string::npos);
}

TEST(ContainerConfig, SecretEnvironScalarOrList) {
  Diagnostics diags;
  auto doc = decode<ContainerCodec>(
      "executable: /x\nsecret-environ:\n  A: v2:a\n  B: [v2:b, v2:c]\n", diags);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->value.secret_environ.at("A"), std::vector<std::string>{"v2:a"});
  EXPECT_EQ(doc->value.secret_environ.at("B").size(), 2u);
}

TEST(ContainerConfig, TcpPortNeedsFd) {
  auto e = first_error<ContainerCodec>("executable: /x\ntcp-ports:\n  80: {host: 0.0.0.0}\n");
  EXPECT_EQ(e.code, Code::MissingKey);
  EXPECT_EQ(e.line, 3);
}

TEST(Printer, RoundTripsAFullContainer) {
  Diagnostics diags;
  auto doc = decode<ContainerCodec>(R"(
executable: /bin/app
arguments: ["", "~", "null", "a: b", "- x"]
environ: {A: "1", B: ""}
volumes:
  /s: !Statedir {path: /x}
  /r: !Readonly /etc
variables:
  n: !Name
  c: !Choice [x]
user-id: 5
restart-timeout: 1.25
)",
                                    diags);
  ASSERT_TRUE(doc);
  std::string text = print<ContainerCodec>(doc->value);
  Diagnostics again;
  auto round = decode<ContainerCodec>(text, again);
  ASSERT_TRUE(round) << text << (again.empty() ? "" : again.items()[0].message);
  EXPECT_EQ(round->value, doc->value) << text;
}
