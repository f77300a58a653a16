// Integration tests of lithos_tree: a real tree with real knots and busybox
// containers (root, namespaces and cgroups; nothing is skipped), inspected
// from outside through /proc, its log and its metrics file. Restart and
// kill timeouts are short so that the tests are quick. Tests end only the
// processes they started, by pidfd.
// One file over 600 lines on purpose: one fixture (tree_test_support.hpp);
// the crash-only tests are in test_tree_crash_only.cpp.
#include "tree_test_support.hpp"

namespace knot_test {
namespace {

TEST_F(TreeTest, KilledInstanceIsRestartedWithinRestartTimeout) {
  add_daemon("sleeper", sleeper(), 1);
  start_tree();
  auto first = wait_for_knots({"box/sleeper.0"});
  ASSERT_EQ(first.size(), 1u);
  // Let the first start's throttle pass, then kill: the restart is prompt.
  ASSERT_TRUE(stay_alive({tree_pid, first["box/sleeper.0"]}, 1200ms)) << diagnostics();
  auto killed_at = Clock::now();
  kill_pid(first["box/sleeper.0"], SIGKILL);
  std::map<std::string, pid_t> now;
  ASSERT_TRUE(wait_until(
      [&] {
        now = knot_map();
        return now.count("box/sleeper.0") && now["box/sleeper.0"] != first["box/sleeper.0"];
      },
      5s))
      << diagnostics();
  EXPECT_LT(Clock::now() - killed_at, 1000ms + 1500ms);  // restart-timeout + slack
  // The second kill comes right after the restart: throttled to restart-timeout.
  auto restarted_at = Clock::now();
  kill_pid(now["box/sleeper.0"], SIGKILL);
  std::map<std::string, pid_t> third;
  ASSERT_TRUE(wait_until(
      [&] {
        third = knot_map();
        return third.count("box/sleeper.0") && third["box/sleeper.0"] != now["box/sleeper.0"];
      },
      5s))
      << diagnostics();
  EXPECT_GE(Clock::now() - restarted_at, 700ms);
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  EXPECT_TRUE(knots().empty());
}

// Levels an operator can filter on: a start and an orderly stop are INFO
// (nothing at WARN or above), a crash is ERROR in the tree's log and in the
// knot's.
TEST_F(TreeTest, OnlyACrashIsAnErrorStartsAndStopsAreInfo) {
  // Lines at WARN or above, but for the host's refusal of a negative
  // oom_score_adj (a host without CAP_SYS_RESOURCE for root: a real warning).
  auto warnings = [](const std::string& text) {
    std::size_t n = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
      if ((line.find("][WARN] ") != std::string::npos ||
           line.find("][ERROR] ") != std::string::npos) &&
          line.find("oom_score_adj") == std::string::npos)
        ++n;
    return n;
  };
  add_daemon("sleeper", sleeper(), 2);
  start_tree();
  auto knots_now = wait_for_knots({"box/sleeper.0", "box/sleeper.1"});
  ASSERT_EQ(knots_now.size(), 2u) << diagnostics();
  ASSERT_TRUE(wait_until([&] { return count(knot_log(), "is running its executable") == 2; }, 10s))
      << diagnostics();
  EXPECT_EQ(warnings(tree_log()), 0u) << diagnostics();
  EXPECT_EQ(warnings(knot_log()), 0u) << diagnostics();
  EXPECT_EQ(count(knot_log(), "][INFO] Starting \"box/sleeper."), 2u) << diagnostics();

  // The container dies of SIGKILL: a crash.
  auto containers = children_of(knots_now["box/sleeper.0"]);
  ASSERT_EQ(containers.size(), 1u) << diagnostics();
  kill_pid(containers[0], SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] { return tree_log().find("][ERROR] Container \"box/sleeper.0\"") != std::string::npos; },
      10s))
      << diagnostics();
  EXPECT_NE(knot_log().find("][ERROR] Process \"box/sleeper.0\" killed by signal SIGKILL"),
            std::string::npos)
      << diagnostics();
  ASSERT_TRUE(wait_until([&] { return count(knot_log(), "is running its executable") == 3; }, 10s))
      << diagnostics();

