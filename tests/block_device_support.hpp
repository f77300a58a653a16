// A whole block device of this host, for the tests that set io-max: the
// kernel throttles whole disks only, and /sys/block lists exactly those.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "lithos/policy/plan.hpp"

namespace lithos::test {

// "MAJOR:MINOR" of the first disk in /sys/block by name, or "" when there is none.
inline std::string whole_disk() {
  std::vector<std::filesystem::path> disks;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/block", ec))
    disks.push_back(entry.path());
  std::sort(disks.begin(), disks.end());
  for (const auto& disk : disks) {
    std::ifstream dev(disk / "dev");
    std::string numbers;
    if (dev >> numbers && numbers.find(':') != std::string::npos) return numbers;
  }
  return "";
}

// The same disk as an io-max entry without limits, or nullopt.
inline std::optional<policy::IoMaxPlan> whole_disk_device() {
  std::string numbers = whole_disk();
  if (numbers.empty()) return std::nullopt;
  auto colon = numbers.find(':');
  policy::IoMaxPlan device;
  device.major = static_cast<std::uint32_t>(std::stoul(numbers.substr(0, colon)));
  device.minor = static_cast<std::uint32_t>(std::stoul(numbers.substr(colon + 1)));
  return device;
}

}  // namespace lithos::test
