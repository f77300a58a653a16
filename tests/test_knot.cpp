// Integration tests of lithos_knot / lithos_cmd: real containers from a
// busybox image, checked from outside through /proc (runs as root; CI has
// namespaces and cgroups).
// One file over 600 lines on purpose: every test shares one image and one
// knot fixture (test_knot_support.hpp), and a split would only add builds.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <algorithm>
#include <sstream>

#include "crypt_test_support.hpp"
#include "lithos/crypt/crypt.hpp"
#include "lithos/crypt/keys.hpp"
#include "lithos/policy/check.hpp"
#include "test_knot_support.hpp"

namespace knot_test {
namespace {

const char* kZeroCaps = "0000000000000000";

std::string mountinfo_of(const std::string& who) {
  return read_file("/proc/" + who + "/mountinfo");
}

// The host's mount points (sorted), leaving out those below other tests'
// directories in /tmp: tests that run at the same time (ctest -j) mount and
// unmount there. `own_dir` is this test process's directory (image, devfs,
// the test's tree); a knot must add no mount point in it or outside /tmp.
std::vector<std::string> host_mount_points(const std::string& own_dir) {
  std::vector<std::string> out;
  std::istringstream lines(mountinfo_of("self"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (point.starts_with("/tmp/") && !point.starts_with(own_dir + "/") && point != own_dir)
      continue;
    out.push_back(point);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The mount options (per-mount part) of the mount at `point` in a mountinfo text.
std::optional<std::string> mount_options(const std::string& mountinfo, const std::string& point) {
  std::istringstream in(mountinfo);
  std::string line;
  std::optional<std::string> found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mp, opts;
    fields >> id >> parent >> dev >> root >> mp >> opts;
    auto dash = line.find(" - ");
    if (mp == point) found = opts + " |" + (dash == std::string::npos ? "" : line.substr(dash));
  }
  return found;  // the last one is the visible one
}

bool has_option(const std::string& opts, const std::string& option) {
  auto bar = opts.find(' ');
  std::string own = "," + opts.substr(0, bar) + ",";
  return own.find("," + option + ",") != std::string::npos;
}

TEST_F(KnotTest, CommandRunsHardenedAndIsolated) {
  add_command("probe", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "echo ready; read x; exec sleep 1000"]
interactive: true
user-id: 1000
group-id: 1001
fileno-limit: 777
memory-limit: 64Mi
cpu-shares: 512
pids-limit: 50
environ:
  FOO: bar
  MY_PID: "@{lithos:pid}"
volumes:
  /data: !Persistent {path: /data/probe, mkdir: true, user: 1000, group: 1001, mode: 0o750}
  /ro: !Readonly /ro
  /tmp: !Tmpfs {size: 1Mi, mode: 0o1777}
  /state: !Statedir {path: /sub}
)");
  auto host_mounts_before = host_mount_points(base);
  auto cmd = start_cmd("probe");
  ASSERT_TRUE(read_until(cmd->output.get(), cmd->buffer, "ready\n")) << cmd->buffer << knot_log();

  auto knots = children_of(cmd->process.pid);
  ASSERT_EQ(knots.size(), 1u);
  pid_t knot = knots[0];
  auto inside = children_of(knot);
  ASSERT_EQ(inside.size(), 1u);
  pid_t pid = inside[0];

  auto st = proc_status(pid);
  EXPECT_EQ(st["Uid"], "1000 1000 1000 1000");
  EXPECT_EQ(st["Gid"], "1001 1001 1001 1001");
  EXPECT_EQ(st["Groups"], "");
  for (auto set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_EQ(st[set], kZeroCaps) << set;
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  EXPECT_EQ(st["NSpid"], std::to_string(pid) + " 2");
  EXPECT_EQ(proc_status(knot)["NSpid"], std::to_string(knot) + " 1");

  // Exactly the planned environment: TERM, environ, LITHOS_*, pid variables.
  std::string name = "box/cmd.probe." + std::to_string(cmd->process.pid);
  std::vector<std::string> expected = {"FOO=bar", "LITHOS_CONFIG=/config/probe.yaml",
                                       "LITHOS_NAME=" + name, "MY_PID=2", "TERM=lithos-test-term"};
  EXPECT_EQ(proc_environ(pid), expected);

  std::string limits = read_file("/proc/" + std::to_string(pid) + "/limits");
  EXPECT_NE(limits.find("Max open files            777                  777"), std::string::npos)
      << limits;

  // cgroup: joined (v1 memory hierarchy on this host layout or v2) with the limit written.
  std::string scope =
      "/" + cgroup_name + "/box:cmd.probe." + std::to_string(cmd->process.pid) + ".scope";
  std::string cgroups = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_NE(cgroups.find(scope), std::string::npos) << cgroups;
  auto host = runtime::probe_cgroups();
  ASSERT_TRUE(host);
  if (const auto* memory = host->find_v1("memory")) {
    EXPECT_EQ(read_file(memory->mount + scope + "/memory.limit_in_bytes"), "67108864\n");
    if (const auto* cpu = host->find_v1("cpu")) {
      EXPECT_EQ(read_file(cpu->mount + scope + "/cpu.shares"), "512\n");
    }
    if (const auto* pids = host->find_v1("pids")) {
      EXPECT_EQ(read_file(pids->mount + scope + "/pids.max"), "50\n");
    }
  } else {
    ASSERT_TRUE(host->v2);
    std::string v2 = host->v2->mount + host->v2->base + scope;
    EXPECT_EQ(read_file(v2 + "/memory.max"), "67108864\n");
    EXPECT_EQ(read_file(v2 + "/pids.max"), "50\n");
    EXPECT_EQ(read_file(v2 + "/cpu.weight"), std::to_string(runtime::shares_to_weight(512)) + "\n");
  }

  // Filesystem, as the container sees it.
  std::string mi = mountinfo_of(std::to_string(pid));
  auto root = mount_options(mi, "/");
  ASSERT_TRUE(root) << mi;
  EXPECT_TRUE(has_option(*root, "ro")) << *root;
  EXPECT_TRUE(has_option(*root, "nosuid")) << *root;
  auto data = mount_options(mi, "/data");
  ASSERT_TRUE(data) << mi;
  EXPECT_TRUE(has_option(*data, "rw")) << *data;
  EXPECT_TRUE(has_option(*data, "nosuid") && has_option(*data, "nodev")) << *data;
  auto ro = mount_options(mi, "/ro");
  ASSERT_TRUE(ro) << mi;
  EXPECT_TRUE(has_option(*ro, "ro")) << *ro;
  auto tmp = mount_options(mi, "/tmp");
  ASSERT_TRUE(tmp);
  EXPECT_NE(tmp->find("tmpfs"), std::string::npos) << *tmp;
  auto procsys = mount_options(mi, "/proc/sys");
  ASSERT_TRUE(procsys) << mi;
  EXPECT_TRUE(has_option(*procsys, "ro"));
  EXPECT_TRUE(mount_options(mi, "/state"));

  // The Persistent dir was created with the planned owner and mode.
  struct stat sb {};
  ASSERT_EQ(::stat((dir + "/data-host/probe").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_uid, 1000u);
  EXPECT_EQ(sb.st_gid, 1001u);
  EXPECT_EQ(sb.st_mode & 07777, 0750u);

  // Nothing of the container's mounts is visible on the host.
  EXPECT_EQ(host_mount_points(base), host_mounts_before);

  // SIGTERM to the knot is forwarded; sleep dies by it; lithos_cmd returns
  // the command's own status (128 + 15) and cleans up.
  ASSERT_EQ(::kill(knot, SIGTERM), 0);
  EXPECT_EQ(finish(*cmd), 143) << cmd->buffer << knot_log();
  std::string markers = stdio_log();
  EXPECT_NE(markers.find("----- Starting \"" + name + "\": \"/bin/busybox\" \"sh\" \"-c\""),
            std::string::npos)
      << markers;
  EXPECT_NE(markers.find("----- Process \"" + name + "\" killed by signal SIGTERM[15], uptime "),
            std::string::npos)
      << markers;
  struct stat gone {};
  EXPECT_NE(::stat((dir + "/run/state/" + name).c_str(), &gone), 0);
  if (const auto* memory = host->find_v1("memory")) {
    EXPECT_NE(::stat((memory->mount + scope).c_str(), &gone), 0);
  }
}

TEST_F(KnotTest, EscapeAttemptsFromInsideFail) {
  // A host process the container will try to kill (its pid is passed in).
  runtime::SpawnOptions sleeper;
  sleeper.path = "/bin/busybox";
  sleeper.argv = {"/bin/busybox", "sleep", "1000"};
  auto victim = runtime::spawn_process(sleeper);
  ASSERT_TRUE(victim);

  add_command("escape", R"(kind: Command
executable: /bin/busybox
arguments:
- sh
- -c
- |
  t() { if "$@" >/dev/null 2>&1; then echo "ESCAPED: $*"; else echo "blocked: $*"; fi; }
  t touch /rootfile
  t touch /ro/x
  t mount -t tmpfs none /tmp
  t umount -l /ro
  t unshare -m true
  t unshare -U true
  t nsenter -t 1 -m true
  t chroot /tmp /bin/busybox true
  t mknod /tmp/mem c 1 1
  t sh -c "echo 10 > /proc/sys/vm/swappiness"
  t sh -c "echo 1 > /proc/sys/kernel/ns_last_pid"
  t sh -c "echo x > /sys/kernel/uevent_helper"
  t ls /proc/1/root/
  t ls /proc/1/fd/
  t kill -9 "$0"
  touch /data/ok-writable && echo "volume writable"
  echo done
- "@{victim}"
interactive: true
user-id: 0
group-id: 0
variables:
  victim: !Name
volumes:
  /data: !Persistent {path: /data, mkdir: true}
  /ro: !Readonly /ro
  /tmp: !Tmpfs {size: 1Mi}
)",
              "  variables: {victim: \"" + std::to_string(victim->pid) + "\"}\n");
  auto host_mounts_before = host_mount_points(base);
  auto cmd = start_cmd("escape");
  int code = finish(*cmd);
  EXPECT_EQ(code, 0) << cmd->buffer << knot_log();
  EXPECT_NE(cmd->buffer.find("done"), std::string::npos) << cmd->buffer;
  EXPECT_EQ(cmd->buffer.find("ESCAPED"), std::string::npos) << cmd->buffer;
  for (auto what :
       {"touch /rootfile", "touch /ro/x", "mount -t tmpfs", "umount -l /ro", "unshare -m",
        "unshare -U", "nsenter -t 1", "chroot /tmp", "mknod", "swappiness", "ns_last_pid",
        "uevent_helper", "/proc/1/root", "/proc/1/fd", "kill -9"}) {
    bool found = false;
    std::istringstream lines(cmd->buffer);
    for (std::string line; std::getline(lines, line);)
      found = found || (line.rfind("blocked: ", 0) == 0 && line.find(what) != std::string::npos);
    EXPECT_TRUE(found) << what;
  }
  // The container's own writable volume works, on the host side too.
  struct stat sb {};
  EXPECT_EQ(::stat((dir + "/data-host/ok-writable").c_str(), &sb), 0);
  // The host process is alive (its pidfd is not readable).
  pollfd pfd{victim->pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);
  kill_and_reap(*victim);
  EXPECT_EQ(host_mount_points(base), host_mounts_before);
}

TEST_F(KnotTest, SymlinkPlantedInPersistentVolumeDoesNotRedirectALaterMount) {
  add_command("plant", R"(kind: Command
executable: /bin/busybox
arguments: [ln, -s, /etc, /data/evil]
user-id: 0
group-id: 0
volumes:
  /data: !Persistent {path: /data, mkdir: true}
)");
  add_command("victim", R"(kind: Command
executable: /bin/busybox
arguments: [true]
volumes:
  /data2: !Persistent {path: /data/evil/lithos-escape, mkdir: true}
)");
  auto plant = start_cmd("plant");
  ASSERT_EQ(finish(*plant), 0) << plant->buffer << knot_log();
  struct stat sb {};
  ASSERT_EQ(::lstat((dir + "/data-host/evil").c_str(), &sb), 0);
  ASSERT_TRUE(S_ISLNK(sb.st_mode));

  auto host_mounts_before = host_mount_points(base);
  auto victim = start_cmd("victim");
  EXPECT_EQ(finish(*victim), 1) << victim->buffer;
  // Nothing was created through the link on the host.
  EXPECT_NE(::stat("/etc/lithos-escape", &sb), 0);
  std::string log = knot_log();
  EXPECT_NE(log.find("mount_volumes"), std::string::npos) << log;
  EXPECT_NE(log.find("symlink"), std::string::npos) << log;
  EXPECT_NE(victim->buffer.find("Fatal error"), std::string::npos) << victim->buffer;
  EXPECT_EQ(host_mount_points(base), host_mounts_before);
}

TEST_F(KnotTest, ExitCodeOfTheCommandIsReturned) {
  add_command("seven", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "exit 7"]
)");
  add_command("big", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "exit 200"]
normal-exit-codes: [200]
)");
  auto seven = start_cmd("seven");
  EXPECT_EQ(finish(*seven), 7) << seven->buffer << knot_log();
  auto big = start_cmd("big");
  EXPECT_EQ(finish(*big), 200) << big->buffer << knot_log();
  // Unsigned exit status in the log (the original printed it negative).
  EXPECT_NE(stdio_log().find("exited with code 200"), std::string::npos) << stdio_log();
  // Extra arguments reach the command.
  add_command("echo", R"(kind: Command
executable: /bin/busybox
arguments: [echo, first]
interactive: true
)");
  auto echo = start_cmd("echo", {"second", "--third"});
  EXPECT_EQ(finish(*echo), 0);
  EXPECT_EQ(echo->buffer, "first second --third\n");
}

TEST_F(KnotTest, KillTimeoutEndsTheKnotWithCode3) {
  add_command("stubborn", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "trap '' TERM; echo ready; while true; do sleep 1; done"]
interactive: true
kill-timeout: 0.3
)");
  auto cmd = start_cmd("stubborn");
  ASSERT_TRUE(read_until(cmd->output.get(), cmd->buffer, "ready\n")) << cmd->buffer << knot_log();
  auto knots = children_of(cmd->process.pid);
  ASSERT_EQ(knots.size(), 1u);
  ASSERT_EQ(::kill(knots[0], SIGTERM), 0);
  // The knot exits 3; lithos_cmd reports it (no command status) with 1.
  EXPECT_EQ(finish(*cmd), 1) << cmd->buffer;
  EXPECT_NE(stdio_log().find("did not respond to SIGTERM in 0.3, uptime"), std::string::npos)
      << stdio_log();
  EXPECT_NE(cmd->buffer.find("exited with code 3"), std::string::npos) << cmd->buffer;
}

TEST_F(KnotTest, RestartProcessOnlyRestartsInsideOneKnot) {
  write_file(base + "/images/box.v1/config/again.yaml", R"(kind: Daemon
executable: /bin/busybox
arguments: [sh, -c, "echo started; exit 1"]
interactive: true
restart-process-only: true
restart-timeout: 0.05
)");
  auto knot = start_knot(
      "box/again.0",
      R"({"instances":1,"image":"box.v1","config":"/config/again.yaml","kind":"Daemon"})");
  std::string needle = "started\nstarted\nstarted\n";
  ASSERT_TRUE(read_until(knot->output.get(), knot->buffer, needle)) << knot->buffer << knot_log();
  ASSERT_EQ(::syscall(SYS_pidfd_send_signal, knot->process.pidfd.get(), SIGTERM, nullptr, 0), 0);
  EXPECT_EQ(finish(*knot), 0) << knot->buffer << knot_log();
  // One knot, several starts: the pivot happened once (else the second fails).
  std::string markers = stdio_log();
  std::size_t starts = 0;
  for (std::size_t at = 0; (at = markers.find("----- Starting", at)) != std::string::npos; ++at)
    ++starts;
  EXPECT_GE(starts, 3u) << markers;
  EXPECT_TRUE(runtime::remove_tree(dir + "/run/state/box/again.0"));
}

TEST_F(KnotTest, SecretsAreDecryptedIntoTheEnvironment) {
  write_file(dir + "/key", crypt_test::kPrivateKeyFile);
  ASSERT_EQ(::chmod((dir + "/key").c_str(), 0600), 0);
  write_sandbox("secrets-private-key: " + dir + "/key\n");
  auto public_key = crypt::parse_public_key(crypt_test::kPublicKeyFile);
  ASSERT_TRUE(public_key);
  auto inline_secret = crypt::encrypt(*public_key, "", "inline-s3cret");
  auto file_secret = crypt::encrypt(*public_key, "", "file-s3cret");
  ASSERT_TRUE(inline_secret && file_secret);
  add_command("inline", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, 'echo "token=$TOKEN"']
interactive: true
environ: {TOKEN: plain}
secret-environ:
  TOKEN: ")" + *inline_secret +
                            "\"\n");
  write_file(base + "/images/box.v1/config/secrets-file.yaml", "TOKEN: \"" + *file_secret + "\"\n");
  add_command("fromfile", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, 'echo "token=$TOKEN"']
interactive: true
secret-environ-file: secrets-file.yaml
)");
  auto first = start_cmd("inline");
  EXPECT_EQ(finish(*first), 0) << first->buffer << knot_log();
  EXPECT_EQ(first->buffer, "token=inline-s3cret\n");
  auto second = start_cmd("fromfile");
  EXPECT_EQ(finish(*second), 0) << second->buffer << knot_log();
  EXPECT_EQ(second->buffer, "token=file-s3cret\n");
}