  // An orderly stop: nothing at WARN or above from here on.
  const std::size_t tree_before = tree_log().size(), knot_before = knot_log().size();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  const std::string tree_tail = tree_log().substr(tree_before);
  const std::string knot_tail = knot_log().substr(knot_before);
  EXPECT_NE(tree_tail.find("][INFO] Got SIGTERM"), std::string::npos) << tree_tail;
  EXPECT_EQ(count(tree_tail, "][INFO] Shutdown: box/sleeper."), 2u) << tree_tail;
  EXPECT_EQ(count(knot_tail, "killed by signal SIGTERM"), 2u) << knot_tail;
  EXPECT_EQ(warnings(tree_tail), 0u) << tree_tail;
  EXPECT_EQ(warnings(knot_tail), 0u) << knot_tail;
}

TEST_F(TreeTest, CrashLoopIsThrottledAndHealthyInstancesStay) {
  add_daemon("sleeper", sleeper(), 1);
  add_daemon("crash",
             "kind: Daemon\nexecutable: /bin/busybox\narguments: [sh, -c, \"exit 3\"]\n"
             "restart-timeout: 1\nkill-timeout: 1\n",
             1);
  start_tree();
  auto healthy = wait_for_knots({"box/sleeper.0"}, 15s);
  auto window_start = metric("lithos_process_started_total{sandbox=\"box\",process=\"crash\"}");
  ASSERT_TRUE(stay_alive({tree_pid, healthy["box/sleeper.0"]}, 4s)) << diagnostics();
  auto window_end = metric("lithos_process_started_total{sandbox=\"box\",process=\"crash\"}");
  ASSERT_TRUE(window_start && window_end) << diagnostics();
  std::uint64_t starts = *window_end - *window_start;
  // One start per restart-timeout (1 s): 4 s allow at most 5, and it keeps trying.
  EXPECT_GE(starts, 2u) << diagnostics();
  EXPECT_LE(starts, 5u) << diagnostics();
  auto failures = metric("lithos_process_failures_total{sandbox=\"box\",process=\"crash\"}");
  ASSERT_TRUE(failures);
  EXPECT_GE(*failures, 2u);
  EXPECT_EQ(knot_map()["box/sleeper.0"], healthy["box/sleeper.0"]);
  // Between its crashes the looping instance is the one pending start.
  EXPECT_TRUE(wait_until([&] { return metric("lithos_master_queue") == 1u; }, 5s)) << diagnostics();
  EXPECT_EQ(metric("lithos_containers_unknown"), std::optional<std::uint64_t>(0));
  EXPECT_TRUE(log_shows("Container \"box/crash.0\"")) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, SigquitKeepsChildrenAndStillRestarts) {
  add_daemon("sleeper", sleeper(), 2);
  start_tree();
  auto before = wait_for_knots({"box/sleeper.0", "box/sleeper.1"});
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 1; }, 5s));
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  auto after = wait_for_knots({"box/sleeper.0", "box/sleeper.1"});
  EXPECT_EQ(before, after) << diagnostics();
  wait_until([&] { return count(tree_log(), "Adopted \"box/sleeper.") >= 2; }, 5s);
  EXPECT_EQ(count(tree_log(), "Adopted \"box/sleeper."), 2u) << diagnostics();
  // The new image writes its metrics in its loop, after the "started" line.
  std::optional<std::uint64_t> restarts;
  EXPECT_TRUE(wait_until(
      [&] {
        restarts = metric("lithos_master_restarts_total");
        return restarts && *restarts >= 2u;
      },
      5s))
      << (restarts ? std::to_string(*restarts) : "no metric") << diagnostics();
  // The new image reaps and restarts what it adopted.
  kill_pid(after["box/sleeper.1"], SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] {
        auto m = knot_map();
        return m.count("box/sleeper.1") && m["box/sleeper.1"] != after["box/sleeper.1"];
      },
      5s))
      << diagnostics();
  EXPECT_EQ(knot_map()["box/sleeper.0"], before["box/sleeper.0"]);
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  EXPECT_TRUE(knots().empty());
}

