// The runtime functions that need the policy layer's tables (capability
// names, the seccomp compiler, the master config). They are part of
// lithos_runtime, which the tree, lithos_cmd and the tests link; lithos_knot
// links only lithos_knot_runtime and so none of this (docs/knot.md).
#include "lithos/policy/hardening.hpp"
#include "lithos/policy/master.hpp"
#include "lithos/policy/names.hpp"
#include "lithos/runtime/capabilities.hpp"
#include "lithos/runtime/log.hpp"
#include "lithos/runtime/seccomp.hpp"

namespace lithos::runtime {

Result<CapabilitySet> resolve_capabilities(const std::vector<std::string>& names) {
  std::uint64_t mask = 0;
  for (const auto& name : names) {
    auto cap = policy::names::capability(name);
    if (!cap) return step_error("resolve_capabilities", "", 0, "unknown capability " + name);
    if (cap->number >= 64)
      return step_error("resolve_capabilities", "", EINVAL, cap->name + " is out of range");
    mask |= std::uint64_t{1} << cap->number;
  }
  return capabilities_of_mask(mask);
}

Result<SeccompProgram> compile_seccomp(const policy::SeccompPlan& plan) {
  policy::SeccompPlan compiled = plan;
  if (auto error = policy::compile_seccomp_program(compiled))
    return step_error("compile_seccomp", "", 0, *error);
  return seccomp_program_of(compiled);
}

Result<void> open_configured_log(Logger& log, const policy::MasterConfig& master,
                                 const std::string& file, std::string_view sandbox) {
  if (master.syslog_facility) {
    SyslogTarget target;
    target.facility = policy::syslog_facility_code(*master.syslog_facility).value_or(1);
    target.ident = master.syslog_app_name;
    if (!sandbox.empty()) target.ident += "-" + std::string(sandbox);
    return log.open_syslog(std::move(target), sandbox.empty());
  }
  return log.open(file);
}

}  // namespace lithos::runtime