TEST_F(KnotTest, GeneratedResolvConfAndHostsAreMounted) {
  write_file(dir + "/resolv", "nameserver 192.0.2.1\n");
  write_file(dir + "/hosts", "192.0.2.9 copied.example\n");
  write_sandbox("resolv-conf: " + dir + "/resolv\nhosts-file: " + dir +
                "/hosts\nadditional-hosts:\n  db.local: 10.0.0.7\n  api.local: 10.0.0.8\n");
  add_command("names", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "cat /etc/resolv.conf /etc/hosts; echo x >> /etc/hosts || echo read-only"]
interactive: true
hosts-file: {copy-from-host: true, localhost: true, public-hostname: false}
)");
  auto cmd = start_cmd("names");
  EXPECT_EQ(finish(*cmd), 0) << cmd->buffer << knot_log();
  EXPECT_NE(cmd->buffer.find("nameserver 192.0.2.1\n"
                             "192.0.2.9 copied.example\n\n"
                             "127.0.0.1 localhost.localdomain localhost\n"
                             "10.0.0.8 api.local\n"
                             "10.0.0.7 db.local\n"),
            std::string::npos)
      << cmd->buffer;
  EXPECT_NE(cmd->buffer.find("read-only"), std::string::npos) << cmd->buffer;
}

