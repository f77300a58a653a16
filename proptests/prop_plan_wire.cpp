// The launch plan's wire format (plan_wire.hpp) and the knot's invocation
// (invocation.hpp): decode(encode(p)) == p for every plan, no prefix of an
// encoding and no arbitrary bytes decode to a plan (or crash), and names and
// knot argv round-trip through their one parser and formatter.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "lithos/policy/invocation.hpp"
#include "lithos/policy/names.hpp"
#include "lithos/policy/plan_wire.hpp"
#include "plan_test_access.hpp"

namespace {

using namespace lithos::policy;
namespace gen = rc::gen;

// Any bytes, including the framing characters ':' and ';' and NUL.
rc::Gen<std::string> bytes() {
  return gen::container<std::string>(
      gen::oneOf(gen::elementOf(std::string(":;-0123456789\n")), gen::arbitrary<char>()));
}
rc::Gen<std::vector<std::string>> byte_list() {
  return gen::container<std::vector<std::string>>(bytes());
}

template <class T>
T any() {
  return *gen::arbitrary<T>();
}

scalars::IpAddress any_ip() {
  scalars::IpAddress ip;
  ip.v6 = any<bool>();
  for (auto& b : ip.bytes) b = any<std::uint8_t>();
  return ip;
}

std::optional<std::string> maybe_text() {
  if (any<bool>()) return std::nullopt;
  return *bytes();
}

InstancePlan any_plan() {
  InstancePlan p = PlanTestAccess::blank();
  p.name = *bytes();
  p.sandbox = *bytes();
  p.child = *bytes();
  p.index = any<std::uint64_t>();
  p.kind = *gen::element(ProcessKind::Daemon, ProcessKind::Command);
  p.container_kind =
      *gen::element(ContainerKind::Daemon, ContainerKind::Command, ContainerKind::CommandOrDaemon);
  p.identity = *bytes();
  p.image_root = *bytes();
  p.mount_root = *bytes();
  p.state_dir = *bytes();
  p.devfs_dir = *bytes();
  for (int i = *gen::inRange(0, 4); i > 0; --i) {
    MountPlan m;
    m.kind = *gen::element(MountPlan::Kind::BindReadOnly, MountPlan::Kind::BindReadWrite,
                           MountPlan::Kind::Tmpfs);
    m.volume = *bytes();
    m.source = *bytes();
    m.target = *bytes();
    m.data = *bytes();
    m.create = any<bool>();
    m.mode = any<std::uint32_t>();
    m.owner_uid = any<std::uint32_t>();
    m.owner_gid = any<std::uint32_t>();
    m.confine_to = *bytes();
    p.mounts.push_back(m);
  }
  p.mount_resolv_conf = any<bool>();
  p.require_resolv_conf = any<bool>();
  p.resolv_conf_source = maybe_text();
  p.mount_hosts = any<bool>();
  p.require_hosts = any<bool>();
  p.hosts_copy_source = maybe_text();
  p.hosts_localhost = any<bool>();
  p.hosts_public_hostname = any<bool>();
  for (int i = *gen::inRange(0, 3); i > 0; --i) p.additional_hosts.emplace_back(*bytes(), *bytes());
  p.write_hosts = any<bool>();
  p.uid = any<std::uint32_t>();
  p.gid = any<std::uint32_t>();
  for (int i = *gen::inRange(0, 3); i > 0; --i)
    p.uid_map.push_back({any<std::uint32_t>(), any<std::uint32_t>(), any<std::uint32_t>()});
  for (int i = *gen::inRange(0, 3); i > 0; --i)
    p.gid_map.push_back({any<std::uint32_t>(), any<std::uint32_t>(), any<std::uint32_t>()});
  p.user_namespace = any<bool>();
  p.executable = *bytes();
  p.argv = *gen::nonEmpty(byte_list());
  for (int i = *gen::inRange(0, 4); i > 0; --i) p.environ.emplace_back(*bytes(), *bytes());
  p.pid_variables = *byte_list();
  p.workdir = *bytes();
  if (any<bool>()) {
    SecretsPlan s;
    s.private_key_path = *bytes();
    s.allowed_namespaces = *byte_list();
    for (int i = *gen::inRange(0, 3); i > 0; --i) s.values[*bytes()] = *byte_list();
    s.file = maybe_text();
    p.secrets = s;
  }
  p.fileno_limit = any<std::uint64_t>();
  if (any<bool>()) {
    CgroupPlan c;
    c.parent = *bytes();
    c.scope = *bytes();
    c.controllers = *byte_list();
    c.memory_limit = any<std::uint64_t>();
    c.cpu_shares = any<std::uint64_t>();
    if (any<bool>()) c.pids_limit = any<std::uint64_t>();
    auto maybe = [&]() -> std::optional<std::uint64_t> {
      if (any<bool>()) return any<std::uint64_t>();
      return std::nullopt;
    };
    c.memory_high = maybe();
    c.memory_low = maybe();
    c.memory_oom_group = any<bool>();
    c.cpu_quota_us = maybe();
    c.cpu_period_us = any<std::uint64_t>();
    c.io_weight = maybe();
    for (int i = *gen::inRange(0, 3); i > 0; --i)
      c.io_max.push_back(
          {any<std::uint32_t>(), any<std::uint32_t>(), maybe(), maybe(), maybe(), maybe()});
    p.cgroup = c;
  }
  p.capabilities = *byte_list();
  p.capability_mask = any<std::uint64_t>();
  p.seccomp.enabled = any<bool>();
  p.seccomp.denied = *byte_list();
  p.seccomp.argument_rules = any<bool>();
  for (int i = *gen::inRange(0, 20); i > 0; --i)
    p.seccomp.program.push_back(
        {any<std::uint16_t>(), any<std::uint8_t>(), any<std::uint8_t>(), any<std::uint32_t>()});
  p.seccomp.skipped = *byte_list();
  p.seccomp.namespace_rules = any<bool>();
  p.apparmor_profile = *bytes();
  p.selinux_label = *bytes();
  p.landlock.enabled = any<bool>();
  p.landlock.writable = *byte_list();
  p.landlock.write_files = *byte_list();
  p.landlock.restrict_bind = any<bool>();
  p.landlock.bind_ports = *gen::arbitrary<std::vector<std::uint16_t>>();
  p.landlock.scope_abstract_unix = any<bool>();
  p.landlock.scope_signals = any<bool>();
  if (any<bool>()) {
    NetworkPlan n;
    n.bridge = *bytes();
    if (any<bool>()) n.ip = any_ip();
    n.prefix = any<int>();
    if (any<bool>()) n.gateway = any_ip();
    n.host_interface = *bytes();
    n.container_interface = *bytes();
    n.after_setup_command = *byte_list();
    p.network = n;
  }
  for (int i = *gen::inRange(0, 3); i > 0; --i) {
    SocketPlan s;
    s.port = any<std::uint16_t>();
    s.host = any_ip();
    s.fd = any<std::uint32_t>();
    s.reuse_addr = any<bool>();
    s.reuse_port = any<bool>();
    s.set_non_block = any<bool>();
    s.listen_backlog = any<std::uint32_t>();
    s.host_side = any<bool>();
    p.sockets.push_back(s);
  }
  p.restart_timeout_ms = any<std::int64_t>();
  p.kill_timeout_ms = any<std::int64_t>();
  p.restart_process_only = any<bool>();
  p.normal_exit_codes = *gen::arbitrary<std::vector<std::int32_t>>();
  p.interactive = any<bool>();
  p.stdout_stderr_file = maybe_text();
  p.stdio_log = *bytes();
  p.log_file = *bytes();
  p.log_level = *bytes();
  if (any<bool>()) p.syslog_facility = any<int>();
  p.syslog_ident = *bytes();
  return p;
}

RC_GTEST_PROP(PlanWire, RoundTrips, ()) {
  auto plan = any_plan();
  auto wire = encode_plan(plan);
  auto back = decode_plan(wire);
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == plan);
  RC_ASSERT(encode_plan(*back) == wire);
}

