// The socket address of a planned listening socket: one conversion for the
// tree's host-side sockets and the knot's sockets inside the container.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

#include "lithos/policy/plan_types.hpp"

namespace lithos::runtime {

// Fills `out` for `ip`:`port` and returns the address length to pass to bind.
inline socklen_t to_sockaddr(const policy::scalars::IpAddress& ip, std::uint16_t port,
                             sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (ip.v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    std::memcpy(&a->sin6_addr, ip.bytes.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&out);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  std::memcpy(&a->sin_addr, ip.bytes.data(), 4);
  return sizeof(sockaddr_in);
}

}  // namespace lithos::runtime