// The static knot asks glibc's getent for the host's address: the line must
// be what getaddrinfo(AF_INET) gives for the host name, first address, and
// none when the name does not resolve.
TEST_F(KnotTest, PublicHostnameLineComesFromTheHostsResolver) {
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  std::string expected;
  if (::getaddrinfo(host, nullptr, &hints, &res) == 0 && res) {
    char text[INET_ADDRSTRLEN] = {};
    auto* sin = reinterpret_cast<sockaddr_in*>(res->ai_addr);
    ASSERT_TRUE(::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text));
    expected = std::string(text) + " " + host + "\n";
    ::freeaddrinfo(res);
  }
  write_sandbox("");
  add_command("pub", R"(kind: Command
executable: /bin/busybox
arguments: [cat, /etc/hosts]
interactive: true
hosts-file: {copy-from-host: false, localhost: true, public-hostname: true}
)");
  auto cmd = start_cmd("pub");
  EXPECT_EQ(finish(*cmd), 0) << cmd->buffer << knot_log();
  // A host name that does not resolve gives no line (and a warning in the log).
  EXPECT_EQ(cmd->buffer, "127.0.0.1 localhost.localdomain localhost\n" + expected)
      << cmd->buffer << knot_log();
}

TEST_F(KnotTest, SandboxIdMapsPutTheProcessInAUserNamespace) {
  write_sandbox(
      "uid-map: [{inside: 0, outside: 200000, count: 65536}]\n"
      "gid-map: [{inside: 0, outside: 300000, count: 65536}]\n");
  add_command("mapped", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "echo ready; read x; exit 0"]
interactive: true
user-id: 0
group-id: 0
)");
  auto cmd = start_cmd("mapped");
  ASSERT_TRUE(read_until(cmd->output.get(), cmd->buffer, "ready\n")) << cmd->buffer << knot_log();
  auto knots = children_of(cmd->process.pid);
  ASSERT_EQ(knots.size(), 1u);
  auto inside = children_of(knots[0]);
  ASSERT_EQ(inside.size(), 1u);
  pid_t pid = inside[0];
  auto st = proc_status(pid);
  EXPECT_EQ(st["Uid"], "200000 200000 200000 200000");
  EXPECT_EQ(st["Gid"], "300000 300000 300000 300000");
  for (auto set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_EQ(st[set], kZeroCaps) << set;
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  std::string uid_map = read_file("/proc/" + std::to_string(pid) + "/uid_map");
  std::istringstream fields(uid_map);
  std::uint64_t in = 1, out = 0, count = 0;
  fields >> in >> out >> count;
  EXPECT_EQ(in, 0u);
  EXPECT_EQ(out, 200000u);
  EXPECT_EQ(count, 65536u);
  char own[64] = {}, theirs[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/user", own, sizeof own - 1), 0);
  ASSERT_GT(
      ::readlink(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), theirs, sizeof theirs - 1),
      0);
  EXPECT_STRNE(own, theirs);
  cmd->input.reset();  // `read` ends, the command exits 0
  EXPECT_EQ(finish(*cmd), 0) << cmd->buffer << knot_log();
}

