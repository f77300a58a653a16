// Path components of images, mount points and virtual paths (docs/configs.md):
// splitting without `.`/`..` and mapping a virtual path to its host path.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/tree.hpp"

namespace lithos::policy {

// Normal components of a relative path; nullopt if it is absolute, empty, or
// has a `.`/`..` component other than interior `./` (as in the original).
inline std::optional<std::vector<std::string>> image_components(std::string_view image) {
  if (image.empty() || image.front() == '/') return std::nullopt;
  std::vector<std::string> parts;
  std::size_t start = 0;
  bool first = true;
  while (start <= image.size()) {
    auto slash = image.find('/', start);
    std::string_view part = image.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") return std::nullopt;
    if (part == "." && first) return std::nullopt;
    if (!part.empty() && part != ".") parts.emplace_back(part);
    first = false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.empty()) return std::nullopt;
  return parts;
}

// Calls `part` with each non-empty component of an absolute path, as a
// view into it; false (early) if the path is relative or has a `.` or `..`
// component.
template <class F>
inline bool each_absolute_component(std::string_view path, F&& part) {
  if (path.empty() || path.front() != '/') return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    std::string_view piece = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (piece == "." || piece == "..") return false;
    if (!piece.empty()) part(piece);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

// Components of an absolute path; nullopt if relative or containing `.`/`..`.
inline std::optional<std::vector<std::string>> absolute_components(std::string_view path) {
  std::vector<std::string> parts;
  if (!each_absolute_component(path, [&](std::string_view p) { parts.emplace_back(p); }))
    return std::nullopt;
  return parts;
}

// Whether absolute_components(path) has a value, without building it.
inline bool absolute_clean(std::string_view path) {
  return each_absolute_component(path, [](std::string_view) {});
}

inline std::string join_components(const std::vector<std::string>& parts, std::size_t from = 0) {
  std::string out;
  for (std::size_t i = from; i < parts.size(); ++i) out += "/" + parts[i];
  return out.empty() ? "/" : out;
}

// Longest component-wise prefix of `virtual_path` among the keys of
// `table`, and the host path it maps to (the original took the first match).
inline std::optional<std::string> resolve_virtual(const std::map<std::string, std::string>& table,
                                                  std::string_view virtual_path) {
  // Components as views into the paths: no string per component.
  auto split = [](std::string_view path, std::vector<std::string_view>& parts) {
    parts.clear();
    return each_absolute_component(path, [&](std::string_view p) { parts.push_back(p); });
  };
  std::vector<std::string_view> parts, key_parts;
  if (!split(virtual_path, parts)) return std::nullopt;
  const std::map<std::string, std::string>::value_type* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& entry : table) {
    if (!split(entry.first, key_parts) || key_parts.size() > parts.size()) continue;
    if (!std::equal(key_parts.begin(), key_parts.end(), parts.begin())) continue;
    if (best && key_parts.size() <= best_len) continue;
    best = &entry;
    best_len = key_parts.size();
  }
  if (!best) return std::nullopt;
  if (best_len == parts.size()) return best->second;
  std::string rest;
  for (std::size_t i = best_len; i < parts.size(); ++i) {
    if (!rest.empty()) rest += '/';
    rest += parts[i];
  }
  return join_path(best->second, rest);
}

}  // namespace lithos::policy