// One encoder over a run of plans, as the tree's reader uses it: plans
// that share the previous one's seccomp program (the memo is used), one
// that differs by a single instruction, and an empty program, each written
// byte for byte as encode_plan writes it alone.
RC_GTEST_PROP(PlanWire, AnEncoderWritesWhatEncodePlanWrites, ()) {
  const auto plans =
      *gen::container<std::vector<int>>(*gen::inRange<std::size_t>(1, 8), gen::inRange(0, 4));
  PlanEncoder encoder;
  InstancePlan previous = any_plan();
  RC_ASSERT(encoder.encode(previous) == encode_plan(previous));
  int reused = 0;
  for (int kind : plans) {
    InstancePlan plan = any_plan();
    if (kind == 0 || kind == 1) plan.seccomp.program = previous.seccomp.program;
    if (kind == 1 && !plan.seccomp.program.empty()) {
      auto& changed =
          plan.seccomp.program[*gen::inRange<std::size_t>(0, plan.seccomp.program.size())];
      changed.k ^= 1u + *gen::inRange<std::uint32_t>(0, 1000);
    }
    if (kind == 2) plan.seccomp.program.clear();
    if (plan.seccomp.program == previous.seccomp.program) ++reused;
    RC_ASSERT(encoder.encode(plan) == encode_plan(plan));
    previous = plan;
  }
  RC_TAG(reused > 0 ? "program reused" : "no reuse");
}

