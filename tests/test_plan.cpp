// Plans built from the bundled example tree: what the runtime will execute.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lithos/policy/check.hpp"

using namespace lithos::policy;

namespace {

struct ExampleTree : ::testing::Test {
  void SetUp() override {
    ASSERT_EQ(::chdir(LITHOS_SOURCE_DIR "/examples/basic"), 0);
    tree = load_tree("master.yaml", {}, diags, &sources);
    check_tree(tree, {}, diags, &sources, &plans);
  }
  Diagnostics diags;
  Sources sources;
  ConfigTree tree;
  std::vector<InstancePlan> plans;

  const InstancePlan& plan(const std::string& name) {
    for (const auto& p : plans)
      if (p.name == name) return p;
    throw std::runtime_error("no plan " + name);
  }
};

std::string env(const InstancePlan& p, const std::string& key) {
  for (const auto& [k, v] : p.environ)
    if (k == key) return v;
  return "<unset>";
}

}  // namespace

TEST_F(ExampleTree, ChecksCleanAndBuildsOnePlanPerInstance) {
  EXPECT_FALSE(diags.has_errors());
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].name, "demo/cmd.hello.0");
  EXPECT_EQ(plans[1].name, "demo/web.0");
  EXPECT_EQ(plans[2].name, "demo/worker.0");
  EXPECT_EQ(plans[3].name, "demo/worker.1");
}

TEST_F(ExampleTree, IdentityIsTheCompactJsonOfTheSpec) {
  EXPECT_EQ(plan("demo/web.0").identity,
            R"({"instances":1,"image":"demo.v1","config":"/config/web.yaml",)"
            R"("variables":{"greeting":"hello","port":"8080"},"kind":"Daemon"})");
  EXPECT_EQ(plan("demo/cmd.hello.0").identity,
            R"({"instances":1,"image":"demo.v1","config":"/config/hello.yaml","kind":"Command"})");
}