TEST_F(KnotTest, UsageAndSelectionErrors) {
  write_file(base + "/images/box.v1/config/x.yaml",
             "kind: Daemon\nexecutable: /bin/busybox\narguments: [true]\n");
  const std::string identity =
      R"({"instances":1,"image":"box.v1","config":"/config/x.yaml","kind":"Daemon"})";
  auto wire = plan_wire("box/x.0", identity);
  ASSERT_TRUE(wire) << wire.error();
  // A usage error: the name is not SANDBOX/PROCESS.N.
  auto sealed = runtime::seal_plan(*wire);
  ASSERT_TRUE(sealed);
  auto bad_name = start_knot_with_plan_fd("box/x", identity, sealed->get());
  EXPECT_EQ(finish(*bad_name), 2) << bad_name->buffer;
  EXPECT_NE(bad_name->buffer.find("Bad value \"box/x\" for --name"), std::string::npos)
      << bad_name->buffer;
  // A plan for another invocation (its identity differs from --config).
  auto other = start_knot_with_plan_fd("box/x.0", "{not json", sealed->get());
  EXPECT_EQ(finish(*other), 1) << other->buffer;
  EXPECT_NE(other->buffer.find("launch plan is for box/x.0, not for this invocation"),
            std::string::npos)
      << other->buffer;

  write_file(base + "/images/box.v1/config/daemon.yaml",
             "kind: Daemon\nexecutable: /bin/busybox\narguments: [true]\n");
  write_file(dir + "/processes/box.yaml",
             "daemon:\n  image: box.v1\n  config: /config/daemon.yaml\n");
  auto daemon = start_cmd("daemon");
  EXPECT_EQ(finish(*daemon), 1);
  EXPECT_NE(daemon->buffer.find("The target container is: Daemon"), std::string::npos)
      << daemon->buffer;
  auto missing = start_cmd("nothere");
  EXPECT_EQ(finish(*missing), 1);
  EXPECT_NE(missing->buffer.find("Command \"nothere\" not found"), std::string::npos)
      << missing->buffer;
  auto wrong = start_cmd("../x");
  EXPECT_EQ(finish(*wrong), 1);
  EXPECT_NE(wrong->buffer.find("Wrong command name: ../x"), std::string::npos) << wrong->buffer;
}