RC_GTEST_PROP(PlanWire, NoProperPrefixDecodes, ()) {
  auto wire = encode_plan(any_plan());
  auto cut = *gen::inRange<std::size_t>(0, wire.size());
  auto back = decode_plan(std::string_view(wire).substr(0, cut));
  RC_ASSERT(!back.ok());
  RC_ASSERT(!back.error().empty());
  RC_ASSERT(back.error().find('\n') == std::string::npos);  // one line
}

RC_GTEST_PROP(PlanWire, ExtraBytesAreRefused, ()) {
  auto wire = encode_plan(any_plan()) + *gen::nonEmpty(bytes());
  RC_ASSERT(!decode_plan(wire).ok());
}

RC_GTEST_PROP(PlanWire, ArbitraryBytesNeverCrash, ()) {
  // With and without the header, so that the field decoder is reached.
  auto junk = *bytes();
  (void)decode_plan(junk);
  (void)decode_plan(std::string(kPlanMagic) + junk);
}

RC_GTEST_PROP(PlanWire, FlippedByteNeverCrashes, ()) {
  auto wire = encode_plan(any_plan());
  auto at = *gen::inRange<std::size_t>(0, wire.size());
  wire[at] = *gen::arbitrary<char>();
  auto back = decode_plan(wire);
  if (back.ok()) RC_ASSERT(encode_plan(*back) == wire);  // accepted only if canonical
}

// One spelling per value (found by fuzz_plan_wire): a "-" inserted before
// any number 0 of a plan must not decode to the same plan.
RC_GTEST_PROP(PlanWire, MinusZeroIsRefused, ()) {
  auto wire = encode_plan(any_plan());
  std::vector<std::size_t> zeros;
  for (std::size_t i = kPlanMagic.size(); i + 1 < wire.size(); ++i)
    if (wire[i] == '0' && wire[i + 1] == ';' && (wire[i - 1] == ';' || wire[i - 1] == '\n'))
      zeros.push_back(i);
  RC_PRE(!zeros.empty());
  auto at = *gen::elementOf(zeros);
  wire.insert(at, 1, '-');
  auto back = decode_plan(wire);
  if (back.ok()) RC_ASSERT(encode_plan(*back) == wire);
}

TEST(PlanWire, OversizedAndForeignInputsAreRefusedWithOneLine) {
  auto big = decode_plan(std::string(kMaxPlanBytes + 1, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().find("larger than the limit"), std::string::npos) << big.error();
  auto other = decode_plan("lithos-plan 9\n");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().find("another version"), std::string::npos) << other.error();
  auto none = decode_plan("hello");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().find("not a launch plan"), std::string::npos) << none.error();
  // An enumeration out of range: the first MountPlan's kind set to 7.
  auto plan = PlanTestAccess::blank();
  plan.argv = {"/bin/true"};
  plan.mounts.push_back({});
  auto wire = encode_plan(plan);
  auto at = wire.find("1;0;");  // mounts count 1, then kind 0
  ASSERT_NE(at, std::string::npos);
  wire[at + 2] = '7';
  auto bad = decode_plan(wire);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("enumeration out of range"), std::string::npos) << bad.error();
}

