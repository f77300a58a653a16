#include "lithos/policy/names.hpp"

#include <seccomp.h>
#include <sys/capability.h>

#include <cctype>
#include <cstdlib>

namespace lithos::policy::names {

std::optional<int> syscall_number(std::string_view name) {
  if (name.empty() || name.size() > 64) return std::nullopt;
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      return std::nullopt;
  std::string text(name);
  int nr = seccomp_syscall_resolve_name(text.c_str());
  if (nr == __NR_SCMP_ERROR || nr < 0) return std::nullopt;
  return nr;
}

std::optional<Capability> capability(std::string_view name) {
  std::string text(name);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text.rfind("cap_", 0) != 0) text = "cap_" + text;
  for (char c : text)
    if (!(std::islower(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
  cap_value_t value = 0;
  if (cap_from_name(text.c_str(), &value) != 0) return std::nullopt;
  if (value < 0 || value > CAP_LAST_CAP) return std::nullopt;
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return Capability{static_cast<int>(value), upper};
}

std::vector<Capability> all_capabilities() {
  std::vector<Capability> out;
  for (int v = 0; v <= CAP_LAST_CAP; ++v) {
    char* raw = cap_to_name(static_cast<cap_value_t>(v));
    if (!raw) continue;
    std::string name(raw);
    cap_free(raw);
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.push_back({v, name});
  }
  return out;
}

std::vector<std::string> all_syscall_names() {
  std::vector<std::string> out;
  // Syscall numbers are dense on every architecture lithos runs on; 1024
  // covers x86_64 (about 460) and aarch64 with room to spare.
  for (int nr = 0; nr < 1024; ++nr) {
    char* raw = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (!raw) continue;
    out.emplace_back(raw);
    std::free(raw);
  }
  return out;
}

}  // namespace lithos::policy::names