TEST_F(TreeTest, OtherReloadAndCrashSignalsReexecToo) {
  add_daemon("sleeper", sleeper(), 1);
  start_tree();
  auto before = wait_for_knots({"box/sleeper.0"});
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 1; }, 5s));
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGUSR1, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  // A crash re-execs from the signal handler (not within 1 s of a start).
  ASSERT_TRUE(stay_alive({tree_pid}, 1100ms)) << diagnostics();
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGSEGV, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 3; }, 10s))
      << diagnostics();
  EXPECT_EQ(wait_for_knots({"box/sleeper.0"}), before);
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, CommandLine) {
  EXPECT_EQ(run_shell(bin("lithos_tree") + " --bogus 2>/dev/null"), 2);
  EXPECT_EQ(run_shell(bin("lithos_tree") + " --log-level loud 2>/dev/null"), 2);
  EXPECT_EQ(run_shell(bin("lithos_tree") + " --help >/dev/null"), 0);
  EXPECT_EQ(run_shell(bin("lithos_tree") + " -C " + dir + "/nope.yaml 2>/dev/null"), 1);
  // The pre-flight a reload runs on the new binary: no lock, no pid file.
  EXPECT_EQ(run_shell(bin("lithos_tree") + " --preflight -C " + master_path()), 0);
  EXPECT_EQ(run_shell(bin("lithos_tree") + " --preflight -C " + dir + "/nope.yaml 2>/dev/null"), 1);
  struct stat st {};
  EXPECT_NE(::stat((dir + "/run/master.pid").c_str(), &st), 0);
  EXPECT_NE(::stat((dir + "/run/master.lock").c_str(), &st), 0);
  // Sibling binaries are required (exit 127).
  ::mkdir((dir + "/alone").c_str(), 0755);
  ASSERT_EQ(run_shell("cp " + bin("lithos_tree") + " " + dir + "/alone/"), 0);
  EXPECT_EQ(run_shell(dir + "/alone/lithos_tree -C " + master_path() + " 2>/dev/null"), 127);
}

TEST_F(TreeTest, RestartThrottleSurvivesReexec) {
  add_daemon("crash",
             "kind: Daemon\nexecutable: /bin/busybox\narguments: [sh, -c, \"exit 3\"]\n"
             "restart-timeout: 2.5\nkill-timeout: 1\n",
             1);
  start_tree();
  const std::string forked = "Forked \"box/crash.0\"";
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "Container \"box/crash.0\"") == 1; }, 10s))
      << diagnostics();
  auto first_death = Clock::now();
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  // The new image still waits for restart-timeout after the first start.
  ASSERT_TRUE(stay_alive({tree_pid}, std::chrono::duration_cast<std::chrono::milliseconds>(
                                         1200ms - (Clock::now() - first_death))))
      << diagnostics();
  EXPECT_EQ(count(tree_log(), forked), 1u) << diagnostics();
  EXPECT_TRUE(wait_until([&] { return count(tree_log(), forked) == 2; }, 5s)) << diagnostics();
  // The config log got one line per start of the tree (docs/operations.md, "Logs").
  std::string config_log = read_file(dir + "/log/config/box.log");
  EXPECT_EQ(count(config_log, "Z {\"crash\":{\"instances\":1,"), 2u) << config_log;
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, SwitchTwoToOneAndInvalidSwitchChangesNothing) {
  add_daemon("sleeper", sleeper(), 2);
  start_tree();
  auto before = wait_for_knots({"box/sleeper.0", "box/sleeper.1"});
  write_file(dir + "/one.yaml", daemon_entry("sleeper", 1));
  ASSERT_EQ(run_shell(bin("lithos_switch") + " --master " + master_path() + " box " + dir +
                      "/one.yaml 2>>" + dir + "/switch.err"),
            0)
      << read_file(dir + "/switch.err");
  auto after = wait_for_knots({"box/sleeper.0"});
  EXPECT_EQ(after["box/sleeper.0"], before["box/sleeper.0"]) << diagnostics();
  EXPECT_TRUE(log_shows("Retired child: box/sleeper.1")) << diagnostics();

  // Invalid: the image escapes the image dir; the switch refuses, no reload.
  std::string installed = read_file(dir + "/processes/box.yaml");
  write_file(dir + "/bad.yaml",
             "sleeper:\n  kind: Daemon\n  instances: 3\n  image: ../box.v1\n  config: /x.yaml\n");
  EXPECT_EQ(run_shell(bin("lithos_switch") + " --master " + master_path() + " box " + dir +
                      "/bad.yaml 2>>" + dir + "/switch.err"),
            1);
  EXPECT_EQ(read_file(dir + "/processes/box.yaml"), installed);
  EXPECT_TRUE(stay_alive(pids_of(after), 1500ms)) << diagnostics();
  EXPECT_EQ(knot_map(), after);
  EXPECT_EQ(count(tree_log(), "lithos_tree started"), 2u) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, LookalikeKnotsAreLoggedAndLeftAlone) {
  // Processes that call themselves lithos_knot with our master but do not run
  // our knot binary were not started by a tree of this master: one log line
  // each, nothing sent to them, and the configured instance starts anyway.
  add_daemon("sleeper", sleeper(), 1);
  make_fake_knot_binary();
  auto fake = [&](const std::string& name) {
    runtime::SpawnOptions options;
    options.path = dir + "/fake/lithos_knot";
    options.argv = {
        dir + "/fake/lithos_knot", "--name", name, "--master", master_path(), "--config", "{}"};
    options.env = {"TERM=dumb"};
    options.parent_death_signal = SIGKILL;
    auto spawned = runtime::spawn_process(options);
    EXPECT_TRUE(spawned);
    return std::move(*spawned);
  };
  // One with a name nobody configured, one posing as the configured instance.
  auto ghost = fake("box/ghost.0");
  auto impostor = fake("box/sleeper.0");
  ASSERT_TRUE(wait_until([&] { return knots().size() == 2; }, 5s));
  start_tree();
  // Adoption is decided (and logged) before the "started" line.
  ASSERT_TRUE(log_shows("lithos_tree started")) << diagnostics();
  std::string log = tree_log();
  for (const auto& [name, pid] :
       {std::pair{"box/ghost.0", ghost.pid}, {"box/sleeper.0", impostor.pid}})
    EXPECT_NE(log.find("Not adopting \"" + std::string(name) + "\" (pid: " + std::to_string(pid) +
                       "): it is not " + bin("lithos_knot") + "; left alone"),
              std::string::npos)
        << diagnostics();
  EXPECT_EQ(log.find("Sending SIGTERM"), std::string::npos) << diagnostics();
  // The real instance runs beside the impostor, as the tree's child.
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& k : knots())
          if (k.name == "box/sleeper.0" && k.ppid == tree_pid) return true;
        return false;
      },
      15s))
      << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  // The shutdown stopped only what the tree started.
  EXPECT_TRUE(stay_alive({ghost.pid, impostor.pid}, 10ms));
  kill_and_reap(ghost);
  kill_and_reap(impostor);
}

