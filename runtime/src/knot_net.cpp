// Bridged networking (docs/knot.md "Bridged networking") with rtnetlink
// instead of the original's fixed /bin/ip and /sbin/brctl paths: a veth pair whose peer
// is created directly in the container's network namespace, the host side
// attached to the bridge, then (inside the namespace, entered with the
// child's pidfd) lo and the peer up, the address and the default route.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "lithos/runtime/knot.hpp"

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

std::string hex2(std::uint8_t b) {
  const char* digits = "0123456789abcdef";
  return {digits[b >> 4], digits[b & 15]};
}

}  // namespace

std::string veth_host_name(const std::string& bridge, const policy::scalars::IpAddress& ip) {
  std::string json =
      "{\"bridge\":\"" + bridge + "\",\"ip\":\"" + policy::scalars::format_ip(ip) + "\"}";
  unsigned char digest[64];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(json.data()),
                     json.size(), nullptr, 0);
  std::size_t n = ip.v6 ? 16 : 4;
  return "li_" + hex2(digest[0]) + hex2(digest[1]) + hex2(digest[2]) + "_" + hex2(ip.bytes[n - 2]) +
         hex2(ip.bytes[n - 1]);
}

Result<void> setup_bridged_network(const policy::InstancePlan& plan, int child_pidfd,
                                   pid_t child_pid) {
  const auto& net = *plan.network;
  if (!net.after_setup_command.empty())
    return step_error(kStep, "", ENOTSUP, "after-setup-command is not supported yet");
  Netlink host;
  if (auto r = host.open(); !r) return r;

  std::string h, c;
  if (net.ip) {
    h = veth_host_name(net.bridge, *net.ip);
    c = h;
    for (auto& ch : c)
      if (ch == '_') ch = '-';
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
    return {};
  };
  auto result = inside();
  if (::setns(own.get(), CLONE_NEWNET) != 0)
    return step_error(kStep, "/proc/self/ns/net", errno, "setns back");
  return result;
}

}  // namespace lithos::runtime