// ---- names and the knot's argv ----------------------------------------------------

rc::Gen<std::string> valid_name_gen() {
  return gen::nonEmpty(
      gen::container<std::string>(gen::elementOf(std::string("abcxyzABC019_-\x80\xc3\xa9"))));
}

RC_GTEST_PROP(InstanceNames, FormatThenParseIsIdentity, ()) {
  InstanceName name{*valid_name_gen(), *valid_name_gen(), *gen::arbitrary<bool>(),
                    *gen::inRange<std::uint64_t>(0, std::uint64_t{1} << 63)};
  auto back = InstanceName::parse(name.format());
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == name);
}

RC_GTEST_PROP(InstanceNames, ParseThenFormatIsIdentity, (const std::string& text)) {
  if (auto parsed = InstanceName::parse(text)) {
    RC_ASSERT(parsed->format() == text);
    RC_ASSERT(names::valid_name(parsed->sandbox));
    RC_ASSERT(names::valid_name(parsed->child));
  }
}

// The tree finds an instance's scope by name and names a dangling scope's
// instance by its directory: the two must invert each other.
RC_GTEST_PROP(InstanceNames, ScopeNameThenInstanceOfScopeIsIdentity, ()) {
  InstanceName name{*valid_name_gen(), *valid_name_gen(), *gen::arbitrary<bool>(),
                    *gen::inRange<std::uint64_t>(0, std::uint64_t{1} << 63)};
  const std::string scope = scope_name(name.format());
  RC_ASSERT(scope.find('/') == std::string::npos);
  RC_ASSERT(instance_of_scope(scope) == std::optional<std::string>(name.format()));
}

RC_GTEST_PROP(InstanceNames, OnlyScopeDirectoriesNameAnInstance, (const std::string& dir)) {
  const auto name = instance_of_scope(dir);
  const bool ours = dir.size() > 6 && dir.ends_with(".scope") &&
                    dir.substr(0, dir.size() - 6).find(':') != std::string::npos;
  RC_ASSERT(name.has_value() == ours);
  // Without a '/' of its own, the directory is what scope_name writes back.
  if (name && dir.find('/') == std::string::npos) RC_ASSERT(scope_name(*name) == dir);
}

RC_GTEST_PROP(KnotInvocations, FormatThenParseIsIdentity, ()) {
  KnotInvocation inv;
  inv.name = {*valid_name_gen(), *valid_name_gen(), *gen::arbitrary<bool>(),
              *gen::inRange<std::uint64_t>(0, 1'000'000)};
  inv.master = "/" + *gen::arbitrary<std::string>();
  inv.identity = *gen::arbitrary<std::string>();
  inv.log_stderr = *gen::arbitrary<bool>();
  if (*gen::arbitrary<bool>()) inv.log_level = *gen::element<std::string>("DEBUG", "info");
  inv.extra = *gen::arbitrary<std::vector<std::string>>();
  auto argv = inv.format("/usr/bin/lithos_knot");
  RC_ASSERT(argv[0] == "/usr/bin/lithos_knot");
  std::string error;
  auto back = KnotInvocation::parse(argv, &error);
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == inv);
}

TEST(KnotInvocations, ErrorsSayWhy) {
  std::string error;
  EXPECT_FALSE(KnotInvocation::parse({"k", "--config", "{}"}, &error));
  EXPECT_EQ(error, "--name is required");
  EXPECT_FALSE(KnotInvocation::parse({"k", "--name", "a/b.0"}, &error));
  EXPECT_EQ(error, "--config is required");
  EXPECT_FALSE(KnotInvocation::parse({"k", "--name", "a/b", "--config", "{}"}, &error));
  EXPECT_EQ(error, "Bad value \"a/b\" for --name: expected SANDBOX/PROCESS.N");
  EXPECT_FALSE(KnotInvocation::parse({"k", "--name=a/b.0", "--what", "--config", "{}"}, &error));
  EXPECT_EQ(error, "Unknown option --what");
  EXPECT_FALSE(KnotInvocation::parse({"k", "--name"}, &error));
  EXPECT_EQ(error, "option --name needs a value");
}

}  // namespace