TEST_F(KnotTest, SigtermRightAfterExecIsNotLost) {
  write_file(base + "/images/box.v1/config/sleeper.yaml",
             "kind: Daemon\nexecutable: /bin/busybox\narguments: [sleep, \"1000\"]\n");
  auto knot = start_knot(
      "box/sleeper.0",
      R"({"instances":1,"image":"box.v1","config":"/config/sleeper.yaml","kind":"Daemon"})");
  // Sent before the knot's main() has run (or during its setup): it stays
  // pending and is forwarded once the process exists.
  ASSERT_EQ(::syscall(SYS_pidfd_send_signal, knot->process.pidfd.get(), SIGTERM, nullptr, 0), 0);
  EXPECT_EQ(finish(*knot), 0) << knot->buffer << knot_log();
  EXPECT_NE(stdio_log().find("killed by signal SIGTERM[15]"), std::string::npos) << stdio_log();
  EXPECT_TRUE(runtime::remove_tree(dir + "/run/state/box/sleeper.0"));
}

TEST_F(KnotTest, ReadonlyVolumeIsReadOnlyRecursivelyAndOutputGoesToItsFile) {
  // A submount inside the read-only host dir (the original left it writable).
  std::string sub = dir + "/ro-host/sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  ASSERT_EQ(::mount("tmpfs", sub.c_str(), "tmpfs", 0, "size=64k"), 0);
  write_file(sub + "/marker", "submount\n");
  add_command("ro", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "cat /ro/sub/marker; touch /ro/sub/x && echo ESCAPED || echo blocked"]
stdout-stderr-file: /data/out.log
volumes:
  /ro: !Readonly /ro
  /data: !Persistent {path: /data, mkdir: true}
)");
  auto cmd = start_cmd("ro");
  int code = finish(*cmd);
  std::string in_sub = read_file(sub + "/marker");
  ::umount2(sub.c_str(), MNT_DETACH);
  EXPECT_EQ(code, 0) << cmd->buffer << knot_log();
  EXPECT_EQ(cmd->buffer, "");  // not interactive: nothing on the terminal
  std::string out = read_file(dir + "/data-host/out.log");
  EXPECT_NE(out.find("submount\n"), std::string::npos) << out;
  EXPECT_NE(out.find("blocked"), std::string::npos) << out;
  EXPECT_EQ(out.find("ESCAPED"), std::string::npos) << out;
  EXPECT_EQ(in_sub, "submount\n");
  // The markers still go to the sandbox stdio log.
  EXPECT_NE(stdio_log().find("----- Process \"box/cmd.ro."), std::string::npos) << stdio_log();
}

