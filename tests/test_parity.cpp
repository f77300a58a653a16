// "What passes is what runs" (docs/lithos_check.md): every corpus tree and
// the bundled example go through the checks lithos_check runs (check_tree
// with image inspection), and every instance that passes is started for real
// by lithos_knot, as the tree starts it (its plan on a sealed memfd, in the
// knot's namespaces). The knot must get through every step and exec the
// container, whose program (corpus/make-exit0-elf.sh, busybox in the
// example) then exits 0. Runs as root with namespaces, as CI does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>

#include "test_knot_support.hpp"

namespace {

using namespace knot_test;
namespace fs = std::filesystem;

const fs::path kCases = fs::path(LITHOS_SOURCE_DIR) / "corpus" / "cases";

// The host state the corpus names (corpus/host-setup.sh).
void create_corpus_host_state() {
  ASSERT_EQ(run_shell((fs::path(LITHOS_SOURCE_DIR) / "corpus" / "host-setup.sh").string()), 0);
}

std::vector<std::string> corpus_trees() {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(kCases))
    if (fs::exists(entry.path() / "master.yaml")) out.push_back(entry.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

std::string describe(const policy::Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags.items())
    out += d.file + ":" + std::to_string(d.mark.line) + ": " + std::string(code_id(d.code)) + ": " +
           d.message + "\n";
  return out;
}

// The cwd for relative paths of a tree (the corpus runs lithos_check in the
// case directory), restored on scope exit.
class InDirectory {
 public:
  explicit InDirectory(const fs::path& dir) : previous_(fs::current_path()) {
    fs::current_path(dir);
  }
  ~InDirectory() { fs::current_path(previous_); }