TEST_F(TreeTest, CommandKnotsAreNeverTouched) {
  // A lithos_cmd knot (`S/cmd.NAME.PID`) with our master belongs to its
  // lithos_cmd: neither a start nor a reload of the tree may stop it.
  add_daemon("sleeper", sleeper(), 1);
  make_fake_knot_binary();
  runtime::SpawnOptions options;
  options.path = dir + "/fake/lithos_knot";
  options.argv = {dir + "/fake/lithos_knot",
                  "--name",
                  "box/cmd.job.4242",
                  "--master",
                  master_path(),
                  "--config",
                  "{}"};
  options.env = {"TERM=dumb"};
  options.parent_death_signal = SIGKILL;
  auto spawned = runtime::spawn_process(options);
  ASSERT_TRUE(spawned) << spawned.error().what();
  auto command = std::move(*spawned);
  start_tree();
  ASSERT_TRUE(wait_until([&] { return knot_map().count("box/sleeper.0") > 0; }, 15s))
      << diagnostics();
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 1; }, 5s));
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  // Longer than --kill-timeout (1 s) plus the tree's margin (2 s).
  EXPECT_TRUE(stay_alive({command.pid}, 3500ms)) << "the command's knot was stopped\n"
                                                 << diagnostics();
  EXPECT_EQ(tree_log().find("cmd.job"), std::string::npos) << diagnostics();
  ::syscall(SYS_pidfd_send_signal, command.pidfd.get(), SIGKILL, nullptr, 0);
  wait_for(command, 5s);
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, UnreadableSandboxesDirKeepsEveryInstance) {
  // A mistyped sandboxes-dir followed by a reload must not retire anything.
  add_daemon("sleeper", sleeper(), 2);
  start_tree();
  auto before = wait_for_knots({"box/sleeper.0", "box/sleeper.1"});
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 1; }, 5s));
  ASSERT_TRUE(wait_until([&] { return containers_running(before); }, 15s)) << diagnostics();
  write_master("metrics-dir: " + dir + "/metrics\nsandboxes-dir: ./no-such-dir\n");
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  EXPECT_TRUE(stay_alive(pids_of(before), 3500ms)) << diagnostics();
  EXPECT_EQ(knot_map(), before) << diagnostics();
  EXPECT_TRUE(log_shows("every running instance is kept")) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  EXPECT_TRUE(knots().empty());
}

