// Host-side listening sockets of lithos_tree (docs/tree.md): one socket
// per (address, port) shared by every instance that listens there, kept
// while one of them runs and across re-execs; a fresh SO_REUSEPORT socket
// per start for `reuse-port: true`; IPv6 hosts get AF_INET6 sockets (the
// original had neither).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "lithos/runtime/sockaddr.hpp"
#include "tree_support.hpp"

namespace lithos::runtime::tree_detail {

namespace {

// Table sockets live at high descriptor numbers so that placing one at its
// configured number in the child (dup2) never overwrites another source.
constexpr int kSocketFdBase = 512;

std::string describe(const SocketKey& key) {
  std::string host = policy::scalars::format_ip(key.host);
  return (key.host.v6 ? "[" + host + "]" : host) + ":" + std::to_string(key.port);
}

}  // namespace

// setfsuid/setfsgid report no errors: success is seen by asking again.
bool set_fs_ids(std::uint32_t uid, std::uint32_t gid) {
  ::setfsgid(gid);
  ::setfsuid(uid);
  return static_cast<std::uint32_t>(::setfsgid(static_cast<gid_t>(-1))) == gid &&
         static_cast<std::uint32_t>(::setfsuid(static_cast<uid_t>(-1))) == uid;
}

Result<UniqueFd> open_listener(const policy::SocketPlan& sp,
                               policy::supervise::SocketCredentials owner) {
  SocketKey key{sp.host, sp.port};
  std::string what = describe(key);
  sockaddr_storage addr;
  socklen_t len = to_sockaddr(sp.host, sp.port, addr);
  // The socket's owner (netfilter owner matches, /proc/net/tcp) is the
  // filesystem uid/gid at socket() time.
  bool switched = owner.uid != 0 || owner.gid != 0;
  if (switched && !set_fs_ids(owner.uid, owner.gid)) {
    int err = errno;
    if (!set_fs_ids(0, 0)) std::abort();  // never go on with another fs identity
    return step_error("socket", what, err, "setfsuid/setfsgid");
  }
  UniqueFd raw(::socket(sp.host.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int socket_errno = errno;
  // Failing to become root again would leave the tree with another user's
  // file access: stop rather than go on.
  if (switched && !set_fs_ids(0, 0)) std::abort();
  if (!raw) return step_error("socket", what, socket_errno, "socket");
  int one = 1;
  if (sp.reuse_addr && ::setsockopt(raw.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return step_error("socket", what, errno, "SO_REUSEADDR");
  if (sp.reuse_port && ::setsockopt(raw.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return step_error("socket", what, errno, "SO_REUSEPORT");
  if (sp.host.v6 && ::setsockopt(raw.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    return step_error("socket", what, errno, "IPV6_V6ONLY");
  if (::bind(raw.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    return step_error("socket", what, errno, "bind");
  if (::listen(raw.get(), static_cast<int>(sp.listen_backlog)) != 0)
    return step_error("socket", what, errno, "listen");
  if (sp.set_non_block) {
    int flags = ::fcntl(raw.get(), F_GETFL);
    if (flags < 0 || ::fcntl(raw.get(), F_SETFL, flags | O_NONBLOCK) != 0)
      return step_error("socket", what, errno, "O_NONBLOCK");
  }
  UniqueFd high(::fcntl(raw.get(), F_DUPFD_CLOEXEC, kSocketFdBase));
  if (!high) return step_error("socket", what, errno, "F_DUPFD_CLOEXEC");
  return high;
}

Result<int> SocketTable::get(const policy::SocketPlan& sp,
                             policy::supervise::SocketCredentials owner, const Logger& log) {
  SocketKey key{sp.host, sp.port};
  auto it = table_.find(key);
  if (it != table_.end()) return it->second.get();
  auto opened = open_listener(sp, owner);
  if (!opened) return Failure<StepError>{std::move(opened.error())};
  int fd = opened->get();
  log.info("Socket " + describe(key) + " open as " + std::to_string(fd));
  table_.emplace(key, std::move(*opened));
  publish();
  return fd;
}

void SocketTable::publish() const {
  std::vector<int> fds;
  for (const auto& [key, fd] : table_) fds.push_back(fd.get());
  keep_across_crash_exec(fds);
}

void SocketTable::close_unused(const std::set<SocketKey>& used, const Logger& log) {
  for (auto it = table_.begin(); it != table_.end();) {
    if (used.count(it->first)) {
      ++it;
      continue;
    }
    log.info("Socket " + describe(it->first) + " closed: no running instance uses it");
    it = table_.erase(it);
  }
  publish();
}

void SocketTable::set_cloexec(bool on) {
  for (auto& [key, fd] : table_) {
    int flags = ::fcntl(fd.get(), F_GETFD);
    if (flags >= 0) ::fcntl(fd.get(), F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
  }
}

void SocketTable::recover(const Logger& log) {
  std::vector<int> fds;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long fd = std::strtol(e->d_name, &end, 10);
      if (end && *end == '\0' && fd >= 3) fds.push_back(static_cast<int>(fd));
    }
    ::closedir(d);
  }
  for (int fd : fds) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC)) continue;  // ours are inherited without it
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) continue;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
      continue;
    SocketKey key;
    if (addr.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      std::memcpy(key.host.bytes.data(), &a->sin_addr, 4);
      key.port = ntohs(a->sin_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      key.host.v6 = true;
      std::memcpy(key.host.bytes.data(), &a->sin6_addr, 16);
      key.port = ntohs(a->sin6_port);
    }
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    log.info("Recovered socket " + describe(key) + " (fd " + std::to_string(fd) + ")");
    table_[key] = UniqueFd(fd);  // a duplicate key: the later one wins, the earlier is closed
  }
  publish();
}

}  // namespace lithos::runtime::tree_detail