TEST_F(KnotTest, BridgedNetworkGivesTheContainerItsAddressAndPorts) {
  std::string bridge = "lt-br" + std::to_string(::getpid() % 100000);
  ASSERT_EQ(run_shell("ip link add " + bridge + " type bridge && ip link set " + bridge + " up"),
            0);
  write_sandbox("bridged-network: {bridge: " + bridge +
                ", network: 10.213.0.0/24, default-gateway: 10.213.0.1}\n");
  add_command("net", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "ip addr show; ip route; netstat -ltn; grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status"]
interactive: true
user-id: 1000
tcp-ports:
  "80": {fd: 3}
)",
              "  ip-addresses: [10.213.0.5]\n");
  auto cmd = start_cmd("net");
  int code = finish(*cmd);
  run_shell("ip link del " + bridge);
  EXPECT_EQ(code, 0) << cmd->buffer << knot_log();
  EXPECT_NE(cmd->buffer.find("inet 10.213.0.5/24"), std::string::npos) << cmd->buffer;
  EXPECT_NE(cmd->buffer.find("default via 10.213.0.1"), std::string::npos) << cmd->buffer;
  EXPECT_NE(cmd->buffer.find("0.0.0.0:80 "), std::string::npos) << cmd->buffer;
  // Exactly the granted capability (CAP_NET_BIND_SERVICE = bit 10), nothing else.
  EXPECT_NE(cmd->buffer.find("CapEff:\t0000000000000400"), std::string::npos) << cmd->buffer;
  EXPECT_NE(cmd->buffer.find("CapBnd:\t0000000000000400"), std::string::npos) << cmd->buffer;
  // The host side's name, as the original's. It goes away with the
  // container's network namespace, asynchronously; no need to wait for it.
  policy::scalars::IpAddress ip{};
  ip.bytes = {10, 213, 0, 5};
  std::string veth = policy::veth_host_name(bridge, ip);
  EXPECT_EQ(veth.size(), 14u);
  EXPECT_EQ(veth.substr(veth.size() - 5), "_0005");
  run_shell("ip link del " + veth + " 2>/dev/null");
}

// One host file and one host UNIX socket bound in: a service that needs a
// single config file of the host, or a host socket, runs; the file stays
// read-only even when its mode would let the container write.
TEST_F(KnotTest, FileAndSocketVolumes) {
  write_sandbox("");
  write_file(dir + "/ro-host/app.conf", "setting=1\n");
  ASSERT_EQ(::chmod((dir + "/ro-host/app.conf").c_str(), 0666), 0);
  const std::string socket_path = dir + "/data-host/app.sock";
  runtime::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  // The mount points: empty files in the image.
  write_file(base + "/images/box.v1/etc/app.conf", "");
  write_file(base + "/images/box.v1/etc/app.sock", "");
  add_command("files", R"(kind: Command
executable: /bin/busybox
arguments: [sh, -c, "cat /etc/app.conf; test -S /etc/app.sock && echo socket; echo x >> /etc/app.conf 2>/dev/null || echo refused"]
interactive: true
volumes:
  /etc/app.conf: !Readonly /ro/app.conf
  /etc/app.sock: !Persistent {path: /data/app.sock}
)");
  auto cmd = start_cmd("files");
  int code = finish(*cmd);
  EXPECT_EQ(code, 0) << cmd->buffer << knot_log();
  EXPECT_NE(cmd->buffer.find("setting=1"), std::string::npos) << cmd->buffer;
  EXPECT_NE(cmd->buffer.find("socket"), std::string::npos) << cmd->buffer;
  EXPECT_NE(cmd->buffer.find("refused"), std::string::npos) << cmd->buffer;
  EXPECT_EQ(read_file(dir + "/ro-host/app.conf"), "setting=1\n");
}

// The original's gratuitous-ARP recipe, with Debian's iputils-arping, runs
// once the container's interface is up; the container then starts.
TEST_F(KnotTest, AfterSetupCommandArpingRecipeWorks) {
  std::string bridge = "lt-as" + std::to_string(::getpid() % 100000);
  ASSERT_EQ(run_shell("ip link add " + bridge + " type bridge && ip link set " + bridge + " up"),
            0);
  write_sandbox("bridged-network:\n  bridge: " + bridge +
                "\n  network: 10.213.1.0/24\n"
                "  after-setup-command: [arping, -U, -c1, -I, \"@{container_interface}\",\n"
                "                        \"@{container_ip}\"]\n");
  add_command("arp", "kind: Command\nexecutable: /bin/busybox\narguments: [true]\n",
              "  ip-addresses: [10.213.1.6]\n");
  auto cmd = start_cmd("arp");
  int code = finish(*cmd);
  run_shell("ip link del " + bridge);
  EXPECT_EQ(code, 0) << cmd->buffer << knot_log();
}

// It runs in the container's network namespace after the address is set,
// and a failure stops the start with the command, its exit code and output.
TEST_F(KnotTest, AfterSetupCommandFailureStopsTheStartAndSaysWhy) {
  std::string bridge = "lt-af" + std::to_string(::getpid() % 100000);
  ASSERT_EQ(run_shell("ip link add " + bridge + " type bridge && ip link set " + bridge + " up"),
            0);
  std::string seen = dir + "/after-setup.txt";
  write_sandbox("bridged-network:\n  bridge: " + bridge +
                "\n  network: 10.213.2.0/24\n"
                "  after-setup-command: [sh, -c, \"ip -o addr show > " +
                seen + "; echo ip=@{container_ip} >> " + seen + "; echo no luck >&2; exit 3\"]\n");
  add_command("fails", "kind: Command\nexecutable: /bin/busybox\narguments: [true]\n",
              "  ip-addresses: [10.213.2.7]\n");
  auto cmd = start_cmd("fails");
  int code = finish(*cmd);
  run_shell("ip link del " + bridge);
  EXPECT_EQ(code, 1) << cmd->buffer;
  std::string log = knot_log();
  EXPECT_NE(log.find("after-setup-command /usr/bin/sh -c ip -o addr show"), std::string::npos)
      << log;
  EXPECT_NE(log.find("exited with code 3; output: no luck"), std::string::npos) << log;
  std::string addresses = read_file(seen);
  EXPECT_NE(addresses.find("inet 10.213.2.7/24"), std::string::npos) << addresses;
  EXPECT_NE(addresses.find("ip=10.213.2.7\n"), std::string::npos) << addresses;
  // Only the container's own interfaces are there: lo and its side of the pair.
  EXPECT_EQ(addresses.find(bridge), std::string::npos) << addresses;
}

