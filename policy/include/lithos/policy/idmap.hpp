// Id-map arithmetic of the user and group rules (docs/configs.md, "Users,
// groups and id maps"): what a map covers, where an id lands on the host,
// and how maps and allow-lists are shown in diagnostics.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/plan_types.hpp"
#include "lithos/policy/scalars.hpp"

namespace lithos::policy {

// All arithmetic is 64-bit with exclusive ends: [inside, inside + count).

inline bool map_contains_inside(const std::vector<IdMapEntry>& map, std::uint32_t id) {
  return std::any_of(map.begin(), map.end(), [&](const IdMapEntry& e) {
    return id >= e.inside && std::uint64_t{id} < std::uint64_t{e.inside} + e.count;
  });
}

// The outside (host) id of an inside id, or nullopt when no entry maps it.
inline std::optional<std::uint32_t> map_to_outside(const std::vector<IdMapEntry>& map,
                                                   std::uint32_t id) {
  for (const auto& e : map) {
    if (id >= e.inside && std::uint64_t{id} < std::uint64_t{e.inside} + e.count) {
      std::uint64_t outside = std::uint64_t{e.outside} + (id - e.inside);
      if (outside > 0xffffffffULL) return std::nullopt;
      return static_cast<std::uint32_t>(outside);
    }
  }
  return std::nullopt;
}

inline bool ranges_contain(const std::vector<scalars::Range>& ranges, std::uint64_t id) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const scalars::Range& r) { return id >= r.start && id <= r.end; });
}

// An entry's outside span lies inside one single allowed range.
inline bool span_in_one_range(const IdMapEntry& e, const std::vector<scalars::Range>& ranges) {
  if (e.count == 0) return true;
  std::uint64_t first = e.outside;
  std::uint64_t last = std::uint64_t{e.outside} + e.count - 1;
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const scalars::Range& r) { return first >= r.start && last <= r.end; });
}

inline std::string format_ranges(const std::vector<scalars::Range>& ranges) {
  if (ranges.empty()) return "none";
  std::string out;
  for (const auto& r : ranges) out += (out.empty() ? "" : ", ") + scalars::format_range(r);
  return out;
}

inline std::string format_map(const std::vector<IdMapEntry>& map) {
  std::string out;
  for (const auto& e : map) {
    if (!out.empty()) out += ", ";
    out += "[" + std::to_string(e.inside) + ", " +
           std::to_string(std::uint64_t{e.inside} + e.count) + ")";
  }
  return out.empty() ? "none" : out;
}

}  // namespace lithos::policy
