// Validators of the values a process config gives to declared variables
// (docs/configs.md, "Variables"): !Name, !DottedName and !TcpPort.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lithos/policy/scalars.hpp"

namespace lithos::policy {

inline bool valid_name_value(std::string_view v) {
  if (v.empty()) return false;  // the original accepted an empty !Name
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

inline bool valid_dotted_name_value(std::string_view v) {
  if (v.empty()) return false;
  std::size_t start = 0;
  while (true) {
    auto dot = v.find('.', start);
    std::string_view part =
        v.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.front() == '-' || part.back() == '-') return false;
    if (!valid_name_value(part)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

inline std::optional<std::uint16_t> parse_port(std::string_view text) {
  auto r = scalars::parse_plain_u32(text);
  if (!r || *r > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*r);
}

}  // namespace lithos::policy