TEST(AfterSetupCommand, CleanEnvironmentNoInheritedDescriptorsAndATimeout) {
  using std::chrono::milliseconds;
  // A descriptor of ours without close-on-exec must not reach the command.
  int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  auto fds = runtime::run_after_setup_command(
      {"/bin/sh", "-c", "ls /proc/self/fd >&2; env >&2; exit 4"}, milliseconds(5000));
  ::close(leaked);
  ASSERT_FALSE(fds);
  const std::string what = fds.error().what();
  // 0, 1, 2 and ls's own directory handle: nothing of ours.
  EXPECT_NE(what.find("exited with code 4; output: 0 1 2 3 PATH="), std::string::npos) << what;
  EXPECT_NE(what.find("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), std::string::npos) << what;
  EXPECT_EQ(what.find("HOME="), std::string::npos) << what;

  auto start = std::chrono::steady_clock::now();
  auto slow = runtime::run_after_setup_command({"/bin/sleep", "30"}, milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(slow);
  EXPECT_NE(slow.error().what().find("did not finish within"), std::string::npos)
      << slow.error().what();
  EXPECT_LT(took, std::chrono::seconds(5));

  // Closing its output does not end the wait: the deadline still applies.
  auto quiet = runtime::run_after_setup_command({"/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30"},
                                                milliseconds(300));
  ASSERT_FALSE(quiet);
  EXPECT_NE(quiet.error().what().find("did not finish within"), std::string::npos)
      << quiet.error().what();

  // A background child holding the pipe neither delays success nor survives it.
  const std::string pid_file = "/tmp/lithos-after-setup-" + std::to_string(::getpid());
  start = std::chrono::steady_clock::now();
  auto background = runtime::run_after_setup_command(
      {"/bin/sh", "-c", "sleep 30 & echo $! > " + pid_file + "; exit 0"}, milliseconds(5000));
  EXPECT_TRUE(background) << background.error().what();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  std::ifstream pid_in(pid_file);
  long left_behind = 0;
  pid_in >> left_behind;
  ::unlink(pid_file.c_str());
  ASSERT_GT(left_behind, 0);
  // Gone, or dying: SIGKILL was sent to its group, and delivery takes a
  // moment, so wait for its exit on a pidfd (readable once it has exited).
  runtime::UniqueFd left(static_cast<int>(::syscall(SYS_pidfd_open, left_behind, 0)));
  if (left) {
    pollfd exited{left.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&exited, 1, 5000), 1) << "pid " << left_behind << " still runs";
  } else {
    EXPECT_EQ(errno, ESRCH);
  }

  EXPECT_TRUE(runtime::run_after_setup_command({"/bin/true"}, milliseconds(5000)));
  auto missing = runtime::run_after_setup_command({"/nonexistent/helper"}, milliseconds(5000));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().what().find("No such file or directory"), std::string::npos)
      << missing.error().what();
}

// The write path of an LSM label: on a host without AppArmor (this one, the
// CI's) the kernel refuses it with EINVAL; with AppArmor, "exec unconfined"
// is accepted. In a child: an accepted label would apply to its next exec.
TEST(LsmLabel, WritingTheExecLabel) {
  std::ifstream flag("/sys/module/apparmor/parameters/enabled");
  char enabled = 0;
  flag >> enabled;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(runtime::write_exec_label("exec unconfined"));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), enabled == 'Y' ? 0 : EINVAL);
}

TEST(VethName, MatchesTheSpecExample) {
  lithos::policy::scalars::IpAddress ip{};
  ip.bytes = {10, 0, 0, 5};
  EXPECT_EQ(lithos::policy::veth_host_name("br0", ip), "li_a0a567_0005");
}

// Bad input: the knot exits 1, says which step failed and why, and the host
// mount table is untouched.
class KnotBadInput : public KnotTest {
 protected:
  void expect_failure(std::unique_ptr<Running> r, std::vector<std::string> in_log) {
    auto before = host_mount_points(base);
    EXPECT_EQ(finish(*r), 1) << r->buffer;
    EXPECT_NE(r->buffer.find("Fatal error"), std::string::npos) << r->buffer;
    std::string log = knot_log();
    for (const auto& text : in_log)
      EXPECT_NE(log.find(text), std::string::npos) << text << "\n" << log;
    EXPECT_EQ(host_mount_points(base), before);
  }
};

TEST_F(KnotBadInput, MissingMountPoint) {
  add_command("nope", R"(kind: Command
executable: /bin/busybox
arguments: [true]
volumes:
  /nope: !Tmpfs {size: 1Mi}
)");
  expect_failure(start_cmd("nope"), {"mount_volumes", "/nope", "No such file or directory"});
}

// Image problems are the plan builder's now (it reads the container config
// from the image, unprivileged); no plan, no knot.
TEST_F(KnotBadInput, MissingImage) {
  auto wire =
      plan_wire("box/gone.0",
                R"({"instances":1,"image":"gone.v1","config":"/config/x.yaml","kind":"Daemon"})");
  ASSERT_FALSE(wire);
  EXPECT_NE(wire.error().find("gone.v1"), std::string::npos) << wire.error();
}

TEST_F(KnotBadInput, ImageEscapingTheImageDirIsRefused) {
  auto wire = plan_wire(
      "box/up.0",
      R"({"instances":1,"image":"../images/box.v1","config":"/config/x.yaml","kind":"Daemon"})");
  ASSERT_FALSE(wire);
  EXPECT_NE(wire.error().find("../images/box.v1"), std::string::npos) << wire.error();
  EXPECT_NE(wire.error().find("invalid"), std::string::npos) << wire.error();
}

