// Bridged networking (docs/knot.md "Bridged networking") with rtnetlink
// instead of the original's fixed /bin/ip and /sbin/brctl paths: a veth pair whose peer
// is created directly in the container's network namespace, the host side
// attached to the bridge, then (inside the namespace, entered with the
// child's pidfd) lo and the peer up, the address and the default route;
// then the sandbox's after-setup-command, still in that namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "lithos/runtime/knot.hpp"
#include "lithos/runtime/spawn.hpp"

namespace lithos::runtime {

namespace {

const char* kStep = "bridged_network";

class Message {
 public:
  Message(std::uint16_t type, std::uint16_t flags) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
    append(&h, sizeof h);
  }
  template <class T>
  void header(const T& value) {
    append(&value, sizeof value);
  }
  void attr(std::uint16_t type, const void* data, std::size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    append(&a, sizeof a);
    append(data, len);
  }
  void attr_str(std::uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attr_u32(std::uint16_t type, std::uint32_t v) { attr(type, &v, sizeof v); }
  std::size_t begin_nest(std::uint16_t type) {
    std::size_t at = buf_.size();
    attr(type, nullptr, 0);
    return at;
  }
  void end_nest(std::size_t at) {
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
    a->rta_len = static_cast<unsigned short>(buf_.size() - at);
  }
  std::vector<char>& finish(std::uint32_t seq) {
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    h->nlmsg_seq = seq;
    return buf_;
  }

 private:
  void append(const void* data, std::size_t len) {
    const char* p = static_cast<const char*>(data);
    buf_.insert(buf_.end(), p, p + len);
    buf_.resize(NLMSG_ALIGN(buf_.size()), 0);
  }
  std::vector<char> buf_;
};

class Netlink {
 public:
  Result<void> open() {
    fd_.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd_) return step_error(kStep, "netlink", errno, "socket");
    return {};
  }
  // Sends and waits for the kernel's acknowledgement.
  Result<void> call(Message& m, const std::string& what) {
    auto& buf = m.finish(++seq_);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel) < 0)
      return step_error(kStep, what, errno, "netlink send");
    alignas(nlmsghdr) char reply[8192];
    while (true) {
      ssize_t n = ::recv(fd_.get(), reply, sizeof reply, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return step_error(kStep, what, errno, "netlink receive");
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(h, static_cast<unsigned>(n));
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_ERROR) {
          auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(h));
          if (err->error == 0) return {};
          return step_error(kStep, what, -err->error);
        }
      }
    }
  }

 private:
  UniqueFd fd_;
  std::uint32_t seq_ = 0;
};

Result<unsigned> link_index(const std::string& name) {
  unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0) return step_error(kStep, name, errno, "no such interface");
  return index;
}

Result<void> link_up(Netlink& nl, unsigned index, std::optional<unsigned> master,
                     const std::string& what) {
  Message m(RTM_NEWLINK, 0);
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = static_cast<int>(index);
  info.ifi_flags = IFF_UP;
  info.ifi_change = IFF_UP;
  m.header(info);
  if (master) m.attr_u32(IFLA_MASTER, *master);
  return nl.call(m, what);
}

}  // namespace

namespace {

std::string command_text(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) out += (out.empty() ? "" : " ") + arg;
  return out;
}

// What the command printed, on one line, at most kMaxOutput bytes.
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (auto& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text.empty() ? "no output" : "output: " + text;
}

}  // namespace

