// The cgroup rules (docs/cgroups.md): the controls a container sets need
// their controller, stay within the sandbox's cgroup-ceilings, and must be
// applicable on this host.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "check_internal.hpp"

namespace lithos::policy::check_internal {

namespace {

// The controller each new cgroup control needs (docs/cgroups.md); the
// controls written since the original, which are refused rather than
// skipped when they cannot be applied.
struct CgroupControl {
  const char* key;
  const char* controller;
  bool (*set)(const ContainerConfig&);
};
constexpr CgroupControl kCgroupControls[] = {
    {"memory-high", "memory", [](const ContainerConfig& c) { return c.memory_high.has_value(); }},
    {"memory-low", "memory", [](const ContainerConfig& c) { return c.memory_low.has_value(); }},
    {"memory-oom-group", "memory", [](const ContainerConfig& c) { return c.memory_oom_group; }},
    {"cpu-quota-us", "cpu", [](const ContainerConfig& c) { return c.cpu_quota_us.has_value(); }},
    {"io-weight", "blkio", [](const ContainerConfig& c) { return c.io_weight.has_value(); }},
    {"io-max", "blkio", [](const ContainerConfig& c) { return !c.io_max.empty(); }},
};

}  // namespace

// The controllers of one plan, when they are not the master's list (the
// `pids` that `pids-limit` adds), and the controls it sets, asked of the
// host like the master's. One question per distinct set.
bool TreeChecker::cgroup_placeable(const Loaded<ContainerCodec>& doc, const InstancePlan& plan) {
  if (!plan.cgroup || !options_.cgroup_refusal) return true;
  const auto& master = tree_.master->value;
  const bool master_controllers = plan.cgroup->controllers == effective_cgroup_controllers(master);
  std::string question;
  for (const auto& controller : plan.cgroup->controllers) question += controller + ",";
  for (const auto& control : kCgroupControls)
    if (control.set(doc.value)) question += std::string(";") + control.key;
  for (const auto& device : plan.cgroup->io_max)  // each is looked for
    question += ";" + std::to_string(device.major) + ":" + std::to_string(device.minor);
  if (master_controllers && question.find(';') == std::string::npos) return true;
  auto known = cgroup_refusals_.find(question);
  if (known == cgroup_refusals_.end())
    known = cgroup_refusals_.emplace(question, options_.cgroup_refusal(*plan.cgroup)).first;
  if (!known->second) return true;
  const auto& refused = *known->second;
  if (refused.key.empty()) {
    if (master_controllers) return false;  // reported on the master config
    Mark mark = doc.marks.has(".pids-limit") ? doc.marks.find(".pids-limit") : Mark{};
    report_.error(doc.file, mark, Code::Cgroup,
                  "pids-limit needs the pids controller, and instances cannot be placed in "
                  "cgroups with it on this host: " +
                      refused.why);
    return false;
  }
  report_.error(doc.file, doc.marks.find("." + refused.key), Code::Cgroup,
                refused.key + " cannot be applied on this host: " + refused.why);
  return false;
}

// The new cgroup controls need their controller among those joined, and
// every limit must stay within the sandbox's cgroup-ceilings.
void TreeChecker::check_cgroup_controls(const SandboxSource& sandbox,
                                        const Loaded<ContainerCodec>& doc) {
  const auto& master = tree_.master->value;
  const auto& c = doc.value;
  auto mark = [&](const std::string& key) {
    return doc.marks.has("." + key) ? doc.marks.find("." + key) : Mark{};
  };
  const auto controllers = effective_cgroup_controllers(master);
  for (const auto& control : kCgroupControls) {
    if (!control.set(c)) continue;
    std::string controller = control.controller;
    auto listed = [&](std::string_view name) {
      return std::find(controllers.begin(), controllers.end(), name) != controllers.end();
    };
    if (!master.cgroup_name)
      report_.warning(doc.file, mark(control.key), Code::Cgroup,
                      std::string(control.key) +
                          " has no effect: the master config disables cgroups (cgroup-name: "
                          "null)");
    else if (!listed(controller) && !(controller == "blkio" && listed("io")))
      report_.error(doc.file, mark(control.key), Code::Cgroup,
                    std::string(control.key) + " needs the " + controller +
                        " controller, which the master's cgroup-controllers does not list");
  }

  const auto& ceilings = sandbox.config->value.cgroup_ceilings;
  auto within = [&](const char* key, const std::optional<std::uint64_t>& ceiling,
                    std::optional<std::uint64_t> asked, const std::string& asked_text) {
    if (!ceiling || (asked && *asked <= *ceiling)) return;
    report_.error(doc.file, mark(key), Code::CgroupLimit,
                  std::string(key) + " " + asked_text + " is more than sandbox " +
                      quote(sandbox.name) + " allows (cgroup-ceilings: " +
                      std::string(key == std::string_view("cpu-quota-us") ? "cpu-percent" : key) +
                      " " + std::to_string(*ceiling) + ")");
  };
  auto number = [](std::optional<std::uint64_t> v, const char* unset) {
    return v ? std::to_string(*v) : std::string(unset);
  };
  constexpr auto kUnlimited = static_cast<std::uint64_t>(0x7fffffffffffffffULL);
  std::optional<std::uint64_t> memory_limit;
  if (c.memory_limit < kUnlimited) memory_limit = c.memory_limit;
  within("memory-limit", ceilings.memory_limit, memory_limit,
         memory_limit ? std::to_string(c.memory_limit) : "(unset: no limit)");
  // memory-limit caps the throttling point too: a lower one meets the
  // ceiling without memory-high (which a v1 host cannot apply).
  std::optional<std::uint64_t> high = c.memory_high;
  if (memory_limit && (!high || *memory_limit < *high)) high = memory_limit;
  within("memory-high", ceilings.memory_high, high,
         c.memory_high  ? std::to_string(*c.memory_high)
         : memory_limit ? "(unset: memory-limit " + std::to_string(*memory_limit) + ")"
                        : "(unset: no limit)");
  within("memory-low", ceilings.memory_low, c.memory_low.value_or(0),
         number(c.memory_low, "(unset: 0)"));
  within("cpu-shares", ceilings.cpu_shares, c.cpu_shares, std::to_string(c.cpu_shares));
  std::optional<std::uint64_t> percent;
  if (c.cpu_quota_us) {
    // Rounded up: a quota of 150.5% of one CPU is more than 150%.
    // In two parts: quota × 100 can overflow 64 bits.
    const std::uint64_t period = c.cpu_period_us;
    percent =
        *c.cpu_quota_us / period * 100 + (*c.cpu_quota_us % period * 100 + period - 1) / period;
  }
  within("cpu-quota-us", ceilings.cpu_percent, percent,
         c.cpu_quota_us
             ? std::to_string(*c.cpu_quota_us) + " per " + std::to_string(c.cpu_period_us) + " (" +
                   std::to_string(*percent) + "% of one CPU)"
             : "(unset: no quota)");
  within("pids-limit", ceilings.pids_limit, c.pids_limit,
         number(c.pids_limit, "(unset: no limit)"));
  within("io-weight", ceilings.io_weight, c.io_weight.value_or(100),
         number(c.io_weight, "(unset: 100)"));
}

}  // namespace lithos::policy::check_internal