 private:
  fs::path previous_;
};

struct CheckedTree {
  policy::Diagnostics diags;
  std::vector<policy::InstancePlan> plans;
};

// `--sandbox NAME --alternate-config FILE` from a case's `args:` line
// (corpus/README.md), as lithos_check would take them.
policy::LoadOptions load_options_of(const fs::path& case_dir) {
  policy::LoadOptions load;
  std::ifstream expect(case_dir / "expect");
  for (std::string line; std::getline(expect, line);) {
    if (line.rfind("args:", 0) != 0) continue;
    std::istringstream words(line.substr(5));
    for (std::string word, value; words >> word;) {
      if (word == "--sandbox" && words >> value) load.alternate_sandbox = value;
      if (word == "--alternate-config" && words >> value) load.alternate_file = value;
    }
  }
  return load;
}

CheckedTree check_like_lithos_check(const std::string& master,
                                    const policy::LoadOptions& load = {}) {
  CheckedTree out;
  auto tree = policy::load_tree(master, load, out.diags, nullptr);
  policy::CheckOptions options;
  options.inspect_images = true;
  options.cgroup_refusal = [](const policy::CgroupPlan& plan) {
    return runtime::cgroup_refusal(plan);
  };
  policy::check_tree(tree, options, out.diags, nullptr, &out.plans);
  return out;
}

// Whether the check refused the master or this plan's sandbox as a whole:
// then no instance of it passes, whatever its own entry says.
bool refused_above_entry(const CheckedTree& checked, const policy::InstancePlan& plan) {
  return std::any_of(checked.diags.items().begin(), checked.diags.items().end(),
                     [&](const policy::Diagnostic& d) {
                       if (d.severity != policy::Severity::Error) return false;
                       auto file = fs::path(d.file).lexically_normal();
                       return file == fs::path("master.yaml") ||
                              file == fs::path("sandboxes") / (plan.sandbox + ".yaml");
                     });
}

// Whether this plan's sandbox got a `bridge` warning: a bridge is host
// state the check reports but does not refuse (docs/diagnostics.md).
bool bridge_missing(const CheckedTree& checked, const policy::InstancePlan& plan) {
  if (!plan.network) return false;
  return std::any_of(checked.diags.items().begin(), checked.diags.items().end(),
                     [&](const policy::Diagnostic& d) {
                       return d.code == policy::Code::Bridge &&
                              d.message.find(plan.network->bridge) != std::string::npos;
                     });
}

struct KnotRun {
  bool ran = false;    // the container's executable was exec'd
  std::string output;  // what the knot said (its log on stderr)
};

// Starts the knot on `plan` and reads what it says until it has exec'd the
// container's executable (its info line says so) or has exited.
KnotRun run_knot(const policy::InstancePlan& plan, const std::string& master);

// "" when the knot exec'd the container's executable, else what went wrong.
std::string start_and_run(const policy::InstancePlan& plan, const std::string& master) {
  auto run = run_knot(plan, master);
  if (!run.ran) return "the container's executable did not run; the knot said:\n" + run.output;
  return "";
}

KnotRun run_knot(const policy::InstancePlan& plan, const std::string& master) {
  auto failed = [](std::string why) { return KnotRun{false, std::move(why)}; };
  fs::create_directories(plan.mount_root);  // the tree makes it at startup
  for (const auto& dir : {policy::parent_dir(plan.stdio_log), policy::parent_dir(plan.log_file)})
    fs::create_directories(dir);
  std::optional<std::vector<runtime::CgroupPlacement>> placed;
  if (plan.cgroup) {
    if (auto host = runtime::probe_cgroups()) {
      if (auto p = runtime::place_cgroup(*host, *plan.cgroup)) {
        if (!runtime::prepare_cgroup_parent(*p)) return failed("cannot prepare the cgroup parent");
        placed = std::move(*p);
      }
    }
  }
  auto sealed = runtime::seal_plan(policy::encode_plan(plan));
  if (!sealed) return failed("cannot seal the plan: " + sealed.error().what());
  runtime::SpawnOptions options;
  options.path = std::string(LITHOS_BIN_DIR) + "/lithos_knot";
  options.argv = {options.path, "--name",      plan.name,      "--master",    master,
                  "--config",   plan.identity, "--log-stderr", "--log-level", "info"};
  options.namespaces = runtime::kKnotNamespaces;
  options.parent_death_signal = SIGKILL;
  options.blocked_signals = runtime::kKnotSignals;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return failed("pipe");
  runtime::UniqueFd read_end(out[0]), write_end(out[1]);
  runtime::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  options.env = {"TERM=dumb"};
  options.fds = {{null.get(), 0},
                 {write_end.get(), 1},
                 {write_end.get(), 2},
                 {sealed->get(), policy::kPlanFd}};
  // The tree binds host-side sockets and hands them over after the plan;
  // the knot only checks that each is a socket, so a loopback listener on a
  // free port stands in (no test binds the plan's real ports).
  std::vector<runtime::UniqueFd> sockets;
  for (const auto& sp : plan.sockets) {
    if (!sp.host_side) continue;
    runtime::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in loopback{};
    loopback.sin_family = AF_INET;
    loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!listener ||
        ::bind(listener.get(), reinterpret_cast<sockaddr*>(&loopback), sizeof loopback) != 0 ||
        ::listen(listener.get(), 1) != 0)
      return failed("cannot open a loopback listener");
    options.fds.emplace_back(listener.get(),
                             policy::kPlanFd + 1 + static_cast<int>(sockets.size()));
    sockets.push_back(std::move(listener));
  }
  auto spawned = runtime::spawn_process(options);
  write_end.reset();
  if (!spawned) return failed("spawn: " + spawned.error().what());
  std::string buffer;
  bool ran =
      read_until(read_end.get(), buffer, "is running its executable", std::chrono::seconds(20));
  kill_and_reap(*spawned);  // a restart-process-only knot goes on
  if (placed) (void)runtime::remove_cgroup(*placed, true);
  return KnotRun{ran, buffer};
}

class Parity : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { create_corpus_host_state(); }
};

TEST_P(Parity, WhatPassesTheCheckStarts) {
  ASSERT_EQ(::geteuid(), 0u) << "starts real knots: run as root (CI does)";
  const fs::path dir = kCases / GetParam();
  CheckedTree checked;
  {
    InDirectory here(dir);
    auto load = load_options_of(dir);
    // lithos_check refuses --alternate-config without --sandbox (a usage error).
    if (load.alternate_file && !load.alternate_sandbox) return;
    checked = check_like_lithos_check("master.yaml", load);
    for (const auto& plan : checked.plans) {
      if (bridge_missing(checked, plan) || refused_above_entry(checked, plan)) continue;
      SCOPED_TRACE(plan.name);
      EXPECT_EQ(start_and_run(plan, (dir / "master.yaml").string()), "")
          << "lithos_check passes " << plan.name << " in " << GetParam()
          << ", the knot does not start it. Diagnostics:\n"
          << describe(checked.diags);
    }
  }
  // A good case passes (all its instances started above); a bad one may
  // still have instances that pass.
  if (GetParam().rfind("good-", 0) == 0) {
    EXPECT_FALSE(checked.diags.has_errors()) << describe(checked.diags);
  }
}

