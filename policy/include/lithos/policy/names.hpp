// Names: the rule for sandbox and process names, and kernel name tables for
// hardening keys: system calls (via libseccomp, for this machine's native
// architecture) and capabilities (via libcap). Pure look-ups; nothing here
// changes the process.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lithos::policy::names {

// A sandbox or process (child) name: `^[\w-]+$` taken bytewise, i.e. ASCII
// letters, digits, `_`, `-`, and any byte >= 0x80 (UTF-8 letters). Names
// become path components, cgroup scopes, metric labels and log fields, so
// `/`, `.`, spaces and control characters are refused. The one definition
// of the rule: lithos_check and lithos_cmd both use it.
constexpr bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c >= 0x80;
    if (!ok) return false;
  }
  return true;
}

// The syscall number on the native architecture, or nullopt if unknown.
std::optional<int> syscall_number(std::string_view name);

// Canonical capability name ("CAP_NET_BIND_SERVICE") and number for any
// spelling libcap accepts ("cap_net_bind_service", "CAP_NET_BIND_SERVICE",
// "net_bind_service"), or nullopt.
struct Capability {
  int number = 0;
  std::string name;
};
std::optional<Capability> capability(std::string_view name);

// Every capability the running kernel knows, in number order.
std::vector<Capability> all_capabilities();

// Every system call name libseccomp knows for the native architecture, in
// number order (the candidates of "did you mean" for seccomp rules).
std::vector<std::string> all_syscall_names();

}  // namespace lithos::policy::names