TEST_F(TreeTest, ReloadWithAnUnreadableMasterIsRefused) {
  add_daemon("sleeper", sleeper(), 1);
  start_tree();
  auto before = wait_for_knots({"box/sleeper.0"});
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 1; }, 5s));
  ASSERT_TRUE(wait_until([&] { return containers_running(before); }, 15s)) << diagnostics();
  std::string master = read_file(master_path());
  write_file(master_path(), "runtime-dir: [not, a, path]\n");
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  ASSERT_TRUE(
      wait_until([&] { return tree_log().find("Reload refused") != std::string::npos; }, 5s))
      << diagnostics();
  EXPECT_EQ(knot_map(), before);
  write_file(master_path(), master);
  // Still supervising: a killed instance comes back.
  kill_pid(before["box/sleeper.0"], SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] {
        auto m = knot_map();
        return m.count("box/sleeper.0") && m["box/sleeper.0"] != before["box/sleeper.0"];
      },
      5s))
      << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, DescriptorsTheTreeInheritedDoNotReachKnots) {
  add_daemon("sleeper", sleeper(), 1);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  start_tree({{pipe_fds[1], 9}});  // fd 9 of the tree, without close-on-exec
  ::close(pipe_fds[1]);
  auto knots_now = wait_for_knots({"box/sleeper.0"});
  struct stat st {};
  EXPECT_EQ(::stat(("/proc/" + std::to_string(tree_pid) + "/fd/9").c_str(), &st), 0);
  // The knot has descriptors of its own; none of them is the tree's pipe.
  ASSERT_EQ(::fstat(pipe_fds[0], &st), 0);
  const std::string pipe_name = "pipe:[" + std::to_string(st.st_ino) + "]";
  const std::string knot_fds = "/proc/" + std::to_string(knots_now["box/sleeper.0"]) + "/fd";
  if (DIR* fds = ::opendir(knot_fds.c_str())) {
    while (dirent* e = ::readdir(fds)) {
      char target[256] = {};
      if (::readlink((knot_fds + "/" + e->d_name).c_str(), target, sizeof target - 1) > 0) {
        EXPECT_NE(std::string(target), pipe_name)
            << "the knot inherited the tree's fd 9 as " << e->d_name;
      }
    }
    ::closedir(fds);
  } else {
    ADD_FAILURE() << "cannot list " << knot_fds;
  }
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  ::close(pipe_fds[0]);
}

TEST_F(TreeTest, SigtermStopsEveryKnotEvenStubbornOnes) {
  add_daemon("sleeper", sleeper(), 2);
  add_daemon("stubborn",
             "kind: Daemon\nexecutable: /bin/busybox\n"
             "arguments: [sh, -c, \"trap '' TERM; while true; do sleep 1; done\"]\n"
             "restart-timeout: 1\nkill-timeout: 1\n",
             1);
  start_tree();
  wait_for_knots({"box/sleeper.0", "box/sleeper.1", "box/stubborn.0"});
  // Until the container has set its trap (its shell has started the loop).
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& p : runtime::scan_processes())
          if (p.argv.size() == 2 && p.argv[0] == "sleep" && p.argv[1] == "1") return true;
        return false;
      },
      10s));
  auto t0 = Clock::now();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  EXPECT_GE(Clock::now() - t0, 900ms);  // the stubborn one needs its kill-timeout
  EXPECT_LT(Clock::now() - t0, 6s);
  EXPECT_TRUE(knots().empty());
  // The state dir is emptied; the metrics file says nothing runs.
  EXPECT_TRUE(
      wait_until([&] { return !::rmdir((dir + "/run/state").c_str()) || errno == ENOENT; }, 1s));
  EXPECT_EQ(metric("lithos_containers_running"), std::optional<std::uint64_t>(0));
}

// A first start of many instances is a burst of starts; a SIGTERM sent
// during it is handled before the burst ends, not after every instance has
// been started (the loop starts for a bounded time per turn).
TEST_F(TreeTest, SigtermDuringAStartBurstStopsTheBurst) {
  constexpr int kInstances = 300;
  add_daemon("sleeper", sleeper(), kInstances);
  start_tree();
  ASSERT_TRUE(log_shows("Forked \"box/sleeper.")) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  const std::string log = tree_log();
  const auto term_at = log.find("Got SIGTERM");
  ASSERT_NE(term_at, std::string::npos) << diagnostics();
  const std::size_t before = count(log.substr(0, term_at), "Forked \"box/sleeper.");
  EXPECT_GE(before, 1u);
  EXPECT_LT(before, static_cast<std::size_t>(kInstances) / 2) << diagnostics();
  EXPECT_EQ(count(log.substr(term_at), "Forked \""), 0u) << diagnostics();
  EXPECT_TRUE(knots().empty());
}

