// Address text for plans and messages (plan_types.hpp); linked into the knot.
#include <array>
#include <cstdio>
#include <string>

#include "lithos/policy/plan_types.hpp"

namespace lithos::policy::scalars {

namespace {

std::string format_ipv4(const IpAddress& ip) {
  return std::to_string(ip.bytes[0]) + "." + std::to_string(ip.bytes[1]) + "." +
         std::to_string(ip.bytes[2]) + "." + std::to_string(ip.bytes[3]);
}

}  // namespace

std::string format_ip(const IpAddress& ip) {
  if (!ip.v6) return format_ipv4(ip);
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = unsigned{ip.bytes[2 * i]} << 8 | ip.bytes[2 * i + 1];

  // IPv4-mapped (RFC 5952 section 5): ::ffff:a.b.c.d
  if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xFFFF) {
    return "::ffff:" + std::to_string(ip.bytes[12]) + "." + std::to_string(ip.bytes[13]) + "." +
           std::to_string(ip.bytes[14]) + "." + std::to_string(ip.bytes[15]);
  }
  // Longest run of two or more zero groups; the first one on a tie.
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[static_cast<std::size_t>(i)] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[static_cast<std::size_t>(j)] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best = -1;

  std::string out;
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", g[static_cast<std::size_t>(i)]);
    out += buf;
  }
  return out;
}

}  // namespace lithos::policy::scalars