TEST_F(ExampleTree, ArgumentsAndEnvironmentAreSubstituted) {
  const auto& p = plan("demo/web.0");
  EXPECT_EQ(p.argv,
            (std::vector<std::string>{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"}));
  EXPECT_EQ(env(p, "GREETING"), "hello from demo/web.0");
  EXPECT_EQ(env(p, "LITHOS_NAME"), "demo/web.0");
  EXPECT_EQ(env(p, "LITHOS_CONFIG"), "/config/web.yaml");
  EXPECT_EQ(env(p, "MY_PID"), "<unset>");
  EXPECT_EQ(p.pid_variables, std::vector<std::string>{"MY_PID"});
}

TEST_F(ExampleTree, IdsLimitsAndHardening) {
  const auto& p = plan("demo/web.0");
  EXPECT_EQ(p.uid, 1000u);
  EXPECT_EQ(p.gid, 1000u);
  EXPECT_FALSE(p.user_namespace);
  EXPECT_EQ(p.restart_timeout_ms, 500);
  EXPECT_EQ(p.kill_timeout_ms, 2000);
  EXPECT_FALSE(p.cgroup.has_value());  // cgroup-name: ~ in the example
  EXPECT_TRUE(p.capabilities.empty());
  EXPECT_TRUE(p.seccomp.enabled);
  auto has = [&](const std::string& name) {
    return std::find(p.seccomp.denied.begin(), p.seccomp.denied.end(), name) !=
           p.seccomp.denied.end();
  };
  EXPECT_TRUE(has("mount"));
  EXPECT_TRUE(has("ptrace"));
  EXPECT_TRUE(has("socketpair"));  // the example's extra deny
  EXPECT_FALSE(has("read"));
}

TEST_F(ExampleTree, MountsAreOrderedAndResolved) {
  const auto& p = plan("demo/web.0");
  ASSERT_EQ(p.mounts.size(), 2u);
  EXPECT_EQ(p.mounts[0].target, "/tmp");
  EXPECT_EQ(p.mounts[0].kind, MountPlan::Kind::Tmpfs);
  EXPECT_EQ(p.mounts[0].data, "size=16777216,mode=01777");
  EXPECT_EQ(p.mounts[1].target, "/state");
  EXPECT_EQ(p.mounts[1].source, "/run/lithos-example/state/demo/web.0");
  EXPECT_FALSE(p.mounts[1].create);  // the state dir root itself is not re-owned
  EXPECT_EQ(p.state_dir, "/run/lithos-example/state/demo/web.0");
  EXPECT_EQ(p.mount_root, "/run/lithos-example/mnt");
  EXPECT_EQ(p.image_root, "./images/demo.v1");
  EXPECT_EQ(p.stdio_log, "/tmp/lithos-example/log/stderr/demo.log");
  EXPECT_EQ(p.log_file, "/tmp/lithos-example/log/demo.log");
}

TEST(Identity, EscapingAndIpv6) {
  ProcessEntry e;
  e.image = "a\"b\\c\x01/é";
  e.config = "/c";
  e.extra_secrets_namespaces = {"x", "y"};
  auto ip = scalars::parse_ip("2001:db8::1");
  ASSERT_TRUE(ip);
  EXPECT_EQ(instance_identity(e, *ip, ProcessKind::Daemon),
            "{\"instances\":1,\"image\":\"a\\\"b\\\\c\\u0001/é\",\"config\":\"/c\","
            "\"extra_secrets_namespaces\":[\"x\",\"y\"],\"ip_address\":\"2001:db8::1\","
            "\"kind\":\"Daemon\"}");
}

TEST(ProcessConfigJson, AllEntriesSortedWithOptionalMembersOmitted) {
  ProcessConfig config;
  config["b"].image = "i";
  config["b"].config = "/c";
  config["a"].image = "j";
  config["a"].config = "/d";
  config["a"].kind = ProcessKind::Command;
  config["a"].instances = 3;
  EXPECT_EQ(process_config_json(config),
            R"({"a":{"instances":3,"image":"j","config":"/d","kind":"Command"},)"
            R"("b":{"instances":1,"image":"i","config":"/c","kind":"Daemon"}})");
}

TEST(PlanInstance, ReDerivesOneInstanceFromItsIdentity) {
  ASSERT_EQ(::chdir(LITHOS_SOURCE_DIR "/examples/basic"), 0);
  Diagnostics diags;
  LoadOptions load;
  load.only_sandbox = "demo";
  load.skip_process_configs = true;
  auto tree = load_tree("master.yaml", load, diags, nullptr);
  ASSERT_FALSE(diags.has_errors());
  auto identity =
      parse_instance_identity(R"({"instances":1,"image":"demo.v1","config":"/config/web.yaml",)"
                              R"("variables":{"greeting":"hello","port":"8080"},"kind":"Daemon"})",
                              diags);
  ASSERT_TRUE(identity);
  InstanceRequest request{"demo", "web", 1, 0, *identity};
  auto plan = plan_instance(tree, request, diags, nullptr);
  ASSERT_TRUE(plan) << (diags.empty() ? "" : diags.items()[0].message);
  EXPECT_EQ(plan->name, "demo/web.1");
  EXPECT_EQ(plan->index, 1u);
  EXPECT_EQ(plan->identity, R"({"instances":1,"image":"demo.v1","config":"/config/web.yaml",)"
                            R"("variables":{"greeting":"hello","port":"8080"},"kind":"Daemon"})");

  // The same checks as lithos_check: an escaping image is refused at run time.
  Diagnostics bad;
  auto escaping =
      parse_instance_identity(R"({"image":"../demo.v1","config":"/config/web.yaml"})", bad);
  ASSERT_TRUE(escaping);
  InstanceRequest evil{"demo", "web", 0, 0, *escaping};
  EXPECT_FALSE(plan_instance(tree, evil, bad, nullptr));
  ASSERT_TRUE(bad.has_errors());
  EXPECT_EQ(bad.items()[0].code, Code::ImagePath);

  Diagnostics garbage;
  EXPECT_FALSE(parse_instance_identity("{not json", garbage));
  EXPECT_TRUE(garbage.has_errors());
}

// lithos_check asks the host whether instances can be placed in cgroups
// (CheckOptions::cgroup_refusal): the master's controllers once, and a
// plan's own list when `pids-limit` adds `pids` to the default one. Here a
// stand-in host that has no pids controller.
TEST(CgroupRefusal, PidsAddedByPidsLimitIsAskedToo) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/lithos-cgroup-check-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path dir = fs::path(tmpl) / "case";
  fs::copy(fs::path(LITHOS_SOURCE_DIR) / "corpus/cases/good-minimal", dir,
           fs::copy_options::recursive);
  {
    std::ofstream master(dir / "master.yaml", std::ios::app);
    master << "cgroup-name: lithos-test.slice\n";
  }
  std::string master_text;
  {
    std::ifstream in(dir / "master.yaml");
    std::stringstream all;
    all << in.rdbuf();
    master_text = all.str();
  }
  // The corpus master says `cgroup-name: ~`; the appended key replaces it.
  master_text.erase(master_text.find("cgroup-name: ~\n"), 15);
  std::ofstream(dir / "master.yaml", std::ios::trunc) << master_text;

  std::vector<std::vector<std::string>> asked;
  CheckOptions options;
  options.inspect_images = true;
  options.cgroup_refusal = [&](const CgroupPlan& plan) -> std::optional<CgroupRefusal> {
    const auto& controllers = plan.controllers;
    asked.push_back(controllers);
    if (std::find(controllers.begin(), controllers.end(), "pids") != controllers.end())
      return CgroupRefusal{"", "CGroup pids not mounted"};
    if (plan.memory_high) return CgroupRefusal{"memory-high", "memory is a v1 hierarchy here"};
    return std::nullopt;
  };
  auto check = [&] {
    EXPECT_EQ(::chdir(dir.c_str()), 0);
    Diagnostics diags;
    auto tree = load_tree("master.yaml", {}, diags, nullptr);
    std::vector<InstancePlan> plans;
    check_tree(tree, options, diags, nullptr, &plans);
    EXPECT_EQ(::chdir("/"), 0);
    return std::pair(std::move(diags), plans.size());
  };

  auto [clean, clean_plans] = check();
  EXPECT_FALSE(clean.has_errors());
  EXPECT_EQ(clean_plans, 1u);
  EXPECT_EQ(asked.size(), 1u);  // the master's list only

  std::ofstream(dir / "images/app/config/app.yaml", std::ios::app) << "pids-limit: 64\n";
  asked.clear();
  auto [refused, refused_plans] = check();
  ASSERT_TRUE(refused.has_errors());
  EXPECT_EQ(refused.items()[0].code, Code::Cgroup);
  EXPECT_EQ(refused.items()[0].mark.line, 2);  // the pids-limit line
  EXPECT_EQ(refused_plans, 0u);
  EXPECT_EQ(asked.size(), 2u);

  // A control the host cannot apply is reported on its own key, once per
  // distinct question: the plan asked carries the control.
  std::ofstream(dir / "images/app/config/app.yaml", std::ios::trunc)
      << "kind: Daemon\nexecutable: /bin/true\nmemory-high: 1000000\n";
  asked.clear();
  auto [high, high_plans] = check();
  ASSERT_EQ(high.items().size(), 1u);
  EXPECT_EQ(high.items()[0].code, Code::Cgroup);
  EXPECT_EQ(high.items()[0].mark.line, 3);
  EXPECT_EQ(high.items()[0].message,
            "memory-high cannot be applied on this host: memory is a v1 hierarchy here");
  EXPECT_EQ(high_plans, 0u);
  EXPECT_EQ(asked.size(), 2u);
  fs::remove_all(tmpl);
}