TEST_F(TreeTest, InvalidConfigKeepsTheTreeRunning) {
  add_daemon("sleeper", sleeper(), 1);
  // A second entry whose container config does not exist: logged, skipped.
  std::string processes = read_file(dir + "/processes/box.yaml");
  processes += "missing:\n  kind: Daemon\n  image: box.v1\n  config: /config/nope.yaml\n";
  write_file(dir + "/processes/box.yaml", processes);
  start_tree();
  auto running = wait_for_knots({"box/sleeper.0"});
  // Now the process config becomes unreadable: the running instance is kept.
  write_file(dir + "/processes/box.yaml", "sleeper: [not, a, mapping\n");
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGHUP, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  EXPECT_TRUE(stay_alive(pids_of(running), 500ms)) << diagnostics();
  EXPECT_EQ(knot_map(), running) << diagnostics();
  EXPECT_TRUE(log_shows("Keeping \"box/sleeper.0\"")) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

// The config reader stores each plan as soon as it is built; the plans of
// an entry the check then refuses (a uid outside allow-users is an entry
// error, its instances' plans are built all the same) are cut off the store
// again, so the next entry's plans are read at the right place: its knots
// run, and a knot refuses a plan with any name but its own.
TEST_F(TreeTest, AnEntryRefusedAfterItsPlansLeavesTheOthersIntact) {
  add_daemon("a-refused", sleeper("user-id: 100000\n"), 2);
  add_daemon("b-sleeper", sleeper(), 2);
  start_tree();
  auto running = wait_for_knots({"box/b-sleeper.0", "box/b-sleeper.1"});
  ASSERT_EQ(running.size(), 2u) << diagnostics();
  EXPECT_TRUE(log_shows("User is not in allowed range")) << diagnostics();
  EXPECT_TRUE(stay_alive(pids_of(running), 1500ms)) << diagnostics();
  EXPECT_EQ(knot_map(), running) << diagnostics();
  EXPECT_EQ(count(tree_log(), "Forked"), 2) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

// Names planted in a metrics dir others can write (a node-exporter
// textfile dir) and in the runtime dir are never written through; logs are
// created 0640 (docs/operations.md).
TEST_F(TreeTest, PlantedSymlinksAreNotFollowedAndLogsAre0640) {
  const std::string victim = dir + "/victim";
  write_file(victim, "precious\n");
  ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);
  // SetUp made the metrics dir; open it to everyone, as a textfile dir is.
  ASSERT_EQ(::chmod((dir + "/metrics").c_str(), 0777), 0);
  const std::string metrics_tmp = dir + "/metrics/lithos_tree.prom.tmp";
  const std::string pid_tmp = dir + "/run/master.pid.tmp";
  ASSERT_EQ(::symlink(victim.c_str(), metrics_tmp.c_str()), 0);
  ASSERT_EQ(::symlink(victim.c_str(), pid_tmp.c_str()), 0);
  add_daemon("sleeper", sleeper(), 1);
  start_tree();
  wait_for_knots({"box/sleeper.0"});
  ASSERT_TRUE(log_shows("lithos_tree started")) << diagnostics();
  // The confined reader read the image's config and sent the config-log line.
  EXPECT_TRUE(log_shows("1 instances configured")) << diagnostics();
  EXPECT_EQ(tree_log().find("Configuration error"), std::string::npos) << diagnostics();
  EXPECT_NE(read_file(dir + "/log/config/box.log").find("Z {\"sleeper\":{"), std::string::npos)
      << diagnostics();
  EXPECT_TRUE(wait_until([&] { return metric("lithos_containers_running") == 1u; }, 5s))
      << diagnostics();
  EXPECT_EQ(read_file(dir + "/run/master.pid"), std::to_string(tree_pid) + "\n");
  EXPECT_EQ(read_file(victim), "precious\n");
  struct stat st {};
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  for (const auto& planted : {metrics_tmp, pid_tmp}) {
    ASSERT_EQ(::lstat(planted.c_str(), &st), 0) << planted;
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << planted;
  }
  for (const auto& written : {dir + "/metrics/lithos_tree.prom", dir + "/run/master.pid"}) {
    ASSERT_EQ(::lstat(written.c_str(), &st), 0) << written;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << written;
    EXPECT_EQ(st.st_mode & 07777, 0644u) << written;
  }
  EXPECT_TRUE(log_shows("is writable by group or others and not sticky")) << diagnostics();
  EXPECT_EQ(count(tree_log(), "is writable by group or others"), 1u) << diagnostics();
  for (const auto& log : {dir + "/log/master.log", dir + "/log/config/box.log"}) {
    ASSERT_EQ(::stat(log.c_str(), &st), 0) << log;
    EXPECT_EQ(st.st_mode & 07777, 0640u) << log;
  }
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  EXPECT_EQ(read_file(victim), "precious\n");
}

// The socket inode behind descriptor `fd` of `pid` ("socket:[N]" -> N).
std::string socket_inode(pid_t pid, int fd) {
  char buf[128];
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string target(buf, static_cast<std::size_t>(n));
  return target.rfind("socket:[", 0) == 0 ? target : std::string();
}

bool has_socket(pid_t pid, const std::string& inode) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return false;
  bool found = false;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.' && socket_inode(pid, std::atoi(e->d_name)) == inode) found = true;
  ::closedir(d);
  return found;
}