// A bad launch plan ends the knot with exit 1 and one line, before any
// privileged step: no state dir, no mount, no cgroup scope.
class KnotBadPlan : public KnotBadInput {
 protected:
  void SetUp() override {
    KnotBadInput::SetUp();
    write_file(base + "/images/box.v1/config/x.yaml",
               "kind: Daemon\nexecutable: /bin/busybox\narguments: [true]\n");
    auto wire = plan_wire("box/x.0", kIdentity);
    ASSERT_TRUE(wire) << wire.error();
    good = *wire;
  }
  static constexpr const char* kIdentity =
      R"({"instances":1,"image":"box.v1","config":"/config/x.yaml","kind":"Daemon"})";
  void expect_refused(int plan_fd, const std::string& why) {
    auto before = host_mount_points(base);
    auto knot = start_knot_with_plan_fd("box/x.0", kIdentity, plan_fd);
    EXPECT_EQ(finish(*knot), 1) << knot->buffer;
    EXPECT_NE(knot->buffer.find("Fatal error: launch plan: "), std::string::npos) << knot->buffer;
    EXPECT_NE(knot->buffer.find(why), std::string::npos) << knot->buffer;
    // One line, nothing in the knot's log (it is opened from the plan).
    EXPECT_EQ(std::count(knot->buffer.begin(), knot->buffer.end(), '\n'), 1) << knot->buffer;
    struct stat st {};
    EXPECT_NE(::stat((dir + "/run/state/box/x.0").c_str(), &st), 0);
    EXPECT_EQ(host_mount_points(base), before);
  }
  static runtime::UniqueFd memfd_with(const std::string& bytes, bool sealed) {
    if (sealed) {
      auto fd = runtime::seal_plan(bytes);
      EXPECT_TRUE(fd);
      return fd ? std::move(fd.value()) : runtime::UniqueFd();
    }
    runtime::UniqueFd fd(static_cast<int>(::syscall(SYS_memfd_create, "plan", MFD_CLOEXEC)));
    EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    return fd;
  }
  std::string good;
};

TEST_F(KnotBadPlan, NoPlanDescriptor) {
  // Whatever the test runner left at 3 must not reach the knot.
  if (::fcntl(policy::kPlanFd, F_GETFD) >= 0) ::fcntl(policy::kPlanFd, F_SETFD, FD_CLOEXEC);
  expect_refused(-1, "no launch plan");
}

TEST_F(KnotBadPlan, UnsealedMemfd) {
  auto fd = memfd_with(good, false);
  expect_refused(fd.get(), "must be a sealed memfd");
}

TEST_F(KnotBadPlan, RegularFileIsNotAPlan) {
  std::string path = dir + "/plan";
  write_file(path, good);
  runtime::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  expect_refused(fd.get(), "must be a sealed memfd");
}

TEST_F(KnotBadPlan, TruncatedPlan) {
  auto fd = memfd_with(good.substr(0, good.size() / 2), true);
  expect_refused(fd.get(), "malformed plan");
}

TEST_F(KnotBadPlan, TrailingBytes) {
  auto fd = memfd_with(good + "0;", true);
  expect_refused(fd.get(), "trailing bytes");
}

TEST_F(KnotBadPlan, OtherVersion) {
  std::string other = good;
  other.replace(0, policy::kPlanMagic.size(), "lithos-plan 9\n");
  auto fd = memfd_with(other, true);
  expect_refused(fd.get(), "another version");
}

TEST_F(KnotBadPlan, OversizedPlan) {
  auto fd = memfd_with(std::string(policy::kMaxPlanBytes + 1, 'x'), true);
  expect_refused(fd.get(), "limit");
}

TEST_F(KnotBadPlan, EmptyPlan) {
  auto fd = memfd_with("", true);
  expect_refused(fd.get(), "launch plan of 0 bytes");
}

TEST_F(KnotBadInput, UnreadableSecretsKey) {
  write_file(dir + "/key", "not a key\n");
  ::chmod((dir + "/key").c_str(), 0644);
  write_sandbox("secrets-private-key: " + dir + "/key\n");
  write_file(base + "/images/box.v1/config/secrets.yaml", "{}\n");
  add_command("secret", R"(kind: Command
executable: /bin/busybox
arguments: [true]
secret-environ-file: /config/secrets.yaml
)");
  expect_failure(start_cmd("secret"), {"decode_secrets", "Key's mode must be 0600"});
}

TEST_F(KnotBadInput, AbsentCgroupController) {
  write_master("cgroup-controllers: [no_such_controller]\n");
  write_file(base + "/images/box.v1/config/plain.yaml", R"(kind: Daemon
executable: /bin/busybox
arguments: [true]
)");
  expect_failure(
      start_knot(
          "box/plain.0",
          R"({"instances":1,"image":"box.v1","config":"/config/plain.yaml","kind":"Daemon"})"),
      {"no_such_controller"});
  EXPECT_TRUE(runtime::remove_tree(dir + "/run/state/box/plain.0"));
}

}  // namespace
// A file onto a directory (or the other way round) is refused by name.
TEST_F(KnotBadInput, FileVolumeOnADirectory) {
  write_sandbox("");
  write_file(dir + "/ro-host/app.conf", "setting=1\n");
  add_command("mismatch", R"(kind: Command
executable: /bin/busybox
arguments: [true]
volumes:
  /ro: !Readonly /ro/app.conf
)");
  expect_failure(start_cmd("mismatch"),
                 {"mount_volumes", "/ro", "a file or socket volume mounts on a file"});
}

}  // namespace knot_test