// The other direction, for every refusal the check reports from the image
// or the host (the corpus cases with a `knot:` line): built as the tree
// builds plans (no image inspection), the instance is started anyway, and
// the knot must refuse it with that message, promptly. This pins each image
// finding to a real refusal, and a knot that hangs on one is a failure.
std::vector<std::string> refusal_cases() {
  std::vector<std::string> out;
  for (const auto& name : corpus_trees()) {
    std::ifstream expect(kCases / name / "expect");
    for (std::string line; std::getline(expect, line);)
      if (line.rfind("knot: ", 0) == 0) out.push_back(name);
  }
  return out;
}

std::string expected_refusal(const std::string& name) {
  std::ifstream expect(kCases / name / "expect");
  for (std::string line; std::getline(expect, line);)
    if (line.rfind("knot: ", 0) == 0) return line.substr(6);
  return {};
}

class KnotRefusal : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { create_corpus_host_state(); }
};

TEST_P(KnotRefusal, TheKnotRefusesWhatTheCheckRefuses) {
  ASSERT_EQ(::geteuid(), 0u) << "starts real knots: run as root (CI does)";
  const fs::path dir = kCases / GetParam();
  const std::string refusal = expected_refusal(GetParam());
  InDirectory here(dir);
  // lithos_check's view: refused.
  auto checked = check_like_lithos_check("master.yaml");
  EXPECT_TRUE(checked.diags.has_errors());
  // The tree's view: a plan, which the knot then refuses.
  policy::Diagnostics diags;
  std::vector<policy::InstancePlan> plans;
  auto tree = policy::load_tree("master.yaml", {}, diags, nullptr);
  policy::CheckOptions options;
  options.check_devfs = false;  // the tree does not stop at the devfs either
  policy::check_tree(tree, options, diags, nullptr, &plans);
  ASSERT_FALSE(plans.empty()) << describe(diags);
  auto run = run_knot(plans.front(), (dir / "master.yaml").string());
  EXPECT_FALSE(run.ran) << run.output;
  EXPECT_NE(run.output.find("Fatal error"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(refusal), std::string::npos)
      << "expected the knot to say \"" << refusal << "\", it said:\n"
      << run.output;
}

INSTANTIATE_TEST_SUITE_P(Corpus, KnotRefusal, ::testing::ValuesIn(refusal_cases()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The bundled example, with its image built as scripts/example.sh builds it.
TEST(ParityExample, WhatPassesTheCheckStarts) {
  ASSERT_EQ(::geteuid(), 0u) << "starts real knots: run as root (CI does)";
  char tmpl[] = "/tmp/lithos-parity-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path dir = fs::path(tmpl) / "basic";
  // The tracked configs only: scripts/example.sh may have built the image
  // and filled dev/ with device nodes in the source tree.
  const fs::path source = fs::path(LITHOS_SOURCE_DIR) / "examples" / "basic";
  for (const char* part : {"master.yaml", "sandboxes", "processes", "images/demo.v1/config"}) {
    fs::create_directories((dir / part).parent_path());
    fs::copy(source / part, dir / part, fs::copy_options::recursive);
  }
  ASSERT_EQ(run_shell(std::string(LITHOS_SOURCE_DIR) + "/scripts/make-example-image.sh " +
                      (dir / "images" / "demo.v1").string() + " >/dev/null"),
            0);
  ASSERT_EQ(run_shell(std::string(LITHOS_BIN_DIR) + "/lithos_mkdev " + (dir / "dev").string() +
                      " 2>/dev/null"),
            0);
  fs::create_directories("/tmp/lithos-example/data");
  {
    InDirectory here(dir);
    auto checked = check_like_lithos_check("master.yaml");
    EXPECT_FALSE(checked.diags.has_errors()) << describe(checked.diags);
    EXPECT_EQ(checked.plans.size(), 4u);  // web.0, worker.0, worker.1, hello
    for (const auto& plan : checked.plans) {
      SCOPED_TRACE(plan.name);
      EXPECT_EQ(start_and_run(plan, (dir / "master.yaml").string()), "");
    }
  }
  fs::remove_all(tmpl);
}

INSTANTIATE_TEST_SUITE_P(Corpus, Parity, ::testing::ValuesIn(corpus_trees()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
