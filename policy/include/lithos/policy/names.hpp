// Kernel name tables for hardening keys: system calls (via libseccomp, for
// this machine's native architecture) and capabilities (via libcap). Pure
// look-ups; nothing here changes the process.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lithos::policy::names {

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

}  // namespace lithos::policy::names