// The owner uid of the socket with `inode` ("socket:[N]"), from
// /proc/net/tcp or tcp6 (the filesystem uid at socket() time).
std::optional<unsigned> socket_owner(const std::string& inode, bool v6) {
  std::string number = inode.substr(8, inode.size() - 9);
  std::istringstream table(read_file(v6 ? "/proc/net/tcp6" : "/proc/net/tcp"));
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    if (f.size() > 9 && f[9] == number) return static_cast<unsigned>(std::stoul(f[7]));
  }
  return std::nullopt;
}

bool can_connect(int port, bool v6 = false) {
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok;
  if (v6) {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(static_cast<std::uint16_t>(port));
    addr.sin6_addr = in6addr_loopback;
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ::close(fd);
  return ok;
}

TEST_F(TreeTest, TreeLivesInItsCgroup) {
  add_daemon("one", sleeper(), 1);
  start_tree();
  wait_for_knots({"box/one.0"});
  // The tree joins <cgroup-name> in every v1 hierarchy used, a leaf below it on
  // v2 (a v2 cgroup that enables controllers for children holds no process).
  auto host = runtime::probe_cgroups();
  ASSERT_TRUE(host) << host.error().what();
  policy::CgroupPlan plan;
  plan.parent = cgroup_name;
  plan.scope = "x.scope";
  plan.controllers = {"name", "cpu", "cpuacct", "memory", "blkio"};
  auto placed = runtime::place_cgroup(*host, plan);
  ASSERT_TRUE(placed) << placed.error().what();
  ASSERT_FALSE(placed->empty());
  for (const auto& p : *placed) {
    std::string joined =
        p.unified ? p.parent + "/" + std::string(runtime::kTreeCgroupLeaf) : p.parent;
    std::istringstream procs(read_file(joined + "/cgroup.procs"));
    std::set<pid_t> members;
    for (pid_t pid; procs >> pid;) members.insert(pid);
    EXPECT_TRUE(members.count(tree_pid)) << joined << "\n" << diagnostics();
  }
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

// The tree, and the knots it starts, in a network namespace of the test's
// own where UDP 127.0.0.1:514 is the test's socket: with no /dev/log there
// (this host has none; a namespace cannot add one without hiding /dev), and
// TCP 601 refused, the last fallback (docs/tree.md, "Logging") carries every message.
TEST_F(TreeTest, SyslogCarriesTreeAndKnotMessages) {
  write_master("syslog-facility: local2\nsyslog-app-name: lithos-t\n");
  add_daemon("one", sleeper(), 1);
  int host_net = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(host_net, 0);
  ASSERT_EQ(::unshare(CLONE_NEWNET), 0);
  runtime::UniqueFd peer;
  {
    runtime::UniqueFd ctl(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq lo{};
    std::strcpy(lo.ifr_name, "lo");
    bool up = ::ioctl(ctl.get(), SIOCGIFFLAGS, &lo) == 0;
    lo.ifr_flags = static_cast<short>(lo.ifr_flags | IFF_UP);
    up = up && ::ioctl(ctl.get(), SIOCSIFFLAGS, &lo) == 0;
    peer.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(514);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool bound = ::bind(peer.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (up && bound) start_tree();
    EXPECT_EQ(::setns(host_net, CLONE_NEWNET), 0);  // back, whatever happened
    ::close(host_net);
    ASSERT_TRUE(up && bound);
  }
  std::string tree_tag = "lithos-t[" + std::to_string(tree_pid) + "]: ";
  bool tree_started = false, knot_said = false;
  std::string seen;
  auto deadline = Clock::now() + 15s;
  while (!(tree_started && knot_said) && Clock::now() < deadline) {
    pollfd p{peer.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) continue;
    char buf[2048];
    ssize_t n = ::recv(peer.get(), buf, sizeof buf, 0);
    if (n <= 0) continue;
    std::string message(buf, static_cast<std::size_t>(n));
    seen += message + "\n";
    // local2 = 18: PRI 18 * 8 + severity (info 6).
    if (message.rfind("<150>", 0) == 0 &&
        message.find(tree_tag + "lithos_tree started") != std::string::npos)
      tree_started = true;
    if (message.find(" lithos-t-box[") != std::string::npos) knot_said = true;
  }
  EXPECT_TRUE(tree_started) << seen << diagnostics();
  EXPECT_TRUE(knot_said) << seen << diagnostics();
  // Syslog instead of the file, not beside it.
  EXPECT_TRUE(tree_log().empty()) << tree_log();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
}

TEST_F(TreeTest, HostSocketIsSharedAndSurvivesReexec) {
  int port = 18000 + ::getpid() % 900;
  write_sandbox("allow-tcp-ports: [18000-18999]\n");
  add_daemon(
      "listener",
      sleeper("tcp-ports:\n  \"" + std::to_string(port) + "\": {fd: 3, listen-backlog: 16}\n  \"" +
              std::to_string(port + 1) + "\": {fd: 4, host: \"::1\"}\n"),
      2);
  start_tree();
  auto knots_before = wait_for_knots({"box/listener.0", "box/listener.1"});
  // The knots get the sockets after their plan (fds 4, 5) and move them to
  // the configured fds (3, 4) while they set up: wait for both to be there.
  auto placed = [&](const std::string& name) {
    return !socket_inode(knots_before[name], 3).empty() &&
           !socket_inode(knots_before[name], 4).empty();
  };
  ASSERT_TRUE(wait_until([&] { return placed("box/listener.0") && placed("box/listener.1"); }, 10s))
      << diagnostics();
  std::string inode = socket_inode(knots_before["box/listener.0"], 3);
  ASSERT_FALSE(inode.empty()) << diagnostics();
  EXPECT_EQ(socket_inode(knots_before["box/listener.1"], 3), inode);  // one shared socket
  EXPECT_TRUE(has_socket(tree_pid, inode));
  EXPECT_TRUE(can_connect(port));
  std::string inode6 = socket_inode(knots_before["box/listener.0"], 4);
  EXPECT_FALSE(inode6.empty());  // IPv6 host: an AF_INET6 socket
  EXPECT_TRUE(can_connect(port + 1, true));
  // Created as the service's user (the sandbox's default-user 1000),
  // while the tree itself stays root.
  EXPECT_EQ(socket_owner(inode, false), 1000u);
  EXPECT_EQ(socket_owner(inode6, true), 1000u);
  EXPECT_NE(read_file("/proc/" + std::to_string(tree_pid) + "/status").find("Uid:\t0\t0\t0\t0"),
            std::string::npos);
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGQUIT, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 2; }, 10s))
      << diagnostics();
  EXPECT_EQ(wait_for_knots({"box/listener.0", "box/listener.1"}), knots_before);
  EXPECT_TRUE(has_socket(tree_pid, inode)) << diagnostics();
  // A restarted instance gets the same socket.
  kill_pid(knots_before["box/listener.0"], SIGKILL);
  std::map<std::string, pid_t> after;
  ASSERT_TRUE(wait_until(
      [&] {
        after = knot_map();
        return after.count("box/listener.0") &&
               after["box/listener.0"] != knots_before["box/listener.0"];
      },
      5s));
  EXPECT_TRUE(wait_until([&] { return socket_inode(after["box/listener.0"], 3) == inode; }, 5s));
  EXPECT_TRUE(can_connect(port));
  // A crash re-exec (after its 1 s guard) keeps the socket too.
  ASSERT_TRUE(stay_alive({tree_pid}, 1100ms)) << diagnostics();
  ::syscall(SYS_pidfd_send_signal, tree->process.pidfd.get(), SIGSEGV, nullptr, 0);
  ASSERT_TRUE(wait_until([&] { return count(tree_log(), "lithos_tree started") == 3; }, 10s))
      << diagnostics();
  EXPECT_TRUE(has_socket(tree_pid, inode)) << diagnostics();
  EXPECT_EQ(stop_tree(), 0) << diagnostics();
  EXPECT_FALSE(can_connect(port));
}

}  // namespace
}  // namespace knot_test