Result<void> run_after_setup_command(const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout, int root) {
  const char* step = "after_setup_command";
  if (argv.empty()) return {};
  constexpr std::size_t kMaxOutput = 2048;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return step_error(step, argv[0], errno, "pipe");
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  // The host's /dev/null: after pivot_root "/dev/null" would be the
  // container's, which a volume could replace.
  UniqueFd null_fd(root >= 0 ? ::openat(root, "dev/null", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                             : ::open("/dev/null", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat null_st {};
  if (!null_fd || ::fstat(null_fd.get(), &null_st) != 0 || !S_ISCHR(null_st.st_mode) ||
      null_st.st_rdev != makedev(1, 3))
    return step_error(step, "/dev/null", null_fd ? 0 : errno, "not the null device");
  SpawnOptions options;
  options.path = argv[0];
  options.argv = argv;
  // Not the knot's environment: a fixed, minimal one.
  options.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  options.parent_death_signal = SIGKILL;
  options.fds = {{null_fd.get(), 0}, {write_end.get(), 1}, {write_end.get(), 2}};
  options.new_session = true;
  options.only_given_fds = true;
  options.root_fd = root;
  auto spawned = spawn_process(options);
  if (!spawned)
    return Failure<StepError>{
        std::move(spawned.error()).with("after-setup-command " + command_text(argv))};
  write_end.reset();

  auto drained = read_until_closed(read_end.get(), std::chrono::steady_clock::now() + timeout,
                                   kMaxOutput, spawned->pidfd.get());
  const bool timed_out = drained.timed_out;
  const std::string& output = drained.bytes;
  // Ended or out of time: nothing it started stays behind as host root. It
  // leads its own process group (setsid), whose id its pid holds until it
  // is reaped below.
  ::kill(-spawned->pid, SIGKILL);
  auto status = wait_process(*spawned);
  if (!status) return Failure<StepError>{status.error()};
  std::string what = "after-setup-command " + command_text(argv);
  if (timed_out)
    return step_error(step, "", 0,
                      what + " did not finish within " + std::to_string(timeout.count() / 1000) +
                          " s and was killed; " + one_line(output));
  if (WIFSIGNALED(*status))
    return step_error(step, "", 0,
                      what + " was killed by signal " + std::to_string(WTERMSIG(*status)) + "; " +
                          one_line(output));
  if (WEXITSTATUS(*status) != 0)
    return step_error(step, "", 0,
                      what + " exited with code " + std::to_string(WEXITSTATUS(*status)) + "; " +
                          one_line(output));
  return {};
}

Result<void> setup_bridged_network(const policy::InstancePlan& plan, int child_pidfd,
                                   pid_t child_pid, int host_root) {
  const auto& net = *plan.network;
  Netlink host;
  if (auto r = host.open(); !r) return r;

  const std::string& h = net.host_interface;
  const std::string& c = net.container_interface;
  if (net.ip) {
    if (h.empty() || c.empty())
      return step_error(kStep, "", EINVAL, "the plan names no interfaces");
    auto bridge = link_index(net.bridge);
    if (!bridge) return Failure<StepError>{bridge.error()};
    if (unsigned stale = ::if_nametoindex(h.c_str()); stale != 0) {
      Message del(RTM_DELLINK, 0);
      ifinfomsg info{};
      info.ifi_index = static_cast<int>(stale);
      del.header(info);
      if (auto r = host.call(del, "ip link del " + h); !r) return r;
    }
    // veth pair, the peer created inside the child's network namespace.
    Message add(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifinfomsg info{};
    add.header(info);
    add.attr_str(IFLA_IFNAME, h);
    auto linkinfo = add.begin_nest(IFLA_LINKINFO);
    add.attr_str(IFLA_INFO_KIND, "veth");
    auto data = add.begin_nest(IFLA_INFO_DATA);
    auto peer = add.begin_nest(VETH_INFO_PEER);
    ifinfomsg peer_info{};
    add.header(peer_info);
    add.attr_str(IFLA_IFNAME, c);
    add.attr_u32(IFLA_NET_NS_PID, static_cast<std::uint32_t>(child_pid));
    add.end_nest(peer);
    add.end_nest(data);
    add.end_nest(linkinfo);
    if (auto r = host.call(add, "ip link add " + h); !r) return r;
    auto index = link_index(h);
    if (!index) return Failure<StepError>{index.error()};
    if (auto r = link_up(host, *index, *bridge, "attach " + h + " to " + net.bridge); !r) return r;
  }

  // Inside the container's network namespace, then back.
  UniqueFd own(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!own) return step_error(kStep, "/proc/self/ns/net", errno);
  if (::setns(child_pidfd, CLONE_NEWNET) != 0)
    return step_error(kStep, std::to_string(child_pid), errno, "setns into the container");
  auto inside = [&]() -> Result<void> {
    Netlink nl;
    if (auto r = nl.open(); !r) return r;
    if (auto r = link_up(nl, 1, std::nullopt, "ip link set lo up"); !r) return r;
    if (!net.ip) return {};
    auto index = link_index(c);
    if (!index) return Failure<StepError>{index.error()};
    Message addr(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifaddrmsg a{};
    a.ifa_family = static_cast<unsigned char>(net.ip->v6 ? AF_INET6 : AF_INET);
    a.ifa_prefixlen = static_cast<unsigned char>(net.prefix);
    a.ifa_index = *index;
    addr.header(a);
    std::size_t len = net.ip->v6 ? 16 : 4;
    addr.attr(IFA_LOCAL, net.ip->bytes.data(), len);
    addr.attr(IFA_ADDRESS, net.ip->bytes.data(), len);
    if (auto r = nl.call(addr, "ip addr add " + policy::scalars::format_ip(*net.ip)); !r) return r;
    if (auto r = link_up(nl, *index, std::nullopt, "ip link set " + c + " up"); !r) return r;
    if (net.gateway) {
      Message route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
      rtmsg rt{};
      rt.rtm_family = a.ifa_family;
      rt.rtm_table = RT_TABLE_MAIN;
      rt.rtm_protocol = RTPROT_BOOT;
      rt.rtm_scope = RT_SCOPE_UNIVERSE;
      rt.rtm_type = RTN_UNICAST;
      route.header(rt);
      route.attr(RTA_GATEWAY, net.gateway->bytes.data(), len);
      if (auto r = nl.call(route,
                           "ip route add default via " + policy::scalars::format_ip(*net.gateway));
          !r)
        return r;
    }
    return run_after_setup_command(net.after_setup_command, kAfterSetupTimeout, host_root);
  };
  auto result = inside();
  if (::setns(own.get(), CLONE_NEWNET) != 0)
    return step_error(kStep, "/proc/self/ns/net", errno, "setns back");
  return result;
}

}  // namespace lithos::runtime
