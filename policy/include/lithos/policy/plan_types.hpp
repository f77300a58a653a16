// The vocabulary a launch plan is made of and that the config structs share:
// kinds, id-map entries, IP addresses, IO limits. Kept free of the schema engine, the
// YAML reader and the scalar grammars, so that lithos_knot, which executes a
// plan and parses no config (docs/knot.md), can include it.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>

namespace lithos::policy {

enum class ProcessKind { Daemon, Command };
enum class ContainerKind { Daemon, Command, CommandOrDaemon };

struct IdMapEntry {
  std::uint32_t inside = 0;
  std::uint32_t outside = 0;
  std::uint32_t count = 0;
  friend bool operator==(const IdMapEntry&, const IdMapEntry&) = default;
};

// io-max limits of one block device (container key `io-max`); unset ones
// stay unlimited.
struct IoLimits {
  std::optional<std::uint64_t> read_bps;
  std::optional<std::uint64_t> write_bps;
  std::optional<std::uint64_t> read_iops;
  std::optional<std::uint64_t> write_iops;
  friend bool operator==(const IoLimits&, const IoLimits&) = default;
};

namespace scalars {

// An IPv4 or IPv6 address (parse_ip in scalars.hpp reads the text form).
struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// Canonical text: IPv4 dotted decimal; IPv6 per RFC 5952 (lower case, no
// leading zeros, the longest run of two or more zero groups compressed to
// "::", first one on a tie, a single zero group never compressed); an
// IPv4-mapped address is printed as "::ffff:a.b.c.d". parse_ip(format_ip(x))
// == x for every address.
std::string format_ip(const IpAddress& ip);

}  // namespace scalars
}  // namespace lithos::policy
